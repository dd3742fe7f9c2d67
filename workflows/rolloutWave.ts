import {
  ActivityFailure,
  ApplicationFailure,
  condition,
  getExternalWorkflowHandle,
  patched,
  proxyActivities,
  setHandler,
} from '@temporalio/workflow';
import type { DispatchedBatch, Evaluation, createRolloutActivities } from '../activities/rollout.js';
import type { RolloutSpec } from '../domain/rollout/spec.js';
import { waveControlSignal, waveProgressSignal, waveStateQuery } from './firmwareRollout.controls.js';

type Acts = ReturnType<typeof createRolloutActivities>;

const { stageSize, evaluateRollout } = proxyActivities<Acts>({
  startToCloseTimeout: '5 minutes',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds' },
});
const { dispatchBatch } = proxyActivities<Acts>({
  startToCloseTimeout: '30 minutes',
  heartbeatTimeout: '1 minute',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds' },
});

/** Did the dispatch activity stop because the infrastructure is unhealthy (activities/rollout.ts)? */
function infrastructureDown(err: unknown): boolean {
  return (
    err instanceof ActivityFailure &&
    err.cause instanceof ApplicationFailure &&
    err.cause.type === 'InfrastructureUnhealthy'
  );
}

export interface RolloutWaveInput {
  rolloutId: string;
  parentId: string;
  spec: RolloutSpec;
  seed: string;
  cohortHash: string;
  wave: number;
  stages: number;
  excludeStrata: string[];
  /** Batches of earlier waves (the gate looks at every device dispatched so far). */
  priorBatches: DispatchedBatch[];
  /** Batches of this wave dispatched by an earlier child (after a pause): not sent again. */
  doneBatches: DispatchedBatch[];
  startedAt: number;
  minuteMs: number;
  /** Time between looks at the outcomes. */
  pollMs: number;
}

export interface RolloutWaveResult {
  wave: number;
  batches: DispatchedBatch[];
  /** 'abort-requested' and 'paused' come from a control; the others from the gate. */
  outcome: 'promote' | 'concluded' | 'abort' | 'pause' | 'abort-requested' | 'paused';
  evaluation?: Evaluation;
}

/**
 * One wave: dispatch its stages in rate-capped batches, then look at the outcomes until the gate
 * decides or every device of the wave has concluded. One child per wave keeps each history small.
 */
export async function rolloutWave(input: RolloutWaveInput): Promise<RolloutWaveResult> {
  let paused = false;
  let aborted = false;
  const batches: DispatchedBatch[] = [...input.doneBatches];
  setHandler(waveControlSignal, (c) => {
    if (c === 'pause') paused = true;
    else if (c === 'resume') paused = false;
    else aborted = true;
  });
  setHandler(waveStateQuery, () => ({ wave: input.wave, paused, batches: batches.length }));
  const parent = getExternalWorkflowHandle(input.parentId);
  const base = {
    rolloutId: input.rolloutId,
    spec: input.spec,
    seed: input.seed,
    cohortHash: input.cohortHash,
  };
  // One activity per ten minutes of dispatch at the rate cap (the activity paces itself):
  // a 600,000-device wave at 1,000/min is 60 activities in this child's history.
  const chunk = Math.min(input.spec.rateCaps.perMinute * 10, 20_000);
  let evaluation: Evaluation | undefined;

  const look = async (): Promise<Evaluation> => {
    const e = await evaluateRollout({
      ...base,
      batches: [...input.priorBatches, ...batches],
      startedAt: input.startedAt,
      haltedStrata: input.excludeStrata,
    });
    await parent.signal(waveProgressSignal, { wave: input.wave, batches: [], evaluation: e });
    return e;
  };

  for (let stage = 0; stage < input.stages; stage++) {
    const size = await stageSize({ ...base, wave: input.wave, stage });
    for (let from = 0; from < size; from += chunk) {
      // A slice is done once a batch sent it with nobody held back for a maintenance window.
      if (batches.some((b) => b.stage === stage && b.from === from && !b.deferred)) continue;
      if (aborted) return { wave: input.wave, batches, outcome: 'abort-requested' };
      if (paused) return { wave: input.wave, batches, outcome: 'paused' };
      const held = batches.filter((b) => b.stage === stage && b.from === from).at(-1);
      if (held?.deferred && patched('rollout-maintenance-deferral')) {
        // Devices outside their local maintenance window: wait (durably) for the next opening, then
        // send the slice again; what already went out answers `existing` (same idempotency keys).
        if (held.nextWindowAt === undefined) continue;
        await condition(() => aborted || paused, Math.max(held.nextWindowAt - Date.now(), input.pollMs));
        if (aborted) return { wave: input.wave, batches, outcome: 'abort-requested' };
        if (paused) return { wave: input.wave, batches, outcome: 'paused' };
      }
      let b: DispatchedBatch;
      try {
        b = await dispatchBatch({
          ...base,
          wave: input.wave,
          stage,
          from,
          to: Math.min(size, from + chunk),
          excludeStrata: input.excludeStrata,
        });
      } catch (err) {
        // The dispatch stopped because the ACS/broker is down: look (the gate pauses on unhealthy
        // infrastructure) instead of failing the wave. What went out is re-sent as `existing`.
        if (!infrastructureDown(err) || !patched('rollout-dispatch-infra-pause')) throw err;
        evaluation = await look();
        if (evaluation.gate.decision === 'pause' || evaluation.gate.decision === 'abort')
          return { wave: input.wave, batches, outcome: evaluation.gate.decision, evaluation };
        // Healthy again by the time we looked: try the slice again after a poll interval.
        await condition(() => aborted || paused, input.pollMs);
        from -= chunk;
        continue;
      }
      batches.push(b);
      // Held-back devices: come back to this slice until every device was sent.
      if (b.deferred && patched('rollout-maintenance-deferral')) from -= chunk;
    }
    // Look until the gate decides or every device dispatched so far has concluded.
    for (;;) {
      await condition(() => aborted || paused, input.pollMs);
      if (aborted) return { wave: input.wave, batches, outcome: 'abort-requested' };
      if (paused)
        return { wave: input.wave, batches, outcome: 'paused', ...(evaluation ? { evaluation } : {}) };
      evaluation = await look();
      const d = evaluation.gate.decision;
      if (d === 'abort' || d === 'pause') return { wave: input.wave, batches, outcome: d, evaluation };
      if (d === 'promote') break;
      if (evaluation.pending === 0) break;
    }
  }
  return {
    wave: input.wave,
    batches,
    outcome: evaluation?.gate.decision === 'promote' ? 'promote' : 'concluded',
    ...(evaluation ? { evaluation } : {}),
  };
}
