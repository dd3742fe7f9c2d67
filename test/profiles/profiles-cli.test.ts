import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { Client, Connection } from '@temporalio/client';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import type { CliIo } from '../../cli/io.js';
import { type ProfilesTemporal, profilesCommand, RECONCILE_SCHEDULE_ID } from '../../cli/profiles.js';
import { connect } from '../../db/client.js';
import { upsertDevices } from '../../fleet/devices.js';
import { createTestDatabase } from '../support/db.js';

const SSID = 'Device.WiFi.SSID.1.SSID';

describe('fleetbrain profiles', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let dir: string;
  beforeAll(async () => {
    db = await createTestDatabase();
    dir = mkdtempSync(path.join(os.tmpdir(), 'fb-profiles-cli-'));
    await upsertDevices(
      db.db,
      ['00D09E-HGW-A', '00D09E-HGW-B'].map((id) => ({
        id,
        oui: '00D09E',
        serialNumber: id.slice(-1),
        protocol: 'cwmp' as const,
        productClass: 'HGW',
        softwareVersion: '1.0',
      })),
    );
  });
  afterAll(async () => {
    await db?.drop();
    rmSync(dir, { recursive: true, force: true });
  });
  afterEach(() => {
    process.exitCode = 0;
  });

  const file = (name: string, body: unknown) => {
    const f = path.join(dir, name);
    writeFileSync(f, JSON.stringify(body));
    return f;
  };

  const temporal: ProfilesTemporal = {
    async open() {
      const connection = await Connection.connect({ address: inject('temporalAddress') });
      return {
        client: new Client({ connection, namespace: 'default' }),
        taskQueue: 'profiles-cli-test',
        close: () => connection.close(),
      };
    },
  };

  async function run(...args: string[]) {
    const out: string[] = [];
    const err: string[] = [];
    const io: CliIo = {
      out: (l) => out.push(l),
      err: (l) => err.push(l),
      openDb: () => connect(db.url, { max: 2 }),
    };
    const program = new Command('fleetbrain')
      .exitOverride()
      .configureOutput({ writeErr: (s) => err.push(s) });
    profilesCommand(program, io, temporal);
    process.exitCode = 0;
    await program.parseAsync(['node', 'fleetbrain', ...args]);
    const code = process.exitCode ?? 0;
    process.exitCode = 0;
    return { out, err, code };
  }

  it('creates, updates, lists, shows history and deletes; bad input is one line, exit 2, nothing stored', async () => {
    const bad = await run(
      'profiles',
      'create',
      file('bad.json', { name: 'x', owner: 'o', selector: { all: true }, parameters: [] }),
    );
    expect(bad.code).toBe(2);
    expect(bad.err).toEqual([expect.stringMatching(/^fleetbrain profiles: profile parameters: /)]);
    const badSel = await run(
      'profiles',
      'create',
      file('badsel.json', {
        name: 'x',
        owner: 'o',
        selector: { field: 'nope', op: 'eq', value: 1 },
        parameters: [{ path: SSID, value: 'a' }],
      }),
    );
    expect(badSel.code).toBe(2);
    expect((await run('profiles', 'list')).out).toEqual([]);
    const base = {
      name: 'base',
      owner: 'netops',
      selector: { all: true },
      parameters: [{ path: SSID, value: 'fleet' }],
    };
    expect((await run('profiles', 'create', file('base.json', base))).out).toEqual(['created base v1']);
    expect((await run('profiles', 'create', file('base.json', base))).code).toBe(2);
    const other = { ...base, name: 'other', priority: 3, parameters: [{ path: SSID, value: 'other' }] };
    await run('profiles', 'create', file('other.json', other));
    expect(
      (await run('profiles', 'update', file('base2.json', { ...base, priority: 5 }), '--expect-version', '1'))
        .out,
    ).toEqual(['updated base v2']);
    expect((await run('profiles', 'update', file('base3.json', base), '--expect-version', '1')).code).toBe(2);
    const list = await run('profiles', 'list');
    expect(list.out.map((l) => l.split('\t').slice(0, 3))).toEqual([
      ['base', 'v2', 'priority=5'],
      ['other', 'v1', 'priority=3'],
    ]);
    const eff = await run('profiles', 'effective', '00D09E-HGW-A');
    expect(eff.out).toEqual([[SSID, 'fleet', 'resolved', 'base', '-', 'DRIFT'].join('\t')]);
    const conflicts = await run('profiles', 'conflicts');
    expect(conflicts.code).toBe(0); // resolved by priority
    expect(conflicts.out[1]).toContain('base=fleet vs other=other');
    expect(
      (
        await run(
          'profiles',
          'check-change',
          file('cr.json', { selector: { all: true }, items: [{ path: SSID, value: 'x' }] }),
        )
      ).code,
    ).toBe(1);
    expect((await run('profiles', 'precedence', 'newest,newest')).code).toBe(2);
    expect((await run('profiles', 'precedence', 'newest')).out).toEqual(['precedence: newest']);
    expect((await run('profiles', 'delete', 'other')).out).toEqual(['deleted other (v2)']);
    expect((await run('profiles', 'history', 'base')).out.map((l) => l.split('\t').slice(0, 2))).toEqual([
      ['v1', 'created'],
      ['v2', 'updated'],
    ]);
    expect((await run('profiles', 'reconcile', 'status')).out).toEqual([]);
  });

  it('creates, updates and deletes the reconcile schedule (Temporal dev server)', async () => {
    expect((await run('profiles', 'reconcile', 'schedule', '--every', '5m')).out).toEqual([
      `created schedule ${RECONCILE_SCHEDULE_ID}: every 300s`,
    ]);
    expect((await run('profiles', 'reconcile', 'schedule', '--every', '1h')).out).toEqual([
      `updated schedule ${RECONCILE_SCHEDULE_ID}: every 3600s`,
    ]);
    const t = await temporal.open();
    try {
      const d = await t.client.schedule.getHandle(RECONCILE_SCHEDULE_ID).describe();
      expect(d.action).toMatchObject({ type: 'startWorkflow', workflowType: 'profileReconcile' });
      expect(d.spec.intervals?.[0]?.every).toBe(3_600_000);
    } finally {
      await t.close();
    }
    await expect(run('profiles', 'reconcile', 'schedule', '--every', 'soon')).rejects.toThrow(/duration/);
    expect((await run('profiles', 'reconcile', 'schedule', '--delete')).out).toEqual([
      `deleted schedule ${RECONCILE_SCHEDULE_ID}`,
    ]);
  });
});
