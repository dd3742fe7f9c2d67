/**
 * Approval gates before a wave and maintenance windows at dispatch, on the Temporal dev server with
 * the fast executor double (test/rollout/doubles.ts) and a real PostgreSQL for the approval inbox.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RolloutSpecInput, rolloutSpecSchema } from '../../domain/rollout/spec.js';
import { approvalStateQuery, decideUpdate } from '../../workflows/approval.js';
import { controlUpdate, firmwareRollout, progressQuery } from '../../workflows/firmwareRollout.js';
import { createTestDatabase } from '../support/db.js';
import { startTestWorker } from '../support/temporal.js';
import { FakeFleet, FastExecutorDouble, catalogue, makeCohort } from './doubles.js';

const MINUTE_MS = 40;
let db: Awaited<ReturnType<typeof createTestDatabase>>;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
});

function spec(extra: Partial<RolloutSpecInput> = {}) {
  return rolloutSpecSchema.parse({
    name: 'gates',
    image: 'img-good',
    cohort: { all: true },
    waves: { kind: 'steps', steps: [{ percent: 10 }, { percent: 40 }, { percent: 100 }] },
    gate: { theta: 0.05, hardCeilingBricked: 1000, decisionDeadlineMinutes: 100_000 },
    outcomeTimeoutMinutes: 5,
    soakMinutes: 0,
    minStratumSize: 10,
    approvals: { beforeStart: false },
    ...extra,
  });
}

/** The fake fleet with the present-health check dispatch asks before each batch. */
class CheckedFleet extends FakeFleet {
  async healthyNow() {
    return this.healthy;
  }
}

async function setup() {
  const executor = new FastExecutorDouble();
  const cohort = makeCohort(50);
  const fleet = new CheckedFleet(
    cohort,
    executor,
    { 'img-good': { version: '2.0', behaviour: () => 'ok' } },
    MINUTE_MS,
  );
  const env = await startTestWorker({
    db: db.db,
    rolloutExecutor: executor,
    rolloutFleet: fleet,
    rolloutImages: async (id) => catalogue[id],
    rolloutMinuteMs: MINUTE_MS,
  });
  return { executor, env, cohort, fleet };
}

function start(env: Awaited<ReturnType<typeof startTestWorker>>, id: string, s: ReturnType<typeof spec>) {
  return env.client.workflow.start(firmwareRollout, {
    taskQueue: env.taskQueue,
    workflowId: id,
    args: [
      {
        rolloutId: id,
        spec: s,
        seed: id,
        proposer: { id: 'u-alice', name: 'alice', kind: 'user' } as never,
        requiredApprovals: 0,
        minuteMs: MINUTE_MS,
        pollMs: MINUTE_MS * 2,
      },
    ],
  });
}

describe('rollout gates at dispatch', () => {
  it('waits for an approval before the last wave (at least one, even when policy asks for none)', async () => {
    const { executor, env, cohort } = await setup();
    try {
      const id = `ro-gate-last-${Date.now()}`;
      const handle = await start(env, id, spec({ approvals: { beforeStart: false, beforeLastWave: true } }));
      await expect
        .poll(() => handle.query(progressQuery), { timeout: 60_000, interval: 100 })
        .toMatchObject({ status: 'awaiting-approval', currentWave: 2 });
      const p = await handle.query(progressQuery);
      // Nothing of the last wave went out.
      const before = p.waves[0]!.devices + p.waves[1]!.devices;
      expect(executor.downloadsOf('2.0')).toHaveLength(before);
      expect(p.waves[2]!.state).toBe('pending');
      // The proposer cannot approve; a second person can.
      const hash = (await handle.query(approvalStateQuery)).planHash;
      const self = await handle
        .executeUpdate(decideUpdate, {
          args: [
            {
              approvalId: 'vote-alice-1',
              approver: { id: 'u-alice', name: 'alice', kind: 'user', roles: ['approver'] },
              decision: 'approve',
              planHash: hash,
            },
          ],
        })
        .catch((e: unknown) => e);
      expect(self).toBeInstanceOf(Error);
      const vote = await handle.executeUpdate(decideUpdate, {
        args: [
          {
            approvalId: 'vote-bob-1',
            approver: { id: 'u-bob', name: 'bob', kind: 'user', roles: ['approver'] },
            decision: 'approve',
            planHash: hash,
          },
        ],
      });
      expect(vote.status).toBe('approved');
      const result = await handle.result();
      expect(result.status).toBe('completed');
      expect(executor.downloadsOf('2.0')).toHaveLength(cohort.length);
    } finally {
      await env.stop();
    }
  });

  it('acts on an abort while an approval gate waits: before a wave it halts and rolls back, before start nothing goes out', async () => {
    const { executor, env } = await setup();
    try {
      const id = `ro-gate-abort-${Date.now()}`;
      const handle = await start(env, id, spec({ approvals: { beforeStart: false, beforeLastWave: true } }));
      await expect
        .poll(() => handle.query(progressQuery), { timeout: 60_000, interval: 100 })
        .toMatchObject({ status: 'awaiting-approval', currentWave: 2 });
      const sent = executor.downloadsOf('2.0').length;
      const a = await handle.executeUpdate(controlUpdate, {
        args: [{ requestId: 'abort-1', action: 'abort', by: 'bob' }],
      });
      expect(a.applied).toBe(true);
      const result = await handle.result();
      expect(result.status).toBe('aborted');
      expect(result.reasons).toEqual(['aborted by an operator']);
      expect(result.rollback?.rollback).toBeGreaterThan(0);
      // The last wave never went out.
      expect(executor.downloadsOf('2.0')).toHaveLength(sent);

      const id2 = `ro-start-abort-${Date.now()}`;
      const h2 = await env.client.workflow.start(firmwareRollout, {
        taskQueue: env.taskQueue,
        workflowId: id2,
        args: [
          {
            rolloutId: id2,
            spec: spec({ approvals: { beforeStart: true } }),
            seed: id2,
            proposer: { id: 'u-alice', name: 'alice', kind: 'user' } as never,
            requiredApprovals: 1,
            minuteMs: MINUTE_MS,
            pollMs: MINUTE_MS * 2,
          },
        ],
      });
      await expect
        .poll(async () => (await h2.query(progressQuery)).status, { timeout: 60_000, interval: 100 })
        .toBe('awaiting-approval');
      await h2.executeUpdate(controlUpdate, { args: [{ requestId: 'abort-2', action: 'abort', by: 'bob' }] });
      const r2 = await h2.result();
      expect(r2).toMatchObject({ status: 'aborted', reasons: ['aborted by an operator'] });
      expect(r2.rollback).toBeUndefined();
      expect(executor.downloadsOf('2.0')).toHaveLength(sent);
    } finally {
      await env.stop();
    }
  });

  it('stops dispatching at once when the infrastructure is unhealthy, pauses, and sends the rest after resume', async () => {
    const { executor, env, cohort, fleet } = await setup();
    fleet.healthy = false;
    try {
      const id = `ro-dispatch-outage-${Date.now()}`;
      const handle = await start(env, id, spec());
      await expect
        .poll(() => handle.query(progressQuery), { timeout: 60_000, interval: 100 })
        .toMatchObject({ status: 'paused' });
      expect((await handle.query(progressQuery)).pauseReasons).toContain('infrastructure unhealthy');
      // Not one Download went out while the ACS was down.
      expect(executor.downloadsOf('2.0')).toHaveLength(0);
      fleet.healthy = true;
      await handle.executeUpdate(controlUpdate, { args: [{ requestId: 'r1', action: 'resume', by: 'bob' }] });
      const result = await handle.result();
      expect(result.status).toBe('completed');
      const dl = executor.downloadsOf('2.0');
      expect(dl).toHaveLength(cohort.length);
      expect(new Set(dl.map((d) => d.deviceId)).size).toBe(cohort.length);
    } finally {
      await env.stop();
    }
  });

  it('holds devices outside their local maintenance window and sends them when it opens', async () => {
    const { executor, env, cohort } = await setup();
    try {
      // A window that opens at the next full UTC minute (the cohort's devices have no zone: UTC).
      const now = new Date();
      const opensAt = Math.ceil((now.getTime() + 1) / 60_000) * 60_000;
      const hhmm = (t: number) => new Date(t).toISOString().slice(11, 16);
      const id = `ro-window-${Date.now()}`;
      const handle = await start(
        env,
        id,
        spec({ maintenanceWindows: [{ start: hhmm(opensAt), end: hhmm(opensAt + 2 * 3600_000) }] }),
      );
      const result = await handle.result();
      expect(result.status).toBe('completed');
      const dl = executor.downloadsOf('2.0');
      expect(dl).toHaveLength(cohort.length);
      // Not one Download before the window opened.
      expect(Math.min(...dl.map((d) => d.at))).toBeGreaterThanOrEqual(opensAt);
    } finally {
      await env.stop();
    }
  }, 150_000);
});
