/**
 * Firmware rollouts end to end on a mixed fleet: the CWMP ACS with its simulated CPEs and the USP
 * controller with its simulated agents on one database, Temporal and the same rollout workflow. One
 * cohort spans both protocols; each device is reached by its own protocol (executor/by-protocol.ts),
 * with the same gate, the same outcome classification and the same report.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RolloutSpecInput, rolloutSpecSchema } from '../../domain/rollout/spec.js';
import { firmwareRollout, progressQuery } from '../../workflows/firmwareRollout.js';
import { type RolloutStack, startCwmpFleet, startRolloutStack } from '../support/rollout-stack.js';
import { mixedFleet, startUspRolloutFleet } from '../support/rollout-usp.js';

const MINUTE_MS = 1000;
const PER_PROTOCOL = 400;
let stack: RolloutStack;

const images = [
  { model: 'hgw500', version: '2.1.0', from: [] },
  { model: 'hgw500', version: '2.2.0', from: ['2.1.0'] },
  { model: 'hgw500', version: '3.0.0', from: ['2.1.0'] },
];

beforeAll(async () => {
  stack = await startRolloutStack({
    minuteMs: MINUTE_MS,
    makeFleet: async (db) => {
      const cwmp = await startCwmpFleet({
        databaseUrl: db.url,
        pool: db.pool,
        groups: [{ serialPrefix: 'MC', count: PER_PROTOCOL, models: ['hgw500'], periodicIntervalS: 30 }],
        outcomes: { 'hgw500@3.0.0': { success: 0.75, brick: 0.25 } },
        images,
      });
      const usp = await startUspRolloutFleet({
        databaseUrl: db.url,
        pool: db.pool,
        groups: [{ serialPrefix: 'MU', count: PER_PROTOCOL, models: ['hgw500'], periodicIntervalS: 10 }],
        outcomes: { 'hgw500@3.0.0': { success: 0.75, brick: 0.25 } },
        images,
      }).catch(async (err: unknown) => {
        await cwmp.close();
        throw err;
      });
      return mixedFleet(cwmp, usp, db.pool);
    },
  });
}, 420_000);
afterAll(async () => {
  await stack?.close();
}, 60_000);

/** HGW-500s of both protocols: CWMP serials are MC + 7 digits, USP serials MU + 6 digits. */
const cohort = (prefixes: string[]) => ({
  and: [
    { field: 'productClass', op: 'eq', value: 'HGW-500' },
    { or: prefixes.map((p) => ({ field: 'serialNumber', op: 'prefix', value: p })) },
  ],
});

function spec(image: string, cohortSel: unknown, extra: Partial<RolloutSpecInput> = {}) {
  return rolloutSpecSchema.parse({
    name: `e2e mixed ${image}`,
    image,
    cohort: cohortSel,
    waves: { kind: 'steps', steps: [{ percent: 10 }, { percent: 40 }, { percent: 100 }] },
    rateCaps: { perMinute: 1200 },
    gate: { theta: 0.01, hardCeilingBricked: 500, decisionDeadlineMinutes: 100_000 },
    outcomeTimeoutMinutes: 50,
    soakMinutes: 0,
    minStratumSize: 10,
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

/** How each device of a rollout was reached (the executor's trigger path), by protocol. */
async function pathsByProtocol(rolloutId: string) {
  const r = await stack.db.pool.query<{ protocol: string; path: string | null; n: number }>(
    `SELECT d.protocol, t.path, count(DISTINCT t.device_id)::int AS n
       FROM executor_tasks t JOIN devices d ON d.id = t.device_id
      WHERE t.scope = $1 GROUP BY 1, 2 ORDER BY 1, 2`,
    [rolloutId],
  );
  return r.rows;
}

describe(`firmware rollout end to end on a mixed CWMP/USP fleet (${PER_PROTOCOL} + ${PER_PROTOCOL} devices)`, () => {
  it('a good image completes every wave over both protocols, one Download per device', async () => {
    const id = `e2e-mixed-good-${Date.now()}`;
    // 100 CWMP (MC00000xx) and 100 USP (MU0000xx, MU0001xx) devices.
    const handle = await start(id, spec('2.2.0', cohort(['MC00000', 'MU0000', 'MU0001'])));
    const result = await handle.result();
    expect(result.reasons).toEqual(['every wave concluded']);
    expect(result.status).toBe('completed');
    const p = await handle.query(progressQuery);
    expect(p.waves.reduce((n, w) => n + w.dispatched, 0)).toBe(300);
    const totals = p.waves.flatMap((w) => Object.values(w.perStratum));
    expect(totals.reduce((n, c) => n + c.brick, 0)).toBe(0);
    expect(totals.reduce((n, c) => n + c.success, 0)).toBeGreaterThan(295);
    const on = await stack.db.pool.query<{ protocol: string; n: number }>(
      `SELECT protocol, count(*)::int AS n FROM devices WHERE software_version = '2.2.0' GROUP BY 1 ORDER BY 1`,
    );
    expect(on.rows.map((r) => r.protocol)).toEqual(['cwmp', 'usp']);
    expect(on.rows.find((r) => r.protocol === 'usp')?.n).toBe(200);
    expect(on.rows.find((r) => r.protocol === 'cwmp')?.n).toBeGreaterThan(95);
    // Each device by its own protocol: USP devices by USP messages only, CWMP devices never by USP.
    const paths = await pathsByProtocol(id);
    expect(paths.filter((r) => r.protocol === 'usp').every((r) => r.path === 'usp_message')).toBe(true);
    expect(paths.filter((r) => r.protocol === 'cwmp').some((r) => r.path === 'usp_message')).toBe(false);
    expect(stack.hooks.some((h) => h.event === 'complete' && h.body.rolloutId === id)).toBe(true);
    noSecondDownload();
  }, 300_000);

  it('a bad image is halted on the mixed cohort and rolled back on both protocols', async () => {
    const id = `e2e-mixed-bad-${Date.now()}`;
    const handle = await start(id, spec('3.0.0', cohort(['MC00001', 'MC00002', 'MU0002', 'MU0003'])));
    const result = await handle.result();
    expect(result.status).toBe('aborted');
    expect(result.haltedStrata.length).toBeGreaterThan(0);
    expect(result.waves[0]!.state).toBe('halted');
    const p = await handle.query(progressQuery);
    const bricks = Object.values(p.waves[0]!.perStratum).reduce((n, c) => n + c.brick, 0);
    expect(bricks).toBeGreaterThan(0);
    expect(result.rollback?.activate).toBeGreaterThan(0);
    expect(result.rollback?.fieldAction.length).toBe(bricks);
    const rolledBack = await stack.db.pool.query<{ protocol: string }>(
      `SELECT DISTINCT d.protocol FROM executor_tasks t JOIN devices d ON d.id = t.device_id
        WHERE t.scope = $1 AND t.step = 'rollback/activate' AND t.state = 'done' ORDER BY 1`,
      [id],
    );
    expect(rolledBack.rows.length).toBeGreaterThan(0);
    noSecondDownload();
  }, 300_000);
});
