/**
 * The rollout wiring the API uses, on a real PostgreSQL and the shipped Rego bundle (in-process wasm):
 * the catalogue lookup, the dry-run plan (nothing frozen), the run's frozen cohort, and the policy
 * decision with its stored record.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dbRolloutFleet, dbRolloutImages, createRolloutActivities } from '../../activities/rollout.js';
import { rolloutPolicyDecider } from '../../activities/rollout-policy.js';
import {
  firmwareImages,
  maintenanceWindows,
  policyDecisions,
  rolloutCohortDevices,
} from '../../db/schema/index.js';
import { rolloutSpecSchema } from '../../domain/rollout/spec.js';
import { upsertDevices } from '../../fleet/devices.js';
import { createLogger } from '../../platform/logger.js';
import type { PolicyEngine } from '../../policies/engine.js';
import { openPolicyEngine } from '../../policies/runtime.js';
import { seedPolicyDefaults } from '../../policies/store.js';
import { createTestDatabase } from '../support/db.js';

const sha = (c: string) => c.repeat(64);
let db: Awaited<ReturnType<typeof createTestDatabase>>;
let engine: PolicyEngine;

beforeAll(async () => {
  db = await createTestDatabase();
  await seedPolicyDefaults(db.db);
  await db.db.insert(maintenanceWindows).values({
    name: 'always',
    days: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'],
    startMinute: 0,
    endMinute: 1440,
  });
  await db.db.insert(firmwareImages).values([
    {
      version: '2.1.0',
      models: ['HGW-500'],
      allowedFromVersions: [],
      url: 'http://fw.test/2.1.0',
      size: 10,
      checksum: sha('a'),
      status: 'approved',
    },
    {
      version: '2.2.0',
      models: ['HGW-500'],
      allowedFromVersions: ['2.1.0'],
      url: 'http://fw.test/2.2.0',
      size: 10,
      checksum: sha('b'),
      status: 'approved',
    },
    {
      version: '9.9.9',
      models: ['HGW-500'],
      allowedFromVersions: ['2.1.0'],
      url: 'http://fw.test/9.9.9',
      size: 10,
      checksum: sha('c'),
      status: 'draft',
    },
  ]);
  await upsertDevices(
    db.db,
    Array.from({ length: 300 }, (_, i) => ({
      id: `00A0C9-HGW-500-S${String(i).padStart(4, '0')}`,
      oui: '00A0C9',
      serialNumber: `S${String(i).padStart(4, '0')}`,
      protocol: 'cwmp' as const,
      productClass: 'HGW-500',
      modelName: 'HGW-500',
      hardwareVersion: 'r2',
      softwareVersion: '2.1.0',
    })),
  );
  engine = await openPolicyEngine(db, { opaUrl: '' });
}, 120_000);
afterAll(async () => {
  await engine?.close();
  await db?.drop();
});

const spec = (image: string) =>
  rolloutSpecSchema.parse({
    name: 'policy',
    image,
    cohort: { field: 'productClass', op: 'eq', value: 'HGW-500' },
    waves: { kind: 'steps', steps: [{ count: 30 }, { percent: 40 }, { percent: 100 }] },
    gate: { theta: 0.005, hardCeilingBricked: 10 },
  });

describe('rollout catalogue, frozen cohort and policy decision (PostgreSQL, OPA wasm)', () => {
  it('plans a dry run without freezing, freezes the run, and asks the policy', async () => {
    const images = dbRolloutImages(db.db);
    expect(await images('2.2.0')).toMatchObject({
      version: '2.2.0',
      previousVersion: '2.1.0',
      previousUrl: 'http://fw.test/2.1.0',
    });
    expect(await images('nope')).toBeUndefined();
    const fleet = dbRolloutFleet(db.db);
    const acts = createRolloutActivities({
      logger: createLogger({ name: 't', level: 'warn' }),
      db: db.db,
      rolloutFleet: fleet,
      rolloutImages: images,
    });
    const dry = await acts.prepareRollout({
      rolloutId: 'ro-pol',
      spec: spec('2.2.0'),
      seed: 's',
      dryRun: true,
    });
    expect(dry.cohortSize).toBe(300);
    expect(await db.db.select().from(rolloutCohortDevices)).toHaveLength(0);
    const decide = rolloutPolicyDecider({ db: db.db, engine, fleet, images });
    const ok = await decide('ro-pol', spec('2.2.0'), dry, {
      id: 'u-alice',
      kind: 'user',
      roles: ['operator'],
    });
    expect(ok.reasons).toEqual([]);
    expect(ok).toMatchObject({ allow: true, riskClass: 'high' });
    expect(ok.requiredApprovals).toBeGreaterThan(0);
    const draft = await decide('ro-pol2', spec('9.9.9'), dry, {
      id: 'u-alice',
      kind: 'user',
      roles: ['operator'],
    });
    expect(draft.allow).toBe(false);
    expect(draft.reasons.join(' ')).toMatch(/firmware_not_approved/);
    expect(await db.db.select().from(policyDecisions)).toHaveLength(2);

    // The run freezes its cohort: devices that change firmware keep their stratum and stay in the plan.
    const run = await acts.prepareRollout({ rolloutId: 'ro-pol', spec: spec('2.2.0'), seed: 's' });
    expect(await db.db.select().from(rolloutCohortDevices)).toHaveLength(300);
    await db.pool.query(`update devices set software_version = '2.2.0' where serial_number < 'S0100'`);
    const again = await acts.stageSize({
      rolloutId: 'ro-pol',
      spec: spec('2.2.0'),
      seed: 's',
      cohortHash: run.cohortHash,
      wave: 0,
      stage: 0,
    });
    expect(again).toBe(run.waves[0]!.devices);
  });
});
