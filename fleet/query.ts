import { z } from 'zod';
import type { ParameterCatalog } from './catalog.js';
import { describeSelector } from './describe.js';
import { DeviceEventKind } from './events.js';
import { FIELDS } from './fields.js';
import { NUMERIC_TYPES } from './parameters.js';
import {
  COMPARE_OPS,
  type EventCountCondition,
  parseSelector,
  type Selector,
  SelectorError,
} from './selector.js';

/**
 * The fleet query language (issue 12): a selector (fleet/selector.ts, unchanged) wrapped with a measure,
 * grouping, having, ordering and a limit. It is read-only by construction: it compiles to one SELECT
 * (fleet/query-compile.ts) run in a read-only transaction with a statement timeout and a row cap.
 *
 *   { "where": <selector>, "measure": "count", "groupBy": ["softwareVersion"],
 *     "orderBy": { "by": "key", "dir": "asc" }, "limit": 10 }
 *
 * Measures: "count" (devices), { "share": <selector> } (fraction of the group matching it),
 * { "avg" | "min" | "max": "<numeric parameter path>" }, { "events": { kind, withinSeconds, ... } }
 * (number of events in the window, e.g. reboots per model).
 */

export const GROUP_KEYS = [
  'manufacturer',
  'productClass',
  'modelName',
  'hardwareVersion',
  'softwareVersion',
  'protocol',
  'region',
  'site',
  'olt',
  'ponPort',
  'bng',
  'serviceTier',
  /** events measure on transfer_complete only */
  'faultCode',
  /** one row per device (top-N devices) */
  'device',
] as const;
export const GroupKey = z.enum(GROUP_KEYS);
export type GroupKey = z.infer<typeof GroupKey>;

const positiveInt = z.number().int().positive().max(10_000_000);

export const EventsMeasure = z.strictObject({
  kind: DeviceEventKind,
  withinSeconds: positiveInt,
  eventCode: z.string().min(1).max(64).optional(),
  failed: z.boolean().optional(),
});

const QueryShape = z.strictObject({
  where: z.unknown().optional(),
  measure: z.union([
    z.literal('count'),
    z.strictObject({ share: z.unknown() }),
    z.strictObject({ avg: z.string().min(1).max(512) }),
    z.strictObject({ min: z.string().min(1).max(512) }),
    z.strictObject({ max: z.string().min(1).max(512) }),
    z.strictObject({ events: EventsMeasure }),
  ]),
  groupBy: z.array(GroupKey).max(3).optional(),
  having: z.strictObject({ op: z.enum(COMPARE_OPS), value: z.number().finite() }).optional(),
  orderBy: z.strictObject({ by: z.enum(['value', 'key']), dir: z.enum(['asc', 'desc']) }).optional(),
  limit: z.number().int().positive().max(10_000).optional(),
});

export type Measure =
  | 'count'
  | { share: Selector }
  | { avg: string }
  | { min: string }
  | { max: string }
  | { events: z.infer<typeof EventsMeasure> };

export interface Query {
  where: Selector;
  measure: Measure;
  groupBy: GroupKey[];
  having?: { op: (typeof COMPARE_OPS)[number]; value: number };
  orderBy?: { by: 'value' | 'key'; dir: 'asc' | 'desc' };
  limit?: number;
}

export class QueryError extends SelectorError {
  override name = 'QueryError';
}

function sub(input: unknown, where: string, catalog?: ParameterCatalog): Selector {
  try {
    return parseSelector(input, catalog ? { catalog } : {});
  } catch (err) {
    if (err instanceof SelectorError)
      throw new QueryError(err.path ? `${where}.${err.path}` : where, err.reason);
    throw err;
  }
}

/** Validates a query (typically JSON from a model or an API) before any SQL exists; errors name the part. */
export function parseQuery(input: unknown, opts: { catalog?: ParameterCatalog } = {}): Query {
  const r = QueryShape.safeParse(input);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new QueryError(issue?.path.map(String).join('.') ?? '', issue?.message ?? 'invalid query');
  }
  const q = r.data;
  const where = q.where === undefined ? ({ all: true } as const) : sub(q.where, 'where', opts.catalog);
  let measure: Measure;
  if (q.measure === 'count') measure = 'count';
  else if ('share' in q.measure) measure = { share: sub(q.measure.share, 'measure.share', opts.catalog) };
  else if ('events' in q.measure) {
    const e = q.measure.events;
    if (e.eventCode !== undefined && e.kind !== 'inform')
      throw new QueryError('measure.events.eventCode', 'eventCode applies to kind "inform" only');
    if (e.failed !== undefined && e.kind !== 'transfer_complete')
      throw new QueryError('measure.events.failed', 'failed applies to kind "transfer_complete" only');
    measure = { events: e };
  } else {
    const [agg, path] = Object.entries(q.measure)[0] as ['avg' | 'min' | 'max', string];
    const t = opts.catalog?.typeOf(path);
    if (t === undefined)
      throw new QueryError(`measure.${agg}`, `parameter path "${path}" is not in any known TR-181 schema`);
    if (!NUMERIC_TYPES.has(t))
      throw new QueryError(`measure.${agg}`, `parameter ${path} is ${t}, not numeric: ${agg} needs a number`);
    measure = { [agg]: path } as Measure;
  }
  const groupBy = q.groupBy ?? [];
  if (new Set(groupBy).size !== groupBy.length) throw new QueryError('groupBy', 'a key appears twice');
  if (groupBy.includes('faultCode')) {
    if (typeof measure !== 'object' || !('events' in measure) || measure.events.kind !== 'transfer_complete')
      throw new QueryError(
        'groupBy',
        '"faultCode" groups the events measure of kind "transfer_complete" only',
      );
  }
  if (q.having && groupBy.length === 0) throw new QueryError('having', '"having" needs "groupBy"');
  if (q.orderBy?.by === 'key' && groupBy.length === 0)
    throw new QueryError('orderBy.by', 'ordering by key needs "groupBy"');
  return {
    where,
    measure,
    groupBy,
    ...(q.having ? { having: q.having } : {}),
    ...(q.orderBy ? { orderBy: q.orderBy } : {}),
    ...(q.limit ? { limit: q.limit } : {}),
  };
}

const KEY_LABEL: Record<GroupKey, string> = {
  ...(Object.fromEntries(Object.entries(FIELDS).map(([k, v]) => [k, v.label])) as Record<string, string>),
  faultCode: 'fault code',
  device: 'device',
} as Record<GroupKey, string>;

function durationWords(s: number): string {
  if (s % 86_400 === 0) return `${s / 86_400} day${s === 86_400 ? '' : 's'}`;
  if (s % 3_600 === 0) return `${s / 3_600} hour${s === 3_600 ? '' : 's'}`;
  if (s % 60 === 0) return `${s / 60} minute${s === 60 ? '' : 's'}`;
  return `${s} seconds`;
}

export function describeMeasure(m: Measure): string {
  if (m === 'count') return 'the number of devices';
  if ('share' in m) return `the share of devices where ${describeSelector(m.share)}`;
  if ('events' in m) {
    const probe: EventCountCondition = { events: { ...m.events, op: 'gte', count: 1 } };
    const what = describeSelector(probe)
      .replace(/^at least 1 /, '')
      .replace(/ in the last .*$/, '');
    return `the number of ${what} events in the last ${durationWords(m.events.withinSeconds)}`;
  }
  const [agg, path] = Object.entries(m)[0] as [string, string];
  return `the ${agg === 'avg' ? 'average' : agg === 'min' ? 'minimum' : 'maximum'} of ${path}`;
}

/** Plain-language rendering of a query, for the answer shown next to its DSL. */
export function describeQuery(q: Query): string {
  const parts = [`${describeMeasure(q.measure)}`];
  if (q.groupBy.length) parts.push(`per ${q.groupBy.map((k) => KEY_LABEL[k]).join(' and ')}`);
  parts.push(`among devices where ${describeSelector(q.where)}`);
  if (q.having)
    parts.push(
      `keeping groups whose value is ${q.having.op.replace('gte', 'at least').replace('gt', 'above').replace('lte', 'at most').replace('lt', 'below').replace('ne', 'not').replace('eq', 'exactly')} ${q.having.value}`,
    );
  if (q.orderBy) {
    const by = q.orderBy.by === 'key' ? q.groupBy.map((k) => KEY_LABEL[k]).join(', ') : 'value';
    parts.push(`ordered by ${by} ${q.orderBy.dir === 'asc' ? 'ascending' : 'descending'}`);
  }
  if (q.limit) parts.push(`first ${q.limit} rows`);
  return parts.join(', ');
}
