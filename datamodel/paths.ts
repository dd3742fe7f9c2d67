/**
 * Path utilities shared by the validator, executor, fleet and planner: concrete paths with instance
 * numbers, `{i}` schema paths, partial paths, and USP instance forms (alias `[cpe-1]`, wildcard `*`,
 * search `[Enable==true&&Name=="x"]`).
 */

export type SearchOp = '==' | '!=' | '<' | '<=' | '>' | '>=';
export interface SearchCondition {
  /** relative parameter path inside the instance, e.g. "Enable" or "Stats.BytesSent" */
  param: string;
  op: SearchOp;
  value: string;
}

export type Segment =
  | { kind: 'name'; name: string }
  | { kind: 'instance'; n: number }
  | { kind: 'placeholder' }
  | { kind: 'alias'; alias: string }
  | { kind: 'wildcard' }
  | { kind: 'search'; conditions: SearchCondition[] };

export interface ParsedPath {
  segments: Segment[];
  /** ends in "." (an object or partial path) */
  object: boolean;
}

export class PathError extends Error {
  constructor(
    readonly path: string,
    readonly reason: string,
  ) {
    super(`invalid path ${JSON.stringify(path)}: ${reason}`);
    this.name = 'PathError';
  }
}

const MAX_INSTANCE = 4294967295;

/** Instance numbers are 1..4294967295 written without leading zeros (TR-069 A.2.2.1, USP). */
export function isInstanceNumber(s: string): boolean {
  const n = s.length;
  if (n === 0 || n > 10) return false;
  const first = s.charCodeAt(0);
  if (first < 49 || first > 57) return false;
  for (let i = 1; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return n < 10 || Number(s) <= MAX_INSTANCE;
}

function splitSegments(p: string): string[] {
  // Dots inside [...] (search values such as IP addresses) do not split.
  const out: string[] = [];
  let depth = 0;
  let quoted = false;
  let start = 0;
  for (let i = 0; i < p.length; i++) {
    const c = p[i];
    if (c === '"') quoted = !quoted;
    else if (!quoted && c === '[') depth++;
    else if (!quoted && c === ']') depth--;
    else if (c === '.' && depth === 0 && !quoted) {
      out.push(p.slice(start, i));
      start = i + 1;
    }
  }
  out.push(p.slice(start));
  return out;
}

const OPS: SearchOp[] = ['==', '!=', '<=', '>=', '<', '>'];

function parseSearch(expr: string, full: string): SearchCondition[] {
  const conds: SearchCondition[] = [];
  for (const part of expr.split('&&')) {
    let found: { at: number; op: SearchOp } | undefined;
    for (const op of OPS) {
      const at = part.indexOf(op);
      if (at > 0 && (!found || at < found.at)) found = { at, op };
    }
    if (!found) throw new PathError(full, `search expression "${part}" has no operator (== != < <= > >=)`);
    const param = part.slice(0, found.at).trim();
    let value = part.slice(found.at + found.op.length).trim();
    if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) value = value.slice(1, -1);
    if (!/^[A-Za-z_][\w.-]*$/.test(param))
      throw new PathError(full, `bad parameter name "${param}" in search expression`);
    conds.push({ param, op: found.op, value });
  }
  return conds;
}

/** Parses any supported path form. Throws PathError naming what is wrong. */
export function parsePath(p: string): ParsedPath {
  if (p.length === 0) throw new PathError(p, 'empty path');
  const parts = splitSegments(p);
  const object = p.endsWith('.');
  if (object) parts.pop();
  const segments: Segment[] = [];
  for (const s of parts) {
    if (s === '') throw new PathError(p, 'empty segment');
    const c = s.charCodeAt(0);
    if (s === '{i}') segments.push({ kind: 'placeholder' });
    else if (s === '*') segments.push({ kind: 'wildcard' });
    else if (c >= 48 && c <= 57) {
      if (!isInstanceNumber(s))
        throw new PathError(p, `bad instance number "${s}" (1..4294967295, no leading zeros)`);
      segments.push({ kind: 'instance', n: Number(s) });
    } else if (c === 91) {
      if (!s.endsWith(']') || s.length < 3) throw new PathError(p, `unterminated or empty [...] in "${s}"`);
      const inner = s.slice(1, -1);
      // any comparison character makes it a search expression (so "[A=1]" is an error, not an alias)
      if (/[=<>!]/.test(inner)) segments.push({ kind: 'search', conditions: parseSearch(inner, p) });
      else segments.push({ kind: 'alias', alias: inner });
    } else if (/^[A-Za-z_][\w-]*(\(\)|!)?$/.test(s)) segments.push({ kind: 'name', name: s });
    else throw new PathError(p, `bad segment "${s}"`);
  }
  return { segments, object };
}

function formatValue(v: string): string {
  return /^[\w.:-]+$/.test(v) && v !== '' ? v : `"${v}"`;
}

function formatSegment(s: Segment): string {
  switch (s.kind) {
    case 'name':
      return s.name;
    case 'instance':
      return String(s.n);
    case 'placeholder':
      return '{i}';
    case 'alias':
      return `[${s.alias}]`;
    case 'wildcard':
      return '*';
    case 'search':
      return `[${s.conditions.map((c) => `${c.param}${c.op}${formatValue(c.value)}`).join('&&')}]`;
  }
}

export function formatPath(p: ParsedPath): string {
  const parts = p.segments.map(formatSegment);
  return parts.join('.') + (p.object ? '.' : '');
}

/**
 * Concrete (or alias) path → `{i}` schema path, in one pass without regexes. Returns null when an
 * instance position is malformed (leading zero, 0, too large, unterminated alias) or a segment is empty.
 */
export function toSchemaPath(p: string): string | null {
  // indexOf jumps segment to segment natively; only instance segments are scanned char by char.
  const len = p.length;
  if (len === 0) return null;
  let s = 0;
  let out = '';
  let copied = 0;
  while (s < len) {
    let e = p.indexOf('.', s);
    if (e < 0) e = len;
    if (e === s) return null;
    const f = p.charCodeAt(s);
    if (f >= 48 && f <= 57) {
      if (f === 48 || e - s > 10) return null;
      for (let k = s + 1; k < e; k++) {
        const c = p.charCodeAt(k);
        if (c < 48 || c > 57) return null;
      }
      if (e - s === 10 && Number(p.slice(s, e)) > MAX_INSTANCE) return null;
      out += `${p.slice(copied, s)}{i}`;
      copied = e;
    } else if (f === 91) {
      if (p.charCodeAt(e - 1) !== 93 || e - s < 3) return null;
      out += `${p.slice(copied, s)}{i}`;
      copied = e;
    }
    s = e + 1;
  }
  return copied === 0 ? p : out + p.slice(copied);
}

/** Instance numbers of a concrete path, in order ("Device.IP.Interface.2.IPv4Address.1." → [2, 1]). */
export function instanceNumbers(p: string): number[] {
  return parsePath(p)
    .segments.filter((s): s is { kind: 'instance'; n: number } => s.kind === 'instance')
    .map((s) => s.n);
}

/** Fills `{i}` placeholders left to right; extra placeholders stay `{i}`. */
export function fillInstances(schemaPath: string, instances: number[]): string {
  let k = 0;
  return schemaPath.replace(/\{i\}/g, () => (k < instances.length ? String(instances[k++]) : '{i}'));
}

/** Does a concrete/alias path match a `{i}` schema path? */
export function matchesSchemaPath(concrete: string, schemaPath: string): boolean {
  return toSchemaPath(concrete) === schemaPath;
}

/** Is `p` inside (or equal to) the partial/object path `prefix`, with `{i}` matching any instance? */
export function isUnder(p: string, prefix: string): boolean {
  const a = toSchemaPath(p);
  const b = toSchemaPath(prefix);
  if (a === null || b === null) return false;
  return a.startsWith(b) && instancesAgree(p, prefix);
}

function instancesAgree(p: string, prefix: string): boolean {
  const ps = splitSegments(p);
  const qs = splitSegments(prefix.endsWith('.') ? prefix.slice(0, -1) : prefix);
  for (let i = 0; i < qs.length; i++) {
    const q = qs[i];
    if (q === '{i}' || q === '*') continue;
    if (q !== ps[i] && ps[i] !== '{i}') return false;
  }
  return true;
}

/**
 * Expands a partial path (ending in ".") against a list of schema paths: every schema parameter
 * below it, with the partial path's instance numbers filled in and deeper tables left as `{i}`.
 */
export function expandPartialPath(schemaPaths: Iterable<string>, partial: string): string[] {
  if (!partial.endsWith('.')) throw new PathError(partial, 'a partial path ends with "."');
  const norm = toSchemaPath(partial);
  if (norm === null) throw new PathError(partial, 'bad instance number');
  const parsed = parsePath(partial);
  const inst = parsed.segments.filter((s) => s.kind === 'instance').map((s) => (s as { n: number }).n);
  const out: string[] = [];
  for (const sp of schemaPaths) {
    if (sp.startsWith(norm) && !sp.endsWith('.')) out.push(fillInstances(sp, inst));
  }
  return out;
}

function compare(actual: string | undefined, c: SearchCondition): boolean {
  if (actual === undefined) return false;
  if (c.op === '==') return actual === c.value;
  if (c.op === '!=') return actual !== c.value;
  const a = Number(actual);
  const b = Number(c.value);
  if (!Number.isFinite(a) || !Number.isFinite(b)) return false;
  if (c.op === '<') return a < b;
  if (c.op === '<=') return a <= b;
  if (c.op === '>') return a > b;
  return a >= b;
}

/**
 * Resolves a USP path expression (instances, aliases, `*`, search expressions) against a device's
 * concrete values ({concrete path: value}); returns the matching concrete paths in key order.
 * An alias matches the instance whose `Alias` parameter has that value.
 */
export function resolvePath(expr: string, values: ReadonlyMap<string, string>): string[] {
  const parsed = parsePath(expr);
  let frontier = [''];
  const segs = parsed.segments;
  for (let i = 0; i < segs.length; i++) {
    const s = segs[i] as Segment;
    const next: string[] = [];
    for (const prefix of frontier) {
      if (s.kind === 'name') next.push(`${prefix}${s.name}.`);
      else if (s.kind === 'instance') next.push(`${prefix}${s.n}.`);
      else {
        for (const inst of instancesUnder(prefix, values)) {
          const base = `${prefix}${inst}.`;
          if (s.kind === 'alias' && values.get(`${base}Alias`) !== s.alias) continue;
          if (s.kind === 'search' && !s.conditions.every((c) => compare(values.get(base + c.param), c)))
            continue;
          next.push(base);
        }
      }
    }
    frontier = next;
  }
  if (parsed.object) {
    return frontier.filter((f) => [...values.keys()].some((k) => k.startsWith(f)));
  }
  return frontier.map((f) => f.slice(0, -1)).filter((f) => values.has(f));
}

function instancesUnder(prefix: string, values: ReadonlyMap<string, string>): number[] {
  const seen = new Set<number>();
  for (const k of values.keys()) {
    if (!k.startsWith(prefix)) continue;
    const dot = k.indexOf('.', prefix.length);
    const seg = dot < 0 ? k.slice(prefix.length) : k.slice(prefix.length, dot);
    if (isInstanceNumber(seg)) seen.add(Number(seg));
  }
  return [...seen].sort((a, b) => a - b);
}
