import { sql } from 'drizzle-orm';
import type { DbHandle } from '../db/client.js';
import { catalogFromTypes } from '../fleet/catalog.js';
import { versionKey } from '../fleet/version-key.js';

/**
 * The generated fleet shared by the `select` and `query` benchmarks: 1,000,000 devices (inventory,
 * topology, five last-known parameters each), written server-side in a few statements. Derived tables
 * (device_counts) are filled by the same triggers that keep them in the product.
 */

const MODELS = [
  ['00259E', 'Huawei', 'HG8245H'],
  ['00259E', 'Huawei', 'HG8145V5'],
  ['00259E', 'Huawei', 'EG8145X6'],
  ['4CF2BF', 'ZTE', 'F660'],
  ['4CF2BF', 'ZTE', 'F670L'],
  ['4CF2BF', 'ZTE', 'F680'],
  ['2C0B97', 'Nokia', 'G-240W-F'],
  ['2C0B97', 'Nokia', 'XS-2426G'],
  ['3810D5', 'AVM', 'FRITZ7590'],
  ['3810D5', 'AVM', 'FRITZ5530'],
] as const;
const VERSIONS = [
  '2.8.0',
  '2.9.1',
  '2.9.4',
  '3.0.0-rc2',
  '3.0.0',
  '3.0.2',
  '3.1.0',
  '3.1.5',
  '3.10.1',
  '4.0.0',
];
const REGIONS = ['north', 'south', 'east', 'west', 'central', 'coast', 'mountain', 'capital'];
const ZONES = [
  'Europe/Berlin',
  'Europe/Berlin',
  'Europe/Vienna',
  'Europe/Zurich',
  'Europe/Berlin',
  'Europe/Amsterdam',
  'Europe/Zurich',
  'Europe/Berlin',
];
const INTERVALS = [300, 600, 900, 3600, 86400];

const arr = (xs: readonly (string | number)[]) =>
  `array[${xs.map((x) => (typeof x === 'number' ? String(x) : `'${x.replace(/'/g, "''")}'`)).join(',')}]`;

/** Server-side generation: no rows cross the wire; secondary indexes are dropped during the load. */
export async function generate(h: DbHandle, n: number, ref: Date, version: number): Promise<void> {
  const keys = VERSIONS.map((v) => versionKey(v) ?? '');
  await h.db.execute(sql`truncate devices, device_parameters, device_events`);
  const idx = await h.db.execute<{ indexname: string; indexdef: string }>(sql`
    select i.indexname, i.indexdef from pg_indexes i
    where i.tablename in ('devices', 'device_parameters') and i.schemaname = 'public'
      and i.indexname not in (select conname from pg_constraint)`);
  for (const r of idx.rows) await h.db.execute(sql.raw(`drop index "${r.indexname}"`));
  const refSql = `'${ref.toISOString()}'::timestamptz`;
  await h.db.execute(
    sql.raw(`
    insert into devices (id, oui, serial_number, protocol, manufacturer, product_class, model_name, hardware_version,
      software_version, software_version_key, data_model_root, last_contact_at, periodic_inform_interval_s,
      connection_request_url, tags, region, site, olt, pon_port, bng, service_tier, time_zone, topology_updated_at)
    select
      (${arr(MODELS.map((m) => m[0]))})[1 + r1 % 10] || '-' || (${arr(MODELS.map((m) => m[2]))})[1 + r1 % 10] || '-SN' || lpad(i::text, 9, '0'),
      (${arr(MODELS.map((m) => m[0]))})[1 + r1 % 10],
      'SN' || lpad(i::text, 9, '0'),
      case when r5 % 10 < 3 then 'usp' else 'cwmp' end,
      (${arr(MODELS.map((m) => m[1]))})[1 + r1 % 10],
      (${arr(MODELS.map((m) => m[2]))})[1 + r1 % 10],
      (${arr(MODELS.map((m) => m[2]))})[1 + r1 % 10],
      (array['A1','B2','C3'])[1 + r2 % 3],
      (${arr(VERSIONS)})[1 + r2 % ${VERSIONS.length}],
      (${arr(keys)})[1 + r2 % ${VERSIONS.length}],
      'Device.',
      case when r6 % 100 = 0 then null
           when r6 % 100 < 6 then ${refSql} - make_interval(secs => iv * (3 + r1 % 27))
           else ${refSql} - make_interval(secs => (r2 % (iv * 12 / 10))) end,
      iv,
      'http://10.' || (i / 65536) % 256 || '.' || (i / 256) % 256 || '.' || i % 256 || ':7547/',
      case r5 % 20 when 0 then array['pilot'] when 1 then array['vip'] else '{}'::text[] end,
      (${arr(REGIONS)})[1 + r3 % 8],
      (${arr(REGIONS)})[1 + r3 % 8] || '-site-' || lpad(((r3 / 8) % 25)::text, 2, '0'),
      'olt-' || lpad((r4 % 2000)::text, 4, '0'),
      '0/' || (1 + (r4 / 2000) % 2) || '/' || ((r4 / 4000) % 8),
      'bng-' || lpad((r4 % 40)::text, 2, '0'),
      (array['bronze','silver','gold','business'])[1 + r5 % 4],
      (${arr(ZONES)})[1 + r3 % 8],
      ${refSql}
    from (
      select i,
        hashint4(i) & 2147483647 as r1, hashint4(i + 1000003) & 2147483647 as r2,
        hashint4(i + 2000029) & 2147483647 as r3, hashint4(i + 3000017) & 2147483647 as r4,
        hashint4(i + 4000037) & 2147483647 as r5, hashint4(i + 5000011) & 2147483647 as r6,
        (${arr(INTERVALS)})[1 + (hashint4(i + 6000000) & 2147483647) % ${INTERVALS.length}] as iv
      from generate_series(1, ${n}) i
    ) g`),
  );
  const params: Array<[string, string, string]> = [
    ['Device.WiFi.Radio.1.Channel', 'unsignedInt', `((array[1,6,11])[1 + h % 3])::text`],
    ['Device.WiFi.Radio.2.Channel', 'unsignedInt', `((array[36,40,44,48,100,149,153,157])[1 + h % 8])::text`],
    ['Device.WiFi.Radio.1.Enable', 'boolean', `case when h % 20 = 0 then 'false' else 'true' end`],
    ['Device.WiFi.SSID.1.SSID', 'string', `'home-' || substr(md5(d.id), 1, 6)`],
    ['Device.DeviceInfo.UpTime', 'unsignedInt', `(h % 2592000)::text`],
  ];
  for (const [p, type, expr] of params) {
    const numeric = type === 'unsignedInt';
    await h.db.execute(
      sql.raw(`
      insert into device_parameters (device_id, path, type, value, value_num, value_bool, updated_at)
      select d.id, '${p}', '${type}', v, ${numeric ? 'v::numeric' : 'null'}, ${type === 'boolean' ? 'v::boolean' : 'null'}, ${refSql}
      from (select d.id, ${expr} as v from (select id, hashtext(id || '${p}') & 2147483647 as h from devices) d) d`),
    );
  }
  for (const r of idx.rows) await h.db.execute(sql.raw(r.indexdef));
  await h.db.execute(sql`vacuum (analyze) devices`);
  await h.db.execute(sql`vacuum (analyze) device_parameters`);
  await h.db.execute(
    sql`create table if not exists bench_meta (version int not null, devices int not null, ref timestamptz not null)`,
  );
  await h.db.execute(sql`delete from bench_meta`);
  await h.db.execute(
    sql`insert into bench_meta values (${version}, ${n}, ${ref.toISOString()}::timestamptz)`,
  );
}

export const catalog = catalogFromTypes({
  'Device.WiFi.Radio.{i}.Channel': 'unsignedInt',
  'Device.WiFi.Radio.{i}.Enable': 'boolean',
  'Device.WiFi.SSID.{i}.SSID': 'string',
  'Device.DeviceInfo.UpTime': 'unsignedInt',
});
