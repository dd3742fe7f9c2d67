import { type SQL, sql } from 'drizzle-orm';
import { VALUE_INDEX_CHARS } from '../db/schema/fleet.js';
import type { ParameterCatalog } from './catalog.js';
import { FIELDS } from './fields.js';
import { NUMERIC_TYPES, type ParamType } from './parameters.js';
import type {
  EventCountCondition,
  FieldCondition,
  LastContactCondition,
  Op,
  ParamCondition,
  Scalar,
  Selector,
} from './selector.js';
import { versionKey } from './version-key.js';

/**
 * Compiles a parsed selector to a boolean SQL predicate over `devices` aliased `d`. Every operand is a
 * bound parameter; column names come only from the constant field table and this file. Callers wrap the
 * predicate in a read-only query (fleet/resolve.ts).
 */
export interface CompileContext {
  /** "Now" for relative conditions; bound as a parameter so a resolution is reproducible. */
  now: Date;
  catalog?: ParameterCatalog;
  /**
   * The predicate is evaluated once per device row (e.g. inside an aggregate over the whole fleet)
   * rather than used to find devices: prefer plain row expressions to index-driven id subqueries.
   */
  perRow?: boolean;
}

const col = (name: string) => sql.raw(`d."${name}"`);

/** The smallest string greater than every string starting with `p` (byte-wise), or null if none. */
export function prefixUpperBound(p: string): string | null {
  const cps = [...p];
  while (cps.length > 0) {
    const last = cps.pop() as string;
    let cp = (last.codePointAt(0) ?? 0) + 1;
    if (cp >= 0xd800 && cp <= 0xdfff) cp = 0xe000;
    if (cp <= 0x10ffff) return cps.join('') + String.fromCodePoint(cp);
  }
  return null;
}

const CMP: Record<'eq' | 'ne' | 'lt' | 'lte' | 'gt' | 'gte', string> = {
  eq: '=',
  ne: '<>',
  lt: '<',
  lte: '<=',
  gt: '>',
  gte: '>=',
};

function vkey(v: Scalar): string {
  // parseSelector already rejected operands without a key.
  return versionKey(String(v)) as string;
}

/** Comparison operators over one column expression; `cast` turns an operand into its SQL value. */
function compare(
  expr: SQL,
  op: Op,
  c: { value?: Scalar; values?: Scalar[]; from?: Scalar; to?: Scalar },
  cast: (v: Scalar) => SQL,
): SQL {
  switch (op) {
    case 'eq':
    case 'ne':
    case 'lt':
    case 'lte':
    case 'gt':
    case 'gte':
      return sql`${expr} ${sql.raw(CMP[op])} ${cast(c.value as Scalar)}`;
    case 'in':
      return sql`${expr} in (${sql.join((c.values ?? []).map(cast), sql`, `)})`;
    case 'notIn':
      return sql`${expr} not in (${sql.join((c.values ?? []).map(cast), sql`, `)})`;
    case 'between':
      return sql`${expr} between ${cast(c.from as Scalar)} and ${cast(c.to as Scalar)}`;
    default:
      throw new Error(`operator ${op} is not a plain comparison`);
  }
}

const VERSION_CMP = { versionLt: '<', versionLte: '<=', versionGt: '>', versionGte: '>=' } as const;

function versionCompare(keyExpr: SQL, c: { op: Op; value?: Scalar; from?: Scalar; to?: Scalar }): SQL {
  if (c.op === 'versionBetween') {
    return sql`${keyExpr} between ${vkey(c.from as Scalar)} and ${vkey(c.to as Scalar)}`;
  }
  const o = VERSION_CMP[c.op as keyof typeof VERSION_CMP];
  return sql`${keyExpr} ${sql.raw(o)} ${vkey(c.value as Scalar)}`;
}

function prefixRange(expr: SQL, p: string): SQL {
  const upper = prefixUpperBound(p);
  return upper === null ? sql`${expr} >= ${p}` : sql`(${expr} >= ${p} and ${expr} < ${upper})`;
}

function fieldPredicate(c: FieldCondition): SQL {
  const def = FIELDS[c.field];
  const e = col(def.column);
  if (c.op === 'exists') return c.value ? sql`${e} is not null` : sql`${e} is null`;
  switch (def.kind) {
    case 'tags':
      if (c.op === 'has') return sql`${e} @> array[${String(c.value)}]::text[]`;
      if (c.op === 'hasAll')
        return sql`${e} @> array[${sql.join(
          (c.values ?? []).map((v) => sql`${String(v)}`),
          sql`, `,
        )}]::text[]`;
      return sql`${e} && array[${sql.join(
        (c.values ?? []).map((v) => sql`${String(v)}`),
        sql`, `,
      )}]::text[]`;
    case 'time':
      return compare(e, c.op, c, (v) => sql`${String(v)}::timestamptz`);
    case 'integer':
      return compare(e, c.op, c, (v) => sql`${Number(v)}::int`);
    default:
      if (c.op.startsWith('version')) return versionCompare(col('software_version_key'), c);
      // starts_with is exact under every collation; these columns use the database's default one.
      if (c.op === 'prefix') return sql`starts_with(${e}, ${String(c.value)})`;
      return compare(e, c.op, c, (v) => sql`${String(v)}`);
  }
}

/** Semi-join on the last known value of one parameter path. */
function paramPredicate(c: ParamCondition, catalog: ParameterCatalog | undefined): SQL {
  const type = catalog?.typeOf(c.param);
  if (type === undefined) throw new Error(`parameter ${c.param} was not validated against a catalog`);
  const has = (cond: SQL) =>
    sql`d."id" in (select p."device_id" from "device_parameters" p where p."path" = ${c.param} and ${cond})`;
  if (c.op === 'exists') {
    const any = sql`d."id" in (select p."device_id" from "device_parameters" p where p."path" = ${c.param})`;
    return c.value ? any : sql`not (${any})`;
  }
  return has(paramValueCondition(c, type));
}

function paramValueCondition(c: ParamCondition, type: ParamType): SQL {
  if (type === 'boolean') return compare(sql`p."value_bool"`, c.op, c, (v) => sql`${Boolean(v)}`);
  if (type === 'dateTime')
    return compare(sql`p."value_time"`, c.op, c, (v) => sql`${String(v)}::timestamptz`);
  if (NUMERIC_TYPES.has(type)) return compare(sql`p."value_num"`, c.op, c, (v) => sql`${String(v)}::numeric`);
  if (c.op.startsWith('version')) return versionCompare(sql`p."version_key"`, c);
  // Text: the index covers left(value, N); compare that first (index), then the full value when needed.
  const head = sql.raw(`left(p."value", ${VALUE_INDEX_CHARS})`);
  const clip = (v: Scalar) => String(v).slice(0, VALUE_INDEX_CHARS);
  const long = (v: Scalar) => String(v).length >= VALUE_INDEX_CHARS;
  switch (c.op) {
    case 'prefix': {
      const p = String(c.value);
      return p.length > VALUE_INDEX_CHARS
        ? sql`${prefixRange(head, clip(p))} and starts_with(p."value", ${p})`
        : prefixRange(head, p);
    }
    case 'eq':
      return long(c.value as Scalar)
        ? sql`${head} = ${clip(c.value as Scalar)} and p."value" = ${String(c.value)}`
        : sql`${head} = ${String(c.value)}`;
    case 'in': {
      const vals = c.values ?? [];
      const exact = vals.some(long)
        ? sql` and p."value" in (${sql.join(
            vals.map((v) => sql`${String(v)}`),
            sql`, `,
          )})`
        : sql``;
      return sql`${head} in (${sql.join(
        vals.map((v) => sql`${clip(v)}`),
        sql`, `,
      )})${exact}`;
    }
    default:
      return compare(sql`p."value"`, c.op, c, (v) => sql`${String(v)}`);
  }
}

function lastContactPredicate(c: LastContactCondition, now: Date, perRow: boolean): SQL {
  const lc = c.lastContact;
  const nowP = sql`${now.toISOString()}::timestamptz`;
  if ('seenWithinSeconds' in lc) {
    return sql`d."last_contact_at" >= ${nowP} - make_interval(secs => ${lc.seenWithinSeconds})`;
  }
  if ('notSeenForSeconds' in lc) {
    return sql`(d."last_contact_at" is null or d."last_contact_at" < ${nowP} - make_interval(secs => ${lc.notSeenForSeconds}))`;
  }
  // Per row, the same condition as the id subquery below (never seen, or silent for n of its intervals);
  // inside an aggregate over a million rows the subquery would be rescanned per row.
  if (perRow)
    return sql`(d."last_contact_at" is null or (d."periodic_inform_interval_s" is not null
      and d."last_contact_at" < ${nowP} - make_interval(secs => d."periodic_inform_interval_s" * ${lc.notSeenForIntervals}::float8)))`;
  return sql`d."id" in (${notSeenForIntervalsIds(lc.notSeenForIntervals, nowP)})`;
}

/**
 * Ids of devices not seen for `n` of their own intervals, or never seen (disjoint branches, no
 * duplicates). A loose index scan finds the few distinct intervals, then one index range per interval
 * on (periodic_inform_interval_s, last_contact_at); "offset 0" keeps PostgreSQL from flattening the
 * lateral into a hash join over the whole table. Never-seen devices join through the same IN, not an
 * OR, so the whole condition stays one semi-join.
 */
function notSeenForIntervalsIds(n: number, nowP: SQL): SQL {
  return sql`
    select "id" from "devices" where "last_contact_at" is null
    union all
    select x."id" from (
      with recursive iv(s) as (
        (select "periodic_inform_interval_s" from "devices" where "periodic_inform_interval_s" is not null
          order by 1 limit 1)
        union all
        select (select "periodic_inform_interval_s" from "devices" where "periodic_inform_interval_s" > iv.s
          order by 1 limit 1) from iv where iv.s is not null
      )
      select s from iv where s is not null
    ) iv cross join lateral (
      select "id" from "devices" where "periodic_inform_interval_s" = iv.s
        and "last_contact_at" < ${nowP} - make_interval(secs => iv.s * ${n}::float8)
      offset 0
    ) x`;
}

function eventPredicate(c: EventCountCondition, now: Date): SQL {
  const e = c.events;
  const nowP = sql`${now.toISOString()}::timestamptz`;
  const extra: SQL[] = [];
  if (e.eventCode !== undefined) extra.push(sql`e."payload"->'eventCodes' ? ${e.eventCode}`);
  if (e.failed !== undefined) {
    extra.push(
      e.failed
        ? sql`e."payload"->>'faultCode' <> '0' and (e."payload"->>'faultCode')::int <> 0`
        : sql`(e."payload"->>'faultCode')::int = 0`,
    );
  }
  const where = sql.join(
    [
      sql`e."kind" = ${e.kind}`,
      // A constant lower bound (not now - interval) lets the planner prune partitions while planning.
      sql`e."at" > ${new Date(now.getTime() - e.withinSeconds * 1000).toISOString()}::timestamptz`,
      sql`e."at" <= ${nowP}`,
      ...extra,
    ],
    sql` and `,
  );
  const o = CMP[e.op];
  const zeroMatches = {
    eq: 0 === e.count,
    ne: 0 !== e.count,
    lt: 0 < e.count,
    lte: true,
    gt: false,
    gte: e.count === 0,
  }[e.op];
  // Devices without events never appear in the grouped subquery: when a count of 0 satisfies the
  // condition, select the complement of the devices whose count does not.
  if (zeroMatches) {
    return sql`d."id" not in (select e."device_id" from "device_events" e where ${where}
      group by e."device_id" having not (count(*) ${sql.raw(o)} ${e.count}))`;
  }
  return sql`d."id" in (select e."device_id" from "device_events" e where ${where}
    group by e."device_id" having count(*) ${sql.raw(o)} ${e.count})`;
}

export function compileWhere(s: Selector, ctx: CompileContext): SQL {
  if ('all' in s) return sql`true`;
  if ('and' in s)
    return sql`(${sql.join(
      s.and.map((x) => compileWhere(x, ctx)),
      sql` and `,
    )})`;
  if ('or' in s)
    return sql`(${sql.join(
      s.or.map((x) => compileWhere(x, ctx)),
      sql` or `,
    )})`;
  // NULL-safe negation: a device whose field is NULL does not match "eq" and so matches its "not".
  if ('not' in s) return sql`not coalesce(${compileWhere(s.not, ctx)}, false)`;
  if ('field' in s) return fieldPredicate(s);
  if ('param' in s) return paramPredicate(s, ctx.catalog);
  if ('lastContact' in s) return lastContactPredicate(s, ctx.now, ctx.perRow ?? false);
  return eventPredicate(s, ctx.now);
}

/**
 * Columns with an index on (column, id): one value's devices come out of the index in id order, so a
 * range over such a column can be read as a merge of per-value index ranges instead of a sort.
 */
const ID_ORDERED_COLUMNS: ReadonlySet<string> = new Set([
  'product_class',
  'software_version',
  'software_version_key',
  'region',
  'protocol',
]);
const SPLIT_OPS: ReadonlySet<Op> = new Set(['in', 'prefix', 'between', 'lt', 'lte', 'gt', 'gte']);

/** A range condition over an id-ordered column (see compileOrderedIds). */
export interface SplitColumn {
  column: string;
  /** The conjunct itself, a predicate over `devices d`. */
  range: SQL;
}

/**
 * When `s` is a lone range condition over an id-ordered column: that column and the condition.
 * Equality needs no split (its index range is already in id order). Combinations are not split: each
 * branch would repeat the other conditions' index scans, and their matches are usually few enough to
 * sort.
 */
export function splitColumn(s: Selector): SplitColumn | undefined {
  if (!('field' in s)) return undefined;
  const def = FIELDS[s.field];
  const version = s.op.startsWith('version');
  const column = version ? 'software_version_key' : def.column;
  if (!ID_ORDERED_COLUMNS.has(column)) return undefined;
  if (!version && !SPLIT_OPS.has(s.op)) return undefined;
  return { column, range: fieldPredicate(s) };
}

/**
 * The distinct values of `split.column` satisfying its range, by a loose index scan (one index descent
 * per value), at most `limit` of them.
 */
export function splitValuesQuery(split: SplitColumn, limit: number): SQL {
  const c = sql.raw(`d."${split.column}"`);
  return sql`with recursive v(x) as (
      (select ${c} from "devices" d where ${split.range} order by 1 limit 1)
      union all
      select (select ${c} from "devices" d where ${split.range} and ${c} > v.x order by 1 limit 1)
      from v where v.x is not null
    )
    select x as "value" from v where x is not null limit ${limit}`;
}

/**
 * A query returning the matching device ids (column "id") in id order, shaped so that PostgreSQL can
 * produce that order from indexes instead of sorting every match:
 * - with `split` (the distinct values of splitColumn(s), read in the same snapshot): a merge of one
 *   id-ordered branch per value, each "column = value and <the whole predicate>". Every match has
 *   exactly one of those values, so the branches are disjoint and together complete;
 * - a lone parameter condition reads device_parameters alone: (device_id, path) is its primary key
 *   and device_id references devices, so each id is a device and appears once, and an equality comes
 *   out of the (path, value, device_id) indexes in id order;
 * - a lone "not seen for N intervals" reads its own id subquery without joining devices again;
 * - anything else: the predicate over devices, sorted.
 */
export function compileOrderedIds(
  s: Selector,
  ctx: CompileContext,
  split?: { column: string; values: readonly string[] },
): SQL {
  return compileIds(s, ctx, { ordered: true, split });
}

/**
 * The matching device ids (column "id"), each once; in id order when `ordered` (see
 * compileOrderedIds). Unordered, it is what a count reads: the same sources without any sort.
 */
export function compileIds(
  s: Selector,
  ctx: CompileContext,
  opts: { ordered: boolean; split?: { column: string; values: readonly string[] } },
): SQL {
  const { split } = opts;
  const order = (by: string) => (opts.ordered ? sql.raw(` order by ${by}`) : sql``);
  if (split) {
    if (split.values.length === 0) return sql`select d."id" from "devices" d where false`;
    const w = compileWhere(s, ctx);
    const c = sql.raw(`d."${split.column}"`);
    // "offset 0" keeps each branch a subquery whose id order PostgreSQL knows, so it merges them.
    const branches = split.values.map(
      (v) =>
        sql`select * from (select d."id" from "devices" d where ${c} = ${v} and ${w} order by d."id" offset 0) b`,
    );
    return sql`select u."id" from (${sql.join(branches, sql` union all `)}) u order by u."id"`;
  }
  if ('param' in s && !(s.op === 'exists' && !s.value)) {
    const type = ctx.catalog?.typeOf(s.param);
    if (type === undefined) throw new Error(`parameter ${s.param} was not validated against a catalog`);
    const cond = s.op === 'exists' ? sql`true` : paramValueCondition(s, type);
    return sql`select p."device_id" as "id" from "device_parameters" p
      where p."path" = ${s.param} and ${cond}${order('p."device_id"')}`;
  }
  if ('lastContact' in s && 'notSeenForIntervals' in s.lastContact) {
    const nowP = sql`${ctx.now.toISOString()}::timestamptz`;
    return sql`select x."id" from (${notSeenForIntervalsIds(s.lastContact.notSeenForIntervals, nowP)}) x${order('x."id"')}`;
  }
  return sql`select d."id" from "devices" d where ${compileWhere(s, ctx)}${order('d."id"')}`;
}
