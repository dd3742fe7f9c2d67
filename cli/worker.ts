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

export async function startWorker(config: Config, db: DbHandle, logger: Logger, telemetry: Telemetry) {
  // Fails closed like the API: no worker runs activities without a loadable policy bundle.
  const policy = await openPolicyEngine(db, {
    opaUrl: config.env.OPA_URL,
    policyDir: config.env.FLEETBRAIN_POLICY_DIR,
  });
  const { worker, connection } = await createWorker({
    address: config.temporal.address,
    namespace: config.temporal.namespace,
    taskQueue: config.temporal.taskQueues.workflows,
    deps: { logger, workerId: `${os.hostname()}:${process.pid}`, db: db.db },
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
