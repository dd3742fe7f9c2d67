/**
 * Inform-rate health history: was the ACS reachable at each moment of the past?
 *
 * The executor persists every inform before acknowledging it, so the count of informs per time
 * bucket says whether CPEs could reach us. Two things make a naive per-bucket test lie:
 *  - a bucket narrower than the devices' periodic interval sees their informs in lock-step (a fleet
 *    that came back from a storm informs in phase), so an ordinary quiet bucket reads as an outage;
 *  - a baseline taken from the judged span itself is dragged down by the very outage it should
 *    reveal, and by a handful of buckets it is mostly noise.
 * So each moment is judged by sliding windows at least one periodic interval wide, against the
 * median window of a look-back before the judged span (the last hour, as executor/health.ts).
 */
import type { HealthSample } from './outcome.js';

/** Share of the baseline below which a window reads as an outage (as executor/health.ts). */
export const OUTAGE_RATE_SHARE = 0.2;

export interface InformRateParams {
  /** Start of bucket 0 (ms since the epoch). */
  start: number;
  /** Width of one count bucket (ms); samples are one per bucket. */
  stepMs: number;
  /** Buckets per judged window; the window is at least the longest periodic inform interval that matters. */
  windowSteps: number;
  /** Buckets before this index are the look-back: they set the baseline and are not judged. */
  judgeFrom: number;
  /** A baseline below this many informs per window says nothing (small or idle fleets): healthy. */
  minBaselinePerWindow: number;
  /**
   * Informs per window the inventory expects (each recently heard device contributes window ÷ its
   * periodic interval, at most 1). Caps the baseline: a look-back dominated by a storm (the fleet
   * starting, power coming back) would otherwise make ordinary traffic read as an outage. It is the
   * baseline when the look-back holds no whole window (a fleet younger than that).
   */
  expectedPerWindow?: number;
  outageShare?: number;
}

export interface InformRateJudgement {
  samples: HealthSample[];
  /** Median informs per window (0 when nothing could be measured). */
  baseline: number;
  /** Where the baseline came from: the look-back, or the judged span when the look-back is empty. */
  baselineFrom: 'look-back' | 'judged-span' | 'inventory' | 'none';
  /** Judged windows below the outage share, as [startMs, endMs). */
  lowWindows: Array<[number, number]>;
}

function median(xs: number[]): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/**
 * `counts[i]` = informs in [start + i·step, start + (i+1)·step). Returns one sample per judged bucket
 * (at its start): unhealthy when any window covering the bucket holds fewer than `outageShare` ×
 * baseline informs. Windows reaching back before the fleet's first inform are not judged (there was
 * no fleet to hear from), and neither are buckets only such windows cover.
 */
export function judgeInformRate(counts: readonly number[], p: InformRateParams): InformRateJudgement {
  const k = Math.max(1, Math.floor(p.windowSteps));
  const share = p.outageShare ?? OUTAGE_RATE_SHARE;
  const n = counts.length;
  const first = counts.findIndex((c) => c > 0);
  const sums: Array<number | undefined> = new Array(n).fill(undefined);
  if (first >= 0) {
    let run = 0;
    for (let j = 0; j < n; j++) {
      run += counts[j]!;
      if (j >= k) run -= counts[j - k]!;
      if (j - k + 1 >= first) sums[j] = run;
    }
  }
  // Baseline: windows wholly inside the look-back, capped by what the inventory expects. When the
  // fleet is younger than one window there, the inventory's expectation; without one, the judged
  // span's own windows (whose median an outage filling half of it drags to nothing).
  const back: number[] = [];
  const span: number[] = [];
  for (let j = 0; j < n; j++) {
    const s = sums[j];
    if (s === undefined) continue;
    if (j < p.judgeFrom) back.push(s);
    else span.push(s);
  }
  const expected = p.expectedPerWindow ?? 0;
  const observed = median(back.length > 0 ? back : span);
  const fromInventory = expected > 0 && (back.length === 0 || expected < observed);
  const baselineFrom = fromInventory
    ? 'inventory'
    : back.length > 0
      ? 'look-back'
      : span.length > 0
        ? 'judged-span'
        : 'none';
  const baseline = fromInventory ? expected : observed;
  const meaningful = baseline >= p.minBaselinePerWindow;
  const low = (j: number) => meaningful && sums[j] !== undefined && sums[j]! < share * baseline;
  const samples: HealthSample[] = [];
  const lowWindows: Array<[number, number]> = [];
  for (let j = Math.max(0, p.judgeFrom); j < n; j++)
    if (low(j)) lowWindows.push([p.start + (j - k + 1) * p.stepMs, p.start + (j + 1) * p.stepMs]);
  for (let i = Math.max(0, p.judgeFrom); i < n; i++) {
    let healthy = true;
    // Windows ending at i … i+k-1 cover bucket i.
    for (let j = i; j < Math.min(n, i + k); j++)
      if (low(j)) {
        healthy = false;
        break;
      }
    samples.push({ at: p.start + i * p.stepMs, healthy });
  }
  return { samples, baseline, baselineFrom, lowWindows };
}
