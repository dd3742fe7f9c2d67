import type { Command } from 'commander';
import { postgresCheck, temporalCheck } from '../api/readiness-checks.js';
import { buildServer } from '../api/server.js';
import { createLlm, llmSettingsFromEnv } from '../planner/llm.js';
import { openPolicyEngine, policyEngineCheck } from '../policies/runtime.js';
import { type Config, loadConfig } from '../platform/config.js';
import { createLogger, type Logger } from '../platform/logger.js';
import { openRuntime, type Runtime } from '../platform/runtime.js';
import { startTelemetry } from '../platform/telemetry.js';
import { onShutdown, requireDatabaseUrl } from './shared.js';

export async function startApi(config: Config, runtime: Runtime, logger: Logger) {
  // Fails closed: a missing or broken policy bundle stops start-up, naming the file and OPA's error.
  const policy = await openPolicyEngine(runtime.db, {
    opaUrl: config.env.OPA_URL,
    policyDir: config.env.FLEETBRAIN_POLICY_DIR,
  });
  const server = await buildServer(
    {
      db: runtime.db,
      temporal: {
        client: runtime.client,
        namespace: config.temporal.namespace,
        taskQueue: config.temporal.taskQueues.workflows,
      },
      readiness: [postgresCheck(runtime.db), temporalCheck(runtime.connection), policyEngineCheck(policy)],
      llm: createLlm(llmSettingsFromEnv(config.env)),
    },
    { logger },
  );
  const url = await server.listen({ host: config.env.API_HOST, port: config.env.API_PORT });
  return {
    url,
    async close() {
      await server.close();
      await policy.close();
    },
  };
}

export function apiCommand(program: Command): void {
  program
    .command('api')
    .description('run the HTTP API (needs DATABASE_URL and a reachable Temporal)')
    .action(async () => {
      const config = loadConfig();
      const telemetry = startTelemetry('fleetbrain-api');
      const logger = createLogger({ name: 'api', level: config.env.LOG_LEVEL });
      const runtime = await openRuntime(config, requireDatabaseUrl(config), 'api');
      const api = await startApi(config, runtime, logger);
      logger.info({ url: api.url }, 'API listening');
      onShutdown(async () => {
        await api.close();
        await runtime.close();
        await telemetry.shutdown();
      });
    });
}
