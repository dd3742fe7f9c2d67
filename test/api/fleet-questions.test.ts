import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { buildServer } from '../../api/server.js';
import { upsertDevices } from '../../fleet/devices.js';
import { appendEvents } from '../../fleet/events.js';
import { importTopology } from '../../fleet/topology.js';
import { createTestIdentity } from '../support/auth.js';
import { type AuthoredModel, startAuthoredModel } from '../support/authored-model.js';
import { createTestDatabase } from '../support/db.js';

/**
 * The question routes over a real PostgreSQL. The "model" is a local OpenAI-compatible server answering
 * with AUTHORED replies chosen by the question text: it tests the route and pipeline, not any model.
 */

const AUTHORED: Array<{ when: string; reply: unknown }> = [
  {
    when: 'how many devices per model in Lyon',
    reply: {
      kind: 'query',
      query: { where: { place: 'Lyon' }, measure: 'count', groupBy: ['productClass'] },
    },
  },
  {
    when: 'which devices rebooted this week',
    reply: {
      kind: 'query',
      query: {
        where: { events: { kind: 'boot', window: 'last_7_days', op: 'gte', count: 2 } },
        measure: 'count',
        groupBy: ['device'],
      },
    },
  },
  {
    when: 'how are things in Grenoble',
    reply: { kind: 'query', query: { where: { place: 'Grenoble' }, measure: 'count' } },
  },
  {
    when: 'reboot all gateways in Lyon',
    reply: { kind: 'change_request', summary: 'reboot gateways in lyon' },
  },
];

type Server = Awaited<ReturnType<typeof buildServer>>;
let db: Awaited<ReturnType<typeof createTestDatabase>>;
let connection: Connection;
let server: Server;
let noModel: Server;
let model: AuthoredModel | undefined;
let headers: { authorization: string };
let seen: string[] = [];

const IDS = Array.from({ length: 10 }, (_, i) => `00D09E-HG8245-Q${String(i).padStart(3, '0')}`);

beforeAll(async () => {
  db = await createTestDatabase();
  connection = Connection.lazy({ address: inject('temporalAddress') });
  model = await startAuthoredModel((q) => AUTHORED.find((a) => q.includes(a.when))?.reply);
  seen = model.seen;
  const temporal = { client: new Client({ connection }), namespace: 'default', taskQueue: 'unused' };
  server = await buildServer({ db, temporal, readiness: [], auth: {}, llm: model.llm });
  noModel = await buildServer({ db, temporal, readiness: [], auth: {} });
  headers = (await createTestIdentity(db.db, 'quinn', ['viewer'])).headers;
  await upsertDevices(
    db.db,
    IDS.map((id, i) => ({
      id,
      oui: '00D09E',
      serialNumber: id.slice(-4),
      protocol: 'cwmp' as const,
      productClass: i % 2 ? 'HG8245' : 'F660',
      softwareVersion: '3.1.0',
      lastContactAt: new Date(),
      periodicInformIntervalS: 300,
    })),
  );
  await importTopology(
    db.db,
    `device_id,region\n${IDS.map((id, i) => `${id},${i < 7 ? 'lyon' : 'paris'}`).join('\n')}\n`,
  );
  const now = Date.now();
  // Device 0 booted three times, device 1 twice, device 2 once, in the last days.
  await appendEvents(
    db.db,
    [0, 0, 0, 1, 1, 2].map((d, i) => ({
      deviceId: IDS[d] ?? '',
      at: new Date(now - (i + 1) * 3_600_000),
      kind: 'boot' as const,
      payload: {},
    })),
  );
});
afterAll(async () => {
  await server?.close();
  await noModel?.close();
  await model?.close();
  await connection?.close();
  await db?.drop();
});

describe('POST /fleet/query', () => {
  it('runs a grouped count and answers with the DSL, its reading and the rows', async () => {
    const res = await server.inject({
      method: 'POST',
      url: '/fleet/query',
      headers,
      payload: {
        query: {
          where: { field: 'region', op: 'eq', value: 'lyon' },
          measure: 'count',
          groupBy: ['productClass'],
          orderBy: { by: 'key', dir: 'asc' },
        },
      },
    });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.result).toEqual({
      rows: [
        { key: { productClass: 'F660' }, value: 4 },
        { key: { productClass: 'HG8245' }, value: 3 },
      ],
      truncated: false,
    });
    expect(body.description).toContain('per product class');
    expect(body.query.groupBy).toEqual(['productClass']);
  });

  it('rejects a query naming something outside the schema with 400 naming the part', async () => {
    const res = await server.inject({
      method: 'POST',
      url: '/fleet/query',
      headers,
      payload: { query: { measure: { avg: 'Device.WiFi.Radio.1.Colour' } } },
    });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ code: 'invalid_query', field: 'query.measure.avg' });
  });

  it('rejects unknown request fields and needs a viewer token', async () => {
    const extra = await server.inject({
      method: 'POST',
      url: '/fleet/query',
      headers,
      payload: { query: { measure: 'count' }, sql: 'delete from devices' },
    });
    expect(extra.statusCode).toBe(400);
    const anon = await server.inject({
      method: 'POST',
      url: '/fleet/query',
      payload: { query: { measure: 'count' } },
    });
    expect(anon.statusCode).toBe(401);
  });
});

describe('POST /fleet/ask (authored model replies)', () => {
  it('resolves a place name in code and answers with rows and a table', async () => {
    const res = await server.inject({
      method: 'POST',
      url: '/fleet/ask',
      headers,
      payload: { question: 'how many devices per model in Lyon?', timeZone: 'Europe/Paris' },
    });
    expect(res.statusCode).toBe(200);
    const a = res.json();
    expect(a.kind).toBe('answer');
    expect(a.query.where).toEqual({ field: 'region', op: 'eq', value: 'lyon' });
    expect(a.result.rows).toEqual([
      { key: { productClass: 'F660' }, value: 4 },
      { key: { productClass: 'HG8245' }, value: 3 },
    ]);
    expect(a.table).toContain('| productClass | value |');
    expect(a.model).toBe('authored-fixture');
    expect(a.usage).toEqual({ promptTokens: 100, completionTokens: 20 });
  });

  it('answers event-window questions from device events', async () => {
    const res = await server.inject({
      method: 'POST',
      url: '/fleet/ask',
      headers,
      payload: { question: 'which devices rebooted this week at least twice?' },
    });
    const a = res.json();
    expect(a.kind).toBe('answer');
    expect(a.result.rows.map((r: { key: { device: string } }) => r.key.device).sort()).toEqual([
      IDS[0],
      IDS[1],
    ]);
  });

  it('asks back instead of guessing an unknown place', async () => {
    const res = await server.inject({
      method: 'POST',
      url: '/fleet/ask',
      headers,
      payload: { question: 'how are things in Grenoble?' },
    });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ kind: 'clarify', by: 'resolver' });
    expect(res.json().question).toContain('Grenoble');
  });

  it('answers a change request as such and writes nothing', async () => {
    const before = await server.inject({
      method: 'POST',
      url: '/fleet/query',
      headers,
      payload: { query: { measure: 'count' } },
    });
    const res = await server.inject({
      method: 'POST',
      url: '/fleet/ask',
      headers,
      payload: { question: 'reboot all gateways in Lyon' },
    });
    expect(res.json()).toMatchObject({ kind: 'change_request' });
    expect(res.json().message).toContain('change request');
    const after = await server.inject({
      method: 'POST',
      url: '/fleet/query',
      headers,
      payload: { query: { measure: 'count' } },
    });
    expect(after.json().result).toEqual(before.json().result);
  });

  it('rejects a bad time zone before calling the model', async () => {
    const calls = seen.length;
    const res = await server.inject({
      method: 'POST',
      url: '/fleet/ask',
      headers,
      payload: { question: 'how many devices per model in Lyon?', timeZone: 'Mars/Olympus' },
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().field).toBe('body.timeZone');
    expect(seen.length).toBe(calls);
  });

  it('answers 503 naming why when no model is configured', async () => {
    const res = await noModel.inject({
      method: 'POST',
      url: '/fleet/ask',
      headers,
      payload: { question: 'how many devices per model in Lyon?' },
    });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({ code: 'planner_unavailable' });
  });
});
