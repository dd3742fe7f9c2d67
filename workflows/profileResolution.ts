import {
  condition,
  defineQuery,
  defineSignal,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { createProfileActivities } from '../activities/profiles.js';
import { planHash } from '../domain/approval/plan-hash.js';
import type { Proposer } from '../domain/approval/rules.js';
import type { ParamValue } from '../domain/profiles/profile.js';
import { installApprovals } from './approval.js';

/**
 * Escalation of one unresolved profile conflict (a field that two profiles set differently and no
 * precedence rule tells apart) to a person. The workflow waits for a proposed winner — from a person,
 * or from the planner with a rationale — and then for approval through the shared mechanism, bound to
 * the hash of (field, contenders, winner). The proposer never approves (four-eyes; the planner never
 * approves at all). An approved resolution is stored and audited; reconcile then applies it.
 */

export interface ProfileResolutionInput {
  path: string;
  /** The contending profile ids (sorted). */
  profiles: string[];
  claims: Array<{ profileId: string; value: ParamValue }>;
  /** Devices affected when escalated (for the approver's title). */
  devices: number;
  requiredApprovals?: number;
  /** How long approvers have once a resolution is proposed. */
  approvalWindowMs?: number;
}

export interface ResolutionProposal {
  winner: string;
  rationale?: string;
  proposer: Proposer;
}

export interface ProfileResolutionState {
  status: 'awaiting-proposal' | 'awaiting-approval' | 'decided' | 'rejected' | 'expired';
  path: string;
  profiles: string[];
  proposal?: ResolutionProposal & { proposalId: string };
  planHash?: string;
  /** Proposals refused, with why (at most the last 20). */
  refused: Array<{ proposalId: string; reason: string }>;
  approvers?: string[];
}

/**
 * A proposal arrives as a signal (the API checks it first and then reads the state back): the
 * synchronous-update version of this did not replay on this SDK version when the workflow went on to
 * schedule work in the same activation. A signal the workflow refuses is kept in `refused`.
 */
export const proposeSignal = defineSignal<[ResolutionProposal & { proposalId: string }]>(
  'fleetbrain.profiles.propose',
);
export const resolutionStateQuery = defineQuery<ProfileResolutionState>('fleetbrain.profiles.resolution');

const { recordProfileDecision } = proxyActivities<ReturnType<typeof createProfileActivities>>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds' },
});

export function resolutionPlanHash(path: string, profiles: readonly string[], winner: string): string {
  return planHash({
    spec: { kind: 'profile-resolution', path, profiles: [...profiles].sort(), winner },
    deviceIds: [],
  });
}

/** Why a proposal is refused, or null. Also used by the API before it signals. */
export function proposalRefusal(
  state: Pick<ProfileResolutionState, 'status' | 'profiles'>,
  p: ResolutionProposal,
): string | null {
  if (state.status !== 'awaiting-proposal') return `a resolution was already proposed (${state.status})`;
  if (!state.profiles.includes(p.winner))
    return `winner ${p.winner} is not one of the contenders: ${state.profiles.join(', ')}`;
  if (p.proposer.kind === 'service' && !p.rationale?.trim())
    return 'a resolution suggested by a service (the planner) needs a rationale';
  return null;
}

export async function profileResolution(input: ProfileResolutionInput): Promise<ProfileResolutionState> {
  const state: ProfileResolutionState = {
    status: 'awaiting-proposal',
    path: input.path,
    profiles: [...input.profiles].sort(),
    refused: [],
  };
  setHandler(resolutionStateQuery, () => state);
  setHandler(proposeSignal, (p) => {
    const why = proposalRefusal(state, p);
    if (why) {
      state.refused = [...state.refused, { proposalId: p.proposalId, reason: why }].slice(-20);
      return;
    }
    state.proposal = p;
    state.planHash = resolutionPlanHash(state.path, state.profiles, p.winner);
    state.status = 'awaiting-approval';
  });
  // No timer: the starter bounds the wait with the workflow's execution timeout.
  await condition(() => state.proposal !== undefined);
  const proposal = state.proposal as unknown as ResolutionProposal;
  const hash = state.planHash as unknown as string;
  const value = input.claims.find((c) => c.profileId === proposal.winner)?.value;
  const approvals = installApprovals({
    gate: 'resolution',
    subject: { kind: 'profile_conflict', id: workflowInfo().workflowId },
    title: `Profile conflict on ${state.path} (${input.devices} devices): ${proposal.winner} wins with ${String(value)}${
      proposal.rationale ? ` — ${proposal.rationale}` : ''
    }`,
    proposer: proposal.proposer,
    planHash: hash,
    requiredApprovals: input.requiredApprovals ?? 1,
    windowMs: input.approvalWindowMs ?? 3 * 86_400_000,
  });
  const outcome = await approvals.wait();
  if (outcome.status !== 'approved') {
    state.status = outcome.status;
    return state;
  }
  await recordProfileDecision({
    path: state.path,
    profiles: state.profiles,
    winner: proposal.winner,
    approvers: outcome.approvers,
    proposer: { id: proposal.proposer.id, kind: proposal.proposer.kind },
    ...(proposal.rationale ? { rationale: proposal.rationale } : {}),
    approvalRequestId: `${workflowInfo().workflowId}/resolution`,
    planHash: hash,
  });
  state.status = 'decided';
  state.approvers = outcome.approvers;
  return state;
}
