import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresCheck, temporalCheck } from '../../api/readiness-checks.js';
import { buildServer } from '../../api/server.js';
import { connect, type DbHandle } from '../../db/client.js';
import { type EmbeddedPostgres, startPostgres } from '../../platform/postgres.js';
import { freePort } from '../../platform/process.js';
import { type DevServer, startTemporalDevServer } from '../../platform/temporal-server.js';

// Own PostgreSQL and Temporal (not the run's shared ones): this test stops and restarts them.
describe('/readyz follows its dependencies without a restart', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fb-readyz-'));
  chmodSync(dir, 0o755);
  let pgPort = 0;
  let tPort = 0;
  let pgServer: EmbeddedPostgres;
  let temporal: DevServer;
  let db: DbHandle;
  let connection: Connection;
  let server: Awaited<ReturnType<typeof buildServer>>;
  const startPg = () => startPostgres({ dataDir: path.join(dir, 'pg'), port: pgPort, ephemeral: true });
  const startTemporal = () => startTemporalDevServer({ port: tPort, dbFile: path.join(dir, 'temporal.db') });

  beforeAll(async () => {
    [pgPort, tPort] = [await freePort(), await freePort()];
    [pgServer, temporal] = await Promise.all([startPg(), startTemporal()]);
    db = connect(pgServer.url, { max: 2 });
    connection = await Connection.connect({ address: temporal.address });
    server = await buildServer({
      db,
      temporal: { client: new Client({ connection }), namespace: 'default', taskQueue: 'unused' },
      readiness: [postgresCheck(db), temporalCheck(connection)],
    });
  });
  afterAll(async () => {
    await server?.close();
    await connection?.close();
    await db?.close();
    await Promise.allSettled([pgServer?.stop(), temporal?.stop()]);
    rmSync(dir, { recursive: true, force: true });
  });

  const ready = async () => {
    const res = await server.inject({ method: 'GET', url: '/readyz' });
    return { status: res.statusCode, failing: (res.json() as { failing: string[] }).failing };
  };

  it('is 200 with everything up, and /healthz is 200', async () => {
    expect(await ready()).toEqual({ status: 200, failing: [] });
    expect((await server.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
  });

  it('turns 503 naming postgres within 10 s of a PostgreSQL stop, and back to 200 after a start', async () => {
    await pgServer.stop();
    await expect
      .poll(ready, { timeout: 10_000, interval: 250 })
      .toEqual({ status: 503, failing: ['postgres'] });
    pgServer = await startPg();
    await expect.poll(ready, { timeout: 10_000, interval: 250 }).toEqual({ status: 200, failing: [] });
  });

  it('turns 503 naming temporal within 10 s of a Temporal stop, and back to 200 after a start', async () => {
    await temporal.stop();
    await expect
      .poll(ready, { timeout: 10_000, interval: 250 })
      .toEqual({ status: 503, failing: ['temporal'] });
    temporal = await startTemporal();
    await expect.poll(ready, { timeout: 10_000, interval: 250 }).toEqual({ status: 200, failing: [] });
  });

  it('serves the OpenAPI document', async () => {
    const res = await server.inject({ method: 'GET', url: '/docs/json' });
    expect(res.statusCode).toBe(200);
    const doc = res.json() as { openapi: string; paths: Record<string, unknown> };
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/healthz', '/readyz']));
  });

  it('answers unknown routes with the one error shape', async () => {
    const res = await server.inject({ method: 'GET', url: '/nope' });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toEqual({ code: 'not_found', message: 'no route GET /nope' });
  });
});
