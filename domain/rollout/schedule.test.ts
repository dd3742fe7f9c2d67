import { describe, expect, it } from 'vitest';
import { estimateSchedule } from './schedule.js';

describe('estimateSchedule', () => {
  it('adds dispatch time at the cap and one outcome timeout per wave', () => {
    const ids = (n: number) => Array.from({ length: n }, (_, i) => `d${i}`);
    const s = estimateSchedule(
      [
        { wave: 0, stage: 0, deviceIds: ids(1000) },
        { wave: 1, stage: 0, deviceIds: ids(2500) },
      ],
      1000,
      60,
    );
    expect(s.waves.map((w) => [w.startMinute, w.dispatchMinutes, w.settledMinute])).toEqual([
      [0, 1, 61],
      [61, 3, 124],
    ]);
    expect(s.totalMinutes).toBe(124);
  });
});
