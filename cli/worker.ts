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
import { protocolRouter } from '../executor/by-protocol.js';
import type { Executor } from '../executor/executor.js';
import { createQueueExecutor } from '../executor/queue-executor.js';
import { createSchemaGate, type SchemaGate } from '../executor/schema-gate.js';
import { openSharedRegistry, reloadFailed } from '../executor/schema-store.js';
import { CredentialCipher } from '../executor/secrets.js';
import { uspPrecheck } from '../executor/usp/precheck.js';

type Executors = Partial<Record<'cwmp' | 'usp', Executor>>;

/**
 * The executors a standalone worker drives: tasks are queued in PostgreSQL for the `executor`
 * process, which runs the ACS and the USP controller. CWMP devices are woken here (connection
 * requests need the credential key); USP agents are reached by the controller's sweep of queued work.
 * The data-model registry is the shared PostgreSQL one: trees the executor process discovered are
 * re-read on a lookup miss (throttled), so they reach this process too.
 */
async function standaloneExecutors(
  db: DbHandle,
  logger: Logger,
): Promise<{ executors: Executors; gate: SchemaGate; close(): void }> {
  const registry = await openSharedRegistry(db.db, { onReloadError: reloadFailed(logger) });
  const gate = createSchemaGate(registry);
  const usp = createQueueExecutor({ pool: db.pool, protocol: 'usp', precheck: uspPrecheck(db.pool, gate) });
  if (!process.env.FLEETBRAIN_CREDENTIAL_KEY) {
    // CWMP tasks then fail with an error naming the missing executor; USP work still runs.
    logger.warn('FLEETBRAIN_CREDENTIAL_KEY is not set: this worker cannot drive CWMP devices');
    return { executors: { usp }, gate, close: () => {} };
  }
  const requester = new ConnectionRequester({
    pool: db.pool,
    cipher: CredentialCipher.fromEnv(),
    log: logger.child({ component: 'cr' }),
  });
  return {
    executors: { cwmp: createCwmpExecutor({ pool: db.pool, gate, requester }), usp },
    gate,
    close: () => requester.close(),
  };
}

export async function startWorker(
  config: Config,
  db: DbHandle,
  logger: Logger,
  telemetry: Telemetry,
  extra: { executors?: Executors } = {},
) {
  // Fails closed like the API: no worker runs activities without a loadable policy bundle.
  const policy = await openPolicyEngine(db, {
    opaUrl: config.env.OPA_URL,
    policyDir: config.env.FLEETBRAIN_POLICY_DIR,
  });
  // Rollouts: the real executor, the PostgreSQL fleet (frozen cohorts, device events, fleet health)
  // and the firmware catalogue table.
  const own = extra.executors ? undefined : await standaloneExecutors(db, logger);
  const executors = extra.executors ?? own?.executors ?? {};
  // A rollout's cohort may mix protocols: each device goes to the driver its inventory row names.
  const rolloutExecutor = Object.keys(executors).length > 0 ? protocolRouter(db.pool, executors) : undefined;
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
      profileExecutors: executors,
      ...(own?.gate ? { profileGate: own.gate } : {}),
      rolloutFleet: dbRolloutFleet(db.db),
      rolloutImages: dbRolloutImages(db.db),
      // Change requests: the same executor, the stored (exact) data models, the worker's policy engine.
      changeExecutors: executors,
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
