import { describe, expect, it } from 'vitest';
import { loadCoreSchema } from '../../datamodel/compiled.js';
import { schemaFromParameterNames } from '../../datamodel/discovered.js';
import { SchemaRegistry } from '../../datamodel/registry.js';
import { detectFleetConflicts } from '../../domain/profiles/fleet.js';
import { effectiveConfig, type FirmwareCheck, type MatchedProfile } from '../../domain/profiles/ownership.js';

// Two firmware versions of one model: 1.0 runs the standard TR-181 2.19.1 model; 2.0 was discovered
// (GetParameterNames) and carries a vendor LED extension that 1.0 does not have.
const key = (softwareVersion: string) => ({ oui: '00D09E', productClass: 'HGW-500', softwareVersion });
const LED = 'Device.X_VENDOR_Led.Brightness';
const PII = 'Device.ManagementServer.PeriodicInformInterval';

async function registry(): Promise<SchemaRegistry> {
  const core = loadCoreSchema('tr-181-2-19-1-cwmp');
  const r = new SchemaRegistry();
  await r.register(key('1.0'), core);
  const fw2 = schemaFromParameterNames(
    [
      { name: 'Device.', writable: false },
      { name: 'Device.ManagementServer.', writable: false },
      { name: PII, writable: true },
      { name: 'Device.X_VENDOR_Led.', writable: false },
      { name: LED, writable: true },
    ],
    { reference: core },
  );
  await r.register(key('2.0'), fw2, 'gpn');
  return r;
}

const checkFor =
  (r: SchemaRegistry, version: string): FirmwareCheck =>
  (path, value) => {
    const res = r.validateForDevice(key(version), [{ path, value }]).results[0];
    return res?.ok ? { ok: true } : { ok: false, code: res?.code ?? 'unknown', message: res?.message ?? '' };
  };

const led: MatchedProfile = {
  profile: {
    id: 'led-dim',
    priority: 0,
    parameters: [
      { path: LED, value: '40' },
      { path: PII, value: 900 },
    ],
    updatedAt: new Date('2026-01-01T00:00:00Z'),
  },
  matchedDevices: 2,
};
const now = new Date('2026-11-25T00:00:00Z');

describe('a profile value invalid on one firmware (validated per firmware through the datamodel registry)', () => {
  it('is reported invalid and not claimed on the firmware that lacks it, and applied on the one that has it', async () => {
    const r = await registry();
    const fw1 = effectiveConfig([led], { now, check: checkFor(r, '1.0') });
    expect(fw1.invalid).toEqual([
      expect.objectContaining({ profileId: 'led-dim', path: LED, code: 'unknown_path' }),
    ]);
    expect(fw1.fields.map((f) => f.path)).toEqual([PII]);
    const fw2 = effectiveConfig([led], { now, check: checkFor(r, '2.0') });
    expect(fw2.invalid).toEqual([]);
    expect(fw2.fields.map((f) => [f.path, f.value])).toEqual([
      [PII, 900],
      [LED, '40'],
    ]);
  });

  it('fleet-wide: a conflict exists only on devices whose firmware accepts both values', async () => {
    const r = await registry();
    const other = { ...led.profile, id: 'led-bright', parameters: [{ path: LED, value: '90' }] };
    const firmwares = ['1.0', '2.0'];
    const invalidOn = (ps: typeof led.profile.parameters) =>
      ps.map((p) => new Set(firmwares.flatMap((v, i) => (checkFor(r, v)(p.path, p.value).ok ? [] : [i]))));
    const res = detectFleetConflicts({
      deviceCount: 6,
      firmwareOf: Uint16Array.from([0, 1, 0, 1, 0, 1]),
      profiles: [
        {
          profile: led.profile,
          members: Uint32Array.from([0, 1, 2, 3, 4, 5]),
          invalidOn: invalidOn(led.profile.parameters),
        },
        { profile: other, members: Uint32Array.from([0, 1, 2, 3]), invalidOn: invalidOn(other.parameters) },
      ],
      now,
      sampleSize: 10,
    });
    expect(res.groups.map((g) => [g.path, g.devices, g.sample])).toEqual([[LED, 2, [1, 3]]]);
    // led-bright matches fewer devices: the more specific selector wins
    expect(res.groups[0]?.resolution).toMatchObject({
      status: 'resolved',
      value: '90',
      owners: ['led-bright'],
    });
  });
});
