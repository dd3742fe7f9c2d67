import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { buildServer } from '../../api/server.js';
import { createTestIdentity } from '../support/auth.js';
import { createTestDatabase } from '../support/db.js';

type Server = Awaited<ReturnType<typeof buildServer>>;
let db: Awaited<ReturnType<typeof createTestDatabase>>;
let connection: Connection;
let server: Server;

beforeAll(async () => {
  db = await createTestDatabase();
  connection = Connection.lazy({ address: inject('temporalAddress') });
  server = await buildServer({
    db,
    temporal: { client: new Client({ connection }), namespace: 'default', taskQueue: 'unused' },
    readiness: [],
    auth: {},
    hardening: { rateLimitPerMin: 5 },
  });
});
afterAll(async () => {
  await server?.close();
  await connection?.close();
  await db?.drop();
});

describe('API hardening', () => {
  it('sends security headers on every response, errors included', async () => {
    for (const url of ['/healthz', '/no-such-route', '/fleet/devices']) {
      const res = await server.inject({ method: 'GET', url, remoteAddress: '10.0.0.1' });
      expect(res.headers['content-security-policy']).toContain("frame-ancestors 'none'");
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.headers['strict-transport-security']).toMatch(/max-age=\d+/);
      expect(res.headers['x-powered-by']).toBeUndefined();
    }
  });

  it('limits each caller separately and answers 429 in the error shape with Retry-After', async () => {
    const a = await createTestIdentity(db.db, 'rita', ['viewer']);
    const b = await createTestIdentity(db.db, 'ravi', ['viewer']);
    const call = (headers: { authorization: string }) =>
      server.inject({ method: 'GET', url: '/fleet/devices?limit=1', headers, remoteAddress: '10.0.0.2' });
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await call(a.headers)).statusCode);
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429]);
    const limited = await call(a.headers);
    expect(limited.statusCode).toBe(429);
    expect(limited.json()).toMatchObject({ code: 'rate_limited' });
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    // Another token from the same address has its own budget.
    expect((await call(b.headers)).statusCode).toBe(200);
  });

  it('rejects bodies over the limit with 413 and no stack trace', async () => {
    const who = await createTestIdentity(db.db, 'olga', ['viewer']);
    const res = await server.inject({
      method: 'POST',
      url: '/fleet/select',
      headers: { ...who.headers, 'content-type': 'application/json' },
      payload: JSON.stringify({ selector: { all: true }, pad: 'x'.repeat(2 * 1024 * 1024) }),
      remoteAddress: '10.0.0.3',
    });
    expect(res.statusCode).toBe(413);
    expect(res.body).not.toMatch(/\bat .*\.(ts|js):\d+/);
    expect(Object.keys(res.json()).sort()).toEqual(['code', 'message']);
  });
});
