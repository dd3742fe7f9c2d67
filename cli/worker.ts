import os from 'node:os';
import type { Command } from 'commander';
import { type Config, loadConfig } from '../platform/config.js';
import { createLogger, type Logger } from '../platform/logger.js';
import type { Telemetry } from '../platform/telemetry.js';
import { startTelemetry } from '../platform/telemetry.js';
import { createWorker, installTemporalRuntime } from '../platform/worker.js';
import { onShutdown } from './shared.js';

export async function startWorker(config: Config, logger: Logger, telemetry: Telemetry) {
  const { worker, connection } = await createWorker({
    address: config.temporal.address,
    namespace: config.temporal.namespace,
    taskQueue: config.temporal.taskQueues.workflows,
    deps: { logger, workerId: `${os.hostname()}:${process.pid}` },
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
    },
  };
}

export function workerCommand(program: Command): void {
  program
    .command('worker')
    .description('run a Temporal worker for all Fleetbrain workflows and activities')
    .action(async () => {
      const config = loadConfig();
      const telemetry = startTelemetry('fleetbrain-worker');
      const logger = createLogger({ name: 'worker', level: config.env.LOG_LEVEL });
      installTemporalRuntime(logger);
      const w = await startWorker(config, logger, telemetry);
      logger.info({ taskQueue: config.temporal.taskQueues.workflows }, 'worker running');
      onShutdown(async () => {
        await w.close();
        await telemetry.shutdown();
      });
      await w.running;
    });
}
