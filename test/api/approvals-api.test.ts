import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildServer } from '../../api/server.js';
import { createIdentity } from '../../db/identities.js';
import { planHash } from '../../domain/approval/plan-hash.js';
import { revisePlanUpdate } from '../../workflows/approvalDemo.js';
import { type ApprovalDemoPlan, approvalDemo } from '../../workflows/approvalDemo.js';
import { createTestIdentity } from '../support/auth.js';
import { createTestDatabase } from '../support/db.js';
import { startTestWorker } from '../support/temporal.js';

type Who = Awaited<ReturnType<typeof createTestIdentity>>;
const plan1: ApprovalDemoPlan = { spec: { firmware: '7.2.1' }, deviceIds: ['cpe-1', 'cpe-2'] };
const plan2: ApprovalDemoPlan = { spec: { firmware: '7.2.1' }, deviceIds: ['cpe-1', 'cpe-2', 'cpe-3'] };

describe('approvals through the API, forwarded to the owning workflow', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let env: Awaited<ReturnType<typeof startTestWorker>>;
  let server: Awaited<ReturnType<typeof buildServer>>;
  let alice: Who; // operator and approver: proposes
  let bob: Who;
  let carol: Who;
  let vic: Who; // viewer
  let planner: Who; // service identity
  let root: Who; // admin

  beforeAll(async () => {
    db = await createTestDatabase();
    env = await startTestWorker({ db: db.db });
    server = await buildServer({
      db,
      temporal: { client: env.client, namespace: 'default', taskQueue: env.taskQueue },
      readiness: [],
      auth: {},
    });
    alice = await createTestIdentity(db.db, 'alice', ['operator', 'approver']);
    bob = await createTestIdentity(db.db, 'bob', ['approver']);
    carol = await createTestIdentity(db.db, 'carol', ['approver']);
    vic = await createTestIdentity(db.db, 'vic', ['viewer']);
    planner = await createTestIdentity(db.db, 'planner', ['operator'], { kind: 'service' });
    root = await createTestIdentity(db.db, 'root', ['admin']);
  });
  afterAll(async () => {
    await server?.close();
    await env?.stop();
    await db?.drop();
  });

  async function propose(by: Who, requiredApprovals: number, windowMs = 60_000) {
    const handle = await env.client.workflow.start(approvalDemo, {
      taskQueue: env.taskQueue,
      workflowId: `api-demo-${randomUUID()}`,
      args: [
        {
          proposer: { id: by.principal.id, name: by.principal.name, kind: by.principal.kind },
          plan: plan1,
          requiredApprovals,
          windowMs,
        },
      ],
    });
    // The inbox row is written by an activity; wait until it is there.
    await expect
      .poll(
        async () =>
          (
            await server.inject({
              method: 'GET',
              url: `/approvals/${handle.workflowId}/plan`,
              headers: vic.headers,
            })
          ).statusCode,
        { timeout: 15_000 },
      )
      .toBe(200);
    return handle;
  }

  const decide = (
    who: Who,
    workflowId: string,
    body: { planHash: string; approvalId?: string; comment?: string },
    decision: 'approve' | 'reject' = 'approve',
  ) =>
    server.inject({
      method: 'POST',
      url: `/approvals/${workflowId}/plan/${decision}`,
      headers: who.headers,
      payload: body,
    });

  const inbox = async (who: Who) => {
    const res = await server.inject({ method: 'GET', url: '/approvals/inbox', headers: who.headers });
    expect(res.statusCode).toBe(200);
    return (res.json() as { items: { workflowId: string }[] }).items.map((i) => i.workflowId);
  };

  it('refuses self-approval with 403, even though the proposer holds the approver role', async () => {
    const h = await propose(alice, 1);
    expect(await inbox(alice)).not.toContain(h.workflowId);
    expect(await inbox(bob)).toContain(h.workflowId);
    const res = await decide(alice, h.workflowId, { planHash: planHash(plan1) });
    expect(res.statusCode).toBe(403);
    expect(res.json()).toMatchObject({ code: 'self_approval' });
    const ok = await decide(bob, h.workflowId, { planHash: planHash(plan1) });
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toMatchObject({ status: 'approved', approvals: 1, requiredApprovals: 1 });
    expect(await h.result()).toMatchObject({ status: 'approved', approvers: ['bob'] });
    // Decided: out of the inbox, and a further vote is a conflict.
    expect(await inbox(carol)).not.toContain(h.workflowId);
    const late = await decide(carol, h.workflowId, { planHash: planHash(plan1) });
    expect(late.statusCode).toBe(409);
    expect(late.json()).toMatchObject({ code: 'not_pending' });
  });

  it('403 for viewers and service identities; a service identity cannot even be given the approver role', async () => {
    const h = await propose(planner, 1); // the planner may propose
    for (const who of [vic, planner]) {
      const res = await decide(who, h.workflowId, { planHash: planHash(plan1) });
      expect(res.statusCode).toBe(403);
      expect(res.json()).toMatchObject({ code: 'forbidden' });
    }
    await expect(
      createIdentity(db.db, { name: 'reconciler', kind: 'service', roles: ['approver'] }),
    ).rejects.toThrow(/never approve/);
    // The database refuses it too, whatever code writes the row.
    await expect(
      db.pool.query(`INSERT INTO identities (name, kind, roles) VALUES ('sneaky', 'service', '{approver}')`),
    ).rejects.toMatchObject({ code: '23514' });
    await h.terminate('test done');
  });

  it('409 plan_changed for an approval of a plan that has since changed; earlier approvals are void', async () => {
    const h = await propose(alice, 2);
    expect((await decide(bob, h.workflowId, { planHash: planHash(plan1) })).json()).toMatchObject({
      approvals: 1,
    });
    await h.executeUpdate(revisePlanUpdate, {
      args: [{ plan: plan2, by: { id: alice.principal.id, name: 'alice', kind: 'user' } }],
    });
    const stale = await decide(carol, h.workflowId, { planHash: planHash(plan1) });
    expect(stale.statusCode).toBe(409);
    expect(stale.json()).toMatchObject({ code: 'plan_changed' });
    // bob's vote was for the old plan: the request is back in his inbox.
    await expect.poll(() => inbox(bob)).toContain(h.workflowId);
    const detail = await server.inject({
      method: 'GET',
      url: `/approvals/${h.workflowId}/plan`,
      headers: vic.headers,
    });
    expect(detail.json()).toMatchObject({ planHash: planHash(plan2), planRevision: 1, approvals: 0 });
    expect((detail.json() as { votes: { voided: boolean }[] }).votes).toEqual([
      expect.objectContaining({ voided: true }),
    ]);
    await decide(bob, h.workflowId, { planHash: planHash(plan2) });
    const last = await decide(carol, h.workflowId, { planHash: planHash(plan2) });
    expect(last.json()).toMatchObject({ status: 'approved', approvals: 2 });
  });

  it('counts the same approval id once', async () => {
    const h = await propose(alice, 2);
    const approvalId = randomUUID();
    const first = await decide(bob, h.workflowId, { planHash: planHash(plan1), approvalId });
    const again = await decide(bob, h.workflowId, { planHash: planHash(plan1), approvalId });
    expect(first.statusCode).toBe(200);
    expect(again.statusCode).toBe(200);
    expect(again.json()).toMatchObject({ approvalId, approvals: 1, status: 'pending' });
    // A second, different vote by the same person is not a second approver.
    const twice = await decide(bob, h.workflowId, { planHash: planHash(plan1) });
    expect(twice.statusCode).toBe(409);
    expect(twice.json()).toMatchObject({ code: 'already_decided_by_approver' });
    expect((await decide(carol, h.workflowId, { planHash: planHash(plan1) })).json()).toMatchObject({
      status: 'approved',
      approvals: 2,
    });
  });

  it('rejects through the API and records everything in a verifiable audit log', async () => {
    const h = await propose(alice, 1);
    const res = await decide(
      carol,
      h.workflowId,
      { planHash: planHash(plan1), comment: 'wrong cohort' },
      'reject',
    );
    expect(res.json()).toMatchObject({ status: 'rejected' });
    expect(await h.result()).toMatchObject({ status: 'rejected', rejectedBy: 'carol' });
    const audit = await server.inject({
      method: 'GET',
      url: `/audit?subjectId=${h.workflowId}`,
      headers: vic.headers,
    });
    expect((audit.json() as { items: { action: string }[] }).items.map((e) => e.action)).toEqual([
      'approval.requested',
      'approval.rejected',
    ]);
    const verify = await server.inject({
      method: 'POST',
      url: '/audit/verify',
      headers: root.headers,
      payload: {},
    });
    expect(verify.json()).toMatchObject({ ok: true });
    const head = await server.inject({ method: 'GET', url: '/audit/head', headers: vic.headers });
    expect((head.json() as { seq: number }).seq).toBe((verify.json() as { entries: number }).entries);
  });

  it('404 for an unknown approval, 400 for a malformed plan hash', async () => {
    expect((await decide(bob, 'no-such-workflow', { planHash: planHash(plan1) })).statusCode).toBe(404);
    const bad = await decide(bob, 'no-such-workflow', { planHash: 'abc' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ code: 'invalid_request' });
  });
});
