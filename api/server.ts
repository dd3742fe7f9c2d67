import Fastify from 'fastify';
import { serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Logger } from '../platform/logger.js';
import { type AppDeps, app } from './app.js';

/** Builds the server instance (tests use `inject`; the `api` command listens). */
export async function buildServer(deps: AppDeps, opts: { logger?: Logger } = {}) {
  const server = Fastify({
    loggerInstance: opts.logger,
    bodyLimit: 1024 * 1024,
    // Request ids come from us, not the client, so logs cannot be forged across requests.
    genReqId: () => crypto.randomUUID(),
  }).withTypeProvider<ZodTypeProvider>();
  server.setValidatorCompiler(validatorCompiler);
  server.setSerializerCompiler(serializerCompiler);
  await server.register(app, deps);
  await server.ready();
  return server;
}
