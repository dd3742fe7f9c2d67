/**
 * Anytime-valid one-sided tests for a Bernoulli rate: a mixture of likelihood-ratio martingales
 * ("mixture SPRT"). Chosen over alpha spending because the gate looks every time new outcomes
 * arrive, at data-dependent times and an unplanned number of looks; Ville's inequality keeps
 * P(ever crossing 1/α) ≤ α however often we look. A finite mixture over alternatives r·q needs
 * no special functions, is exact in floating point, and is monotone in the reference rate, so a
 * test at a conservative boundary is also a test of every rate beyond it.
 *
 * For a reference rate q and an alternative r·q, each observation multiplies the statistic by
 * r (failure) or (1 − r·q)/(1 − q) (success); its expectation under q is exactly 1, so the
 * product is a non-negative martingale, and a mixture of such products with weights summing
 * to 1 is one too.
 */

export interface Mixture {
  /** Alternative ratios r_j: > 1 to show a rate above the reference, in (0, 1) to show it below. */
  ratios: readonly number[];
  /** Non-negative weights, normalised internally. */
  weights?: readonly number[];
}

/** Alternatives for "rate is above the reference" (abort side). */
export const ABOVE: Mixture = { ratios: [1.5, 2, 3, 4.5] };
/** Alternatives of the pooled test: a whole-image defect shows as a modest ratio over many devices. */
export const POOLED_ABOVE: Mixture = { ratios: [1.3, 1.6, 2, 2.5] };
/** Alternatives for "rate is below the reference" (promote side). */
export const BELOW: Mixture = { ratios: [0.2, 0.4, 0.6] };

function logSumExp(xs: number[]): number {
  let m = Number.NEGATIVE_INFINITY;
  for (const x of xs) if (x > m) m = x;
  if (m === Number.NEGATIVE_INFINITY) return m;
  let s = 0;
  for (const x of xs) s += Math.exp(x - m);
  return m + Math.log(s);
}

/**
 * log of the mixture martingale after `failures` of `n` observations, against reference rate q.
 * Alternatives with r·q ≥ 1 are impossible rates and contribute nothing on the success side;
 * they are dropped (their weight is kept, which only makes the test more conservative).
 */
export function logMixtureLR(n: number, failures: number, q: number, mix: Mixture): number {
  if (!(q > 0 && q < 1)) throw new RangeError(`reference rate must be in (0, 1), got ${q}`);
  if (failures < 0 || failures > n) throw new RangeError(`failures ${failures} not in [0, ${n}]`);
  const ratios = mix.ratios;
  const ws = mix.weights;
  let wsum = 0;
  for (let j = 0; j < ratios.length; j++) wsum += ws ? (ws[j] ?? 0) : 1;
  const succ = n - failures;
  const base = succ * Math.log1p(-q);
  const terms: number[] = [];
  for (let j = 0; j < ratios.length; j++) {
    const r = ratios[j]!;
    const w = (ws ? (ws[j] ?? 0) : 1) / wsum;
    if (w <= 0 || r * q >= 1) continue;
    terms.push(Math.log(w) + failures * Math.log(r) + succ * Math.log1p(-r * q) - base);
  }
  return logSumExp(terms);
}

/** True when the data show the rate above q at level α (anytime-valid). Monotone: also for every rate < q. */
export function shownAbove(
  n: number,
  failures: number,
  q: number,
  alpha: number,
  mix: Mixture = ABOVE,
): boolean {
  return logMixtureLR(n, failures, q, mix) >= -Math.log(alpha);
}

/** True when the data show the rate below q at level α (anytime-valid). Monotone: also for every rate > q. */
export function shownBelow(
  n: number,
  failures: number,
  q: number,
  alpha: number,
  mix: Mixture = BELOW,
): boolean {
  return logMixtureLR(n, failures, q, mix) >= -Math.log(alpha);
}

/**
 * Anytime-valid upper confidence bound: the smallest q that is not yet shown-below rejected…
 * precisely, inf{q : shownBelow(n, x, q, α)}; every rate at or above it is excluded.
 * With probability ≥ 1 − α the true rate stays below this bound at every look.
 */
export function upperBound(n: number, failures: number, alpha: number, mix: Mixture = BELOW): number {
  let lo = failures / Math.max(n, 1);
  let hi = 1 - 1e-12;
  if (!shownBelow(n, failures, hi, alpha, mix)) return 1;
  if (lo <= 0) lo = 1e-12;
  if (shownBelow(n, failures, lo, alpha, mix)) return lo;
  for (let i = 0; i < 60; i++) {
    const mid = Math.sqrt(lo * hi);
    if (shownBelow(n, failures, mid, alpha, mix)) hi = mid;
    else lo = mid;
    if (hi / lo < 1 + 1e-4) break;
  }
  return hi;
}

/** Anytime-valid lower confidence bound: sup{q : shownAbove(n, x, q, α)}, or 0 when nothing is excluded. */
export function lowerBound(n: number, failures: number, alpha: number, mix: Mixture = ABOVE): number {
  let lo = 1e-12;
  let hi = Math.min(failures / Math.max(n, 1), 1 - 1e-12);
  if (hi <= lo || !shownAbove(n, failures, lo, alpha, mix)) return 0;
  if (shownAbove(n, failures, hi, alpha, mix)) return hi;
  for (let i = 0; i < 60; i++) {
    const mid = Math.sqrt(lo * hi);
    if (shownAbove(n, failures, mid, alpha, mix)) lo = mid;
    else hi = mid;
    if (hi / lo < 1 + 1e-4) break;
  }
  return lo;
}

/** Rate on the treated side that corresponds to an image-attributable rate θ on top of background p. */
export function combinedRate(theta: number, background: number): number {
  return 1 - (1 - theta) * (1 - background);
}
