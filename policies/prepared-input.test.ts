import { beforeAll, describe, expect, it } from 'vitest';
import { canonicalJson } from './canonical-json.js';
import { loadPolicyEngine, type PolicyEngine } from './engine.js';
import { cases, testPolicyData } from './fixtures/cases.js';
import {
  deriveChangeFacts,
  higherShare,
  PlanMemo,
  prepareInput,
  sameCohort,
  sameJson,
  topologyPeak,
} from './prepared-input.js';
import { type PolicyData, PolicyInput } from './schema.js';

const valid = Object.entries(cases).filter(([, c]) => PolicyInput.safeParse(c.input).success);
const base = cases.high_risk_within_caps!.input as PolicyInput;

function withCohort(cohort: unknown): unknown {
  return { ...base, cohort };
}

describe('prepareInput', () => {
  it('serialises every valid fixture exactly as JSON.stringify of zod output', () => {
    expect(valid.length).toBeGreaterThan(40);
    for (const [name, c] of valid) {
      const p = prepareInput(c.input);
      expect(p.ok, name).toBe(true);
      if (p.ok) expect(p.input.json, name).toBe(JSON.stringify(PolicyInput.parse(c.input)));
    }
  });

  it('accepts and rejects what zod does, naming the same field', () => {
    const cohort = base.cohort;
    const variants: unknown[] = [
      withCohort({ ...cohort, extra: 1 }),
      withCohort({ ...cohort, size: 1.5 }),
      withCohort({ ...cohort, size: cohort.fleet_size + 1 }),
      withCohort({ ...cohort, fleet_size: 0 }),
      withCohort({ ...cohort, strata: [{ key: 'a', count: -1 }] }),
      withCohort({ ...cohort, strata: [{ key: 1, count: 1 }] }),
      withCohort({ ...cohort, strata: [{ key: 'a', count: 1, x: 1 }] }),
      withCohort({ ...cohort, topology: [{ kind: 'olt', id: 'o', count: 5, total: 4 }] }),
      withCohort({ ...cohort, topology: [{ kind: 'olt', id: 'o', count: 1, total: Number.NaN }] }),
      withCohort({ ...cohort, topology: [{ kind: 'olt', id: 'o', count: 1 }] }),
      withCohort({ ...cohort, topology: 'none' }),
      withCohort({ ...cohort, strata: [{ key: 'quote " and \u0001 and \ud800', count: 2 }] }),
      withCohort(Object.assign(Object.create({ inherited: 1 }), cohort)),
      { ...base, action: 'delete' },
      { ...base, unknown: true },
      { ...base, cohort: undefined },
      null,
      [],
    ];
    for (const v of variants) {
      const z = PolicyInput.safeParse(v);
      const p = prepareInput(v);
      expect(p.ok, JSON.stringify(v)?.slice(0, 200)).toBe(z.success);
      if (z.success && p.ok) expect(p.input.json).toBe(JSON.stringify(z.data));
      if (!z.success && !p.ok) expect(p.issue.path).toBe(z.error.issues[0]?.path.join('.') || '(root)');
    }
  });

  it('takes the topology element with the highest exact share as the peak', () => {
    const topology = [
      { kind: 'region', id: 'r', count: 2000, total: 100_000 },
      { kind: 'pon_port', id: 'p1', count: 40, total: 128 },
      { kind: 'pon_port', id: 'p2', count: 41, total: 128 },
      { kind: 'olt', id: 'o', count: 0, total: 0 },
    ];
    expect(topologyPeak(topology)).toEqual({ count: 41, total: 128 });
    const p = prepareInput(withCohort({ ...base.cohort, topology }));
    expect(p.ok && p.input.plan.topologyPeakJson).toBe('{"count":41,"total":128}');
    expect(topologyPeak([{ count: 0, total: 10 }])).toEqual({ count: 0, total: 0 });
    // Shares a float division cannot tell apart: 2^53-scale products are compared as BigInt.
    const big = 2 ** 40;
    expect(higherShare(big + 1, big, { count: big, total: big - 1 })).toBe(false);
    expect(higherShare(big, big - 1, { count: big + 1, total: big })).toBe(true);
  });
});

describe('derived change facts', () => {
  it('groups paths by object and lists characters, lowered keys, their prefixes and parameter names', () => {
    const facts = deriveChangeFacts({
      parameters: [
        { path: 'Device.WiFi.SSID.1.SSID' },
        { path: 'Device.WiFi.SSID.2.SSID' },
        { path: 'InternetGatewayDevice.X' },
      ],
      add_objects: ['Device.NAT.PortMapping.'],
      delete_objects: ['Device'],
    });
    expect(facts.paths_by_object).toEqual({
      WiFi: ['Device.WiFi.SSID.1.SSID', 'Device.WiFi.SSID.2.SSID'],
      '': ['InternetGatewayDevice.X', 'Device'],
      NAT: ['Device.NAT.PortMapping.'],
    });
    const text =
      'Device.WiFi.SSID.1.SSID Device.WiFi.SSID.2.SSID InternetGatewayDevice.X Device.NAT.PortMapping.';
    expect(Object.keys(facts.chars as object).sort()).toEqual([...new Set(text.replaceAll(' ', ''))].sort());
    expect(facts.chars).not.toHaveProperty('*');
    expect(facts.keys).toEqual({
      'device.wifi.ssid.1.ssid.': true,
      'device.wifi.ssid.2.ssid.': true,
      'internetgatewaydevice.x.': true,
      'device.nat.portmapping.': true,
      'device.': true,
    });
    expect(Object.keys(facts.key_prefixes as object).sort()).toEqual([
      'device.',
      'device.nat.',
      'device.nat.portmapping.',
      'device.wifi.',
      'device.wifi.ssid.',
      'device.wifi.ssid.1.',
      'device.wifi.ssid.1.ssid.',
      'device.wifi.ssid.2.',
      'device.wifi.ssid.2.ssid.',
      'internetgatewaydevice.',
      'internetgatewaydevice.x.',
    ]);
    expect(facts.parameter_names).toEqual({ ssid: true, x: true });
  });

  it('leaves out the lowered facts when a path is not printable ASCII (OPA lowers it itself)', () => {
    const facts = deriveChangeFacts({ parameters: [{ path: 'DEV\u0130CE.ManagementServer.URL' }] });
    expect(Object.keys(facts).sort()).toEqual(['chars', 'paths_by_object']);
  });

  it('decide() refuses an input that brings its own derived facts', async () => {
    const engine = await loadPolicyEngine({ data: testPolicyData, opaUrl: '' });
    const forged = { ...base, change: { ...base.change, derived: { key_prefixes: {}, keys: {} } } };
    const r = await engine.decide(forged);
    expect(r.decision.deny[0]).toMatchObject({ code: 'input_invalid', path: 'change' });
    const peak = { ...base, cohort: { ...base.cohort, strata_in_cohort: 0 } };
    expect((await engine.decide(peak)).decision.deny[0]).toMatchObject({ code: 'input_invalid' });
  });
});

describe('the plan memo', () => {
  it('gives every valid fixture the same text with and without it, twice in a row', () => {
    const memo = new PlanMemo();
    for (const [name, c] of valid) {
      const plain = prepareInput(c.input);
      for (let i = 0; i < 2; i++) {
        const p = prepareInput(c.input, memo);
        expect(p.ok && plain.ok && p.input.json === plain.input.json, name).toBe(true);
        if (p.ok && plain.ok) {
          expect(p.input.decisionJson, name).toBe(plain.input.decisionJson);
          expect(p.input.plan, name).toEqual(plain.input.plan);
        }
      }
    }
  });

  it('validates a plan changed in place after it was memoised, and rejects it when invalid', () => {
    const memo = new PlanMemo();
    const input = structuredClone(base);
    const first = prepareInput(input, memo);
    expect(first.ok).toBe(true);
    const edits: Array<[(i: PolicyInput) => void, boolean]> = [
      [
        (i) => {
          i.cohort.topology[0]!.count = 1;
        },
        true,
      ],
      [(i) => void i.cohort.strata.push({ key: 'extra', count: 3 }), true],
      [
        (i) => {
          (i.change.parameters![0]! as { value: unknown }).value = 'other';
        },
        true,
      ],
      [
        (i) => {
          i.devices[0]!.count += 1;
        },
        true,
      ],
      [
        (i) => {
          i.cohort.topology[0]!.count = i.cohort.topology[0]!.total + 1;
        },
        false,
      ],
      [
        (i) => {
          (i.cohort.strata[0]! as Record<string, unknown>).extra = 1;
        },
        false,
      ],
      [
        (i) => {
          (i.change.parameters![0]! as { value: unknown }).value = null;
        },
        false,
      ],
      [
        (i) => {
          (i.devices[0]! as { count: unknown }).count = -1;
        },
        false,
      ],
    ];
    for (const [edit, ok] of edits) {
      const edited = structuredClone(input);
      prepareInput(edited, memo);
      edit(edited);
      const z = PolicyInput.safeParse(edited);
      const p = prepareInput(edited, memo);
      expect(z.success).toBe(ok);
      expect(p.ok, edit.toString()).toBe(ok);
      if (z.success && p.ok) expect(p.input.json).toBe(JSON.stringify(z.data));
      if (!z.success && !p.ok) expect(p.issue.path).toBe(z.error.issues[0]?.path.join('.'));
    }
  });

  it('compares documents exactly: keys, lengths, types and values', () => {
    const snap = JSON.parse(JSON.stringify(base)) as unknown;
    expect(sameJson(structuredClone(base), snap)).toBe(true);
    expect(sameJson({ ...base, extra: undefined }, snap)).toBe(false);
    expect(sameJson({ ...base, action: 'approve' }, snap)).toBe(false);
    expect(sameJson({ ...base, devices: [...base.devices, base.devices[0]] }, snap)).toBe(false);
    expect(sameJson({ ...base, cohort: { ...base.cohort, size: String(base.cohort.size) } }, snap)).toBe(
      false,
    );
    expect(sameJson(Object.assign(Object.create({ x: 1 }), base), snap)).toBe(false);
    const cohort = JSON.parse(JSON.stringify(base.cohort)) as PolicyInput['cohort'];
    expect(sameCohort(structuredClone(base.cohort), cohort)).toBe(true);
    // Same content, another key order: not a match (validated afresh), and still accepted.
    const reordered = {
      ...base.cohort,
      topology: base.cohort.topology.map(({ kind, ...t }) => ({ ...t, kind })),
    };
    expect(sameCohort(reordered, cohort)).toBe(false);
    expect(prepareInput({ ...base, cohort: reordered }).ok).toBe(true);
  });
});

describe('the wasm engine keeps the parsed plan between decisions', () => {
  let engine: PolicyEngine;
  beforeAll(async () => {
    engine = await loadPolicyEngine({ data: testPolicyData, opaUrl: '' });
  });

  it('decides every fixture as a plain evaluation does, in any order and after new data', async () => {
    const run = async () => {
      for (const [name, c] of valid) {
        await engine.setData((c.policy_data as PolicyData | undefined) ?? testPolicyData);
        const plain = await engine.evaluate(c.input);
        // Twice: once parsing the cohort, once from the kept one.
        for (let i = 0; i < 2; i++) {
          const r = await engine.decide(c.input);
          expect(canonicalJson(r.decision), name).toBe(canonicalJson(plain));
        }
      }
    };
    await run();
    await run();
    await engine.setData(testPolicyData);
  });

  it('a cohort that changes between decisions is decided on, not the kept one', async () => {
    const over = withCohort({
      ...base.cohort,
      topology: [{ kind: 'pon_port', id: 'p', count: 60, total: 64 }],
    });
    const codes = async (input: unknown) => (await engine.decide(input)).decision.deny.map((d) => d.code);
    expect(await codes(base)).toEqual([]);
    expect(await codes(over)).toEqual(['topology_share_too_large']);
    expect(await codes(base)).toEqual([]);
  });

  it('a plan edited in place between decisions is decided on as edited', async () => {
    const input = structuredClone(base);
    const codes = async () => (await engine.decide(input)).decision.deny.map((d) => d.code);
    expect(await codes()).toEqual([]);
    input.change.parameters![0]!.path = 'Device.ManagementServer.URL';
    expect(await codes()).toEqual(['protected_path']);
    input.change.parameters![0]!.path = 'Device.DNS.Client.Server.1.DNSServer';
    input.cohort.topology[0]!.count = input.cohort.topology[0]!.total + 1;
    expect((await engine.decide(input)).decision.deny[0]).toMatchObject({ code: 'input_invalid' });
  });
});
