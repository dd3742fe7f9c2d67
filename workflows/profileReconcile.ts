import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import {
  ParentClosePolicy,
  defineQuery,
  proxyActivities,
  setHandler,
  sleep,
  startChild,
  workflowInfo,
} from '@temporalio/workflow';
import type {
  ReconcileProgress,
  ReconcileSubmitted,
  createProfileActivities,
} from '../activities/profiles.js';
import { profileResolution } from './profileResolution.js';

/**
 * `profileReconcile`: one pass of bringing profile-owned fields back on every device (run by a
 * Temporal schedule, or on demand). The activity computes effective configurations, finds drift
 * (reported ≠ effective, e.g. after a firmware upgrade changed a default) and devices that sent
 * BOOTSTRAP since the last run (factory reset: provisioned again), and submits the values through
 * the executor in batches, validated per firmware, skipping devices leased by another workflow
 * (they are retried next run). The workflow then waits for the tasks, escalates unresolved conflicts
 * to `profileResolution`, releases its leases and records the run. History stays small: the device
 * lists never enter it.
 */

export interface ProfileReconcileInput {
  trigger?: 'schedule' | 'manual' | 'bootstrap';
  /** Restrict to these devices (e.g. the API's "reconcile this device"). */
  devices?: string[];
  /** How long tasks may take (executor deadline) and the workflow waits for them. */
  deadlineMs?: number;
  pollMs?: number;
  /** Start a `profileResolution` per unresolved conflict (default true). */
  escalate?: boolean;
}

export interface ProfileReconcileState {
  phase: 'planning' | 'applying' | 'done';
  submitted?: ReconcileSubmitted;
  progress?: ReconcileProgress;
  escalated: string[];
}

export const reconcileStateQuery = defineQuery<ProfileReconcileState>('fleetbrain.profiles.reconcile');

type Acts = ReturnType<typeof createProfileActivities>;
const plan = proxyActivities<Acts>({
  startToCloseTimeout: '30 minutes',
  heartbeatTimeout: '2 minutes',
  retry: { initialInterval: '5 seconds', maximumInterval: '1 minute', maximumAttempts: 10 },
});
const acts = proxyActivities<Acts>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds' },
});

export async function profileReconcile(input: ProfileReconcileInput = {}): Promise<ProfileReconcileState> {
  const runId = workflowInfo().workflowId;
  const state: ProfileReconcileState = { phase: 'planning', escalated: [] };
  setHandler(reconcileStateQuery, () => state);
  const deadlineMs = input.deadlineMs ?? 15 * 60_000;
  let submitted: ReconcileSubmitted;
  try {
    submitted = await plan.reconcileProfiles({
      runId,
      trigger: input.trigger ?? 'manual',
      deadlineMs,
      ...(input.devices ? { onlyDevices: input.devices } : {}),
    });
  } catch (err) {
    // The run is on record as failed (and its leases released) before the failure propagates.
    await acts.finishReconcile({ runId, status: 'failed', counts: {} });
    throw err;
  }
  state.submitted = submitted;
  state.phase = 'applying';
  if (input.escalate !== false) {
    for (const e of submitted.escalations) {
      try {
        await startChild(profileResolution, {
          workflowId: e.workflowId,
          parentClosePolicy: ParentClosePolicy.ABANDON,
          // Unanswered for a week: it ends, and the next run escalates again if the conflict is still there.
          workflowExecutionTimeout: '7 days',
          args: [{ path: e.path, profiles: e.profiles, claims: e.claims, devices: e.devices }],
        });
        state.escalated.push(e.workflowId);
      } catch (err) {
        // Already escalated and still open: the person deciding it needs no second request.
        if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
      }
    }
  }
  const end = Date.now() + deadlineMs;
  const pollMs = input.pollMs ?? 10_000;
  if (submitted.steps.length > 0) {
    for (;;) {
      state.progress = await acts.reconcileProgress({ runId, steps: submitted.steps });
      if (state.progress.open === 0 || Date.now() >= end) break;
      await sleep(pollMs);
    }
  }
  const p = state.progress;
  await acts.finishReconcile({
    runId,
    status: 'completed',
    counts: {
      devices: submitted.devices,
      drifted: submitted.drifted,
      bootstrapped: submitted.bootstrapped,
      sent: submitted.sent,
      existing: submitted.existing,
      busy: submitted.busy,
      rejected: submitted.rejected,
      unresolved: submitted.unresolved,
      invalid: submitted.invalid,
      escalated: state.escalated.length,
      done: p?.done ?? 0,
      failed: p?.failed ?? 0,
      expired: p?.expired ?? 0,
      open: p?.open ?? 0,
    },
  });
  state.phase = 'done';
  return state;
}
