import { createHash } from 'node:crypto';
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError } from '@temporalio/client';
import type { Client } from '@temporalio/client';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { PreparedRollout } from '../../activities/rollout.js';
import { type RolloutSpec, rolloutSpecSchema } from '../../domain/rollout/spec.js';
import {
  type RolloutProgress,
  controlUpdate,
  firmwareRollout,
  progressQuery,
} from '../../workflows/firmwareRollout.js';
import { principalOf, requireRole } from '../auth/guards.js';
import { errorBody, HttpError } from '../errors.js';

/** The policy decision on a rollout plan (OPA in production; the caller supplies it). */
export interface RolloutPolicyDecision {
  allow: boolean;
  requiredApprovals: number;
  reasons: string[];
}

export interface RolloutRoutesOptions {
  temporal: Client;
  taskQueue: string;
  /** Dry run: cohort → strata → waves → schedule (the `prepareRollout` activity's logic). */
  prepare: (rolloutId: string, spec: RolloutSpec, seed: string) => Promise<PreparedRollout>;
  decide: (
    spec: RolloutSpec,
    prepared: PreparedRollout,
    ctx: { rolloutId: string; actor: { id: string; kind: 'user' | 'service'; roles: string[] } },
  ) => Promise<RolloutPolicyDecision>;
  /** Workflow timing; production leaves it unset (one spec minute = 60 s). Tests with a fast fleet shrink it. */
  timing?: { minuteMs: number; pollMs: number };
  /** SSE poll interval (ms). */
  ssePollMs?: number;
}

const idParam = z.object({ id: z.string().regex(/^[a-z0-9][a-z0-9-]{2,62}$/, 'lower-case id, 3–63 chars') });

const createBody = z
  .object({
    id: idParam.shape.id,
    spec: rolloutSpecSchema,
    /** true (the default): plan only, start nothing. */
    dryRun: z.boolean().default(true),
  })
  .strict();

const planSchema = z.object({
  cohortSize: z.number().int(),
  cohortHash: z.string(),
  strata: z.array(z.object({ id: z.string(), size: z.number().int(), members: z.array(z.string()) })),
  minStratumSize: z.number(),
  waves: z.array(
    z.object({
      wave: z.number().int(),
      stages: z.number().int(),
      devices: z.number().int(),
      perStratum: z.record(z.string(), z.number().int()),
    }),
  ),
  schedule: z.object({ totalMinutes: z.number() }),
  image: z.object({ id: z.string(), version: z.string(), previousVersion: z.string() }),
});

const createReply = z.object({
  id: z.string(),
  dryRun: z.boolean(),
  started: z.boolean(),
  plan: planSchema,
  policy: z.object({ allow: z.boolean(), requiredApprovals: z.number().int(), reasons: z.array(z.string()) }),
  /** Where approvers decide (the shared approvals API), when approval is needed. */
  approval: z.object({ workflowId: z.string(), gate: z.string(), planHash: z.string() }).nullable(),
});

const counts = z.object({
  success: z.number(),
  degraded: z.number(),
  reverted: z.number(),
  transferFailure: z.number(),
  brick: z.number(),
  unknown: z.number(),
  pending: z.number(),
});
const status = z.enum([
  'preparing',
  'awaiting-approval',
  'running',
  'paused',
  'aborting',
  'aborted',
  'completed',
  'rejected',
]);
const progressSchema = z.object({
  rolloutId: z.string(),
  status,
  currentWave: z.number().int(),
  waves: z.array(
    z.object({
      wave: z.number().int(),
      state: z.enum(['pending', 'dispatching', 'observing', 'done', 'halted']),
      devices: z.number().int(),
      dispatched: z.number().int(),
      perStratum: z.record(z.string(), counts),
    }),
  ),
  haltedStrata: z.array(z.string()),
  pauseReasons: z.array(z.string()),
  lastGate: z
    .object({
      decision: z.string(),
      reasons: z.array(z.string()),
      haltStrata: z.array(z.string()),
      familyWiseFalseAbortRate: z.number(),
      perStratum: z.array(
        z.object({ stratum: z.string(), decision: z.string(), concluded: z.number(), bricks: z.number() }),
      ),
    })
    .optional(),
  rollback: z
    .object({
      rollback: z.number(),
      activate: z.number(),
      redownload: z.number(),
      fieldAction: z.array(z.string()),
      untouched: z.number(),
      pending: z.number(),
      attempted: z.number().optional(),
      done: z.number().optional(),
      failed: z.number().optional(),
    })
    .optional(),
  controls: z.number().int(),
});

const controlBody = z
  .object({
    action: z.enum(['pause', 'resume', 'abort', 'promote', 'retry-failed']),
    /** Idempotency key: a retry with the same id changes nothing and answers `duplicate: true`. */
    requestId: z.string().min(8).max(128),
    reason: z.string().max(2000).optional(),
    /** promote only: the id of the second person who approved skipping the gate. */
    approvedBy: z.string().min(1).optional(),
  })
  .strict();
const controlReply = z.object({
  requestId: z.string(),
  action: z.string(),
  duplicate: z.boolean(),
  applied: z.boolean(),
  status,
});

const errorReply = errorBody;

const reportSchema = z.object({
  rolloutId: z.string(),
  status,
  devices: z.object({ dispatched: z.number().int(), planned: z.number().int() }),
  outcomes: counts,
  haltedStrata: z.array(z.string()),
  reasons: z.array(z.string()),
  rollback: progressSchema.shape.rollback,
  fieldAction: z.array(z.string()),
});

function seedOf(id: string): string {
  return createHash('sha256').update(`rollout-seed/${id}`).digest('hex').slice(0, 16);
}

function report(p: RolloutProgress): z.infer<typeof reportSchema> {
  const total = {
    success: 0,
    degraded: 0,
    reverted: 0,
    transferFailure: 0,
    brick: 0,
    unknown: 0,
    pending: 0,
  };
  for (const w of p.waves)
    for (const c of Object.values(w.perStratum))
      for (const k of Object.keys(total) as Array<keyof typeof total>) total[k] += c[k];
  return {
    rolloutId: p.rolloutId,
    status: p.status,
    devices: {
      dispatched: p.waves.reduce((n, w) => n + w.dispatched, 0),
      planned: p.waves.reduce((n, w) => n + w.devices, 0),
    },
    outcomes: total,
    haltedStrata: p.haltedStrata,
    reasons: [...(p.lastGate?.reasons ?? []), ...p.pauseReasons],
    rollback: p.rollback,
    fieldAction: p.rollback?.fieldAction ?? [],
  };
}

export const rolloutRoutes: FastifyPluginAsyncZod<RolloutRoutesOptions> = async (fastify, opts) => {
  const handleOf = (id: string) => opts.temporal.workflow.getHandle(id);
  async function progressOf(id: string): Promise<RolloutProgress> {
    try {
      return await handleOf(id).query(progressQuery);
    } catch (e) {
      if (e instanceof WorkflowNotFoundError) throw new HttpError(404, 'not_found', `no rollout ${id}`);
      throw e;
    }
  }

  fastify.post(
    '/rollouts',
    {
      preHandler: requireRole('operator'),
      schema: {
        tags: ['rollouts'],
        summary: 'Plan a firmware rollout (dry run by default) or start it',
        body: createBody,
        response: { 200: createReply, 201: createReply, 403: errorReply, 409: errorReply, 422: errorReply },
      },
    },
    async (req, reply) => {
      const { id, spec, dryRun } = req.body;
      const seed = seedOf(id);
      let plan: PreparedRollout;
      try {
        plan = await opts.prepare(id, spec, seed);
      } catch (e) {
        // Bad input (image not in the catalogue, invalid selector) is the caller's: 422, nothing changed.
        const type = (e as { type?: string }).type;
        if (type === 'UnknownImage')
          throw new HttpError(422, 'unknown_image', (e as Error).message, 'spec.image');
        if ((e as Error).name === 'ZodError' || (e as Error).name === 'SelectorError')
          throw new HttpError(422, 'invalid_cohort', (e as Error).message, 'spec.cohort');
        throw e;
      }
      const who = principalOf(req);
      const policy = await opts.decide(spec, plan, {
        rolloutId: id,
        actor: { id: who.id, kind: who.kind === 'service' ? 'service' : 'user', roles: [...who.roles] },
      });
      const approvalNeeded = spec.approvals.beforeStart && policy.requiredApprovals > 0;
      const approval = approvalNeeded ? { workflowId: id, gate: 'start', planHash: plan.cohortHash } : null;
      if (dryRun) return reply.code(200).send({ id, dryRun, started: false, plan, policy, approval });
      if (!policy.allow)
        throw new HttpError(403, 'policy_denied', policy.reasons.join('; ') || 'denied by policy');
      // A spec cannot opt out of approvals the policy requires.
      if (policy.requiredApprovals > 0 && !spec.approvals.beforeStart)
        throw new HttpError(
          403,
          'approval_required',
          `policy requires ${policy.requiredApprovals} approval(s) before start: spec.approvals.beforeStart must be true`,
        );
      const p = principalOf(req);
      try {
        await opts.temporal.workflow.start(firmwareRollout, {
          taskQueue: opts.taskQueue,
          workflowId: id,
          args: [
            {
              rolloutId: id,
              spec,
              seed,
              proposer: { id: p.id, name: p.name, kind: p.kind } as never,
              requiredApprovals: policy.requiredApprovals,
              ...(opts.timing ?? {}),
            },
          ],
        });
      } catch (e) {
        if (e instanceof WorkflowExecutionAlreadyStartedError)
          throw new HttpError(409, 'already_started', `rollout ${id} exists`);
        throw e;
      }
      return reply.code(201).send({ id, dryRun, started: true, plan, policy, approval });
    },
  );

  fastify.post(
    '/rollouts/:id/control',
    {
      preHandler: requireRole('operator'),
      schema: {
        tags: ['rollouts'],
        summary: 'Pause, resume, abort, promote (with a second approver) or retry failed devices; idempotent',
        params: idParam,
        body: controlBody,
        response: { 200: controlReply, 404: errorReply, 422: errorReply },
      },
    },
    async (req) => {
      const p = principalOf(req);
      const { action, requestId, reason, approvedBy } = req.body;
      await progressOf(req.params.id);
      try {
        return await handleOf(req.params.id).executeUpdate(controlUpdate, {
          args: [
            {
              action,
              requestId,
              by: p.id,
              ...(reason ? { reason } : {}),
              ...(approvedBy ? { approvedBy } : {}),
            },
          ],
        });
      } catch (e) {
        const msg = e instanceof Error ? (e.cause instanceof Error ? e.cause.message : e.message) : String(e);
        throw new HttpError(422, 'control_refused', msg);
      }
    },
  );

  fastify.get(
    '/rollouts/:id',
    {
      preHandler: requireRole('viewer'),
      schema: {
        tags: ['rollouts'],
        summary: 'Live progress per wave and stratum',
        params: idParam,
        response: { 200: progressSchema, 404: errorReply },
      },
    },
    async (req) => progressOf(req.params.id),
  );

  fastify.get(
    '/rollouts/:id/report',
    {
      preHandler: requireRole('viewer'),
      schema: {
        tags: ['rollouts'],
        summary: 'Outcome totals, halted strata, rollback result and devices for field action',
        params: idParam,
        response: { 200: reportSchema, 404: errorReply },
      },
    },
    async (req) => report(await progressOf(req.params.id)),
  );

  fastify.get(
    '/rollouts/:id/events',
    {
      preHandler: requireRole('viewer'),
      schema: {
        tags: ['rollouts'],
        summary:
          'Progress as server-sent events (one `progress` event per change; ends when the rollout ends)',
        params: idParam,
        response: { 404: errorReply },
      },
    },
    async (req, reply) => {
      const id = req.params.id;
      let last = JSON.stringify(await progressOf(id));
      reply.hijack();
      reply.raw.writeHead(200, {
        'content-type': 'text/event-stream',
        'cache-control': 'no-cache',
        connection: 'keep-alive',
      });
      const send = (data: string) => reply.raw.write(`event: progress\ndata: ${data}\n\n`);
      send(last);
      const done = (s: string) => ['aborted', 'completed', 'rejected'].includes(s);
      let closed = false;
      req.raw.on('close', () => {
        closed = true;
      });
      while (!closed && !done((JSON.parse(last) as RolloutProgress).status)) {
        await new Promise((r) => setTimeout(r, opts.ssePollMs ?? 1000));
        let next: string;
        try {
          next = JSON.stringify(await handleOf(id).query(progressQuery));
        } catch {
          break;
        }
        if (next !== last) {
          last = next;
          send(last);
        }
      }
      reply.raw.end();
    },
  );
};
