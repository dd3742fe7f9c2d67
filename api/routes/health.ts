import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { type ReadinessCheck, runChecks } from '../readiness.js';

const readyBody = z.object({
  ready: z.boolean(),
  /** Names of the dependencies that are not reachable, e.g. ["postgres"]. */
  failing: z.array(z.string()),
  checks: z.array(
    z.object({ name: z.string(), ok: z.boolean(), error: z.string().optional(), ms: z.number() }),
  ),
});

export const healthRoutes: FastifyPluginAsyncZod<{ checks: ReadinessCheck[] }> = async (app, opts) => {
  app.get(
    '/healthz',
    {
      schema: {
        tags: ['ops'],
        summary: 'Liveness: the process is up',
        security: [],
        response: { 200: z.object({ status: z.literal('ok') }) },
      },
    },
    async () => ({ status: 'ok' as const }),
  );
  app.get(
    '/readyz',
    {
      schema: {
        tags: ['ops'],
        summary: 'Readiness: PostgreSQL, Temporal and the policy engine are reachable',
        security: [],
        response: { 200: readyBody, 503: readyBody },
      },
    },
    async (_req, reply) => {
      const result = await runChecks(opts.checks);
      const body = { ...result, failing: result.checks.filter((c) => !c.ok).map((c) => c.name) };
      return reply.code(result.ready ? 200 : 503).send(body);
    },
  );
};
