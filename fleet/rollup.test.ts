import pg from 'pg';
import { type SQL, sql } from 'drizzle-orm';
import { PgDialect } from 'drizzle-orm/pg-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../test/support/db.js';
import { coreCatalog } from './catalog.js';
import { upsertDevices } from './devices.js';
import { appendEvents, type DeviceEvent } from './events.js';
import { parseQuery } from './query.js';
import { compileQuery, type QueryResult, runQuery } from './query-compile.js';
import { updateLastValues } from './parameters.js';
import { compactRollups } from './rollup.js';
import { versionKey } from './version-key.js';

/**
 * The exact cheaper sources of fleet/rollup.ts: the device_counts and parameter_sums rollups must equal
 * a GROUP BY over devices (and their numeric parameters) after every kind of write, and the questions answered from it (or from the silent devices'
 * index ranges, or the per-device event counts) must equal hand-written SQL over the raw tables.
 */

const NOW = new Date('2026-06-01T12:00:00Z');
const nowP = NOW.toISOString();
const catalog = coreCatalog();
let h: Awaited<ReturnType<typeof createTestDatabase>>;
const dialect = new PgDialect();
const text = (s: SQL) => dialect.sqlToQuery(s).sql;

const DEVICE_COLS =
  'manufacturer, product_class, model_name, hardware_version, software_version, software_version_key, protocol, region, service_tier';
const PON_COLS = 'olt, pon_port, bng';

/** device_counts (summed deltas) against the same counts computed from devices, both grains. */
async function rollupMatchesDevices(): Promise<void> {
  const got = await h.db.execute(
    sql.raw(`select 'device' g, ${DEVICE_COLS}, null olt, null pon_port, null bng, sum(n)::int n from device_counts
      where grain = 'device' group by ${DEVICE_COLS} having sum(n) <> 0
      union all select 'pon', ${DEVICE_COLS.replace(/\w+/g, 'null')}, ${PON_COLS}, sum(n)::int from device_counts
      where grain = 'pon' group by ${PON_COLS} having sum(n) <> 0 order by 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13`),
  );
  const want = await h.db.execute(
    sql.raw(`select 'device' g, ${DEVICE_COLS}, null olt, null pon_port, null bng, count(*)::int n from devices
      group by ${DEVICE_COLS}
      union all select 'pon', ${DEVICE_COLS.replace(/\w+/g, 'null')}, ${PON_COLS}, count(*)::int from devices
      group by ${PON_COLS} order by 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13`),
  );
  expect(got.rows).toEqual(want.rows);
  expect(got.rows.length).toBeGreaterThan(2);
}
const rollupRows = async () =>
  Number((await h.db.execute<{ n: string }>(sql`select count(*) n from device_counts`)).rows[0]?.n);

const MODELS = ['HG8245', 'F660', 'XGS'];
const VERSIONS = ['2.9.1', '3.0.0', '3.1.2', '3.10.0', '3.2.0'];
const dev = (i: number, over: Record<string, unknown> = {}) => ({
  id: `R${String(i).padStart(3, '0')}`,
  oui: 'AA',
  serialNumber: `S${i}`,
  protocol: i % 3 === 0 ? ('usp' as const) : ('cwmp' as const),
  manufacturer: i % 2 ? 'Acme' : 'Zeta',
  productClass: MODELS[i % 3] as string,
  softwareVersion: VERSIONS[i % 5] as string,
  lastContactAt: new Date(NOW.getTime() - (i % 7 === 0 ? 10 * 86_400_000 : 60_000)),
  periodicInformIntervalS: i % 11 === 0 ? 300 : 86_400,
  ...over,
});

beforeAll(async () => {
  h = await createTestDatabase();
  await upsertDevices(
    h.db,
    Array.from({ length: 80 }, (_, i) => dev(i)),
  );
  await h.db.execute(sql`update devices set
    region = case when substr(id, 2)::int % 9 = 0 then null when substr(id, 2)::int % 2 = 0 then 'north' else 'south' end,
    olt = 'olt-' || (substr(id, 2)::int % 4), pon_port = '0/1/' || (substr(id, 2)::int % 3),
    service_tier = case when substr(id, 2)::int % 5 = 0 then 'gold' end`);
  await h.db.execute(sql`update devices set last_contact_at = null where id in ('R005', 'R022')`);
  await h.db.execute(sql`update devices set periodic_inform_interval_s = null where id in ('R022', 'R030')`);
});
afterAll(() => h?.drop());

describe('device_counts rollup', () => {
  it('equals the devices table after inserts, upserts, updates, deletes and truncate', async () => {
    await rollupMatchesDevices();
    // An upsert that only moves last contact writes nothing to the rollup.
    const before = await rollupRows();
    await upsertDevices(h.db, [dev(1, { lastContactAt: new Date(NOW.getTime() - 1000) })]);
    await h.db.execute(sql`update devices set last_contact_at = last_contact_at - interval '1 minute'`);
    expect(await rollupRows()).toBe(before);
    // Firmware upgrades, a model change, new devices, topology moves, NULLs, a delete.
    await upsertDevices(h.db, [
      dev(2, { softwareVersion: '4.0.0' }),
      dev(4, { softwareVersion: '4.0.0' }),
      dev(6, { productClass: 'NEW' }),
      dev(200),
      dev(201, { softwareVersion: '1.0' }),
    ]);
    await h.db.execute(sql`update devices set region = null, olt = 'olt-9' where id in ('R010', 'R011')`);
    await h.db.execute(sql`update devices set hardware_version = 'B' where substr(id, 2)::int % 4 = 1`);
    await h.db.execute(sql`delete from devices where id in ('R012', 'R013')`);
    await rollupMatchesDevices();
    // A rolled-back write leaves no trace.
    await h.db
      .transaction(async (tx) => {
        await tx.execute(sql`update devices set product_class = 'GONE'`);
        throw new Error('roll back');
      })
      .catch(() => {});
    await rollupMatchesDevices();
    // Compaction folds the appended deltas to one row per live combination, with the same sums.
    const live = (await compactRollups(h.db)).deviceCounts;
    expect(await rollupRows()).toBe(live);
    expect((await h.db.execute(sql`select count(*)::int n from device_counts where n <= 0`)).rows).toEqual([
      { n: 0 },
    ]);
    await rollupMatchesDevices();
  });

  it('stays exact under concurrent writers touching the same combinations', async () => {
    const waves = Array.from({ length: 6 }, (_, w) =>
      h.db.transaction(async (tx) => {
        for (let k = 0; k < 5; k++)
          await tx.execute(sql`update devices set software_version = ${VERSIONS[(w + k) % 5]},
            software_version_key = ${versionKey(VERSIONS[(w + k) % 5] as string)}
            where substr(id, 2)::int % 6 = ${w}`);
      }),
    );
    await Promise.all(waves);
    await rollupMatchesDevices();
  });

  it('is emptied by TRUNCATE and rebuilt by the inserts that follow', async () => {
    const t = await createTestDatabase();
    try {
      await upsertDevices(t.db, [dev(1), dev(2)]);
      await t.db.execute(sql`truncate devices cascade`);
      expect((await t.db.execute(sql`select count(*)::int n from device_counts`)).rows).toEqual([{ n: 0 }]);
      await upsertDevices(t.db, [dev(3)]);
      const r = await t.db.execute(sql`select grain, n::int n from device_counts order by 1`);
      expect(r.rows).toEqual([
        { grain: 'device', n: 1 },
        { grain: 'pon', n: 1 },
      ]);
    } finally {
      await t.drop();
    }
  });
});

/** parameter_sums (summed deltas) against count and sum of numeric values joined to their devices. */
async function sumsMatchParameters(): Promise<void> {
  const got = await h.db.execute(
    sql.raw(`select path, ${DEVICE_COLS}, sum(n)::int n, sum(s)::text s from parameter_sums
      group by path, ${DEVICE_COLS} having sum(n) <> 0 or sum(s) <> 0
      order by 1, 2, 3, 4, 5, 6, 7, 8, 9, 10`),
  );
  const want = await h.db.execute(
    sql.raw(`select p.path, ${DEVICE_COLS.replace(/(\w+)/g, 'd.$1')}, count(*)::int n, sum(p.value_num)::text s
      from device_parameters p join devices d on d.id = p.device_id where p.value_num is not null
      group by 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 order by 1, 2, 3, 4, 5, 6, 7, 8, 9, 10`),
  );
  expect(got.rows).toEqual(want.rows);
}
const sumsRows = async () =>
  Number((await h.db.execute<{ n: string }>(sql`select count(*) n from parameter_sums`)).rows[0]?.n);
const UPTIME = 'Device.DeviceInfo.UpTime';
const CHANNEL = 'Device.WiFi.Radio.1.Channel';
const CPU = 'Device.DeviceInfo.ProcessStatus.CPUUsage';
const values = (ids: number[], path: string, v: (i: number) => string, type = 'unsignedInt') =>
  ids.map((i) => ({ deviceId: dev(i).id, path, type: type as 'unsignedInt', value: v(i) }));
const range = (a: number, b: number) => Array.from({ length: b - a }, (_, k) => a + k);

describe('parameter_sums rollup', () => {
  it('equals the numeric values joined to their devices after every kind of write', async () => {
    await updateLastValues(h.db, [
      ...values(range(20, 80), UPTIME, (i) => String(1000 * i + 7)),
      ...values(range(20, 80), CHANNEL, (i) => String([1, 6, 11][i % 3])),
      ...values(range(20, 80), 'Device.DeviceInfo.SoftwareVersion', () => '3.0.0', 'string'),
      ...values(range(20, 30), CPU, (i) => String(i % 7)),
      ...values(range(30, 34), 'Device.X.Load', (i) => `${i}.25`, 'decimal'),
    ]);
    await sumsMatchParameters();
    expect(await sumsRows()).toBeGreaterThan(10);
    // Rewriting unchanged values (every inform does) appends nothing.
    const before = await sumsRows();
    await updateLastValues(
      h.db,
      values(range(20, 80), UPTIME, (i) => String(1000 * i + 7)),
    );
    expect(await sumsRows()).toBe(before);
    // Changed values, a numeric value that no longer parses (its text is kept, the number is not).
    await updateLastValues(h.db, [
      ...values(range(20, 50), UPTIME, (i) => String(5000 * i)),
      ...values([23, 24], CHANNEL, () => 'auto'),
    ]);
    await sumsMatchParameters();
    // Devices move: firmware upgrades, a model change, a region move; new devices with values.
    await upsertDevices(h.db, [dev(22, { softwareVersion: '9.9.9' }), dev(26, { productClass: 'MOVED' })]);
    await h.db.execute(sql`update devices set region = 'east' where substr(id, 2)::int % 5 = 1`);
    await upsertDevices(h.db, [dev(300), dev(301)]);
    await updateLastValues(
      h.db,
      values([300, 301], UPTIME, () => '42'),
    );
    await sumsMatchParameters();
    // Deleted values, deleted devices (their values cascade), a rolled-back write.
    await h.db.execute(
      sql`delete from device_parameters where path = ${CHANNEL} and device_id in ('R027', 'R028')`,
    );
    await h.db.execute(sql`delete from devices where id in ('R029', 'R300')`);
    await h.db
      .transaction(async (tx) => {
        await updateLastValues(
          tx,
          values(range(20, 80), UPTIME, () => '1'),
        );
        await tx.execute(sql`update devices set product_class = 'GONE'`);
        throw new Error('roll back');
      })
      .catch(() => {});
    await sumsMatchParameters();
    // Compaction leaves one row per live combination, with the same sums.
    const live = (await compactRollups(h.db)).parameterSums;
    expect(await sumsRows()).toBe(live);
    await sumsMatchParameters();
  });

  it('stays exact when values and their devices’ counted columns change in concurrent transactions', async () => {
    // Each pair races a firmware change of a set of devices against new values of the same devices;
    // whichever commits first, every value ends up under its device's final firmware.
    for (let round = 0; round < 4; round++) {
      const ids = range(30 + round * 10, 40 + round * 10);
      const idList = sql.join(
        ids.map((i) => sql`${dev(i).id}`),
        sql`, `,
      );
      const version = VERSIONS[round] as string;
      // Device rows locked in key order, as every writer of devices does (db/schema/fleet.ts).
      const upgrade = h.db.transaction(async (tx) => {
        await tx.execute(sql`update devices set software_version = ${version},
          software_version_key = ${versionKey(version)}
          where id in (select id from devices where id in (${idList}) order by id for no key update)`);
        await tx.execute(sql`select pg_sleep(0.05)`);
      });
      const write = h.db.transaction(async (tx) => {
        await updateLastValues(tx, [
          ...values(ids, UPTIME, (i) => String(round * 100 + i)),
          ...values(ids, CPU, (i) => String(round + i)),
        ]);
        await tx.execute(sql`select pg_sleep(0.05)`);
      });
      await Promise.all(round % 2 ? [upgrade, write] : [write, upgrade]);
    }
    await sumsMatchParameters();
  });

  it('is emptied with its values by TRUNCATE', async () => {
    const t = await createTestDatabase();
    try {
      await upsertDevices(t.db, [dev(1), dev(2)]);
      await updateLastValues(
        t.db,
        values([1, 2], UPTIME, () => '5'),
      );
      await t.db.execute(sql`truncate device_parameters`);
      expect((await t.db.execute(sql`select count(*)::int n from parameter_sums`)).rows).toEqual([{ n: 0 }]);
      await updateLastValues(
        t.db,
        values([1], UPTIME, () => '8'),
      );
      expect((await t.db.execute(sql`select n::int, s::int from parameter_sums`)).rows).toEqual([
        { n: 1, s: 8 },
      ]);
    } finally {
      await t.drop();
    }
  });

  it('reads devices and values by key, with the trigger plans made while the fleet was one device', async () => {
    // A storm of new CPEs: a session's plans of the trigger statements are made on an empty fleet
    // and kept while the fleet grows; auto_explain (as notices to this client) shows what they read.
    const t = await createTestDatabase();
    const c = new pg.Client({ connectionString: t.url });
    const plans: string[] = [];
    c.on('notice', (n) => plans.push(n.message ?? ''));
    try {
      await c.connect();
      await c.query(`LOAD 'auto_explain'`);
      await c.query(`SET plan_cache_mode = force_generic_plan`);
      const insert = (ids: number[]) =>
        c.query(
          `WITH d AS (INSERT INTO devices (id, oui, serial_number, protocol)
             SELECT 'G' || i, 'AA', 'G' || i, 'cwmp' FROM unnest($1::int[]) i RETURNING id)
           INSERT INTO device_parameters (device_id, path, type, value, value_num)
             SELECT id, $2, 'unsignedInt', '300', 300 FROM d`,
          [ids, 'Device.ManagementServer.PeriodicInformInterval'],
        );
      await insert([0]);
      // A device moved while the fleet is one device: the session's plan of the move is made then.
      await c.query(`UPDATE devices SET software_version = '1.0' WHERE id = 'G0'`);
      await c.query(`INSERT INTO devices (id, oui, serial_number, protocol)
        SELECT 'F' || i, 'AA', 'F' || i, 'cwmp' FROM generate_series(1, 20000) i`);
      await c.query(`SET auto_explain.log_min_duration = 0`);
      await c.query(`SET auto_explain.log_nested_statements = on`);
      await c.query(`SET auto_explain.log_level = notice`);
      await insert(range(1, 101));
      const sums = plans.filter((p) => p.includes('Insert on parameter_sums'));
      expect(sums).toHaveLength(1);
      expect(sums[0]).toMatch(/Index Scan using devices_pkey on devices/);
      expect(sums[0]).not.toMatch(/Seq Scan on devices/);
      const r = await c.query(`SELECT sum(n)::int n, sum(s)::int s FROM parameter_sums`);
      expect(r.rows).toEqual([{ n: 101, s: 30300 }]);

      // A firmware wave: devices whose counted columns change take their values along, read by key.
      plans.length = 0;
      await c.query(`INSERT INTO device_parameters (device_id, path, type, value, value_num)
        SELECT 'F' || i, 'Device.DeviceInfo.UpTime', 'unsignedInt', '1', 1 FROM generate_series(1, 20000) i`);
      await c.query(`UPDATE devices SET software_version = '2.0' WHERE id IN ('G1', 'G2', 'G3')`);
      const moves = plans.filter((p) => p.includes('WITH moved AS'));
      expect(moves).toHaveLength(1);
      expect(moves[0]).not.toMatch(/Seq Scan on device_parameters/);
      const v = await c.query(`SELECT software_version v, sum(n)::int n FROM parameter_sums
        WHERE path LIKE '%Interval' GROUP BY 1 HAVING sum(n) <> 0 ORDER BY 1`);
      expect(v.rows).toEqual([
        { v: '1.0', n: 1 },
        { v: '2.0', n: 3 },
        { v: null, n: 97 },
      ]);
    } finally {
      await c.end();
      await t.drop();
    }
  });
});

const canon = (r: QueryResult) =>
  r.rows
    .map((x) => JSON.stringify([...Object.values(x.key), Math.round((x.value ?? Number.NaN) * 1e9) / 1e9]))
    .sort();
async function hand(q: SQL): Promise<string[]> {
  const r = await h.db.execute<Record<string, string | null>>(q);
  return r.rows
    .map((x) => {
      const { v, ...keys } = x;
      return JSON.stringify([...Object.values(keys), Math.round(Number(v) * 1e9) / 1e9]);
    })
    .sort();
}
const run = (q: unknown) => runQuery(h.db, parseQuery(q, { catalog }), { now: NOW, catalog });
const compiled = (q: unknown) => text(compileQuery(parseQuery(q, { catalog }), { now: NOW, catalog }));
const offline = { lastContact: { notSeenForIntervals: 3 } };
// The selector's own definition, per row (fleet/compile.ts): never seen, or silent for 3 intervals.
const OFFLINE_SQL = `(last_contact_at is null or (periodic_inform_interval_s is not null
  and last_contact_at < '${nowP}'::timestamptz - make_interval(secs => periodic_inform_interval_s * 3)))`;

describe('questions answered from the rollup and the silent-device index', () => {
  const cases: Array<[string, unknown, string, 'device_counts' | 'parameter_sums' | 'interval' | 'devices']> =
    [
      [
        'count by model and firmware, filtered by a version range and NOT',
        {
          where: {
            and: [
              { field: 'softwareVersion', op: 'versionGte', value: '3.1' },
              { not: { field: 'region', op: 'eq', value: 'north' } },
            ],
          },
          measure: 'count',
          groupBy: ['productClass', 'softwareVersion'],
        },
        `select product_class, software_version, count(*) v from devices
        where software_version in ('3.1.2', '3.10.0', '3.2.0', '4.0.0')
          and not coalesce(region = 'north', false) group by 1, 2`,
        'device_counts',
      ],
      [
        'count by region (NULL region is a group)',
        { measure: 'count', groupBy: ['region'] },
        'select region, count(*) v from devices group by 1',
        'device_counts',
      ],
      [
        'count of one model without grouping',
        { where: { field: 'productClass', op: 'in', values: ['F660', 'XGS'] }, measure: 'count' },
        `select count(*) v from devices where product_class in ('F660', 'XGS')`,
        'device_counts',
      ],
      [
        'count by OLT and PON port with having',
        { measure: 'count', groupBy: ['olt', 'ponPort'], having: { op: 'gte', value: 7 } },
        'select olt, pon_port, count(*) v from devices group by 1, 2 having count(*) >= 7',
        'device_counts',
      ],
      [
        'not seen for 3 intervals by model in a region',
        {
          where: { and: [offline, { field: 'region', op: 'eq', value: 'south' }] },
          measure: 'count',
          groupBy: ['productClass'],
        },
        `select product_class, count(*) v from devices where ${OFFLINE_SQL} and region = 'south' group by 1`,
        'interval',
      ],
      [
        'offline share per region (NULL region included)',
        { measure: { share: offline }, groupBy: ['region'] },
        `select region, avg(case when ${OFFLINE_SQL} then 1.0 else 0.0 end) v from devices group by 1`,
        'device_counts',
      ],
      [
        'offline share per OLT above a threshold',
        { measure: { share: offline }, groupBy: ['olt'], having: { op: 'gt', value: 0.1 } },
        `select olt, avg(case when ${OFFLINE_SQL} then 1.0 else 0.0 end) v from devices group by 1
        having avg(case when ${OFFLINE_SQL} then 1.0 else 0.0 end) > 0.1`,
        'device_counts',
      ],
      [
        'offline share of one model, ungrouped',
        { where: { field: 'productClass', op: 'eq', value: 'F660' }, measure: { share: offline } },
        `select avg(case when ${OFFLINE_SQL} then 1.0 else 0.0 end) v from devices where product_class = 'F660'`,
        'device_counts',
      ],
      [
        'average of a numeric parameter by model and firmware in a region',
        {
          where: { field: 'region', op: 'eq', value: 'south' },
          measure: { avg: UPTIME },
          groupBy: ['productClass', 'softwareVersion'],
        },
        `select d.product_class, d.software_version, avg(p.value_num) v from devices d
        join device_parameters p on p.device_id = d.id and p.path = '${UPTIME}'
        where d.region = 'south' and p.value_num is not null group by 1, 2`,
        'parameter_sums',
      ],
      [
        'average of a numeric parameter per OLT (not a rollup column: read from the join)',
        { measure: { avg: UPTIME }, groupBy: ['olt'] },
        `select d.olt, avg(p.value_num) v from devices d join device_parameters p on p.device_id = d.id
        and p.path = '${UPTIME}' where p.value_num is not null group by 1`,
        'devices',
      ],
      [
        'count by OLT and region (no single grain: read from devices)',
        { measure: 'count', groupBy: ['olt', 'region'] },
        'select olt, region, count(*) v from devices group by 1, 2',
        'devices',
      ],
    ];
  for (const [name, q, want, src] of cases) {
    it(name, async () => {
      const got = canon(await run(q));
      expect(got).toEqual(await hand(sql.raw(want)));
      expect(got.length).toBeGreaterThan(0);
      const t = compiled(q);
      for (const table of ['device_counts', 'parameter_sums'])
        if (src === table) expect(t).toContain(`"${table}"`);
        else expect(t).not.toContain(`"${table}"`);
      if (src === 'interval') expect(t).toContain('with recursive iv');
    });
  }

  it('offline share values are bit-identical to avg() over the raw rows', async () => {
    const got = await run({ measure: { share: offline }, groupBy: ['productClass'] });
    const want = await h.db.execute<{ k: string; v: number }>(
      sql.raw(`select product_class k, avg(case when ${OFFLINE_SQL} then 1.0 else 0.0 end)::float8 v
        from devices group by 1`),
    );
    const byKey = new Map(want.rows.map((r) => [r.k, Number(r.v)]));
    for (const r of got.rows) expect(r.value).toBe(byKey.get(r.key.productClass as string));
  });
});

describe('averages from parameter_sums', () => {
  it('are bit-identical to avg() over the joined rows, with or without groups', async () => {
    for (const q of [
      { measure: { avg: UPTIME }, groupBy: ['productClass'] },
      { measure: { avg: CPU } },
      { where: { field: 'productClass', op: 'eq', value: 'NONE' }, measure: { avg: UPTIME } },
    ]) {
      const got = await run(q);
      const grouped = 'groupBy' in q;
      const want = await h.db.execute<{ k: string | null; v: number | null }>(
        sql.raw(`select ${grouped ? 'd.product_class' : 'null'} k, avg(p.value_num)::float8 v from devices d
          join device_parameters p on p.device_id = d.id and p.path = '${Object.values(q.measure)[0]}'
          where p.value_num is not null ${'where' in q ? "and d.product_class = 'NONE'" : ''}
          ${grouped ? 'group by 1' : ''}`),
      );
      expect(got.rows.map((r) => [r.key.productClass ?? null, r.value]).sort()).toEqual(
        want.rows.map((r) => [r.k, r.v === null ? null : Number(r.v)]).sort(),
      );
      expect(compiled(q)).toContain('"parameter_sums"');
    }
  });
});

describe('event measures over the whole fleet', () => {
  it('count per-device events, skip events of devices not in the inventory, and follow new events', async () => {
    const at = (hoursAgo: number) => new Date(NOW.getTime() - hoursAgo * 3_600_000);
    const ev: DeviceEvent[] = [];
    for (let i = 0; i < 40; i++)
      for (let b = 0; b < i % 4; b++)
        ev.push({ deviceId: dev(i).id, at: at(b + 1), kind: 'boot', payload: {} });
    ev.push({ deviceId: 'NOT-IN-INVENTORY', at: at(1), kind: 'boot', payload: {} });
    ev.push({ deviceId: 'NOT-IN-INVENTORY', at: at(2), kind: 'boot', payload: {} });
    ev.push({ deviceId: dev(3).id, at: at(1), kind: 'transfer_complete', payload: { faultCode: 9010 } });
    ev.push({ deviceId: dev(5).id, at: at(1), kind: 'transfer_complete', payload: { faultCode: 0 } });
    ev.push({
      deviceId: 'NOT-IN-INVENTORY',
      at: at(1),
      kind: 'transfer_complete',
      payload: { faultCode: 9017 },
    });
    await appendEvents(h.db, ev);
    const boots = { measure: { events: { kind: 'boot', withinSeconds: 86_400 } } };
    const top = {
      measure: { events: { kind: 'boot', withinSeconds: 86_400 } },
      groupBy: ['device'],
      orderBy: { by: 'value', dir: 'desc' },
      limit: 5,
    };
    const handTotal = () =>
      hand(sql`select count(*) v from device_events e join devices d on d.id = e.device_id
        where e.kind = 'boot' and e.at > ${nowP}::timestamptz - interval '1 day' and e.at <= ${nowP}::timestamptz`);
    const handTop = async () =>
      (
        await h.db.execute<{ id: string; v: string }>(sql`select d.id, count(*) v from device_events e
          join devices d on d.id = e.device_id where e.kind = 'boot' and e.at > ${nowP}::timestamptz - interval '1 day'
          and e.at <= ${nowP}::timestamptz group by 1 order by 2 desc, 1 limit 5`)
      ).rows.map((r) => [r.id, Number(r.v)]);
    expect(canon(await run(boots))).toEqual(await handTotal());
    expect((await run(top)).rows.map((r) => [r.key.device, r.value])).toEqual(await handTop());
    expect(canon(await run(top)).length).toBe(5);
    // New events arrive (one device overtakes the others); the answers follow.
    await appendEvents(
      h.db,
      Array.from({ length: 9 }, (_, k) => ({
        deviceId: dev(1).id,
        at: at(0.5 + k / 100),
        kind: 'boot' as const,
      })).map((e) => ({ ...e, payload: {} })),
    );
    expect(canon(await run(boots))).toEqual(await handTotal());
    const after = (await run(top)).rows.map((r) => [r.key.device, r.value]);
    expect(after).toEqual(await handTop());
    expect(after[0]).toEqual([dev(1).id, 10]);
    // Failed transfers by fault code: the inventory's only (9010), not the unknown device's 9017.
    const failed = await run({
      measure: { events: { kind: 'transfer_complete', withinSeconds: 86_400, failed: true } },
      groupBy: ['faultCode'],
    });
    expect(failed.rows).toEqual([{ key: { faultCode: '9010' }, value: 1 }]);
  });
});
