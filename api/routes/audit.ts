import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { auditHead, listAudit, verifyAudit } from '../../db/audit.js';
import type { Db } from '../../db/client.js';
import { requireRole } from '../auth/guards.js';
import { errorBody } from '../errors.js';

const head = z
  .object({ seq: z.number().int(), hash: z.string(), at: z.string().nullable() })
  .meta({ id: 'AuditHead' });

const entry = z
  .object({
    seq: z.number().int(),
    at: z.string(),
    actor: z.object({ id: z.string(), kind: z.string() }),
    action: z.string(),
    subject: z.object({ kind: z.string(), id: z.string() }),
    data: z.record(z.string(), z.unknown()),
    prevHash: z.string(),
    hash: z.string(),
  })
  .meta({ id: 'AuditEntry' });

const verifyResult = z.object({
  ok: z.boolean(),
  entries: z.number().int(),
  head: head.optional(),
  firstBreak: z.object({ seq: z.number().int(), kind: z.string(), message: z.string() }).optional(),
});

export const auditRoutes: FastifyPluginAsyncZod<{ db: Db }> = async (app, { db }) => {
  app.get(
    '/audit',
    {
      preHandler: requireRole('viewer'),
      schema: {
        tags: ['audit'],
        summary: 'Audit entries, oldest first, optionally about one subject',
        querystring: z.object({
          subjectKind: z.string().min(1).optional(),
          subjectId: z.string().min(1).optional(),
          afterSeq: z.coerce.number().int().min(0).optional(),
          limit: z.coerce.number().int().min(1).max(1000).default(100),
        }),
        response: { 200: z.object({ items: z.array(entry) }), 401: errorBody, 403: errorBody },
      },
    },
    async (req) => {
      const rows = await listAudit(db, req.query);
      return {
        items: rows.map((r) => ({
          seq: r.seq,
          at: r.at.toISOString(),
          actor: { id: r.actorId, kind: r.actorKind },
          action: r.action,
          subject: { kind: r.subjectKind, id: r.subjectId },
          data: r.data,
          prevHash: r.prevHash,
          hash: r.hash,
        })),
      };
    },
  );

  app.get(
    '/audit/head',
    {
      preHandler: requireRole('viewer'),
      schema: {
        tags: ['audit'],
        summary: 'The newest entry’s sequence number and hash, to export and check against later',
        response: { 200: head, 401: errorBody, 403: errorBody },
      },
    },
    async () => auditHead(db),
  );

  app.post(
    '/audit/verify',
    {
      preHandler: requireRole('admin'),
      schema: {
        tags: ['audit'],
        summary: 'Recompute the hash chain and report the first broken link',
        body: z
          .object({ expectHead: z.object({ seq: z.number().int().min(1), hash: z.string() }).optional() })
          .strict(),
        response: { 200: verifyResult, 401: errorBody, 403: errorBody },
      },
    },
    async (req) => {
      const r = await verifyAudit(db, req.body.expectHead ? { expectHead: req.body.expectHead } : {});
      return r.ok
        ? { ok: true, entries: r.entries, head: r.head }
        : { ok: false, entries: r.entries, firstBreak: r.firstBreak };
    },
  );
};
