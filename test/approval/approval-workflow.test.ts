import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listAudit, verifyAudit } from '../../db/audit.js';
import { approvalRequests, approvalVotes } from '../../db/schema/approval.js';
import type { Principal } from '../../domain/approval/identity.js';
import { planHash } from '../../domain/approval/plan-hash.js';
import type { ApprovalDecision } from '../../domain/approval/rules.js';
import { approvalStateQuery, decideUpdate } from '../../workflows/approval.js';
import {
  type ApprovalDemoPlan,
  approvalDemo,
  revisePlanUpdate,
  rolloverSignal,
} from '../../workflows/approvalDemo.js';
import { createTestDatabase } from '../support/db.js';
import { startTestWorker } from '../support/temporal.js';
import { alice, asProposer, bob, carol, planner, vic } from './principals.js';

const replayDir = path.join(import.meta.dirname, '..', 'replay');
const plan1: ApprovalDemoPlan = {
  spec: { set: { 'Device.WiFi.Radio.1.Channel': 6 } },
  deviceIds: ['d1', 'd2', 'd3'],
};
const plan2: ApprovalDemoPlan = { ...plan1, deviceIds: ['d1', 'd2', 'd3', 'd4'] };

describe('approval workflow on the real Temporal dev server', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let env: Awaited<ReturnType<typeof startTestWorker>>;
  beforeAll(async () => {
    db = await createTestDatabase();
    env = await startTestWorker({ db: db.db });
  });
  afterAll(async () => {
    await env?.stop();
    await db?.drop();
  });

  async function start(opts: { requiredApprovals: number; windowMs?: number; proposer?: Principal }) {
    return env.client.workflow.start(approvalDemo, {
      taskQueue: env.taskQueue,
      workflowId: `approval-demo-${randomUUID()}`,
      args: [
        {
          proposer: asProposer(opts.proposer ?? alice),
          plan: plan1,
          requiredApprovals: opts.requiredApprovals,
          windowMs: opts.windowMs ?? 60_000,
        },
      ],
    });
  }
  type Handle = Awaited<ReturnType<typeof start>>;

  function decide(
    h: Handle,
    who: Principal,
    o: { id?: string; hash?: string; decision?: ApprovalDecision; updateId?: string } = {},
  ) {
    const approvalId = o.id ?? randomUUID();
    return h.executeUpdate(decideUpdate, {
      // As the API does: one Temporal update id per (approver, approval id).
      updateId: o.updateId ?? `${who.id}:${approvalId}`,
      args: [
        { approvalId, approver: who, decision: o.decision ?? 'approve', planHash: o.hash ?? planHash(plan1) },
      ],
    });
  }

  async function refusalCode(p: Promise<unknown>): Promise<string> {
    const err = await p.then(
      () => {
        throw new Error('expected the update to be refused');
      },
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(WorkflowUpdateFailedError);
    const cause = (err as WorkflowUpdateFailedError).cause;
    expect(cause).toBeInstanceOf(ApplicationFailure);
    expect((cause as ApplicationFailure).type).toBe('ApprovalRefused');
    const [detail] = (cause as ApplicationFailure).details ?? [];
    return (detail as { code: string }).code;
  }

  it('refuses self-approval, even when the proposer holds the approver role', async () => {
    const h = await start({ requiredApprovals: 1 });
    expect(await refusalCode(decide(h, alice))).toBe('self_approval');
    expect((await h.query(approvalStateQuery)).votes).toHaveLength(0);
    await decide(h, bob);
    expect(await h.result()).toMatchObject({ status: 'approved', approvers: ['bob'] });
  });

  it('never lets a service identity approve, and needs the approver role', async () => {
    const h = await start({ requiredApprovals: 1, proposer: vic });
    expect(await refusalCode(decide(h, planner))).toBe('service_identity');
    expect(await refusalCode(decide(h, vic))).toBe('role_required');
    expect(await refusalCode(decide(h, { ...vic, id: 'id-vic2', name: 'vic2' }))).toBe('role_required');
    await h.terminate('done');
  });

  it('voids approvals when the plan changes, including the resolved device set', async () => {
    const h = await start({ requiredApprovals: 2 });
    expect(await decide(h, bob)).toMatchObject({ approvals: 1, status: 'pending' });
    const { planHash: newHash } = await h.executeUpdate(revisePlanUpdate, {
      args: [{ plan: plan2, by: asProposer(alice) }],
    });
    expect(newHash).toBe(planHash(plan2));
    expect(newHash).not.toBe(planHash(plan1));
    const state = await h.query(approvalStateQuery);
    expect(state).toMatchObject({ planRevision: 1, votes: [] });
    expect(state.voided.map((v) => v.approverName)).toEqual(['bob']);
    // An approval of what carol was shown before the change is void.
    expect(await refusalCode(decide(h, carol, { hash: planHash(plan1) }))).toBe('plan_changed');
    // Approvals of the new plan: bob must approve again; his old vote does not count.
    expect(await decide(h, carol, { hash: newHash })).toMatchObject({ approvals: 1, status: 'pending' });
    expect(await decide(h, bob, { hash: newHash })).toMatchObject({ approvals: 2, status: 'approved' });
    const outcome = await h.result();
    expect(outcome).toEqual({ status: 'approved', planHash: newHash, approvers: ['carol', 'bob'] });

    const [row] = await db.db
      .select()
      .from(approvalRequests)
      .where(eq(approvalRequests.workflowId, h.workflowId));
    expect(row).toMatchObject({ status: 'approved', planHash: newHash, planRevision: 1, approvals: 2 });
    const votes = await db.db
      .select()
      .from(approvalVotes)
      .where(eq(approvalVotes.requestId, row?.id ?? ''));
    expect(votes.filter((v) => v.voided).map((v) => v.approverName)).toEqual(['bob']);
    const actions = (await listAudit(db.db, { subjectId: h.workflowId })).map((e) => e.action);
    expect(actions).toEqual([
      'approval.requested',
      'approval.granted',
      'approval.plan_changed',
      'approval.granted',
      'approval.granted',
      'approval.approved',
    ]);
    if (process.env.UPDATE_REPLAY_HISTORIES === '1') {
      writeFileSync(
        path.join(replayDir, 'approval-demo-plan-changed.json'),
        `${historyToJSON(await h.fetchHistory())}\n`,
      );
    }
  });

  it('counts two approvals with the same id once, also across continue-as-new', async () => {
    const h = await start({ requiredApprovals: 2 });
    const id = randomUUID();
    expect(await decide(h, bob, { id })).toMatchObject({ approvals: 1, duplicate: false });
    // Same update id: Temporal itself answers with the first outcome.
    expect(await decide(h, bob, { id })).toMatchObject({ approvals: 1, duplicate: false });
    // Another update id (e.g. a retry through another API replica): the workflow's own dedup.
    expect(await decide(h, bob, { id, updateId: randomUUID() })).toMatchObject({
      approvals: 1,
      duplicate: true,
    });
    const firstRun = (await h.describe()).runId;
    await h.signal(rolloverSignal);
    await expect.poll(async () => (await h.describe()).runId, { timeout: 15_000 }).not.toBe(firstRun);
    // A new run: Temporal's own update-id dedup no longer applies; the carried state does.
    expect(await decide(h, bob, { id })).toMatchObject({ approvals: 1, duplicate: true, status: 'pending' });
    // The same id used for a different vote is a conflict, not a count.
    expect(await refusalCode(decide(h, carol, { id }))).toBe('approval_id_conflict');
    expect(await decide(h, carol)).toMatchObject({ approvals: 2, status: 'approved' });
    expect(await h.result()).toMatchObject({ status: 'approved', approvers: ['bob', 'carol'] });
    const votes = await db.db
      .select()
      .from(approvalVotes)
      .where(eq(approvalVotes.requestId, `${h.workflowId}/plan`));
    expect(votes).toHaveLength(2);
  });

  it('needs two distinct approvers when the policy requires two', async () => {
    const h = await start({ requiredApprovals: 2 });
    expect(await decide(h, bob)).toMatchObject({ approvals: 1, status: 'pending' });
    expect(await refusalCode(decide(h, bob))).toBe('already_decided_by_approver');
    expect((await h.query(approvalStateQuery)).status).toBe('pending');
    expect(await decide(h, carol)).toMatchObject({ approvals: 2, status: 'approved' });
    expect(await h.result()).toMatchObject({ status: 'approved', approvers: ['bob', 'carol'] });
  });

  it('ends the workflow as expired when the window closes', async () => {
    const h = await start({ requiredApprovals: 1, windowMs: 1_500 });
    expect(await h.result()).toEqual({ status: 'expired', planHash: planHash(plan1), approvers: [] });
    const [row] = await db.db
      .select()
      .from(approvalRequests)
      .where(eq(approvalRequests.workflowId, h.workflowId));
    expect(row?.status).toBe('expired');
    const actions = (await listAudit(db.db, { subjectId: h.workflowId })).map((e) => e.action);
    expect(actions).toEqual(['approval.requested', 'approval.expired']);
  });

  it('ends as rejected on a rejection, and refuses votes afterwards', async () => {
    const h = await start({ requiredApprovals: 2 });
    await decide(h, bob);
    expect(await decide(h, carol, { decision: 'reject' })).toMatchObject({ status: 'rejected' });
    expect(await h.result()).toMatchObject({ status: 'rejected', rejectedBy: 'carol' });
  });

  it('leaves an audit chain that verifies', async () => {
    expect(await verifyAudit(db.db)).toMatchObject({ ok: true });
  });
});
