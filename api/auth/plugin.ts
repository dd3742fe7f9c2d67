import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Db } from '../../db/client.js';
import { identityForOidcSubject, identityForToken, TOKEN_PREFIX, toPrincipal } from '../../db/identities.js';
import type { Principal } from '../../domain/approval/identity.js';
import { HttpError } from '../errors.js';
import type { AuthOptions } from './config.js';
import { createJwtVerifier } from './jwt.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The authenticated caller; null only on public routes. */
    principal: Principal | null;
  }
}

export interface RegisterAuthOptions {
  db: Db;
  options?: AuthOptions;
  /** URL prefixes served without authentication (the OpenAPI UI). */
  publicPrefixes?: string[];
}

/** A route is public when its OpenAPI schema says so (`security: []`), so the document and the check agree. */
function isPublic(req: FastifyRequest, prefixes: string[]): boolean {
  const schema = req.routeOptions.schema as { security?: unknown[] } | undefined;
  if (Array.isArray(schema?.security) && schema.security.length === 0) return true;
  const url = req.routeOptions.url ?? '';
  return prefixes.some((p) => url === p || url.startsWith(`${p}/`));
}

function unauthenticated(reply: FastifyReply, message: string): HttpError {
  reply.header('www-authenticate', 'Bearer realm="fleetbrain"');
  return new HttpError(401, 'unauthenticated', message);
}

/**
 * Authentication for every route of the app, on by default: a route opts out only by declaring
 * `security: []`. Bearer tokens (`fbt_…`, stored hashed) and, when configured, JWTs from the OIDC
 * provider. Roles always come from the identities table, never from a token's claims.
 */
export function registerAuth(app: FastifyInstance, opts: RegisterAuthOptions): void {
  const verifyJwt = opts.options?.jwt ? createJwtVerifier(opts.options.jwt) : undefined;
  const prefixes = opts.publicPrefixes ?? [];
  app.decorateRequest('principal', null);
  app.addHook('onRequest', async (req, reply) => {
    // Unknown routes fall through to the 404 handler.
    if (!req.routeOptions.url || isPublic(req, prefixes)) return;
    const header = req.headers.authorization;
    const match = header ? /^Bearer ([A-Za-z0-9._~+/=-]+)$/.exec(header) : null;
    if (!match?.[1]) throw unauthenticated(reply, 'a bearer token is required');
    const token = match[1];
    if (token.startsWith(TOKEN_PREFIX)) {
      const row = await identityForToken(opts.db, token);
      if (!row) throw unauthenticated(reply, 'the token is unknown, revoked or expired');
      req.principal = toPrincipal(row);
      return;
    }
    if (!verifyJwt) throw unauthenticated(reply, 'the token is not a Fleetbrain token');
    let subject: string;
    try {
      ({ subject } = await verifyJwt(token));
    } catch (err) {
      // Which check failed is for the log, not for the caller.
      req.log.info({ reason: (err as Error).message }, 'JWT refused');
      throw unauthenticated(reply, 'the token is not valid');
    }
    const row = await identityForOidcSubject(opts.db, subject);
    if (!row) throw unauthenticated(reply, 'the token is valid but belongs to no active Fleetbrain identity');
    req.principal = toPrincipal(row);
  });
}
