/**
 * Strata for promotion are (model, hardware version, from-firmware). Topology never splits a
 * stratum; it only spreads and caps waves.
 *
 * Pooling rule: a stratum is too small when, even with every device upgraded and only the
 * expected background silence among them, the gate could never show its brick rate below θ
 * (sequential.ts at the promote level). Small strata are merged step by step — first with the
 * other small strata of the same (model, hardware version), then of the same model, then into
 * one stratum "pooled:other" — and a merged group that is still too small moves on to the next
 * step. Large strata are never merged.
 */
import { combinedRate, shownBelow } from './sequential.js';

export interface StratumDevice {
  id: string;
  model: string;
  hardwareVersion: string;
  firmware: string;
}

export interface Stratum {
  id: string;
  /** The (model|hardware|firmware) keys merged into this stratum. */
  members: string[];
  size: number;
}

export function stratumKey(d: StratumDevice): string {
  return `${d.model}|${d.hardwareVersion}|${d.firmware}`;
}

/** Smallest stratum size whose brick rate could ever be shown below θ with background `background`. */
export function minimumStratumSize(theta: number, alpha: number, background = 0.002): number {
  const q = combinedRate(theta, background);
  const ok = (n: number) => shownBelow(n, Math.round(n * background), q, alpha);
  let hi = 16;
  while (!ok(hi)) {
    hi *= 2;
    if (hi > 1e9) return Number.POSITIVE_INFINITY;
  }
  let lo = hi / 2;
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (ok(mid)) hi = mid;
    else lo = mid;
  }
  return hi;
}

/** Group keys into strata by the pooling rule; returns the strata and a key → stratum id map. */
export function poolStrata(
  sizes: ReadonlyMap<string, number>,
  minSize: number,
): { strata: Stratum[]; stratumOfKey: Map<string, string> } {
  const strata: Stratum[] = [];
  let small: Stratum[] = [];
  for (const [key, size] of [...sizes.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const s = { id: key, members: [key], size };
    if (size >= minSize) strata.push(s);
    else small.push(s);
  }
  const parts = (k: string) => k.split('|');
  const levels: Array<{ label: (k: string) => string }> = [
    { label: (k) => `pooled:${parts(k)[0]}|${parts(k)[1]}|*` },
    { label: (k) => `pooled:${parts(k)[0]}|*|*` },
    { label: () => 'pooled:other' },
  ];
  for (const [li, level] of levels.entries()) {
    const groups = new Map<string, Stratum>();
    for (const s of small) {
      const id = level.label(s.members[0]!);
      const g = groups.get(id) ?? { id, members: [], size: 0 };
      g.members.push(...s.members);
      g.size += s.size;
      groups.set(id, g);
    }
    small = [];
    for (const g of [...groups.values()].sort((a, b) => (a.id < b.id ? -1 : 1))) {
      // The last level keeps whatever is left, big enough or not: nothing is dropped.
      if (g.size >= minSize || li === levels.length - 1) strata.push(g);
      else small.push(g);
    }
  }
  const stratumOfKey = new Map<string, string>();
  for (const s of strata) for (const m of s.members) stratumOfKey.set(m, s.id);
  return { strata, stratumOfKey };
}
