/**
 * Time-stepped fleet model of the `rollout` benchmark (one-minute steps, no protocol).
 * Devices are tracked as counts per stratum and minute, which keeps 100,000 devices × thousands of
 * seeds cheap while drawing every brick and every silence exactly (bench/rollout/sample.ts).
 *
 * Per dispatched device: brick with the stratum's image-attributable rate; else silent through its
 * 60-min window with probability BACKGROUND (power, line faults); else a transfer failure with
 * probability TRANSFER_FAILURE, reported 5–30 min after dispatch; else success 10–30 min after.
 * Bricks and silent devices are declared at the 60-min outcome timeout. Control: every hour, each
 * device of the stratum not yet upgraded is one control observation, silent with BACKGROUND.
 */
import { createPrng, type Prng } from '../../domain/rollout/prng.js';
import { binomial, spread } from './sample.js';

export const DEVICES = 100_000;
export const STRATA = 4;
export const THETA = 0.005;
export const BACKGROUND = 0.002;
/** Not given by the issue; a small image-independent rate so the path is exercised. */
export const TRANSFER_FAILURE = 0.005;
export const MAX_RATE = 1000;
export const HORIZON = 24 * 60;

export interface Scenario {
  name: 'a' | 'b' | 'c' | 'd';
  label: string;
  brickRates: number[];
}

export const SCENARIOS: Scenario[] = [
  { name: 'a', label: 'one model 2 %, others 0.05 %', brickRates: [0.02, 0.0005, 0.0005, 0.0005] },
  { name: 'b', label: 'whole image 1 %', brickRates: [0.01, 0.01, 0.01, 0.01] },
  { name: 'c', label: 'good image 0.05 %', brickRates: [0.0005, 0.0005, 0.0005, 0.0005] },
  { name: 'd', label: 'good image 0.4 % (just under θ)', brickRates: [0.004, 0.004, 0.004, 0.004] },
];

export interface Timings {
  /** Minutes after dispatch at which a silent device is declared bricked. */
  brickDeclaredAfter: number;
  successFrom: number;
  successTo: number;
  transferFailureFrom: number;
  transferFailureTo: number;
}

export const DEFAULT_TIMINGS: Timings = {
  brickDeclaredAfter: 60,
  successFrom: 10,
  successTo: 30,
  transferFailureFrom: 5,
  transferFailureTo: 30,
};

/** What a strategy sees and does each minute. */
export class Fleet {
  readonly size: number[];
  readonly rates: number[];
  readonly dispatched: number[];
  readonly success: number[];
  readonly transferFailure: number[];
  /** Declared silent at the timeout (true bricks and background silence alike). */
  readonly silent: number[];
  readonly trueBricks: number[];
  readonly controlObserved: number[];
  readonly controlSilent: number[];
  t = 0;
  private capacity = MAX_RATE;
  private readonly succAt: Int32Array[];
  private readonly tfAt: Int32Array[];
  private readonly silentAt: Int32Array[];
  readonly rng: Prng;

  constructor(
    scenario: Scenario,
    seed: string,
    private readonly tm: Timings,
  ) {
    this.rng = createPrng(seed);
    this.rates = scenario.brickRates;
    this.size = this.rates.map(() => DEVICES / STRATA);
    const z = () => this.rates.map(() => 0);
    this.dispatched = z();
    this.success = z();
    this.transferFailure = z();
    this.silent = z();
    this.trueBricks = z();
    this.controlObserved = z();
    this.controlSilent = z();
    const arr = () => this.rates.map(() => new Int32Array(HORIZON + 120));
    this.succAt = arr();
    this.tfAt = arr();
    this.silentAt = arr();
  }

  remaining(s: number): number {
    return this.size[s]! - this.dispatched[s]!;
  }
  concluded(s: number): number {
    return this.success[s]! + this.transferFailure[s]! + this.silent[s]!;
  }
  pending(s: number): number {
    return this.dispatched[s]! - this.concluded(s);
  }
  anyPending(): boolean {
    for (let s = 0; s < this.size.length; s++) if (this.pending(s) > 0) return true;
    return false;
  }
  capacityLeft(): number {
    return this.capacity;
  }

  /** Start of minute t: outcomes arrive; on the hour, control windows close. */
  advance(t: number): void {
    this.t = t;
    this.capacity = MAX_RATE;
    for (let s = 0; s < this.size.length; s++) {
      this.success[s]! += this.succAt[s]![t]!;
      this.transferFailure[s]! += this.tfAt[s]![t]!;
      this.silent[s]! += this.silentAt[s]![t]!;
      if (t > 0 && t % 60 === 0) {
        const n = this.remaining(s);
        this.controlObserved[s]! += n;
        this.controlSilent[s]! += binomial(this.rng, n, BACKGROUND);
      }
    }
  }

  /** Dispatch up to `want` devices of stratum s this minute; returns how many went. */
  dispatch(s: number, want: number): number {
    const d = Math.max(0, Math.min(Math.floor(want), this.remaining(s), this.capacity));
    if (d === 0) return 0;
    this.capacity -= d;
    this.dispatched[s]! += d;
    const t = this.t;
    const r = this.rng;
    const bricks = binomial(r, d, this.rates[s]!);
    const bg = binomial(r, d - bricks, BACKGROUND);
    const alive = d - bricks - bg;
    const tf = binomial(r, alive, TRANSFER_FAILURE);
    this.trueBricks[s]! += bricks;
    this.silentAt[s]![t + this.tm.brickDeclaredAfter]! += bricks + bg;
    const tfA = this.tfAt[s]!;
    spread(r, tf, this.tm.transferFailureTo - this.tm.transferFailureFrom + 1, (i, k) => {
      tfA[t + this.tm.transferFailureFrom + i]! += k;
    });
    const sA = this.succAt[s]!;
    spread(r, alive - tf, this.tm.successTo - this.tm.successFrom + 1, (i, k) => {
      sA[t + this.tm.successFrom + i]! += k;
    });
    return d;
  }

  /** Dispatch `total` across strata at random in proportion to what each has left (random fleet order). */
  dispatchRandom(total: number, allowed: (s: number) => boolean = () => true): number {
    let left = Math.min(total, this.capacity);
    let pool = 0;
    for (let s = 0; s < this.size.length; s++) if (allowed(s)) pool += this.remaining(s);
    let sent = 0;
    for (let s = 0; s < this.size.length && left > 0 && pool > 0; s++) {
      if (!allowed(s)) continue;
      const rem = this.remaining(s);
      const k = rem === pool ? Math.min(left, rem) : Math.min(rem, binomial(this.rng, left, rem / pool));
      pool -= rem;
      sent += this.dispatch(s, k);
      left -= k;
    }
    return sent;
  }
}

export type RunStatus = 'completed' | 'aborted' | 'paused';

export interface RunResult {
  status: RunStatus;
  /** Minutes from start to the last outcome (completed) or to the halt. */
  minutes: number;
  abortedStrata: number[];
  /** True bricks in strata whose true rate exceeds θ. */
  badBricks: number;
  /** True bricks in the other strata, reported apart. */
  goodBricks: number;
  /** One-model scenario: the defective stratum was halted while still in its first wave. */
  caughtInFirstWave: boolean;
  /** Free-form per-strategy statistics (e.g. max failure share, for calibration). */
  stats: Record<string, number>;
}

export interface Strategy {
  /**
   * Called each minute after outcomes arrived; dispatches through `fleet`. Returns 'completed' once
   * nothing is left to dispatch and no outcome is pending, 'aborted'/'paused' when it stops.
   */
  step(fleet: Fleet): RunStatus | undefined;
  abortedStrata(): number[];
  caughtInFirstWave(): boolean;
  stats(): Record<string, number>;
}

export function runOne(
  scenario: Scenario,
  seed: string,
  strategy: Strategy,
  tm: Timings = DEFAULT_TIMINGS,
): RunResult {
  const fleet = new Fleet(scenario, seed, tm);
  let status: RunStatus | undefined;
  let t = 0;
  for (; t < HORIZON && status === undefined; t++) {
    fleet.advance(t);
    status = strategy.step(fleet);
  }
  let bad = 0;
  let good = 0;
  fleet.rates.forEach((r, s) => {
    if (r > THETA) bad += fleet.trueBricks[s]!;
    else good += fleet.trueBricks[s]!;
  });
  return {
    status: status ?? 'paused',
    minutes: t - 1,
    abortedStrata: strategy.abortedStrata(),
    badBricks: bad,
    goodBricks: good,
    caughtInFirstWave: strategy.caughtInFirstWave(),
    stats: strategy.stats(),
  };
}
