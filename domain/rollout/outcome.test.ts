import { describe, expect, it } from 'vitest';
import {
  type DeviceEvent,
  type FleetHealth,
  type OutcomeParams,
  classifyOutcome,
  healthyThroughout,
} from './outcome.js';

const MIN = 60_000;
const healthy: FleetHealth = {
  samples: Array.from({ length: 100 }, (_, i) => ({ at: i * MIN, healthy: true })),
  maxStalenessMs: 2 * MIN,
};
const p = (now: number): OutcomeParams => ({
  dispatchedAt: 0,
  now: now * MIN,
  targetVersion: '2.0',
  previousVersion: '1.0',
  outcomeTimeoutMs: 60 * MIN,
  soakMs: 15 * MIN,
  bootLoopBoots: 3,
});

describe('classifyOutcome', () => {
  it('success needs the target version and the soak', () => {
    const ev: DeviceEvent[] = [{ kind: 'boot', at: 12 * MIN, softwareVersion: '2.0' }];
    expect(classifyOutcome(ev, healthy, p(20)).outcome).toBe('pending');
    const done = classifyOutcome(ev, healthy, p(30));
    expect(done.outcome).toBe('success');
    expect(done.at).toBe(27 * MIN);
  });

  it('several BOOT events during the soak are a boot loop (degraded)', () => {
    const ev: DeviceEvent[] = [10, 14, 18].map((m) => ({
      kind: 'boot' as const,
      at: m * MIN,
      softwareVersion: '2.0',
    }));
    expect(classifyOutcome(ev, healthy, p(40)).outcome).toBe('degraded');
    expect(classifyOutcome(ev.slice(0, 2), healthy, p(40)).outcome).toBe('success');
  });

  it('coming back on the old bank is reverted', () => {
    const ev: DeviceEvent[] = [
      { kind: 'transfer-complete', at: 8 * MIN, faultCode: 0 },
      { kind: 'boot', at: 11 * MIN, softwareVersion: '1.0' },
    ];
    expect(classifyOutcome(ev, healthy, p(20)).outcome).toBe('reverted');
    const after: DeviceEvent[] = [
      { kind: 'boot', at: 10 * MIN, softwareVersion: '2.0' },
      { kind: 'inform', at: 13 * MIN, softwareVersion: '1.0' },
    ];
    expect(classifyOutcome(after, healthy, p(40)).outcome).toBe('reverted');
  });

  it('a transfer fault with the device still on the old image is a transfer failure', () => {
    const ev: DeviceEvent[] = [
      { kind: 'transfer-complete', at: 7 * MIN, faultCode: 9010 },
      { kind: 'inform', at: 8 * MIN, softwareVersion: '1.0' },
    ];
    const c = classifyOutcome(ev, healthy, p(10));
    expect(c.outcome).toBe('transfer-failure');
    expect(c.reason).toMatch(/9010/);
  });

  it('silence is pending until the outcome timeout, then a brick', () => {
    expect(classifyOutcome([], healthy, p(59)).outcome).toBe('pending');
    const b = classifyOutcome([], healthy, p(60));
    expect(b.outcome).toBe('brick');
    expect(b.at).toBe(60 * MIN);
  });

  it('silence while infrastructure was unhealthy or the health row went stale is unknown', () => {
    const outage: FleetHealth = {
      samples: healthy.samples.map((s) => ({ ...s, healthy: !(s.at >= 20 * MIN && s.at < 30 * MIN) })),
      maxStalenessMs: 2 * MIN,
    };
    expect(classifyOutcome([], outage, p(61)).outcome).toBe('unknown');
    const stale: FleetHealth = {
      samples: healthy.samples.filter((s) => s.at < 20 * MIN || s.at > 40 * MIN),
      maxStalenessMs: 2 * MIN,
    };
    expect(classifyOutcome([], stale, p(61)).outcome).toBe('unknown');
  });

  it('the old-image inform of the session that delivered the Download does not hide a brick', () => {
    // Connection request → Inform on 1.0 → Download → reboot → never heard of again.
    const ev: DeviceEvent[] = [
      { kind: 'inform', at: 0.5 * MIN, softwareVersion: '1.0', eventCodes: ['6 CONNECTION REQUEST'] },
    ];
    const b = classifyOutcome(ev, healthy, p(60));
    expect(b.outcome).toBe('brick');
    // A device still informing on the old image late in the window never applied the image: not a brick.
    const alive: DeviceEvent[] = [...ev, { kind: 'inform', at: 45 * MIN, softwareVersion: '1.0' }];
    const a = classifyOutcome(alive, healthy, p(60));
    expect(a.outcome).toBe('unknown');
    expect(a.reason).toMatch(/previous image/);
    // A third version is odd, whatever its timing.
    const odd: DeviceEvent[] = [{ kind: 'inform', at: 1 * MIN, softwareVersion: '0.9' }];
    expect(classifyOutcome(odd, healthy, p(60)).reason).toMatch(/unexpected version 0.9/);
  });

  it('counts events from when its batch started going out (a long, paced batch)', () => {
    const ev: DeviceEvent[] = [{ kind: 'boot', at: -3 * MIN, softwareVersion: '2.0' }];
    expect(classifyOutcome(ev, healthy, p(61)).outcome).toBe('brick');
    expect(classifyOutcome(ev, healthy, { ...p(61), sentFrom: -5 * MIN }).outcome).toBe('success');
  });

  it('ignores events from before the dispatch', () => {
    const ev: DeviceEvent[] = [{ kind: 'boot', at: -5 * MIN, softwareVersion: '2.0' }];
    expect(classifyOutcome(ev, healthy, p(61)).outcome).toBe('brick');
  });
});

describe('healthyThroughout', () => {
  it('needs fresh healthy rows covering the whole interval', () => {
    expect(healthyThroughout(healthy, 5 * MIN, 50 * MIN)).toBe(true);
    expect(healthyThroughout(healthy, 5 * MIN, 150 * MIN)).toBe(false); // rows stop at 99 min
    const gap: FleetHealth = {
      samples: [
        { at: 0, healthy: true },
        { at: 10 * MIN, healthy: true },
      ],
      maxStalenessMs: 2 * MIN,
    };
    expect(healthyThroughout(gap, 0, 10 * MIN)).toBe(false);
    expect(healthyThroughout(gap, 0, 1 * MIN)).toBe(true);
  });
});
