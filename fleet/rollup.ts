import { type SQL, sql } from 'drizzle-orm';
import type { ParameterCatalog } from './catalog.js';
import { compileWhere } from './compile.js';
import type { DbOrTx } from './db.js';
import { FIELDS } from './fields.js';
import type { GroupKey } from './query.js';
import type { LastContactCondition, Selector } from './selector.js';

/**
 * Cheaper sources for fleet questions that would otherwise read every device row, each exact:
 * - `device_counts` (db/schema/fleet.ts, kept by triggers in the writing transaction): device counts per
 *   combination of a grain's columns. A question whose filter and grouping name only one grain's columns
 *   is answered by summing those rows; the compiled filter is the same predicate, because the rollup's
 *   columns have the devices columns' names, types and collations (the table is aliased `d`).
 * - devices_interval_contact_idx (interval, last contact, id, model, region, OLT, PON port): the devices
 *   not seen for N of their intervals, with those columns, from index ranges alone (offlineRows).
 */

export type Grain = 'device' | 'pon';

export const GRAIN_COLUMNS: Record<Grain, ReadonlySet<string>> = {
  device: new Set([
    'manufacturer',
    'product_class',
    'model_name',
    'hardware_version',
    'software_version',
    'software_version_key',
    'protocol',
    'region',
    'service_tier',
  ]),
  pon: new Set(['olt', 'pon_port', 'bng']),
};

/** The devices columns a selector reads, or undefined when it reads more than plain device columns. */
export function selectorColumns(s: Selector): Set<string> | undefined {
  if ('all' in s) return new Set();
  if ('and' in s || 'or' in s) {
    const out = new Set<string>();
    for (const x of 'and' in s ? s.and : s.or) {
      const c = selectorColumns(x);
      if (!c) return undefined;
      for (const v of c) out.add(v);
    }
    return out;
  }
  if ('not' in s) return selectorColumns(s.not);
  if ('field' in s) {
    const def = FIELDS[s.field];
    return new Set([s.op.startsWith('version') ? 'software_version_key' : def.column]);
  }
  return undefined;
}

/** The devices columns a grouping reads (the sort key too), or undefined for non-column keys. */
export function groupColumns(keys: readonly GroupKey[]): Set<string> | undefined {
  const out = new Set<string>();
  for (const k of keys) {
    if (k === 'device' || k === 'faultCode') return undefined;
    out.add(FIELDS[k].column);
    if (k === 'softwareVersion') out.add('software_version_key');
  }
  return out;
}

/** The one grain holding every column of `cols`, if any. */
export function grainFor(cols: ReadonlySet<string>): Grain | undefined {
  for (const g of ['device', 'pon'] as const) if ([...cols].every((c) => GRAIN_COLUMNS[g].has(c))) return g;
  return undefined;
}

/** The grain answering a device count over `where` grouped by `keys`, when one does. */
export function countGrain(where: Selector, keys: readonly GroupKey[]): Grain | undefined {
  const w = selectorColumns(where);
  const g = groupColumns(keys);
  if (!w || !g) return undefined;
  return grainFor(new Set([...w, ...g]));
}

/**
 * `device_counts d` restricted to one grain and the filter, as a FROM + WHERE fragment. Rows are deltas:
 * a group's count is sum(n), and a group exists when that sum is positive.
 */
export function rollupFrom(grain: Grain, where: Selector, now: Date): SQL {
  return sql`"device_counts" d where d."grain" = ${grain} and ${compileWhere(where, { now })}`;
}

const ALL_COLUMNS = [...GRAIN_COLUMNS.device, ...GRAIN_COLUMNS.pon].map((c) => `"${c}"`).join(', ');

const GRAIN_DEVICE_COLUMNS = [...GRAIN_COLUMNS.device].map((c) => `"${c}"`).join(', ');

/**
 * Folds the rollups (device_counts, parameter_sums) into one row per live combination (their triggers
 * only append). Safe next to writers (their uncommitted rows are not touched) and readers (one
 * statement each: they see the rows before or after). Returns the rows left in each.
 */
export async function compactRollups(db: DbOrTx): Promise<{ deviceCounts: number; parameterSums: number }> {
  const counts = await db.execute<{ n: string }>(
    sql.raw(`with gone as (delete from "device_counts" returning *),
      kept as (insert into "device_counts" ("grain", ${ALL_COLUMNS}, "n")
        select "grain", ${ALL_COLUMNS}, sum("n") from gone group by "grain", ${ALL_COLUMNS} having sum("n") <> 0
        returning 1)
      select count(*)::text as n from kept`),
  );
  const sums = await db.execute<{ n: string }>(
    sql.raw(`with gone as (delete from "parameter_sums" returning *),
      kept as (insert into "parameter_sums" ("path", ${GRAIN_DEVICE_COLUMNS}, "n", "s")
        select "path", ${GRAIN_DEVICE_COLUMNS}, sum("n"), sum("s") from gone
        group by "path", ${GRAIN_DEVICE_COLUMNS} having sum("n") <> 0 or sum("s") <> 0
        returning 1)
      select count(*)::text as n from kept`),
  );
  return { deviceCounts: Number(counts.rows[0]?.n ?? 0), parameterSums: Number(sums.rows[0]?.n ?? 0) };
}

export type NotSeen = { lastContact: { notSeenForIntervals: number } };

export function isNotSeen(s: Selector): s is NotSeen & LastContactCondition {
  return 'lastContact' in s && 'notSeenForIntervals' in s.lastContact;
}

/**
 * Splits a filter into one top-level "not seen for N intervals" conjunct and the rest, when it has
 * exactly one such conjunct.
 */
export function splitNotSeen(where: Selector): { n: number; rest: Selector } | undefined {
  if (isNotSeen(where)) return { n: where.lastContact.notSeenForIntervals, rest: { all: true } };
  if (!('and' in where)) return undefined;
  const hits = where.and.filter(isNotSeen);
  if (hits.length !== 1) return undefined;
  const rest = where.and.filter((x) => !isNotSeen(x));
  return {
    n: (hits[0] as NotSeen).lastContact.notSeenForIntervals,
    rest: rest.length === 0 ? { all: true } : rest.length === 1 ? (rest[0] as Selector) : { and: rest },
  };
}

/**
 * The devices matching `rest` that were never seen or are silent for `n` of their own intervals, as rows
 * of `cols` (devices column names). The same set as the selector's condition (fleet/compile.ts), in
 * disjoint index ranges: never seen without an interval; then per distinct interval (a loose index scan)
 * never seen, and silent for n intervals. "offset 0" keeps each range a per-interval index scan.
 */
export function offlineRows(
  n: number,
  rest: Selector,
  ctx: { now: Date; catalog?: ParameterCatalog | undefined },
  cols: readonly string[],
): SQL {
  const now = ctx.now;
  const w = compileWhere(rest, { now, catalog: ctx.catalog });
  const nowP = sql`${now.toISOString()}::timestamptz`;
  const sel = (alias: string) =>
    cols.length ? sql.raw(cols.map((c) => `${alias}."${c}"`).join(', ')) : sql.raw(`${alias}."id"`);
  return sql`select ${sel('d')} from "devices" d
      where d."periodic_inform_interval_s" is null and d."last_contact_at" is null and ${w}
    union all
    select ${sel('x')} from (
      with recursive iv(s) as (
        (select "periodic_inform_interval_s" from "devices" where "periodic_inform_interval_s" is not null
          order by 1 limit 1)
        union all
        select (select "periodic_inform_interval_s" from "devices" where "periodic_inform_interval_s" > iv.s
          order by 1 limit 1) from iv where iv.s is not null
      )
      select s from iv where s is not null
    ) iv cross join lateral (
      (select ${sel('d')} from "devices" d where d."periodic_inform_interval_s" = iv.s
        and d."last_contact_at" < ${nowP} - make_interval(secs => iv.s * ${n}::float8) and ${w}
      offset 0)
      union all
      (select ${sel('d')} from "devices" d where d."periodic_inform_interval_s" = iv.s
        and d."last_contact_at" is null and ${w}
      offset 0)
    ) x`;
}
