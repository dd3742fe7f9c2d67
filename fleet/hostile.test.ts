import { sql } from 'drizzle-orm';
import { PgDialect } from 'drizzle-orm/pg-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../test/support/db.js';
import { catalogFromTypes } from './catalog.js';
import { upsertDevices } from './devices.js';
import { updateLastValues } from './parameters.js';
import {
  countByStrata,
  countDevices,
  listDeviceIds,
  previewSelector,
  RowCapExceeded,
  readOnly,
  resolveDeviceSet,
  selectorQuery,
} from './resolve.js';
import { parseSelector, SelectorError } from './selector.js';

/** No selector can produce anything but a read: hostile strings in every value position. */

const HOSTILE = [
  "'; drop table devices; --",
  "' or '1'='1",
  "\\'; delete from devices; --",
  '"); truncate devices cascade; --',
  "'; commit; delete from devices; begin; --",
  '$1',
  '$$; drop table devices; $$',
  "E'\\x27'; update devices set protocol = 'usp'; --",
  '%',
  '_',
  '*/ delete from devices /*',
  'region" = region or "1',
  '🙂\u202e',
];

const catalog = catalogFromTypes({
  'Device.WiFi.SSID.{i}.SSID': 'string',
  'Device.WiFi.Radio.{i}.Channel': 'unsignedInt',
});

const POSITIONS: Array<[string, 'run' | 'reject', (h: string) => unknown]> = [
  ['field value', 'run', (h) => ({ field: 'region', op: 'eq', value: h })],
  ['field ne', 'run', (h) => ({ field: 'olt', op: 'ne', value: h })],
  ['field values', 'run', (h) => ({ field: 'site', op: 'in', values: ['a', h] })],
  ['field notIn', 'run', (h) => ({ field: 'site', op: 'notIn', values: [h] })],
  ['field prefix', 'run', (h) => ({ field: 'ponPort', op: 'prefix', value: h })],
  ['field name', 'reject', (h) => ({ field: h, op: 'eq', value: 'x' })],
  ['field op', 'reject', (h) => ({ field: 'region', op: h, value: 'x' })],
  ['time value', 'reject', (h) => ({ field: 'lastContactAt', op: 'gt', value: h })],
  ['version value', 'reject', (h) => ({ field: 'softwareVersion', op: 'versionLt', value: h })],
  ['enum value', 'reject', (h) => ({ field: 'protocol', op: 'eq', value: h })],
  ['tag', 'run', (h) => ({ field: 'tags', op: 'has', value: h })],
  ['tags any', 'run', (h) => ({ field: 'tags', op: 'hasAny', values: [h, 'x'] })],
  ['param path', 'reject', (h) => ({ param: h, op: 'eq', value: 'x' })],
  ['param path suffix', 'reject', (h) => ({ param: `Device.WiFi.SSID.1.${h}`, op: 'eq', value: 'x' })],
  ['param value', 'run', (h) => ({ param: 'Device.WiFi.SSID.1.SSID', op: 'eq', value: h })],
  ['param values', 'run', (h) => ({ param: 'Device.WiFi.SSID.1.SSID', op: 'in', values: [h] })],
  ['param prefix', 'run', (h) => ({ param: 'Device.WiFi.SSID.1.SSID', op: 'prefix', value: h })],
  ['param ne', 'run', (h) => ({ param: 'Device.WiFi.SSID.1.SSID', op: 'ne', value: h })],
  ['numeric param value', 'reject', (h) => ({ param: 'Device.WiFi.Radio.1.Channel', op: 'eq', value: h })],
  [
    'event code',
    'run',
    (h) => ({ events: { kind: 'inform', withinSeconds: 60, op: 'gte', count: 1, eventCode: h } }),
  ],
  ['event kind', 'reject', (h) => ({ events: { kind: h, withinSeconds: 60, op: 'gte', count: 1 } })],
  ['node key', 'reject', (h) => ({ [h]: true })],
  [
    'nested',
    'run',
    (h) => ({ and: [{ all: true }, { not: { or: [{ field: 'bng', op: 'eq', value: h }] } }] }),
  ],
];

let h: Awaited<ReturnType<typeof createTestDatabase>>;
beforeAll(async () => {
  h = await createTestDatabase();
  await upsertDevices(
    h.db,
    Array.from({ length: 5 }, (_, i) => ({
      id: `D${i}`,
      oui: 'AAAAAA',
      serialNumber: `S${i}`,
      protocol: 'cwmp' as const,
    })),
  );
  await updateLastValues(h.db, [
    { deviceId: 'D1', path: 'Device.WiFi.SSID.1.SSID', value: HOSTILE[0] ?? '' },
  ]);
});
afterAll(async () => {
  await h?.drop();
});

async function fingerprint(): Promise<string> {
  const r = await h.db.execute<{ n: string; t: string; p: string }>(sql`
    select (select count(*) from devices) as n,
           (select string_agg(relname, ',' order by relname) from pg_class where relnamespace = 'public'::regnamespace) as t,
           (select string_agg(protocol, ',' order by id) from devices) as p`);
  return JSON.stringify(r.rows[0]);
}

describe('hostile strings', () => {
  it.each(POSITIONS)(
    '%s: %s (rejected before SQL, or bound as a parameter of a read)',
    async (_name, outcome, make) => {
      const before = await fingerprint();
      const dialect = new PgDialect();
      let ran = 0;
      for (const bad of HOSTILE) {
        let s: ReturnType<typeof parseSelector>;
        try {
          s = parseSelector(make(bad), { catalog });
        } catch (err) {
          expect(err).toBeInstanceOf(SelectorError);
          continue;
        }
        const q = dialect.sqlToQuery(selectorQuery(s, { catalog }));
        // The string travels as a bound parameter, never as SQL text ("$1", "%", "_" are too short to check).
        expect(q.params).toContain(bad);
        if (bad.length > 2) expect(q.sql).not.toContain(bad);
        const o = { catalog };
        await countDevices(h.db, s, o);
        await previewSelector(h.db, s, o);
        await resolveDeviceSet(h.db, s, o);
        await listDeviceIds(h.db, s, o);
        await countByStrata(h.db, s, ['region', 'protocol'], o);
        ran++;
      }
      expect(await fingerprint()).toBe(before);
      expect(ran).toBe(outcome === 'run' ? HOSTILE.length : 0);
    },
  );

  it('a hostile stored value is matched as data', async () => {
    const s = parseSelector({ param: 'Device.WiFi.SSID.1.SSID', op: 'eq', value: HOSTILE[0] }, { catalog });
    expect((await listDeviceIds(h.db, s, { catalog })).ids).toEqual(['D1']);
  });

  it('the read-only transaction refuses writes, and the statement timeout and row cap hold', async () => {
    const pgMessage = (p: Promise<unknown>) =>
      p.then(
        () => 'resolved',
        (e: Error) => `${e.message} ${(e.cause as Error | undefined)?.message ?? ''}`,
      );
    expect(await pgMessage(readOnly(h.db, 1000, (tx) => tx.execute(sql`delete from devices`)))).toMatch(
      /read-only transaction/,
    );
    expect(await pgMessage(readOnly(h.db, 50, (tx) => tx.execute(sql`select pg_sleep(2)`)))).toMatch(
      /statement timeout/,
    );
    await expect(listDeviceIds(h.db, parseSelector({ all: true }), { rowCap: 3 })).rejects.toBeInstanceOf(
      RowCapExceeded,
    );
    expect((await listDeviceIds(h.db, parseSelector({ all: true }), { rowCap: 5 })).ids).toHaveLength(5);
    expect(await countDevices(h.db, parseSelector({ all: true }))).toBe(5);
  });
});
