import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../test/support/db.js';
import { WriteBatcher, type WriteJob } from './persist.js';

/**
 * The write batcher against PostgreSQL: group commit (one flush in flight, later jobs wait for it and
 * go together), a full batch going at once, and all-or-nothing per flush.
 */

let h: Awaited<ReturnType<typeof createTestDatabase>>;
/** A second session holding a lock on device_events, so a flush stays in flight until released. */
let blocker: pg.Client;

const job = (i: number): WriteJob => {
  const id = `AA-HGW-P${i}`;
  const at = new Date('2026-11-01T10:00:00Z');
  return {
    devices: [
      { id, oui: 'AA', serialNumber: `P${i}`, protocol: 'cwmp', productClass: 'HGW', lastContactAt: at },
    ],
    events: [{ deviceId: id, at, kind: 'inform', payload: { eventCodes: ['2 PERIODIC'] } }],
    values: [{ deviceId: id, path: 'Device.DeviceInfo.UpTime', type: 'unsignedInt', value: String(i), at }],
  };
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const count = async (table: string) =>
  Number((await h.pool.query<{ n: string }>(`SELECT count(*) n FROM ${table}`)).rows[0]!.n);

/** Backends of this database waiting for the blocker's lock: flushes in flight. */
async function flushesWaiting(): Promise<number> {
  const r = await blocker.query<{ n: string }>(
    `SELECT count(*) n FROM pg_locks l JOIN pg_database d ON d.oid = l.database
     WHERE d.datname = current_database() AND NOT l.granted`,
  );
  return Number(r.rows[0]!.n);
}
async function until(cond: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 200 && !(await cond()); i++) await sleep(10);
  expect(await cond()).toBe(true);
}

beforeAll(async () => {
  h = await createTestDatabase();
  blocker = new pg.Client({ connectionString: h.url });
  await blocker.connect();
});
afterAll(async () => {
  await blocker.end();
  await h.drop();
});
beforeEach(async () => {
  await h.pool.query('TRUNCATE devices, device_events CASCADE');
});
// A failed assertion must not leave the lock held for the tests after it.
afterEach(async () => {
  await blocker.query('ROLLBACK');
});

describe('WriteBatcher', () => {
  it('keeps one flush in flight: jobs handed in meanwhile wait and go together in the next one', async () => {
    const b = new WriteBatcher(h.db, { maxDelayMs: 5, maxJobs: 100, maxConcurrentFlushes: 4 });
    await blocker.query('BEGIN; LOCK TABLE device_events IN EXCLUSIVE MODE');
    const first = b.write(job(0));
    await until(async () => (await flushesWaiting()) === 1);
    // Each of these waits longer than maxDelayMs: without group commit each would start its own flush.
    const later: Array<Promise<void>> = [];
    for (let i = 1; i <= 3; i++) {
      later.push(b.write(job(i)));
      await sleep(30);
    }
    expect(await flushesWaiting()).toBe(1);
    expect(await count('devices')).toBe(0);
    await blocker.query('COMMIT');
    await Promise.all([first, ...later]);
    expect(b.stats).toMatchObject({ flushes: 2, jobs: 4, events: 4, failures: 0 });
    expect(await count('devices')).toBe(4);
    expect(await count('device_parameters')).toBe(4);
  });

  it('starts a full batch at once beside the flush in flight, up to maxConcurrentFlushes', async () => {
    const b = new WriteBatcher(h.db, { maxDelayMs: 5, maxJobs: 3, maxConcurrentFlushes: 2 });
    await blocker.query('BEGIN; LOCK TABLE device_events IN EXCLUSIVE MODE');
    const all = [b.write(job(0))];
    await until(async () => (await flushesWaiting()) === 1);
    for (let i = 1; i <= 3; i++) all.push(b.write(job(i)));
    await until(async () => (await flushesWaiting()) === 2);
    // A third full batch finds both flushes busy: it waits instead of opening a third.
    for (let i = 4; i <= 6; i++) all.push(b.write(job(i)));
    await sleep(50);
    expect(await flushesWaiting()).toBe(2);
    await blocker.query('COMMIT');
    await Promise.all(all);
    expect(b.stats).toMatchObject({ flushes: 3, jobs: 7 });
    expect(await count('devices')).toBe(7);
  });

  it('refuses a bad job alone when handed in, with the field at fault', async () => {
    const b = new WriteBatcher(h.db, { maxDelayMs: 5 });
    const bad = { ...job(1), devices: [{ ...job(1).devices![0]!, protocol: 'snmp' }] } as unknown as WriteJob;
    const results = await Promise.allSettled([b.write(job(0)), b.write(bad), b.write(job(2))]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(String((results[1] as PromiseRejectedResult).reason)).toMatch(/^Error: device 0: protocol: /);
    expect(await count('devices')).toBe(2);
    expect(b.stats.failures).toBe(0);
  });

  it('rejects every job of a failed flush and stores none of them', async () => {
    const b = new WriteBatcher(h.db, { maxDelayMs: 5 });
    // A value of a device that does not exist: the flush's transaction fails on the foreign key.
    const orphan: WriteJob = { values: [{ ...job(9).values![0]!, deviceId: 'AA-HGW-NOSUCH' }] };
    const results = await Promise.allSettled([b.write(job(0)), b.write(orphan), b.write(job(2))]);
    expect(results.every((r) => r.status === 'rejected')).toBe(true);
    expect(String((results[0] as PromiseRejectedResult).reason)).toMatch(/foreign key/);
    expect(await count('devices')).toBe(0);
    expect(await count('device_events')).toBe(0);
    expect(b.stats).toMatchObject({ flushes: 0, failures: 1 });
    // The pool's connections are fine afterwards, prepared statements included.
    await b.write(job(3));
    expect(await count('devices')).toBe(1);
  });

  it('merges as the fleet repository does: absent fields keep their value, nothing moves backwards', async () => {
    const b = new WriteBatcher(h.db, { maxDelayMs: 5 });
    const id = 'AA-HGW-M1';
    const t1 = new Date('2026-11-01T10:00:00Z');
    const t0 = new Date('2026-11-01T09:00:00Z');
    await b.write({
      devices: [
        {
          id,
          oui: 'AA',
          serialNumber: 'M1',
          protocol: 'cwmp',
          manufacturer: 'Acme "quoted" \\ back,slash {brace}',
          softwareVersion: '2.1.0',
          lastContactAt: t1,
          tags: ['pilot', 'a,b "c"'],
          dataModelRoot: 'InternetGatewayDevice.',
        },
      ],
      events: [
        { deviceId: id, at: t1, kind: 'inform', payload: { eventCodes: ['1 BOOT'], nested: { n: 1 } } },
      ],
      values: [
        { deviceId: id, path: 'Device.DeviceInfo.UpTime', type: 'unsignedInt', value: '42', at: t1 },
        {
          deviceId: id,
          path: 'Device.Time.CurrentLocalTime',
          type: 'dateTime',
          value: '2026-11-01T10:00:00Z',
          at: t1,
        },
        { deviceId: id, path: 'Device.X.Enable', type: 'boolean', value: 'true', at: t1 },
      ],
      endpoints: [
        { deviceId: id, protocol: 'cwmp', connectionRequestUrl: 'http://10.0.0.1:7547/cr', lastInformAt: t1 },
      ],
    });
    // An older report without manufacturer, tags or root, and a stale value.
    await b.write({
      devices: [{ id, oui: 'AA', serialNumber: 'M1', protocol: 'cwmp', lastContactAt: t0 }],
      values: [{ deviceId: id, path: 'Device.DeviceInfo.UpTime', type: 'unsignedInt', value: '7', at: t0 }],
      endpoints: [{ deviceId: id, protocol: 'cwmp', cwmpVersion: '1.4', lastInformAt: t0 }],
    });
    const d = (
      await h.pool.query(
        `SELECT manufacturer, software_version, software_version_key, last_contact_at, tags, data_model_root FROM devices WHERE id = $1`,
        [id],
      )
    ).rows[0];
    expect(d).toEqual({
      manufacturer: 'Acme "quoted" \\ back,slash {brace}',
      software_version: '2.1.0',
      software_version_key: expect.any(String),
      last_contact_at: t1,
      tags: ['pilot', 'a,b "c"'],
      data_model_root: 'InternetGatewayDevice.',
    });
    const values = await h.pool.query(
      `SELECT path, value, value_num::float8 AS num, value_time, value_bool FROM device_parameters WHERE device_id = $1 ORDER BY path`,
      [id],
    );
    expect(values.rows).toEqual([
      { path: 'Device.DeviceInfo.UpTime', value: '42', num: 42, value_time: null, value_bool: null },
      {
        path: 'Device.Time.CurrentLocalTime',
        value: '2026-11-01T10:00:00Z',
        num: null,
        value_time: t1,
        value_bool: null,
      },
      { path: 'Device.X.Enable', value: 'true', num: null, value_time: null, value_bool: true },
    ]);
    const ev = await h.pool.query(`SELECT kind, at, payload FROM device_events WHERE device_id = $1`, [id]);
    expect(ev.rows).toEqual([
      { kind: 'inform', at: t1, payload: { eventCodes: ['1 BOOT'], nested: { n: 1 } } },
    ]);
    const ep = await h.pool.query(
      `SELECT connection_request_url, cwmp_version, last_inform_at FROM executor_endpoints WHERE device_id = $1`,
      [id],
    );
    expect(ep.rows).toEqual([
      { connection_request_url: 'http://10.0.0.1:7547/cr', cwmp_version: '1.4', last_inform_at: t1 },
    ]);
  });

  it('writes a flush of one table alone (events, values or endpoints of known devices)', async () => {
    const b = new WriteBatcher(h.db, { maxDelayMs: 1 });
    const { devices, events, values } = job(1);
    await b.write({ devices });
    await b.write({ events });
    await b.write({ values });
    await b.write({ endpoints: [{ deviceId: devices![0]!.id, protocol: 'cwmp', cwmpVersion: '1.2' }] });
    expect(b.stats).toMatchObject({ flushes: 4, jobs: 4, failures: 0 });
    expect(await count('device_events')).toBe(1);
    expect(await count('device_parameters')).toBe(1);
    const ep = await h.pool.query(`SELECT cwmp_version FROM executor_endpoints WHERE device_id = $1`, [
      devices![0]!.id,
    ]);
    expect(ep.rows).toEqual([{ cwmp_version: '1.2' }]);
  });

  it('writes a flush as one statement whose rollup triggers see every table it wrote', async () => {
    const b = new WriteBatcher(h.db, { maxDelayMs: 50 });
    // Rows with and without tags go in the same flush as two inserts into devices.
    const tagged = job(2);
    tagged.devices![0]!.tags = ['pilot'];
    await Promise.all([b.write(job(1)), b.write(tagged), b.write(job(3))]);
    expect(b.stats.flushes).toBe(1);
    const counts = await h.pool.query<{ n: string }>(
      `SELECT coalesce(sum(n), 0) n FROM device_counts WHERE grain = 'device'`,
    );
    expect(Number(counts.rows[0]!.n)).toBe(3);
    const sums = await h.pool.query<{ n: string; s: string }>(
      `SELECT sum(n) n, sum(s) s FROM parameter_sums WHERE path = 'Device.DeviceInfo.UpTime'`,
    );
    expect(sums.rows[0]).toEqual({ n: '3', s: '6' });
    expect((await h.pool.query(`SELECT tags FROM devices ORDER BY id`)).rows).toEqual([
      { tags: [] },
      { tags: ['pilot'] },
      { tags: [] },
    ]);
  });
});
