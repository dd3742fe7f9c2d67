/**
 * Firmware rollouts end to end on the real stack: Temporal dev server, PostgreSQL, the CWMP ACS with
 * its executor, and 5,000 simulated CPEs speaking CWMP with short periodic intervals. Time is scaled
 * through the spec (one spec minute = MINUTE_MS), so a 10-minute outcome timeout lasts 10 s.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RolloutSpecInput, rolloutSpecSchema } from '../../domain/rollout/spec.js';
import { controlUpdate, firmwareRollout, progressQuery } from '../../workflows/firmwareRollout.js';
import { type RolloutStack, startCwmpFleet, startRolloutStack } from '../support/rollout-stack.js';

const MINUTE_MS = 1000;
const FLEET = 5000;
let stack: RolloutStack;

beforeAll(async () => {
  stack = await startRolloutStack({
    minuteMs: MINUTE_MS,
    makeFleet: (db) =>
      startCwmpFleet({
        databaseUrl: db.url,
        pool: db.pool,
        count: FLEET,
        models: ['hgw500', 'gw98'],
        periodicIntervalS: 20,
        // The bad image bricks a tenth of the HGW-500s that install it.
        outcomes: { 'hgw500@3.0.0': { success: 0.9, brick: 0.1 } },
        images: [
          { model: 'hgw500', version: '2.1.0', from: [] },
          { model: 'hgw500', version: '2.2.0', from: ['2.1.0'] },
          { model: 'hgw500', version: '3.0.0', from: ['2.1.0'] },
          { model: 'gw98', version: '5.0.1', from: [] },
          { model: 'gw98', version: '5.0.2', from: ['5.0.1'] },
        ],
      }),
  });
}, 240_000);
afterAll(async () => {
  await stack?.close();
}, 60_000);

/** Devices of one model whose serial starts with one of the prefixes (disjoint cohorts per test). */
const cohort = (productClass: string, prefixes: string[]) => ({
  and: [
    { field: 'productClass', op: 'eq', value: productClass },
    { or: prefixes.map((p) => ({ field: 'serialNumber', op: 'prefix', value: p })) },
  ],
});

function spec(image: string, cohortSel: unknown, extra: Partial<RolloutSpecInput> = {}) {
  return rolloutSpecSchema.parse({
    name: `e2e ${image}`,
    image,
    cohort: cohortSel,
    waves: { kind: 'steps', steps: [{ percent: 10 }, { percent: 40 }, { percent: 100 }] },
    rateCaps: { perMinute: 6000 },
    gate: { theta: 0.01, hardCeilingBricked: 500, decisionDeadlineMinutes: 100_000 },
    outcomeTimeoutMinutes: 10,
    soakMinutes: 0,
    minStratumSize: 50,
    approvals: { beforeStart: false },
    notifications: [{ url: stack.hookUrl, events: ['halt', 'pause', 'complete'] }],
    ...extra,
  });
}

function start(id: string, s: ReturnType<typeof spec>) {
  return stack.client.workflow.start(firmwareRollout, {
    taskQueue: stack.taskQueue,
    workflowId: id,
    args: [
      {
        rolloutId: id,
        spec: s,
        seed: id,
        proposer: { id: 'alice', kind: 'user' } as never,
        requiredApprovals: 0,
        minuteMs: MINUTE_MS,
        pollMs: 2 * MINUTE_MS,
      },
    ],
  });
}

const noSecondDownload = () => {
  const twice = [...stack.fleet.downloads()].filter(([, n]) => n > 1);
  expect(twice).toEqual([]);
};

describe(`firmware rollout end to end (CWMP ACS, ${FLEET} simulated CPEs, Temporal, PostgreSQL)`, () => {
  it('a good image completes every wave, one Download per device', async () => {
    const id = `e2e-good-${Date.now()}`;
    const handle = await start(id, spec('2.2.0', cohort('HGW-500', ['SIM0000', 'SIM0001'])));
    const result = await handle.result();
    expect(result.reasons).toEqual(['every wave concluded']);
    expect(result.status).toBe('completed');
    const p = await handle.query(progressQuery);
    const dispatched = p.waves.reduce((n, w) => n + w.dispatched, 0);
    expect(dispatched).toBe(1000);
    const totals = p.waves.flatMap((w) => Object.values(w.perStratum));
    expect(totals.reduce((n, c) => n + c.brick, 0)).toBe(0);
    expect(totals.reduce((n, c) => n + c.success, 0)).toBeGreaterThan(950);
    // The inventory saw the devices come back on the new image.
    const on = await stack.db.pool.query<{ n: number }>(
      `select count(*)::int as n from devices where product_class = 'HGW-500' and software_version = '2.2.0'`,
    );
    expect(on.rows[0]!.n).toBeGreaterThan(950);
    expect(stack.hooks.some((h) => h.event === 'complete' && h.body.rolloutId === id)).toBe(true);
    noSecondDownload();
  }, 180_000);

  it('a bad image is halted in the first wave, rolled back, reported with its numbers; the webhook gets the halt', async () => {
    const id = `e2e-bad-${Date.now()}`;
    const handle = await start(id, spec('3.0.0', cohort('HGW-500', ['SIM0002', 'SIM0003'])));
    const result = await handle.result();
    expect(result.status).toBe('aborted');
    expect(result.haltedStrata.length).toBeGreaterThan(0);
    expect(result.waves[0]!.state).toBe('halted');
    for (const w of result.waves.slice(1)) expect(w.state).toBe('pending');
    const p = await handle.query(progressQuery);
    const bricks = Object.values(p.waves[0]!.perStratum).reduce((n, c) => n + c.brick, 0);
    expect(bricks).toBeGreaterThan(0);
    // Rollback: the reachable upgraded HGW-500s (dual bank) activate their old bank; bricks go to the field.
    expect(result.rollback?.activate).toBeGreaterThan(0);
    expect(result.rollback?.fieldAction.length).toBe(bricks);
    expect(result.rollback?.done).toBeGreaterThan(0);
    const halt = stack.hooks.find((h) => h.event === 'halt' && h.body.rolloutId === id);
    expect(halt?.body).toMatchObject({ haltStrata: result.haltedStrata });
    expect((halt?.body.rollback as { fieldAction?: string[] } | undefined)?.fieldAction).toHaveLength(bricks);
    noSecondDownload();
  }, 180_000);

  it('an ACS outage mid-wave pauses the rollout and counts no bricks; it completes after recovery', async () => {
    const id = `e2e-outage-${Date.now()}`;
    const handle = await start(id, spec('5.0.2', cohort('GW98', ['SIM0000', 'SIM0001', 'SIM0002'])));
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
    const paused = await handle.query(progressQuery);
    expect(paused.pauseReasons).toContain('infrastructure unhealthy');
    // Longer than the outcome timeout: without the health history these would be declared bricks.
    await new Promise((r) => setTimeout(r, 12 * MINUTE_MS));
    await stack.fleet.recover();
    await expect
      .poll(
        async () =>
          (await handle.query(progressQuery)).lastGate?.reasons.includes('infrastructure unhealthy'),
        {
          timeout: 60_000,
          interval: 1000,
        },
      )
      .toBeDefined();
    await new Promise((r) => setTimeout(r, 6_000)); // fresh health rows after the restart
    await handle.executeUpdate(controlUpdate, {
      args: [{ requestId: `${id}-resume`, action: 'resume', by: 'bob' }],
    });
    const result = await handle.result();
    const p = await handle.query(progressQuery);
    const totals = p.waves.flatMap((w) => Object.values(w.perStratum));
    expect(totals.reduce((n, c) => n + c.brick, 0)).toBe(0);
    expect(result.status).toBe('completed');
    expect(stack.hooks.some((h) => h.event === 'pause' && h.body.rolloutId === id)).toBe(true);
    noSecondDownload();
  }, 240_000);

  it('a worker killed mid-wave resumes on a new worker; no device receives a second Download', async () => {
    const id = `e2e-kill-${Date.now()}`;
    const handle = await start(
      id,
      spec('5.0.2', cohort('GW98', ['SIM0003', 'SIM0004']), { rateCaps: { perMinute: 1200 } }),
    );
    await expect
      .poll(async () => (await handle.query(progressQuery)).waves[1]?.dispatched ?? 0, {
        timeout: 90_000,
        interval: 200,
      })
      .toBeGreaterThanOrEqual(0);
    await expect
      .poll(async () => (await handle.query(progressQuery)).waves[1]?.state, {
        timeout: 90_000,
        interval: 200,
      })
      .toBe('dispatching');
    await stack.stopWorker();
    const before = [...stack.fleet.downloads().values()].reduce((a, b) => a + b, 0);
    await new Promise((r) => setTimeout(r, 2_000));
    await stack.startWorker();
    const result = await handle.result();
    expect(result.status).toBe('completed');
    const after = [...stack.fleet.downloads().values()].reduce((a, b) => a + b, 0);
    expect(after).toBeGreaterThan(before);
    expect(result.waves.reduce((n, w) => n + w.dispatched, 0)).toBe(1000);
    noSecondDownload();
  }, 180_000);
});
