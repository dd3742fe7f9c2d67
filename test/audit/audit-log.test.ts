import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { appendAudit, appendAuditBatch, auditHead, verifyAudit } from '../../db/audit.js';
import { connect } from '../../db/client.js';
import { createTestDatabase } from '../support/db.js';

type TestDb = Awaited<ReturnType<typeof createTestDatabase>>;

async function seed(db: TestDb, n: number) {
  for (let i = 1; i <= n; i++) {
    await appendAudit(db.db, {
      actor: { id: 'alice', kind: 'user' },
      action: 'proposal.created',
      subject: { kind: 'change_request', id: `cr-${i}` },
      data: { i, values: { 'Device.WiFi.SSID.1.SSID': `net-${i}` } },
    });
  }
}

/** Tampering as a superuser that first switches the append-only triggers off for its session. */
async function tamper(db: TestDb, sql: string) {
  const c = await db.pool.connect();
  try {
    await c.query('BEGIN');
    await c.query('SET LOCAL session_replication_role = replica');
    await c.query(sql);
    await c.query('COMMIT');
  } finally {
    c.release();
  }
}

describe('hash-chained audit log', () => {
  let db: TestDb;
  beforeEach(async () => {
    db = await createTestDatabase();
    return () => db.drop();
  });

  it('chains concurrent appends into one line that verifies', async () => {
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        appendAudit(db.db, {
          actor: { id: 'planner', kind: 'service' },
          action: 'policy.decided',
          subject: { kind: 'rollout', id: `r-${i % 3}` },
          data: { allow: true, n: i, ratio: 0.1 * i },
        }),
      ),
    );
    const result = await verifyAudit(db.db, { batchSize: 7 });
    expect(result).toMatchObject({ ok: true, entries: 20 });
    const { rows } = await db.pool.query('SELECT seq FROM audit_log ORDER BY seq');
    expect(rows.map((r) => Number(r.seq))).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    const head = await auditHead(db.db);
    expect(head.seq).toBe(20);
    expect(result.ok && result.head.hash).toBe(head.hash);
  });

  it('appends a batch in order in one transaction, and rolls back with the caller', async () => {
    await seed(db, 1);
    const rows = await appendAuditBatch(
      db.db,
      ['rollout.wave_started', 'rollout.halted', 'rollout.rolled_back'].map((action) => ({
        actor: { id: 'wf', kind: 'system' as const },
        action,
        subject: { kind: 'rollout', id: 'r1' },
      })),
    );
    expect(rows.map((r) => r.seq)).toEqual([2, 3, 4]);
    await expect(
      db.db.transaction(async (tx) => {
        await appendAudit(tx, {
          actor: { id: 'x', kind: 'user' },
          action: 'proposal.created',
          subject: { kind: 'x', id: '1' },
        });
        throw new Error('caller fails');
      }),
    ).rejects.toThrow('caller fails');
    expect(await verifyAudit(db.db)).toMatchObject({ ok: true, entries: 4 });
  });

  it('appends once per idempotency key', async () => {
    const entry = {
      actor: { id: 'wf', kind: 'system' as const },
      action: 'approval.granted',
      subject: { kind: 'rollout', id: 'r1' },
      idempotencyKey: 'r1/plan/vote/a1',
    };
    const a = await appendAudit(db.db, entry);
    const b = await appendAudit(db.db, entry);
    expect(b.seq).toBe(a.seq);
    expect((await auditHead(db.db)).seq).toBe(1);
  });

  it('refuses UPDATE, DELETE and TRUNCATE even to the table owner while the append-only triggers are on', async () => {
    await seed(db, 2);
    for (const statement of [
      'UPDATE audit_log SET action = $$x.y$$',
      'DELETE FROM audit_log',
      'TRUNCATE audit_log',
    ]) {
      await expect(db.pool.query(statement)).rejects.toThrow(/append-only/);
    }
    expect((await verifyAudit(db.db)).entries).toBe(2);
  });

  it('finds a row edited directly in the database', async () => {
    await seed(db, 5);
    expect((await verifyAudit(db.db)).ok).toBe(true);
    await tamper(db, `UPDATE audit_log SET data = jsonb_set(data, '{i}', '99') WHERE seq = 3`);
    expect(await verifyAudit(db.db)).toMatchObject({
      ok: false,
      entries: 2,
      firstBreak: { seq: 3, kind: 'hash_mismatch' },
    });
  });

  it('finds a deleted row', async () => {
    await seed(db, 5);
    await tamper(db, 'DELETE FROM audit_log WHERE seq = 2');
    expect(await verifyAudit(db.db)).toMatchObject({ ok: false, firstBreak: { seq: 3, kind: 'seq_gap' } });
  });

  it('finds a deleted row even when the rest was renumbered to hide the gap', async () => {
    await seed(db, 5);
    await tamper(db, 'DELETE FROM audit_log WHERE seq = 2; UPDATE audit_log SET seq = seq - 1 WHERE seq > 2');
    const result = await verifyAudit(db.db);
    expect(result).toMatchObject({ ok: false, firstBreak: { seq: 2, kind: 'prev_hash_mismatch' } });
  });

  it('finds reordered rows', async () => {
    await seed(db, 5);
    // Swap entries 2 and 4 (through a free range, the primary key forbids a direct swap).
    await tamper(db, 'UPDATE audit_log SET seq = seq + 1000 WHERE seq IN (2, 4)');
    await tamper(
      db,
      'UPDATE audit_log SET seq = CASE seq WHEN 1002 THEN 4 ELSE 2 END WHERE seq IN (1002, 1004)',
    );
    expect(await verifyAudit(db.db)).toMatchObject({
      ok: false,
      firstBreak: { seq: 2, kind: 'prev_hash_mismatch' },
    });
  });

  it('finds deleted newest entries against an exported head', async () => {
    await seed(db, 4);
    const head = await auditHead(db.db);
    await tamper(db, 'DELETE FROM audit_log WHERE seq = 4');
    // The chain alone is intact; only the exported head shows the loss.
    expect((await verifyAudit(db.db)).ok).toBe(true);
    expect(await verifyAudit(db.db, { expectHead: head })).toMatchObject({
      ok: false,
      firstBreak: { kind: 'truncated' },
    });
  });

  it('finds a rewritten history against an exported head', async () => {
    await seed(db, 3);
    const head = await auditHead(db.db);
    // A forger rebuilds the whole chain from scratch with different content.
    await tamper(db, 'DELETE FROM audit_log');
    for (let i = 0; i < 3; i++) {
      await appendAudit(db.db, {
        actor: { id: 'mallory', kind: 'user' },
        action: 'proposal.created',
        subject: { kind: 'x', id: `${i}` },
      });
    }
    expect((await verifyAudit(db.db)).ok).toBe(true);
    expect(await verifyAudit(db.db, { expectHead: head })).toMatchObject({
      ok: false,
      firstBreak: { seq: 3, kind: 'head_mismatch' },
    });
  });
});

describe('the application database role', () => {
  let db: TestDb;
  let app: ReturnType<typeof connect>;
  const login = `fb_app_${randomBytes(4).toString('hex')}`;
  beforeAll(async () => {
    db = await createTestDatabase();
    await seed(db, 2);
    // Deployments log in as a member of the group role the migration created; so does this test.
    await db.pool.query(`CREATE ROLE ${login} LOGIN IN ROLE fleetbrain_app`);
    const url = new URL(db.url);
    url.username = login;
    url.password = '';
    app = connect(url.toString(), { max: 2 });
  });
  afterAll(async () => {
    await app?.close();
    await db?.drop();
    const admin = new pg.Client({ connectionString: inject('pgAdminUrl') });
    await admin.connect();
    await admin.query(`DROP ROLE IF EXISTS ${login}`);
    await admin.end();
  });

  it('connects as the application role', async () => {
    const { rows } = await app.pool.query('SELECT current_user AS u');
    expect(rows[0].u).toBe(login);
  });

  it('can read and append', async () => {
    const row = await appendAudit(app.db, {
      actor: { id: 'bob', kind: 'user' },
      action: 'approval.granted',
      subject: { kind: 'rollout', id: 'r9' },
    });
    expect(row.seq).toBe(3);
    expect((await verifyAudit(app.db)).ok).toBe(true);
  });

  it.each([
    ['UPDATE', `UPDATE audit_log SET action = 'x.y' WHERE seq = 1`],
    ['DELETE', 'DELETE FROM audit_log WHERE seq = 1'],
    ['TRUNCATE', 'TRUNCATE audit_log'],
  ])('%s is refused', async (_op, statement) => {
    await expect(app.pool.query(statement)).rejects.toMatchObject({ code: '42501' });
  });

  it('still uses the other tables normally', async () => {
    await app.pool.query(`INSERT INTO identities (name, kind, roles) VALUES ('zed', 'user', '{viewer}')`);
    const r = await app.pool.query(`UPDATE identities SET display_name = 'Zed' WHERE name = 'zed'`);
    expect(r.rowCount).toBe(1);
  });
});
