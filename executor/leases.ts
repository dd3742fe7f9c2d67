import type pg from 'pg';
import type { LeaseInfo } from './executor.js';

/** Anything that runs a query: a pool or a client inside a transaction. */
export type Queryable = Pick<pg.Pool, 'query'> | Pick<pg.PoolClient, 'query'>;

export interface LeaseGrant {
  granted: string[];
  held: Array<{ deviceId: string; holder: string; expiresAt: string }>;
}

/**
 * Take or extend the lease of each device for `owner`. A lease held by another owner is only taken
 * over once it expired. One statement, so concurrent callers cannot both win a device.
 */
export async function acquireLeases(
  q: Queryable,
  owner: string,
  deviceIds: string[],
  expiresAt: Date,
): Promise<LeaseGrant> {
  if (deviceIds.length === 0) return { granted: [], held: [] };
  const won = await q.query<{ device_id: string }>(
    `INSERT INTO executor_leases (device_id, owner, acquired_at, expires_at)
     SELECT d, $2, now(), $3 FROM unnest($1::text[]) AS d
     ON CONFLICT (device_id) DO UPDATE
       SET owner = EXCLUDED.owner,
           acquired_at = CASE WHEN executor_leases.owner = EXCLUDED.owner THEN executor_leases.acquired_at ELSE now() END,
           expires_at = GREATEST(EXCLUDED.expires_at, CASE WHEN executor_leases.owner = EXCLUDED.owner THEN executor_leases.expires_at ELSE EXCLUDED.expires_at END)
       WHERE executor_leases.owner = EXCLUDED.owner OR executor_leases.expires_at <= now()
     RETURNING device_id`,
    [deviceIds, owner, expiresAt],
  );
  const granted = new Set(won.rows.map((r) => r.device_id));
  const missing = deviceIds.filter((d) => !granted.has(d));
  let held: LeaseGrant['held'] = [];
  if (missing.length > 0) {
    const r = await q.query<{ device_id: string; owner: string; expires_at: Date }>(
      `SELECT device_id, owner, expires_at FROM executor_leases WHERE device_id = ANY($1::text[])`,
      [missing],
    );
    held = r.rows.map((x) => ({
      deviceId: x.device_id,
      holder: x.owner,
      expiresAt: x.expires_at.toISOString(),
    }));
  }
  return { granted: [...granted], held };
}

/** Release the owner's leases (all of them, or on the given devices). */
export async function releaseLeases(q: Queryable, owner: string, deviceIds?: string[]): Promise<number> {
  const r = deviceIds
    ? await q.query(`DELETE FROM executor_leases WHERE owner = $1 AND device_id = ANY($2::text[])`, [
        owner,
        deviceIds,
      ])
    : await q.query(`DELETE FROM executor_leases WHERE owner = $1`, [owner]);
  return r.rowCount ?? 0;
}

export async function listLeases(q: Queryable, deviceIds: string[]): Promise<LeaseInfo[]> {
  const r = await q.query<{ device_id: string; owner: string; acquired_at: Date; expires_at: Date }>(
    `SELECT device_id, owner, acquired_at, expires_at FROM executor_leases
     WHERE device_id = ANY($1::text[]) AND expires_at > now() ORDER BY device_id`,
    [deviceIds],
  );
  return r.rows.map((x) => ({
    deviceId: x.device_id,
    owner: x.owner,
    acquiredAt: x.acquired_at.toISOString(),
    expiresAt: x.expires_at.toISOString(),
  }));
}

/** Drop expired leases (housekeeping; expired leases are already ignored by `acquireLeases`). */
export async function purgeExpiredLeases(q: Queryable): Promise<number> {
  const r = await q.query(`DELETE FROM executor_leases WHERE expires_at <= now()`);
  return r.rowCount ?? 0;
}
