import {
  ApplicationFailure,
  condition,
  defineQuery,
  defineUpdate,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { ApprovalSnapshot, createApprovalActivities } from '../activities/approval.js';
import type { AuditActivityEntry } from '../activities/audit.js';
import {
  type ApprovalRequest,
  type ApprovalState,
  type ApprovalStatus,
  applyApproval,
  approvalRequestSchema,
  approvalsCount,
  checkApproval,
  expireApproval,
  initialApprovalState,
  type Proposer,
  type RefusalCode,
  revisePlan,
} from '../domain/approval/rules.js';

/**
 * The one approval mechanism. A workflow that needs approval does
 *
 *   const approvals = installApprovals({ subject, title, proposer, planHash, requiredApprovals, windowMs });
 *   const outcome = await approvals.wait(); // 'approved' | 'rejected' | 'expired'
 *
 * Approvers reach it through the `decide` update (the API forwards there). Its validator applies the
 * rules of domain/approval/rules.ts, so a refused vote never enters history; the API maps the
 * refusal code to 403/409. Votes are deduplicated by approval id, including across continue-as-new
 * (pass `approvals.carry()` into the next run as `resume`). Every change is mirrored into the inbox
 * tables and the audit log before the approver gets an answer. One gate at a time per workflow.
 */

/** `ApplicationFailure.type` of a refused vote; `details[0]` is `{ code: RefusalCode }`. */
export const APPROVAL_REFUSED = 'ApprovalRefused';

export interface DecideResult {
  status: ApprovalStatus;
  approvals: number;
  requiredApprovals: number;
  /** True when this approval id had been counted before (a retry): it changed nothing. */
  duplicate: boolean;
  planHash: string;
}

export const decideUpdate = defineUpdate<DecideResult, [ApprovalRequest]>('fleetbrain.approval.decide');
export const approvalStateQuery = defineQuery<ApprovalState>('fleetbrain.approval.state');

export interface InstallApprovalsOptions {
  /** Which gate of the workflow ('plan' by default); part of the inbox id. */
  gate?: string;
  subject: { kind: string; id: string };
  title: string;
  proposer: Proposer;
  planHash: string;
  /** From the policy decision. 0 means no approval is needed. */
  requiredApprovals: number;
  /** How long approvers have, from now. Ignored when resuming (the deadline carries over). */
  windowMs: number;
  /** The previous run's `carry()`, after continue-as-new. */
  resume?: CarriedApprovals;
}

export interface CarriedApprovals {
  state: ApprovalState;
  version: number;
  title: string;
  subject: { kind: string; id: string };
}

export interface ApprovalOutcome {
  status: Exclude<ApprovalStatus, 'pending'>;
  planHash: string;
  approvers: string[];
  rejectedBy?: string;
}

export interface Approvals {
  /** Resolves when the gate is approved, rejected, or its window expired. */
  wait(): Promise<ApprovalOutcome>;
  /** A new plan hash (any edit, including the device set) voids every vote so far. */
  revisePlan(planHash: string, by: { id: string; kind: 'user' | 'service' | 'system' }): Promise<void>;
  state(): ApprovalState;
  isPending(): boolean;
  /** Milliseconds of workflow time until the window closes (0 when closed). */
  remainingMs(): number;
  /** What the next run needs after continue-as-new; call after `allHandlersFinished`. */
  carry(): CarriedApprovals;
}

const { recordApproval } = proxyActivities<ReturnType<typeof createApprovalActivities>>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds' },
});

function refusal(code: RefusalCode, message: string): ApplicationFailure {
  return ApplicationFailure.create({
    type: APPROVAL_REFUSED,
    message,
    details: [{ code }],
    nonRetryable: true,
  });
}

function parseRequest(raw: unknown): ApprovalRequest {
  const parsed = approvalRequestSchema.safeParse(raw);
  if (!parsed.success) {
    throw ApplicationFailure.create({
      type: 'InvalidApprovalRequest',
      message: parsed.error.issues[0]?.message ?? 'invalid approval request',
      nonRetryable: true,
    });
  }
  return parsed.data;
}

export function installApprovals(opts: InstallApprovalsOptions): Approvals {
  const { workflowId } = workflowInfo();
  const resumed = opts.resume;
  let state: ApprovalState =
    resumed?.state ??
    initialApprovalState({
      gate: opts.gate,
      proposer: opts.proposer,
      planHash: opts.planHash,
      requiredApprovals: opts.requiredApprovals,
      expiresAt: Date.now() + opts.windowMs,
    });
  let version = resumed?.version ?? 0;
  const title = resumed?.title ?? opts.title;
  const subject = resumed?.subject ?? opts.subject;
  const requestId = `${workflowId}/${state.gate}`;
  // Writes to the inbox and the audit log go out in the order the changes happened.
  let recording: Promise<void> = Promise.resolve();

  function snapshot(): ApprovalSnapshot {
    return {
      requestId,
      workflowId,
      gate: state.gate,
      subject,
      title,
      proposer: { id: state.proposer.id, name: state.proposer.name },
      planHash: state.planHash,
      planRevision: state.planRevision,
      requiredApprovals: state.requiredApprovals,
      approvals: approvalsCount(state),
      status: state.status,
      expiresAt: state.expiresAt,
      version,
      votes: state.votes,
      voided: state.voided,
    };
  }

  function record(
    action: string,
    actor: AuditActivityEntry['actor'],
    key: string,
    data: Record<string, unknown>,
  ) {
    version++;
    const audit: AuditActivityEntry = {
      actor,
      action,
      subject,
      data: { gate: state.gate, requestId, workflowId, planHash: state.planHash, ...data },
      idempotencyKey: `approval/${requestId}/${key}`,
      at: new Date(Date.now()).toISOString(),
    };
    const snap = snapshot();
    recording = recording.then(() => recordApproval({ snapshot: snap, audit }));
    return recording;
  }

  const system = { id: 'fleetbrain', kind: 'system' as const };
  function recordOutcome() {
    if (state.status === 'approved') {
      record('approval.approved', system, `approved/${state.planRevision}`, {
        approvers: state.votes.filter((v) => v.decision === 'approve').map((v) => v.approverName),
      });
    } else if (state.status === 'expired') {
      record('approval.expired', system, 'expired', { approvals: approvalsCount(state) });
    }
  }

  if (!resumed) {
    record('approval.requested', { id: state.proposer.id, kind: state.proposer.kind }, 'requested', {
      requiredApprovals: state.requiredApprovals,
      expiresAt: new Date(state.expiresAt).toISOString(),
      proposer: state.proposer.name,
    });
    recordOutcome(); // a policy requiring 0 approvals is approved at once, and says so
  }

  setHandler(approvalStateQuery, () => state);
  setHandler(
    decideUpdate,
    async (raw) => {
      const req = parseRequest(raw);
      const check = checkApproval(state, req, Date.now());
      if (!check.ok) throw refusal(check.code, check.message);
      if (!check.duplicate) {
        state = applyApproval(state, req, Date.now());
        record(
          req.decision === 'approve' ? 'approval.granted' : 'approval.rejected',
          { id: req.approver.id, kind: 'user' },
          `vote/${req.approvalId}`,
          { approvalId: req.approvalId, approver: req.approver.name, comment: req.comment },
        );
        recordOutcome();
      }
      // The answer means: counted and on record (inbox + audit log).
      await recording;
      return {
        status: state.status,
        approvals: approvalsCount(state),
        requiredApprovals: state.requiredApprovals,
        duplicate: check.duplicate,
        planHash: state.planHash,
      };
    },
    {
      validator: (raw) => {
        const check = checkApproval(state, parseRequest(raw), Date.now());
        if (!check.ok) throw refusal(check.code, check.message);
      },
    },
  );

  const remainingMs = () => Math.max(0, state.expiresAt - Date.now());

  return {
    async wait() {
      if (state.status === 'pending') {
        const left = remainingMs();
        const decided = left > 0 && (await condition(() => state.status !== 'pending', left));
        if (!decided && state.status === 'pending') {
          state = expireApproval(state);
          recordOutcome();
        }
      }
      await recording;
      const rejectedBy = state.votes.find((v) => v.decision === 'reject')?.approverName;
      return {
        status: state.status as ApprovalOutcome['status'],
        planHash: state.planHash,
        approvers: state.votes.filter((v) => v.decision === 'approve').map((v) => v.approverName),
        ...(rejectedBy ? { rejectedBy } : {}),
      };
    },
    async revisePlan(planHash, by) {
      if (planHash === state.planHash) return;
      const before = state;
      state = revisePlan(state, planHash);
      await record('approval.plan_changed', by, `plan/${state.planRevision}`, {
        previousPlanHash: before.planHash,
        voidedApprovals: before.votes.map((v) => v.approvalId),
      });
    },
    state: () => state,
    isPending: () => state.status === 'pending',
    remainingMs,
    carry: () => ({ state, version, title, subject }),
  };
}
