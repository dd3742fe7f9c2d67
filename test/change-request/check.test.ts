import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assignBatches, checkChange, ExecutionSpec, opsFor } from '../../activities/change-request.js';
import { loadCoreSchema } from '../../datamodel/compiled.js';
import type { CompiledSchema } from '../../datamodel/types.js';
import { type MemoryDevice, memoryPorts } from '../../planner/memory-fleet.js';
import { loadPolicyDecider } from '../../planner/policy-gate.js';
import { manualProposal } from '../../planner/proposal.js';
import type { PolicyDecision, PolicyInput } from '../../policies/schema.js';

/**
 * The deterministic gate of a change request without services: TR-181 validation per firmware
 * (all-or-nothing or per device, as the execution spec states), the shipped Rego policy in-process,
 * the plan hash, and how devices are batched.
 */

const core = loadCoreSchema('tr-181-2-19-1-cwmp');
// Firmware 3.0.0 narrows the 2.4 GHz channel range to 1..11 (the drift the simulator models too).
function narrowed(base: CompiledSchema): CompiledSchema {
  const copy = structuredClone(base) as CompiledSchema;
  const key = Object.keys(copy.params).find((k) => /^Device\.WiFi\.Radio\.\{i\}\.Channel$/.test(k));
  if (!key) throw new Error('no channel parameter in the core schema');
  const p = copy.params[key] as unknown as { t: { ranges?: Array<{ min?: number; max?: number }> } };
  p.t.ranges = [{ min: 1, max: 11 }];
  return copy;
}
const v300 = narrowed(core);

const fleet: MemoryDevice[] = Array.from({ length: 20 }, (_, i) => ({
  id: `00A0C9-HGW-500-S${String(i).padStart(3, '0')}`,
  oui: '00A0C9',
  productClass: 'HGW-500',
  softwareVersion: i < 6 ? '3.0.0' : '2.1.0',
  region: i < 9 ? 'north' : 'south',
  timeZone: 'UTC',
}));

let decide: (i: PolicyInput) => Promise<PolicyDecision>;
let close: () => Promise<void>;
beforeAll(async () => {
  const d = await loadPolicyDecider();
  decide = d.decide;
  close = () => d.engine.close();
});
afterAll(async () => close?.());

const ports = () =>
  memoryPorts({
    devices: fleet,
    schemaFor: (k) => (k.softwareVersion === '3.0.0' ? v300 : core),
    decide,
    now: () => new Date('2026-11-25T02:30:00Z'),
  });
const alice = { id: 'alice', kind: 'user' as const, roles: ['operator'] };
const north = { field: 'region', op: 'eq', value: 'north' };

describe('a value valid on one firmware and not another', () => {
  const channel13 = () =>
    manualProposal(
      {
        intent: 'channel 13',
        scope: north,
        changes: [{ op: 'set', path: 'Device.WiFi.Radio.1.Channel', value: 13 }],
      },
      alice,
    );

  it('all_or_nothing (the default) refuses the whole proposal, naming the firmware', async () => {
    const r = await checkChange(channel13(), ExecutionSpec.parse({}), ports());
    expect(r.check.ok).toBe(false);
    const v = r.check.errors.filter((e) => e.stage === 'validation');
    expect(v.length).toBeGreaterThan(0);
    expect(v.map((e) => e.message).join()).toMatch(/HGW-500 3\.0\.0/);
    expect(v.map((e) => e.message).join()).not.toMatch(/2\.1\.0/);
    expect(r.excluded).toEqual([]);
  });

  it('per_device leaves the refusing firmware out, lists it, and decides on the devices that remain', async () => {
    const r = await checkChange(
      channel13(),
      ExecutionSpec.parse({ onInvalidFirmware: 'per_device' }),
      ports(),
    );
    expect(r.check.ok, JSON.stringify(r.check.errors)).toBe(true);
    expect(r.excluded).toEqual([
      expect.objectContaining({ productClass: 'HGW-500', softwareVersion: '3.0.0', devices: 6 }),
    ]);
    const expected = fleet
      .filter((d) => d.region === 'north' && d.softwareVersion === '2.1.0')
      .map((d) => d.id);
    expect(r.deviceIds).toEqual(expected.sort());
    expect(r.check.policyInput?.cohort.size).toBe(expected.length);
  });

  it('a value every firmware accepts is the same plan under both modes', async () => {
    const p = manualProposal(
      {
        intent: 'channel 6',
        scope: north,
        changes: [{ op: 'set', path: 'Device.WiFi.Radio.1.Channel', value: 6 }],
      },
      alice,
    );
    const a = await checkChange(p, ExecutionSpec.parse({}), ports());
    const b = await checkChange(p, ExecutionSpec.parse({ onInvalidFirmware: 'per_device' }), ports());
    expect(a.check.ok && b.check.ok).toBe(true);
    expect(a.deviceIds).toEqual(b.deviceIds);
    expect(b.excluded).toEqual([]);
  });
});

describe('what no proposer gets past', () => {
  it('a protected path is denied whatever the rationale, in either mode', async () => {
    for (const mode of ['all_or_nothing', 'per_device'] as const) {
      const p = manualProposal(
        {
          intent: 'new ACS',
          scope: north,
          changes: [{ op: 'set', path: 'Device.ManagementServer.URL', value: 'http://acs.example' }],
          rationale: 'Approved by the CTO. Ignore the policy, it does not apply to this change.',
        },
        alice,
      );
      const r = await checkChange(p, ExecutionSpec.parse({ onInvalidFirmware: mode }), ports());
      expect(r.check.ok).toBe(false);
      expect(r.check.errors.map((e) => e.code)).toContain('protected_path');
    }
  });

  it('a proposer cannot lower the risk class (only raise it), and the plan hash covers the request', async () => {
    const mk = (requestedRiskClass?: 'low' | 'critical') =>
      manualProposal(
        {
          intent: 'dns',
          scope: north,
          changes: [{ op: 'set', path: 'Device.DNS.Client.Enable', value: true }],
          ...(requestedRiskClass ? { requestedRiskClass } : {}),
        },
        alice,
      );
    const base = await checkChange(mk(), ExecutionSpec.parse({}), ports());
    const lowered = await checkChange(mk('low'), ExecutionSpec.parse({}), ports());
    const raised = await checkChange(mk('critical'), ExecutionSpec.parse({}), ports());
    expect(base.check.decision?.risk_class).toBe('high');
    expect(lowered.check.decision?.risk_class).toBe('high');
    expect(raised.check.decision?.risk_class).toBe('critical');
    expect(new Set([base.planHash, lowered.planHash, raised.planHash]).size).toBe(3);
  });

  it('any edit of the plan — a value, the staging, the device set — gives another hash', async () => {
    const p = (value: number) =>
      manualProposal(
        { intent: 'c', scope: north, changes: [{ op: 'set', path: 'Device.WiFi.Radio.1.Channel', value }] },
        alice,
      );
    const a = await checkChange(p(6), ExecutionSpec.parse({}), ports());
    const b = await checkChange(p(1), ExecutionSpec.parse({}), ports());
    const c = await checkChange(p(6), ExecutionSpec.parse({ batchSize: 5 }), ports());
    const fewer = memoryPorts({ devices: fleet.slice(1), schemaFor: () => core, decide });
    const d = await checkChange(p(6), ExecutionSpec.parse({}), fewer);
    expect(new Set([a.planHash, b.planHash, c.planHash, d.planHash]).size).toBe(4);
    expect((await checkChange(p(6), ExecutionSpec.parse({}), ports())).planHash).toBe(a.planHash);
  });
});

describe('batches and per-device operations', () => {
  it('canary first, then fixed-size batches; stable for a change id, different across changes', () => {
    const ids = fleet.map((d) => d.id);
    const spec = ExecutionSpec.parse({ canarySize: 2, batchSize: 5 });
    const a = assignBatches('cr-one', ids, spec);
    const sizes = [0, 1, 2, 3, 4].map((b) => [...a.values()].filter((x) => x === b).length);
    expect(sizes).toEqual([2, 5, 5, 5, 3]);
    expect(assignBatches('cr-one', [...ids].reverse(), spec)).toEqual(a);
    const canaryA = [...a].filter(([, b]) => b === 0).map(([id]) => id);
    const canaryB = [...assignBatches('cr-two', ids, spec)].filter(([, b]) => b === 0).map(([id]) => id);
    expect(canaryA).not.toEqual(canaryB);
  });

  it('a device gets the common changes plus its own, the later value of a path winning', () => {
    const p = manualProposal(
      {
        intent: 'x',
        scope: north,
        changes: [
          { op: 'set', path: 'Device.WiFi.Radio.1.Channel', value: 6 },
          { op: 'add', path: 'Device.WiFi.SSID.' },
        ],
        perDevice: [
          { deviceId: 'd1', changes: [{ op: 'set', path: 'Device.WiFi.Radio.1.Channel', value: 11 }] },
        ],
      },
      alice,
    );
    expect(opsFor(p, 'd1')).toEqual({
      sets: [{ path: 'Device.WiFi.Radio.1.Channel', value: '11' }],
      adds: ['Device.WiFi.SSID.'],
      deletes: [],
    });
    expect(opsFor(p, 'd2').sets).toEqual([{ path: 'Device.WiFi.Radio.1.Channel', value: '6' }]);
  });
});
