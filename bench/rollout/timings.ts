/**
 * The benchmark's outcome timings, derived by asking the domain's classifyOutcome about
 * representative event sequences — so "brick declared at the outcome timeout" and friends mean in
 * the benchmark exactly what they mean in the workflow.
 */
import { type DeviceEvent, type FleetHealth, classifyOutcome } from '../../domain/rollout/outcome.js';
import { DEFAULT_TIMINGS, type Timings } from './sim.js';

const MIN = 60_000;

export function deriveTimings(outcomeTimeoutMinutes = 60): Timings {
  const healthy: FleetHealth = {
    samples: Array.from({ length: 200 }, (_, i) => ({ at: i * MIN, healthy: true })),
    maxStalenessMs: 2 * MIN,
  };
  const base = {
    dispatchedAt: 0,
    targetVersion: 'new',
    previousVersion: 'old',
    outcomeTimeoutMs: outcomeTimeoutMinutes * MIN,
    soakMs: 0,
    bootLoopBoots: 3,
  };
  const at = (events: DeviceEvent[], now: number) => classifyOutcome(events, healthy, { ...base, now });
  const expect = (cond: boolean, what: string) => {
    if (!cond) throw new Error(`classifyOutcome disagrees with the benchmark's time model: ${what}`);
  };

  const silentEarly = at([], (outcomeTimeoutMinutes - 1) * MIN);
  expect(silentEarly.outcome === 'pending', 'a silent device is pending before the timeout');
  const silent = at([], (outcomeTimeoutMinutes + 1) * MIN);
  expect(
    silent.outcome === 'brick' && silent.at !== undefined,
    'a silent device is a brick after the timeout',
  );
  for (const d of [DEFAULT_TIMINGS.successFrom, DEFAULT_TIMINGS.successTo]) {
    const ok = at([{ kind: 'boot', at: d * MIN, softwareVersion: 'new' }], d * MIN);
    expect(ok.outcome === 'success' && ok.at === d * MIN, `success reported at ${d} min`);
  }
  for (const d of [DEFAULT_TIMINGS.transferFailureFrom, DEFAULT_TIMINGS.transferFailureTo]) {
    const tf = at([{ kind: 'transfer-complete', at: d * MIN, faultCode: 9010 }], d * MIN);
    expect(tf.outcome === 'transfer-failure' && tf.at === d * MIN, `transfer failure at ${d} min`);
  }
  const outage: FleetHealth = {
    samples: [
      { at: 0, healthy: true },
      { at: 30 * MIN, healthy: false },
    ],
    maxStalenessMs: 2 * MIN,
  };
  const unk = classifyOutcome([], outage, { ...base, now: (outcomeTimeoutMinutes + 1) * MIN });
  expect(unk.outcome === 'unknown', 'silence during an outage is unknown, not a brick');

  return { ...DEFAULT_TIMINGS, brickDeclaredAfter: Math.round(silent.at! / MIN) };
}
