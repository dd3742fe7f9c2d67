import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { defaultPolicyDir, PolicyLoadError } from './bundle.js';
import { loadPolicyEngine, type PolicyEngine } from './engine.js';
import { cases, testPolicyData } from './fixtures/cases.js';
import { PolicyDecision } from './schema.js';

const input = JSON.parse(JSON.stringify(cases.baseline_wifi_change!.input)) as Record<string, unknown>;
const dirs: string[] = [];

/** A copy of the shipped policy with `edit` applied, in a temp dir. */
async function policyDir(edit: (dir: string) => Promise<void>): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'fb-policy-'));
  dirs.push(dir);
  await cp(defaultPolicyDir, dir, { recursive: true });
  await edit(dir);
  return dir;
}

/** A minimal policy of our own, to make the engine meet undefined or malformed decisions. */
async function onlyModule(text: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'fb-policy-'));
  dirs.push(dir);
  await writeFile(path.join(dir, 'decision.rego'), text);
  return dir;
}

afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

describe('loading the policy bundle fails closed', () => {
  it('a missing policy directory names the directory', async () => {
    const missing = path.join(os.tmpdir(), 'fb-no-such-policy-dir');
    const err = await loadPolicyEngine({ data: testPolicyData, policyDir: missing, opaUrl: '' }).catch(
      (e) => e,
    );
    expect(err).toBeInstanceOf(PolicyLoadError);
    expect(String(err.message)).toContain(missing);
  });

  it('a syntax error names the file and carries OPA’s parse error', async () => {
    const dir = await policyDir(async (d) => {
      const f = path.join(d, 'risk.rego');
      await writeFile(f, `${await readFile(f, 'utf8')}\nbroken if {\n`);
    });
    const err = await loadPolicyEngine({ data: testPolicyData, policyDir: dir, opaUrl: '' }).catch((e) => e);
    expect(err).toBeInstanceOf(PolicyLoadError);
    expect(err.message).toMatch(/opa build failed: .*risk\.rego:\d+: rego_parse_error/s);
  });

  it('a built-in the wasm runtime lacks is rejected at build time, naming the file', async () => {
    const dir = await policyDir((d) =>
      writeFile(path.join(d, 'clock.rego'), 'package fleetbrain\n\nnow_ns := time.now_ns()\n'),
    );
    const err = await loadPolicyEngine({ data: testPolicyData, policyDir: dir, opaUrl: '' }).catch((e) => e);
    expect(err).toBeInstanceOf(PolicyLoadError);
    expect(err.message).toMatch(/clock\.rego:3: rego_type_error: undefined function time\.now_ns/);
  });

  it('a corrupt cached wasm names the file, and is rebuilt on the next start', async () => {
    // A cache of this test's own, so no parallel test file meets the corrupted entry.
    const cache = await mkdtemp(path.join(os.tmpdir(), 'fb-policy-cache-'));
    dirs.push(cache);
    const before = process.env.FB_POLICY_CACHE;
    process.env.FB_POLICY_CACHE = cache;
    onTestFinished(() => {
      if (before === undefined) delete process.env.FB_POLICY_CACHE;
      else process.env.FB_POLICY_CACHE = before;
    });
    const { compileWasm, readPolicySources } = await import('./bundle.js');
    const { file } = await compileWasm(await readPolicySources());
    expect(file.startsWith(cache)).toBe(true);
    const good = await readFile(file);
    await writeFile(file, 'not wasm');
    const err = await loadPolicyEngine({ data: testPolicyData, opaUrl: '' }).catch((e) => e);
    expect(err).toBeInstanceOf(PolicyLoadError);
    expect(err.message).toContain(file);
    const engine = await loadPolicyEngine({ data: testPolicyData, opaUrl: '' });
    expect((await engine.decide(input)).decision.allow).toBe(true);
    expect(await readFile(file)).toEqual(good);
  });

  it('a bundle without the decision entry point does not load', async () => {
    const dir = await onlyModule('package other\n\nallow := true\n');
    const err = await loadPolicyEngine({ data: testPolicyData, policyDir: dir, opaUrl: '' }).catch((e) => e);
    expect(err).toBeInstanceOf(PolicyLoadError);
    expect(err.message).toContain(dir);
    expect(err.message).toMatch(/fleetbrain\/decision/);
  });
});

describe('a decision that cannot be evaluated denies', () => {
  it('an undefined decision denies with policy_undefined', async () => {
    const dir = await onlyModule('package fleetbrain\n\ndecision := {"allow": true} if input.never\n');
    const engine = await loadPolicyEngine({ data: testPolicyData, policyDir: dir, opaUrl: '' });
    const r = await engine.decide(input);
    expect(r.decision.allow).toBe(false);
    expect(r.decision.deny.map((d) => d.code)).toEqual(['policy_undefined']);
  });

  it('a decision of the wrong shape denies with policy_result_invalid', async () => {
    const dir = await onlyModule('package fleetbrain\n\ndecision := {"allow": true}\n');
    const engine = await loadPolicyEngine({ data: testPolicyData, policyDir: dir, opaUrl: '' });
    const r = await engine.decide(input);
    expect(r.decision.allow).toBe(false);
    expect(r.decision.deny[0]?.code).toBe('policy_result_invalid');
  });

  it('a runtime error in the policy denies with policy_error', async () => {
    // Conflicting values for one complete rule: OPA aborts evaluation.
    const dir = await onlyModule(
      'package fleetbrain\n\nx := 1 if input.action\n\nx := 2 if input.actor\n\ndecision := {"allow": x == 1}\n',
    );
    const engine = await loadPolicyEngine({ data: testPolicyData, policyDir: dir, opaUrl: '' });
    const r = await engine.decide(input);
    expect(r.decision.allow).toBe(false);
    expect(r.decision.deny[0]?.code).toBe('policy_error');
  });

  it('an input that fails the schema denies without evaluation, naming the field', async () => {
    const engine = await loadPolicyEngine({ data: testPolicyData, opaUrl: '' });
    const r = await engine.decide({ ...input, cohort: { ...(input.cohort as object), size: -1 } });
    expect(r.decision.allow).toBe(false);
    expect(r.decision.deny[0]).toMatchObject({ code: 'input_invalid', path: 'cohort.size' });
    expect(r.decision.risk_class).toBe('critical');
  });
});

describe('the shipped policy through the engine', () => {
  let engine: PolicyEngine;
  beforeAll(async () => {
    engine = await loadPolicyEngine({ data: testPolicyData, opaUrl: '' });
  });

  it('returns a schema-valid decision with hashes and latency', async () => {
    const r = await engine.decide(input);
    expect(PolicyDecision.parse(r.decision).allow).toBe(true);
    expect(r.engine).toBe('wasm');
    expect(r.inputHash).toMatch(/^[0-9a-f]{64}$/);
    expect(r.bundleHash).toMatch(/^[0-9a-f]{64}$/);
    expect(r.bundleHash).not.toBe(r.policyHash);
    expect(r.latencyMs).toBeGreaterThan(0);
  });

  it('hashes the input independently of key order', async () => {
    const reordered = Object.fromEntries(Object.entries(input).reverse());
    const [a, b] = [await engine.decide(input), await engine.decide(reordered)];
    expect(b.inputHash).toBe(a.inputHash);
    const other = await engine.decide({ ...input, action: 'execute' });
    expect(other.inputHash).not.toBe(a.inputHash);
  });

  it('changes the bundle hash when the policy data changes, and decides on the new data', async () => {
    const before = engine.bundleHash;
    const policyHash = engine.policyHash;
    const tighter = structuredClone(testPolicyData);
    tighter.risk_classes.low.max_cohort_size = 10;
    await engine.setData(tighter);
    try {
      expect(engine.bundleHash).not.toBe(before);
      expect(engine.policyHash).toBe(policyHash);
      const r = await engine.decide(input);
      expect(r.decision.deny.map((d) => d.code)).toEqual(['cohort_too_large']);
      expect(r.bundleHash).toBe(engine.bundleHash);
    } finally {
      await engine.setData(testPolicyData);
    }
    expect(engine.bundleHash).toBe(before);
  });
});
