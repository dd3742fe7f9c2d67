/**
 * The rollout's inform-rate health history on a real PostgreSQL (dbRolloutFleet().observe): devices
 * informing in lock-step must not read as an outage; informs that stop must, and the span they stop
 * in must turn a silent device's outcome into `unknown` instead of `brick`.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { dbRolloutFleet } from '../../activities/rollout.js';
import { deviceEvents, fleetHealth } from '../../db/schema/index.js';
import { classifyOutcome, healthyThroughout } from '../../domain/rollout/outcome.js';
import { upsertDevices } from '../../fleet/devices.js';
import { createTestDatabase } from '../support/db.js';

const STEP = 15_000;
const INTERVAL_S = 30;
const N = 60;
let db: Awaited<ReturnType<typeof createTestDatabase>>;

beforeEach(async () => {
  db = await createTestDatabase();
});
afterEach(async () => {
  await db?.drop();
});

const ids = Array.from({ length: N }, (_, i) => `00D09E-HGW500-LS${String(i).padStart(5, '0')}`);

async function fleet(intervalS: number | undefined) {
  await upsertDevices(
    db.db,
    ids.map((id, i) => ({
      id,
      oui: '00D09E',
      serialNumber: `LS${String(i).padStart(5, '0')}`,
      protocol: 'cwmp' as const,
      productClass: 'HGW-500',
      softwareVersion: '2.1.0',
      ...(intervalS ? { periodicInformIntervalS: intervalS } : {}),
    })),
  );
}

/**
 * Every device informs at the same instant every 30 s (the fleet came back from a storm in phase),
 * from `from` to `to`, except inside `gaps` (the ACS was unreachable).
 */
async function lockStepInforms(from: number, to: number, gaps: Array<[number, number]> = []) {
  const rows: Array<typeof deviceEvents.$inferInsert> = [];
  for (let t = from; t < to; t += INTERVAL_S * 1000) {
    if (gaps.some(([a, b]) => t >= a && t < b)) continue;
    for (const [i, id] of ids.entries())
      rows.push({
        deviceId: id,
        at: new Date(t + (i % 10)),
        kind: 'inform',
        payload: { eventCodes: ['2 PERIODIC'], softwareVersion: '2.1.0' },
      });
  }
  for (let i = 0; i < rows.length; i += 5_000)
    await db.db.insert(deviceEvents).values(rows.slice(i, i + 5_000));
}

async function freshHealthRow() {
  await db.db
    .insert(fleetHealth)
    .values({ component: 'acs', at: new Date(), healthy: true, details: {} })
    .onConflictDoUpdate({ target: fleetHealth.component, set: { at: new Date(), healthy: true } });
}

/** A bucket-aligned instant a little in the past (informs placed in phase 2 s into a bucket). */
function aligned(now: number) {
  return Math.floor(now / STEP) * STEP - 4 * STEP + 2_000;
}

describe('rollout fleet health from the inform history (PostgreSQL)', () => {
  it('lock-step informs (30 s interval, 15-s buckets) read as healthy throughout', async () => {
    await fleet(INTERVAL_S);
    const now = Date.now();
    const t0 = aligned(now);
    // 40 minutes of history before the judged span, then the span itself (6 minutes).
    await lockStepInforms(t0 - 46 * 60_000, now);
    await freshHealthRow();
    const f = dbRolloutFleet(db.db, { healthBucketMs: STEP, maxRowAgeMs: 60_000 });
    const from = t0 - 6 * 60_000;
    const { health } = await f.observe(ids, from, Date.now());
    // Every other 15-s bucket holds no inform at all; the old per-bucket test called those outages.
    expect(health.samples.length).toBeGreaterThan(20);
    expect(health.samples.filter((s) => !s.healthy)).toEqual([]);
    expect(healthyThroughout(health, from, Date.now())).toBe(true);
    // So a device silent since its Download is a brick, not `unknown`.
    const c = classifyOutcome([], health, {
      dispatchedAt: from,
      now: Date.now(),
      targetVersion: '3.0.0',
      previousVersion: '2.1.0',
      outcomeTimeoutMs: 3 * 60_000,
      soakMs: 0,
      bootLoopBoots: 3,
    });
    expect(c.outcome).toBe('brick');
  });

  it('without the interval the same lock-step history is judged bucket by bucket (the trap)', async () => {
    await fleet(undefined);
    const now = Date.now();
    const t0 = aligned(now);
    await lockStepInforms(t0 - 46 * 60_000, now);
    await freshHealthRow();
    const f = dbRolloutFleet(db.db, { healthBucketMs: STEP, maxRowAgeMs: 60_000 });
    const { health } = await f.observe(ids, t0 - 6 * 60_000, Date.now());
    // Shows the window width is what makes the first test pass: one-bucket windows see the gaps.
    expect(health.samples.some((s) => !s.healthy)).toBe(true);
  });

  it('informs that stop for two minutes mid-window read as an outage over that span, not before or after', async () => {
    await fleet(INTERVAL_S);
    const now = Date.now();
    const t0 = aligned(now);
    const gap: [number, number] = [t0 - 4 * 60_000, t0 - 2 * 60_000];
    await lockStepInforms(t0 - 46 * 60_000, now, [gap]);
    await freshHealthRow();
    const f = dbRolloutFleet(db.db, { healthBucketMs: STEP, maxRowAgeMs: 60_000 });
    const from = t0 - 8 * 60_000;
    const { health } = await f.observe(ids, from, Date.now());
    const bad = health.samples.filter((s) => !s.healthy).map((s) => s.at);
    expect(bad.length).toBeGreaterThan(0);
    // The unhealthy span covers the outage from its start (a device whose return inform fell in
    // the first seconds of the outage is not blamed) and ends within a window after it.
    expect(Math.min(...bad)).toBeLessThanOrEqual(gap[0]);
    expect(Math.max(...bad)).toBeGreaterThanOrEqual(gap[1] - 2 * STEP);
    expect(Math.max(...bad)).toBeLessThan(gap[1] + 2 * STEP);
    expect(healthyThroughout(health, from, gap[0] - 2 * STEP)).toBe(true);
    expect(healthyThroughout(health, gap[1] + 2 * STEP, Date.now())).toBe(true);
    // A device silent through an outcome window that overlaps the outage is unknown, never a brick.
    const c = classifyOutcome([], health, {
      dispatchedAt: gap[0] - 60_000,
      now: Date.now(),
      targetVersion: '3.0.0',
      previousVersion: '2.1.0',
      outcomeTimeoutMs: 2 * 60_000,
      soakMs: 0,
      bootLoopBoots: 3,
    });
    expect(c.outcome).toBe('unknown');
  });

  it('an outage as long as the judged span still reads as one (the baseline comes from before it)', async () => {
    await fleet(INTERVAL_S);
    const now = Date.now();
    const t0 = aligned(now);
    // Informs stopped five minutes ago and have not come back; the executor's row is still fresh
    // (say the CPEs' access network is down, not the ACS), so only the history can tell.
    await lockStepInforms(t0 - 46 * 60_000, t0 - 5 * 60_000);
    await freshHealthRow();
    const f = dbRolloutFleet(db.db, { healthBucketMs: STEP, maxRowAgeMs: 60_000 });
    const { health } = await f.observe(ids, t0 - 4 * 60_000, Date.now());
    const judged = health.samples.filter((s) => s.at < Math.floor(Date.now() / STEP) * STEP);
    expect(judged.length).toBeGreaterThan(10);
    expect(judged.every((s) => !s.healthy)).toBe(true);
  });

  it('a stale executor row makes the present unhealthy', async () => {
    await fleet(INTERVAL_S);
    const now = Date.now();
    await lockStepInforms(aligned(now) - 30 * 60_000, now);
    await db.db
      .insert(fleetHealth)
      .values({ component: 'acs', at: new Date(now - 60_000), healthy: true, details: {} });
    const f = dbRolloutFleet(db.db, { healthBucketMs: STEP, maxRowAgeMs: 12_000 });
    const { health } = await f.observe(ids, now - 3 * 60_000, Date.now());
    expect(health.samples.at(-1)!.healthy).toBe(false);
    expect(health.samples.slice(0, -2).every((s) => s.healthy)).toBe(true);
  });
});
