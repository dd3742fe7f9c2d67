import { type SQL, sql } from 'drizzle-orm';
import type { ParameterCatalog } from './catalog.js';
import { compileWhere } from './compile.js';
import type { DbOrTx } from './db.js';
import { FIELDS } from './fields.js';
import type { GroupKey, Measure, Query } from './query.js';

type EventsMeasure = Extract<Measure, { events: unknown }>['events'];
import { countDevices, readOnly } from './resolve.js';
import { countGrain, isNotSeen, offlineRows, rollupFrom, splitNotSeen } from './rollup.js';

/**
 * Compiles a parsed query to one parameterised SELECT over `devices d` (joined to the parameter or event
 * table for those measures), or over an exact cheaper source with the same columns (fleet/rollup.ts).
 * Identifiers come only from the constant field table; every value is bound.
 */
export interface QueryRunOptions {
  now?: Date;
  catalog?: ParameterCatalog;
  /** Most rows returned; more matching rows set `truncated`. Default 1000. */
  rowCap?: number;
  statementTimeoutMs?: number;
}

export interface QueryRow {
  key: Partial<Record<GroupKey, string | null>>;
  value: number | null;
}

export interface QueryResult {
  rows: QueryRow[];
  truncated: boolean;
}

const CMP = { eq: '=', ne: '<>', lt: '<', lte: '<=', gt: '>', gte: '>=' } as const;

function keyExpr(k: GroupKey): SQL {
  if (k === 'device') return sql.raw('d."id"');
  if (k === 'faultCode') return sql.raw('e."fault_code"');
  return sql.raw(`d."${FIELDS[k].column}"`);
}

/** The expression ordering a key: semantic-version order for firmware, text order otherwise. */
function sortExpr(k: GroupKey): SQL {
  if (k === 'softwareVersion') return sql.raw('d."software_version_key"');
  if (k === 'faultCode') return sql.raw('(e."fault_code")::int');
  return keyExpr(k);
}

/** Where a compiled query reads its rows from, and what it aggregates. */
interface Source {
  /** FROM ... WHERE ..., rows aliased `d` (devices columns) and, for events, `e`. */
  from: SQL;
  value: SQL;
  /** Extra HAVING conjunct (a group must exist in the source). */
  groupExists?: SQL;
}

/** The devices columns of a grouping (and its sort keys). */
function groupingColumns(keys: readonly GroupKey[]): string[] {
  const cols = new Set<string>();
  for (const k of keys) {
    if (k === 'device') cols.add('id');
    else if (k !== 'faultCode') {
      cols.add(FIELDS[k].column);
      if (k === 'softwareVersion') cols.add('software_version_key');
    }
  }
  return [...cols];
}

/**
 * The cheapest exact source for a query (see fleet/rollup.ts): the device_counts rollup for device counts
 * over its columns, and parameter_sums for averages of a numeric parameter over the `device` grain's;
 * the silent devices' index ranges for counts filtered by "not seen for N intervals" and for offline
 * shares (the share's denominator from the rollup); otherwise the devices table, joined to per-device
 * event counts or parameter values for those measures.
 */
function source(q: Query, opts: QueryRunOptions): Source {
  const now = opts.now ?? new Date();
  const ctx = { now, catalog: opts.catalog };
  const m = q.measure;
  const devicesWhere = () => sql`"devices" d where ${compileWhere(q.where, ctx)}`;
  if (m === 'count') {
    const grain = countGrain(q.where, q.groupBy);
    if (grain)
      return {
        from: rollupFrom(grain, q.where, now),
        value: sql`coalesce(sum(d."n"), 0)::float8`,
        groupExists: q.groupBy.length ? sql`sum(d."n") > 0` : undefined,
      };
    const off = splitNotSeen(q.where);
    if (off && !q.groupBy.includes('faultCode')) {
      const rows = offlineRows(off.n, off.rest, ctx, groupingColumns(q.groupBy));
      return { from: sql`(${rows}) d where true`, value: sql`count(*)::float8` };
    }
    return { from: devicesWhere(), value: sql`count(*)::float8` };
  }
  if ('share' in m) {
    const grain = countGrain(q.where, q.groupBy);
    if (grain && isNotSeen(m.share)) {
      // Numerator and denominator in one grouped union: GROUP BY matches NULL keys, a join would not.
      const cols = groupingColumns(q.groupBy);
      const c = (alias: string) => sql.raw(cols.map((x) => `${alias}."${x}", `).join(''));
      const rows = offlineRows(m.share.lastContact.notSeenForIntervals, q.where, ctx, cols);
      const union = sql`select ${c('d')}d."n" as "total", 0 as "off" from ${rollupFrom(grain, q.where, now)}
        union all select ${c('o')}0, 1 from (${rows}) o`;
      // round(.., 1): the same numeric scale as avg() over 1.0/0.0, so the quotient is bit-identical.
      return {
        from: sql`(${union}) d where true`,
        value: sql`(round(sum(d."off")::numeric, 1) / sum(d."total"))::float8`,
        groupExists: q.groupBy.length ? sql`sum(d."total") > 0` : undefined,
      };
    }
    return {
      from: devicesWhere(),
      value: sql`avg(case when ${compileWhere(m.share, { ...ctx, perRow: true })} then 1.0 else 0.0 end)::float8`,
    };
  }
  if ('events' in m) {
    const perDevice = perDeviceEvents(m.events, q.groupBy.includes('faultCode'), now);
    const value = sql`sum(e."n")::float8`;
    // Without a filter or device columns to read, each device with events is only checked to exist: a
    // forced index probe per device ("offset 0" keeps the lateral a nested loop), in id order so that
    // consecutive probes share index pages, instead of the hash join over every device the planner
    // would otherwise pick.
    if ('all' in q.where && q.groupBy.every((k) => k === 'device' || k === 'faultCode'))
      return {
        from: sql`(select * from (${perDevice}) p order by p."device_id" offset 0) e cross join lateral (select x."id" from "devices" x where x."id" = e."device_id" offset 0) d where true`,
        value,
      };
    return {
      from: sql`"devices" d join (${perDevice}) e on e."device_id" = d."id" where ${compileWhere(q.where, ctx)}`,
      value,
    };
  }
  const [agg, path] = Object.entries(m)[0] as ['avg' | 'min' | 'max', string];
  if (agg === 'avg' && countGrain(q.where, q.groupBy) === 'device')
    return {
      // numeric sum ÷ count: the same division avg(numeric) ends with, so the value is identical.
      from: sql`"parameter_sums" d where d."path" = ${path} and ${compileWhere(q.where, ctx)}`,
      value: sql`(sum(d."s") / nullif(sum(d."n"), 0))::float8`,
      groupExists: q.groupBy.length ? sql`sum(d."n") > 0` : undefined,
    };
  return {
    from: sql`"devices" d join "device_parameters" p on p."device_id" = d."id" and p."path" = ${path}
      and p."value_num" is not null where ${compileWhere(q.where, ctx)}`,
    value: sql`${sql.raw(agg)}(p."value_num")::float8`,
  };
}

/**
 * Events of one kind in the window counted per device (and fault code), from the (kind, at, device_id)
 * index. Window bounds are constants (not now() - interval) so the planner prunes partitions while
 * planning.
 */
function perDeviceEvents(e: EventsMeasure, byFault: boolean, now: Date): SQL {
  const extra: SQL[] = [];
  if (e.eventCode !== undefined) extra.push(sql` and e."payload"->'eventCodes' ? ${e.eventCode}`);
  if (e.failed !== undefined)
    extra.push(
      // The text test first: it matches the partial index of failed transfers (migration 0012).
      e.failed
        ? sql` and e."payload"->>'faultCode' <> '0' and (e."payload"->>'faultCode')::int <> 0`
        : sql` and (e."payload"->>'faultCode')::int = 0`,
    );
  const from = new Date(now.getTime() - e.withinSeconds * 1000).toISOString();
  return sql`select e."device_id"${byFault ? sql`, e."payload"->>'faultCode' as "fault_code"` : sql``},
      count(*) as "n" from "device_events" e
    where e."kind" = ${e.kind} and e."at" > ${from}::timestamptz and e."at" <= ${now.toISOString()}::timestamptz${sql.join(extra, sql``)}
    group by 1${byFault ? sql`, 2` : sql``}`;
}

/**
 * Top devices by an event count over the whole fleet: the per-device counts are ordered first, then
 * each device is checked to exist (one index probe) in that order until the limit is reached, instead
 * of probing every device with events before sorting.
 */
function topDevicesByEvents(q: Query, e: EventsMeasure, opts: QueryRunOptions, limit: number): SQL {
  const now = opts.now ?? new Date();
  const dir = sql.raw(q.orderBy?.dir === 'asc' ? 'asc' : 'desc');
  const order =
    q.orderBy?.by === 'key'
      ? sql`"device_id" ${dir} nulls last`
      : sql`"v" ${dir} nulls last, "device_id" asc nulls last`;
  const having = q.having ? sql` where p."n"::float8 ${sql.raw(CMP[q.having.op])} ${q.having.value}` : sql``;
  return sql`select e."device_id" as k0, e."v" as value from (
      select p."device_id", p."n"::float8 as "v" from (${perDeviceEvents(e, false, now)}) p${having}
      order by ${order} offset 0
    ) e cross join lateral (select 1 from "devices" x where x."id" = e."device_id" offset 0) d
    order by ${order} limit ${limit}`;
}

export function compileQuery(q: Query, opts: QueryRunOptions = {}): SQL {
  const cap = opts.rowCap ?? 1000;
  const limit = Math.min(q.limit ?? cap, cap) + 1;
  const m = q.measure;
  if (
    typeof m === 'object' &&
    'events' in m &&
    'all' in q.where &&
    q.groupBy.length === 1 &&
    q.groupBy[0] === 'device'
  )
    return topDevicesByEvents(q, m.events, opts, limit);
  const { from, value, groupExists } = source(q, opts);
  const keys = q.groupBy.map((k, i) => sql`${keyExpr(k)} as ${sql.raw(`k${i}`)}`);
  const groupCols = q.groupBy.flatMap((k) =>
    k === 'softwareVersion' ? [keyExpr(k), sortExpr(k)] : [keyExpr(k)],
  );
  const select = sql.join([...keys, sql`${value} as value`], sql`, `);
  const groupBy = groupCols.length ? sql` group by ${sql.join(groupCols, sql`, `)}` : sql``;
  const conds = [
    ...(groupExists ? [groupExists] : []),
    ...(q.having ? [sql`${value} ${sql.raw(CMP[q.having.op])} ${q.having.value}`] : []),
  ];
  const having = conds.length ? sql` having ${sql.join(conds, sql` and `)}` : sql``;
  const dir = sql.raw(q.orderBy?.dir === 'asc' ? 'asc' : 'desc');
  const byKeys = q.groupBy.map(
    (k) =>
      sql`${sortExpr(k)} ${sql.raw(q.orderBy?.by === 'key' ? (q.orderBy.dir === 'asc' ? 'asc' : 'desc') : 'asc')} nulls last`,
  );
  // Ties broken by the keys so results are deterministic.
  const order =
    q.groupBy.length === 0
      ? sql``
      : q.orderBy?.by === 'key'
        ? sql` order by ${sql.join(byKeys, sql`, `)}`
        : sql` order by value ${dir} nulls last, ${sql.join(byKeys, sql`, `)}`;
  return sql`select ${select} from ${from}${groupBy}${having}${order} limit ${limit}`;
}

/** Runs a query read-only with a statement timeout; never returns more than the row cap. */
export async function runQuery(db: DbOrTx, q: Query, opts: QueryRunOptions = {}): Promise<QueryResult> {
  const cap = opts.rowCap ?? 1000;
  const want = Math.min(q.limit ?? cap, cap);
  // A plain count is the selector's count, which reads the cheapest source (an index, or the
  // parameter rows alone) instead of joining every device.
  if (q.measure === 'count' && q.groupBy.length === 0 && !countGrain(q.where, q.groupBy)) {
    const n = await countDevices(db, q.where, {
      now: opts.now ?? new Date(),
      ...(opts.catalog ? { catalog: opts.catalog } : {}),
      statementTimeoutMs: opts.statementTimeoutMs ?? 10_000,
    });
    return { rows: [{ key: {}, value: n }], truncated: false };
  }
  const rows = await readOnly(db, opts.statementTimeoutMs ?? 10_000, async (tx) => {
    const r = await tx.execute<Record<string, string | number | null>>(compileQuery(q, opts));
    return r.rows;
  });
  const out = rows.slice(0, want).map((r) => ({
    key: Object.fromEntries(q.groupBy.map((k, i) => [k, r[`k${i}`] === null ? null : String(r[`k${i}`])])),
    value: r.value === null || r.value === undefined ? null : Number(r.value),
  }));
  // A cap hit is reported; a user's own limit is not truncation.
  return { rows: out, truncated: rows.length > want && want === cap };
}
