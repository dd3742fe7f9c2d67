/**
 * API fuzzing with schemathesis over every operation of the OpenAPI document, against the real API
 * listening on a port (real PostgreSQL, the Temporal dev server), as an admin so every operation is
 * reachable. The one check that matters here: no answer is a 5xx. Bounded to ten minutes.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { buildServer } from '../../api/server.js';
import { createRolloutActivities, dbRolloutFleet, dbRolloutImages } from '../../activities/rollout.js';
import { upsertDevices } from '../../fleet/devices.js';
import { createLogger } from '../../platform/logger.js';
import { schemathesisBin } from '../../platform/tools.js';
import { createTestIdentity } from '../support/auth.js';
import { type AuthoredModel, startAuthoredModel } from '../support/authored-model.js';
import { createTestDatabase } from '../support/db.js';

const BUDGET_MS = 10 * 60_000;
let db: Awaited<ReturnType<typeof createTestDatabase>>;
let connection: Connection;
let server: Awaited<ReturnType<typeof buildServer>>;
let base: string;
let token: string;
let model: AuthoredModel | undefined;

beforeAll(async () => {
  // Every question gets one valid query: the fuzz is about the API, not a model.
  model = await startAuthoredModel(() => ({
    kind: 'query',
    query: { where: { all: true }, measure: 'count' },
  }));
  const llm = model.llm;
  db = await createTestDatabase();
  connection = Connection.lazy({ address: inject('temporalAddress') });
  const fleet = dbRolloutFleet(db.db);
  const images = dbRolloutImages(db.db);
  const acts = createRolloutActivities({
    logger: createLogger({ name: 'fuzz', level: 'error' }),
    db: db.db,
    rolloutFleet: fleet,
    rolloutImages: images,
  });
  server = await buildServer({
    db,
    temporal: { client: new Client({ connection }), namespace: 'default', taskQueue: `fuzz-no-worker` },
    readiness: [],
    auth: {},
    llm,
    hardening: { rateLimitPerMin: false },
    rollouts: {
      prepare: (rolloutId, spec, seed) => acts.prepareRollout({ rolloutId, spec, seed, dryRun: true }),
      // The policy engine is not what is fuzzed here: a fixed decision that needs one approval.
      decide: async () => ({ allow: true, requiredApprovals: 1, reasons: [] }),
    },
  });
  await server.listen({ port: 0, host: '127.0.0.1' });
  base = `http://127.0.0.1:${(server.server.address() as AddressInfo).port}`;
  token = (await createTestIdentity(db.db, 'fuzzer', ['admin'])).token;
  await upsertDevices(db.db, [
    {
      id: 'FUZZ-1',
      oui: '00D09E',
      serialNumber: 'FUZZ1',
      protocol: 'cwmp',
      productClass: 'HG8245',
      softwareVersion: '3.1.0',
      lastContactAt: new Date(),
      periodicInformIntervalS: 300,
    },
  ]);
}, 120_000);
afterAll(async () => {
  await server?.close();
  await model?.close();
  await connection?.close();
  await db?.drop();
});

function run(cmd: string, args: string[], timeoutMs: number): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NO_COLOR: '1' },
    });
    let out = '';
    child.stdout.on('data', (c) => {
      out += c;
    });
    child.stderr.on('data', (c) => {
      out += c;
    });
    const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

describe('API fuzzing (schemathesis)', () => {
  it(
    'no operation of the OpenAPI document answers 5xx',
    async () => {
      const bin = schemathesisBin();
      const reports = path.resolve('test-results/schemathesis');
      mkdirSync(reports, { recursive: true });
      const { code, out } = await run(
        bin,
        [
          'run',
          `${base}/docs/json`,
          '--url',
          base,
          '--header',
          `Authorization: Bearer ${token}`,
          '--checks',
          'not_a_server_error',
          '--max-examples',
          process.env.FUZZ_MAX_EXAMPLES ?? '15',
          // One worker: schemathesis's coverage phase compiles code in threads, which Python 3.11 can trip on.
          '--workers',
          '1',
          '--request-timeout',
          '30',
          '--seed',
          '13',
          '--generation-database',
          'none',
          '--suppress-health-check',
          'all',
        ],
        BUDGET_MS - 30_000,
      );
      writeFileSync(path.join(reports, 'output.txt'), out);
      // The failing operations with their reproductions come before the summary: keep them.
      const i = out.indexOf('FAILURES');
      const summary = (i >= 0 ? out.slice(i, i + 6000) : out.split('\n').slice(-60).join('\n')).trim();
      // Exit 1 also covers schemathesis's own runtime errors; what this test asserts is no 5xx (ST101)
      // and that every operation of the document was exercised.
      expect(out, summary).not.toMatch(/ST101|Server error/i);
      const selected = /Selected: (\d+)\/(\d+)/.exec(out);
      expect(selected?.[1], summary).toBe(selected?.[2]);
      expect(Number(/Tested: (\d+)/.exec(out)?.[1]), summary).toBe(Number(selected?.[2]));
      expect(Number(/(\d+) generated/.exec(out)?.[1] ?? 0), summary).toBeGreaterThan(100);
      expect(code === 0 || /Runtime Error/.test(out), summary).toBe(true);
    },
    BUDGET_MS,
  );
});
