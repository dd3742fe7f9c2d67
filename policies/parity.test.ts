import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readPolicySources } from './bundle.js';
import { loadPolicyEngine, type PolicyEngine } from './engine.js';
import { type OpaServer, startOpaServer } from './opa-server.js';
import type { PolicyData } from './schema.js';

/**
 * Every `opa test` input (policies/testdata/cases.json, the same file the Rego tests load) through
 * in-process wasm and through a real `opa run --server`: the decisions must be identical.
 */

const testdata = path.join(path.dirname(fileURLToPath(import.meta.url)), 'testdata');

interface FixtureCase {
  input: unknown;
  policy_data?: unknown;
  expect: { allow: boolean; deny_codes: string[] };
  /** What the engine adds to a valid input (generate.ts). */
  engine_facts?: { change: object; cohort: object };
}

/** The input as decide() has the engine evaluate it: with the derived facts added. */
function withEngineFacts(c: FixtureCase): unknown {
  const input = c.input as { change: object; cohort: object };
  const facts = c.engine_facts!;
  return {
    ...input,
    change: { ...input.change, ...facts.change },
    cohort: { ...input.cohort, ...facts.cohort },
  };
}

let server: OpaServer;
let wasm: PolicyEngine;
let remote: PolicyEngine;
let data: PolicyData;
let cases: Record<string, FixtureCase>;

beforeAll(async () => {
  cases = (JSON.parse(await readFile(path.join(testdata, 'cases.json'), 'utf8')) as { cases: typeof cases })
    .cases;
  data = (
    JSON.parse(await readFile(path.join(testdata, 'policy_data.json'), 'utf8')) as { policy_data: PolicyData }
  ).policy_data;
  server = await startOpaServer((await readPolicySources()).modules.map((m) => m.file));
  wasm = await loadPolicyEngine({ data, opaUrl: '' });
  remote = await loadPolicyEngine({ data, opaUrl: server.url });
});

afterAll(async () => {
  await server?.stop();
});

describe('wasm / OPA server parity', () => {
  it('both engines run the same bundle', () => {
    expect(wasm.engine).toBe('wasm');
    expect(remote.engine).toBe('server');
    expect(remote.bundleHash).toBe(wasm.bundleHash);
  });

  it('every fixture case decides identically through wasm and the OPA server', async () => {
    const names = Object.keys(cases);
    expect(names.length).toBeGreaterThan(50);
    for (const name of names) {
      const c = cases[name]!;
      // A case may carry its own policy data document (e.g. one without caps).
      const caseData = (c.policy_data as PolicyData | undefined) ?? data;
      await wasm.setData(caseData);
      await remote.setData(caseData);
      const [a, b] = [await wasm.evaluate(c.input), await remote.evaluate(c.input)];
      expect(a, `${name}: wasm decision`).toBeDefined();
      expect(b, `${name}: server decision`).toEqual(a);
      if (c.engine_facts) {
        const input = withEngineFacts(c);
        const [fa, fb] = [await wasm.evaluate(input), await remote.evaluate(input)];
        expect(fa, `${name}: wasm decision with the engine's facts`).toEqual(a);
        expect(fb, `${name}: server decision with the engine's facts`).toEqual(a);
      }
      const decision = a as { allow: boolean; deny: Array<{ code: string }> };
      expect(decision.allow, name).toBe(c.expect.allow);
      expect([...new Set(decision.deny.map((d) => d.code))].sort(), name).toEqual(
        [...c.expect.deny_codes].sort(),
      );
    }
    await wasm.setData(data);
    await remote.setData(data);
  });

  it('decide() gives the same stored record through both engines, apart from engine and latency', async () => {
    for (const name of ['baseline_wifi_change', 'firmware_campaign_ok', 'protected_acs_url', 'empty_input']) {
      const [a, b] = [await wasm.decide(cases[name]!.input), await remote.decide(cases[name]!.input)];
      expect(b.decision, name).toEqual(a.decision);
      expect(b.inputHash).toBe(a.inputHash);
      expect(b.bundleHash).toBe(a.bundleHash);
    }
  });

  it('an OPA server without the decision entry point refuses to load', async () => {
    const empty = await startOpaServer([]);
    try {
      await expect(loadPolicyEngine({ data, opaUrl: empty.url })).rejects.toThrow(
        /data\.fleetbrain\.decision is not defined \(modules: none\)/,
      );
    } finally {
      await empty.stop();
    }
  });

  it('an unreachable OPA server refuses to load', async () => {
    await expect(loadPolicyEngine({ data, opaUrl: 'http://127.0.0.1:9', timeoutMs: 500 })).rejects.toThrow(
      /OPA server http:\/\/127\.0\.0\.1:9: cannot list policies/,
    );
  });
});
