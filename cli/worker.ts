import os from 'node:os';
import type { Command } from 'commander';
import { connect, type DbHandle } from '../db/client.js';
import { type Config, loadConfig } from '../platform/config.js';
import { createLogger, type Logger } from '../platform/logger.js';
import type { Telemetry } from '../platform/telemetry.js';
import { startTelemetry } from '../platform/telemetry.js';
import { createWorker, installTemporalRuntime } from '../platform/worker.js';
import { openPolicyEngine } from '../policies/runtime.js';
import { onShutdown, requireDatabaseUrl } from './shared.js';
import { dbRolloutFleet, dbRolloutImages } from '../activities/rollout.js';
import { registrySchemaFor } from '../activities/change-request.js';
import { ConnectionRequester } from '../executor/cwmp/connection-request.js';
import { createCwmpExecutor } from '../executor/cwmp/driver.js';
import type { Executor } from '../executor/executor.js';
import { createSchemaGate, type SchemaGate } from '../executor/schema-gate.js';
import { openSharedRegistry, reloadFailed } from '../executor/schema-store.js';
import { CredentialCipher } from '../executor/secrets.js';

/**
 * The executor a worker's rollout activities drive. `dev` passes the ACS service's own executor
 * (same process, same discovered data models). A standalone worker queues CWMP tasks in PostgreSQL
 * for the `executor` process and wakes devices itself (connection requests need the credential key).
 * Its data-model registry is the shared PostgreSQL one: trees the executor process discovered are
 * re-read on a lookup miss (throttled), so they reach this process too.
 */
async function standaloneCwmpExecutor(
  db: DbHandle,
  logger: Logger,
): Promise<{ executor?: Executor; gate?: SchemaGate; close(): void }> {
  if (!process.env.FLEETBRAIN_CREDENTIAL_KEY) {
    // Rollout activities then fail with an error naming the missing executor; nothing else needs it.
    logger.warn('FLEETBRAIN_CREDENTIAL_KEY is not set: this worker cannot drive firmware rollouts');
    return { close: () => {} };
  }
  const registry = await openSharedRegistry(db.db, { onReloadError: reloadFailed(logger) });
  const cipher = CredentialCipher.fromEnv();
  const requester = new ConnectionRequester({
    pool: db.pool,
    cipher,
    log: logger.child({ component: 'cr' }),
  });
  const gate = createSchemaGate(registry);
  return {
    executor: createCwmpExecutor({ pool: db.pool, gate, requester }),
    gate,
    close: () => requester.close(),
  };
}

export async function startWorker(
  config: Config,
  db: DbHandle,
  logger: Logger,
  telemetry: Telemetry,
  extra: { rolloutExecutor?: Executor } = {},
) {
  // Fails closed like the API: no worker runs activities without a loadable policy bundle.
  const policy = await openPolicyEngine(db, {
    opaUrl: config.env.OPA_URL,
    policyDir: config.env.FLEETBRAIN_POLICY_DIR,
  });
  // Rollouts: the real executor, the PostgreSQL fleet (frozen cohorts, device events, fleet health)
  // and the firmware catalogue table.
  const own = extra.rolloutExecutor ? undefined : await standaloneCwmpExecutor(db, logger);
  const rolloutExecutor = extra.rolloutExecutor ?? own?.executor;
  // The shared registry: data models the executor process discovered reach change requests here.
  const changeRegistry = await openSharedRegistry(db.db, { onReloadError: reloadFailed(logger) });
  const { worker, connection } = await createWorker({
    address: config.temporal.address,
    namespace: config.temporal.namespace,
    taskQueue: config.temporal.taskQueues.workflows,
    deps: {
      logger,
      workerId: `${os.hostname()}:${process.pid}`,
      db: db.db,
      ...(rolloutExecutor ? { rolloutExecutor } : {}),
      // Profile reconcile writes through the same executor; the gate keeps firmware-invalid claims out.
      ...(rolloutExecutor ? { profileExecutors: { cwmp: rolloutExecutor } } : {}),
      ...(own?.gate ? { profileGate: own.gate } : {}),
      rolloutFleet: dbRolloutFleet(db.db),
      rolloutImages: dbRolloutImages(db.db),
      // Change requests: the same executor, the stored (exact) data models, the worker's policy engine.
      ...(rolloutExecutor ? { changeExecutors: { cwmp: rolloutExecutor } } : {}),
      changeSchemaFor: registrySchemaFor(changeRegistry),
      changePolicy: policy,
    },
    tuning: config.temporal.worker,
    telemetry,
  });
  const running = worker.run();
  return {
    running,
    async close() {
      worker.shutdown();
      await running;
      await connection.close();
      own?.close();
      await policy.close();
    },
  };
}

export function workerCommand(program: Command): void {
  program
    .command('worker')
    .description('run a Temporal worker for all Fleetbrain workflows and activities (needs DATABASE_URL)')
    .action(async () => {
      const config = loadConfig();
      const telemetry = startTelemetry('fleetbrain-worker');
      const logger = createLogger({ name: 'worker', level: config.env.LOG_LEVEL });
      installTemporalRuntime(logger);
      const db = connect(requireDatabaseUrl(config), { applicationName: 'fleetbrain-worker' });
      const w = await startWorker(config, db, logger, telemetry);
      logger.info({ taskQueue: config.temporal.taskQueues.workflows }, 'worker running');
      onShutdown(async () => {
        await w.close();
        await db.close();
        await telemetry.shutdown();
      });
      await w.running;
    });
}
