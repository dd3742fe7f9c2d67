import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { migrate, migrationsFolder } from '../../db/migrate.js';

interface Journal {
  entries: Array<{ idx: number; when: number; tag: string }>;
}
const journal = JSON.parse(
  readFileSync(path.join(migrationsFolder, 'meta', '_journal.json'), 'utf8'),
) as Journal;

describe('migrations', () => {
  it('are strictly increasing in index and time, one SQL file each, none unlisted', () => {
    const { entries } = journal;
    expect(entries.length).toBeGreaterThan(0);
    entries.forEach((e, i) => {
      expect(e.idx).toBe(i);
      expect(e.tag.startsWith(String(i).padStart(4, '0'))).toBe(true);
      if (i > 0) expect(e.when).toBeGreaterThan(entries[i - 1]?.when ?? Number.POSITIVE_INFINITY);
    });
    const files = readdirSync(migrationsFolder)
      .filter((f) => f.endsWith('.sql'))
      .sort();
    expect(files).toEqual(entries.map((e) => `${e.tag}.sql`));
  });

  const dbName = `mig_${process.pid}`;
  const adminUrl = inject('pgAdminUrl');
  afterAll(async () => {
    const c = new pg.Client({ connectionString: adminUrl });
    await c.connect();
    await c.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    await c.end();
  });

  it('concurrent migrate() calls serialise on the advisory lock and apply each migration once', async () => {
    const c = new pg.Client({ connectionString: adminUrl });
    await c.connect();
    await c.query(`CREATE DATABASE ${dbName}`);
    await c.end();
    const url = adminUrl.replace(/\/[^/]+$/, `/${dbName}`);
    await Promise.all([migrate(url), migrate(url), migrate(url)]);
    const check = new pg.Client({ connectionString: url });
    await check.connect();
    const applied = await check.query('SELECT count(*)::int AS n FROM drizzle.__drizzle_migrations');
    await check.end();
    expect(applied.rows[0].n).toBe(journal.entries.length);
  });
});
