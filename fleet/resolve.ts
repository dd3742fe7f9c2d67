import { createHash } from 'node:crypto';
import { type SQL, sql } from 'drizzle-orm';
import type { ParameterCatalog } from './catalog.js';
import { compileIds, compileOrderedIds, compileWhere, splitColumn, splitValuesQuery } from './compile.js';
import type { DbOrTx } from './db.js';
import { DEVICE_ID_MAX_CHARS } from './devices.js';
import { FIELDS, type StratumField } from './fields.js';
import type { Selector } from './selector.js';

/**
 * Runs compiled selectors: always inside a READ ONLY transaction with a statement timeout, so no
 * selector, however written, can change data or hold the database for long.
 */
export interface ReadOptions {
  /** "Now" for relative conditions (last contact, event windows). Default: the current time. */
  now?: Date;
  catalog?: ParameterCatalog;
  /** Per-statement limit; default 10 s. */
  statementTimeoutMs?: number;
}

export class RowCapExceeded extends Error {
  constructor(readonly cap: number) {
    super(`selector matches more than ${cap} devices; narrow it or raise the row cap`);
    this.name = 'RowCapExceeded';
  }
}

const DEFAULT_TIMEOUT_MS = 10_000;
const SELECT_WORK_MEM = '64MB';
/** Beyond this many distinct values a range is read with one sort instead of a merge of index ranges. */
const MAX_SPLIT_VALUES = 256;

/** Runs `fn` in a read-only transaction with a statement timeout; refuses to run nested in a writer. */
export async function readOnly<T>(db: DbOrTx, timeoutMs: number, fn: (tx: DbOrTx) => Promise<T>): Promise<T> {
  return db.transaction(
    async (tx) => {
      const ro = await tx.execute<{ ro: string }>(
        // JIT compilation costs more than it saves on index-driven selector queries. A selection's
        // sort or id list (a few hundred thousand ids) must not spill to disk under the default work_mem.
        sql`select set_config('statement_timeout', ${String(Math.max(1, Math.floor(timeoutMs)))}, true),
                   set_config('jit', 'off', true),
                   set_config('work_mem', ${SELECT_WORK_MEM}, true),
                   current_setting('transaction_read_only') as ro`,
      );
      if (ro.rows[0]?.ro !== 'on') throw new Error('selector queries must run in a read-only transaction');
      return fn(tx);
    },
    // Repeatable read: a resolution may take two statements (fleet/compile.ts splitColumn), and both
    // must see the same snapshot.
    { accessMode: 'read only', isolationLevel: 'repeatable read' },
  );
}

function where(selector: Selector, opts: ReadOptions): SQL {
  return compileWhere(selector, { now: opts.now ?? new Date(), catalog: opts.catalog });
}

/** The SQL text and parameters a selector compiles to (for tests and `--explain`). */
export function selectorQuery(selector: Selector, opts: ReadOptions = {}): SQL {
  return sql`select d."id" from "devices" d where ${where(selector, opts)} order by d."id"`;
}

/**
 * The device-set hash, the one definition (approvals bind to it): sha-256 (lowercase hex) of the UTF-8
 * bytes of the distinct device ids sorted byte-wise and joined by "\n" (no trailing newline); the empty
 * set hashes the empty string. Ids are printable ASCII without spaces (DeviceId), so the joined text is
 * unambiguous. setHashSql computes the same in PostgreSQL.
 */
export function deviceSetHash(ids: readonly string[]): string {
  const sorted = [...new Set(ids)].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  return createHash('sha256').update(sorted.join('\n'), 'utf8').digest('hex');
}

/**
 * Count, device-set hash and the first `sampleSize` ids of an id-ordered query (compileOrderedIds) in
 * one pass: the ids are joined once (string_agg reads the ordered subquery in its order), hashed, and
 * the sample is cut from the head of the joined text (ids are at most DEVICE_ID_MAX_CHARS characters
 * and contain no newline, so the first n ids lie within n * (max + 1) characters).
 */
function setHashSql(orderedIds: SQL, sampleSize: number): SQL {
  const n = Math.max(0, Math.floor(sampleSize));
  return sql`select a.n, encode(sha256(convert_to(a.t, 'UTF8')), 'hex') as h,
      (string_to_array(left(a.t, ${n * (DEVICE_ID_MAX_CHARS + 1)}), E'\n'))[1:${n}] as sample
    from (select count(*) as n, coalesce(string_agg(s."id", E'\n'), '') as t from (${orderedIds}) s) a`;
}

/** The matching ids in id order, merged from per-value index ranges when the selector allows it. */
async function orderedIds(tx: DbOrTx, selector: Selector, opts: ReadOptions): Promise<SQL> {
  const ctx = { now: opts.now ?? new Date(), catalog: opts.catalog };
  const split = splitColumn(selector);
  if (split) {
    const r = await tx.execute<{ value: string }>(splitValuesQuery(split, MAX_SPLIT_VALUES + 1));
    if (r.rows.length <= MAX_SPLIT_VALUES)
      return compileOrderedIds(selector, ctx, { column: split.column, values: r.rows.map((x) => x.value) });
  }
  return compileOrderedIds(selector, ctx);
}

export async function countDevices(db: DbOrTx, selector: Selector, opts: ReadOptions = {}): Promise<number> {
  const ids = compileIds(
    selector,
    { now: opts.now ?? new Date(), catalog: opts.catalog },
    { ordered: false },
  );
  return readOnly(db, opts.statementTimeoutMs ?? DEFAULT_TIMEOUT_MS, async (tx) => {
    const r = await tx.execute<{ n: string }>(sql`select count(*) as n from (${ids}) s`);
    return Number(r.rows[0]?.n ?? 0);
  });
}

export interface Preview {
  count: number;
  /** The first device ids in id order. */
  sample: string[];
}

/** Count and a sample: the cheap answer for "how many and which, roughly". */
export async function previewSelector(
  db: DbOrTx,
  selector: Selector,
  opts: ReadOptions & { sampleSize?: number } = {},
): Promise<Preview> {
  const all = compileIds(
    selector,
    { now: opts.now ?? new Date(), catalog: opts.catalog },
    { ordered: false },
  );
  return readOnly(db, opts.statementTimeoutMs ?? DEFAULT_TIMEOUT_MS, async (tx) => {
    const c = await tx.execute<{ n: string }>(sql`select count(*) as n from (${all}) s`);
    const ordered = await orderedIds(tx, selector, opts);
    const s = await tx.execute<{ id: string }>(
      sql`select s."id" from (${ordered}) s limit ${opts.sampleSize ?? 10}`,
    );
    return { count: Number(c.rows[0]?.n ?? 0), sample: s.rows.map((r) => r.id) };
  });
}

export interface DeviceSet {
  count: number;
  /** deviceSetHash of the matching ids, computed in the database (no ids leave it). */
  hash: string;
}

/** Resolves a selector to its device-set hash without transferring the ids. */
export async function resolveDeviceSet(
  db: DbOrTx,
  selector: Selector,
  opts: ReadOptions = {},
): Promise<DeviceSet> {
  const { count, hash } = await selectDevices(db, selector, { ...opts, sampleSize: 0 });
  return { count, hash };
}

/**
 * All matching ids in id order with their hash. Fails (never truncates) past `rowCap`: a cohort that is
 * silently cut would bind an approval to the wrong devices.
 */
export async function listDeviceIds(
  db: DbOrTx,
  selector: Selector,
  opts: ReadOptions & { rowCap?: number } = {},
): Promise<{ ids: string[]; hash: string }> {
  const cap = opts.rowCap ?? 100_000;
  const ids = await readOnly(db, opts.statementTimeoutMs ?? DEFAULT_TIMEOUT_MS, async (tx) => {
    const r = await tx.execute<{ id: string }>(sql`${selectorQuery(selector, opts)} limit ${cap + 1}`);
    return r.rows.map((x) => x.id);
  });
  if (ids.length > cap) throw new RowCapExceeded(cap);
  return { ids, hash: deviceSetHash(ids) };
}

export interface StratumCount {
  stratum: Record<string, string | null>;
  count: number;
}

/** Per-stratum counts (e.g. by productClass and softwareVersion), largest first, at most `limit` rows. */
export async function countByStrata(
  db: DbOrTx,
  selector: Selector,
  fields: readonly StratumField[],
  opts: ReadOptions & { limit?: number } = {},
): Promise<StratumCount[]> {
  if (fields.length === 0) return [];
  const cols = fields.map((f) => sql.raw(`d."${FIELDS[f].column}"`));
  return readOnly(db, opts.statementTimeoutMs ?? DEFAULT_TIMEOUT_MS, async (tx) => {
    const r = await tx.execute<Record<string, string | null>>(sql`
      select ${sql.join(
        cols.map((c, i) => sql`${c} as ${sql.raw(`s${i}`)}`),
        sql`, `,
      )}, count(*) as n
      from "devices" d where ${where(selector, opts)}
      group by ${sql.join(cols, sql`, `)} order by n desc, ${sql.join(cols, sql`, `)} limit ${opts.limit ?? 100}`);
    return r.rows.map((row) => ({
      stratum: Object.fromEntries(fields.map((f, i) => [f, row[`s${i}`] ?? null])),
      count: Number(row.n),
    }));
  });
}

export interface Selection extends DeviceSet {
  /** The first matching device ids in id order. */
  sample: string[];
}

/**
 * What `fleet select` and `POST /fleet/select` answer: count, device-set hash and a sample, in one
 * read-only transaction (so the three agree), from one id-ordered pass over the matches.
 */
export async function selectDevices(
  db: DbOrTx,
  selector: Selector,
  opts: ReadOptions & { sampleSize?: number } = {},
): Promise<Selection> {
  where(selector, opts); // compile (and so reject) before opening a transaction
  return readOnly(db, opts.statementTimeoutMs ?? DEFAULT_TIMEOUT_MS, async (tx) => {
    const ids = await orderedIds(tx, selector, opts);
    const r = await tx.execute<{ n: string; h: string; sample: string[] | null }>(
      setHashSql(ids, opts.sampleSize ?? 10),
    );
    const row = r.rows[0];
    return { count: Number(row?.n ?? 0), hash: row?.h ?? deviceSetHash([]), sample: row?.sample ?? [] };
  });
}
