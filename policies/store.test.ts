import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../test/support/db.js';
import { firmwareImages } from '../db/schema/policy.js';
import { loadPolicyEngine, type PolicyEngine } from './engine.js';
import { cases } from './fixtures/cases.js';
import { policyDataHash } from './policy-data.js';
import {
  decisionsFor,
  explainDecision,
  loadPolicyData,
  recordDecision,
  seedPolicyDefaults,
} from './store.js';

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let engine: PolicyEngine;

beforeAll(async () => {
  db = await createTestDatabase();
  await seedPolicyDefaults(db.db);
  await seedPolicyDefaults(db.db); // idempotent
  await db.db.insert(firmwareImages).values({
    version: '3.2.1',
    models: ['HG8245'],
    allowedFromVersions: ['3.1.4'],
    url: 'https://fw.example.net/3.2.1.bin',
    size: 1000,
    checksum: 'sha256:abc',
    status: 'approved',
  });
  engine = await loadPolicyEngine({
    data: await loadPolicyData(db.db, { plannerIds: ['svc-planner'] }),
    opaUrl: '',
  });
});

afterAll(async () => {
  await db?.drop();
});

describe('policy tables and decision records', () => {
  it('builds the policy data document from the tables', async () => {
    const doc = await loadPolicyData(db.db, { plannerIds: ['svc-planner'] });
    expect(doc.firmware_catalogue.map((e) => [e.version, e.status])).toEqual([['3.2.1', 'approved']]);
    expect(Object.keys(doc.risk_classes).sort()).toEqual(['critical', 'high', 'low', 'medium']);
    expect(doc.maintenance_windows.map((w) => w.name)).toEqual(['nightly']);
    expect(policyDataHash(doc)).toBe(engine.dataHash);
  });

  it('stores each decision with its hashes and latency, and reads it back with its reasons', async () => {
    const input = JSON.parse(JSON.stringify(cases.protected_acs_url!.input));
    const evaluated = await engine.decide(input);
    const id = await recordDecision(db.db, { kind: 'change_request', id: 'cr-1' }, input, evaluated);
    const allowed = await engine.decide(JSON.parse(JSON.stringify(cases.baseline_wifi_change!.input)));
    await recordDecision(
      db.db,
      { kind: 'change_request', id: 'cr-2' },
      cases.baseline_wifi_change!.input as never,
      allowed,
    );
    const [stored, ...rest] = await decisionsFor(db.db, { kind: 'change_request', id: 'cr-1' });
    expect(rest).toEqual([]);
    expect(stored).toMatchObject({
      id,
      action: 'propose',
      actorId: 'alice',
      engine: 'wasm',
      inputHash: evaluated.inputHash,
      bundleHash: engine.bundleHash,
    });
    expect(stored!.latencyMs).toBeCloseTo(evaluated.latencyMs, 6);
    expect(stored!.decision).toEqual(evaluated.decision);
    expect(explainDecision(stored!.decision).join('\n')).toMatch(
      /^DENY · risk medium.*\n {2}deny protected_path \[Device\.ManagementServer\.URL\]/,
    );
  });
});
