import os from 'node:os';
import { performance } from 'node:perf_hooks';
import path from 'node:path';
import { CORE_SCHEMAS, loadCompiledSchema } from '../datamodel/compiled.js';
import { corpusDir } from '../datamodel/corpus.js';
import { importDataModel } from '../datamodel/importer.js';
import { compileChecker } from '../datamodel/checkers.js';
import { fillInstances } from '../datamodel/paths.js';
import type { ChangeInput, CompiledSchema, ParamDef, ValidationCode } from '../datamodel/types.js';
import { SchemaValidator } from '../datamodel/validator.js';
import type { Benchmark } from './bench.js';

/** Deterministic PRNG so runs are comparable. */
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

type Kind = Exclude<ValidationCode, 'ok' | 'no_schema' | 'fallback_schema' | 'write_once' | 'not_a_table'>;

function validValue(d: ParamDef): string | undefined {
  const t = d.t;
  if (t.list) return undefined;
  if (t.enums?.length) return t.enums[0];
  if (t.patterns?.length) return t.patterns.includes('') ? '' : undefined;
  switch (t.base) {
    case 'boolean':
      return 'true';
    case 'unsignedInt':
    case 'unsignedLong':
    case 'int':
    case 'long': {
      const r = t.ranges?.[0];
      return String(r?.min ?? r?.max ?? 1);
    }
    case 'dateTime':
      return '2024-05-01T10:00:00Z';
    case 'hexBinary':
      return 'ab';
    case 'base64':
      return 'QUJD';
    case 'decimal':
      return '1.5';
    default:
      return t.sizes?.[0]?.max !== undefined && t.sizes[0].max < 1 ? '' : 'x';
  }
}

function invalidValue(kind: Kind, d: ParamDef): string | undefined {
  const t = d.t;
  switch (kind) {
    case 'wrong_type':
      return t.base === 'unsignedInt' || t.base === 'int' || t.base === 'boolean' || t.base === 'dateTime'
        ? 'not-a-number'
        : undefined;
    case 'range': {
      const r = t.ranges?.[0];
      if (!r || t.list || t.enums) return undefined;
      if (r.max !== undefined && r.max < 2147483647 && (t.ranges?.length ?? 0) === 1)
        return String(r.max + 1);
      return undefined;
    }
    case 'size': {
      const s = t.sizes?.[0];
      if (t.base !== 'string' || !s?.max || t.enums || t.patterns || t.list || (t.sizes?.length ?? 0) > 1)
        return undefined;
      return 'y'.repeat(s.max + 1);
    }
    case 'enumeration':
      return t.enums?.length && !t.list ? '__not_an_enum__' : undefined;
    case 'pattern':
      return t.patterns?.length && !t.list && !t.enums ? '999.1.1.1.1' : undefined;
    case 'list_items':
      return t.list?.maxItems !== undefined && !t.list.sizes
        ? Array(t.list.maxItems + 1)
            .fill('1')
            .join(',')
        : undefined;
    default:
      return undefined;
  }
}

function concretePath(schemaPath: string, next: () => number): string {
  const n = (schemaPath.match(/\{i\}/g) ?? []).length;
  const inst: number[] = [];
  for (let i = 0; i < n; i++) inst.push(1 + Math.floor(next() * 400));
  return fillInstances(schemaPath, inst);
}

export function buildItems(schema: CompiledSchema, count: number, invalidShare: number, seed: number) {
  const next = rng(seed);
  const parentDeleted = (p: string) =>
    schema.objects[p.slice(0, p.lastIndexOf('.') + 1)]?.status === 'deleted';
  const entries = Object.entries(schema.params).filter(
    ([p, d]) => d.status !== 'deleted' && !parentDeleted(p),
  );
  const writable = entries.filter(([, d]) => d.access === 'readWrite');
  const readOnly = entries.filter(([, d]) => d.access === 'readOnly');
  const kinds: Kind[] = [
    'unknown_path',
    'bad_instance_number',
    'not_writable',
    'wrong_type',
    'range',
    'size',
    'enumeration',
    'pattern',
    'list_items',
  ];
  const byKind = new Map<Kind, Array<[string, string]>>();
  for (const k of kinds) {
    const pool: Array<[string, string]> = [];
    for (const [p, d] of writable) {
      const v = invalidValue(k, d);
      // keep only values that really exercise this kind (the generator is heuristic)
      if (v !== undefined && compileChecker(d.t)(v)?.code === k) pool.push([p, v]);
    }
    byKind.set(k, pool);
  }
  byKind.set(
    'not_writable',
    readOnly.map(([p, d]) => [p, validValue(d) ?? '1']),
  );
  const tabled = writable.filter(([p]) => p.includes('{i}'));
  byKind.set(
    'unknown_path',
    tabled.map(([p]) => [`${p}X_Unknown`, '1']),
  );
  byKind.set(
    'bad_instance_number',
    tabled.map(([p]) => [p.replace('{i}', '0{i}'), '1']),
  );
  const validPool: Array<[string, string]> = [];
  for (const [p, d] of writable) {
    const v = validValue(d);
    if (v !== undefined && compileChecker(d.t)(v) === null) validPool.push([p, v]);
  }
  const items: ChangeInput[] = [];
  const expected = new Map<string, number>();
  const seen = new Set<string>();
  while (items.length < count) {
    const invalid = next() < invalidShare;
    const kind = invalid ? (kinds[Math.floor(next() * kinds.length)] as Kind) : 'ok';
    const pool = invalid ? (byKind.get(kind as Kind) ?? []) : validPool;
    if (pool.length === 0) continue;
    const [sp, value] = pool[Math.floor(next() * pool.length)] as [string, string];
    const path = concretePath(sp, next);
    if (seen.has(path)) continue;
    seen.add(path);
    items.push({ path, value });
    expected.set(kind, (expected.get(kind) ?? 0) + 1);
  }
  return { items, expected, kinds };
}

const bench: Benchmark = async (args) => {
  const count = Number(args[0] ?? 200_000);
  const batch = 1000;
  const rounds = Number(args[1] ?? 10);

  const t0 = performance.now();
  const schema = loadCompiledSchema(CORE_SCHEMAS['tr-181-2-19-1-cwmp']);
  const validator = new SchemaValidator(schema);
  const schemaLoadMs = performance.now() - t0;

  const { items, expected, kinds } = buildItems(schema, count, 0.35, 42);
  const batches: ChangeInput[][] = [];
  for (let i = 0; i < items.length; i += batch) batches.push(items.slice(i, i + batch));

  // Correctness of the mix: every kind lands where the generator intended.
  const got = new Map<string, number>();
  for (const b of batches)
    for (const r of validator.validate(b).results) got.set(r.code, (got.get(r.code) ?? 0) + 1);

  // Warm-up, then timed rounds; every call recomputes every result (nothing kept between calls).
  for (const b of batches) validator.validate(b);
  let best = 0;
  let wall = 0;
  let cpu = 0;
  let sink = 0;
  for (let r = 0; r < rounds; r++) {
    const s = performance.now();
    const c0 = process.cpuUsage();
    for (const b of batches) sink += validator.validate(b).invalid;
    const c = process.cpuUsage(c0);
    const el = (performance.now() - s) / 1000;
    wall += el;
    cpu += (c.user + c.system) / 1e6;
    best = Math.max(best, items.length / el);
  }
  const mean = (items.length * rounds) / wall;

  // Import times (acceptance: a full file under 5 s). Reported here because tests never assert on time.
  const imports: Array<{ metric: string; value: number; target: string }> = [];
  for (const f of [
    'tr-181-2-17-0-cwmp-full.xml',
    'tr-181-2-16-0-usp-full.xml',
    'modular-2-19-1/tr-181-2-19-1-cwmp.xml',
  ]) {
    const s = performance.now();
    importDataModel(path.join(corpusDir(), f));
    imports.push({
      metric: `import ${path.basename(f)} (ms)`,
      value: Math.round(performance.now() - s),
      target: f.includes('full') ? '< 5000' : '',
    });
  }
  const perCpu = (items.length * rounds) / cpu;
  const invalidCount = items.length - (got.get('ok') ?? 0);
  const metrics = {
    values_per_s: Math.round(mean),
    distinct_paths: new Set(items.map((i) => i.path)).size,
    invalid_share: invalidCount / items.length,
    schema_load_ms: Math.round(schemaLoadMs * 10) / 10,
    rss_mb: Math.round(process.memoryUsage().rss / 1048576),
  };
  const table = [
    { metric: 'values_per_s (all rounds, wall)', value: metrics.values_per_s, target: '>= 1000000' },
    { metric: 'values_per_s (best round, wall)', value: Math.round(best), target: '' },
    { metric: 'values per CPU-second (process)', value: Math.round(perCpu), target: '' },
    { metric: 'distinct_paths', value: metrics.distinct_paths, target: '>= 100000' },
    { metric: 'invalid_share', value: Number(metrics.invalid_share.toFixed(3)), target: '>= 0.20' },
    { metric: 'schema_load_ms (JSON + checkers)', value: metrics.schema_load_ms, target: '' },
    { metric: 'rss_mb', value: metrics.rss_mb, target: '' },
    ...imports,
    ...['ok', ...kinds].map((k) => ({
      metric: `items ${k} (generated / reported)`,
      value: `${expected.get(k) ?? 0} / ${got.get(k) ?? 0}`,
      target: '',
    })),
  ];
  return {
    metrics,
    table,
    notes: [
      `schema: compiled tr-181-2-19-1-cwmp (${Object.keys(schema.params).length} parameters); ${items.length} items in calls of ${batch}, ${rounds} rounds, one thread`,
      `checksum ${sink}; load average at start ${os.loadavg()[0]?.toFixed(2)} on ${os.cpus().length} cores (other sessions share this machine)`,
    ],
  };
};

export default bench;
