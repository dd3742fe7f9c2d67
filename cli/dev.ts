import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { migrate } from '../db/migrate.js';
import { loadConfig } from '../platform/config.js';
import { createLogger } from '../platform/logger.js';
import { type EmbeddedPostgres, startPostgres } from '../platform/postgres.js';
import { openRuntime } from '../platform/runtime.js';
import { type DevServer, startTemporalDevServer } from '../platform/temporal-server.js';
import { startTelemetry } from '../platform/telemetry.js';
import { ensureTools } from '../platform/tools.js';
import { installTemporalRuntime } from '../platform/worker.js';
import { startApi } from './api.js';
import { startDevFleet } from './dev-fleet.js';
import { seedDefaults } from './seed.js';
import { onShutdown } from './shared.js';
import { startWorker } from './worker.js';

/**
 * Everything on one machine: PostgreSQL and a Temporal dev server (both persistent under the data
 * directory, or reused when DATABASE_URL / TEMPORAL_ADDRESS are set), migrations, worker and API.
 */
export function devCommand(program: Command): void {
  program
    .command('dev')
    .description('run the whole system on this machine (embedded PostgreSQL and Temporal, worker, API)')
    .action(async () => {
      const config = loadConfig();
      const logger = createLogger({ name: 'dev', level: config.env.LOG_LEVEL });
      installTemporalRuntime(logger);
      ensureTools();
      mkdirSync(config.dataDir, { recursive: true });
      const stops: Array<() => Promise<void>> = [];
      const stopAll = async () => {
        for (const stop of stops.reverse()) await stop().catch(() => {});
      };
      onShutdown(stopAll);
      try {
        let databaseUrl = config.env.DATABASE_URL;
        let pg: EmbeddedPostgres | undefined;
        let temporal: DevServer | undefined;
        const ds = config.temporal.devServer;
        const reuseTemporal = Boolean(process.env.TEMPORAL_ADDRESS);
        [pg, temporal] = await Promise.all([
          databaseUrl
            ? undefined
            : startPostgres({
                dataDir: path.join(config.dataDir, 'pg'),
                port: config.env.FLEETBRAIN_PG_PORT,
              }),
          reuseTemporal
            ? undefined
            : startTemporalDevServer({
                ip: ds.ip,
                port: ds.port,
                uiPort: ds.uiPort,
                dbFile: path.resolve(config.dataDir, ds.dbFile),
                namespace: config.temporal.namespace,
                logLevel: ds.logLevel,
                searchAttributes: config.temporal.searchAttributes,
              }),
        ]);
        if (pg) stops.push(() => pg.stop());
        if (temporal) stops.push(() => temporal.stop());
        databaseUrl ??= pg?.url ?? '';
        await migrate(databaseUrl);
        await seedDefaults(databaseUrl);
        const telemetry = startTelemetry('fleetbrain-dev');
        stops.push(() => telemetry.shutdown());
        const runtime = await openRuntime(config, databaseUrl, 'dev');
        stops.push(() => runtime.close());
        // The executor side first: it seeds the firmware catalogue (image URLs of the simulator's file
        // server) that the policy engines of the worker and API load, and its executor drives rollouts.
        const fleet = await startDevFleet(config, databaseUrl, logger);
        stops.push(() => fleet.stop());
        const worker = await startWorker(config, runtime.db, logger, telemetry, {
          executors: fleet.executors,
        });
        stops.push(() => worker.close());
        const api = await startApi(config, runtime, logger);
        stops.push(() => api.close());
        const lines = [
          'Fleetbrain is running:',
          `  API          ${api.url}   (OpenAPI: ${api.url}/docs, readiness: ${api.url}/readyz)`,
          temporal?.uiUrl
            ? `  Temporal UI  ${temporal.uiUrl}`
            : `  Temporal     ${config.temporal.address} (external)`,
          `  PostgreSQL   ${databaseUrl}`,
          ...fleet.summary,
          `  data         ${config.dataDir}`,
          'Press Ctrl-C to stop.',
        ];
        process.stdout.write(`${lines.join('\n')}\n`);
      } catch (err) {
        await stopAll();
        throw err;
      }
    });
}
