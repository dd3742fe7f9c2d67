import { describe, expect, it } from 'vitest';
import {
  type ControlCounts,
  type GateContext,
  type GateParams,
  type OutcomeCounts,
  evaluateGate,
  gateParamsFromSpec,
} from './gate.js';
import { createPrng } from './prng.js';
import { gateSpecSchema } from './spec.js';

const params: GateParams = {
  theta: 0.005,
  alpha: 0.05,
  degradedThreshold: 0.01,
  revertedThreshold: 0.01,
  hardCeilingBricked: 10_000,
  abortScope: 'failing-strata',
};
const ctx: GateContext = {
  infrastructureHealthy: true,
  minutesSinceStart: 120,
  decisionDeadlineMinutes: 1440,
};

function counts(success: number, brick: number, extra: Partial<OutcomeCounts> = {}): OutcomeCounts {
  return { success, brick, degraded: 0, reverted: 0, transferFailure: 0, unknown: 0, pending: 0, ...extra };
}
const ctl = (observed: number, silent: number): ControlCounts => ({ observed, silent });

describe('evaluateGate', () => {
  it('takes its parameters from the spec (α = 1 − confidence)', () => {
    const p = gateParamsFromSpec(
      gateSpecSchema.parse({ theta: 0.005, confidence: 0.99, hardCeilingBricked: 30 }),
    );
    expect(p.alpha).toBeCloseTo(0.01, 12);
    expect(p.abortScope).toBe('failing-strata');
    expect(p.hardCeilingBricked).toBe(30);
  });

  it('keeps sampling with little data', () => {
    const g = evaluateGate({ m1: counts(100, 0) }, { m1: ctl(25_000, 50) }, params, ctx);
    expect(g.decision).toBe('continue');
    expect(g.familyWiseFalseAbortRate).toBe(0.05);
  });

  it('aborts a stratum whose brick rate is far above θ over control, and halts only it by default', () => {
    const g = evaluateGate(
      { bad: counts(980, 22), good: counts(1000, 2) },
      { bad: ctl(50_000, 100), good: ctl(50_000, 100) },
      params,
      ctx,
    );
    expect(g.decision).toBe('abort');
    expect(g.haltStrata).toEqual(['bad']);
    expect(g.perStratum.find((r) => r.stratum === 'bad')?.decision).toBe('abort');
    expect(g.perStratum.find((r) => r.stratum === 'good')?.decision).not.toBe('abort');
    const all = evaluateGate(
      { bad: counts(980, 22), good: counts(1000, 2) },
      { bad: ctl(50_000, 100), good: ctl(50_000, 100) },
      { ...params, abortScope: 'all' },
      ctx,
    );
    expect(all.haltStrata).toEqual(['bad', 'good']);
  });

  it('does not blame background silence on the image: control silent at the same rate', () => {
    // 0.6 % silent in the treated group: 0.2 % background + 0.4 % image (< θ); control shows the 0.2 %.
    const g = evaluateGate({ m: counts(99_400, 600) }, { m: ctl(200_000, 400) }, params, ctx);
    expect(g.decision).not.toBe('abort');
  });

  it('the same treated numbers abort when the control is quiet', () => {
    // 1 % silent vs a control with hardly any silence: attributable rate well above θ.
    const g = evaluateGate({ m: counts(9_900, 100) }, { m: ctl(200_000, 10) }, params, ctx);
    expect(g.decision).toBe('abort');
  });

  it('cannot abort without a control group', () => {
    const g = evaluateGate({ m: counts(900, 100) }, {}, { ...params, pooledTest: false }, ctx);
    expect(g.perStratum[0]?.decision).not.toBe('abort');
  });

  it('promotes a clean stratum with enough devices, but not while outcomes are pending', () => {
    const g = evaluateGate({ m: counts(9_980, 20) }, { m: ctl(100_000, 200) }, params, ctx);
    expect(g.decision).toBe('promote');
    const pending = evaluateGate(
      { m: counts(9_980, 20, { pending: 200 }) },
      { m: ctl(100_000, 200) },
      params,
      ctx,
    );
    expect(pending.decision).toBe('continue');
  });

  it('pauses, never aborts, while infrastructure is unhealthy', () => {
    const g = evaluateGate({ bad: counts(980, 22) }, { bad: ctl(50_000, 100) }, params, {
      ...ctx,
      infrastructureHealthy: false,
    });
    expect(g.decision).toBe('pause');
    expect(g.haltStrata).toEqual([]);
  });

  it('pauses for a person when inconclusive at the deadline', () => {
    const g = evaluateGate({ m: counts(500, 3) }, { m: ctl(50_000, 100) }, params, {
      ...ctx,
      minutesSinceStart: 1440,
    });
    expect(g.decision).toBe('pause');
    expect(g.reasons.join()).toMatch(/deadline/);
  });

  it('aborts on the hard ceiling whatever the statistics say', () => {
    const g = evaluateGate(
      { m: counts(100, 5) },
      { m: ctl(1_000, 1) },
      { ...params, hardCeilingBricked: 5 },
      ctx,
    );
    expect(g.decision).toBe('abort');
    expect(g.reasons.join()).toMatch(/hard ceiling/);
  });

  it('has its own thresholds for degraded and reverted devices', () => {
    const deg = evaluateGate(
      { m: counts(1_900, 0, { degraded: 100 }) },
      { m: ctl(50_000, 100) },
      params,
      ctx,
    );
    expect(deg.decision).toBe('abort');
    expect(deg.perStratum[0]?.reasons.join()).toMatch(/degraded/);
    const rev = evaluateGate(
      { m: counts(1_900, 0, { reverted: 100 }) },
      { m: ctl(50_000, 100) },
      params,
      ctx,
    );
    expect(rev.perStratum[0]?.reasons.join()).toMatch(/reverted/);
  });

  it('pooled test catches a modest whole-image excess that no single stratum shows yet', () => {
    const treated: Record<string, OutcomeCounts> = {};
    const control: Record<string, ControlCounts> = {};
    for (const s of ['a', 'b', 'c', 'd']) {
      treated[s] = counts(1_976, 24); // 1.2 % silent in each
      control[s] = ctl(100_000, 200);
    }
    const g = evaluateGate(treated, control, params, ctx);
    const noPool = evaluateGate(treated, control, { ...params, pooledTest: false }, ctx);
    expect(noPool.decision).toBe('continue');
    expect(g.decision).toBe('abort');
    expect(g.haltStrata).toEqual(['a', 'b', 'c', 'd']);
  });

  it('reports attributable-rate bounds when asked', () => {
    const g = evaluateGate(
      { m: counts(9_900, 100) },
      { m: ctl(200_000, 400) },
      { ...params, reportBounds: true },
      ctx,
    );
    const r = g.perStratum[0]!;
    expect(r.attributableLower).toBeDefined();
    expect(r.attributableLower!).toBeLessThan(0.008);
    expect(r.attributableUpper!).toBeGreaterThan(0.008);
  });

  it('keeps the family-wise false-abort rate under α with looks every batch (image at θ)', () => {
    // Four strata, image exactly at θ, background 0.2 %, control = not-yet-upgraded devices per hour.
    const alpha = 0.2;
    const runs = 150;
    let aborts = 0;
    for (let run = 0; run < runs; run++) {
      const rng = createPrng(`fwer|${run}`);
      const bern = (n: number, p: number) => {
        let k = 0;
        for (let i = 0; i < n; i++) if (rng.next() < p) k++;
        return k;
      };
      const t: Record<string, OutcomeCounts> = {};
      const c: Record<string, ControlCounts> = {};
      const strata = ['a', 'b', 'c', 'd'];
      for (const s of strata) {
        t[s] = counts(0, 0);
        c[s] = ctl(0, 0);
      }
      const qT = 1 - (1 - 0.005) * (1 - 0.002);
      let aborted = false;
      for (let hour = 1; hour <= 8 && !aborted; hour++) {
        for (const s of strata) {
          const upgraded = t[s]!.success + t[s]!.brick;
          c[s]!.observed += 5_000 - upgraded;
          c[s]!.silent += bern(5_000 - upgraded, 0.002);
          const batch = 300;
          const b = bern(batch, qT);
          t[s]!.brick += b;
          t[s]!.success += batch - b;
        }
        aborted = evaluateGate(t, c, { ...params, alpha }, ctx).decision === 'abort';
      }
      if (aborted) aborts++;
    }
    expect(aborts / runs).toBeLessThanOrEqual(alpha);
  });
});
