import { describe, expect, it } from 'vitest';
import { createPrng } from '../../domain/rollout/prng.js';
import { binomial, spread } from './sample.js';
import { DEFAULT_TIMINGS, Fleet, SCENARIOS, runOne } from './sim.js';
import { CloudJob, FixedCanary } from './strategies.js';
import { deriveTimings } from './timings.js';

describe('benchmark sampling', () => {
  it('binomial draws have the right mean and variance in the exact range', () => {
    const rng = createPrng('binom');
    const n = 250;
    const p = 0.02;
    const draws = Array.from({ length: 20_000 }, () => binomial(rng, n, p));
    const mean = draws.reduce((a, b) => a + b, 0) / draws.length;
    const variance = draws.reduce((a, b) => a + (b - mean) ** 2, 0) / draws.length;
    expect(mean).toBeCloseTo(n * p, 1);
    expect(variance).toBeGreaterThan(n * p * (1 - p) * 0.9);
    expect(variance).toBeLessThan(n * p * (1 - p) * 1.1);
    expect(binomial(rng, 10, 0)).toBe(0);
    expect(binomial(rng, 10, 1)).toBe(10);
  });

  it('spread conserves the count and fills slots evenly', () => {
    const rng = createPrng('spread');
    const slots = new Array(21).fill(0);
    for (let i = 0; i < 2000; i++) spread(rng, 47, 21, (b, k) => (slots[b] += k));
    expect(slots.reduce((a, b) => a + b, 0)).toBe(2000 * 47);
    for (const s of slots) expect(Math.abs(s / (2000 * 47) - 1 / 21)).toBeLessThan(0.005);
  });
});

describe('fleet model', () => {
  it('agrees with the domain outcome classification on timings', () => {
    expect(deriveTimings(60)).toEqual(DEFAULT_TIMINGS);
  });

  it('concludes every dispatched device; silence is declared exactly at the timeout', () => {
    const f = new Fleet(SCENARIOS[1]!, 'conserve', DEFAULT_TIMINGS);
    f.advance(0);
    expect(f.dispatch(0, 5000)).toBe(1000); // per-minute cap
    for (let t = 1; t < 60; t++) f.advance(t);
    expect(f.silent[0]).toBe(0);
    expect(f.pending(0)).toBeGreaterThan(0);
    f.advance(60);
    expect(f.pending(0)).toBe(0);
    expect(f.concluded(0)).toBe(1000);
    expect(f.silent[0]).toBeGreaterThanOrEqual(f.trueBricks[0]!);
    expect(f.controlObserved[0]).toBe(24_000);
  });

  it('the cloud job ramps from 100/min and the canary waits for each step', () => {
    const f = new Fleet(SCENARIOS[2]!, 'ramp', DEFAULT_TIMINGS);
    const job = new CloudJob(100, 0);
    f.advance(0);
    job.step(f);
    expect(f.dispatched.reduce((a, b) => a + b, 0)).toBe(100);
    const r = runOne(SCENARIOS[2]!, 'canary', new FixedCanary(100));
    expect(r.status).toBe('completed');
    // three steps, each waiting for its outcomes: at least 3 × 30 min plus 100 min of dispatch
    expect(r.minutes).toBeGreaterThan(190);
  });
});
