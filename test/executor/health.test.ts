import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assess, rates, readHealth, writeHealth } from '../../executor/health.js';
import { createTestDatabase } from '../support/db.js';

describe('fleet health row', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db?.drop();
  });

  it('is healthy when accepting with informs near the baseline, unhealthy on a collapsed rate or refusal', () => {
    expect(
      assess({ accepting: true, informsLastMinute: 90, baselinePerMinute: 100, activeSessions: 3 }).healthy,
    ).toBe(true);
    const drop = assess({ accepting: true, informsLastMinute: 5, baselinePerMinute: 100, activeSessions: 0 });
    expect(drop.healthy).toBe(false);
    expect(drop.reasons[0]).toContain('below');
    expect(
      assess({ accepting: false, informsLastMinute: 90, baselinePerMinute: 100, activeSessions: 2000 })
        .healthy,
    ).toBe(false);
    // Idle fleets have no meaningful baseline.
    expect(
      assess({ accepting: true, informsLastMinute: 0, baselinePerMinute: 2, activeSessions: 0 }).healthy,
    ).toBe(true);
  });

  it('computes the last minute and the hour baseline from per-minute counts', () => {
    const now = 100 * 60_000 + 30_000;
    const m = new Map([
      [97, 60],
      [98, 60],
      [99, 30],
      [100, 999],
    ]);
    expect(rates(m, now)).toEqual({ informsLastMinute: 30, baselinePerMinute: 50 });
  });

  it('reads a fresh row as written and a stale or missing one as unhealthy', async () => {
    expect((await readHealth(db.pool, 'executor:cwmp')).healthy).toBe(false);
    await writeHealth(db.pool, 'executor:cwmp', {
      accepting: true,
      informsLastMinute: 10,
      baselinePerMinute: 10,
      activeSessions: 1,
    });
    expect((await readHealth(db.pool, 'executor:cwmp')).healthy).toBe(true);
    await db.pool.query(
      `UPDATE fleet_health SET at = now() - interval '1 minute' WHERE component = 'executor:cwmp'`,
    );
    const stale = await readHealth(db.pool, 'executor:cwmp', 15_000);
    expect(stale.healthy).toBe(false);
    expect(String((stale.details.reasons as string[])[0])).toMatch(/^stale/);
  });
});
