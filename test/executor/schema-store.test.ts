import { createHash } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dbCheckPorts, registrySchemaFor } from '../../activities/change-request.js';
import { loadCoreSchema, serializeSchema } from '../../datamodel/compiled.js';
import { SchemaRegistry } from '../../datamodel/registry.js';
import { connect } from '../../db/client.js';
import { createSchemaGate } from '../../executor/schema-gate.js';
import { openSharedRegistry, PgSchemaStore } from '../../executor/schema-store.js';
import { createTestDatabase } from '../support/db.js';

type TestDb = Awaited<ReturnType<typeof createTestDatabase>>;

// What a CPE answers to GetParameterNames("Device.", false).
const names = [
  { path: 'Device.', writable: false },
  { path: 'Device.DeviceInfo.', writable: false },
  { path: 'Device.DeviceInfo.ProvisioningCode', writable: true },
  { path: 'Device.ManagementServer.', writable: false },
  { path: 'Device.ManagementServer.PeriodicInformInterval', writable: true },
  { path: 'Device.WiFi.SSID.', writable: true },
  { path: 'Device.WiFi.SSID.1.', writable: true },
  { path: 'Device.WiFi.SSID.1.SSID', writable: true },
];
const write = [
  { path: 'Device.ManagementServer.PeriodicInformInterval', value: '600' },
  { path: 'Device.ManagementServer.PeriodicInformInterval', value: '0' },
];
const keyOf = (softwareVersion: string) => ({ oui: '00D09E', productClass: 'HGW-500', softwareVersion });

async function counts(db: TestDb) {
  const r = await db.db.execute<{ e: string; s: string }>(
    sql`select (select count(*) from datamodel_entries) as e, (select count(*) from datamodel_schemas) as s`,
  );
  return { entries: Number(r.rows[0]?.e), schemas: Number(r.rows[0]?.s) };
}

describe('shared data-model registry (PostgreSQL)', () => {
  let db: TestDb;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db.drop();
  });

  it('a schema the executor discovers is resolved exactly by another process and validates writes', async () => {
    const key = keyOf('3.1.0');
    const executorSide = await openSharedRegistry(db.db);
    expect(await createSchemaGate(executorSide).registerDiscovered(key, names)).toBe(true);

    // A fresh registry over its own connection pool, as the worker or API process would have.
    const pool2 = connect(db.url, { max: 2 });
    const fresh = new SchemaRegistry(new PgSchemaStore(pool2.db));
    expect(fresh.resolve(key).match).toBe('none');
    await fresh.load();
    await pool2.close();
    const r = fresh.resolve(key);
    expect(r.match).toBe('exact');
    const rep = fresh.validateForDevice(key, write);
    expect(rep.schemaMatch).toBe('exact');
    expect(rep.results.map((x) => x.code)).toEqual(['ok', 'range']);
    expect(
      createSchemaGate(fresh).checkWrite(key, { kind: 'setValues', values: [write[0]!] } as never),
    ).toBeNull();
  });

  it('a long-running reader picks up a schema registered after it loaded (reload on miss)', async () => {
    const key = keyOf('3.2.0');
    const reader = await openSharedRegistry(db.db, { reloadEveryMs: 60_000 });
    const schemaFor = registrySchemaFor(reader) as ReturnType<typeof registrySchemaFor> & {
      ensure?: (keys: Iterable<typeof key>) => Promise<void>;
    };
    expect(schemaFor(key)).toBeUndefined(); // miss: starts a (throttled) background reload
    await new Promise((r) => setTimeout(r, 50));

    const writer = await openSharedRegistry(db.db);
    await createSchemaGate(writer).registerDiscovered(key, names);

    // Within the throttle window the reader does not hit the store again: still fail closed.
    await schemaFor.ensure?.([key]);
    expect(reader.resolve(key).match).toBe('fallback'); // 3.1.0 from the first test; never authorises
    expect(schemaFor(key)).toBeUndefined();
    // Once the window has passed (forced here), the miss re-reads the key and finds it.
    expect(await reader.reload(key, { force: true })).toBe(true);
    expect(schemaFor(key)).toBeDefined();
    expect(reader.validateForDevice(key, write).results.map((x) => x.code)).toEqual(['ok', 'range']);

    // Unthrottled: ensure() alone is enough (what dbCheckPorts awaits before its lookups).
    const key2 = keyOf('3.3.0');
    const quick = await openSharedRegistry(db.db, { reloadEveryMs: 1 });
    expect(quick.resolve(key2).match).toBe('fallback');
    const known = writer.resolve(key);
    if (known.match !== 'exact') throw new Error('writer lost its own schema');
    await writer.register(key2, known.schema, 'gpn');
    await new Promise((r) => setTimeout(r, 5));
    await quick.ensure([key2]);
    expect(quick.resolve(key2).match).toBe('exact');
  });

  it('change-request checks over PostgreSQL await the reload for the firmwares they target', async () => {
    const key = keyOf('6.0.0');
    await db.db.execute(
      sql`insert into devices (id, oui, product_class, serial_number, software_version, protocol) values
        ('00D09E-HGW-500-CR1', '00D09E', 'HGW-500', 'CR1', '6.0.0', 'cwmp'),
        ('00D09E-HGW-500-CR2', '00D09E', 'HGW-500', 'CR2', '6.0.0', 'cwmp')`,
    );
    // The API's registry, opened before the executor discovered firmware 6.0.0.
    const api = await openSharedRegistry(db.db, { reloadEveryMs: 1 });
    const ports = dbCheckPorts(db.db, registrySchemaFor(api), async () => {
      throw new Error('policy not needed here');
    });
    const selector = { field: 'softwareVersion', op: 'eq', value: '6.0.0' } as const;
    const first = await ports.resolve(selector as never);
    expect(first.devices).toHaveLength(2);
    expect(ports.schemaFor(first.devices[0]!)).toBeUndefined(); // not discovered yet: fails closed

    await createSchemaGate(await openSharedRegistry(db.db)).registerDiscovered(key, names);
    await new Promise((r) => setTimeout(r, 5));
    const again = await ports.resolve(selector as never);
    expect(ports.schemaFor(again.devices[0]!)).toBeDefined(); // first lookup after resolve: exact
    expect(api.resolve(key).match).toBe('exact');
  });

  it('writes are idempotent: the same schema and entry registered twice store one row each', async () => {
    const key = keyOf('4.0.0');
    const core = loadCoreSchema('tr-181-2-19-1-cwmp');
    const before = await counts(db);
    const a = await openSharedRegistry(db.db);
    const b = await openSharedRegistry(db.db);
    const ea = await a.register(key, core, 'xml');
    const eb = await b.register(key, core, 'xml');
    expect(eb.schemaId).toBe(ea.schemaId);
    const after = await counts(db);
    expect(after).toEqual({ entries: before.entries + 1, schemas: before.schemas + 1 });
  });

  it('a corrupt stored schema is a clear error and registers nothing', async () => {
    const corruptDb = await createTestDatabase();
    try {
      const key = keyOf('5.0.0');
      const okKey = keyOf('5.0.1');
      const w = await openSharedRegistry(corruptDb.db);
      const gate = createSchemaGate(w);
      await gate.registerDiscovered(okKey, names);
      const entry = await w.register(key, loadCoreSchema('tr-181-2-19-1-cwmp'), 'xml');

      // Not a compiled schema at all, stored under its own (correct) content hash.
      const bad = '{"format":"fleetbrain.tr181/1","params":1}';
      const badId = `sha256:${createHash('sha256').update(bad).digest('hex').slice(0, 32)}`;
      await corruptDb.db.execute(
        sql`insert into datamodel_schemas (schema_id, body, bytes) values (${badId}, ${bad}, 1)`,
      );
      await corruptDb.db.execute(
        sql`update datamodel_entries set schema_id = ${badId} where software_version = '5.0.0'`,
      );
      const r1 = new SchemaRegistry(new PgSchemaStore(corruptDb.db));
      await expect(r1.load()).rejects.toThrow(
        new RegExp(
          `data model ${badId} of 00D09E/HGW-500/5\\.0\\.0 cannot be loaded: stored data model .* is not a valid compiled schema`,
        ),
      );
      expect(r1.list()).toEqual([]); // all or nothing: not even the intact firmware
      await expect(r1.reload(key)).rejects.toThrow(/not a valid compiled schema/);
      expect(r1.resolve(key).match).toBe('none');
      expect(await r1.reload(okKey)).toBe(true); // the intact one still loads on its own

      // Valid JSON schema, but not the content its id names (tampered or mixed up).
      const other = { ...loadCoreSchema('tr-181-2-19-1-cwmp'), model: 'Device:9.9' };
      await corruptDb.db.execute(
        sql`update datamodel_entries set schema_id = ${entry.schemaId} where software_version = '5.0.0'`,
      );
      await corruptDb.db.execute(
        sql`update datamodel_schemas set body = ${serializeSchema(other)} where schema_id = ${entry.schemaId}`,
      );
      const r2 = new SchemaRegistry(new PgSchemaStore(corruptDb.db));
      await expect(r2.load()).rejects.toThrow(/does not match its content \(hashes to sha256:/);
      expect(r2.list()).toEqual([]);
      expect(r2.validateForDevice(key, write).results.every((x) => x.code === 'no_schema')).toBe(true);

      // A put whose id does not match the schema is refused and stores nothing.
      const before = await counts(corruptDb);
      await expect(new PgSchemaStore(corruptDb.db).putSchema('sha256:0000', other)).rejects.toThrow(
        /does not match its content/,
      );
      expect(await counts(corruptDb)).toEqual(before);
    } finally {
      await corruptDb.drop();
    }
  });
});
