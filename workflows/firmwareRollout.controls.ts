import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { DispatchedBatch, Evaluation, RollbackResult, StratumCounts } from '../activities/rollout.js';

/** Controls of a running rollout. Every request carries an id: a repeated id changes nothing. */
export type RolloutAction = 'pause' | 'resume' | 'abort' | 'promote' | 'retry-failed';

export interface RolloutControl {
  requestId: string;
  action: RolloutAction;
  by: string;
  reason?: string;
  /** promote only: the second person who approved skipping the gate (never the requester). */
  approvedBy?: string;
}

export interface ControlResult {
  requestId: string;
  action: RolloutAction;
  /** True when this request id was seen before (a retry): nothing changed. */
  duplicate: boolean;
  /** False when the action did not apply in the current status (e.g. resume while running). */
  applied: boolean;
  status: RolloutStatus;
}

export type RolloutStatus =
  | 'preparing'
  | 'awaiting-approval'
  | 'running'
  | 'paused'
  | 'aborting'
  | 'aborted'
  | 'completed'
  | 'rejected';

export interface WaveProgress {
  wave: number;
  state: 'pending' | 'dispatching' | 'observing' | 'done' | 'halted';
  devices: number;
  dispatched: number;
  perStratum: StratumCounts;
}

export interface RolloutProgress {
  rolloutId: string;
  status: RolloutStatus;
  currentWave: number;
  waves: WaveProgress[];
  haltedStrata: string[];
  pauseReasons: string[];
  lastGate?: Evaluation['gate'];
  rollback?: RollbackResult & { attempted?: number; done?: number; failed?: number };
  /** Number of controls applied (not counting duplicates). */
  controls: number;
}

export const controlUpdate = defineUpdate<ControlResult, [RolloutControl]>('fleetbrain.rollout.control');
export const progressQuery = defineQuery<RolloutProgress>('fleetbrain.rollout.progress');

/** Parent → wave child: pause, resume or abort the wave in flight. */
export const waveControlSignal = defineSignal<['pause' | 'resume' | 'abort']>(
  'fleetbrain.rollout.waveControl',
);
/** Wave child → parent: live counts after each look. */
export const waveProgressSignal = defineSignal<
  [{ wave: number; batches: DispatchedBatch[]; evaluation: Evaluation }]
>('fleetbrain.rollout.waveProgress');
export const waveStateQuery = defineQuery<{ wave: number; paused: boolean; batches: number }>(
  'fleetbrain.rollout.waveState',
);
