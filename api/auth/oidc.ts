/**
 * Console sign-in with an OIDC provider: authorization code flow with PKCE (S256), state bound to
 * the browser by a cookie, nonce, and the ID token verified against the provider's JWKS (jose):
 * pinned asymmetric algorithms, issuer, audience (our client id), expiry, nonce, azp. The subject
 * must belong to an active Fleetbrain identity (roles come from the identities table, never from
 * the token); the sign-in then issues a short-lived Fleetbrain API token, handed to the console
 * in the URL fragment (never sent to a server, nor in a Referer).
 *
 * Pending sign-ins are kept in this process (ten minutes): behind several API replicas the
 * callback must reach the replica that started the sign-in (sticky sessions).
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyReply } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { createRemoteJWKSet, type JWTVerifyGetKey, jwtVerify } from 'jose';
import { z } from 'zod';
import type { Db } from '../../db/client.js';
import { identityForOidcSubject, issueToken } from '../../db/identities.js';
import { errorBody, HttpError } from '../errors.js';
import { type OidcLoginConfig, oidcLoginSchema } from './config.js';

const COOKIE = 'fb_oidc';
const PENDING_MS = 10 * 60_000;
const MAX_PENDING = 10_000;

const discoverySchema = z.object({
  issuer: z.string(),
  authorization_endpoint: z.url(),
  token_endpoint: z.url(),
  jwks_uri: z.url(),
  code_challenge_methods_supported: z.array(z.string()).optional(),
});
type Discovery = z.infer<typeof discoverySchema>;

const tokenReply = z.object({ id_token: z.string().min(1), token_type: z.string().optional() });

const b64url = (b: Buffer) => b.toString('base64url');

function cookieOf(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) return v.join('=');
  }
  return undefined;
}

function sameString(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

const loginQuery = z.object({}).strict();
const callbackQuery = z
  .object({
    code: z.string().min(1).max(4096).optional(),
    state: z.string().min(1).max(256),
    error: z.string().max(256).optional(),
    error_description: z.string().max(2000).optional(),
    // Providers add parameters of their own (session_state, iss): accepted, not used.
    session_state: z.string().max(2000).optional(),
    iss: z.string().max(2000).optional(),
  })
  .strict();
const redirect = z.null().describe('a redirect (Location header)');

export const oidcRoutes: FastifyPluginAsyncZod<{ db: Db; oidc?: OidcLoginConfig }> = async (app, opts) => {
  const cfg = opts.oidc ? oidcLoginSchema.parse(opts.oidc) : undefined;
  const pending = new Map<string, { verifier: string; nonce: string; expires: number }>();
  let discovered: Promise<{ doc: Discovery; jwks: JWTVerifyGetKey }> | undefined;

  const discover = () => {
    if (!cfg)
      throw new HttpError(404, 'oidc_not_configured', 'sign-in with an OIDC provider is not configured');
    discovered ??= (async () => {
      const url = new URL(
        '.well-known/openid-configuration',
        cfg.issuer.endsWith('/') ? cfg.issuer : `${cfg.issuer}/`,
      );
      const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
      if (!res.ok) throw new Error(`OIDC discovery at ${cfg.issuer} answered ${res.status}`);
      const doc = discoverySchema.parse(await res.json());
      if (doc.issuer !== cfg.issuer)
        throw new Error(`OIDC discovery issuer ${doc.issuer} differs from ${cfg.issuer}`);
      if (doc.code_challenge_methods_supported && !doc.code_challenge_methods_supported.includes('S256'))
        throw new Error('the OIDC provider does not support PKCE S256');
      return { doc, jwks: createRemoteJWKSet(new URL(doc.jwks_uri)) };
    })();
    // A failed discovery is retried on the next sign-in rather than cached.
    discovered.catch(() => {
      discovered = undefined;
    });
    return discovered.catch((e: Error) => {
      app.log.warn({ err: e.message }, 'OIDC discovery failed');
      throw new HttpError(502, 'oidc_provider_unavailable', 'the OIDC provider could not be reached');
    });
  };

  const secure = cfg ? new URL(cfg.redirectUrl).protocol === 'https:' : false;
  const setStateCookie = (reply: FastifyReply, value: string, maxAge: number) =>
    reply.header(
      'set-cookie',
      `${COOKIE}=${value}; Path=/auth/oidc; HttpOnly; SameSite=Lax; Max-Age=${maxAge}${secure ? '; Secure' : ''}`,
    );

  app.get(
    '/auth/oidc',
    {
      schema: {
        tags: ['identity'],
        summary: 'Whether console sign-in with an OIDC provider is configured',
        security: [],
        response: { 200: z.object({ enabled: z.boolean(), issuer: z.string().nullable() }) },
      },
    },
    async () => ({ enabled: cfg !== undefined, issuer: cfg?.issuer ?? null }),
  );

  app.get(
    '/auth/oidc/login',
    {
      schema: {
        tags: ['identity'],
        summary: 'Start a sign-in: redirect to the provider (authorization code, PKCE S256, state, nonce)',
        security: [],
        querystring: loginQuery,
        response: { 302: redirect, 404: errorBody, 502: errorBody, 503: errorBody },
      },
    },
    async (_req, reply) => {
      const { doc } = await discover();
      const now = Date.now();
      for (const [k, v] of pending) if (v.expires < now) pending.delete(k);
      if (pending.size >= MAX_PENDING)
        throw new HttpError(503, 'too_many_sign_ins', 'too many sign-ins in progress; try again shortly');
      const state = b64url(randomBytes(24));
      const verifier = b64url(randomBytes(32));
      const nonce = b64url(randomBytes(24));
      pending.set(state, { verifier, nonce, expires: now + PENDING_MS });
      const c = cfg as NonNullable<typeof cfg>;
      const url = new URL(doc.authorization_endpoint);
      url.search = new URLSearchParams({
        response_type: 'code',
        client_id: c.clientId,
        redirect_uri: c.redirectUrl,
        scope: c.scopes.join(' '),
        state,
        nonce,
        code_challenge: b64url(createHash('sha256').update(verifier).digest()),
        code_challenge_method: 'S256',
      }).toString();
      setStateCookie(reply, state, PENDING_MS / 1000);
      return reply.redirect(url.toString(), 302);
    },
  );

  app.get(
    '/auth/oidc/callback',
    {
      schema: {
        tags: ['identity'],
        summary:
          'The provider returns here: exchange the code (with the PKCE verifier), verify the ID token, issue an API token',
        security: [],
        querystring: callbackQuery,
        response: {
          302: redirect,
          400: errorBody,
          401: errorBody,
          403: errorBody,
          404: errorBody,
          502: errorBody,
        },
      },
    },
    async (req, reply) => {
      const { doc, jwks } = await discover();
      const c = cfg as NonNullable<typeof cfg>;
      const { state, code } = req.query;
      // The state must be one this process issued AND the one this browser started (login CSRF).
      const cookie = cookieOf(req.headers.cookie, COOKIE);
      const p = pending.get(state);
      if (!p || p.expires < Date.now() || !cookie || !sameString(cookie, state))
        throw new HttpError(
          400,
          'oidc_state_mismatch',
          'unknown, expired or foreign sign-in; start again',
          'state',
        );
      pending.delete(state);
      setStateCookie(reply, '', 0);
      if (req.query.error)
        throw new HttpError(401, 'oidc_denied', `the provider refused the sign-in: ${req.query.error}`);
      if (!code) throw new HttpError(400, 'invalid_request', 'the provider returned no code', 'code');

      const form = new URLSearchParams({
        grant_type: 'authorization_code',
        code,
        redirect_uri: c.redirectUrl,
        code_verifier: p.verifier,
      });
      const headers: Record<string, string> = {
        'content-type': 'application/x-www-form-urlencoded',
        accept: 'application/json',
      };
      if (c.clientSecret)
        headers.authorization = `Basic ${Buffer.from(
          `${encodeURIComponent(c.clientId)}:${encodeURIComponent(c.clientSecret)}`,
        ).toString('base64')}`;
      else form.set('client_id', c.clientId);
      let res: Response;
      try {
        res = await fetch(doc.token_endpoint, {
          method: 'POST',
          headers,
          body: form,
          signal: AbortSignal.timeout(10_000),
        });
      } catch {
        throw new HttpError(502, 'oidc_provider_unavailable', 'the OIDC provider could not be reached');
      }
      if (!res.ok) {
        req.log.info({ status: res.status }, 'OIDC token endpoint refused the code');
        throw new HttpError(401, 'oidc_code_refused', 'the provider did not accept the authorization code');
      }
      const parsed = tokenReply.safeParse(await res.json().catch(() => null));
      if (!parsed.success)
        throw new HttpError(502, 'oidc_bad_response', 'the provider answered without an ID token');

      let subject: string;
      try {
        const { payload } = await jwtVerify(parsed.data.id_token, jwks, {
          issuer: c.issuer,
          audience: c.clientId,
          algorithms: c.algorithms,
          clockTolerance: c.clockToleranceSec,
          requiredClaims: ['sub', 'exp', 'iat', 'nonce'],
        });
        if (typeof payload.nonce !== 'string' || !sameString(payload.nonce, p.nonce))
          throw new Error('nonce differs');
        if (payload.azp !== undefined && payload.azp !== c.clientId) throw new Error('azp is another client');
        if (typeof payload.sub !== 'string' || payload.sub === '') throw new Error('no subject');
        subject = payload.sub;
      } catch (err) {
        // Which check failed is for the log, not for the caller.
        req.log.info({ reason: (err as Error).message }, 'OIDC ID token refused');
        throw new HttpError(401, 'oidc_id_token_invalid', 'the ID token is not valid');
      }
      const row = await identityForOidcSubject(opts.db, subject);
      if (!row)
        throw new HttpError(
          403,
          'no_identity',
          'signed in at the provider, but no active Fleetbrain identity has that subject',
        );
      const issued = await issueToken(opts.db, row.id, {
        name: 'console sign-in (OIDC)',
        expiresAt: new Date(Date.now() + c.sessionHours * 3_600_000),
      });
      reply.header('cache-control', 'no-store');
      return reply.redirect(`/console/#signed-in=${issued.token}`, 302);
    },
  );
};
