import {
  allHandlersFinished,
  condition,
  defineQuery,
  defineUpdate,
  proxyActivities,
  setHandler,
} from '@temporalio/workflow';
import type {
  BatchSummary,
  ChangeStatus,
  CompensationSummary,
  createChangeRequestActivities,
} from '../activities/change-request.js';
import type { Proposer } from '../domain/approval/rules.js';
import { installApprovals } from './approval.js';

/**
 * One change request, from approval to a verified or undone change:
 *
 *   check (TR-181 per firmware + policy, plan hash unchanged) → approval (the shared mechanism, bound
 *   to the plan hash) → check again → per batch, canary first: snapshot (takes the leases) → apply →
 *   verify (read-back, device still informing, health values) → next batch … → done.
 *
 * A batch whose failures (write failed, partial, verification failed) exceed the tolerance halts the
 * change and restores the snapshot on every written device; failures within tolerance are restored
 * one by one. Partial application is always restored. Leases are released at the end, whatever the
 * outcome. The plan lives in PostgreSQL; history holds ids, hashes and counts only.
 */

type Acts = ReturnType<typeof createChangeRequestActivities>;

const quick = proxyActivities<Acts>({
  startToCloseTimeout: '2 minutes',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds' },
});
// Writes wait for devices; they heartbeat while they do.
const slow = proxyActivities<Acts>({
  startToCloseTimeout: '26 hours',
  heartbeatTimeout: '2 minutes',
  retry: { initialInterval: '1 second', maximumInterval: '1 minute' },
});

export interface ChangeRequestInput {
  changeId: string;
  /** The person who asked (for a planner proposal, the operator who gave the intent). They never approve. */
  proposer: Proposer;
  title: string;
  /** The hash the proposal was shown with; the workflow refuses to run a different plan. */
  planHash: string;
  approvalWindowMs?: number;
}

export interface ChangeRequestProgress {
  changeId: string;
  status: ChangeStatus;
  planHash: string;
  riskClass: string | null;
  requiredApprovals: number;
  batches: BatchSummary[];
  totalBatches: number;
  compensation: CompensationSummary | null;
  reasons: string[];
}

export interface ChangeRequestResult extends ChangeRequestProgress {}

export const changeRequestProgressQuery = defineQuery<ChangeRequestProgress>('changeRequest.progress');
/** Cancel: before approval nothing happens; during apply, written devices are restored. Idempotent. */
export const cancelChangeRequestUpdate = defineUpdate<
  { status: ChangeStatus; accepted: boolean },
  [{ by: string; reason?: string }]
>('changeRequest.cancel');

const TERMINAL: ChangeStatus[] = [
  'denied',
  'rejected',
  'expired',
  'completed',
  'compensated',
  'cancelled',
  'failed',
];

export async function changeRequest(input: ChangeRequestInput): Promise<ChangeRequestResult> {
  const p: ChangeRequestProgress = {
    changeId: input.changeId,
    status: 'awaiting_approval',
    planHash: input.planHash,
    riskClass: null,
    requiredApprovals: 0,
    batches: [],
    totalBatches: 0,
    compensation: null,
    reasons: [],
  };
  let cancelled: { by: string; reason?: string } | null = null;
  let version = 0;

  setHandler(changeRequestProgressQuery, () => p);
  setHandler(
    cancelChangeRequestUpdate,
    (req) => {
      const accepted = cancelled === null && !TERMINAL.includes(p.status);
      if (accepted) cancelled = req;
      return { status: p.status, accepted };
    },
    {
      validator: (req) => {
        if (!req || typeof req.by !== 'string' || req.by.length === 0) throw new Error('by is required');
      },
    },
  );

  const record = (audit?: { action: string; key: string; data?: Record<string, unknown> }) =>
    quick.crRecord({
      changeId: input.changeId,
      status: p.status,
      version: ++version,
      progress: { batches: p.batches, totalBatches: p.totalBatches, compensation: p.compensation },
      reasons: p.reasons,
      ...(audit ? { audit } : {}),
    });

  async function end(status: ChangeStatus, reasons: string[], key: string): Promise<ChangeRequestResult> {
    p.status = status;
    p.reasons = [...p.reasons, ...reasons];
    await quick.crRelease({ changeId: input.changeId });
    await record({ action: `change.${status}`, key });
    await condition(allHandlersFinished);
    return p;
  }

  // --- the deterministic gate, on today's fleet
  const first = await quick.crCheck({ changeId: input.changeId, expectPlanHash: input.planHash });
  p.riskClass = first.riskClass;
  p.requiredApprovals = first.requiredApprovals;
  if (!first.ok) return end('denied', first.reasons, 'denied');
  p.totalBatches = first.batches;
  await record({
    action: 'change.awaiting_approval',
    key: 'awaiting-approval',
    data: { planHash: input.planHash },
  });

  // --- approval, bound to the plan hash (the shared mechanism; the API forwards votes to it)
  const approvals = installApprovals({
    subject: { kind: 'change_request', id: input.changeId },
    title: input.title,
    proposer: input.proposer,
    planHash: input.planHash,
    requiredApprovals: first.requiredApprovals,
    windowMs: input.approvalWindowMs ?? 7 * 24 * 3600_000,
  });
  const left = approvals.remainingMs();
  if (left > 0) await condition(() => !approvals.isPending() || cancelled !== null, left);
  if (cancelled !== null && approvals.isPending())
    return end(
      'cancelled',
      [`cancelled by ${(cancelled as { by: string }).by} before approval`],
      'cancelled',
    );
  const outcome = await approvals.wait();
  if (outcome.status !== 'approved')
    return end(
      outcome.status === 'expired' ? 'expired' : 'rejected',
      [`approval ${outcome.status}`],
      'not-approved',
    );

  // --- again right before the first write: fleet, models or policy may have moved meanwhile
  const second = await quick.crCheck({ changeId: input.changeId, expectPlanHash: outcome.planHash });
  if (!second.ok) return end('failed', second.reasons, 'recheck-failed');

  // A profile-owned field changes only under a time-boxed override (when the approved plan says so).
  await quick.crOverride({ changeId: input.changeId });
  p.status = 'applying';
  await record({ action: 'change.applying', key: 'applying', data: { approvers: outcome.approvers } });

  let round = 0;
  async function compensate(through: number, devices?: string[]): Promise<CompensationSummary> {
    const prev = p.status;
    p.status = 'compensating';
    await record();
    const r = await slow.crCompensate({
      changeId: input.changeId,
      throughBatch: through,
      ...(devices ? { devices } : {}),
      round: `r${round++}`,
    });
    const c = p.compensation ?? { attempted: 0, restored: 0, failed: 0, pending: 0, notRestorable: 0 };
    p.compensation = {
      attempted: c.attempted + r.attempted,
      restored: c.restored + r.restored,
      failed: c.failed + r.failed,
      pending: c.pending + r.pending,
      notRestorable: c.notRestorable + r.notRestorable,
    };
    p.status = prev;
    return r;
  }

  async function undoAll(batch: number, status: ChangeStatus, reasons: string[], key: string) {
    p.reasons = [...p.reasons, ...reasons];
    const r = await compensate(batch);
    await quick.crDropOverride({ changeId: input.changeId });
    const complete = r.failed === 0 && r.pending === 0 && r.notRestorable === 0;
    return end(
      complete ? status : 'failed',
      complete
        ? []
        : [
            `compensation incomplete: ${r.failed} failed, ${r.pending} pending, ${r.notRestorable} not restorable`,
          ],
      key,
    );
  }

  let written = 0;
  let skipped = 0;
  for (let b = 0; b < p.totalBatches; b++) {
    if (cancelled !== null)
      return undoAll(b - 1, 'cancelled', [`cancelled by ${(cancelled as { by: string }).by}`], 'cancelled');
    await slow.crSnapshot({ changeId: input.changeId, batch: b });
    const applied = await slow.crApply({ changeId: input.changeId, batch: b });
    const appliedAt = Date.now();
    const s = await slow.crVerify({ changeId: input.changeId, batch: b, appliedAt });
    p.batches[b] = s;
    await record({
      action: 'change.batch_done',
      key: `batch-${b}`,
      data: { ...s, applied: applied.applied },
    });
    const attempted = s.devices - s.skipped;
    written += attempted;
    skipped += s.skipped;
    const failures = s.partial + s.failed + s.verifyFailed;
    const share = attempted === 0 ? 0 : failures / attempted;
    const limit = (await quick.crTolerance({ changeId: input.changeId })).maxFailedShare;
    if (failures > 0 && share > limit) {
      const what = b === 0 ? 'canary' : `batch ${b}`;
      return undoAll(
        b,
        'compensated',
        [
          `${what}: ${failures} of ${attempted} device(s) failed (partial ${s.partial}, write ${s.failed}, verification ${s.verifyFailed}); everything written was restored`,
        ],
        `halted-${b}`,
      );
    }
    // Within tolerance: the failed devices are restored alone, the change goes on.
    if (failures > 0)
      await compensate(b, await quick.crFailedDevices({ changeId: input.changeId, batch: b }));
  }
  if (written === 0)
    return end('failed', [`no device could be written (${skipped} skipped)`], 'nothing-written');
  return end(
    'completed',
    [
      skipped > 0
        ? `every batch verified; ${skipped} device(s) skipped (see per-device details)`
        : 'every batch verified',
    ],
    'completed',
  );
}
