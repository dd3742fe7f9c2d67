import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { compileChecker } from './checkers.js';
import { loadCoreSchema } from './compiled.js';
import { corpusDir, repoRoot } from './corpus.js';
import { importDataModel } from './importer.js';
import { type ChangeInput, type CompiledSchema, SCHEMA_FORMAT, type TypeSpec } from './types.js';
import { SchemaValidator } from './validator.js';
import { ReferenceValidator, referenceChecker } from './validator.reference.js';

// The fast validator (hashed path scan, per-shape checkers) must give exactly the results of the
// straightforward one it replaced (validator.reference.ts): same codes, faults, messages, flags and
// schema paths, item by item, on randomized corpora full of edge cases.

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const INSTANCE_FORMS = [
  '1',
  '7',
  '42',
  '4294967295',
  '4294967296',
  '9999999999',
  '1000000000',
  '12345678901',
  '0',
  '01',
  '00',
  '1a',
  '[cpe-1]',
  '[a.b]',
  '[]',
  '[x',
  '{i}',
  '',
  '*',
  '-1',
];

const VALUE_FORMS = [
  '',
  '0',
  '-0',
  '1',
  '-1',
  '+1',
  '00000000001',
  '0000000001',
  '000000000001',
  '-00000000001',
  '2147483647',
  '2147483648',
  '-2147483648',
  '-2147483649',
  '4294967295',
  '4294967296',
  '18446744073709551615',
  '18446744073709551616',
  '0018446744073709551615',
  '9223372036854775807',
  '-9223372036854775808',
  '-9223372036854775809',
  '1.5',
  '1e3',
  ' 1',
  '1 ',
  '-',
  'true',
  'false',
  'TRUE',
  'yes',
  'x',
  'y'.repeat(64),
  'y'.repeat(65),
  'y'.repeat(257),
  'ab',
  'abc',
  'QUJD',
  'QUJDRA==',
  '2024-05-01T10:00:00Z',
  '2024-13-01T10:00:00Z',
  '192.0.2.1',
  '999.1.1.1.1',
  '2001:db8::1',
  '2001:db8::/64',
  '00:11:22:aa:BB:cc',
  '1,2,3',
  '1,,2',
  ',',
  'a, b ,c',
  '__not_an_enum__',
  'é',
];

/** Values aimed at a type: its enumerations, range bounds ±1 and ±step, sizes ±1, list counts ±1. */
function valuesFor(t: TypeSpec, next: () => number): string[] {
  const out: string[] = [];
  for (const e of t.enums ?? []) out.push(e, `${e}x`);
  for (const e of t.enumsReadOnly ?? []) out.push(e);
  for (const r of t.ranges ?? []) {
    for (const b of [r.min, r.max]) {
      if (b === undefined) continue;
      out.push(String(b), String(b - 1), String(b + 1));
      if (r.step) out.push(String(b + r.step), String(b + r.step + 1));
    }
  }
  for (const s of [...(t.sizes ?? []), ...(t.list?.sizes ?? [])]) {
    for (const n of [s.min, s.max]) {
      if (n === undefined || n > 5000) continue;
      for (const len of [n - 1, n, n + 1]) if (len >= 0) out.push('a'.repeat(len), 'ab'.repeat(len));
    }
  }
  if (t.list) {
    const item = out.length > 0 ? (out[Math.floor(next() * out.length)] as string) : '1';
    for (const n of [t.list.minItems, t.list.maxItems, 0, 1, 3]) {
      if (n === undefined || n > 200) continue;
      for (const c of [n - 1, n, n + 1]) if (c >= 0) out.push(Array(c).fill(item).join(','));
    }
  }
  for (let i = 0; i < 4; i++) out.push(VALUE_FORMS[Math.floor(next() * VALUE_FORMS.length)] as string);
  return out;
}

function fill(schemaPath: string, next: () => number, odd: number): string {
  return schemaPath.replace(/\{i\}/g, () =>
    next() < odd
      ? (INSTANCE_FORMS[Math.floor(next() * INSTANCE_FORMS.length)] as string)
      : String(1 + Math.floor(next() * 5000)),
  );
}

/** Mutations of a concrete path that exercise the unknown/bad-path branches. */
function mutate(p: string, next: () => number): string {
  switch (Math.floor(next() * 10)) {
    case 0:
      return `${p}X_Unknown`;
    case 1:
      return `${p}.`;
    case 2:
      return p.slice(0, p.lastIndexOf('.') + 1);
    case 3:
      return p.slice(0, p.lastIndexOf('.'));
    case 4:
      return `.${p}`;
    case 5:
      return p.replace('.', '..');
    case 6:
      return p.slice(0, Math.floor(next() * p.length));
    case 7:
      return p.toLowerCase();
    case 8:
      return `${p}.1`;
    default:
      return '';
  }
}

function corpus(schema: CompiledSchema, seed: number, count: number): ChangeInput[] {
  const next = rng(seed);
  const params = Object.entries(schema.params);
  const objects = Object.keys(schema.objects);
  const items: ChangeInput[] = [];
  while (items.length < count) {
    const roll = next();
    if (roll < 0.08 && objects.length > 0) {
      const o = objects[Math.floor(next() * objects.length)] as string;
      const op = next() < 0.5 ? 'add' : 'delete';
      const base = o.endsWith('{i}.') && op === 'add' && next() < 0.7 ? o.slice(0, -4) : o;
      const p = fill(base, next, 0.2);
      items.push({ op, path: next() < 0.1 ? p.slice(0, -1) : p });
      continue;
    }
    const [sp, d] = params[Math.floor(next() * params.length)] as [string, (typeof params)[number][1]];
    let p = fill(sp, next, 0.15);
    if (next() < 0.1) p = mutate(p, next);
    const values = valuesFor(d.t, next);
    const pick = values[Math.floor(next() * values.length)] as string;
    const r = next();
    const value = r < 0.03 ? Number(pick) || 7 : r < 0.05 ? next() < 0.5 : pick;
    items.push({ path: p, value });
  }
  return items;
}

function compare(schema: CompiledSchema, seed: number, count: number): number {
  const fast = new SchemaValidator(schema);
  const ref = new ReferenceValidator(schema);
  const items = corpus(schema, seed, count);
  const next = rng(seed + 1);
  const set = new Set<string>();
  for (const it of items) if (next() < 0.3) set.add(it.path);
  const opts = { currentValue: (p: string) => (set.has(p) ? 'set' : undefined) };
  let codes = 0;
  // in batches, so a mismatch names a small slice
  for (let i = 0; i < items.length; i += 500) {
    const batch = items.slice(i, i + 500);
    const o = i % 1000 === 0 ? opts : undefined;
    const a = fast.validate(batch, o);
    const b = ref.validate(batch, o);
    expect(a).toStrictEqual(b);
    codes |= a.results.reduce((m, r) => m | (1 << CODES.indexOf(r.code)), 0);
  }
  return codes;
}

const CODES = [
  'ok',
  'unknown_path',
  'bad_instance_number',
  'not_writable',
  'write_once',
  'not_a_table',
  'wrong_type',
  'range',
  'size',
  'list_items',
  'enumeration',
  'pattern',
];

let acme: CompiledSchema;
let cwmp: CompiledSchema;
let usp: CompiledSchema;
beforeAll(() => {
  acme = importDataModel(path.join(repoRoot, 'datamodel', 'fixtures', 'acme-hgw-ext-1.xml'), {
    searchPath: [corpusDir()],
  });
  cwmp = loadCoreSchema('tr-181-2-19-1-cwmp');
  usp = loadCoreSchema('tr-181-2-19-1-usp');
});

describe('fast validator = reference validator', () => {
  it('on randomized corpora over the 2.19.1 CWMP and USP core schemas and the vendor fixture', () => {
    const codes = compare(cwmp, 1, 60_000) | compare(usp, 2, 30_000) | compare(acme, 3, 30_000);
    // together the corpora reach every code, so each branch was compared
    expect(CODES.filter((_, i) => ((codes >> i) & 1) === 0)).toEqual([]);
  });

  it('on TR-098 and on paths deeper than the scan records', () => {
    compare(importDataModel(path.join(repoRoot, 'datamodel', 'fixtures', 'tr-098-igd-mini.xml')), 4, 5_000);
    const deep = `Device.${'T.{i}.'.repeat(70)}P`;
    const odd: CompiledSchema = {
      format: SCHEMA_FORMAT,
      model: 'Device:2.19',
      root: 'Device.',
      protocol: 'cwmp',
      sources: ['test'],
      objects: {},
      params: {
        [deep]: { t: { base: 'unsignedInt' }, access: 'readWrite' },
        // keys that are not their own normal form: unreachable through any concrete path
        'Device.1.P': { t: { base: 'string' }, access: 'readWrite' },
        'Device.[a].P': { t: { base: 'string' }, access: 'readWrite' },
        'Device.{i}x.P': { t: { base: 'boolean' }, access: 'readWrite' },
        'Device.{i}': { t: { base: 'int', ranges: [{ min: -5, max: 5, step: 5 }] }, access: 'readWrite' },
      },
      commands: {},
      events: {},
    };
    const items: ChangeInput[] = [
      { path: deep.replace(/\{i\}/g, '3'), value: '1' },
      { path: deep.replace(/\{i\}/g, '03'), value: '1' },
      { path: deep, value: 'x' },
      { path: 'Device.1.P', value: 'x' },
      { path: 'Device.[a].P', value: 'x' },
      { path: 'Device.{i}x.P', value: 'true' },
      { path: 'Device.7', value: '5' },
      { path: 'Device.{i}', value: '-5' },
      { path: 'Device.[b]', value: '3' },
      { path: 'Device.{i}.', value: '0' },
    ];
    const a = new SchemaValidator(odd).validate(items);
    expect(a).toStrictEqual(new ReferenceValidator(odd).validate(items));
    expect(a.results.map((r) => r.code)).toEqual([
      'ok',
      'bad_instance_number',
      'wrong_type',
      'unknown_path',
      'unknown_path',
      'ok',
      'ok',
      'ok',
      'range',
      'unknown_path',
    ]);
  });

  it('checkers agree value by value for every parameter type of the schemas', () => {
    const next = rng(9);
    let n = 0;
    for (const s of [cwmp, usp, acme]) {
      const seen = new Set<string>();
      for (const d of Object.values(s.params)) {
        const key = JSON.stringify(d.t);
        if (seen.has(key)) continue;
        seen.add(key);
        const fast = compileChecker(d.t);
        const ref = referenceChecker(d.t);
        for (const v of [...valuesFor(d.t, next), ...VALUE_FORMS]) {
          const a = fast(v);
          const b = ref(v);
          if (a?.code !== b?.code || a?.message !== b?.message) {
            expect({ t: d.t, v, r: a && { code: a.code, message: a.message } }).toEqual({ t: d.t, v, r: b });
          }
          n++;
        }
      }
    }
    expect(n).toBeGreaterThan(10_000);
  });
});
