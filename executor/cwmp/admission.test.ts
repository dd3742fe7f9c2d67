import { describe, expect, it } from 'vitest';
import { AdmissionSchedule } from './admission.js';

describe('admission schedule (Retry-After for shed CPEs)', () => {
  const t0 = 1_800_000_000_000;

  it('books shed CPEs one slot apart at the completion rate, within its bounds', () => {
    const s = new AdmissionSchedule({ minSeconds: 1, maxSeconds: 60, initialRate: 1000 });
    s.tick(100);
    // 100 slots a second from the minimum on (rounded up to whole seconds)…
    const waits = Array.from({ length: 600 }, () => s.retryAfter(t0));
    expect(waits[0]).toBe(1);
    expect(waits[98]).toBe(2);
    expect(waits[101]).toBe(3);
    expect(waits[599]).toBe(7);
    // …and never later than the maximum.
    for (let i = 0; i < 20_000; i++) s.retryAfter(t0);
    expect(s.retryAfter(t0)).toBe(60);
  });

  it('keeps booking by the recent best rate through a stall, so CPEs are not spread out while the ACS idles', () => {
    const s = new AdmissionSchedule({ minSeconds: 1, maxSeconds: 900, initialRate: 1000 });
    for (let i = 0; i < 10; i++) s.tick(300);
    // A few seconds in which (almost) nothing completes: the machine stalled, or few CPEs came.
    for (let i = 0; i < 5; i++) s.tick(2);
    expect(s.rate).toBeGreaterThan(250);
    // 2 000 CPEs shed now come back within about 10 s, not over 2000 / 2 ≈ 17 minutes.
    let last = 0;
    for (let i = 0; i < 2000; i++) last = s.retryAfter(t0);
    expect(last).toBeLessThanOrEqual(10);
    // A rate that stays low for long is believed in the end.
    for (let i = 0; i < 200; i++) s.tick(2);
    expect(s.rate).toBeLessThan(5);
  });

  it('uses the initial rate until something completes', () => {
    const s = new AdmissionSchedule({ minSeconds: 7, maxSeconds: 900, initialRate: 3 });
    expect(s.rate).toBe(3);
    expect(s.retryAfter(t0)).toBe(7);
  });
});
