/** The three strategies of the `rollout` benchmark, all driving the same Fleet model. */
import {
  type ControlCounts,
  type GateParams,
  type GateResult,
  type OutcomeCounts,
  evaluateGate,
} from '../../domain/rollout/gate.js';
import { cumulativeFractions } from '../../domain/rollout/waves.js';
import type { WavePlan } from '../../domain/rollout/spec.js';
import { DEVICES, type Fleet, MAX_RATE, type RunStatus, type Strategy, THETA } from './sim.js';

const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);

/** Finished and failed counts as a cloud IoT job sees them: a failure is a device silent at the timeout. */
function jobCounts(f: Fleet): { succeeded: number; failed: number; finished: number } {
  const succeeded = sum(f.success);
  const failed = sum(f.silent);
  return { succeeded, failed, finished: succeeded + failed + sum(f.transferFailure) };
}

/**
 * AWS-IoT-Jobs-like: exponential rollout (100/min, doubling per further 1,000 successes, ≤ 1,000/min)
 * and an abort config (failed ÷ finished > k·θ once ≥ M finished). With `neverAbort` it records, for
 * each M of `mGrid`, the largest failure share seen with ≥ M finished: the smallest k that would not
 * have aborted, which calibrates every k at once from one run per seed.
 */
export class CloudJob implements Strategy {
  private aborted = false;
  private readonly maxShare: number[];
  constructor(
    private readonly k: number,
    private readonly m: number,
    private readonly neverAbort = false,
    private readonly mGrid: readonly number[] = [],
  ) {
    this.maxShare = mGrid.map(() => 0);
  }
  step(f: Fleet): RunStatus | undefined {
    const { succeeded, failed, finished } = jobCounts(f);
    const share = finished > 0 ? failed / finished : 0;
    this.mGrid.forEach((m, i) => {
      if (finished >= m && share > this.maxShare[i]!) this.maxShare[i] = share;
    });
    if (!this.neverAbort && finished >= this.m && share > this.k * THETA) {
      this.aborted = true;
      return 'aborted';
    }
    const left = sum(f.size) - sum(f.dispatched);
    if (left === 0) return f.anyPending() ? undefined : 'completed';
    const rate = Math.min(MAX_RATE, 100 * 2 ** Math.floor(succeeded / 1000));
    f.dispatchRandom(rate);
    return undefined;
  }
  abortedStrata(): number[] {
    return this.aborted ? [0, 1, 2, 3] : [];
  }
  caughtInFirstWave(): boolean {
    return false;
  }
  stats(): Record<string, number> {
    return Object.fromEntries(this.mGrid.map((m, i) => [`maxShare_M${m}`, this.maxShare[i]!]));
  }
}

/** Fixed canary steps 1 % / 10 % / 100 %: each step waits for all outcomes; abort if pooled share > k·θ. */
export class FixedCanary implements Strategy {
  private stepIdx = 0;
  private aborted = false;
  private readonly shares: number[] = [];
  private firstStepAbort = false;
  constructor(
    private readonly k: number,
    private readonly neverAbort = false,
    private readonly steps: readonly number[] = [0.01, 0.1, 1],
  ) {}
  step(f: Fleet): RunStatus | undefined {
    const dispatched = sum(f.dispatched);
    const target = Math.round(this.steps[this.stepIdx]! * DEVICES);
    if (dispatched >= target && !f.anyPending()) {
      if (this.stepIdx === this.steps.length - 1) return 'completed';
      // End of a step that is followed by another: the only points where aborting still protects devices.
      const { failed, finished } = jobCounts(f);
      const share = finished > 0 ? failed / finished : 0;
      this.shares.push(share);
      if (!this.neverAbort && share > this.k * THETA) {
        this.aborted = true;
        this.firstStepAbort = this.stepIdx === 0;
        return 'aborted';
      }
      this.stepIdx++;
    }
    const nextTarget = Math.round(this.steps[this.stepIdx]! * DEVICES);
    if (dispatched < nextTarget) f.dispatchRandom(Math.min(MAX_RATE, nextTarget - dispatched));
    return undefined;
  }
  abortedStrata(): number[] {
    return this.aborted ? [0, 1, 2, 3] : [];
  }
  caughtInFirstWave(): boolean {
    return this.firstStepAbort;
  }
  stats(): Record<string, number> {
    return { maxShare: Math.max(0, ...this.shares) };
  }
}

export interface FleetbrainOptions {
  plan: WavePlan;
  gate: GateParams;
  deadlineMinutes: number;
  /** A stratum enters the wave that completes it only once promoted ("keep sampling" until then). */
  lastWaveNeedsPromote: boolean;
}

type StratumState = 'active' | 'promoted' | 'aborted';

/**
 * Fleetbrain: per-stratum waves from the domain wave plan, the domain gate every minute, a stratum
 * moves to its next wave when the current one has settled and the gate says continue, and to
 * 100 % at once when the gate promotes it; failing strata are halted (scope: failing strata).
 */
export class Fleetbrain implements Strategy {
  private readonly fractions: number[];
  private readonly stages: number;
  private waveIdx: number[] = [];
  private state: StratumState[] = [];
  private caughtFirst = false;
  private promotedAt: number[] = [];
  private settledAt: number[] = [-1, -1, -1, -1];
  private extra: number[] = [0, 0, 0, 0];
  private lastBricks = -1;
  private lastCtrl = -1;
  private lastGate: GateResult | undefined;
  constructor(private readonly o: FleetbrainOptions) {
    this.fractions = cumulativeFractions(o.plan, DEVICES);
    this.stages = o.plan.firstWaveStages;
  }
  step(f: Fleet): RunStatus | undefined {
    const S = f.size.length;
    if (this.waveIdx.length === 0) {
      this.waveIdx = f.size.map(() => 0);
      this.state = f.size.map(() => 'active');
      this.promotedAt = f.size.map(() => -1);
    }
    const treated: Record<string, OutcomeCounts> = {};
    const control: Record<string, ControlCounts> = {};
    for (let s = 0; s < S; s++) {
      treated[s] = {
        success: f.success[s]!,
        degraded: 0,
        reverted: 0,
        transferFailure: f.transferFailure[s]!,
        brick: f.silent[s]!,
        unknown: 0,
        pending: f.pending(s),
      };
      control[s] = { observed: f.controlObserved[s]!, silent: f.controlSilent[s]! };
    }
    // The gate is pure, so it is skipped when it cannot change its answer: an abort can only newly
    // appear when a brick is declared or a control window closes (more successes only lower the
    // statistic); promotion is looked at every 5 minutes and whenever a stratum's wave settles.
    const bricks = sum(f.silent);
    const ctrl = sum(f.controlObserved);
    const settled = f.size.some(
      (_, s) =>
        this.state[s] === 'active' &&
        f.pending(s) === 0 &&
        f.dispatched[s]! > 0 &&
        f.dispatched[s]! !== this.settledAt[s],
    );
    for (let s = 0; s < S; s++) if (f.pending(s) === 0) this.settledAt[s] = f.dispatched[s]!;
    const due =
      !this.lastGate ||
      bricks !== this.lastBricks ||
      ctrl !== this.lastCtrl ||
      f.t % 5 === 0 ||
      settled ||
      f.t >= this.o.deadlineMinutes;
    const g = due
      ? evaluateGate(treated, control, this.o.gate, {
          infrastructureHealthy: true,
          minutesSinceStart: f.t,
          decisionDeadlineMinutes: this.o.deadlineMinutes,
        })
      : this.lastGate!;
    this.lastBricks = bricks;
    this.lastCtrl = ctrl;
    this.lastGate = g;
    const halt = new Set(g.haltStrata);
    for (const r of g.perStratum) {
      const s = Number(r.stratum);
      if ((g.decision === 'abort' && halt.has(r.stratum)) || r.decision === 'abort') {
        if (this.state[s] !== 'aborted') {
          this.state[s] = 'aborted';
          if (f.rates[s]! > THETA && this.waveIdx[s]! < this.stages) this.caughtFirst = true;
        }
      } else if (r.decision === 'promote' && this.state[s] === 'active') {
        this.state[s] = 'promoted';
        this.promotedAt[s] = f.t;
      }
    }
    if (g.decision === 'pause') return 'paused';

    const want: number[] = [];
    for (let s = 0; s < S; s++) {
      const n = f.size[s]!;
      if (this.state[s] === 'aborted') {
        want.push(0);
        continue;
      }
      if (this.state[s] === 'promoted') {
        want.push(f.remaining(s));
        continue;
      }
      const last = this.fractions.length - 1;
      let target = Math.min(n, Math.ceil(this.fractions[this.waveIdx[s]!]! * n) + this.extra[s]!);
      if (f.dispatched[s]! >= target && f.pending(s) === 0 && target < n) {
        const next = this.waveIdx[s]! + 1;
        if (next < last || !this.o.lastWaveNeedsPromote) {
          this.waveIdx[s] = next;
        } else {
          // Not promoted yet: keep sampling in waves the size of the one before instead of jumping to 100 %.
          const prev = this.fractions[this.waveIdx[s]!]! - (this.fractions[this.waveIdx[s]! - 1] ?? 0);
          this.extra[s]! += Math.ceil(prev * n);
        }
        target = Math.min(n, Math.ceil(this.fractions[this.waveIdx[s]!]! * n) + this.extra[s]!);
      }
      want.push(Math.max(0, target - f.dispatched[s]!));
    }
    // Water-fill the per-minute cap across strata.
    let cap = f.capacityLeft();
    let open = want.filter((w) => w > 0).length;
    const order = want.map((w, s) => ({ w, s })).sort((a, b) => a.w - b.w);
    for (const { w, s } of order) {
      if (w <= 0) continue;
      const share = Math.floor(cap / open);
      const sent = f.dispatch(s, Math.min(w, Math.max(share, 1)));
      cap -= sent;
      open--;
    }
    const allDone = f.size.every((n, s) => this.state[s] === 'aborted' || f.dispatched[s]! >= n);
    if (allDone && !f.anyPending()) return this.state.some((x) => x === 'aborted') ? 'aborted' : 'completed';
    return undefined;
  }
  abortedStrata(): number[] {
    return this.state.flatMap((x, s) => (x === 'aborted' ? [s] : []));
  }
  caughtInFirstWave(): boolean {
    return this.caughtFirst;
  }
  stats(): Record<string, number> {
    const p = this.promotedAt.filter((x) => x >= 0);
    return { promotedStrata: p.length, lastPromoteMinute: p.length > 0 ? Math.max(...p) : -1 };
  }
}
