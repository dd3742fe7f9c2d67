import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { Client } from '@temporalio/client';
import type { FastifyInstance } from 'fastify';
import { jsonSchemaTransform, jsonSchemaTransformObject } from 'fastify-type-provider-zod';
import type { DbHandle } from '../db/client.js';
import type { Llm, PlannerUnavailable } from '../planner/llm.js';
import type { AuthOptions } from './auth/config.js';
import { authOptionsFromEnv } from './auth/config.js';
import { oidcRoutes } from './auth/oidc.js';
import { registerAuth } from './auth/plugin.js';
import { consoleRoutes } from './console/plugin.js';
import { registerErrorHandling } from './errors.js';
import { type HardeningOptions, registerHardening } from './hardening.js';
import type { ReadinessCheck } from './readiness.js';
import { approvalRoutes } from './routes/approvals.js';
import { auditRoutes } from './routes/audit.js';
import { fleetRoutes } from './routes/fleet.js';
import { fleetQuestionRoutes } from './routes/fleet-questions.js';
import { healthRoutes } from './routes/health.js';
import { identityRoutes } from './routes/identity.js';
import { profileRoutes } from './routes/profiles.js';
import { type RolloutRoutesOptions, rolloutRoutes } from './routes/rollouts.js';
import { type ChangeRequestRoutesOptions, changeRequestRoutes } from './routes/change-requests.js';

/** What the API needs from the outside; built by the entry point (or a test). */
export interface AppDeps {
  db: DbHandle;
  temporal: { client: Client; namespace: string; taskQueue: string };
  readiness: ReadinessCheck[];
  /** JWT/OIDC settings; from the environment when absent. Bearer tokens always work. */
  auth?: AuthOptions;
  /** Firmware rollouts: dry-run planner and policy decision; routes are registered only when given. */
  rollouts?: Omit<RolloutRoutesOptions, 'temporal' | 'taskQueue'>;
  /** The planner's language model; without one, plain-language questions answer 503 naming why. */
  llm?: Llm | PlannerUnavailable;
  /** Security headers and rate limits (default 1200 requests per minute per caller). */
  hardening?: HardeningOptions;
  /** Change requests: data-model lookup and policy engine; routes are registered only when given. */
  changeRequests?: Omit<ChangeRequestRoutesOptions, 'db' | 'temporal' | 'taskQueue' | 'llm'>;
}

/**
 * The Fastify application as a plugin: routes, error handling and the OpenAPI document. The server
 * (api/server.ts) only creates the instance, registers this and listens.
 */
export async function app(fastify: FastifyInstance, deps: AppDeps): Promise<void> {
  registerErrorHandling(fastify);
  await registerHardening(fastify, deps.hardening);
  // Every route requires authentication unless its schema declares `security: []`.
  const auth = deps.auth ?? authOptionsFromEnv();
  registerAuth(fastify, {
    db: deps.db.db,
    options: auth,
    publicPrefixes: ['/docs', '/console'],
  });
  await fastify.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Fleetbrain API',
        version: '0.1.0',
        description: 'Policy-driven AI control plane for broadband CPE fleets.',
      },
      components: {
        securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      },
      security: [{ bearer: [] }],
    },
    transform: jsonSchemaTransform,
    transformObject: jsonSchemaTransformObject,
  });
  await fastify.register(swaggerUi, { routePrefix: '/docs' });
  await fastify.register(consoleRoutes);
  await fastify.register(healthRoutes, { checks: deps.readiness });
  await fastify.register(identityRoutes, { db: deps.db.db });
  await fastify.register(oidcRoutes, { db: deps.db.db, ...(auth.oidc ? { oidc: auth.oidc } : {}) });
  await fastify.register(approvalRoutes, { db: deps.db.db, temporal: deps.temporal.client });
  await fastify.register(auditRoutes, { db: deps.db.db });
  await fastify.register(fleetRoutes, { db: deps.db.db });
  await fastify.register(profileRoutes, {
    db: deps.db.db,
    temporal: deps.temporal.client,
    taskQueue: deps.temporal.taskQueue,
  });
  await fastify.register(fleetQuestionRoutes, {
    db: deps.db.db,
    llm: deps.llm ?? { kind: 'planner_unavailable', reason: 'no language model is configured for this API' },
  });
  if (deps.rollouts)
    await fastify.register(rolloutRoutes, {
      ...deps.rollouts,
      temporal: deps.temporal.client,
      taskQueue: deps.temporal.taskQueue,
    });
  if (deps.changeRequests)
    await fastify.register(changeRequestRoutes, {
      ...deps.changeRequests,
      db: deps.db.db,
      temporal: deps.temporal.client,
      taskQueue: deps.temporal.taskQueue,
      llm: deps.llm ?? {
        kind: 'planner_unavailable',
        reason: 'no language model is configured for this API',
      },
    });
}
