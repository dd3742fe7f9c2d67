import { z } from 'zod';
import { identityKindSchema, mayDecideApprovals, principalSchema } from './identity.js';

/**
 * The rules of the one approval mechanism, as pure functions over a small state. Workflows run them
 * in an update validator (refusals never reach history) and in the handler; the API maps refusal
 * codes to HTTP statuses. Nothing here reads a clock: `now` is passed in (workflow time).
 */

export const approvalDecisionSchema = z.enum(['approve', 'reject']);
export type ApprovalDecision = z.infer<typeof approvalDecisionSchema>;

export const approvalRequestSchema = z
  .object({
    /** Chosen by the client (or the API) once per intended vote; a retry with the same id counts once. */
    approvalId: z.string().min(8).max(128),
    approver: principalSchema,
    decision: approvalDecisionSchema,
    /** The plan hash the approver was shown; it must be the plan the workflow holds now. */
    planHash: z.string().regex(/^[0-9a-f]{64}$/),
    comment: z.string().max(2000).optional(),
  })
  .strict();
export type ApprovalRequest = z.infer<typeof approvalRequestSchema>;

export interface ApprovalVote {
  approvalId: string;
  approverId: string;
  approverName: string;
  decision: ApprovalDecision;
  planHash: string;
  at: number;
  comment?: string;
}

export type ApprovalStatus = 'pending' | 'approved' | 'rejected' | 'expired';

export const proposerSchema = z.object({
  id: z.string().min(1),
  name: z.string().min(1),
  kind: identityKindSchema,
});
export type Proposer = z.infer<typeof proposerSchema>;

export interface ApprovalState {
  /** Which gate of the workflow this is ('plan' unless a workflow has several). */
  gate: string;
  proposer: Proposer;
  planHash: string;
  /** Number of distinct approvers the policy decision requires (0: no approval needed). */
  requiredApprovals: number;
  /** Workflow time (epoch ms) after which the window is closed. */
  expiresAt: number;
  status: ApprovalStatus;
  /** Votes on the current plan hash. */
  votes: ApprovalVote[];
  /** Votes that a plan change voided; kept so a retry of them is recognised and stays void. */
  voided: ApprovalVote[];
  planRevision: number;
}

export const REFUSAL_CODES = [
  'self_approval',
  'service_identity',
  'role_required',
  'plan_changed',
  'already_decided_by_approver',
  'approval_id_conflict',
  'not_pending',
  'window_expired',
] as const;
export type RefusalCode = (typeof REFUSAL_CODES)[number];

/** HTTP status per refusal: 403 for who you are, 409 for the state the approval is in. */
export const REFUSAL_STATUS: Record<RefusalCode, 403 | 409> = {
  self_approval: 403,
  service_identity: 403,
  role_required: 403,
  plan_changed: 409,
  already_decided_by_approver: 409,
  approval_id_conflict: 409,
  not_pending: 409,
  window_expired: 409,
};

export type ApprovalCheck =
  | { ok: true; duplicate: boolean }
  | { ok: false; code: RefusalCode; message: string };

export function initialApprovalState(init: {
  gate?: string;
  proposer: Proposer;
  planHash: string;
  requiredApprovals: number;
  expiresAt: number;
}): ApprovalState {
  if (!Number.isInteger(init.requiredApprovals) || init.requiredApprovals < 0) {
    throw new RangeError(`requiredApprovals must be a non-negative integer, got ${init.requiredApprovals}`);
  }
  return {
    gate: init.gate ?? 'plan',
    proposer: init.proposer,
    planHash: init.planHash,
    requiredApprovals: init.requiredApprovals,
    expiresAt: init.expiresAt,
    status: init.requiredApprovals === 0 ? 'approved' : 'pending',
    votes: [],
    voided: [],
    planRevision: 0,
  };
}

function findVote(state: ApprovalState, approvalId: string): ApprovalVote | undefined {
  return (
    state.votes.find((v) => v.approvalId === approvalId) ??
    state.voided.find((v) => v.approvalId === approvalId)
  );
}

function refuse(code: RefusalCode, message: string): ApprovalCheck {
  return { ok: false, code, message };
}

/** Whether `req` may be applied to `state` at workflow time `now`; a known approval id is a harmless duplicate. */
export function checkApproval(state: ApprovalState, req: ApprovalRequest, now: number): ApprovalCheck {
  const seen = findVote(state, req.approvalId);
  if (seen) {
    const same =
      seen.approverId === req.approver.id && seen.decision === req.decision && seen.planHash === req.planHash;
    return same
      ? { ok: true, duplicate: true }
      : refuse('approval_id_conflict', `approval id ${req.approvalId} was already used for a different vote`);
  }
  if (state.status !== 'pending')
    return refuse('not_pending', `approval is ${state.status}, no longer pending`);
  if (now >= state.expiresAt) return refuse('window_expired', 'the approval window has closed');
  if (req.approver.kind === 'service') {
    return refuse(
      'service_identity',
      `${req.approver.name} is a service identity; service identities never approve`,
    );
  }
  if (!mayDecideApprovals(req.approver))
    return refuse('role_required', `${req.approver.name} lacks the approver role`);
  if (req.approver.id === state.proposer.id) {
    return refuse('self_approval', `${req.approver.name} proposed this change and cannot decide on it`);
  }
  if (req.planHash !== state.planHash) {
    return refuse(
      'plan_changed',
      'the plan changed since it was shown; review the current plan and decide again',
    );
  }
  if (state.votes.some((v) => v.approverId === req.approver.id)) {
    return refuse('already_decided_by_approver', `${req.approver.name} already decided on this plan`);
  }
  return { ok: true, duplicate: false };
}

/** Applies a checked, non-duplicate vote. Returns a new state. */
export function applyApproval(state: ApprovalState, req: ApprovalRequest, now: number): ApprovalState {
  const vote: ApprovalVote = {
    approvalId: req.approvalId,
    approverId: req.approver.id,
    approverName: req.approver.name,
    decision: req.decision,
    planHash: req.planHash,
    at: now,
    ...(req.comment !== undefined ? { comment: req.comment } : {}),
  };
  const votes = [...state.votes, vote];
  let status: ApprovalStatus = state.status;
  if (req.decision === 'reject') status = 'rejected';
  else if (approvalsCount({ ...state, votes }) >= state.requiredApprovals) status = 'approved';
  return { ...state, votes, status };
}

/** Distinct approvers who approved the current plan. */
export function approvalsCount(state: Pick<ApprovalState, 'votes' | 'planHash'>): number {
  return new Set(
    state.votes
      .filter((v) => v.decision === 'approve' && v.planHash === state.planHash)
      .map((v) => v.approverId),
  ).size;
}

/**
 * A new plan (any edit, including the resolved device set) voids every vote on the old one. Only a
 * pending approval can be re-planned: an approved plan is what runs, a new plan needs a new gate.
 */
export function revisePlan(state: ApprovalState, newPlanHash: string): ApprovalState {
  if (newPlanHash === state.planHash) return state;
  if (state.status !== 'pending') throw new Error(`cannot change the plan of a ${state.status} approval`);
  return {
    ...state,
    planHash: newPlanHash,
    voided: [...state.voided, ...state.votes],
    votes: [],
    planRevision: state.planRevision + 1,
  };
}

export function expireApproval(state: ApprovalState): ApprovalState {
  return state.status === 'pending' ? { ...state, status: 'expired' } : state;
}
