import { randomUUID } from 'node:crypto';
import { WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import type { Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { and, asc, eq, gt, notExists, sql } from 'drizzle-orm';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Db } from '../../db/client.js';
import { approvalRequests, approvalVotes } from '../../db/schema/approval.js';
import { mayDecideApprovals } from '../../domain/approval/identity.js';
import { REFUSAL_CODES, REFUSAL_STATUS, type RefusalCode } from '../../domain/approval/rules.js';
import { APPROVAL_REFUSED, type DecideResult, decideUpdate } from '../../workflows/approval.js';
import { principalOf, requireRole } from '../auth/guards.js';
import { errorBody, HttpError } from '../errors.js';

const approvalStatus = z.enum(['pending', 'approved', 'rejected', 'expired']);

const approvalItem = z
  .object({
    id: z.string(),
    workflowId: z.string(),
    gate: z.string(),
    subject: z.object({ kind: z.string(), id: z.string() }),
    title: z.string(),
    proposer: z.object({ id: z.string(), name: z.string() }),
    planHash: z.string(),
    planRevision: z.number().int(),
    requiredApprovals: z.number().int(),
    approvals: z.number().int(),
    status: approvalStatus,
    expiresAt: z.string(),
  })
  .meta({ id: 'ApprovalRequest' });

const voteItem = z.object({
  approvalId: z.string(),
  approver: z.object({ id: z.string(), name: z.string() }),
  decision: z.enum(['approve', 'reject']),
  planHash: z.string(),
  comment: z.string().nullable(),
  voided: z.boolean(),
  at: z.string(),
});

const decisionBody = z
  .object({
    /** The plan hash you reviewed; a changed plan refuses the vote (409 plan_changed). */
    planHash: z.string().regex(/^[0-9a-f]{64}$/, '64 lower-case hex digits'),
    /** Idempotency key of this vote; a retry with the same id counts once. Generated when absent. */
    approvalId: z.string().min(8).max(128).optional(),
    comment: z.string().max(2000).optional(),
  })
  .strict();

const decisionResult = z.object({
  approvalId: z.string(),
  status: approvalStatus,
  approvals: z.number().int(),
  requiredApprovals: z.number().int(),
  duplicate: z.boolean(),
  planHash: z.string(),
});

const params = z.object({ workflowId: z.string().min(1), gate: z.string().min(1) });

type Row = typeof approvalRequests.$inferSelect;
function toItem(r: Row): z.infer<typeof approvalItem> {
  return {
    id: r.id,
    workflowId: r.workflowId,
    gate: r.gate,
    subject: { kind: r.subjectKind, id: r.subjectId },
    title: r.title,
    proposer: { id: r.proposerId, name: r.proposerName },
    planHash: r.planHash,
    planRevision: r.planRevision,
    requiredApprovals: r.requiredApprovals,
    approvals: r.approvals,
    status: r.status as z.infer<typeof approvalStatus>,
    expiresAt: r.expiresAt.toISOString(),
  };
}

/** The refusal a workflow's approval validator raised, if that is what `err` is. */
export function approvalRefusal(err: unknown): { code: RefusalCode; message: string } | undefined {
  if (!(err instanceof WorkflowUpdateFailedError) || !(err.cause instanceof ApplicationFailure))
    return undefined;
  if (err.cause.type !== APPROVAL_REFUSED) return undefined;
  const [detail] = err.cause.details ?? [];
  const code = (detail as { code?: unknown } | undefined)?.code;
  if (!REFUSAL_CODES.includes(code as RefusalCode)) return undefined;
  return { code: code as RefusalCode, message: err.cause.message };
}

export interface ApprovalRoutesOptions {
  db: Db;
  temporal: Client;
}

/** The approvals inbox and the approve/reject endpoints, which forward to the owning workflow's update. */
export const approvalRoutes: FastifyPluginAsyncZod<ApprovalRoutesOptions> = async (app, opts) => {
  const { db } = opts;

  async function load(workflowId: string, gate: string): Promise<Row> {
    const [row] = await db
      .select()
      .from(approvalRequests)
      .where(and(eq(approvalRequests.workflowId, workflowId), eq(approvalRequests.gate, gate)));
    if (!row) throw new HttpError(404, 'not_found', `no approval ${workflowId}/${gate}`);
    return row;
  }

  app.get(
    '/approvals/inbox',
    {
      preHandler: requireRole('approver'),
      schema: {
        tags: ['approvals'],
        summary: 'What waits for my decision: pending, open, not proposed by me, not yet decided by me',
        response: { 200: z.object({ items: z.array(approvalItem) }), 401: errorBody, 403: errorBody },
      },
    },
    async (req) => {
      const me = principalOf(req);
      if (!mayDecideApprovals(me)) return { items: [] };
      const rows = await db
        .select()
        .from(approvalRequests)
        .where(
          and(
            eq(approvalRequests.status, 'pending'),
            gt(approvalRequests.expiresAt, sql`now()`),
            sql`${approvalRequests.proposerId} <> ${me.id}`,
            notExists(
              db
                .select({ one: sql`1` })
                .from(approvalVotes)
                .where(
                  and(
                    eq(approvalVotes.requestId, approvalRequests.id),
                    eq(approvalVotes.approverId, me.id),
                    eq(approvalVotes.voided, false),
                  ),
                ),
            ),
          ),
        )
        .orderBy(asc(approvalRequests.expiresAt))
        .limit(200);
      return { items: rows.map(toItem) };
    },
  );

  app.get(
    '/approvals',
    {
      preHandler: requireRole('viewer'),
      schema: {
        tags: ['approvals'],
        summary: 'Approval requests, newest first',
        querystring: z.object({
          status: approvalStatus.optional(),
          limit: z.coerce.number().int().min(1).max(500).default(100),
        }),
        response: { 200: z.object({ items: z.array(approvalItem) }), 401: errorBody, 403: errorBody },
      },
    },
    async (req) => {
      const rows = await db
        .select()
        .from(approvalRequests)
        .where(req.query.status ? eq(approvalRequests.status, req.query.status) : undefined)
        .orderBy(sql`${approvalRequests.createdAt} desc`)
        .limit(req.query.limit);
      return { items: rows.map(toItem) };
    },
  );

  app.get(
    '/approvals/:workflowId/:gate',
    {
      preHandler: requireRole('viewer'),
      schema: {
        tags: ['approvals'],
        summary: 'One approval request with its votes (void ones included)',
        params,
        response: {
          200: approvalItem.extend({ votes: z.array(voteItem) }),
          401: errorBody,
          403: errorBody,
          404: errorBody,
        },
      },
    },
    async (req) => {
      const row = await load(req.params.workflowId, req.params.gate);
      const votes = await db
        .select()
        .from(approvalVotes)
        .where(eq(approvalVotes.requestId, row.id))
        .orderBy(asc(approvalVotes.at));
      return {
        ...toItem(row),
        votes: votes.map((v) => ({
          approvalId: v.approvalId,
          approver: { id: v.approverId, name: v.approverName },
          decision: v.decision as 'approve' | 'reject',
          planHash: v.planHash,
          comment: v.comment,
          voided: v.voided,
          at: v.at.toISOString(),
        })),
      };
    },
  );

  for (const decision of ['approve', 'reject'] as const) {
    app.post(
      `/approvals/:workflowId/:gate/${decision}`,
      {
        preHandler: requireRole('approver'),
        schema: {
          tags: ['approvals'],
          summary:
            decision === 'approve'
              ? 'Approve the plan you reviewed (forwarded to the owning workflow)'
              : 'Reject the plan (forwarded to the owning workflow); ends the approval as rejected',
          params,
          body: decisionBody,
          response: {
            200: decisionResult,
            400: errorBody,
            401: errorBody,
            403: errorBody,
            404: errorBody,
            409: errorBody,
          },
        },
      },
      async (req) => {
        const me = principalOf(req);
        const row = await load(req.params.workflowId, req.params.gate);
        const approvalId = req.body.approvalId ?? randomUUID();
        let result: DecideResult;
        try {
          result = await opts.temporal.workflow.getHandle(row.workflowId).executeUpdate(decideUpdate, {
            // Per approver, so one person's retry never returns another person's answer.
            updateId: `${me.id}:${approvalId}`,
            args: [
              {
                approvalId,
                approver: me,
                decision,
                planHash: req.body.planHash,
                ...(req.body.comment !== undefined ? { comment: req.body.comment } : {}),
              },
            ],
          });
        } catch (err) {
          const refused = approvalRefusal(err);
          if (refused) throw new HttpError(REFUSAL_STATUS[refused.code], refused.code, refused.message);
          if (err instanceof WorkflowNotFoundError) {
            throw new HttpError(
              409,
              'not_pending',
              `approval ${row.id} is ${row.status}; its workflow has ended`,
            );
          }
          throw err;
        }
        return { approvalId, ...result };
      },
    );
  }
};
