import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Db } from '../../db/client.js';
import { getToken, issueToken, listTokens, revokeToken } from '../../db/identities.js';
import { principalSchema } from '../../domain/approval/identity.js';
import { assertOwnerOr, principalOf } from '../auth/guards.js';
import { errorBody, HttpError } from '../errors.js';

const tokenInfo = z.object({
  id: z.string(),
  name: z.string(),
  prefix: z.string(),
  createdAt: z.string(),
  expiresAt: z.string().nullable(),
  lastUsedAt: z.string().nullable(),
  revokedAt: z.string().nullable(),
});

const iso = (d: Date | null) => (d ? d.toISOString() : null);

/** Who am I, and my own bearer tokens. Tokens of others only for admins (object-level check). */
export const identityRoutes: FastifyPluginAsyncZod<{ db: Db }> = async (app, { db }) => {
  app.get(
    '/me',
    {
      schema: {
        tags: ['identity'],
        summary: 'The authenticated identity and its roles',
        response: { 200: principalSchema, 401: errorBody },
      },
    },
    async (req) => principalOf(req),
  );

  app.get(
    '/me/tokens',
    {
      schema: {
        tags: ['identity'],
        summary: 'My bearer tokens (never the secrets)',
        response: { 200: z.object({ items: z.array(tokenInfo) }), 401: errorBody },
      },
    },
    async (req) => {
      const rows = await listTokens(db, principalOf(req).id);
      return {
        items: rows.map((t) => ({
          ...t,
          createdAt: t.createdAt.toISOString(),
          expiresAt: iso(t.expiresAt),
          lastUsedAt: iso(t.lastUsedAt),
          revokedAt: iso(t.revokedAt),
        })),
      };
    },
  );

  app.post(
    '/me/tokens',
    {
      schema: {
        tags: ['identity'],
        summary: 'Issue a bearer token for myself; the secret is shown once',
        body: z
          .object({
            name: z.string().min(1).max(100),
            expiresInDays: z.number().int().min(1).max(365).default(90),
          })
          .strict(),
        response: {
          201: z.object({
            id: z.string(),
            token: z.string(),
            prefix: z.string(),
            expiresAt: z.string().nullable(),
          }),
          401: errorBody,
        },
      },
    },
    async (req, reply) => {
      const me = principalOf(req);
      const expiresAt = new Date(Date.now() + req.body.expiresInDays * 86_400_000);
      const t = await issueToken(db, me.id, { name: req.body.name, expiresAt });
      return reply.code(201).send({ ...t, expiresAt: iso(t.expiresAt) });
    },
  );

  app.delete(
    '/tokens/:id',
    {
      schema: {
        tags: ['identity'],
        summary: 'Revoke a token: your own, or anyone’s as admin',
        params: z.object({ id: z.uuid() }),
        response: { 204: z.null(), 401: errorBody, 404: errorBody },
      },
    },
    async (req, reply) => {
      const me = principalOf(req);
      const token = await getToken(db, req.params.id);
      if (!token) throw new HttpError(404, 'not_found', 'no token with that id');
      assertOwnerOr(me, token.identityId, 'admin', { what: 'token', hide: true });
      await revokeToken(db, token.id);
      return reply.code(204).send(null);
    },
  );
};
