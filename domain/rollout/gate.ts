/**
 * The rollout gate: per stratum, a concurrent control group and an anytime-valid test
 * (sequential.ts) decide abort / promote / keep sampling; a pooled test over all strata catches
 * a whole-image defect sooner; a hard ceiling on bricked devices is the backstop.
 *
 * Family-wise false-abort rate: for an image whose attributable brick rate is ≤ θ and whose
 * degraded/reverted rates are under their thresholds in every stratum, P(the gate ever says
 * abort, at any number of looks) ≤ α (the hard ceiling aside). α is split by a union bound:
 *   10 % to the control groups' upper bounds (α/10/S each),
 *   70 % to the brick tests: `pooledShare` of it to the pooled test, the rest in equal shares to
 *   the S strata (without the pooled test, all of it to the strata),
 *   10 % to the degraded tests, 10 % to the reverted tests (α/10/S each).
 * Assumptions: devices fail independently given their stratum; background silence hits treated
 * and control devices of a stratum alike (the control is concurrent and from the same stratum);
 * every treated device is concluded by its outcome timeout. Outcomes that are still pending are
 * left out of the abort test (which only makes it harder to abort) and counted as bricks in the
 * promote test (which only makes it harder to promote); `unknown` outcomes (infrastructure
 * unhealthy) are likewise left out of aborts and count against promotion.
 */
import {
  ABOVE,
  BELOW,
  type Mixture,
  POOLED_ABOVE,
  combinedRate,
  lowerBound,
  shownAbove,
  shownBelow,
  upperBound,
} from './sequential.js';
import type { GateSpec } from './spec.js';

export interface OutcomeCounts {
  success: number;
  degraded: number;
  reverted: number;
  transferFailure: number;
  /** Not back by the outcome timeout. */
  brick: number;
  /** Concluded while infrastructure was unhealthy: excluded from the statistics. */
  unknown: number;
  /** Dispatched, not concluded yet. */
  pending: number;
}

/** Devices of the stratum not upgraded in the same window, and how many of them stayed silent through it. */
export interface ControlCounts {
  observed: number;
  silent: number;
}

export type StratumDecision = 'abort' | 'promote' | 'continue';
export type GateDecision = 'continue' | 'promote' | 'abort' | 'pause';

export interface GateParams {
  /** θ: image-attributable brick rate. */
  theta: number;
  /** Family-wise false-abort rate (1 − confidence). */
  alpha: number;
  degradedThreshold: number;
  revertedThreshold: number;
  hardCeilingBricked: number;
  abortScope: 'failing-strata' | 'all';
  /** Level of the promote decision (false-promote rate, split over strata); defaults to α. */
  promoteAlpha?: number;
  /** Run the pooled all-strata brick test too (default true). */
  pooledTest?: boolean;
  /** Share of the brick-test α given to the pooled test (default 0.5): it is what catches a whole-image defect. */
  pooledShare?: number;
  above?: Mixture;
  /** Alternatives of the pooled test (default POOLED_ABOVE). */
  pooledAbove?: Mixture;
  below?: Mixture;
  /** Add confidence bounds on the attributable rate to each stratum's report (costs a few bisections). */
  reportBounds?: boolean;
}

export interface GateContext {
  /** From the fleet-health row; a stale row must be passed as unhealthy. */
  infrastructureHealthy: boolean;
  minutesSinceStart: number;
  decisionDeadlineMinutes: number;
}

export interface StratumReport {
  stratum: string;
  decision: StratumDecision;
  reasons: string[];
  concluded: number;
  bricks: number;
  treatedRate: number;
  controlRate: number;
  /** Treated brick rate above which abort is shown (θ on top of the control's upper bound). */
  abortBoundary: number;
  /** Treated brick rate below which promotion is shown (θ on top of the control's lower bound). */
  promoteBoundary: number;
  attributableLower?: number;
  attributableUpper?: number;
}

export interface GateResult {
  decision: GateDecision;
  reasons: string[];
  perStratum: StratumReport[];
  /** Strata to halt (and roll back) when decision is abort; all strata when the scope is 'all'. */
  haltStrata: string[];
  /** The stated family-wise false-abort rate this evaluation was made at. */
  familyWiseFalseAbortRate: number;
}

/** Gate parameters as a rollout spec states them (α = 1 − confidence). */
export function gateParamsFromSpec(gate: GateSpec): GateParams {
  return {
    theta: gate.theta,
    alpha: 1 - gate.confidence,
    degradedThreshold: gate.degradedThreshold,
    revertedThreshold: gate.revertedThreshold,
    hardCeilingBricked: gate.hardCeilingBricked,
    abortScope: gate.abortScope,
  };
}

const EMPTY_CONTROL: ControlCounts = { observed: 0, silent: 0 };

// Control bounds change rarely (hourly windows) but are asked for at every look: memoise.
const boundCache = new Map<string, number>();
const mixKeys = new WeakMap<Mixture, string>();
function mixKey(mix: Mixture): string {
  let k = mixKeys.get(mix);
  if (k === undefined) {
    k = `${mix.ratios.join(',')}/${mix.weights?.join(',') ?? ''}`;
    mixKeys.set(mix, k);
  }
  return k;
}
function cachedBound(kind: 'u' | 'l', n: number, x: number, alpha: number, mix: Mixture): number {
  const key = `${kind}${n}|${x}|${alpha}|${mixKey(mix)}`;
  const hit = boundCache.get(key);
  if (hit !== undefined) return hit;
  const v = kind === 'u' ? upperBound(n, x, alpha, mix) : lowerBound(n, x, alpha, mix);
  if (boundCache.size > 50_000) boundCache.clear();
  boundCache.set(key, v);
  return v;
}

export function concludedOf(c: OutcomeCounts): number {
  return c.success + c.degraded + c.reverted + c.transferFailure + c.brick;
}

export function evaluateGate(
  treated: Readonly<Record<string, OutcomeCounts>>,
  control: Readonly<Record<string, ControlCounts>>,
  params: GateParams,
  context: GateContext,
): GateResult {
  const strata = Object.keys(treated).sort();
  const S = Math.max(strata.length, 1);
  const usePooled = params.pooledTest ?? true;
  const pooledShare = usePooled ? (params.pooledShare ?? 0.5) : 0;
  const aBrick = (0.7 * params.alpha * (1 - pooledShare)) / S;
  const aPooled = 0.7 * params.alpha * pooledShare;
  const aControl = (0.1 * params.alpha) / S;
  const aSide = (0.1 * params.alpha) / S;
  const aPromote = (params.promoteAlpha ?? params.alpha) / S;
  const above = params.above ?? ABOVE;
  const below = params.below ?? BELOW;

  const reports: StratumReport[] = [];
  let maxControlUpper = 0;
  let pooledN = 0;
  let pooledBricks = 0;
  let totalBricks = 0;

  for (const s of strata) {
    const t = treated[s]!;
    const c = control[s] ?? EMPTY_CONTROL;
    const n = concludedOf(t);
    const reasons: string[] = [];
    // Without a control group nothing can be blamed on the image: the upper bound is 1 (no abort).
    const cUpper = c.observed > 0 ? cachedBound('u', c.observed, c.silent, aControl, below) : 1;
    const cLower = c.observed > 0 ? cachedBound('l', c.observed, c.silent, aControl, above) : 0;
    maxControlUpper = Math.max(maxControlUpper, cUpper);
    const abortBoundary = combinedRate(params.theta, cUpper);
    const promoteBoundary = combinedRate(params.theta, cLower);
    let decision: StratumDecision = 'continue';

    if (n > 0 && abortBoundary < 1 && shownAbove(n, t.brick, abortBoundary, aBrick, above)) {
      decision = 'abort';
      reasons.push(`brick rate shown above θ=${params.theta} over control`);
    }
    if (n > 0 && shownAbove(n, t.degraded, params.degradedThreshold, aSide, above)) {
      decision = 'abort';
      reasons.push(`degraded rate shown above ${params.degradedThreshold}`);
    }
    if (n > 0 && shownAbove(n, t.reverted, params.revertedThreshold, aSide, above)) {
      decision = 'abort';
      reasons.push(`reverted rate shown above ${params.revertedThreshold}`);
    }
    if (decision === 'continue') {
      // Worst case for promotion: everything not yet a success may still be a brick.
      const all = n + t.pending + t.unknown;
      const worst = t.brick + t.pending + t.unknown;
      const okBricks = all > 0 && shownBelow(all, worst, promoteBoundary, aPromote, below);
      const okDeg =
        all > 0 &&
        shownBelow(all, t.degraded + t.pending + t.unknown, params.degradedThreshold, aPromote, below);
      const okRev =
        all > 0 &&
        shownBelow(all, t.reverted + t.pending + t.unknown, params.revertedThreshold, aPromote, below);
      if (okBricks && okDeg && okRev) {
        decision = 'promote';
        reasons.push(`brick, degraded and reverted rates shown below their thresholds`);
      }
    }
    const report: StratumReport = {
      stratum: s,
      decision,
      reasons,
      concluded: n,
      bricks: t.brick,
      treatedRate: n > 0 ? t.brick / n : 0,
      controlRate: c.observed > 0 ? c.silent / c.observed : 0,
      abortBoundary,
      promoteBoundary,
    };
    if (params.reportBounds && n > 0) {
      const lo = lowerBound(n, t.brick, aBrick, above);
      const hi = upperBound(n + t.pending + t.unknown, t.brick + t.pending + t.unknown, aPromote, below);
      report.attributableLower = Math.max(0, 1 - (1 - lo) / (1 - cUpper));
      report.attributableUpper = Math.min(1, Math.max(0, 1 - (1 - hi) / (1 - cLower)));
    }
    reports.push(report);
    pooledN += n;
    pooledBricks += t.brick;
    totalBricks += t.brick;
  }

  const reasons: string[] = [];
  let haltAll = false;
  if (usePooled && pooledN > 0 && maxControlUpper < 1) {
    const q0 = combinedRate(params.theta, maxControlUpper);
    if (shownAbove(pooledN, pooledBricks, q0, aPooled, params.pooledAbove ?? POOLED_ABOVE)) {
      haltAll = true;
      reasons.push('pooled brick rate over all strata shown above θ');
    }
  }
  if (totalBricks >= params.hardCeilingBricked) {
    haltAll = true;
    reasons.push(`hard ceiling: ${totalBricks} bricked ≥ ${params.hardCeilingBricked}`);
  }
  const failing = reports.filter((r) => r.decision === 'abort').map((r) => r.stratum);
  const base = { perStratum: reports, familyWiseFalseAbortRate: params.alpha };

  if (!context.infrastructureHealthy) {
    // Silence during an outage is not evidence about the image: hold everything, decide nothing.
    return { ...base, decision: 'pause', reasons: ['infrastructure unhealthy', ...reasons], haltStrata: [] };
  }
  if (haltAll || failing.length > 0) {
    const halt = haltAll || params.abortScope === 'all' ? strata : failing;
    for (const r of reports) if (haltAll && r.decision !== 'abort') r.decision = 'abort';
    return {
      ...base,
      decision: 'abort',
      reasons: [...reasons, ...failing.map((f) => `stratum ${f} failing`)],
      haltStrata: halt,
    };
  }
  if (reports.length > 0 && reports.every((r) => r.decision === 'promote')) {
    return {
      ...base,
      decision: 'promote',
      reasons: ['every stratum shown below its thresholds'],
      haltStrata: [],
    };
  }
  if (context.minutesSinceStart >= context.decisionDeadlineMinutes) {
    return { ...base, decision: 'pause', reasons: ['inconclusive at the decision deadline'], haltStrata: [] };
  }
  return { ...base, decision: 'continue', reasons, haltStrata: [] };
}
