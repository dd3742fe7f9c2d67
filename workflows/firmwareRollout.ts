import {
  ParentClosePolicy,
  allHandlersFinished,
  condition,
  continueAsNew,
  patched,
  proxyActivities,
  setHandler,
  startChild,
  type ChildWorkflowHandle,
  workflowInfo,
} from '@temporalio/workflow';
import type {
  DispatchedBatch,
  PreparedRollout,
  RollbackResult,
  createRolloutActivities,
} from '../activities/rollout.js';
import type { Proposer } from '../domain/approval/rules.js';
import type { RolloutSpec } from '../domain/rollout/spec.js';
import { type CarriedApprovals, installApprovals } from './approval.js';
import {
  type ControlResult,
  type RolloutControl,
  type RolloutProgress,
  type WaveProgress,
  controlUpdate,
  progressQuery,
  waveControlSignal,
  waveProgressSignal,
} from './firmwareRollout.controls.js';
import { type RolloutWaveResult, rolloutWave } from './rolloutWave.js';

export * from './firmwareRollout.controls.js';

type Acts = ReturnType<typeof createRolloutActivities>;

const acts = proxyActivities<Acts>({
  startToCloseTimeout: '5 minutes',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds' },
});
const { rollBack } = proxyActivities<Acts>({
  startToCloseTimeout: '30 minutes',
  heartbeatTimeout: '1 minute',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds' },
});

export interface FirmwareRolloutInput {
  rolloutId: string;
  /** Parsed spec (the API validates with rolloutSpecSchema before starting). */
  spec: RolloutSpec;
  /** Seed of the stratified sample; the API derives it from the rollout id. */
  seed: string;
  proposer: Proposer;
  /** From the policy decision: approvals needed at each approval gate (0: none). */
  requiredApprovals: number;
  approvalWindowMs?: number;
  /** Length of one spec minute in ms (60 000 in production; tests with a fast fleet shrink it). */
  minuteMs?: number;
  pollMs?: number;
  /** Continue-as-new threshold (events); the default keeps every run well below 10,240. */
  maxHistoryEvents?: number;
  carried?: Carried;
}

interface Carried {
  state: RolloutState;
  prepared: PreparedRollout;
  startedAt: number;
  approvals?: CarriedApprovals;
}

interface RolloutState {
  status: RolloutProgress['status'];
  currentWave: number;
  batches: DispatchedBatch[];
  haltedStrata: string[];
  pauseReasons: string[];
  waves: WaveProgress[];
  lastGate?: RolloutProgress['lastGate'];
  rollback?: RolloutProgress['rollback'];
  seenRequests: Record<string, ControlResult>;
  controls: number;
  /** Set by a promote control: the next gate decision of 'continue' or 'pause' is treated as promote. */
  promoteOnce: boolean;
  retryRounds: number;
  retryRequested: boolean;
  abortRequested: boolean;
  startApproved: boolean;
  /** Wave approval gates already passed ('wave-3', 'last-wave'); absent in runs before the gates existed. */
  approvedGates?: string[];
}

export interface FirmwareRolloutResult {
  rolloutId: string;
  status: RolloutProgress['status'];
  waves: WaveProgress[];
  haltedStrata: string[];
  rollback?: RolloutProgress['rollback'];
  reasons: string[];
}

export async function firmwareRollout(input: FirmwareRolloutInput): Promise<FirmwareRolloutResult> {
  const minuteMs = input.minuteMs ?? 60_000;
  const pollMs = input.pollMs ?? minuteMs;
  const maxEvents = input.maxHistoryEvents ?? 5_000;
  const base = { rolloutId: input.rolloutId, spec: input.spec, seed: input.seed };

  const state: RolloutState = input.carried?.state ?? {
    status: 'preparing',
    currentWave: 0,
    batches: [],
    haltedStrata: [],
    pauseReasons: [],
    waves: [],
    seenRequests: {},
    controls: 0,
    promoteOnce: false,
    retryRounds: 0,
    retryRequested: false,
    abortRequested: false,
    startApproved: false,
  };
  let child: ChildWorkflowHandle<typeof rolloutWave> | undefined;

  setHandler(progressQuery, () => ({
    rolloutId: input.rolloutId,
    status: state.status,
    currentWave: state.currentWave,
    waves: state.waves,
    haltedStrata: state.haltedStrata,
    pauseReasons: state.pauseReasons,
    ...(state.lastGate ? { lastGate: state.lastGate } : {}),
    ...(state.rollback ? { rollback: state.rollback } : {}),
    controls: state.controls,
  }));
  setHandler(waveProgressSignal, ({ wave, evaluation }) => {
    state.lastGate = evaluation.gate;
    for (const [w, counts] of Object.entries(evaluation.perWave)) {
      const wp = state.waves[Number(w)];
      if (wp) wp.perStratum = counts;
    }
    const wp = state.waves[wave];
    if (wp && wp.state === 'dispatching') wp.state = 'observing';
  });

  // The wave child may have just finished: a signal to a closed child is harmless to lose,
  // the parent reads the same state when it looks at the child's result.
  const tellChild = async (c: 'pause' | 'resume' | 'abort') => {
    try {
      await child?.signal(waveControlSignal, c);
    } catch {
      // not running any more
    }
  };
  const terminal = () => ['aborted', 'completed', 'rejected', 'aborting'].includes(state.status);
  setHandler(
    controlUpdate,
    async (c: RolloutControl): Promise<ControlResult> => {
      const seen = state.seenRequests[c.requestId];
      if (seen) return { ...seen, duplicate: true };
      let applied = false;
      if (!terminal()) {
        switch (c.action) {
          case 'pause':
            if (state.status !== 'paused') {
              state.status = 'paused';
              state.pauseReasons.push(`paused by ${c.by}${c.reason ? `: ${c.reason}` : ''}`);
              applied = true;
              await tellChild('pause');
            }
            break;
          case 'resume':
            if (state.status === 'paused') {
              state.status = 'running';
              state.pauseReasons = [];
              applied = true;
              await tellChild('resume');
            }
            break;
          case 'abort':
            state.abortRequested = true;
            applied = true;
            await tellChild('abort');
            break;
          case 'promote':
            state.promoteOnce = true;
            if (state.status === 'paused') {
              state.status = 'running';
              state.pauseReasons = [];
            }
            applied = true;
            break;
          case 'retry-failed':
            state.retryRequested = true;
            applied = true;
            break;
        }
      }
      if (applied) state.controls++;
      const result: ControlResult = {
        requestId: c.requestId,
        action: c.action,
        duplicate: false,
        applied,
        status: state.status,
      };
      state.seenRequests[c.requestId] = result;
      return result;
    },
    {
      validator: (c: RolloutControl) => {
        if (!c || typeof c.requestId !== 'string' || c.requestId.length === 0)
          throw new Error('requestId is required');
        if (!['pause', 'resume', 'abort', 'promote', 'retry-failed'].includes(c.action))
          throw new Error(`unknown action ${String(c.action)}`);
        if (typeof c.by !== 'string' || c.by.length === 0) throw new Error('by is required');
        // Skipping a gate needs a second person: the requester cannot approve their own promote.
        if (
          c.action === 'promote' &&
          !state.seenRequests[c.requestId] &&
          (!c.approvedBy || c.approvedBy === c.by)
        )
          throw new Error('promote needs approvedBy, a second person other than the requester');
      },
    },
  );

  const audit = (action: string, key: string, data: Record<string, unknown> = {}) =>
    acts.auditRollout({ rolloutId: input.rolloutId, action, data, key });
  const notify = (event: 'halt' | 'pause' | 'complete' | 'resume' | 'wave-start', key: string, data = {}) =>
    input.spec.notifications.length > 0
      ? acts.notifyRollout({
          rolloutId: input.rolloutId,
          event,
          targets: input.spec.notifications,
          data,
          key,
        })
      : Promise.resolve(0);

  // --- prepare (first run only)
  const startedAt = input.carried?.startedAt ?? Date.now();
  const prepared = input.carried?.prepared ?? (await acts.prepareRollout(base));
  if (!input.carried) {
    state.waves = prepared.waves.map((w) => ({
      wave: w.wave,
      state: 'pending',
      devices: w.devices,
      dispatched: 0,
      perStratum: {},
    }));
    await audit('rollout.started', 'started', {
      cohortSize: prepared.cohortSize,
      cohortHash: prepared.cohortHash,
      waves: prepared.waves.length,
      strata: prepared.strata.length,
    });
  }
  const cohortHash = prepared.cohortHash;

  // --- approval before start (the shared approval mechanism)
  if (!state.startApproved && input.spec.approvals.beforeStart && input.requiredApprovals > 0) {
    state.status = 'awaiting-approval';
    const approvals = installApprovals({
      gate: 'start',
      subject: { kind: 'rollout', id: input.rolloutId },
      title: `Firmware rollout ${input.spec.name}: ${prepared.image.previousVersion} → ${prepared.image.version} on ${prepared.cohortSize} devices`,
      proposer: input.proposer,
      planHash: cohortHash,
      requiredApprovals: input.requiredApprovals,
      windowMs: input.approvalWindowMs ?? 7 * 24 * 3600_000,
      ...(input.carried?.approvals ? { resume: input.carried.approvals } : {}),
    });
    const outcome = await waitOrAbort(approvals);
    if (outcome === 'abort') {
      // Nothing went out yet: nothing to roll back.
      state.status = 'aborted';
      await audit('rollout.aborted', 'aborted-before-start', { gate: 'start' });
      return finish(['aborted by an operator']);
    }
    if (outcome.status !== 'approved') {
      state.status = 'rejected';
      await audit('rollout.rejected', 'rejected', { approval: outcome.status });
      return finish([`approval ${outcome.status}`]);
    }
  }
  state.startApproved = true;
  if (state.status === 'preparing' || state.status === 'awaiting-approval') state.status = 'running';

  function finish(reasons: string[]): FirmwareRolloutResult {
    return {
      rolloutId: input.rolloutId,
      status: state.status,
      waves: state.waves,
      haltedStrata: state.haltedStrata,
      ...(state.rollback ? { rollback: state.rollback } : {}),
      reasons,
    };
  }

  async function abortAndRollBack(haltStrata: string[], reasons: string[]): Promise<FirmwareRolloutResult> {
    state.status = 'aborting';
    state.haltedStrata = [...new Set([...state.haltedStrata, ...haltStrata])];
    const wp = state.waves[state.currentWave];
    if (wp) wp.state = 'halted';
    await audit('rollout.halted', 'halted', { haltStrata, reasons });
    const rb: RollbackResult = await rollBack({
      ...base,
      cohortHash,
      batches: state.batches,
      haltStrata,
      startedAt,
    });
    state.rollback = rb;
    // Measure the rollback's own success once its outcome window has passed.
    await condition(() => false, input.spec.outcomeTimeoutMinutes * minuteMs);
    const st = await acts.rollbackStatus({ rolloutId: input.rolloutId });
    state.rollback = { ...rb, ...st };
    state.status = 'aborted';
    await audit('rollout.rolled_back', 'rolled-back', { ...state.rollback });
    await notify('halt', 'halt', { haltStrata, reasons, rollback: state.rollback });
    return finish(reasons);
  }

  /**
   * Wait for an approval gate, but act on an operator's abort while it waits (an abort used to sit
   * until someone voted). The race adds no command to history until an abort arrives.
   */
  async function waitOrAbort(
    approvals: ReturnType<typeof installApprovals>,
  ): Promise<Awaited<ReturnType<ReturnType<typeof installApprovals>['wait']>> | 'abort'> {
    const aborted = condition(() => state.abortRequested).then(() => 'abort' as const);
    const outcome = await Promise.race([approvals.wait(), aborted]);
    if (outcome === 'abort' && patched('rollout-abort-during-approval')) return 'abort';
    if (outcome === 'abort') return approvals.wait();
    return outcome;
  }

  /** The approval gate a wave needs from the spec: before any wave above N devices, before the last. */
  function waveGate(wave: number, devices: number): string | undefined {
    const a = input.spec.approvals;
    if (wave === 0) return undefined; // the start gate covers the first wave
    if (a.beforeLastWave && wave === prepared.waves.length - 1) return 'last-wave';
    if (a.beforeWaveAbove !== undefined && devices > a.beforeWaveAbove) return `wave-${wave}`;
    return undefined;
  }

  /** The shared approval mechanism, bound to the plan's hash; the spec's gate needs at least one vote. */
  async function approveWave(gate: string, wave: number, devices: number): Promise<boolean | 'abort'> {
    state.status = 'awaiting-approval';
    await audit('rollout.awaiting_approval', `gate-${gate}`, { gate, wave, devices });
    const approvals = installApprovals({
      gate,
      subject: { kind: 'rollout', id: input.rolloutId },
      title: `Firmware rollout ${input.spec.name}: wave ${wave + 1} of ${prepared.waves.length} (${devices} devices) on ${prepared.image.version}`,
      proposer: input.proposer,
      planHash: cohortHash,
      requiredApprovals: Math.max(1, input.requiredApprovals),
      windowMs: input.approvalWindowMs ?? 7 * 24 * 3600_000,
    });
    const outcome = await waitOrAbort(approvals);
    if (outcome === 'abort') return 'abort';
    if (outcome.status !== 'approved') {
      state.status = 'rejected';
      await audit('rollout.rejected', `rejected-${gate}`, { gate, approval: outcome.status });
      await notify('pause', `rejected-${gate}`, { gate, approval: outcome.status });
      return false;
    }
    return true;
  }

  const allStrata = prepared.strata.map((s) => s.id);
  let childRun = 0;
  while (state.currentWave < prepared.waves.length) {
    if (state.abortRequested) return abortAndRollBack(allStrata, ['aborted by an operator']);
    if (state.status === 'paused') {
      await condition(() => state.status !== 'paused' || state.abortRequested);
      continue;
    }
    if (state.retryRequested) {
      state.retryRequested = false;
      state.retryRounds++;
      const failed = await acts.failedDevices({
        ...base,
        cohortHash,
        batches: state.batches,
        attempt: state.retryRounds,
      });
      for (const f of failed)
        await acts.dispatchBatch({
          ...base,
          cohortHash,
          wave: f.wave,
          stage: f.stage,
          from: 0,
          to: 0,
          excludeStrata: state.haltedStrata,
          attempt: state.retryRounds,
          onlyDevices: f.devices,
        });
      await audit('rollout.retried', `retry-${state.retryRounds}`, {
        devices: failed.reduce((n, f) => n + f.devices.length, 0),
      });
    }
    const w = prepared.waves[state.currentWave]!;
    const wp = state.waves[state.currentWave]!;
    if (wp.state === 'pending' && patched('rollout-wave-approval-gates')) {
      const gate = waveGate(w.wave, w.devices);
      if (gate && !(state.approvedGates ?? []).includes(gate)) {
        const ok = await approveWave(gate, w.wave, w.devices);
        if (ok === 'abort') return abortAndRollBack(allStrata, ['aborted by an operator']);
        if (!ok) return finish([`approval before wave ${w.wave + 1} was not given`]);
        state.approvedGates = [...(state.approvedGates ?? []), gate];
        if ((state.status as RolloutProgress['status']) === 'awaiting-approval') state.status = 'running';
        continue;
      }
    }
    if (wp.state === 'pending') {
      wp.state = 'dispatching';
      await notify('wave-start', `wave-${w.wave}`, { wave: w.wave, devices: w.devices });
    }
    const prior = state.batches.filter((b) => b.wave !== w.wave);
    const done = state.batches.filter((b) => b.wave === w.wave);
    child = await startChild(rolloutWave, {
      workflowId: `${input.rolloutId}/wave-${w.wave}/${workflowInfo().runId.slice(0, 8)}-${childRun++}`,
      parentClosePolicy: ParentClosePolicy.TERMINATE,
      args: [
        {
          ...base,
          parentId: workflowInfo().workflowId,
          cohortHash,
          wave: w.wave,
          stages: w.stages,
          excludeStrata: state.haltedStrata,
          priorBatches: prior,
          doneBatches: done,
          startedAt,
          minuteMs,
          pollMs,
        },
      ],
    });
    const r: RolloutWaveResult = await child.result();
    child = undefined;
    state.batches = [...prior, ...r.batches];
    wp.dispatched = r.batches.reduce((n, b) => n + b.sent, 0);
    if (r.evaluation) {
      state.lastGate = r.evaluation.gate;
      for (const [k, counts] of Object.entries(r.evaluation.perWave)) {
        const x = state.waves[Number(k)];
        if (x) x.perStratum = counts;
      }
    }
    let outcome = r.outcome;
    if (state.promoteOnce && (outcome === 'pause' || outcome === 'concluded')) {
      state.promoteOnce = false;
      await audit('rollout.promoted', `promote-wave-${w.wave}`, { wave: w.wave });
      outcome = 'promote';
    }
    if (outcome === 'abort-requested' || state.abortRequested)
      return abortAndRollBack(allStrata, ['aborted by an operator']);
    if (outcome === 'abort') {
      const halt = r.evaluation?.gate.haltStrata ?? allStrata;
      return abortAndRollBack(halt, r.evaluation?.gate.reasons ?? ['gate abort']);
    }
    if (outcome === 'pause' || outcome === 'paused') {
      if (outcome === 'pause') {
        state.status = 'paused';
        state.pauseReasons = r.evaluation?.gate.reasons ?? ['gate pause'];
        await audit('rollout.paused', `pause-${w.wave}-${state.controls}-${childRun}`, {
          wave: w.wave,
          reasons: state.pauseReasons,
        });
        await notify('pause', `pause-${w.wave}-${childRun}`, { wave: w.wave, reasons: state.pauseReasons });
      }
      continue;
    }
    wp.state = 'done';
    await audit('rollout.wave_done', `wave-${w.wave}`, { wave: w.wave, outcome, dispatched: wp.dispatched });
    state.currentWave++;
    if (state.currentWave < prepared.waves.length && workflowInfo().historyLength > maxEvents) {
      await condition(allHandlersFinished);
      return continueAsNew<typeof firmwareRollout>({
        ...input,
        carried: { state, prepared, startedAt },
      });
    }
  }
  state.status = 'completed';
  await audit('rollout.completed', 'completed', { waves: state.waves.length });
  await notify('complete', 'complete', { waves: state.waves.length });
  return finish(['every wave concluded']);
}
