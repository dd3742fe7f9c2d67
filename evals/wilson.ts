/** Wilson score interval for a binomial proportion (95 % by default); well-behaved at 0 and n. */
export interface Proportion {
  successes: number;
  n: number;
  rate: number | null;
  low: number | null;
  high: number | null;
}

export function wilson(successes: number, n: number, z = 1.959963984540054): Proportion {
  if (n === 0) return { successes, n, rate: null, low: null, high: null };
  const p = successes / n;
  const z2 = z * z;
  const denom = 1 + z2 / n;
  const centre = (p + z2 / (2 * n)) / denom;
  const half = (z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / denom;
  // Exact bounds at the edges (floating point leaves ~1e-17 otherwise).
  const low = successes === 0 ? 0 : Math.max(0, centre - half);
  const high = successes === n ? 1 : Math.min(1, centre + half);
  return { successes, n, rate: p, low, high };
}

export function quantile(xs: readonly number[], q: number): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const i = Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1));
  return s[i] as number;
}
