import { describe, expect, it } from 'vitest';
import { createPrng } from './prng.js';
import {
  ABOVE,
  BELOW,
  combinedRate,
  logMixtureLR,
  lowerBound,
  shownAbove,
  shownBelow,
  upperBound,
} from './sequential.js';

describe('mixture likelihood ratio', () => {
  it('matches the closed form for a single alternative', () => {
    // n=10, x=2, q=0.1, r=2: 2·ln 2 + 8·ln(0.8/0.9)
    const v = logMixtureLR(10, 2, 0.1, { ratios: [2] });
    expect(v).toBeCloseTo(2 * Math.log(2) + 8 * Math.log(0.8 / 0.9), 12);
    expect(v).toBeCloseTo(0.444029, 5);
  });

  it('is the log of the weighted average of the single-alternative ratios', () => {
    const a = Math.exp(logMixtureLR(500, 9, 0.01, { ratios: [1.5] }));
    const b = Math.exp(logMixtureLR(500, 9, 0.01, { ratios: [3] }));
    const mix = Math.exp(logMixtureLR(500, 9, 0.01, { ratios: [1.5, 3], weights: [1, 3] }));
    expect(mix).toBeCloseTo(0.25 * a + 0.75 * b, 10);
  });

  it('has per-observation expectation exactly 1 under the reference rate (martingale)', () => {
    for (const q of [0.001, 0.0072, 0.2]) {
      for (const r of [0.2, 0.6, 1.5, 3]) {
        if (r * q >= 1) continue;
        const e = q * r + (1 - q) * ((1 - r * q) / (1 - q));
        expect(e).toBeCloseTo(1, 14);
      }
    }
  });

  it('is monotone in the reference rate in the direction the gate relies on', () => {
    let prev = Number.POSITIVE_INFINITY;
    for (const q of [0.002, 0.004, 0.006, 0.008, 0.01]) {
      const v = logMixtureLR(2000, 20, q, ABOVE);
      expect(v).toBeLessThan(prev);
      prev = v;
    }
    prev = Number.NEGATIVE_INFINITY;
    for (const q of [0.002, 0.004, 0.006, 0.008, 0.01]) {
      const v = logMixtureLR(2000, 5, q, BELOW);
      expect(v).toBeGreaterThan(prev);
      prev = v;
    }
  });

  it('rejects impossible inputs', () => {
    expect(() => logMixtureLR(10, 11, 0.1, ABOVE)).toThrow(RangeError);
    expect(() => logMixtureLR(10, 1, 0, ABOVE)).toThrow(RangeError);
  });
});

describe('confidence bounds', () => {
  it('upper and lower bounds bracket the estimate and sit on the test boundary', () => {
    const n = 25_000;
    const x = 50;
    const u = upperBound(n, x, 0.01);
    const l = lowerBound(n, x, 0.01);
    expect(l).toBeLessThan(x / n);
    expect(u).toBeGreaterThan(x / n);
    expect(shownBelow(n, x, u * 1.001, 0.01)).toBe(true);
    expect(shownBelow(n, x, u * 0.99, 0.01)).toBe(false);
    expect(shownAbove(n, x, l * 0.999, 0.01)).toBe(true);
    expect(shownAbove(n, x, l * 1.01, 0.01)).toBe(false);
  });

  it('narrow as data accumulate and widen as α shrinks', () => {
    expect(upperBound(100_000, 200, 0.01)).toBeLessThan(upperBound(25_000, 50, 0.01));
    expect(upperBound(25_000, 50, 0.001)).toBeGreaterThan(upperBound(25_000, 50, 0.01));
    expect(lowerBound(10, 0, 0.05)).toBe(0);
  });

  it('combines a background rate and an attributable rate as independent causes', () => {
    expect(combinedRate(0.005, 0.002)).toBeCloseTo(1 - 0.995 * 0.998, 15);
  });
});

describe('validity under repeated looks (Ville)', () => {
  // Simulate Bernoulli(q) streams at the null boundary and look after every observation.
  function everCrosses(q: number, n: number, alpha: number, above: boolean, seed: number): boolean {
    const rng = createPrng(`ville|${seed}`);
    let x = 0;
    for (let i = 1; i <= n; i++) {
      if (rng.next() < q) x++;
      if (i % 10 === 0 && (above ? shownAbove(i, x, q, alpha) : shownBelow(i, x, q, alpha))) return true;
    }
    return false;
  }

  it('crosses 1/α with probability at most α for the abort side', () => {
    const runs = 600;
    let crossed = 0;
    for (let s = 0; s < runs; s++) if (everCrosses(0.01, 3000, 0.1, true, s)) crossed++;
    // α = 0.1; allow binomial noise (sd ≈ 0.012), the bound itself is usually far from tight.
    expect(crossed / runs).toBeLessThan(0.13);
  });

  it('crosses 1/α with probability at most α for the promote side', () => {
    const runs = 600;
    let crossed = 0;
    for (let s = 0; s < runs; s++) if (everCrosses(0.01, 3000, 0.1, false, s + 10_000)) crossed++;
    expect(crossed / runs).toBeLessThan(0.13);
  });

  it('detects a rate three times the reference within 3,000 observations', () => {
    let detected = 0;
    for (let s = 0; s < 100; s++) {
      const rng = createPrng(`power|${s}`);
      let x = 0;
      for (let i = 1; i <= 3000; i++) {
        if (rng.next() < 0.03) x++;
        if (shownAbove(i, x, 0.01, 0.05)) {
          detected++;
          break;
        }
      }
    }
    expect(detected).toBeGreaterThan(90);
  });
});
