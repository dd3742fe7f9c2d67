/**
 * Firmware rollouts end to end on an all-USP fleet: Temporal dev server, PostgreSQL, the USP
 * controller and executor over a real mosquitto, and simulated USP agents (several per MQTT
 * connection, each with its own endpoint ID and topic). Same harness and expectations as the CWMP
 * e2e (e2e-cwmp.test.ts); here the firmware moves by Download()/Activate() and comes back by Boot!.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RolloutSpec, RolloutSpecInput } from '../../domain/rollout/spec.js';
import { controlUpdate, progressQuery } from '../../workflows/firmwareRollout.js';
import {
  e2eSpec,
  type RolloutStack,
  serialCohort,
  startRolloutStack,
  startRollout,
} from '../support/rollout-stack.js';
import { startUspRolloutFleet } from '../support/rollout-usp.js';

const MINUTE_MS = 1000;
const FLEET = 1000;
const ACTIVE = 600;
let stack: RolloutStack;

beforeAll(async () => {
  stack = await startRolloutStack({
    minuteMs: MINUTE_MS,
    makeFleet: (db) =>
      startUspRolloutFleet({
        databaseUrl: db.url,
        pool: db.pool,
        groups: [
          { serialPrefix: 'UACT', count: ACTIVE, models: ['hgw500', 'ontx1'], periodicIntervalS: 10 },
          { serialPrefix: 'UBG', count: FLEET - ACTIVE, models: ['hgw500', 'ontx1'], periodicIntervalS: 30 },
        ],
        // The bad image bricks two in five HGW-500s that install it (as in the CWMP e2e). At a quarter,
        // the first two waves' 60 devices held too few bricks for the gate to blame the image at 95 %
        // confidence in about one run in ten, and the last wave went out.
        outcomes: { 'hgw500@3.0.0': { success: 0.6, brick: 0.4 } },
        images: [
          { model: 'hgw500', version: '2.1.0', from: [] },
          { model: 'hgw500', version: '2.2.0', from: ['2.1.0'] },
          { model: 'hgw500', version: '3.0.0', from: ['2.1.0'] },
          { model: 'ontx1', version: '1.4.2', from: [] },
          { model: 'ontx1', version: '1.5.0', from: ['1.4.2'] },
        ],
      }),
  });
}, 420_000);
afterAll(async () => {
  await stack?.close();
}, 60_000);

const spec = (image: string, cohortSel: unknown, extra: Partial<RolloutSpecInput> = {}) =>
  e2eSpec(
    stack,
    { name: `e2e usp ${image}`, image, cohort: cohortSel, outcomeTimeoutMinutes: 30, minStratumSize: 10 },
    extra,
  );
const start = (id: string, s: RolloutSpec) => startRollout(stack, id, s);

const noSecondDownload = () => {
  const twice = [...stack.fleet.downloads()].filter(([, n]) => n > 1);
  expect(twice).toEqual([]);
};

describe(`firmware rollout end to end on an all-USP fleet (${FLEET} agents over mosquitto, Temporal, PostgreSQL)`, () => {
  it('a good image completes every wave, one Download() per device, the inventory follows Boot!', async () => {
    const id = `e2e-usp-good-${Date.now()}`;
    // Serials are the prefix + 6 digits and HGW-500s every other agent: UACT0000 holds 50 of them.
    const handle = await start(id, spec('2.2.0', serialCohort('HGW-500', ['UACT0000'])));
    const result = await handle.result();
    expect(result.reasons).toEqual(['every wave concluded']);
    expect(result.status).toBe('completed');
    const p = await handle.query(progressQuery);
    expect(p.waves.reduce((n, w) => n + w.dispatched, 0)).toBe(50);
    const totals = p.waves.flatMap((w) => Object.values(w.perStratum));
    expect(totals.reduce((n, c) => n + c.brick, 0)).toBe(0);
    expect(totals.reduce((n, c) => n + c.success, 0)).toBe(50);
    const on = await stack.db.pool.query<{ n: number }>(
      `select count(*)::int as n from devices where protocol = 'usp' and product_class = 'HGW-500' and software_version = '2.2.0'`,
    );
    expect(on.rows[0]!.n).toBe(50);
    expect(stack.hooks.some((h) => h.event === 'complete' && h.body.rolloutId === id)).toBe(true);
    expect(stack.fleet.downloads().size).toBe(50);
    noSecondDownload();
  }, 240_000);

  it('a bad image is halted early and rolled back by Activate() of the old bank', async () => {
    const id = `e2e-usp-bad-${Date.now()}`;
    const handle = await start(
      id,
      spec('3.0.0', serialCohort('HGW-500', ['UACT0001', 'UACT0002', 'UACT0003'])),
    );
    const result = await handle.result();
    expect(result.status).toBe('aborted');
    expect(result.haltedStrata.length).toBeGreaterThan(0);
    const p = await handle.query(progressQuery);
    console.log('bad image', JSON.stringify({ waves: result.waves, gate: p.lastGate }));
    // Halted before the last wave: the first, unless that wave concluded before the gate could see
    // its concurrent control group (as in the CWMP e2e); no later wave went out.
    const halted = result.waves.findIndex((w) => w.state === 'halted');
    expect(halted).toBeGreaterThanOrEqual(0);
    expect(halted).toBeLessThan(result.waves.length - 1);
    for (const w of result.waves.slice(halted + 1)) {
      expect(w.state).toBe('pending');
      expect(w.dispatched).toBe(0);
    }
    const counts = p.waves.flatMap((w) => Object.values(w.perStratum));
    const bricks = counts.reduce((n, c) => n + c.brick, 0);
    const pending = counts.reduce((n, c) => n + c.pending, 0);
    expect(bricks).toBeGreaterThan(0);
    expect(result.rollback?.activate).toBeGreaterThan(0);
    // Bricks go to the field (and devices still pending at the halt that never came back).
    const field = result.rollback?.fieldAction.length ?? 0;
    expect(field).toBeGreaterThanOrEqual(bricks);
    expect(field).toBeLessThanOrEqual(bricks + pending);
    expect(result.rollback?.done).toBeGreaterThan(0);
    const halt = stack.hooks.find((h) => h.event === 'halt' && h.body.rolloutId === id);
    expect(halt?.body).toMatchObject({ haltStrata: result.haltedStrata });
    noSecondDownload();
  }, 360_000);

  it('a broker outage mid-wave pauses the rollout and counts no bricks; it completes after recovery', async () => {
    const id = `e2e-usp-outage-${Date.now()}`;
    const handle = await start(id, spec('1.5.0', serialCohort('ONT-X1', ['UACT0004', 'UACT0005'])));
    await expect
      .poll(async () => (await handle.query(progressQuery)).waves[1]?.dispatched ?? 0, {
        timeout: 90_000,
        interval: 200,
      })
      .toBeGreaterThan(0);
    await stack.fleet.outage();
    await expect
      .poll(async () => (await handle.query(progressQuery)).status, { timeout: 60_000, interval: 500 })
      .toBe('paused');
    expect((await handle.query(progressQuery)).pauseReasons).toContain('infrastructure unhealthy');
    // Longer than the outcome timeout: without the health history these would be declared bricks.
    await new Promise((r) => setTimeout(r, 32 * MINUTE_MS));
    await stack.fleet.recover();
    // The controller reconnected and wrote a fresh, healthy row; then an operator resumes.
    const upAt = new Date();
    await expect
      .poll(
        async () =>
          (
            await stack.db.pool.query<{ n: number }>(
              `SELECT count(*)::int AS n FROM fleet_health WHERE healthy AND at > $1`,
              [upAt],
            )
          ).rows[0]!.n,
        { timeout: 60_000, interval: 250 },
      )
      .toBeGreaterThan(0);
    await handle.executeUpdate(controlUpdate, {
      args: [{ requestId: `${id}-resume`, action: 'resume', by: 'bob' }],
    });
    const result = await handle.result();
    const p = await handle.query(progressQuery);
    console.log('usp outage outcomes', JSON.stringify(p.waves.map((w) => w.perStratum)));
    const totals = p.waves.flatMap((w) => Object.values(w.perStratum));
    expect(totals.reduce((n, c) => n + c.brick, 0)).toBe(0);
    expect(result.status).toBe('completed');
    expect(stack.hooks.some((h) => h.event === 'pause' && h.body.rolloutId === id)).toBe(true);
    noSecondDownload();
  }, 480_000);
});
