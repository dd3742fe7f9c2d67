import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { seedPolicyDefaults } from '../../policies/store.js';
import { repoRoot } from '../../platform/paths.js';
import { createTestDatabase } from '../support/db.js';

// Invariant: no API or worker runs without a loadable policy bundle (policy fails closed).
describe('a broken or missing policy bundle stops start-up', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'fb-policy-'));
  beforeAll(async () => {
    db = await createTestDatabase();
    await seedPolicyDefaults(db.db);
  });
  afterAll(async () => {
    await db?.drop();
    rmSync(tmp, { recursive: true, force: true });
  });

  const run = (command: string, policyDir: string) =>
    spawnSync(path.join(repoRoot, 'bin', 'fleetbrain'), [command], {
      env: {
        ...process.env,
        DATABASE_URL: db.url,
        TEMPORAL_ADDRESS: inject('temporalAddress'),
        FLEETBRAIN_POLICY_DIR: policyDir,
        API_PORT: '1',
        LOG_LEVEL: 'error',
      },
      encoding: 'utf8',
      timeout: 60_000,
    });

  it.each(['api', 'worker'])(
    '%s refuses a bundle with a syntax error, naming the file and OPA error',
    (command) => {
      const dir = path.join(tmp, `broken-${command}`);
      cpSync(path.join(repoRoot, 'policies', 'rego'), dir, { recursive: true });
      const victim = readdirSync(dir).find((f) => f.endsWith('.rego') && !f.endsWith('_test.rego'));
      expect(victim).toBeDefined();
      writeFileSync(path.join(dir, victim ?? ''), 'package fleetbrain\n\ndecision := {\n');
      const res = run(command, dir);
      expect(res.status).toBe(1);
      expect(res.stderr).toMatch(/policy bundle refused/);
      expect(res.stderr).toContain(victim);
      expect(res.stderr).toMatch(/rego_parse_error/);
    },
  );

  it('the worker refuses unusable policy data in the database with a clear line', async () => {
    await db.pool.query('DELETE FROM policy_risk_caps');
    const res = run('worker', path.join(repoRoot, 'policies', 'rego'));
    await seedPolicyDefaults(db.db);
    expect(res.status).toBe(1);
    expect(res.stderr).toMatch(/policy bundle refused: policy data from the database is unusable/);
  });

  it('api refuses a missing bundle directory', () => {
    const res = run('api', path.join(tmp, 'does-not-exist'));
    expect(res.status).toBe(1);
    expect(res.stderr).toMatch(/policy bundle refused: .*does-not-exist/);
  });
});
