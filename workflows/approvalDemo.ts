import {
  allHandlersFinished,
  condition,
  continueAsNew,
  defineSignal,
  defineUpdate,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import { planHash } from '../domain/approval/plan-hash.js';
import type { Proposer } from '../domain/approval/rules.js';
import { type ApprovalOutcome, type CarriedApprovals, installApprovals } from './approval.js';

/**
 * The smallest workflow that needs approval: it holds a plan (a spec and a resolved device set),
 * waits for the approvals its policy decision requires, and can be re-planned or continued-as-new
 * while waiting. Tests and smoke checks of the approval mechanism use it; it changes no device.
 */
export interface ApprovalDemoPlan {
  spec: unknown;
  deviceIds: string[];
}

export interface ApprovalDemoInput {
  proposer: Proposer;
  plan: ApprovalDemoPlan;
  requiredApprovals: number;
  windowMs: number;
  /** Set by the previous run on continue-as-new. */
  resume?: { approvals: CarriedApprovals };
}

export const revisePlanUpdate = defineUpdate<
  { planHash: string },
  [{ plan: ApprovalDemoPlan; by: Proposer }]
>('approvalDemo.revisePlan');
/** Asks the run to continue-as-new while it waits (as a long-lived workflow does to bound its history). */
export const rolloverSignal = defineSignal('approvalDemo.rollover');

export async function approvalDemo(input: ApprovalDemoInput): Promise<ApprovalOutcome> {
  let plan = input.plan;
  const approvals = installApprovals({
    subject: { kind: 'approval_demo', id: workflowInfo().workflowId },
    title: 'Approval demo plan',
    proposer: input.proposer,
    planHash: planHash(plan),
    requiredApprovals: input.requiredApprovals,
    windowMs: input.windowMs,
    resume: input.resume?.approvals,
  });
  let rollover = false;
  setHandler(rolloverSignal, () => {
    rollover = true;
  });
  setHandler(
    revisePlanUpdate,
    async ({ plan: next, by }) => {
      plan = next;
      await approvals.revisePlan(planHash(next), { id: by.id, kind: by.kind });
      return { planHash: approvals.state().planHash };
    },
    {
      validator: (_req) => {
        if (!approvals.isPending()) throw new Error('the plan can only change while approval is pending');
      },
    },
  );

  const left = approvals.remainingMs();
  if (left > 0) await condition(() => !approvals.isPending() || rollover, left);
  if (rollover && approvals.isPending()) {
    await condition(allHandlersFinished);
    return continueAsNew<typeof approvalDemo>({ ...input, plan, resume: { approvals: approvals.carry() } });
  }
  const outcome = await approvals.wait();
  await condition(allHandlersFinished);
  return outcome;
}
