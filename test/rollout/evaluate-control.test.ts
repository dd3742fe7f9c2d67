/**
 * The gate's control group through the evaluation activity, with a scripted fleet (no network): while
 * part of a stratum is not dispatched, those devices are the concurrent control; once its last wave
 * has gone out, that wave's devices over the outcome window before it stand in, so the gate can still
 * stop a bad image during the largest wave instead of watching it complete.
 */
import { describe, expect, it } from 'vitest';
import {
  createRolloutActivities,
  type DispatchedBatch,
  type RolloutDevice,
  type RolloutFleet,
} from '../../activities/rollout.js';
import type { DeviceEvent } from '../../domain/rollout/outcome.js';
import { rolloutSpecSchema } from '../../domain/rollout/spec.js';
import { planWaves } from '../../domain/rollout/waves.js';
import { deviceSetHash } from '../../fleet/resolve.js';
import { createLogger } from '../../platform/logger.js';

const MINUTE = 1000;
const T0 = 1_800_000_000_000;
const devices: RolloutDevice[] = Array.from({ length: 200 }, (_, i) => ({
  id: `D${String(i).padStart(3, '0')}`,
  model: 'HGW-500',
  hardwareVersion: 'r2',
  firmware: '2.1.0',
}));
const spec = rolloutSpecSchema.parse({
  name: 'control',
  image: '3.0.0',
  cohort: { all: true },
  waves: { kind: 'steps', steps: [{ percent: 10 }, { percent: 100 }] },
  gate: { theta: 0.01, hardCeilingBricked: 10_000, decisionDeadlineMinutes: 100_000 },
  outcomeTimeoutMinutes: 10,
  soakMinutes: 0,
  minStratumSize: 20,
  approvals: { beforeStart: false },
});
const plan = planWaves(devices, spec, 'seed');
const waveOf = new Map(plan.waves.flatMap((w) => w.deviceIds.map((id) => [id, w] as const)));
// Wave 0 goes out at T0; the last wave 30 s (spec minutes) later.
const dispatchAt = (id: string) => T0 + (waveOf.get(id)?.wave ?? 0) * 30 * MINUTE;

/**
 * Every device informs every 2 s on the old image until dispatched; after its Download it either comes
 * back on 3.0.0 within 3 s or (every third device) never talks again.
 */
function events(id: string, now: number, bricks: boolean): DeviceEvent[] {
  const out: DeviceEvent[] = [];
  const at = dispatchAt(id);
  for (let t = T0 - 60 * MINUTE; t < Math.min(at, now); t += 2_000)
    out.push({ kind: 'inform', at: t, softwareVersion: '2.1.0' });
  const bricked = bricks && Number(id.slice(1)) % 3 === 0;
  if (!bricked)
    for (let t = at + 3_000; t <= now; t += 2_000)
      out.push({ kind: 'inform', at: t, softwareVersion: '3.0.0', eventCodes: ['1 BOOT'] });
  return out;
}

function activities(now: () => number, bricks: boolean) {
  const fleet: RolloutFleet = {
    resolveCohort: async () => devices,
    async observe(ids, fromMs, toMs) {
      return {
        events: new Map(
          ids.map((id) => [id, events(id, now(), bricks).filter((e) => e.at >= fromMs && e.at <= toMs)]),
        ),
        health: {
          samples: Array.from({ length: 200 }, (_, k) => ({
            at: T0 - 90 * MINUTE + k * MINUTE,
            healthy: true,
          })),
          maxStalenessMs: 5 * MINUTE,
        },
      };
    },
  };
  return createRolloutActivities({
    logger: createLogger({ name: 't', level: 'warn' }),
    rolloutFleet: fleet,
    rolloutImages: async () => ({
      id: '3.0.0',
      url: 'http://fw.test/3.0.0',
      version: '3.0.0',
      fileSize: 1,
      previousVersion: '2.1.0',
    }),
    rolloutMinuteMs: MINUTE,
  });
}

const batches = (waves: number): DispatchedBatch[] =>
  plan.waves
    .filter((w) => w.wave < waves)
    .map((w) => ({
      wave: w.wave,
      stage: w.stage,
      from: 0,
      to: w.deviceIds.length,
      at: dispatchAt(w.deviceIds[0] ?? ''),
      sent: w.deviceIds.length,
      leaseHeld: 0,
      rejected: 0,
    }));

async function evaluate(now: number, waves: number, bricks: boolean) {
  const realNow = Date.now;
  Date.now = () => now;
  try {
    return await activities(() => now, bricks).evaluateRollout({
      rolloutId: 'r',
      spec,
      seed: 'seed',
      cohortHash: deviceSetHash(devices.map((d) => d.id).sort()),
      batches: batches(waves),
      startedAt: T0,
      haltedStrata: [],
    });
  } finally {
    Date.now = realNow;
  }
}

describe('the gate keeps a control group for a stratum’s last wave', () => {
  it('uses the undispatched devices while there are any', async () => {
    const e = await evaluate(T0 + 20 * MINUTE, 1, true);
    const s = e.gate.perStratum[0]!;
    expect(s.controlObserved).toBe(devices.length - batches(1).reduce((n, b) => n + b.sent, 0));
  });

  it('then the last wave’s devices over the window before it: a bad image is stopped in that wave', async () => {
    const e = await evaluate(T0 + 30 * MINUTE + 20 * MINUTE, 2, true);
    const s = e.gate.perStratum[0]!;
    const lastWave = plan.waves.filter((w) => w.wave === 1).reduce((n, w) => n + w.deviceIds.length, 0);
    expect(s.controlObserved).toBe(lastWave);
    expect(s.controlRate).toBe(0);
    expect(s.bricks).toBeGreaterThan(50);
    expect(e.gate.decision).toBe('abort');
  });

  it('and a good image in its last wave is not stopped by that control', async () => {
    const e = await evaluate(T0 + 30 * MINUTE + 20 * MINUTE, 2, false);
    expect(e.gate.perStratum[0]!.controlObserved).toBeGreaterThan(0);
    expect(e.gate.perStratum[0]!.bricks).toBe(0);
    expect(e.gate.decision).not.toBe('abort');
  });
});
