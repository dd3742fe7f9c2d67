import type { SchemaRegistry } from '../../datamodel/registry.js';
import { connect } from '../../db/client.js';
import { maintainEventPartitions, startPartitionMaintenance } from '../../fleet/partitions.js';
import { compactRollups } from '../../fleet/rollup.js';
import type { Logger } from '../../platform/logger.js';
import type { Executor } from '../executor.js';
import { rates, startHealthWriter } from '../health.js';
import { WriteBatcher } from '../persist.js';
import { createSchemaGate, type SchemaGate } from '../schema-gate.js';
import { openSharedRegistry, reloadFailed } from '../schema-store.js';
import { CredentialCipher } from '../secrets.js';
import { devicesNeedingSession, expireDue } from '../task-queue.js';
import { AcsServer, type AcsConfigInput } from './acs.js';
import { ConnectionRequester } from './connection-request.js';
import { createCwmpExecutor } from './driver.js';

export const HEALTH_COMPONENT = 'executor:cwmp';

/**
 * How the ACS groups its sessions' writes. A transaction has a fixed cost (round trips, a commit's WAL
 * flush, the rollup triggers' statements) that a storm pays per flush. The first job after a quiet
 * spell waits up to 20 ms for company; while a flush is in flight, the jobs arriving meanwhile wait
 * for it and go together (group commit). In a 100k storm that makes several hundred jobs a flush
 * and 0.4 to 0.6 ms of PostgreSQL CPU per session, against 20 to 35 jobs and 0.74 to 1.0 ms when up
 * to four flushes started every 20 ms.
 */
export const ACS_WRITES = { maxDelayMs: 20, maxJobs: 1000, maxConcurrentFlushes: 4 } as const;

/**
 * Everything `fleetbrain executor` runs: the ACS endpoint, the CWMP executor, connection requests,
 * the sweeper (expiry, waking devices with queued work submitted by other processes) and the
 * fleet-health row.
 */
export async function startCwmpService(opts: {
  databaseUrl: string;
  log: Logger;
  acs?: AcsConfigInput;
  cipher?: CredentialCipher;
  registry?: SchemaRegistry;
  sweepMs?: number;
}): Promise<{ acs: AcsServer; executor: Executor; gate: SchemaGate; close(): Promise<void> }> {
  const db = connect(opts.databaseUrl, { max: 16, applicationName: 'fleetbrain-executor' });
  const cipher = opts.cipher ?? CredentialCipher.fromEnv();
  // The shared (PostgreSQL) registry: trees discovered here are known to the worker and API too.
  const registry =
    opts.registry ?? (await openSharedRegistry(db.db, { onReloadError: reloadFailed(opts.log) }));
  if (opts.registry) await registry.load();
  const gate = createSchemaGate(registry);
  // Today's event partition before the first Inform: an insert routed to the default partition while
  // the maintenance attaches the day's partition fails (the CPE would only retry, but a start must not
  // refuse its first informs).
  await maintainEventPartitions(db.db).catch((err) =>
    opts.log.warn({ err }, 'device_events partition maintenance failed at start'),
  );
  const batcher = new WriteBatcher(db.db, ACS_WRITES);
  const acs = new AcsServer({ pool: db.pool, db: db.db, batcher, gate, cipher, log: opts.log }, opts.acs);
  await acs.listen();
  const requester = new ConnectionRequester({ pool: db.pool, cipher, log: opts.log });
  const executor = createCwmpExecutor({ pool: db.pool, gate, requester });
  const stopHealth = startHealthWriter(
    db.pool,
    HEALTH_COMPONENT,
    () => ({
      accepting: acs.activeSessions < acs.config.maxSessions,
      activeSessions: acs.activeSessions,
      ...rates(acs.informsPerMinute),
    }),
    { onError: (err) => opts.log.warn({ err }, 'health row not written') },
  );
  const sweep = setInterval(() => {
    void (async () => {
      await expireDue(db.pool);
      const due = await devicesNeedingSession(db.pool, 500, 'cwmp');
      requester.wake(due.filter((d) => d.state === 'queued').map((d) => d.deviceId));
    })().catch((err) => opts.log.warn({ err }, 'sweep failed'));
  }, opts.sweepMs ?? 5_000);
  sweep.unref();
  const stopPartitions = startPartitionMaintenance(db.db, {
    onError: (err) => opts.log.warn({ err }, 'device_events partition maintenance failed'),
    onDone: (r) => {
      if (r.created.length + r.dropped.length > 0) opts.log.info(r, 'device_events partitions maintained');
      // The same hourly tick folds the rollups' append-only deltas (fleet/rollup.ts).
      compactRollups(db.db).catch((err) => opts.log.warn({ err }, 'rollup compaction failed'));
    },
  });
  opts.log.info({ url: acs.url }, 'ACS listening');
  return {
    acs,
    executor,
    /** The shared schema gate, for a USP controller in the same process (one registry, not two). */
    gate,
    async close() {
      clearInterval(sweep);
      stopPartitions();
      stopHealth();
      requester.close();
      await acs.close();
      await db.close();
    },
  };
}
