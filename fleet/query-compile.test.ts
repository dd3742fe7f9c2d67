import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../test/support/db.js';
import { coreCatalog } from './catalog.js';
import { upsertDevices } from './devices.js';
import { appendEvents, type DeviceEvent } from './events.js';
import { updateLastValues } from './parameters.js';
import { parseQuery, QueryError } from './query.js';
import { type QueryResult, runQuery } from './query-compile.js';

/** Each query shape against hand-written SQL on the same seeded database (order-insensitive). */

const NOW = new Date('2026-06-01T12:00:00Z');
const catalog = coreCatalog();
let h: Awaited<ReturnType<typeof createTestDatabase>>;
const VERSIONS = ['2.9.1', '3.0.0', '3.1.2', '3.10.0', '3.2.0'];
const MODELS = ['HG8245', 'F660', 'XGS'];

beforeAll(async () => {
  h = await createTestDatabase();
  const devs = Array.from({ length: 60 }, (_, i) => ({
    id: `D${String(i).padStart(3, '0')}`,
    oui: 'AA',
    serialNumber: `S${i}`,
    protocol: i % 3 === 0 ? ('usp' as const) : ('cwmp' as const),
    productClass: MODELS[i % 3] as string,
    softwareVersion: VERSIONS[i % 5] as string,
    lastContactAt: new Date(NOW.getTime() - (i % 7 === 0 ? 10 * 86_400_000 : 60_000)),
    periodicInformIntervalS: 86_400,
  }));
  await upsertDevices(h.db, devs);
  await h.db.execute(sql`update devices set region = case when right(id, 1) in ('0','1','2','3') then 'north' else 'south' end,
    olt = 'olt-' || (substr(id, 2)::int % 4)`);
  await updateLastValues(
    h.db,
    devs.map((d, i) => ({
      deviceId: d.id,
      path: 'Device.DeviceInfo.UpTime',
      type: 'unsignedInt' as const,
      value: String(i * 1000),
    })),
  );
  const ev: DeviceEvent[] = [];
  devs.forEach((d, i) => {
    for (let b = 0; b < i % 5; b++)
      ev.push({
        deviceId: d.id,
        at: new Date(NOW.getTime() - (b + 1) * 3_600_000 * 20),
        kind: 'boot',
        payload: {},
      });
    if (i % 4 === 0)
      ev.push({
        deviceId: d.id,
        at: new Date(NOW.getTime() - 86_400_000),
        kind: 'transfer_complete',
        payload: { faultCode: i % 8 === 0 ? 9010 : 0 },
      });
  });
  await appendEvents(h.db, ev);
});
afterAll(() => h?.drop());

const canon = (r: QueryResult) =>
  r.rows
    .map((x) => JSON.stringify([...Object.values(x.key), Math.round((x.value ?? Number.NaN) * 1e6) / 1e6]))
    .sort();
async function hand(text: ReturnType<typeof sql>): Promise<string[]> {
  const r = await h.db.execute<{ k: string | null; v: string }>(text);
  return r.rows
    .map((x) => JSON.stringify([...(x.k === undefined ? [] : [x.k]), Math.round(Number(x.v) * 1e6) / 1e6]))
    .sort();
}
const run = (q: unknown) => runQuery(h.db, parseQuery(q, { catalog }), { now: NOW, catalog });
const nowP = NOW.toISOString();

describe('fleet query compiler vs hand-written SQL', () => {
  it('count by model', async () => {
    expect(canon(await run({ measure: 'count', groupBy: ['productClass'] }))).toEqual(
      await hand(sql`select product_class k, count(*) v from devices group by 1`),
    );
  });
  it('count below a version per region with having', async () => {
    const got = canon(
      await run({
        where: { field: 'softwareVersion', op: 'versionLt', value: '3.2' },
        measure: 'count',
        groupBy: ['region'],
        having: { op: 'gt', value: 10 },
      }),
    );
    const want = await hand(
      sql`select region k, count(*) v from devices where software_version in ('2.9.1','3.0.0','3.1.2') group by 1 having count(*) > 10`,
    );
    expect(got).toEqual(want);
    expect(got.length).toBeGreaterThan(0);
  });
  it('offline share per OLT', async () => {
    expect(
      canon(await run({ measure: { share: { lastContact: { notSeenForIntervals: 3 } } }, groupBy: ['olt'] })),
    ).toEqual(
      await hand(
        sql`select olt k, avg(case when last_contact_at < ${nowP}::timestamptz - interval '3 days' then 1.0 else 0 end) v from devices group by 1`,
      ),
    );
  });
  it('average of a numeric parameter by model', async () => {
    expect(
      canon(await run({ measure: { avg: 'Device.DeviceInfo.UpTime' }, groupBy: ['productClass'] })),
    ).toEqual(
      await hand(
        sql`select d.product_class k, avg(p.value::numeric) v from devices d join device_parameters p on p.device_id = d.id and p.path = 'Device.DeviceInfo.UpTime' group by 1`,
      ),
    );
  });
  it('reboots in 2 days by model (event window)', async () => {
    expect(
      canon(
        await run({
          measure: { events: { kind: 'boot', withinSeconds: 172_800 } },
          groupBy: ['productClass'],
        }),
      ),
    ).toEqual(
      await hand(
        sql`select d.product_class k, count(*) v from devices d join device_events e on e.device_id = d.id where e.kind = 'boot' and e.at > ${nowP}::timestamptz - interval '2 days' and e.at <= ${nowP}::timestamptz group by 1`,
      ),
    );
  });
  it('transfer failures by fault code', async () => {
    const got = canon(
      await run({
        measure: { events: { kind: 'transfer_complete', withinSeconds: 7 * 86_400, failed: true } },
        groupBy: ['faultCode'],
      }),
    );
    expect(got).toEqual(
      await hand(
        sql`select payload->>'faultCode' k, count(*) v from device_events where kind = 'transfer_complete' and (payload->>'faultCode')::int <> 0 group by 1`,
      ),
    );
    expect(got.length).toBe(1);
  });
  it('top 5 devices by reboots: values and order', async () => {
    const r = await run({
      measure: { events: { kind: 'boot', withinSeconds: 30 * 86_400 } },
      groupBy: ['device'],
      orderBy: { by: 'value', dir: 'desc' },
      limit: 5,
    });
    expect(r.rows).toHaveLength(5);
    expect(r.rows.map((x) => x.value)).toEqual([4, 4, 4, 4, 4]);
    expect(r.rows.map((x) => x.key.device)).toEqual(['D004', 'D009', 'D014', 'D019', 'D024']);
  });
  it('orders firmware versions semantically (3.2.0 before 3.10.0)', async () => {
    const r = await run({
      measure: 'count',
      groupBy: ['softwareVersion'],
      orderBy: { by: 'key', dir: 'asc' },
    });
    expect(r.rows.map((x) => x.key.softwareVersion)).toEqual(['2.9.1', '3.0.0', '3.1.2', '3.2.0', '3.10.0']);
  });
  it('count of all devices without grouping; row cap reports truncation', async () => {
    expect((await run({ measure: 'count' })).rows).toEqual([{ key: {}, value: 60 }]);
    const capped = await runQuery(h.db, parseQuery({ measure: 'count', groupBy: ['device'] }), {
      now: NOW,
      rowCap: 10,
    });
    expect(capped).toMatchObject({ truncated: true });
    expect(capped.rows).toHaveLength(10);
  });
  it('rejects anything outside the schema before SQL is built', () => {
    expect(() => parseQuery({ measure: 'count', groupBy: ['colour'] })).toThrow(QueryError);
    expect(() => parseQuery({ measure: { avg: 'Device.Nope.X' } }, { catalog })).toThrow(
      /not in any known TR-181 schema/,
    );
    expect(() => parseQuery({ measure: { avg: 'Device.DeviceInfo.Manufacturer' } }, { catalog })).toThrow(
      /not numeric/,
    );
    expect(() => parseQuery({ measure: 'count', groupBy: ['faultCode'] })).toThrow(/transfer_complete/);
    expect(() =>
      parseQuery({ where: { field: 'region', op: 'eq', value: 'x' }, measure: 'count', drop: true }),
    ).toThrow(QueryError);
  });
});

describe('offline share per row', () => {
  it('agrees with the selector on never-seen devices, other intervals and an unknown interval', async () => {
    // Last in the file: it changes the seeded fleet.
    await h.db.execute(sql`update devices set last_contact_at = null where id = 'D001'`);
    await h.db.execute(sql`update devices set periodic_inform_interval_s = 300,
      last_contact_at = ${nowP}::timestamptz - interval '10 minutes' where id = 'D002'`);
    await h.db.execute(sql`update devices set periodic_inform_interval_s = 300,
      last_contact_at = ${nowP}::timestamptz - interval '20 minutes' where id = 'D003'`);
    await h.db.execute(sql`update devices set periodic_inform_interval_s = null where id = 'D004'`);
    const offline = { lastContact: { notSeenForIntervals: 3 } };
    const perOlt = await run({ measure: { share: offline }, groupBy: ['olt'] });
    for (const row of perOlt.rows) {
      const olt = row.key.olt as string;
      const where = { field: 'olt', op: 'eq', value: olt };
      const all = (await run({ where, measure: 'count' })).rows[0]?.value ?? 0;
      const off = (await run({ where: { and: [where, offline] }, measure: 'count' })).rows[0]?.value ?? 0;
      expect(row.value).toBeCloseTo(off / all, 12);
    }
    // D001 (never seen) and D003 (4 intervals silent) are offline; D002 (2 intervals) and D004 are not.
    const ids = await run({ where: offline, measure: 'count', groupBy: ['device'] });
    const offIds = ids.rows.map((r) => r.key.device);
    expect(offIds).toEqual(expect.arrayContaining(['D001', 'D003']));
    expect(offIds).not.toContain('D002');
    expect(offIds).not.toContain('D004');
  });
});
