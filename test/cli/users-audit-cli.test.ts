import { Command } from 'commander';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { auditCommand } from '../../cli/audit.js';
import type { CliIo } from '../../cli/io.js';
import { usersCommand } from '../../cli/users.js';
import { connect } from '../../db/client.js';
import { identityForToken } from '../../db/identities.js';
import { createTestDatabase } from '../support/db.js';

describe('fleetbrain users / fleetbrain audit', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db?.drop();
  });
  afterEach(() => {
    process.exitCode = 0;
  });

  /** Runs one command line; returns what it printed and its exit code. */
  async function run(...args: string[]) {
    const out: string[] = [];
    const err: string[] = [];
    const io: CliIo = {
      out: (l) => out.push(l),
      err: (l) => err.push(l),
      openDb: () => connect(db.url, { max: 1 }),
    };
    const program = new Command('fleetbrain')
      .exitOverride()
      .configureOutput({ writeErr: (s) => err.push(s) });
    usersCommand(program, io);
    auditCommand(program, io);
    process.exitCode = 0;
    await program.parseAsync(['node', 'fleetbrain', ...args]);
    const code = process.exitCode ?? 0;
    process.exitCode = 0;
    return { out, err, code };
  }

  it('creates users with roles and tokens that authenticate', async () => {
    const created = await run('users', 'create', 'alice', '--roles', 'operator,approver', '--token');
    expect(created.code).toBe(0);
    expect(created.out[0]).toMatch(/^created user alice .* roles=operator,approver$/);
    const token = created.out[1]?.replace(/^token: /, '') ?? '';
    expect(token).toMatch(/^fbt_/);
    expect((await identityForToken(db.db, token))?.name).toBe('alice');
    const second = await run('users', 'token', 'alice', '--label', 'laptop', '--expires-days', '7');
    expect((await identityForToken(db.db, second.out[0] ?? ''))?.name).toBe('alice');
    const list = await run('users', 'tokens', 'alice');
    expect(list.out).toHaveLength(2);
    const id = list.out[1]?.split('\t')[0] ?? '';
    expect((await run('users', 'revoke-token', id)).out).toEqual([`revoked ${id}`]);
    expect(await identityForToken(db.db, second.out[0] ?? '')).toBeUndefined();
  });

  it('creates service identities that can never hold a deciding role', async () => {
    expect((await run('users', 'create', 'planner', '--service', '--roles', 'operator')).code).toBe(0);
    const refused = await run('users', 'create', 'reconciler', '--service', '--roles', 'approver');
    expect(refused.code).toBe(1);
    expect(refused.err.join('')).toMatch(/never approve/);
    expect((await run('users', 'roles', 'planner', 'operator,admin')).code).toBe(1);
    const list = await run('users', 'list', '--json');
    expect(JSON.parse(list.out[0] ?? '[]')).toEqual([
      expect.objectContaining({ name: 'alice', kind: 'user' }),
      expect.objectContaining({ name: 'planner', kind: 'service', roles: ['operator'] }),
    ]);
  });

  it('refuses an unknown role', async () => {
    await expect(run('users', 'create', 'bob', '--roles', 'superuser')).rejects.toThrow(
      /unknown role superuser/,
    );
  });

  it('verifies the audit log its own commands wrote, exports the head, and reports the first broken link', async () => {
    const ok = await run('audit', 'verify');
    expect(ok.code).toBe(0);
    expect(ok.out[0]).toMatch(/^ok: \d+ entries/);
    const head = (await run('audit', 'head')).out[0] ?? '';
    expect(head).toMatch(/^\d+:[0-9a-f]{64}$/);
    expect((await run('audit', 'verify', '--expect-head', head)).code).toBe(0);
    const listed = await run('audit', 'list', '--limit', '3');
    expect(listed.out[0]).toMatch(/^1\t.*\tidentity\.created\tidentity:/);
    // Tamper with entry 2 as a superuser that switched the append-only triggers off.
    await db.pool.query(
      `BEGIN; SET LOCAL session_replication_role = replica; UPDATE audit_log SET data = '{"roles":["admin"]}' WHERE seq = 2; COMMIT;`,
    );
    const broken = await run('audit', 'verify');
    expect(broken.code).toBe(1);
    expect(broken.out[0]).toMatch(/^BROKEN at entry 2 \(hash_mismatch\)/);
    const json = await run('audit', 'verify', '--json');
    expect(JSON.parse(json.out[0] ?? '{}')).toMatchObject({
      ok: false,
      firstBreak: { seq: 2, kind: 'hash_mismatch' },
    });
  });
});
