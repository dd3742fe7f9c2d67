/**
 * Wave planner: a deterministic stratified sample. Every stratum advances through the same
 * cumulative shares, so each wave holds every stratum in proportion; inside a stratum devices are
 * spread across topology elements (round robin over elements, both in seeded-hash order) so a wave
 * never lands on one OLT or PON port. Same cohort, spec and seed → same plan, on any machine.
 */
import { hash52 } from './prng.js';
import type { RolloutSpec, WavePlan } from './spec.js';
import { type Stratum, type StratumDevice, minimumStratumSize, poolStrata, stratumKey } from './strata.js';

export interface CohortDevice extends StratumDevice {
  topology?: { region?: string; bng?: string; olt?: string; ponPort?: string };
}

export interface PlannedWave {
  /** 0-based wave number (stages of the first wave share wave 0). */
  wave: number;
  /** 0-based stage inside the wave. */
  stage: number;
  deviceIds: string[];
  perStratum: Record<string, number>;
}

export interface WavePlanResult {
  strata: Stratum[];
  stratumOf: Map<string, string>;
  minStratumSize: number;
  waves: PlannedWave[];
}

type TopologyLevel = 'region' | 'bng' | 'olt' | 'ponPort';

/** Cumulative fraction of each stratum after each step of the plan (last one is 1). */
export function cumulativeFractions(plan: WavePlan, cohortSize: number): number[] {
  const out: number[] = [];
  if (plan.kind === 'exponential') {
    for (let p = plan.basePercent; p < 100; p *= plan.factor) out.push(p / 100);
  } else {
    for (const s of plan.steps)
      out.push('percent' in s ? s.percent / 100 : s.count / Math.max(cohortSize, 1));
  }
  const clean: number[] = [];
  for (const f of out) {
    const c = Math.min(f, 1);
    if (clean.length > 0 && c <= clean[clean.length - 1]!) {
      throw new RangeError('wave steps must be strictly increasing');
    }
    clean.push(c);
  }
  if (clean.length === 0 || clean[clean.length - 1]! < 1) clean.push(1);
  return clean;
}

function topologyKey(d: CohortDevice, level: TopologyLevel): string {
  const t = d.topology ?? {};
  return t[level] ?? t.olt ?? t.region ?? '';
}

/** Stratum members in sample order: topology elements interleaved, each in seeded order. */
function sampleOrder(devs: CohortDevice[], seed: string, level: TopologyLevel): CohortDevice[] {
  const byElem = new Map<string, Array<{ d: CohortDevice; h: number }>>();
  for (const d of devs) {
    const k = topologyKey(d, level);
    const arr = byElem.get(k) ?? [];
    arr.push({ d, h: hash52(`${seed}|${d.id}`) });
    byElem.set(k, arr);
  }
  const elems = [...byElem.entries()]
    .map(([k, arr]) => ({
      h: hash52(`${seed}|topo|${k}`),
      k,
      arr: arr.sort((a, b) => a.h - b.h || (a.d.id < b.d.id ? -1 : 1)),
    }))
    .sort((a, b) => a.h - b.h || (a.k < b.k ? -1 : 1));
  const out: CohortDevice[] = [];
  for (let i = 0; out.length < devs.length; i++) {
    for (const e of elems) if (i < e.arr.length) out.push(e.arr[i]!.d);
  }
  return out;
}

export function planWaves(
  cohort: readonly CohortDevice[],
  spec: RolloutSpec,
  seed: string | number,
): WavePlanResult {
  const seedStr = String(seed);
  const promoteAlpha = 1 - spec.gate.confidence;
  const minSize = spec.minStratumSize ?? minimumStratumSize(spec.gate.theta, promoteAlpha);
  const sizes = new Map<string, number>();
  for (const d of cohort) sizes.set(stratumKey(d), (sizes.get(stratumKey(d)) ?? 0) + 1);
  const { strata, stratumOfKey } = poolStrata(sizes, minSize);

  const stratumOf = new Map<string, string>();
  const members = new Map<string, CohortDevice[]>();
  for (const d of cohort) {
    const s = stratumOfKey.get(stratumKey(d))!;
    stratumOf.set(d.id, s);
    const arr = members.get(s) ?? [];
    arr.push(d);
    members.set(s, arr);
  }
  const level: TopologyLevel = spec.rateCaps.perTopologyElement?.level ?? 'ponPort';
  const ordered = new Map<string, CohortDevice[]>();
  for (const s of strata) ordered.set(s.id, sampleOrder(members.get(s.id) ?? [], seedStr, level));

  const fractions = cumulativeFractions(spec.waves, cohort.length);
  const stages = Math.min(spec.waves.firstWaveStages, fractions.length);
  const cursor = new Map<string, number>(strata.map((s) => [s.id, 0]));
  const topoCap = spec.rateCaps.perTopologyElement?.max;
  const waves: PlannedWave[] = [];
  // Deferred by the per-element cap; they go first in the next step.
  let carry: CohortDevice[] = [];

  const stagesOf = new Map<number, number>();
  const emit = (wave: number, devs: CohortDevice[]) => {
    const perWave = spec.rateCaps.perWave ?? Number.POSITIVE_INFINITY;
    for (let i = 0; i < devs.length; i += perWave) {
      const chunk = devs.slice(i, i + perWave);
      const perStratum: Record<string, number> = {};
      for (const d of chunk) {
        const s = stratumOf.get(d.id)!;
        perStratum[s] = (perStratum[s] ?? 0) + 1;
      }
      const stage = stagesOf.get(wave) ?? 0;
      stagesOf.set(wave, stage + 1);
      waves.push({ wave, stage, deviceIds: chunk.map((d) => d.id), perStratum });
    }
  };

  let wave = 0;
  for (let step = 0; step < fractions.length || carry.length > 0; step++) {
    const f = fractions[Math.min(step, fractions.length - 1)]!;
    let take: CohortDevice[] = carry;
    carry = [];
    for (const s of strata) {
      const list = ordered.get(s.id)!;
      const target = Math.max(1, Math.min(list.length, Math.ceil(f * list.length)));
      const from = cursor.get(s.id)!;
      for (let i = from; i < target; i++) take.push(list[i]!);
      cursor.set(s.id, Math.max(from, target));
    }
    if (topoCap !== undefined) {
      const used = new Map<string, number>();
      const kept: CohortDevice[] = [];
      for (const d of take) {
        const k = topologyKey(d, level);
        const u = used.get(k) ?? 0;
        if (u < topoCap) {
          used.set(k, u + 1);
          kept.push(d);
        } else carry.push(d);
      }
      take = kept;
    }
    const isStage = step < stages;
    if (take.length > 0) emit(isStage ? 0 : wave, take);
    if (isStage) {
      if (step === stages - 1) wave = 1;
    } else if (take.length > 0) wave++;
  }
  return { strata, stratumOf, minStratumSize: minSize, waves };
}
