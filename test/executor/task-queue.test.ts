import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExecuteRequest } from '../../executor/executor.js';
import { acquireLeases, listLeases, releaseLeases } from '../../executor/leases.js';
import {
  abandonSession,
  backoffMs,
  cancelTasks,
  claimNext,
  completeTask,
  enqueue,
  expireDue,
  failTask,
  markTriggered,
  stepStatus,
} from '../../executor/task-queue.js';
import { createTestDatabase } from '../support/db.js';

type Db = Awaited<ReturnType<typeof createTestDatabase>>;

describe('executor task queue and leases (PostgreSQL)', () => {
  let db: Db;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db?.drop();
  });

  const req = (over: Partial<Parameters<typeof ExecuteRequest.parse>[0] & object> = {}) =>
    ExecuteRequest.parse({
      ref: { scope: 'q', step: 's1' },
      devices: ['d1', 'd2'],
      operation: { kind: 'reboot' },
      deadline: new Date(Date.now() + 60_000),
      owner: 'wf-1',
      ...over,
    });

  it('queues once per (scope, step, device, operation) and reports resubmissions as existing', async () => {
    const a = await enqueue(db.pool, req());
    expect(a.map((x) => x.outcome)).toEqual(['queued', 'queued']);
    const b = await enqueue(db.pool, req());
    expect(b.map((x) => x.outcome)).toEqual(['existing', 'existing']);
    const n = await db.pool.query(`SELECT count(*)::int AS n FROM executor_tasks WHERE scope = 'q'`);
    expect(n.rows[0].n).toBe(2);
  });

  it('hands out one device task at a time, in order, and never skips the head held by a live session', async () => {
    await enqueue(db.pool, req({ ref: { scope: 'q', step: 's2' }, devices: ['d1'] }));
    const t1 = await claimNext(db.pool, 'd1', 'sess-A');
    expect(t1?.ref.step).toBe('s1');
    expect(await claimNext(db.pool, 'd1', 'sess-B')).toBeNull();
    expect(await completeTask(db.pool, t1!.id, {})).toBe(true);
    const t2 = await claimNext(db.pool, 'd1', 'sess-B');
    expect(t2?.ref.step).toBe('s2');
    expect(t2?.attempts).toBe(1);
    // Terminal states do not move.
    expect(await failTask(db.pool, t1!.id, { reason: 'device_fault', message: 'late' })).toBe(false);
    expect((await stepStatus(db.pool, { scope: 'q', step: 's1' }, ['d1']))[0]?.state).toBe('done');
  });

  it('retries a task of a broken session with backoff, never moving its state back, then gives up', async () => {
    expect(backoffMs(1)).toBe(5_000);
    expect(backoffMs(3)).toBe(20_000);
    expect(backoffMs(30)).toBe(600_000);
    const r = req({ ref: { scope: 'q', step: 'retry' }, devices: ['d3'], maxAttempts: 2 });
    await enqueue(db.pool, r);
    const t = await claimNext(db.pool, 'd3', 'sess-1');
    expect(await abandonSession(db.pool, 'sess-1', 'dropped', 60_000)).toBe(1);
    const [s] = await stepStatus(db.pool, r.ref);
    expect(s?.state).toBe('in_session');
    // Backoff: not handed out again before not_before.
    expect(await claimNext(db.pool, 'd3', 'sess-2')).toBeNull();
    await db.pool.query(`UPDATE executor_tasks SET not_before = now() WHERE id = $1`, [t!.id]);
    const again = await claimNext(db.pool, 'd3', 'sess-2');
    expect(again?.attempts).toBe(2);
    await abandonSession(db.pool, 'sess-2', 'dropped again', 0);
    const [f] = await stepStatus(db.pool, r.ref);
    expect(f?.state).toBe('failed');
    expect(f?.fault?.reason).toBe('retries_exhausted');
  });

  it('records trigger paths in order and expires what misses its deadline', async () => {
    const r = req({
      ref: { scope: 'q', step: 'exp' },
      devices: ['d4'],
      deadline: new Date(Date.now() + 300),
    });
    await enqueue(db.pool, r);
    await markTriggered(db.pool, 'd4', 'connection_request', 'timeout');
    await markTriggered(db.pool, 'd4', 'next_inform', 'waiting');
    const [s] = await stepStatus(db.pool, r.ref);
    expect(s).toMatchObject({ state: 'triggered', path: 'next_inform' });
    expect(s?.trail.map((x) => x.path)).toEqual(['connection_request', 'next_inform']);
    await new Promise((res) => setTimeout(res, 400));
    expect(await expireDue(db.pool)).toBeGreaterThanOrEqual(1);
    expect((await stepStatus(db.pool, r.ref))[0]?.state).toBe('expired');
    expect(await claimNext(db.pool, 'd4', 'x')).toBeNull();
  });

  it('cancels only tasks that have not reached a session', async () => {
    const r = req({ ref: { scope: 'q', step: 'cancel' }, devices: ['d5', 'd6'] });
    await enqueue(db.pool, r);
    await claimNext(db.pool, 'd5', 'sess');
    expect(await cancelTasks(db.pool, r.ref)).toBe(1);
    const s = await stepStatus(db.pool, r.ref);
    expect(s.map((x) => [x.deviceId, x.state])).toEqual([
      ['d5', 'in_session'],
      ['d6', 'failed'],
    ]);
  });

  it('leases: one owner per device, extendable by the owner, taken over only after expiry', async () => {
    const soon = new Date(Date.now() + 200);
    const g = await acquireLeases(db.pool, 'A', ['L1', 'L2'], soon);
    expect(g.granted.sort()).toEqual(['L1', 'L2']);
    const h = await acquireLeases(db.pool, 'B', ['L1'], new Date(Date.now() + 60_000));
    expect(h.granted).toEqual([]);
    expect(h.held[0]).toMatchObject({ deviceId: 'L1', holder: 'A' });
    const ext = await acquireLeases(db.pool, 'A', ['L1'], new Date(Date.now() + 60_000));
    expect(ext.granted).toEqual(['L1']);
    await new Promise((r) => setTimeout(r, 300));
    // L2's lease expired: B may take it; L1 was extended by A.
    const k = await acquireLeases(db.pool, 'B', ['L1', 'L2'], new Date(Date.now() + 60_000));
    expect(k.granted).toEqual(['L2']);
    expect((await listLeases(db.pool, ['L1', 'L2'])).map((l) => l.owner)).toEqual(['A', 'B']);
    expect(await releaseLeases(db.pool, 'A')).toBe(1);
    expect(await releaseLeases(db.pool, 'A')).toBe(0);
  });

  it('concurrent submits of the same step by two owners: exactly one wins each device', async () => {
    const mk = (owner: string) =>
      req({ ref: { scope: 'race', step: owner }, devices: ['R1', 'R2', 'R3'], owner });
    const [a, b] = await Promise.all([enqueue(db.pool, mk('X')), enqueue(db.pool, mk('Y'))]);
    for (let i = 0; i < 3; i++) {
      const outcomes = [a[i]?.outcome, b[i]?.outcome].sort();
      expect(outcomes).toEqual(['lease_held', 'queued']);
    }
  });
});
