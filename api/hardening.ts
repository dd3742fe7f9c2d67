import { createHash } from 'node:crypto';
import helmet from '@fastify/helmet';
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { HttpError } from './errors.js';

export interface HardeningOptions {
  /** Requests per minute per caller; `false` turns limiting off (load tests). Default 1200. */
  rateLimitPerMin?: number | false;
}

/** A caller is its bearer token (hashed: keys are kept in memory) or, without one, its address. */
function callerKey(req: FastifyRequest): string {
  const auth = req.headers.authorization;
  if (typeof auth === 'string' && auth.length > 0)
    return `t:${createHash('sha256').update(auth).digest('base64url').slice(0, 22)}`;
  return `ip:${req.ip}`;
}

/** Whether a decoded request part holds U+0000 anywhere (PostgreSQL text cannot store it). */
function hasNul(v: unknown, depth = 0): boolean {
  if (typeof v === 'string') return v.includes('\u0000');
  if (depth > 64 || v === null || typeof v !== 'object') return false;
  if (Array.isArray(v)) return v.some((x) => hasNul(x, depth + 1));
  for (const [k, x] of Object.entries(v)) if (k.includes('\u0000') || hasNul(x, depth + 1)) return true;
  return false;
}

/**
 * Security headers on every response and a per-caller rate limit, registered before any route.
 * A limited caller gets 429 in the API's error shape with Retry-After.
 */
export async function registerHardening(app: FastifyInstance, opts: HardeningOptions = {}): Promise<void> {
  await app.register(helmet, {
    // The API serves JSON and the docs/console pages of its own origin only.
    contentSecurityPolicy: {
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'", "'unsafe-inline'"],
        imgSrc: ["'self'", 'data:'],
        connectSrc: ["'self'"],
        frameAncestors: ["'none'"],
        formAction: ["'self'"],
      },
    },
    crossOriginResourcePolicy: { policy: 'same-origin' },
  });
  // A NUL character would reach PostgreSQL and fail there as a 500: refuse it up front, for every route.
  app.addHook('preValidation', async (req) => {
    if (hasNul(req.body) || hasNul(req.query) || hasNul(req.params))
      throw new HttpError(400, 'invalid_request', 'NUL characters (U+0000) are not accepted');
  });
  const max = opts.rateLimitPerMin ?? 1200;
  if (max === false) return;
  await app.register(rateLimit, {
    max,
    timeWindow: 60_000,
    keyGenerator: callerKey,
    errorResponseBuilder: (_req, ctx) =>
      new HttpError(
        429,
        'rate_limited',
        `more than ${ctx.max} requests per minute; retry in ${Math.ceil(ctx.ttl / 1000)} s`,
      ),
  });
}
