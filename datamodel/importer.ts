import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { applyFacets, isPrimitive, mergeModification, readFacets } from './facets.js';
import {
  type ArgumentSet,
  type CommandDef,
  type CompiledSchema,
  type EventDef,
  type ObjectDef,
  type ParamAccess,
  type ParamDef,
  SCHEMA_FORMAT,
  type Status,
  type TypeSpec,
} from './types.js';
import { DataModelImportError, lineOf, readXmlFile, type XmlElement } from './xml.js';

export interface ImportOptions {
  /** Extra folders searched for `<import file=...>` targets after the importing file's own folder. */
  searchPath?: string[];
  /** Override the protocol flavour; otherwise guessed from the spec/file name and content. */
  protocol?: 'cwmp' | 'usp';
}

type Kind = 'component' | 'dataType' | 'model';
interface Binding {
  file: LoadedFile;
  ref: string;
}
interface LoadedFile {
  name: string;
  abs: string;
  root: XmlElement;
  text: string;
  local: Record<Kind, Map<string, XmlElement>>;
  virtual: Map<string, XmlElement>;
  bindings: Record<Kind, Map<string, Binding>>;
  imports: LoadedFile[];
}
interface Found {
  file: LoadedFile;
  el: XmlElement;
  name: string;
}

/** Where objects/parameters land: the model itself, or a command's/event's argument set. */
interface Sink {
  objects: Map<string, ObjectDef>;
  params: Map<string, ParamDef>;
  commands?: Map<string, CommandDef>;
  events?: Map<string, EventDef>;
}
interface Ctx {
  sink: Sink;
  file: LoadedFile;
  /** prefix for object names */
  base: string;
  /** the object that parameters belong to ("" for top-level arguments, null at model level) */
  obj: string | null;
  depth: number;
}

interface ModelState {
  objects: Map<string, ObjectDef>;
  params: Map<string, ParamDef>;
  commands: Map<string, CommandDef>;
  events: Map<string, EventDef>;
}

const STATUS = new Set(['current', 'deprecated', 'obsoleted', 'deleted']);
const PARAM_ACCESS = new Set(['readOnly', 'readWrite', 'writeOnceReadOnly']);

/** Resolves an import like the BBF tools: exact file, else the highest corrigendum of the spec's version. */
function resolveImportFile(file: string, spec: string | undefined, dirs: string[]): string | undefined {
  for (const d of dirs) {
    const p = path.join(d, file);
    if (existsSync(p)) return p;
  }
  // Some specs carry a stray ".xml" suffix (tr-181-2-19-0-nat.xml imports "...-2-19-0-firewall.xml").
  const m = /^urn:broadband-forum-org:(tr-\d+)-(\d+)-(\d+)(?:-(\d+))?-([a-z].*?)(?:\.xml)?$/.exec(spec ?? '');
  if (!m) return undefined;
  const [, tr, major, minor, corr, name] = m;
  for (const d of dirs) {
    if (corr !== undefined) {
      const p = path.join(d, `${tr}-${major}-${minor}-${corr}-${name}.xml`);
      if (existsSync(p)) return p;
      continue;
    }
    let best: { c: number; p: string } | undefined;
    let entries: string[] = [];
    try {
      entries = readdirSync(d);
    } catch {
      continue;
    }
    const prefix = `${tr}-${major}-${minor}-`;
    const suffix = `-${name}.xml`;
    for (const e of entries) {
      if (!e.startsWith(prefix) || !e.endsWith(suffix)) continue;
      const c = e.slice(prefix.length, e.length - suffix.length);
      if (!/^\d+$/.test(c)) continue;
      if (!best || Number(c) > best.c) best = { c: Number(c), p: path.join(d, e) };
    }
    if (best) return best.p;
  }
  return undefined;
}

class Importer {
  private readonly files = new Map<string, LoadedFile>();
  private readonly models = new Map<XmlElement, ModelState>();
  private readonly types = new Map<XmlElement, TypeSpec>();
  private root!: LoadedFile;

  constructor(private readonly opts: ImportOptions) {}

  load(abs: string, display: string, from?: { file: LoadedFile; snippet: string }): LoadedFile {
    const seen = this.files.get(abs);
    if (seen) return seen;
    if (!existsSync(abs) && from) {
      throw new DataModelImportError(
        from.file.name,
        lineOf(from.file.text, from.snippet),
        `import not found: ${display}`,
      );
    }
    const { root, text } = readXmlFile(abs, display);
    if (root.tag !== 'document') {
      throw new DataModelImportError(
        display,
        lineOf(text, `<${root.tag}`),
        `expected root element <dm:document>, found <${root.tag}>`,
      );
    }
    const f: LoadedFile = {
      name: display,
      abs,
      root,
      text,
      local: { component: new Map(), dataType: new Map(), model: new Map() },
      virtual: new Map(),
      bindings: { component: new Map(), dataType: new Map(), model: new Map() },
      imports: [],
    };
    this.files.set(abs, f);
    const dirs = [path.dirname(abs), ...(this.opts.searchPath ?? [])];
    for (const el of root.children) {
      if (el.tag === 'import') {
        const file = el.attrs.file;
        if (!file)
          throw new DataModelImportError(
            display,
            lineOf(text, '<import'),
            'expected a file= attribute on <import>',
          );
        const target = resolveImportFile(file, el.attrs.spec, dirs);
        const snippet = `file="${file}"`;
        if (!target) {
          throw new DataModelImportError(
            display,
            lineOf(text, snippet),
            `import not found: ${file}${el.attrs.spec ? ` (spec ${el.attrs.spec})` : ''}`,
          );
        }
        const imported = this.load(target, path.basename(target), { file: f, snippet });
        f.imports.push(imported);
        for (const c of el.children) {
          const kind = c.tag as Kind;
          if (kind !== 'component' && kind !== 'dataType' && kind !== 'model') continue;
          const name = c.attrs.name;
          if (!name) continue;
          f.bindings[kind].set(name, { file: imported, ref: c.attrs.ref ?? name });
        }
      } else if (el.tag === 'component' || el.tag === 'dataType' || el.tag === 'model') {
        const name = el.attrs.name;
        if (!name) continue;
        if (el.tag === 'component' && el.attrs.virtual === 'true') f.virtual.set(name, el);
        else f.local[el.tag as Kind].set(name, el);
      }
    }
    return f;
  }

  private resolveIn(kind: Kind, name: string, file: LoadedFile, depth = 0): Found | undefined {
    if (depth > 50) return undefined;
    const el = file.local[kind].get(name);
    if (el) return { file, el, name };
    const b = file.bindings[kind].get(name);
    if (b) return this.resolveIn(kind, b.ref, b.file, depth + 1);
    if (kind === 'component') {
      const v = file.virtual.get(name);
      if (v) return { file, el: v, name };
    }
    return undefined;
  }

  /** The entry file's import bindings override (e.g. Alias -> _AliasUSP); then the lexical scope. */
  private lookup(kind: Kind, name: string, file: LoadedFile): Found | undefined {
    const rb = this.root.bindings[kind].get(name);
    if (rb && file !== this.root) {
      const r = this.resolveIn(kind, rb.ref, rb.file);
      if (r) return r;
    }
    const r = this.resolveIn(kind, name, file);
    if (r) return r;
    for (const f of this.files.values()) {
      const el = f.local[kind].get(name);
      if (el) return { file: f, el, name };
    }
    return undefined;
  }

  private fail(file: LoadedFile, snippet: string, expected: string): never {
    throw new DataModelImportError(file.name, lineOf(file.text, snippet), expected);
  }

  // ---------------------------------------------------------------- types

  private namedType(found: Found, depth = 0): TypeSpec {
    const cached = this.types.get(found.el);
    if (cached) return cached;
    if (depth > 30) this.fail(found.file, `name="${found.name}"`, `dataType chain too deep at ${found.name}`);
    const el = found.el;
    let t: TypeSpec | undefined;
    let list: TypeSpec['list'];
    for (const c of el.children) {
      if (c.tag === 'list') list = this.readList(c);
      else if (isPrimitive(c.tag)) t = applyFacets({ base: c.tag }, readFacets(c));
    }
    if (el.attrs.base) {
      const b = this.lookup('dataType', el.attrs.base, found.file);
      if (!b)
        this.fail(
          found.file,
          `base="${el.attrs.base}"`,
          `dataType ${el.attrs.base} (base of ${found.name}) is not defined`,
        );
      const bt = this.namedType(b, depth + 1);
      t = applyFacets(bt, readFacets(el));
    }
    if (!t)
      this.fail(
        found.file,
        `name="${found.name}"`,
        `dataType ${found.name}: expected a primitive type or base=`,
      );
    const out: TypeSpec = { ...t, named: [el.attrs.name ?? found.name, ...(t.named ?? [])] };
    if (list) out.list = list;
    this.types.set(found.el, out);
    return out;
  }

  private readList(el: XmlElement): NonNullable<TypeSpec['list']> {
    const l: NonNullable<TypeSpec['list']> = {};
    if (el.attrs.minItems) l.minItems = Number(el.attrs.minItems);
    if (el.attrs.maxItems && el.attrs.maxItems !== 'unbounded') l.maxItems = Number(el.attrs.maxItems);
    const f = readFacets(el);
    if (f.sizes) l.sizes = f.sizes;
    return l;
  }

  /** `<syntax>` → type; undefined when the syntax names no type (a modification that only sets a default). */
  private syntaxType(syntax: XmlElement, file: LoadedFile, owner: string): TypeSpec | undefined {
    let t: TypeSpec | undefined;
    let list: TypeSpec['list'];
    for (const c of syntax.children) {
      if (c.tag === 'list') list = this.readList(c);
      else if (isPrimitive(c.tag)) t = applyFacets({ base: c.tag }, readFacets(c));
      else if (c.tag === 'dataType') {
        const ref = c.attrs.ref ?? c.attrs.base;
        if (!ref) continue;
        const found = this.lookup('dataType', ref, file);
        if (!found) this.fail(file, `ref="${ref}"`, `dataType ${ref} used by ${owner} is not defined`);
        const nt = this.namedType(found);
        t = applyFacets({ ...nt, named: [ref, ...(nt.named ?? []).filter((n) => n !== ref)] }, readFacets(c));
      }
    }
    if (t && list) t = { ...t, list: { ...(t.list ?? {}), ...list } };
    return t;
  }

  // ---------------------------------------------------------------- model

  private applyParam(el: XmlElement, ctx: Ctx): void {
    const name = el.attrs.name ?? el.attrs.base;
    if (!name || ctx.obj === null) return;
    const p = ctx.obj + name;
    const existing = ctx.sink.params.get(p);
    const def: ParamDef = existing ? { ...existing } : { t: { base: 'string' }, access: 'readOnly' };
    const a = el.attrs;
    if (a.access && PARAM_ACCESS.has(a.access)) def.access = a.access as ParamAccess;
    if (a.status && STATUS.has(a.status)) def.status = a.status as Status;
    if (a.version) def.version = a.version;
    if (a.forcedInform === 'true') def.forcedInform = true;
    if (a.activeNotify) def.activeNotify = a.activeNotify;
    if (a.mandatory === 'true') def.mandatory = true;
    let typed = existing !== undefined;
    for (const c of el.children) {
      if (c.tag !== 'syntax') continue;
      if (c.attrs.hidden === 'true') def.hidden = true;
      if (c.attrs.secured === 'true') def.secured = true;
      if (c.attrs.command === 'true') def.command = true;
      const t = this.syntaxType(c, ctx.file, p);
      if (t) {
        def.t = existing ? mergeModification(existing.t, t) : t;
        typed = true;
      }
      for (const d of c.children) {
        if (d.tag === 'default' && d.attrs.value !== undefined) {
          def.default = {
            type: (d.attrs.type ?? 'object') as NonNullable<ParamDef['default']>['type'],
            value: d.attrs.value,
          };
        }
      }
    }
    if (!typed) this.fail(ctx.file, `"${name}"`, `parameter ${p}: expected a <syntax> with a type`);
    ctx.sink.params.set(p, def);
  }

  private applyObject(el: XmlElement, ctx: Ctx): void {
    const name = el.attrs.name ?? el.attrs.base;
    if (!name) this.fail(ctx.file, '<object', 'expected name= or base= on <object>');
    const p = ctx.base + name;
    const existing = ctx.sink.objects.get(p);
    const a = el.attrs;
    const def: ObjectDef = existing
      ? { ...existing }
      : { access: 'readOnly', table: p.endsWith('{i}.'), minEntries: 1, maxEntries: 1 };
    if (a.access === 'readOnly' || a.access === 'readWrite') def.access = a.access;
    if (a.minEntries) def.minEntries = Number(a.minEntries);
    if (a.maxEntries) def.maxEntries = a.maxEntries === 'unbounded' ? null : Number(a.maxEntries);
    if (a.numEntriesParameter) def.numEntriesParameter = a.numEntriesParameter;
    if (a.enableParameter) def.enableParameter = a.enableParameter;
    if (a.status && STATUS.has(a.status)) def.status = a.status as Status;
    if (a.version) def.version = a.version;
    if (a.mountType) def.mountType = a.mountType;
    ctx.sink.objects.set(p, def);
    const inner: Ctx = { ...ctx, base: p, obj: p };
    for (const c of el.children) {
      if (c.tag === 'uniqueKey') {
        const params = c.children
          .filter((k) => k.tag === 'parameter' && k.attrs.ref)
          .map((k) => k.attrs.ref as string);
        const keys = [...(def.uniqueKeys ?? []), { functional: c.attrs.functional !== 'false', params }];
        def.uniqueKeys = keys;
      } else this.applyItem(c, inner);
    }
  }

  private argSet(el: XmlElement | undefined, ctx: Ctx, into?: ArgumentSet): ArgumentSet {
    const objects = new Map(Object.entries(into?.objects ?? {}));
    const params = new Map(Object.entries(into?.params ?? {}));
    if (el) {
      const inner: Ctx = { sink: { objects, params }, file: ctx.file, base: '', obj: '', depth: ctx.depth };
      for (const c of el.children) this.applyItem(c, inner);
    }
    return { objects: Object.fromEntries(objects), params: Object.fromEntries(params) };
  }

  private applyCommand(el: XmlElement, ctx: Ctx): void {
    const name = el.attrs.name ?? el.attrs.base;
    if (!name || ctx.obj === null || !ctx.sink.commands) return;
    const p = ctx.obj + name;
    const existing = ctx.sink.commands.get(p);
    const input = el.children.find((c) => c.tag === 'input');
    const output = el.children.find((c) => c.tag === 'output');
    const def: CommandDef = {
      async: el.attrs.async !== undefined ? el.attrs.async === 'true' : (existing?.async ?? false),
      input: this.argSet(input, ctx, existing?.input),
      output: this.argSet(output, ctx, existing?.output),
    };
    const status = el.attrs.status ?? existing?.status;
    if (status && STATUS.has(status)) def.status = status as Status;
    const version = el.attrs.version ?? existing?.version;
    if (version) def.version = version;
    ctx.sink.commands.set(p, def);
  }

  private applyEvent(el: XmlElement, ctx: Ctx): void {
    const name = el.attrs.name ?? el.attrs.base;
    if (!name || ctx.obj === null || !ctx.sink.events) return;
    const p = ctx.obj + name;
    const existing = ctx.sink.events.get(p);
    const def: EventDef = { args: this.argSet(el, ctx, existing?.args) };
    const status = el.attrs.status ?? existing?.status;
    if (status && STATUS.has(status)) def.status = status as Status;
    const version = el.attrs.version ?? existing?.version;
    if (version) def.version = version;
    ctx.sink.events.set(p, def);
  }

  private applyComponentRef(el: XmlElement, ctx: Ctx): void {
    const ref = el.attrs.ref;
    if (!ref) return;
    const found = this.lookup('component', ref, ctx.file);
    if (!found) this.fail(ctx.file, `ref="${ref}"`, `component ${ref} is not defined or imported`);
    if (ctx.depth > 40) this.fail(ctx.file, `ref="${ref}"`, `component nesting too deep at ${ref}`);
    const rel = el.attrs.path ?? '';
    const base = ctx.base + rel;
    const inner: Ctx = { ...ctx, file: found.file, base, obj: rel ? base : ctx.obj, depth: ctx.depth + 1 };
    for (const c of found.el.children) this.applyItem(c, inner);
  }

  private applyItem(el: XmlElement, ctx: Ctx): void {
    switch (el.tag) {
      case 'object':
        this.applyObject(el, ctx);
        return;
      case 'parameter':
        this.applyParam(el, ctx);
        return;
      case 'command':
        this.applyCommand(el, ctx);
        return;
      case 'event':
        this.applyEvent(el, ctx);
        return;
      case 'component':
        this.applyComponentRef(el, ctx);
        return;
      default:
        return; // profile, description, uniqueKey handled elsewhere, unknown elements ignored
    }
  }

  model(found: Found): ModelState {
    const cached = this.models.get(found.el);
    if (cached) return cached;
    let state: ModelState;
    const baseName = found.el.attrs.base;
    if (baseName) {
      const b = this.lookup('model', baseName, found.file);
      if (!b) this.fail(found.file, `base="${baseName}"`, `model ${baseName} is not defined or imported`);
      const bs = this.model(b);
      state = {
        objects: new Map(bs.objects),
        params: new Map(bs.params),
        commands: new Map(bs.commands),
        events: new Map(bs.events),
      };
    } else {
      state = { objects: new Map(), params: new Map(), commands: new Map(), events: new Map() };
    }
    const ctx: Ctx = { sink: state, file: found.file, base: '', obj: null, depth: 0 };
    for (const c of found.el.children) this.applyItem(c, ctx);
    this.models.set(found.el, state);
    return state;
  }

  run(entry: string): CompiledSchema {
    const abs = path.resolve(entry);
    this.root = this.load(abs, path.basename(abs));
    const isDeviceType = /devicetype/i.test(
      this.root.text.slice(0, 4000).match(/<[\w:]*document[^>]*>/)?.[0] ?? '',
    );
    const modelEls = this.root.root.children.filter((c) => c.tag === 'model');
    const modelEl = modelEls[modelEls.length - 1];
    if (!modelEl) this.fail(this.root, '<', 'expected a <model> element in the entry file');
    let state: ModelState;
    let modelName: string;
    if (isDeviceType) {
      ({ state, modelName } = this.deviceType(modelEl));
    } else {
      state = this.model({ file: this.root, el: modelEl, name: modelEl.attrs.name ?? '' });
      modelName = modelEl.attrs.name ?? '';
    }
    const rootObj = [...state.objects.keys()][0] ?? '';
    const spec = this.root.root.attrs.spec;
    // Flavour: explicit option, else the entry's spec/name, else the imported files' names; TR-098 is CWMP-only.
    const names = [`${spec ?? ''} ${this.root.name}`, ...[...this.files.values()].map((f) => f.name)];
    const guess = (re: RegExp) => names.findIndex((n) => re.test(n));
    const u = guess(/usp/i);
    const c = guess(/cwmp/i);
    const flavour =
      this.opts.protocol ??
      (u >= 0 && (c < 0 || u < c)
        ? 'usp'
        : c >= 0 || rootObj.startsWith('InternetGatewayDevice.')
          ? 'cwmp'
          : state.commands.size > 0
            ? 'usp'
            : 'unknown');
    const out: CompiledSchema = {
      format: SCHEMA_FORMAT,
      model: modelName,
      root: rootObj.slice(0, rootObj.indexOf('.') + 1),
      protocol: flavour,
      sources: [...this.files.values()].map((f) => f.name),
      objects: Object.fromEntries(state.objects),
      params: Object.fromEntries(state.params),
      commands: Object.fromEntries(state.commands),
      events: Object.fromEntries(state.events),
    };
    if (spec) out.spec = spec;
    return out;
  }

  /**
   * A device-type (supported data model) document: `<model ref=...>` names an imported model and the
   * listed objects/parameters (by ref) form the supported subset, possibly with narrower access.
   */
  private deviceType(modelEl: XmlElement): { state: ModelState; modelName: string } {
    const ref = modelEl.attrs.ref ?? modelEl.attrs.name ?? '';
    const found = this.lookup('model', ref, this.root);
    if (!found) this.fail(this.root, `ref="${ref}"`, `model ${ref} is not imported`);
    const full = this.model(found);
    const state: ModelState = {
      objects: new Map(),
      params: new Map(),
      commands: new Map(),
      events: new Map(),
    };
    for (const o of modelEl.children) {
      if (o.tag !== 'object') continue;
      const op = o.attrs.ref ?? o.attrs.name;
      if (!op) continue;
      const od = full.objects.get(op);
      if (!od) this.fail(this.root, `"${op}"`, `object ${op} is not in model ${ref}`);
      const obj: ObjectDef = { ...od };
      if (o.attrs.access === 'readOnly') obj.access = 'readOnly';
      if (o.attrs.maxEntries)
        obj.maxEntries = o.attrs.maxEntries === 'unbounded' ? null : Number(o.attrs.maxEntries);
      if (o.attrs.minEntries) obj.minEntries = Number(o.attrs.minEntries);
      state.objects.set(op, obj);
      for (const p of o.children) {
        const pn = p.attrs.ref ?? p.attrs.name;
        if (!pn) continue;
        const full_ = `${op}${pn}`;
        if (p.tag === 'command' || p.tag === 'event') {
          const src = p.tag === 'command' ? full.commands.get(full_) : full.events.get(full_);
          if (!src) this.fail(this.root, `"${pn}"`, `${p.tag} ${full_} is not in model ${ref}`);
          if (p.tag === 'command') state.commands.set(full_, src as CommandDef);
          else state.events.set(full_, src as EventDef);
          continue;
        }
        if (p.tag !== 'parameter') continue;
        const pd = full.params.get(full_);
        if (!pd) this.fail(this.root, `"${pn}"`, `parameter ${full_} is not in model ${ref}`);
        const param: ParamDef = { ...pd };
        // A device may support a parameter read-only even where the model allows writing.
        if (p.attrs.access === 'readOnly') param.access = 'readOnly';
        const syntax = p.children.find((c) => c.tag === 'syntax');
        if (syntax) {
          for (const c of syntax.children) {
            if (isPrimitive(c.tag) || c.tag === 'dataType') param.t = applyFacets(param.t, readFacets(c));
            if (c.tag === 'default' && c.attrs.value !== undefined) {
              param.default = {
                type: (c.attrs.type ?? 'object') as NonNullable<ParamDef['default']>['type'],
                value: c.attrs.value,
              };
            }
          }
        }
        state.params.set(full_, param);
      }
    }
    return {
      state,
      modelName: `${ref}${modelEl.attrs.name && modelEl.attrs.name !== ref ? ` (${modelEl.attrs.name})` : ''}`,
    };
  }
}

/**
 * Imports a Broadband Forum data model XML (full, modular with imports, a vendor extension, a
 * device-type subset, TR-098) into a compiled schema. Throws DataModelImportError on malformed or
 * unresolvable input; nothing is returned (so nothing can be registered) unless the whole closure resolved.
 */
export function importDataModel(entry: string, opts: ImportOptions = {}): CompiledSchema {
  return new Importer(opts).run(entry);
}

/** The files an entry point pulls in through `<import>` (the entry included), in load order. */
export function importClosure(entry: string, opts: ImportOptions = {}): string[] {
  const imp = new Importer(opts);
  const seen: string[] = [];
  const walk = (f: LoadedFile) => {
    if (seen.includes(f.abs)) return;
    seen.push(f.abs);
    for (const i of f.imports) walk(i);
  };
  walk(imp.load(path.resolve(entry), path.basename(entry)));
  return seen;
}
