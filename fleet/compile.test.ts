import { createHash } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../test/support/db.js';
import { coreCatalog } from './catalog.js';
import { upsertDevices } from './devices.js';
import { appendEvents, type DeviceEvent } from './events.js';
import { type ParameterValue, updateLastValues } from './parameters.js';
import {
  countDevices,
  deviceSetHash,
  listDeviceIds,
  previewSelector,
  resolveDeviceSet,
  selectDevices,
  selectorQuery,
} from './resolve.js';
import { parseSelector } from './selector.js';

/**
 * Every operator against a hand-written SQL query on the same seeded database: the compiled selector
 * must return exactly the devices the hand-written query returns, and each case must select a proper,
 * non-empty subset so that a wrong compilation cannot pass by accident.
 */

const NOW = new Date('2026-06-01T12:00:00Z');
const N = 60;
const catalog = coreCatalog();
let h: Awaited<ReturnType<typeof createTestDatabase>>;

const pick = <T>(xs: readonly T[], i: number): T => xs[i % xs.length] as T;
const VERSIONS = ['2.9.1', '3.0.0', '3.0.0-rc1', '3.1.2', '3.10.0', 'weird-fw', undefined];

async function seed(): Promise<void> {
  const devs = Array.from({ length: N }, (_, i) => {
    const pc = pick(['HG8245', 'F660', 'XGS-ONT'], i);
    return {
      id: `00D09E-${pc}-SN${String(i).padStart(4, '0')}`,
      oui: pick(['00D09E', '38F8F6'], i),
      serialNumber: `SN${i}`,
      protocol: i % 4 === 0 ? ('usp' as const) : ('cwmp' as const),
      manufacturer: pick(['Huawei', 'ZTE', 'Nokia'], i),
      productClass: pc,
      modelName: i % 5 === 0 ? undefined : `${pc}-M`,
      hardwareVersion: pick(['A1', 'B2'], i),
      softwareVersion: pick(VERSIONS, i),
      lastContactAt: i % 9 === 0 ? undefined : new Date(NOW.getTime() - i * 25_000_000),
      periodicInformIntervalS: i % 9 === 0 ? undefined : pick([300, 3600, 86400], i),
      tags: pick([['pilot'], ['vip', 'pilot'], [], ['lab']], i),
    };
  });
  await upsertDevices(h.db, devs);
  // Topology straight into the table: the import has tests of its own.
  for (const [i, d] of devs.entries()) {
    await h.db.execute(sql`update devices set region = ${i % 7 === 0 ? null : pick(['north', 'south', 'east'], i)},
      site = ${`site-${i % 6}`}, olt = ${`olt-${i % 4}`}, pon_port = ${`0/1/${i % 8}`}, bng = ${pick(['bng-a', 'bng-b'], i)},
      service_tier = ${pick(['gold', 'silver', 'bronze'], i)}, time_zone = 'Europe/Berlin' where id = ${d.id}`);
  }
  const values: ParameterValue[] = [];
  for (const [i, d] of devs.entries()) {
    values.push({
      deviceId: d.id,
      path: 'Device.WiFi.Radio.1.Channel',
      type: 'unsignedInt',
      value: String(pick([1, 6, 11, 36], i)),
    });
    values.push({
      deviceId: d.id,
      path: 'Device.WiFi.Radio.1.Enable',
      type: 'boolean',
      value: pick(['true', 'false', '1'], i),
    });
    values.push({
      deviceId: d.id,
      path: 'Device.WiFi.Radio.1.TransmitPower',
      type: 'int',
      value: String((i % 11) * 10 - 1),
    });
    if (i % 3 !== 2) {
      values.push({
        deviceId: d.id,
        path: 'Device.WiFi.SSID.1.SSID',
        type: 'string',
        value: pick(
          [
            'home-net',
            'home-5G',
            "'; drop table devices; --",
            'x'.repeat(300) + String(Math.floor(i / 4) % 2),
          ],
          i,
        ),
      });
    }
    values.push({
      deviceId: d.id,
      path: 'Device.DeviceInfo.SoftwareVersion',
      type: 'string',
      value: pick(['1.2.3', '1.10.0', '2.0.0-beta.2', 'n/a'], i),
    });
    values.push({
      deviceId: d.id,
      path: 'Device.Time.CurrentLocalTime',
      type: 'dateTime',
      value: new Date(NOW.getTime() - (i % 5) * 3_600_000).toISOString(),
    });
  }
  await updateLastValues(h.db, values);
  const events: DeviceEvent[] = [];
  for (const [i, d] of devs.entries()) {
    for (let k = 0; k < i % 4; k++) {
      events.push({
        deviceId: d.id,
        at: new Date(NOW.getTime() - (k + 1) * 3_600_000),
        kind: 'boot',
        payload: {},
      });
    }
    // Old boots outside a one-day window.
    events.push({ deviceId: d.id, at: new Date(NOW.getTime() - 3 * 86_400_000), kind: 'boot', payload: {} });
    if (i % 5 === 0) {
      events.push({
        deviceId: d.id,
        at: new Date(NOW.getTime() - 600_000),
        kind: 'transfer_complete',
        payload: { faultCode: i % 10 === 0 ? 9010 : 0 },
      });
    }
    events.push({
      deviceId: d.id,
      at: new Date(NOW.getTime() - 60_000),
      kind: 'inform',
      payload: { eventCodes: i % 6 === 0 ? ['1 BOOT', '4 VALUE CHANGE'] : ['2 PERIODIC'] },
    });
  }
  // One event after NOW must not count.
  events.push({
    deviceId: devs[1]?.id ?? '',
    at: new Date(NOW.getTime() + 60_000),
    kind: 'boot',
    payload: {},
  });
  await appendEvents(h.db, events);
}

beforeAll(async () => {
  h = await createTestDatabase();
  await seed();
});
afterAll(async () => {
  await h?.drop();
});

async function expected(where: string): Promise<string[]> {
  const r = await h.db.execute<{ id: string }>(
    sql.raw(`select d.id from devices d where ${where} order by d.id`),
  );
  return r.rows.map((x) => x.id);
}

async function actual(selector: unknown): Promise<string[]> {
  const s = parseSelector(selector, { catalog });
  return (await listDeviceIds(h.db, s, { now: NOW, catalog })).ids;
}

const nowSql = `'${NOW.toISOString()}'::timestamptz`;
const param = (path: string, cond: string) =>
  `exists (select 1 from device_parameters p where p.device_id = d.id and p.path = '${path}' and ${cond})`;
const ch = 'Device.WiFi.Radio.1.Channel';

// [name, selector, hand-written predicate over devices d]
const CASES: Array<[string, unknown, string]> = [
  ['field eq', { field: 'productClass', op: 'eq', value: 'F660' }, `d.product_class = 'F660'`],
  ['field ne', { field: 'manufacturer', op: 'ne', value: 'ZTE' }, `d.manufacturer <> 'ZTE'`],
  ['field in', { field: 'region', op: 'in', values: ['north', 'east'] }, `d.region in ('north', 'east')`],
  ['field notIn', { field: 'region', op: 'notIn', values: ['north'] }, `d.region <> 'north'`],
  ['field prefix', { field: 'ponPort', op: 'prefix', value: '0/1/1' }, `d.pon_port like '0/1/1%'`],
  [
    'field prefix (version string)',
    { field: 'softwareVersion', op: 'prefix', value: '3.1' },
    `d.software_version like '3.1%'`,
  ],
  ['field exists true', { field: 'modelName', op: 'exists', value: true }, `d.model_name is not null`],
  ['field exists false', { field: 'region', op: 'exists', value: false }, `d.region is null`],
  ['enum eq', { field: 'protocol', op: 'eq', value: 'usp' }, `d.protocol = 'usp'`],
  [
    'integer lt',
    { field: 'periodicInformIntervalS', op: 'lt', value: 3600 },
    `d.periodic_inform_interval_s < 3600`,
  ],
  [
    'integer lte',
    { field: 'periodicInformIntervalS', op: 'lte', value: 3600 },
    `d.periodic_inform_interval_s <= 3600`,
  ],
  [
    'integer gt',
    { field: 'periodicInformIntervalS', op: 'gt', value: 300 },
    `d.periodic_inform_interval_s > 300`,
  ],
  [
    'integer gte',
    { field: 'periodicInformIntervalS', op: 'gte', value: 3600 },
    `d.periodic_inform_interval_s >= 3600`,
  ],
  [
    'integer between',
    { field: 'periodicInformIntervalS', op: 'between', from: 300, to: 3600 },
    `d.periodic_inform_interval_s >= 300 and d.periodic_inform_interval_s <= 3600`,
  ],
  [
    'time gt',
    { field: 'lastContactAt', op: 'gt', value: '2026-05-31T12:00:00Z' },
    `d.last_contact_at > '2026-05-31T12:00:00Z'`,
  ],
  [
    'time between',
    { field: 'lastContactAt', op: 'between', from: '2026-05-30T00:00:00Z', to: '2026-05-31T00:00:00Z' },
    `d.last_contact_at >= '2026-05-30T00:00:00Z' and d.last_contact_at <= '2026-05-31T00:00:00Z'`,
  ],
  [
    'version lt (semantic: 3.0.0-rc1 < 3.0.0, 3.10 > 3.1)',
    { field: 'softwareVersion', op: 'versionLt', value: '3.0' },
    `d.software_version in ('2.9.1', '3.0.0-rc1')`,
  ],
  [
    'version lte',
    { field: 'softwareVersion', op: 'versionLte', value: '3.0.0' },
    `d.software_version in ('2.9.1', '3.0.0-rc1', '3.0.0')`,
  ],
  [
    'version gt',
    { field: 'softwareVersion', op: 'versionGt', value: '3.1.2' },
    `d.software_version = '3.10.0'`,
  ],
  [
    'version gte',
    { field: 'softwareVersion', op: 'versionGte', value: 'v3.1.2' },
    `d.software_version in ('3.1.2', '3.10.0')`,
  ],
  [
    'version between',
    { field: 'softwareVersion', op: 'versionBetween', from: '3.0.0-rc1', to: '3.1.2' },
    `d.software_version in ('3.0.0-rc1', '3.0.0', '3.1.2')`,
  ],
  ['tags has', { field: 'tags', op: 'has', value: 'pilot' }, `'pilot' = any(d.tags)`],
  [
    'tags hasAny',
    { field: 'tags', op: 'hasAny', values: ['vip', 'lab'] },
    `('vip' = any(d.tags) or 'lab' = any(d.tags))`,
  ],
  [
    'tags hasAll',
    { field: 'tags', op: 'hasAll', values: ['vip', 'pilot'] },
    `('vip' = any(d.tags) and 'pilot' = any(d.tags))`,
  ],
  ['param numeric eq', { param: ch, op: 'eq', value: 6 }, param(ch, `p.value = '6'`)],
  ['param numeric ne', { param: ch, op: 'ne', value: 6 }, param(ch, `p.value <> '6'`)],
  ['param numeric in', { param: ch, op: 'in', values: [1, 11] }, param(ch, `p.value in ('1', '11')`)],
  [
    'param numeric notIn',
    { param: ch, op: 'notIn', values: [1, 11] },
    param(ch, `p.value not in ('1', '11')`),
  ],
  ['param numeric lt', { param: ch, op: 'lt', value: 11 }, param(ch, `p.value::int < 11`)],
  ['param numeric lte', { param: ch, op: 'lte', value: 11 }, param(ch, `p.value::int <= 11`)],
  ['param numeric gt', { param: ch, op: 'gt', value: 6 }, param(ch, `p.value::int > 6`)],
  ['param numeric gte', { param: ch, op: 'gte', value: 11 }, param(ch, `p.value::int >= 11`)],
  [
    'param numeric between',
    { param: ch, op: 'between', from: 6, to: 11 },
    param(ch, `p.value::int between 6 and 11`),
  ],
  [
    'param signed int lt',
    { param: 'Device.WiFi.Radio.1.TransmitPower', op: 'lt', value: 0 },
    param('Device.WiFi.Radio.1.TransmitPower', `p.value::int < 0`),
  ],
  [
    'param boolean eq ("1" is true)',
    { param: 'Device.WiFi.Radio.1.Enable', op: 'eq', value: true },
    param('Device.WiFi.Radio.1.Enable', `p.value in ('true', '1')`),
  ],
  [
    'param boolean ne',
    { param: 'Device.WiFi.Radio.1.Enable', op: 'ne', value: true },
    param('Device.WiFi.Radio.1.Enable', `p.value = 'false'`),
  ],
  [
    'param string eq',
    { param: 'Device.WiFi.SSID.1.SSID', op: 'eq', value: 'home-net' },
    param('Device.WiFi.SSID.1.SSID', `p.value = 'home-net'`),
  ],
  [
    'param string eq (value longer than the indexed prefix)',
    { param: 'Device.WiFi.SSID.1.SSID', op: 'eq', value: `${'x'.repeat(300)}1` },
    param('Device.WiFi.SSID.1.SSID', `p.value = '${'x'.repeat(300)}1'`),
  ],
  [
    'param string in',
    { param: 'Device.WiFi.SSID.1.SSID', op: 'in', values: ['home-net', 'home-5G'] },
    param('Device.WiFi.SSID.1.SSID', `p.value in ('home-net', 'home-5G')`),
  ],
  [
    'param string notIn',
    { param: 'Device.WiFi.SSID.1.SSID', op: 'notIn', values: ['home-net'] },
    param('Device.WiFi.SSID.1.SSID', `p.value <> 'home-net'`),
  ],
  [
    'param string ne',
    { param: 'Device.WiFi.SSID.1.SSID', op: 'ne', value: 'home-net' },
    param('Device.WiFi.SSID.1.SSID', `p.value <> 'home-net'`),
  ],
  [
    'param string prefix',
    { param: 'Device.WiFi.SSID.1.SSID', op: 'prefix', value: 'home-' },
    param('Device.WiFi.SSID.1.SSID', `p.value like 'home-%'`),
  ],
  [
    'param string prefix (longer than the indexed prefix)',
    { param: 'Device.WiFi.SSID.1.SSID', op: 'prefix', value: `${'x'.repeat(300)}0` },
    param('Device.WiFi.SSID.1.SSID', `p.value = '${'x'.repeat(300)}0'`),
  ],
  [
    'param exists false',
    { param: 'Device.WiFi.SSID.1.SSID', op: 'exists', value: false },
    `not exists (select 1 from device_parameters p where p.device_id = d.id and p.path = 'Device.WiFi.SSID.1.SSID')`,
  ],
  [
    'param version lt',
    { param: 'Device.DeviceInfo.SoftwareVersion', op: 'versionLt', value: '1.10.0' },
    param(
      'Device.DeviceInfo.SoftwareVersion',
      `p.value in ('1.2.3', '2.0.0-beta.2') and p.value <> '2.0.0-beta.2'`,
    ),
  ],
  [
    'param version gte',
    { param: 'Device.DeviceInfo.SoftwareVersion', op: 'versionGte', value: '2.0.0-beta.1' },
    param('Device.DeviceInfo.SoftwareVersion', `p.value = '2.0.0-beta.2'`),
  ],
  [
    'param dateTime gte',
    { param: 'Device.Time.CurrentLocalTime', op: 'gte', value: '2026-06-01T10:00:00Z' },
    param('Device.Time.CurrentLocalTime', `p.value::timestamptz >= '2026-06-01T10:00:00Z'`),
  ],
  [
    'last contact: not seen for 3 intervals (or never)',
    { lastContact: { notSeenForIntervals: 3 } },
    `d.last_contact_at is null or d.last_contact_at < ${nowSql} - d.periodic_inform_interval_s * interval '3 seconds'`,
  ],
  [
    'last contact: not seen for a day (or never)',
    { lastContact: { notSeenForSeconds: 86400 } },
    `d.last_contact_at is null or d.last_contact_at < ${nowSql} - interval '1 day'`,
  ],
  [
    'last contact: seen within a day',
    { lastContact: { seenWithinSeconds: 86400 } },
    `d.last_contact_at >= ${nowSql} - interval '1 day'`,
  ],
  ...(
    [
      ['gte', 2, '>= 2'],
      ['gt', 1, '> 1'],
      ['eq', 3, '= 3'],
      ['eq', 0, '= 0'],
      ['ne', 0, '<> 0'],
      ['lt', 2, '< 2'],
      ['lte', 1, '<= 1'],
    ] as const
  ).map(
    ([op, count, cmp]) =>
      [
        `events: boots in a day ${op} ${count}`,
        { events: { kind: 'boot', withinSeconds: 86400, op, count } },
        `(select count(*) from device_events e where e.device_id = d.id and e.kind = 'boot'
          and e.at > ${nowSql} - interval '1 day' and e.at <= ${nowSql}) ${cmp}`,
      ] as [string, unknown, string],
  ),
  [
    'events: inform with event code',
    { events: { kind: 'inform', withinSeconds: 3600, op: 'gte', count: 1, eventCode: '1 BOOT' } },
    `exists (select 1 from device_events e where e.device_id = d.id and e.kind = 'inform'
      and e.payload->'eventCodes' @> '["1 BOOT"]' and e.at > ${nowSql} - interval '1 hour')`,
  ],
  [
    'events: failed transfers',
    { events: { kind: 'transfer_complete', withinSeconds: 3600, op: 'gte', count: 1, failed: true } },
    `exists (select 1 from device_events e where e.device_id = d.id and e.kind = 'transfer_complete'
      and e.payload->>'faultCode' <> '0' and e.at > ${nowSql} - interval '1 hour')`,
  ],
  [
    'and',
    {
      and: [
        { field: 'productClass', op: 'eq', value: 'HG8245' },
        { field: 'protocol', op: 'eq', value: 'cwmp' },
      ],
    },
    `d.product_class = 'HG8245' and d.protocol = 'cwmp'`,
  ],
  [
    'or',
    {
      or: [
        { field: 'productClass', op: 'eq', value: 'HG8245' },
        { field: 'region', op: 'eq', value: 'east' },
      ],
    },
    `d.product_class = 'HG8245' or d.region = 'east'`,
  ],
  [
    'not (NULL region counts as "not north")',
    { not: { field: 'region', op: 'eq', value: 'north' } },
    `d.region is distinct from 'north'`,
  ],
  // More lone ranges over columns with a (column, id) index (resolved as a merge of per-value index
  // ranges); "field in", "field prefix (version string)" and the version ranges above are such too.
  [
    'field in (product class)',
    { field: 'productClass', op: 'in', values: ['XGS-ONT', 'F660', 'none'] },
    `d.product_class in ('F660', 'XGS-ONT')`,
  ],
  [
    'field in (firmware strings)',
    { field: 'softwareVersion', op: 'in', values: ['3.0.0', 'weird-fw'] },
    `d.software_version in ('3.0.0', 'weird-fw')`,
  ],
  [
    'field prefix (product class)',
    { field: 'productClass', op: 'prefix', value: 'HG' },
    `d.product_class = 'HG8245'`,
  ],
  ['field in (protocol)', { field: 'protocol', op: 'in', values: ['usp'] }, `d.protocol = 'usp'`],
  [
    'model ∧ region ∧ firmware < 3.0',
    {
      and: [
        { field: 'productClass', op: 'eq', value: 'HG8245' },
        { field: 'region', op: 'in', values: ['north', 'south'] },
        { field: 'softwareVersion', op: 'versionLt', value: '3.1' },
      ],
    },
    `d.product_class = 'HG8245' and d.region in ('north', 'south') and d.software_version in ('2.9.1', '3.0.0', '3.0.0-rc1')`,
  ],
];

describe('selector compiler against hand-written SQL', () => {
  it.each(CASES)('%s', async (_name, selector, where) => {
    const want = await expected(where);
    expect(want.length, 'case must select some devices').toBeGreaterThan(0);
    expect(want.length, 'case must not select every device').toBeLessThan(N);
    expect(await actual(selector)).toEqual(want);
    // The selection path reads ids in id order by other plans (per-value merges, parameter rows alone,
    // the interval subquery alone): its count, hash and sample must agree with the hand-written ids.
    const sel = await selectDevices(h.db, parseSelector(selector, { catalog }), {
      now: NOW,
      catalog,
      sampleSize: 3,
    });
    expect(sel).toEqual({ count: want.length, hash: deviceSetHash(want), sample: want.slice(0, 3) });
    const o = { now: NOW, catalog };
    expect(await countDevices(h.db, parseSelector(selector, { catalog }), o)).toBe(want.length);
    expect(
      await previewSelector(h.db, parseSelector(selector, { catalog }), { ...o, sampleSize: 3 }),
    ).toEqual({
      count: want.length,
      sample: want.slice(0, 3),
    });
  });

  // device_parameters' number, time and version indexes hold only rows with such a value: the planner
  // may use one only when it can prove the compiled comparison excludes null, which is what this asks
  // (sequential scans off, so the table's small size does not decide).
  it.each([
    ['device_parameters_path_num_idx', { param: ch, op: 'between', from: 6, to: 11 }],
    ['device_parameters_path_num_idx', { param: ch, op: 'in', values: [1, 11] }],
    [
      'device_parameters_path_time_idx',
      { param: 'Device.Time.CurrentLocalTime', op: 'gte', value: '2026-06-01T10:00:00Z' },
    ],
    [
      'device_parameters_path_version_idx',
      { param: 'Device.DeviceInfo.SoftwareVersion', op: 'versionGte', value: '1.10' },
    ],
  ])('a parameter comparison can read %s', async (index, selector) => {
    const q = selectorQuery(parseSelector(selector, { catalog }), { now: NOW, catalog });
    const plan = await h.db.transaction(async (tx) => {
      await tx.execute(sql`set local enable_seqscan = off`);
      const r = await tx.execute<{ 'QUERY PLAN': string }>(sql`explain (format text) ${q}`);
      return r.rows.map((x) => x['QUERY PLAN']).join('\n');
    });
    expect(plan).toContain(index);
  });

  it('all selects every device', async () => {
    expect(await actual({ all: true })).toHaveLength(N);
  });

  it('the device-set hash computed in the database equals the one over listed ids', async () => {
    const s = parseSelector({ field: 'protocol', op: 'eq', value: 'cwmp' });
    const listed = await listDeviceIds(h.db, s, { now: NOW });
    const resolved = await resolveDeviceSet(h.db, s, { now: NOW });
    expect(resolved.count).toBe(listed.ids.length);
    expect(resolved.hash).toBe(listed.hash);
    expect(resolved.hash).toBe(deviceSetHash([...listed.ids].reverse()));
    const other = await resolveDeviceSet(h.db, parseSelector({ field: 'protocol', op: 'eq', value: 'usp' }), {
      now: NOW,
    });
    expect(other.hash).not.toBe(resolved.hash);
    const none = await resolveDeviceSet(h.db, parseSelector({ field: 'region', op: 'eq', value: 'nowhere' }));
    expect(none).toEqual({ count: 0, hash: deviceSetHash([]) });
    // A range with no matching value at all (an empty merge) is the empty set too.
    const noValue = parseSelector({ field: 'softwareVersion', op: 'versionGt', value: '99' });
    expect(await selectDevices(h.db, noValue, { now: NOW })).toEqual({
      count: 0,
      hash: deviceSetHash([]),
      sample: [],
    });
  });

  it('the device-set hash is sha-256 over the distinct ids sorted byte-wise and joined by newlines', () => {
    // The definition approvals bind to, pinned: a change to it must be deliberate.
    expect(deviceSetHash([])).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    const h1 = deviceSetHash(['b-2', 'B-1', 'a-3', 'b-2']);
    expect(h1).toBe(deviceSetHash(['B-1', 'a-3', 'b-2']));
    // Byte-wise: upper case before lower case.
    expect(h1).toBe(createHash('sha256').update('B-1\na-3\nb-2').digest('hex'));
  });
});
