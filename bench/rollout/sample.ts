import type { Prng } from '../../domain/rollout/prng.js';

/**
 * Binomial draw. Exact (inversion) while the mean is small — every brick and silence count in the
 * benchmark is in that range; a continuity-corrected normal approximation above it, used only to
 * spread successes over their arrival minutes, where tails do not matter.
 */
export function binomial(rng: Prng, n: number, p: number): number {
  if (n <= 0 || p <= 0) return 0;
  if (p >= 1) return n;
  if (p > 0.5) return n - binomial(rng, n, 1 - p);
  const mean = n * p;
  if (mean < 40) {
    const q = 1 - p;
    const s = p / q;
    let f = q ** n;
    let u = rng.next();
    let x = 0;
    while (u > f && x < n) {
      u -= f;
      x++;
      f *= (s * (n - x + 1)) / x;
    }
    return x;
  }
  // Box–Muller
  const u1 = Math.max(rng.next(), 1e-300);
  const z = Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * rng.next());
  const x = Math.round(mean + z * Math.sqrt(mean * (1 - p)));
  return Math.min(n, Math.max(0, x));
}

/**
 * Spread n items uniformly over `bins` consecutive slots: an equal share each, the remainder to
 * distinct random slots. Each item still lands in each slot with probability 1/bins; this is the
 * stratified (low-variance) version of the multinomial, used only for arrival times.
 */
export function spread(rng: Prng, n: number, bins: number, out: (bin: number, count: number) => void): void {
  if (n <= 0) return;
  const each = Math.floor(n / bins);
  let rem = n - each * bins;
  if (each > 0) for (let i = 0; i < bins; i++) out(i, each);
  // Random distinct slots for the remainder: a partial Fisher–Yates over a small index pool.
  if (POOL.length < bins) POOL = Array.from({ length: bins }, (_, i) => i);
  const idx = POOL;
  for (let i = 0; i < bins; i++) idx[i] = i;
  for (let i = 0; rem > 0; i++, rem--) {
    const j = i + rng.int(bins - i);
    const tmp = idx[i]!;
    idx[i] = idx[j]!;
    idx[j] = tmp;
    out(idx[i]!, 1);
  }
}
let POOL: number[] = Array.from({ length: 64 }, (_, i) => i);
