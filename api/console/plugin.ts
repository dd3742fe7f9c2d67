import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';

/** Where the console's static files live (plain ES modules and CSS: no build step). */
export const CONSOLE_ROOT = join(dirname(fileURLToPath(import.meta.url)), 'public');

/**
 * The operator console at /console/. The files are public (the auth hook lists /console as a public
 * prefix); every API call the console makes carries the operator's bearer token, so the data is not.
 * Routes are hidden from the OpenAPI document: they are pages, not API operations.
 */
export async function consoleRoutes(app: FastifyInstance): Promise<void> {
  await app.register(fastifyStatic, {
    root: CONSOLE_ROOT,
    prefix: '/console/',
    index: ['index.html'],
    // Pages change with the API release; a short cache keeps an upgraded console consistent.
    maxAge: 60_000,
    schemaHide: true,
  });
  app.get('/console', { schema: { hide: true } }, (_req, reply) => reply.redirect('/console/', 302));
}
