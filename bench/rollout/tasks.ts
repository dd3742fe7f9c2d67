/** Serializable descriptions of benchmark work, run in worker threads (or in-process). */
import type { GateParams } from '../../domain/rollout/gate.js';
import type { WavePlan } from '../../domain/rollout/spec.js';
import { type RunResult, SCENARIOS, type Timings, runOne } from './sim.js';
import { CloudJob, FixedCanary, Fleetbrain } from './strategies.js';

export type StrategyConfig =
  | { type: 'cloud'; k: number; m: number; neverAbort?: boolean; mGrid?: number[] }
  | { type: 'canary'; k: number; neverAbort?: boolean }
  | {
      type: 'fleetbrain';
      plan: WavePlan;
      gate: GateParams;
      deadlineMinutes: number;
      lastWaveNeedsPromote: boolean;
    };

export interface Task {
  scenario: 'a' | 'b' | 'c' | 'd';
  strategy: StrategyConfig;
  /** Seeds are `${scenario}|${seedTag}|${i}` for i in [from, to). */
  seedTag: string;
  from: number;
  to: number;
  timings: Timings;
}

export interface CompactResult {
  status: RunResult['status'];
  minutes: number;
  aborted: boolean;
  badBricks: number;
  goodBricks: number;
  first: boolean;
  stats: Record<string, number>;
}

function make(c: StrategyConfig) {
  switch (c.type) {
    case 'cloud':
      return new CloudJob(c.k, c.m, c.neverAbort ?? false, c.mGrid ?? []);
    case 'canary':
      return new FixedCanary(c.k, c.neverAbort ?? false);
    case 'fleetbrain':
      return new Fleetbrain(c);
  }
}

export function runTask(task: Task): CompactResult[] {
  const scenario = SCENARIOS.find((s) => s.name === task.scenario)!;
  const out: CompactResult[] = [];
  for (let i = task.from; i < task.to; i++) {
    const r = runOne(scenario, `${task.scenario}|${task.seedTag}|${i}`, make(task.strategy), task.timings);
    out.push({
      status: r.status,
      minutes: r.minutes,
      aborted: r.abortedStrata.length > 0,
      badBricks: r.badBricks,
      goodBricks: r.goodBricks,
      first: r.caughtInFirstWave,
      stats: r.stats,
    });
  }
  return out;
}
