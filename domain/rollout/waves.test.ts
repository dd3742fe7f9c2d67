import { describe, expect, it } from 'vitest';
import { type RolloutSpec, rolloutSpecSchema } from './spec.js';
import { minimumStratumSize, poolStrata } from './strata.js';
import { type CohortDevice, cumulativeFractions, planWaves } from './waves.js';

function cohort(): CohortDevice[] {
  const out: CohortDevice[] = [];
  const models = [
    ['HG8245', 'A', '1.0', 4000],
    ['F680', 'B', '2.1', 3000],
    ['tiny', 'X', '0.9', 50],
    ['tiny', 'X', '0.8', 40],
  ] as const;
  let i = 0;
  for (const [model, hw, fw, n] of models) {
    for (let k = 0; k < n; k++, i++) {
      out.push({
        id: `dev${i}`,
        model,
        hardwareVersion: hw,
        firmware: fw,
        topology: { olt: `olt${i % 7}`, ponPort: `pon${i % 40}` },
      });
    }
  }
  return out;
}

function spec(over: Partial<RolloutSpec> = {}): RolloutSpec {
  return {
    ...rolloutSpecSchema.parse({
      name: 't',
      image: 'img-2.0',
      cohort: {},
      waves: { kind: 'steps', steps: [{ percent: 1 }, { percent: 5 }, { percent: 20 }], firstWaveStages: 2 },
      gate: { theta: 0.005, hardCeilingBricked: 50 },
      minStratumSize: 500,
    }),
    ...over,
  };
}

describe('planWaves', () => {
  it('is deterministic for a seed and differs across seeds', () => {
    const a = planWaves(cohort(), spec(), 'seed-1');
    const b = planWaves(cohort(), spec(), 'seed-1');
    const c = planWaves(cohort(), spec(), 'seed-2');
    expect(a.waves.map((w) => w.deviceIds)).toEqual(b.waves.map((w) => w.deviceIds));
    expect(a.waves[0]!.deviceIds).not.toEqual(c.waves[0]!.deviceIds);
  });

  it('plans every device exactly once, stratified in proportion, with the first wave staged', () => {
    const plan = planWaves(cohort(), spec(), 7);
    const all = plan.waves.flatMap((w) => w.deviceIds);
    expect(all.length).toBe(7090);
    expect(new Set(all).size).toBe(7090);
    expect(plan.waves.map((w) => [w.wave, w.stage])).toEqual([
      [0, 0],
      [0, 1],
      [1, 0],
      [2, 0],
    ]);
    const w0 = plan.waves[0]!;
    expect(w0.perStratum['HG8245|A|1.0']).toBe(40);
    expect(w0.perStratum['F680|B|2.1']).toBe(30);
    const cum = plan.waves.slice(0, 3).reduce((n, w) => n + (w.perStratum['HG8245|A|1.0'] ?? 0), 0);
    expect(cum).toBe(800);
  });

  it('pools strata too small to ever be shown below θ', () => {
    const plan = planWaves(cohort(), spec(), 1);
    const ids = plan.strata.map((s) => s.id).sort();
    expect(ids).toEqual(['F680|B|2.1', 'HG8245|A|1.0', 'pooled:other']);
    expect(plan.strata.find((s) => s.id === 'pooled:other')?.members.sort()).toEqual([
      'tiny|X|0.8',
      'tiny|X|0.9',
    ]);
  });

  it('spreads waves over topology and honours the per-element cap', () => {
    const plan = planWaves(
      cohort(),
      spec({ rateCaps: { perMinute: 1000, perTopologyElement: { level: 'ponPort', max: 3 } } }),
      3,
    );
    const byId = new Map(cohort().map((d) => [d.id, d]));
    for (const w of plan.waves) {
      const per = new Map<string, number>();
      for (const id of w.deviceIds) {
        const k = byId.get(id)!.topology!.ponPort!;
        per.set(k, (per.get(k) ?? 0) + 1);
      }
      expect(Math.max(...per.values())).toBeLessThanOrEqual(3);
    }
    expect(new Set(plan.waves.flatMap((w) => w.deviceIds)).size).toBe(7090);
    const first = plan.waves[0]!.deviceIds.map((id) => byId.get(id)!.topology!.ponPort);
    expect(new Set(first).size).toBeGreaterThan(30);
  });

  it('splits waves by the per-wave cap', () => {
    const plan = planWaves(cohort(), spec({ rateCaps: { perMinute: 1000, perWave: 1000 } }), 3);
    expect(Math.max(...plan.waves.map((w) => w.deviceIds.length))).toBeLessThanOrEqual(1000);
  });
});

describe('wave fractions and pooling rule', () => {
  it('expands an exponential ramp and rejects non-increasing steps', () => {
    expect(
      cumulativeFractions({ kind: 'exponential', basePercent: 1, factor: 4, firstWaveStages: 1 }, 100),
    ).toEqual([0.01, 0.04, 0.16, 0.64, 1]);
    expect(() =>
      cumulativeFractions(
        { kind: 'steps', steps: [{ percent: 5 }, { percent: 5 }], firstWaveStages: 1 },
        100,
      ),
    ).toThrow(/increasing/);
    expect(
      cumulativeFractions(
        { kind: 'steps', steps: [{ count: 10 }, { percent: 50 }], firstWaveStages: 1 },
        100,
      ),
    ).toEqual([0.1, 0.5, 1]);
  });

  it('minimum stratum size grows as θ shrinks', () => {
    const a = minimumStratumSize(0.01, 0.05);
    const b = minimumStratumSize(0.005, 0.05);
    expect(b).toBeGreaterThan(a);
    expect(Number.isFinite(b)).toBe(true);
  });

  it('merges small strata by hardware version first, then model, then into one', () => {
    const sizes = new Map([
      ['m1|h1|f1', 300],
      ['m1|h1|f2', 300],
      ['m1|h2|f1', 200],
      ['m2|h1|f1', 100],
      ['big|h|f', 5000],
    ]);
    const { strata, stratumOfKey } = poolStrata(sizes, 500);
    expect(stratumOfKey.get('m1|h1|f1')).toBe('pooled:m1|h1|*');
    expect(stratumOfKey.get('m1|h1|f2')).toBe('pooled:m1|h1|*');
    expect(stratumOfKey.get('m1|h2|f1')).toBe('pooled:other');
    expect(stratumOfKey.get('m2|h1|f1')).toBe('pooled:other');
    expect(stratumOfKey.get('big|h|f')).toBe('big|h|f');
    expect(strata.reduce((n, s) => n + s.size, 0)).toBe(5900);
  });
});
