import { type SQL, sql } from 'drizzle-orm';
import { PgDialect } from 'drizzle-orm/pg-core';
import type pg from 'pg';
import { detectFleetConflicts, type FleetConflicts, type FleetProfile } from '../domain/profiles/fleet.js';
import type { Decision, PrecedenceRule } from '../domain/profiles/precedence.js';
import type { Profile } from '../domain/profiles/profile.js';
import type { ParameterCatalog } from '../fleet/catalog.js';
import { compileWhere } from '../fleet/compile.js';
import { parseSelector } from '../fleet/selector.js';

/**
 * Plan-time conflict detection over the fleet in PostgreSQL. All selectors are resolved in one read-only,
 * repeatable-read transaction (one snapshot): device ids once in id order, then each selector as a
 * '0'/'1' string over that order, many selectors per table scan. The dense index of a device is its
 * position in id order, which is what the pure engine works on.
 */

export interface Memberships {
  ids: string[];
  members: Uint32Array[];
}

const PER_SCAN = 25;

export async function resolveMemberships(
  pool: pg.Pool,
  selectors: readonly unknown[],
  opts: { now: Date; catalog?: ParameterCatalog; statementTimeoutMs?: number; perScan?: number },
): Promise<Memberships> {
  const dialect = new PgDialect();
  const wheres = selectors.map((s) => compileWhere(parseSelector(s, { catalog: opts.catalog }), opts));
  const perScan = opts.perScan ?? PER_SCAN;
  const begin = `begin isolation level repeatable read read only`;
  const timeout = `set local statement_timeout = ${Math.max(1, Math.floor(opts.statementTimeoutMs ?? 60_000))}`;
  const lead = await pool.connect();
  try {
    await lead.query(begin);
    await lead.query(timeout);
    // Every scan reads the lead's snapshot, so ids and memberships describe one fleet state.
    const snap = (await lead.query<{ s: string }>('select pg_export_snapshot() as s')).rows[0]?.s;
    const idRows = await lead.query<{ ids: string | null }>(
      `select string_agg(s."id", E'\n') as ids from (select "id" from "devices" order by "id") s`,
    );
    const all = idRows.rows[0]?.ids;
    const ids = all ? all.split('\n') : [];
    const chunks: SQL[][] = [];
    for (let start = 0; start < wheres.length; start += perScan)
      chunks.push(wheres.slice(start, start + perScan));
    const results = await Promise.all(
      chunks.map(async (chunk) => {
        const cols = chunk.map(
          (w, i) => sql`string_agg(case when ${w} then '1' else '0' end, '') as ${sql.raw(`b${i}`)}`,
        );
        const q = dialect.sqlToQuery(
          sql`select ${sql.join(cols, sql`, `)} from (select * from "devices" order by "id") d`,
        );
        const c = await pool.connect();
        try {
          await c.query(begin);
          await c.query(`set transaction snapshot '${snap}'`);
          await c.query(timeout);
          const r = await c.query<Record<string, string | null>>(q.sql, q.params);
          await c.query('commit');
          const row = r.rows[0] ?? {};
          return chunk.map((_, i) => bitsToIndices(row[`b${i}`] ?? ''));
        } catch (e) {
          await c.query('rollback').catch(() => undefined);
          throw e;
        } finally {
          c.release();
        }
      }),
    );
    await lead.query('commit');
    const members = results.flat();
    for (const m of members) {
      const last = m[m.length - 1];
      if (last !== undefined && last >= ids.length)
        throw new Error('selector resolution and id list disagree');
    }
    return { ids, members };
  } catch (e) {
    await lead.query('rollback').catch(() => undefined);
    throw e;
  } finally {
    lead.release();
  }
}

function bitsToIndices(bits: string): Uint32Array {
  let n = 0;
  for (let i = 0; i < bits.length; i++) if (bits.charCodeAt(i) === 49) n++;
  const out = new Uint32Array(n);
  let k = 0;
  for (let i = 0; i < bits.length; i++) if (bits.charCodeAt(i) === 49) out[k++] = i;
  return out;
}

export interface DbConflicts extends FleetConflicts {
  ids: string[];
  memberships: Memberships;
  /** Seconds spent resolving selectors in PostgreSQL (the rest is the engine). */
  resolveSeconds: number;
}

/** Resolves every profile's selector once and finds all conflicts across the fleet. */
export async function detectConflictsInDb(
  pool: pg.Pool,
  profiles: readonly Profile[],
  opts: {
    now: Date;
    catalog?: ParameterCatalog;
    rules?: readonly PrecedenceRule[];
    decisions?: readonly Decision[];
    sampleSize?: number;
    perScan?: number;
  },
): Promise<DbConflicts> {
  const t0 = performance.now();
  const memberships = await resolveMemberships(
    pool,
    profiles.map((p) => p.selector),
    opts,
  );
  const resolveSeconds = (performance.now() - t0) / 1000;
  const fleet: FleetProfile[] = profiles.map((profile, i) => ({
    profile,
    members: memberships.members[i] as Uint32Array,
  }));
  const res = detectFleetConflicts({
    deviceCount: memberships.ids.length,
    profiles: fleet,
    now: opts.now,
    rules: opts.rules,
    decisions: opts.decisions,
    sampleSize: opts.sampleSize,
  });
  return { ...res, ids: memberships.ids, memberships, resolveSeconds };
}
