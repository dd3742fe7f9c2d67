/**
 * How long a CPE waits before retrying after its n-th consecutive failed session (TR-069 §3.2.1.1,
 * the defaults CWMPRetryMinimumWaitInterval 5 s and CWMPRetryIntervalMultiplier 2000): a point drawn
 * by `u` ∈ [0, 1) in [5·2^(n−1), 5·2^n) seconds, the exponent capped at its 10th retry. A storm's
 * failed sessions thus spread out instead of coming straight back at an overloaded ACS.
 */
export function sessionRetryWaitMs(n: number, u: number): number {
  const low = 5_000 * 2 ** (Math.min(Math.max(n, 1), 10) - 1);
  return low + u * low;
}
