import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { buildServer } from '../api/server.js';
import { createTestIdentity } from '../test/support/auth.js';
import { createTestDatabase } from '../test/support/db.js';
import { upsertDevices } from './devices.js';
import { appendEvents } from './events.js';
import { updateLastValues } from './parameters.js';
import { deviceSetHash } from './resolve.js';
import { importTopology } from './topology.js';

type Server = Awaited<ReturnType<typeof buildServer>>;
let db: Awaited<ReturnType<typeof createTestDatabase>>;
let connection: Connection;
let server: Server;
let headers: { authorization: string };

const IDS = Array.from({ length: 12 }, (_, i) => `00D09E-HG8245-S${String(i).padStart(3, '0')}`);

beforeAll(async () => {
  db = await createTestDatabase();
  connection = Connection.lazy({ address: inject('temporalAddress') });
  server = await buildServer({
    db,
    temporal: { client: new Client({ connection }), namespace: 'default', taskQueue: 'unused' },
    readiness: [],
    auth: {},
  });
  headers = (await createTestIdentity(db.db, 'vera', ['viewer'])).headers;
  await upsertDevices(
    db.db,
    IDS.map((id, i) => ({
      id,
      oui: '00D09E',
      serialNumber: id.slice(-4),
      protocol: 'cwmp' as const,
      productClass: i % 2 ? 'HG8245' : 'F660',
      softwareVersion: i % 3 ? '3.1.0' : '2.9.0',
      lastContactAt: new Date(),
      periodicInformIntervalS: 300,
    })),
  );
  await importTopology(
    db.db,
    `device_id,region\n${IDS.map((id, i) => `${id},${i < 6 ? 'north' : 'south'}`).join('\n')}\n`,
  );
  await updateLastValues(db.db, [
    { deviceId: IDS[0] ?? '', path: 'Device.WiFi.Radio.1.Channel', type: 'unsignedInt', value: '6' },
  ]);
  await appendEvents(db.db, [{ deviceId: IDS[0] ?? '', at: new Date(), kind: 'boot', payload: {} }]);
});
afterAll(async () => {
  await server?.close();
  await connection?.close();
  await db?.drop();
});

describe('fleet API', () => {
  it('resolves a selector with count, hash, sample, strata and a plain-language reading', async () => {
    const res = await server.inject({
      method: 'POST',
      url: '/fleet/select',
      headers,
      payload: {
        selector: {
          and: [
            { field: 'region', op: 'eq', value: 'north' },
            { field: 'softwareVersion', op: 'versionGte', value: '3.0' },
          ],
        },
        sampleSize: 2,
        strata: ['productClass'],
      },
    });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    const want = IDS.filter((_, i) => i < 6 && i % 3 !== 0);
    expect(body.count).toBe(want.length);
    expect(body.deviceSetHash).toBe(deviceSetHash(want));
    expect(body.sample).toEqual(want.slice(0, 2));
    expect(body.description).toBe('region is "north" and firmware version is version "3.0" or newer');
    expect(body.strata).toEqual([
      { stratum: { productClass: 'F660' }, count: 2 },
      { stratum: { productClass: 'HG8245' }, count: 2 },
    ]);
  });

  it('rejects a bad selector with 400 naming the offending part', async () => {
    const res = await server.inject({
      method: 'POST',
      url: '/fleet/select',
      headers,
      payload: { selector: { and: [{ param: 'Device.WiFi.Radio.1.Colour', op: 'eq', value: 1 }] } },
    });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ code: 'invalid_selector', field: 'selector.and[0].param' });
  });

  it('requires authentication', async () => {
    const res = await server.inject({
      method: 'POST',
      url: '/fleet/select',
      payload: { selector: { all: true } },
    });
    expect(res.statusCode).toBe(401);
  });

  it('lists devices page by page', async () => {
    const sel = encodeURIComponent(JSON.stringify({ field: 'productClass', op: 'eq', value: 'HG8245' }));
    const first = await server.inject({
      method: 'GET',
      url: `/fleet/devices?limit=4&selector=${sel}`,
      headers,
    });
    expect(first.statusCode).toBe(200);
    const a = first.json();
    expect(a.items.map((d: { id: string }) => d.id)).toEqual(IDS.filter((_, i) => i % 2).slice(0, 4));
    const second = await server.inject({
      method: 'GET',
      url: `/fleet/devices?limit=4&selector=${sel}&after=${a.next}`,
      headers,
    });
    const b = second.json();
    expect(b.items.map((d: { id: string }) => d.id)).toEqual(IDS.filter((_, i) => i % 2).slice(4));
    expect(b.next).toBeNull();
    const bad = await server.inject({ method: 'GET', url: '/fleet/devices?selector=%7Bnope', headers });
    expect(bad.statusCode).toBe(400);
  });

  it('shows one device with parameters and events, and 404 for an unknown one', async () => {
    const res = await server.inject({ method: 'GET', url: `/fleet/devices/${IDS[0]}`, headers });
    expect(res.statusCode).toBe(200);
    const d = res.json();
    expect(d.topology.region).toBe('north');
    expect(d.parameters).toEqual([
      expect.objectContaining({ path: 'Device.WiFi.Radio.1.Channel', value: '6' }),
    ]);
    expect(d.recentEvents).toEqual([expect.objectContaining({ kind: 'boot' })]);
    const missing = await server.inject({ method: 'GET', url: '/fleet/devices/NOPE', headers });
    expect(missing.statusCode).toBe(404);
  });
});
