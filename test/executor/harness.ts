import { SchemaRegistry } from '../../datamodel/registry.js';
import { AcsServer, type AcsConfigInput } from '../../executor/cwmp/acs.js';
import { ConnectionRequester } from '../../executor/cwmp/connection-request.js';
import { createCwmpExecutor, provisionCredentials } from '../../executor/cwmp/driver.js';
import type { DeviceTaskStatus, Executor, StepRef } from '../../executor/executor.js';
import { WriteBatcher } from '../../executor/persist.js';
import { createSchemaGate } from '../../executor/schema-gate.js';
import { CredentialCipher } from '../../executor/secrets.js';
import { createLogger } from '../../platform/logger.js';
import { type FleetOptions, SimFleet } from '../../sim/cwmp/fleet.js';
import { createTestDatabase } from '../support/db.js';

export type TestDb = Awaited<ReturnType<typeof createTestDatabase>>;

/** A database, an ACS, the CWMP executor and (optionally) a simulated fleet, wired as in production. */
export async function startCwmpHarness(
  opts: { acs?: AcsConfigInput; fleet?: Omit<FleetOptions, 'acsUrl'>; provision?: boolean } = {},
) {
  const db = await createTestDatabase();
  const log = createLogger({ name: 'test-acs', level: 'warn' });
  const cipher = new CredentialCipher('test-credential-key');
  const registry = new SchemaRegistry();
  const gate = createSchemaGate(registry);
  const batcher = new WriteBatcher(db.db);
  const acs = new AcsServer(
    { pool: db.pool, db: db.db, batcher, gate, cipher, log },
    { port: 0, retryBaseMs: 0, ...opts.acs },
  );
  await acs.listen();
  const requester = new ConnectionRequester({
    pool: db.pool,
    cipher,
    log,
    minIntervalMs: 0,
    timeoutMs: 1_000,
  });
  const executor: Executor = createCwmpExecutor({ pool: db.pool, gate, requester });
  let fleet: SimFleet | null = null;
  if (opts.fleet) {
    fleet = new SimFleet({ ...opts.fleet, acsUrl: acs.url });
    await fleet.start();
    if (opts.provision !== false)
      await provisionCredentials(
        db.pool,
        cipher,
        fleet.devices.map((d) => ({
          deviceId: d.agent.device.id,
          username: d.username,
          password: d.password,
          crUsername: d.crUsername,
          crPassword: d.crPassword,
        })),
      );
  }
  return {
    db,
    acs,
    executor,
    registry,
    gate,
    cipher,
    batcher,
    requester,
    fleet: fleet as SimFleet,
    async waitFor(
      ref: StepRef,
      pred: (s: DeviceTaskStatus[]) => boolean,
      timeoutMs = 10_000,
    ): Promise<DeviceTaskStatus[]> {
      const end = Date.now() + timeoutMs;
      for (;;) {
        const s = await executor.status(ref);
        if (pred(s)) return s;
        if (Date.now() > end) throw new Error(`timed out; statuses: ${JSON.stringify(s, null, 1)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async events(deviceId: string) {
      const r = await db.pool.query<{ kind: string; payload: Record<string, unknown> }>(
        `SELECT kind, payload FROM device_events WHERE device_id = $1 ORDER BY id`,
        [deviceId],
      );
      return r.rows;
    },
    async stop() {
      await fleet?.stop();
      requester.close();
      await acs.close();
      await db.drop();
    },
  };
}

export type CwmpHarness = Awaited<ReturnType<typeof startCwmpHarness>>;

export const inAMinute = () => new Date(Date.now() + 60_000);
