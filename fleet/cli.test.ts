import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../platform/paths.js';
import { createTestDatabase } from '../test/support/db.js';
import { upsertDevices } from './devices.js';
import { deviceSetHash } from './resolve.js';

const run = promisify(execFile);
let db: Awaited<ReturnType<typeof createTestDatabase>>;
let dir: string;

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(
      process.execPath,
      ['--import', 'tsx', path.join(repoRoot, 'cli/main.ts'), 'fleet', ...args],
      {
        cwd: repoRoot,
        env: { ...process.env, DATABASE_URL: db.url },
      },
    );
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

beforeAll(async () => {
  db = await createTestDatabase();
  dir = mkdtempSync(path.join(os.tmpdir(), 'fleet-cli-'));
  await upsertDevices(
    db.db,
    ['A-1', 'A-2', 'A-3'].map((id) => ({
      id,
      oui: 'AAAAAA',
      serialNumber: id,
      protocol: 'cwmp' as const,
      productClass: 'HG',
    })),
  );
});
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await db?.drop();
});

// Each CLI run starts node with tsx (several seconds on a busy machine).
describe('fleetbrain fleet', { timeout: 180_000 }, () => {
  it('import-topology refuses a file with a bad row, and --partial applies the rest', async () => {
    const file = path.join(dir, 'topo.csv');
    writeFileSync(file, 'device_id,region,olt\nA-1,north,olt-1\nA-2,,olt-2\nA-3,south,olt-3\n');
    const strict = await cli('import-topology', file);
    expect(strict.code).toBe(1);
    expect(strict.stdout).toContain(`${file}:3: region:`);
    expect(strict.stdout).toContain('nothing applied');
    const partial = await cli('import-topology', file, '--partial', '--json');
    expect(partial.code).toBe(1);
    expect(JSON.parse(partial.stdout)).toMatchObject({ rows: 3, applied: 2, changed: 2 });
  });

  it('select prints count, hash and a plain reading; a bad selector exits 2 naming the part', async () => {
    const ok = await cli(
      'select',
      '{"field":"region","op":"in","values":["north","south"]}',
      '--json',
      '--ids',
    );
    expect(ok.code).toBe(0);
    const out = JSON.parse(ok.stdout);
    expect(out).toMatchObject({ count: 2, ids: ['A-1', 'A-3'], description: 'region is "north" or "south"' });
    expect(out.deviceSetHash).toBe(deviceSetHash(['A-3', 'A-1']));
    const bad = await cli('select', '{"and":[{"field":"regoin","op":"eq","value":"x"}]}');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/and\[0\]\.field: unknown field "regoin"/);
  });
});
