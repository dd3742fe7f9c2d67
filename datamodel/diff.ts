import { z } from 'zod';
import type { CompiledSchema, ObjectDef, ParamDef } from './types.js';

export const FieldChange = z.object({ field: z.string(), from: z.unknown(), to: z.unknown() });
export type FieldChange = z.infer<typeof FieldChange>;

export const DriftChange = z.object({
  kind: z.enum(['object', 'parameter', 'command', 'event']),
  path: z.string(),
  changes: z.array(FieldChange),
});
export type DriftChange = z.infer<typeof DriftChange>;

export const DriftReport = z.object({
  from: z.string(),
  to: z.string(),
  added: z.object({
    objects: z.array(z.string()),
    parameters: z.array(z.string()),
    commands: z.array(z.string()),
    events: z.array(z.string()),
  }),
  removed: z.object({
    objects: z.array(z.string()),
    parameters: z.array(z.string()),
    commands: z.array(z.string()),
    events: z.array(z.string()),
  }),
  changed: z.array(DriftChange),
});
export type DriftReport = z.infer<typeof DriftReport>;

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * Internal protocol variants of a named type ("_AliasCWMP", "_AliasUSP") are what modular files
 * reference where full files say "Alias"; compare them by their public name so this is not drift.
 */
function publicTypeName(name: string | undefined): string | undefined {
  if (!name?.startsWith('_')) return name;
  return name.slice(1).replace(/(CWMP|USP|Common)$/, '');
}

/** The facets that make drift: type, its facets, access, default, status and the protection flags. */
function paramFields(p: ParamDef): Record<string, unknown> {
  return {
    type: p.t.base,
    dataType: publicTypeName(p.t.named?.[0]),
    ranges: p.t.ranges,
    sizes: p.t.sizes,
    enumeration: p.t.enums,
    patterns: p.t.patterns,
    list: p.t.list,
    units: p.t.units,
    access: p.access,
    default: p.default,
    status: p.status ?? 'current',
    secured: p.secured ?? false,
    hidden: p.hidden ?? false,
    forcedInform: p.forcedInform ?? false,
  };
}

function objectFields(o: ObjectDef): Record<string, unknown> {
  return {
    access: o.access,
    table: o.table,
    minEntries: o.minEntries,
    maxEntries: o.maxEntries,
    status: o.status ?? 'current',
    uniqueKeys: o.uniqueKeys,
  };
}

function compare(a: Record<string, unknown>, b: Record<string, unknown>): FieldChange[] {
  const out: FieldChange[] = [];
  for (const k of Object.keys(a))
    if (!same(a[k], b[k])) out.push({ field: k, from: a[k] ?? null, to: b[k] ?? null });
  return out;
}

function keyDiff(a: Record<string, unknown>, b: Record<string, unknown>) {
  return {
    added: Object.keys(b).filter((k) => !(k in a)),
    removed: Object.keys(a).filter((k) => !(k in b)),
    common: Object.keys(a).filter((k) => k in b),
  };
}

/** Drift between two data models (e.g. two firmware versions): added, removed and changed items. */
export function diffSchemas(
  a: CompiledSchema,
  b: CompiledSchema,
  names?: { from?: string; to?: string },
): DriftReport {
  const o = keyDiff(a.objects, b.objects);
  const p = keyDiff(a.params, b.params);
  const c = keyDiff(a.commands, b.commands);
  const e = keyDiff(a.events, b.events);
  const changed: DriftChange[] = [];
  for (const k of o.common) {
    const ch = compare(objectFields(a.objects[k] as ObjectDef), objectFields(b.objects[k] as ObjectDef));
    if (ch.length) changed.push({ kind: 'object', path: k, changes: ch });
  }
  for (const k of p.common) {
    const ch = compare(paramFields(a.params[k] as ParamDef), paramFields(b.params[k] as ParamDef));
    if (ch.length) changed.push({ kind: 'parameter', path: k, changes: ch });
  }
  for (const k of c.common) {
    const x = a.commands[k];
    const y = b.commands[k];
    const ch: FieldChange[] = [];
    if (x?.async !== y?.async) ch.push({ field: 'async', from: x?.async, to: y?.async });
    const xi = Object.keys(x?.input.params ?? {});
    const yi = Object.keys(y?.input.params ?? {});
    if (!same(xi, yi)) ch.push({ field: 'input', from: xi, to: yi });
    const xo = Object.keys(x?.output.params ?? {});
    const yo = Object.keys(y?.output.params ?? {});
    if (!same(xo, yo)) ch.push({ field: 'output', from: xo, to: yo });
    if (ch.length) changed.push({ kind: 'command', path: k, changes: ch });
  }
  return {
    from: names?.from ?? a.model,
    to: names?.to ?? b.model,
    added: { objects: o.added, parameters: p.added, commands: c.added, events: e.added },
    removed: { objects: o.removed, parameters: p.removed, commands: c.removed, events: e.removed },
    changed,
  };
}

function show(v: unknown): string {
  if (v === undefined || v === null) return '-';
  if (typeof v === 'string') return v;
  return JSON.stringify(v);
}

/** Human-readable drift report, one line per item. */
export function formatDrift(d: DriftReport): string {
  const lines: string[] = [`drift ${d.from} -> ${d.to}`];
  const count = (r: DriftReport['added']) =>
    r.objects.length + r.parameters.length + r.commands.length + r.events.length;
  lines.push(`  added: ${count(d.added)}, removed: ${count(d.removed)}, changed: ${d.changed.length}`);
  for (const [sign, set] of [
    ['+', d.added],
    ['-', d.removed],
  ] as const) {
    for (const x of set.objects) lines.push(`${sign} object    ${x}`);
    for (const x of set.parameters) lines.push(`${sign} parameter ${x}`);
    for (const x of set.commands) lines.push(`${sign} command   ${x}`);
    for (const x of set.events) lines.push(`${sign} event     ${x}`);
  }
  for (const c of d.changed) {
    lines.push(`~ ${c.kind.padEnd(9)} ${c.path}`);
    for (const f of c.changes) lines.push(`    ${f.field}: ${show(f.from)} -> ${show(f.to)}`);
  }
  return lines.join('\n');
}
