import { describe, expect, it } from 'vitest';
import { judgeInformRate } from './health.js';

const base = { start: 0, stepMs: 15_000, minBaselinePerWindow: 20 };

describe('judgeInformRate', () => {
  it('lock-step informs: one-bucket windows see outages, interval-wide windows do not', () => {
    // 100 devices informing together every 30 s: 100, 0, 100, 0 … per 15-s bucket.
    const counts = Array.from({ length: 300 }, (_, i) => (i % 2 === 0 ? 100 : 0));
    const narrow = judgeInformRate(counts, { ...base, windowSteps: 1, judgeFrom: 240 });
    expect(narrow.samples.some((s) => !s.healthy)).toBe(true);
    const wide = judgeInformRate(counts, { ...base, windowSteps: 2, judgeFrom: 240 });
    expect(wide.samples).toHaveLength(60);
    expect(wide.samples.every((s) => s.healthy)).toBe(true);
    expect(wide.baselineFrom).toBe('look-back');
    expect(wide.baseline).toBe(100);
  });

  it('a stop of informs is unhealthy from its start to its end, judged against the look-back', () => {
    const counts = Array.from({ length: 300 }, (_, i) => (i >= 260 && i < 270 ? 0 : 50));
    const j = judgeInformRate(counts, { ...base, windowSteps: 2, judgeFrom: 240 });
    const bad = j.samples.filter((s) => !s.healthy).map((s) => s.at / 15_000);
    expect(Math.min(...bad)).toBe(260);
    expect(Math.max(...bad)).toBe(269);
    expect(j.lowWindows.length).toBeGreaterThan(0);
  });

  it('a storm in the look-back (fleet start) is capped by what the inventory expects; a real stop still shows', () => {
    // 5,000 devices: all inform at start-up in the look-back, then 300 per 30-s window in steady state.
    const counts = Array.from({ length: 20 }, (_, i) => (i < 4 ? 2_500 : 150));
    const storm = judgeInformRate(counts, { ...base, windowSteps: 2, judgeFrom: 6 });
    expect(storm.samples.some((s) => !s.healthy)).toBe(true);
    const capped = judgeInformRate(counts, { ...base, windowSteps: 2, judgeFrom: 6, expectedPerWindow: 300 });
    expect(capped.baselineFrom).toBe('inventory');
    expect(capped.baseline).toBe(300);
    expect(capped.samples.every((s) => s.healthy)).toBe(true);
    const stopped = counts.map((c, i) => (i >= 12 && i < 16 ? 0 : c));
    const outage = judgeInformRate(stopped, {
      ...base,
      windowSteps: 2,
      judgeFrom: 6,
      expectedPerWindow: 300,
    });
    expect(outage.samples.filter((s) => !s.healthy).map((s) => s.at / 15_000)).toEqual([12, 13, 14, 15]);
    // The inventory only caps: a quieter look-back than expected stays the baseline.
    const quiet = judgeInformRate(stopped, {
      ...base,
      windowSteps: 2,
      judgeFrom: 6,
      expectedPerWindow: 10_000,
    });
    expect(quiet.baselineFrom).toBe('look-back');
  });

  it('an outage filling the whole judged span still reads as one', () => {
    const counts = Array.from({ length: 300 }, (_, i) => (i >= 240 ? 0 : 50));
    const j = judgeInformRate(counts, { ...base, windowSteps: 2, judgeFrom: 240 });
    expect(j.samples.every((s) => !s.healthy)).toBe(true);
  });

  it('no look-back (young fleet): the span is its own baseline; windows before the first inform are not judged', () => {
    const counts = [0, 0, 0, 60, 60, 60, 60, 60, 60, 60];
    const j = judgeInformRate(counts, { ...base, windowSteps: 2, judgeFrom: 0 });
    expect(j.baselineFrom).toBe('judged-span');
    expect(j.samples.every((s) => s.healthy)).toBe(true);
  });

  it('no look-back but an inventory: an outage filling most of the judged span is judged against what the inventory expects', () => {
    const counts = [0, 0, 0, 60, 60, 0, 0, 0, 0, 0, 0, 60, 60];
    const alone = judgeInformRate(counts, { ...base, windowSteps: 2, judgeFrom: 0 });
    expect(alone.baselineFrom).toBe('judged-span');
    expect(alone.samples.every((s) => s.healthy)).toBe(true); // the outage hid in its own median
    const j = judgeInformRate(counts, { ...base, windowSteps: 2, judgeFrom: 0, expectedPerWindow: 100 });
    expect(j.baselineFrom).toBe('inventory');
    expect(j.baseline).toBe(100);
    expect(j.samples.filter((s) => !s.healthy).map((s) => s.at / 15_000)).toEqual([5, 6, 7, 8, 9, 10]);
  });

  it('a small or idle fleet says nothing (healthy)', () => {
    const counts = Array.from({ length: 100 }, (_, i) => (i % 7 === 0 ? 3 : 0));
    const j = judgeInformRate(counts, { ...base, windowSteps: 2, judgeFrom: 80 });
    expect(j.samples.every((s) => s.healthy)).toBe(true);
  });
});
