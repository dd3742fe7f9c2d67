/**
 * Test support: an independent, XPath-style count of the objects, parameters, commands and events a
 * modular BBF entry point defines over its import closure. Deliberately shares no code with the
 * importer (different parser mode, no types, no facets): it only follows `import`, `component ref`
 * (with `path`), `model base`/`ref` and collects `object/@name|@base` and `parameter/@name|@base` paths.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { XMLParser } from 'fast-xml-parser';

type Node = Record<string, unknown>;

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@',
  removeNSPrefix: true,
  processEntities: false,
  isArray: (_name: string, _jpath: unknown, _leaf: boolean, isAttribute: boolean) => !isAttribute,
});

function kids(n: Node, tag: string): Node[] {
  const v = n[tag];
  return Array.isArray(v) ? (v as Node[]) : [];
}
function attr(n: Node, a: string): string | undefined {
  const v = n[`@${a}`];
  return typeof v === 'string' ? v : undefined;
}

interface Doc {
  file: string;
  root: Node;
  /** name → (file, ref) from this file's <import> children */
  renames: Map<string, { file: string; ref: string }>;
}

export interface IndependentCount {
  files: number;
  objects: Set<string>;
  params: Set<string>;
  commands: Set<string>;
  events: Set<string>;
}

export function countModularModel(entry: string): IndependentCount {
  const dir = path.dirname(entry);
  const listing = readdirSync(dir);
  const docs = new Map<string, Doc>();

  const findFile = (file: string, spec: string | undefined): string => {
    if (listing.includes(file)) return file;
    // "urn:...:tr-181-2-19-wifi" → newest tr-181-2-19-<c>-wifi.xml; "...-2-19-0-nat" → that file
    const tail =
      (spec ?? '')
        .split(':')
        .pop()
        ?.replace(/\.xml$/, '') ?? '';
    const exact = `${tail}.xml`;
    if (listing.includes(exact)) return exact;
    const m = /^(.*-\d+-\d+)-(.+)$/.exec(tail);
    if (!m) throw new Error(`cannot resolve ${file}`);
    const candidates = listing.filter(
      (f) =>
        f.startsWith(`${m[1]}-`) &&
        f.endsWith(`-${m[2]}.xml`) &&
        /^\d+$/.test(f.slice(m[1]!.length + 1, f.length - m[2]!.length - 5)),
    );
    candidates.sort();
    const best = candidates.pop();
    if (!best) throw new Error(`cannot resolve ${file} (${spec})`);
    return best;
  };

  const load = (file: string): Doc => {
    const have = docs.get(file);
    if (have) return have;
    const parsed = parser.parse(readFileSync(path.join(dir, file), 'utf8')) as Node;
    const root = kids(parsed, 'document')[0] as Node;
    const doc: Doc = { file, root, renames: new Map() };
    docs.set(file, doc);
    for (const imp of kids(root, 'import')) {
      const target = findFile(attr(imp, 'file') ?? '', attr(imp, 'spec'));
      load(target);
      for (const tag of ['component', 'model']) {
        for (const c of kids(imp, tag)) {
          const name = attr(c, 'name');
          if (name) doc.renames.set(`${tag}:${name}`, { file: target, ref: attr(c, 'ref') ?? name });
        }
      }
    }
    return doc;
  };

  const entryDoc = load(path.basename(entry));

  const define = (tag: string, name: string, file: string): { node: Node; file: string } | undefined => {
    const d = docs.get(file);
    if (!d) return undefined;
    const local = kids(d.root, tag).filter((c) => attr(c, 'name') === name);
    const real = local.find((c) => attr(c, 'virtual') !== 'true');
    if (real) return { node: real, file };
    const r = d.renames.get(`${tag}:${name}`);
    if (r) return define(tag, r.ref, r.file);
    if (local[0]) return { node: local[0], file };
    return undefined;
  };
  const find = (tag: string, name: string, file: string): { node: Node; file: string } => {
    const override = entryDoc.renames.get(`${tag}:${name}`);
    const hit =
      (override && file !== entryDoc.file ? define(tag, override.ref, override.file) : undefined) ??
      define(tag, name, file);
    if (hit) return hit;
    for (const f of docs.keys()) {
      const g = kids(docs.get(f)!.root, tag).find(
        (c) => attr(c, 'name') === name && attr(c, 'virtual') !== 'true',
      );
      if (g) return { node: g, file: f };
    }
    throw new Error(`${tag} ${name} not found from ${file}`);
  };

  const out: IndependentCount = {
    files: docs.size,
    objects: new Set(),
    params: new Set(),
    commands: new Set(),
    events: new Set(),
  };

  // Walk element children in any order: only the set of paths matters for a count.
  const walk = (n: Node, file: string, base: string, obj: string | null): void => {
    for (const o of kids(n, 'object')) {
      const p = base + (attr(o, 'name') ?? attr(o, 'base') ?? '');
      out.objects.add(p);
      walk(o, file, p, p);
    }
    if (obj !== null) {
      for (const prm of kids(n, 'parameter'))
        out.params.add(obj + (attr(prm, 'name') ?? attr(prm, 'base') ?? ''));
      for (const c of kids(n, 'command')) out.commands.add(obj + (attr(c, 'name') ?? attr(c, 'base') ?? ''));
      for (const e of kids(n, 'event')) out.events.add(obj + (attr(e, 'name') ?? attr(e, 'base') ?? ''));
    }
    for (const c of kids(n, 'component')) {
      const ref = attr(c, 'ref');
      if (!ref) continue;
      const def = find('component', ref, file);
      const rel = attr(c, 'path');
      walk(def.node, def.file, base + (rel ?? ''), rel ? base + rel : obj);
    }
  };
  const model = (m: Node, file: string): void => {
    const b = attr(m, 'base');
    if (b) {
      const def = find('model', b, file);
      model(def.node, def.file);
    }
    walk(m, file, '', null);
  };
  const models = kids(entryDoc.root, 'model');
  model(models[models.length - 1] as Node, entryDoc.file);
  out.files = docs.size;
  return out;
}
