import type pg from 'pg';

/**
 * Fleet health (ARCHITECTURE "Seams"): the executor writes one row every few seconds — ACS accepting
 * sessions, inform rate against the last hour's baseline, database writable. A row older than
 * `maxAgeMs` reads as unhealthy, so a dead executor can never look healthy to a rollout gate.
 */
export interface HealthProbe {
  accepting: boolean;
  /** Informs in the last full minute. */
  informsLastMinute: number;
  /** Mean informs per minute over the last hour (excluding the current minute). */
  baselinePerMinute: number;
  activeSessions: number;
}

export interface HealthRow {
  component: string;
  healthy: boolean;
  at: Date;
  details: Record<string, unknown>;
}

/** A drop below this share of the baseline means CPEs stopped reaching us (outage upstream). */
export const MIN_RATE_SHARE = 0.2;
/** Below this baseline the rate says nothing (small or idle fleets). */
export const MIN_BASELINE_PER_MINUTE = 10;

export function assess(p: HealthProbe): { healthy: boolean; reasons: string[] } {
  const reasons: string[] = [];
  if (!p.accepting) reasons.push('ACS not accepting sessions');
  if (
    p.baselinePerMinute >= MIN_BASELINE_PER_MINUTE &&
    p.informsLastMinute < MIN_RATE_SHARE * p.baselinePerMinute
  )
    reasons.push(
      `inform rate ${p.informsLastMinute}/min below ${MIN_RATE_SHARE} × baseline ${p.baselinePerMinute.toFixed(1)}/min`,
    );
  return { healthy: reasons.length === 0, reasons };
}

export async function writeHealth(pool: pg.Pool, component: string, p: HealthProbe): Promise<HealthRow> {
  const { healthy, reasons } = assess(p);
  const details = { ...p, reasons };
  const r = await pool.query<{ at: Date }>(
    `INSERT INTO fleet_health (component, at, healthy, details) VALUES ($1, now(), $2, $3::jsonb)
     ON CONFLICT (component) DO UPDATE SET at = excluded.at, healthy = excluded.healthy, details = excluded.details
     RETURNING at`,
    [component, healthy, JSON.stringify(details)],
  );
  return { component, healthy, at: r.rows[0]!.at, details };
}

/** Read a component's health; missing or stale rows read as unhealthy. */
export async function readHealth(pool: pg.Pool, component: string, maxAgeMs = 15_000): Promise<HealthRow> {
  const r = await pool.query<{
    at: Date;
    healthy: boolean;
    details: Record<string, unknown>;
    age_ms: number;
  }>(
    `SELECT at, healthy, details, extract(epoch from (now() - at)) * 1000 AS age_ms FROM fleet_health WHERE component = $1`,
    [component],
  );
  const row = r.rows[0];
  if (!row) return { component, healthy: false, at: new Date(0), details: { reasons: ['no health row'] } };
  if (Number(row.age_ms) > maxAgeMs)
    return {
      component,
      healthy: false,
      at: row.at,
      details: { ...row.details, reasons: [`stale: ${Math.round(Number(row.age_ms))} ms old`] },
    };
  return { component, healthy: row.healthy, at: row.at, details: row.details };
}

/** Per-minute inform counts → the probe's rate figures. */
export function rates(
  perMinute: ReadonlyMap<number, number>,
  now = Date.now(),
): Pick<HealthProbe, 'informsLastMinute' | 'baselinePerMinute'> {
  const current = Math.floor(now / 60_000);
  const last = perMinute.get(current - 1) ?? 0;
  let sum = 0;
  let minutes = 0;
  for (let m = current - 60; m < current; m++) {
    const v = perMinute.get(m);
    if (v !== undefined || minutes > 0) {
      sum += v ?? 0;
      minutes += 1;
    }
  }
  return { informsLastMinute: last, baselinePerMinute: minutes > 0 ? sum / minutes : 0 };
}

/** Write the row every `intervalMs`; a failed write is logged by the caller's onError (the row goes stale). */
export function startHealthWriter(
  pool: pg.Pool,
  component: string,
  probe: () => HealthProbe,
  opts: { intervalMs?: number; onError?: (err: unknown) => void } = {},
): () => void {
  const tick = () => writeHealth(pool, component, probe()).catch((e) => opts.onError?.(e));
  void tick();
  const t = setInterval(tick, opts.intervalMs ?? 5_000);
  t.unref();
  return () => clearInterval(t);
}
