import { describe, expect, it } from 'vitest';
import { quantile, wilson } from './wilson.js';

describe('Wilson interval', () => {
  it('matches textbook values', () => {
    // 8 of 10 → [0.490, 0.943] (Wilson, 95 %)
    const w = wilson(8, 10);
    expect(w.low).toBeCloseTo(0.4902, 3);
    expect(w.high).toBeCloseTo(0.9433, 3);
  });
  it('is not degenerate at 0 and n', () => {
    expect(wilson(0, 50).low).toBe(0);
    expect(wilson(0, 50).high).toBeCloseTo(0.0714, 3);
    expect(wilson(50, 50).high).toBe(1);
    expect(wilson(0, 0).rate).toBeNull();
  });
  it('quantiles by nearest rank', () => {
    expect(quantile([5, 1, 3, 2, 4], 0.5)).toBe(3);
    expect(quantile([1, 2, 3, 4, 100], 0.95)).toBe(100);
  });
});
