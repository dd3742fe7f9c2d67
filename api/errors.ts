import type { FastifyError, FastifyInstance } from 'fastify';
import { hasZodFastifySchemaValidationErrors, isResponseSerializationError } from 'fastify-type-provider-zod';
import { z } from 'zod';

/** The one error body every route returns: a stable code, a message, and the offending field if any. */
export const errorBody = z
  .object({
    code: z.string(),
    message: z.string(),
    field: z.string().optional(),
  })
  .meta({ id: 'Error' });
export type ErrorBody = z.infer<typeof errorBody>;

/** Thrown by routes and services for an expected failure with a definite HTTP status. */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

/** Runs a read; PostgreSQL's statement timeout (57014) becomes a 422 with `code` the caller can act on. */
export async function boundedRead<T>(fn: () => Promise<T>, code: string, message: string): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    const pgCode =
      (err as { code?: string; cause?: { code?: string } }).cause?.code ?? (err as { code?: string }).code;
    if (pgCode === '57014') throw new HttpError(422, code, message);
    throw err;
  }
}

export function registerErrorHandling(app: FastifyInstance): void {
  app.setNotFoundHandler((req, reply) => {
    reply.code(404).send({ code: 'not_found', message: `no route ${req.method} ${req.url.split('?')[0]}` });
  });
  app.setErrorHandler((err: FastifyError, req, reply) => {
    if (err instanceof HttpError) {
      return reply.code(err.statusCode).send({ code: err.code, message: err.message, field: err.field });
    }
    if (hasZodFastifySchemaValidationErrors(err)) {
      const first = err.validation[0];
      const where = err.validationContext ?? 'body';
      const segments = (first?.instancePath ?? '').split('/').filter(Boolean);
      const field = [where, ...segments].join('.');
      return reply.code(400).send({
        code: 'invalid_request',
        message: `${field}: ${first?.message ?? err.message}`,
        field,
      });
    }
    if (isResponseSerializationError(err)) {
      req.log.error({ err, route: req.routeOptions.url }, 'response did not match its schema');
      return reply.code(500).send({ code: 'internal', message: 'internal error' });
    }
    const status = err.statusCode ?? 500;
    if (status >= 500) {
      req.log.error({ err }, 'request failed');
      return reply.code(status).send({ code: 'internal', message: 'internal error' });
    }
    // Fastify's own 4xx (body too large, bad JSON, unsupported media type): safe to echo.
    return reply.code(status).send({ code: (err.code ?? 'bad_request').toLowerCase(), message: err.message });
  });
}
