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
import { createRolloutActivities, dbRolloutFleet, dbRolloutImages } from '../activities/rollout.js';
import { type RolloutActor, rolloutPolicyDecider } from '../activities/rollout-policy.js';
import type { PreparedRollout } from '../activities/rollout.js';
import type { RolloutSpec } from '../domain/rollout/spec.js';
import { registrySchemaFor } from '../activities/change-request.js';
import { openSharedRegistry, reloadFailed } from '../executor/schema-store.js';

export async function startApi(config: Config, runtime: Runtime, logger: Logger) {
  // Fails closed: a missing or broken policy bundle stops start-up, naming the file and OPA's error.
  const policy = await openPolicyEngine(runtime.db, {
    opaUrl: config.env.OPA_URL,
    policyDir: config.env.FLEETBRAIN_POLICY_DIR,
  });
  // The shared registry: data models the executor discovered are re-read here on a lookup miss.
  const registry = await openSharedRegistry(runtime.db.db, { onReloadError: reloadFailed(logger) });
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
      hardening: { rateLimitPerMin: config.env.API_RATE_LIMIT_PER_MIN },
      rollouts: rolloutApi(runtime, policy, logger),
      // Same fail-closed data-model registry as the worker: without an exact model, no change passes.
      changeRequests: { schemaFor: registrySchemaFor(registry), policy },
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

/** Rollout routes: the dry-run planner over the PostgreSQL fleet and catalogue, and the OPA decision. */
function rolloutApi(runtime: Runtime, engine: Awaited<ReturnType<typeof openPolicyEngine>>, logger: Logger) {
  const fleet = dbRolloutFleet(runtime.db.db);
  const images = dbRolloutImages(runtime.db.db);
  // The planning code of the prepare activity, run in the API for the dry run (nothing is frozen).
  const acts = createRolloutActivities({
    logger,
    db: runtime.db.db,
    rolloutFleet: fleet,
    rolloutImages: images,
  });
  const decide = rolloutPolicyDecider({ db: runtime.db.db, engine, fleet, images });
  return {
    prepare: (rolloutId: string, spec: RolloutSpec, seed: string) =>
      acts.prepareRollout({ rolloutId, spec, seed, dryRun: true }),
    decide: (spec: RolloutSpec, prepared: PreparedRollout, ctx: { rolloutId: string; actor: RolloutActor }) =>
      decide(ctx.rolloutId, spec, prepared, ctx.actor),
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
