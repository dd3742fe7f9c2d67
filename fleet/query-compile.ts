import { type SQL, sql } from 'drizzle-orm';
import type { ParameterCatalog } from './catalog.js';
import { compileWhere } from './compile.js';
import type { DbOrTx } from './db.js';
import { FIELDS } from './fields.js';
import type { GroupKey, Query } from './query.js';
import { countDevices, readOnly } from './resolve.js';

/**
 * Compiles a parsed query to one parameterised SELECT over `devices d` (joined to the parameter or event
 * table for those measures). Identifiers come only from the constant field table; every value is bound.
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
  if (k === 'faultCode') return sql.raw(`(e."payload"->>'faultCode')`);
  return sql.raw(`d."${FIELDS[k].column}"`);
}

/** The expression ordering a key: semantic-version order for firmware, text order otherwise. */
function sortExpr(k: GroupKey): SQL {
  if (k === 'softwareVersion') return sql.raw('d."software_version_key"');
  if (k === 'faultCode') return sql.raw(`(e."payload"->>'faultCode')::int`);
  return keyExpr(k);
}

export function compileQuery(q: Query, opts: QueryRunOptions = {}): SQL {
  const now = opts.now ?? new Date();
  const ctx = { now, catalog: opts.catalog };
  const nowP = sql`${now.toISOString()}::timestamptz`;
  let join = sql``;
  let value: SQL;
  const m = q.measure;
  if (m === 'count') value = sql`count(*)::float8`;
  else if ('share' in m)
    value = sql`avg(case when ${compileWhere(m.share, { ...ctx, perRow: true })} then 1.0 else 0.0 end)::float8`;
  else if ('events' in m) {
    const e = m.events;
    const extra: SQL[] = [];
    if (e.eventCode !== undefined) extra.push(sql` and e."payload"->'eventCodes' ? ${e.eventCode}`);
    if (e.failed !== undefined)
      extra.push(
        e.failed
          ? sql` and (e."payload"->>'faultCode')::int <> 0`
          : sql` and (e."payload"->>'faultCode')::int = 0`,
      );
    join = sql` join "device_events" e on e."device_id" = d."id" and e."kind" = ${e.kind}
      and e."at" > ${nowP} - make_interval(secs => ${e.withinSeconds}) and e."at" <= ${nowP}${sql.join(extra, sql``)}`;
    value = sql`count(*)::float8`;
  } else {
    const [agg, path] = Object.entries(m)[0] as ['avg' | 'min' | 'max', string];
    join = sql` join "device_parameters" p on p."device_id" = d."id" and p."path" = ${path} and p."value_num" is not null`;
    value = sql`${sql.raw(agg)}(p."value_num")::float8`;
  }
  const keys = q.groupBy.map((k, i) => sql`${keyExpr(k)} as ${sql.raw(`k${i}`)}`);
  const groupCols = q.groupBy.flatMap((k) =>
    k === 'softwareVersion' ? [keyExpr(k), sortExpr(k)] : [keyExpr(k)],
  );
  const select = sql.join([...keys, sql`${value} as value`], sql`, `);
  const groupBy = groupCols.length ? sql` group by ${sql.join(groupCols, sql`, `)}` : sql``;
  const having = q.having ? sql` having ${value} ${sql.raw(CMP[q.having.op])} ${q.having.value}` : sql``;
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
  const cap = opts.rowCap ?? 1000;
  const limit = Math.min(q.limit ?? cap, cap) + 1;
  return sql`select ${select} from "devices" d${join} where ${compileWhere(q.where, ctx)}${groupBy}${having}${order} limit ${limit}`;
}

/** Runs a query read-only with a statement timeout; never returns more than the row cap. */
export async function runQuery(db: DbOrTx, q: Query, opts: QueryRunOptions = {}): Promise<QueryResult> {
  const cap = opts.rowCap ?? 1000;
  const want = Math.min(q.limit ?? cap, cap);
  // A plain count is the selector's count, which reads the cheapest source (an index, or the
  // parameter rows alone) instead of joining every device.
  if (q.measure === 'count' && q.groupBy.length === 0) {
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
