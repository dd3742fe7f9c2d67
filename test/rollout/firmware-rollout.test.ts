import { writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RolloutSpecInput, rolloutSpecSchema } from '../../domain/rollout/spec.js';
import { controlUpdate, firmwareRollout, progressQuery } from '../../workflows/firmwareRollout.js';
import { guardedFetch } from '../../platform/egress.js';
import { startTestWorker } from '../support/temporal.js';
import { type Behaviour, FakeFleet, FastExecutorDouble, catalogue, makeCohort } from './doubles.js';

const replayDir = path.join(import.meta.dirname, '..', 'replay');
const MINUTE_MS = 40;

// A webhook receiver: what the rollout tells operators.
const hooks: Array<{ event: string; body: Record<string, unknown> }> = [];
const hookServer = createServer((req, res) => {
  let body = '';
  req.on('data', (c) => {
    body += c;
  });
  req.on('end', () => {
    const parsed = JSON.parse(body) as Record<string, unknown>;
    hooks.push({ event: String(parsed.event), body: parsed });
    res.writeHead(204).end();
  });
});
let hookUrl = '';
beforeAll(async () => {
  await new Promise<void>((r) => hookServer.listen(0, '127.0.0.1', r));
  hookUrl = `http://127.0.0.1:${(hookServer.address() as AddressInfo).port}/hook`;
});
afterAll(() => new Promise<void>((r) => hookServer.close(() => r())));

function spec(image: string, extra: Partial<RolloutSpecInput> = {}) {
  return rolloutSpecSchema.parse({
    name: `test ${image}`,
    image,
    cohort: { all: true },
    waves: { kind: 'steps', steps: [{ percent: 10 }, { percent: 40 }, { percent: 100 }] },
    gate: { theta: 0.05, hardCeilingBricked: 1000, decisionDeadlineMinutes: 100_000 },
    outcomeTimeoutMinutes: 5,
    soakMinutes: 0,
    minStratumSize: 10,
    approvals: { beforeStart: false },
    notifications: [{ url: hookUrl, events: ['halt', 'pause', 'complete'] }],
    ...extra,
  });
}

async function setup(behaviours: Record<string, Behaviour>) {
  const executor = new FastExecutorDouble();
  const cohort = makeCohort(100);
  const fleet = new FakeFleet(
    cohort,
    executor,
    Object.fromEntries(
      Object.entries(behaviours).map(([id, behaviour]) => [
        id,
        { version: catalogue[id]!.version, behaviour },
      ]),
    ),
    MINUTE_MS,
  );
  const env = await startTestWorker({
    rolloutExecutor: executor,
    rolloutFleet: fleet,
    rolloutImages: async (id) => catalogue[id],
    rolloutMinuteMs: MINUTE_MS,
    // The webhook receiver is on loopback: allowed explicitly (the default refuses non-public targets).
    rolloutFetch: guardedFetch({ allowCidrs: ['127.0.0.1/32'] }),
  });
  return { executor, fleet, env, cohort };
}

function start(
  env: Awaited<ReturnType<typeof startTestWorker>>,
  id: string,
  s: ReturnType<typeof spec>,
  extra: { maxHistoryEvents?: number } = {},
) {
  return env.client.workflow.start(firmwareRollout, {
    taskQueue: env.taskQueue,
    workflowId: id,
    args: [
      {
        rolloutId: id,
        spec: s,
        seed: id,
        proposer: { id: 'alice', kind: 'user' } as never,
        requiredApprovals: 0,
        minuteMs: MINUTE_MS,
        pollMs: MINUTE_MS * 2,
        ...extra,
      },
    ],
  });
}

describe('firmwareRollout on the real Temporal dev server (fast executor double)', () => {
  it('a good image completes every wave, one Download per device', async () => {
    const { executor, env, cohort } = await setup({ 'img-good': () => 'ok' });
    try {
      const id = `ro-good-${Date.now()}`;
      const handle = await start(env, id, spec('img-good'));
      const result = await handle.result();
      expect(result.status).toBe('completed');
      expect(result.waves.map((w) => w.state)).toEqual(['done', 'done', 'done']);
      const downloads = executor.downloadsOf('2.0');
      expect(downloads).toHaveLength(cohort.length);
      expect(new Set(downloads.map((d) => d.deviceId)).size).toBe(cohort.length);
      // Each wave holds both strata (stratified sample).
      const progress = await handle.query(progressQuery);
      expect(Object.keys(progress.waves[0]!.perStratum).sort()).toEqual(['A|h1|1.0', 'B|h1|1.0']);
      expect(progress.waves.reduce((n, w) => n + w.dispatched, 0)).toBe(cohort.length);
      expect(executor.dispatches.filter((d) => d.step.startsWith('rollback'))).toHaveLength(0);
      expect(hooks.some((h) => h.event === 'complete' && h.body.rolloutId === id)).toBe(true);
      if (process.env.UPDATE_REPLAY_HISTORIES === '1') {
        const history = await handle.fetchHistory();
        writeFileSync(path.join(replayDir, 'firmware-rollout-good.json'), `${historyToJSON(history)}\n`);
      }
    } finally {
      await env.stop();
    }
  });

  it('a bad image (bricks half of model B) is halted in the first wave and rolled back', async () => {
    const { executor, env } = await setup({
      'img-bad': (d) => (d.model === 'B' && Number(d.id.slice(2)) % 2 === 0 ? 'brick' : 'ok'),
    });
    try {
      const id = `ro-bad-${Date.now()}`;
      const handle = await start(env, id, spec('img-bad'));
      const result = await handle.result();
      expect(result.status).toBe('aborted');
      expect(result.haltedStrata).toContain('B|h1|1.0');
      // Halted before the last wave: the waves after the halted one never dispatched.
      const halted = result.waves.findIndex((w) => w.state === 'halted');
      expect(halted).toBeGreaterThanOrEqual(0);
      expect(halted).toBeLessThan(result.waves.length - 1);
      for (const w of result.waves.slice(halted + 1)) expect(w.state).toBe('pending');
      const bad = executor.downloadsOf('2.0-bad');
      expect(bad.length).toBe(result.waves.slice(0, halted + 1).reduce((n, w) => n + w.devices, 0));
      expect(bad.length).toBeLessThan(200);
      const bricked = bad.filter((d) => d.deviceId.startsWith('B-') && Number(d.deviceId.slice(2)) % 2 === 0);
      expect(result.rollback?.fieldAction.sort()).toEqual(
        expect.arrayContaining(bricked.map((d) => d.deviceId)),
      );
      // The upgraded, reachable B devices get a re-download of N-1 (single bank).
      const rollback = executor.dispatches.filter((d) => d.step.startsWith('rollback/'));
      const upB = bad.filter((d) => d.deviceId.startsWith('B-') && Number(d.deviceId.slice(2)) % 2 === 1);
      expect(upB.length).toBeGreaterThan(0);
      for (const d of upB)
        expect(rollback).toContainEqual(
          expect.objectContaining({ deviceId: d.deviceId, kind: 'download', version: '1.0' }),
        );
      // Model A devices (dual bank) are rolled back by activating the old bank, if A was halted too.
      for (const r of rollback.filter((x) => x.deviceId.startsWith('A-')))
        expect(r.kind).toBe('activateImage');
      expect(result.rollback?.attempted).toBe(rollback.length);
      expect(hooks.some((h) => h.event === 'halt' && h.body.rolloutId === id)).toBe(true);
      if (process.env.UPDATE_REPLAY_HISTORIES === '1') {
        const history = await handle.fetchHistory();
        writeFileSync(path.join(replayDir, 'firmware-rollout-bad.json'), `${historyToJSON(history)}\n`);
      }
    } finally {
      await env.stop();
    }
  });

  it('an unhealthy fleet (ACS outage) pauses the rollout and counts no bricks; controls are idempotent', async () => {
    const { executor, fleet, env } = await setup({ 'img-good': () => 'ok' });
    fleet.healthy = false;
    fleet.silent = true;
    try {
      const id = `ro-outage-${Date.now()}`;
      const handle = await start(env, id, spec('img-good'));
      await expect
        .poll(() => handle.query(progressQuery), { timeout: 20_000, interval: 100 })
        .toMatchObject({ status: 'paused' });
      const p = await handle.query(progressQuery);
      expect(p.pauseReasons).toContain('infrastructure unhealthy');
      for (const s of p.lastGate?.perStratum ?? []) expect(s.bricks).toBe(0);
      const counts = Object.values(p.waves[0]!.perStratum);
      expect(counts.reduce((n, c) => n + c.brick, 0)).toBe(0);
      expect(counts.reduce((n, c) => n + c.unknown, 0)).toBeGreaterThan(0);
      await expect.poll(() => hooks.some((h) => h.event === 'pause' && h.body.rolloutId === id)).toBe(true);
      const firstWave = executor.downloadsOf('2.0').length;

      // Pause while paused: no change. Duplicate request id: same answer, flagged duplicate.
      const pause = await handle.executeUpdate(controlUpdate, {
        args: [{ requestId: 'c1', action: 'pause', by: 'bob' }],
      });
      expect(pause).toMatchObject({ applied: false, duplicate: false, status: 'paused' });
      // Promote needs a second person.
      const refused = await handle
        .executeUpdate(controlUpdate, { args: [{ requestId: 'c2', action: 'promote', by: 'bob' }] })
        .catch((e: unknown) => e as Error);
      expect(String((refused as Error).cause?.toString())).toMatch(/second person/);

      // Infrastructure recovers; an operator resumes (twice: the retry is a duplicate).
      fleet.healthy = true;
      fleet.silent = false;
      const r1 = await handle.executeUpdate(controlUpdate, {
        args: [{ requestId: 'c3', action: 'resume', by: 'bob' }],
      });
      const r2 = await handle.executeUpdate(controlUpdate, {
        args: [{ requestId: 'c3', action: 'resume', by: 'bob' }],
      });
      expect(r1).toMatchObject({ applied: true, duplicate: false, status: 'running' });
      expect(r2).toMatchObject({ applied: true, duplicate: true });
      // An operator pause, then an abort (sent twice).
      const pz = await handle.executeUpdate(controlUpdate, {
        args: [{ requestId: 'c4', action: 'pause', by: 'bob' }],
      });
      expect(pz).toMatchObject({ applied: true, status: 'paused' });
      const a1 = await handle.executeUpdate(controlUpdate, {
        args: [{ requestId: 'c5', action: 'abort', by: 'bob' }],
      });
      const a2 = await handle.executeUpdate(controlUpdate, {
        args: [{ requestId: 'c5', action: 'abort', by: 'bob' }],
      });
      expect(a1.applied).toBe(true);
      expect(a2.duplicate).toBe(true);
      const result = await handle.result();
      expect(result.status).toBe('aborted');
      // No device received a second Download of the image, across pause/resume/restarted wave children.
      const dl = executor.downloadsOf('2.0');
      expect(new Set(dl.map((d) => d.deviceId)).size).toBe(dl.length);
      expect(dl.length).toBeGreaterThanOrEqual(firstWave);
      const after = await handle
        .executeUpdate(controlUpdate, {
          args: [{ requestId: 'c6', action: 'resume', by: 'bob' }],
        })
        .catch((e: unknown) => e);
      expect(after).toBeInstanceOf(Error); // the run is closed: no control applies
      expect((await handle.query(progressQuery)).controls).toBe(3);
      if (process.env.UPDATE_REPLAY_HISTORIES === '1') {
        const history = await handle.fetchHistory();
        writeFileSync(
          path.join(replayDir, 'firmware-rollout-outage-controls.json'),
          `${historyToJSON(history)}\n`,
        );
      }
    } finally {
      await env.stop();
    }
  });

  it('continues as new between waves when its history passes the threshold, and still completes', async () => {
    const { executor, env, cohort } = await setup({ 'img-good': () => 'ok' });
    try {
      const id = `ro-can-${Date.now()}`;
      const handle = await start(env, id, spec('img-good'), { maxHistoryEvents: 10 });
      const result = await handle.result();
      expect(result.status).toBe('completed');
      expect(executor.downloadsOf('2.0')).toHaveLength(cohort.length);
      const desc = await handle.describe();
      // The handle follows the chain to the last run, which is not the first.
      expect(desc.runId).not.toBe(handle.firstExecutionRunId);
    } finally {
      await env.stop();
    }
  });
});
