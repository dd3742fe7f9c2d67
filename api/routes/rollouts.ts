import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError } from '@temporalio/client';
import type { Client } from '@temporalio/client';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { PreparedRollout } from '../../activities/rollout.js';
import { lowerBound, upperBound } from '../../domain/rollout/sequential.js';
import { type RolloutSpec, rolloutSpecSchema } from '../../domain/rollout/spec.js';
import { webhookEgressFromEnv } from '../../platform/config.js';
import { checkOutboundUrl, type EgressPolicy, EgressRefused } from '../../platform/egress.js';
import {
  type FirmwareRolloutResult,
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
  /** Which non-public webhook targets are allowed (default: FLEETBRAIN_WEBHOOK_ALLOW_* from the environment). */
  egress?: EgressPolicy;
  /** How long the list waits for one rollout's live state before showing it as `unknown` (ms). */
  listQueryTimeoutMs?: number;
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
      /** θ of the spec (absent on evaluations recorded before it was carried). */
      theta: z.number().optional(),
      perStratum: z.array(
        z.object({
          stratum: z.string(),
          decision: z.string(),
          concluded: z.number(),
          bricks: z.number(),
          /** bricks / concluded. */
          rate: z.number(),
          /** Anytime-valid two-sided band on the treated brick rate at the gate's confidence. */
          band: z.object({ lower: z.number(), upper: z.number(), confidence: z.number() }),
          /** The concurrent control group: share silent through the outcome window, and its size. */
          controlRate: z.number().optional(),
          controlObserved: z.number().int().optional(),
          /** Treated rate above which the gate aborts (θ on top of the control's upper bound). */
          abortBoundary: z.number().optional(),
          promoteBoundary: z.number().optional(),
        }),
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

const listStates = [...status.options, 'failed', 'unknown'] as const;
const listState = z.enum(listStates);
const listQuery = z
  .object({
    /** Only rollouts in this state (`failed`: the workflow itself failed, was terminated or timed out). */
    state: listState.optional(),
    limit: z.coerce.number().int().min(1).max(100).default(20),
    /** `nextCursor` of the previous page. */
    cursor: z
      .string()
      .max(4096)
      .regex(/^[A-Za-z0-9_-]+$/, 'a cursor from a previous page')
      .optional(),
  })
  .strict();
const listItem = z.object({
  id: z.string(),
  state: listState,
  /** The Temporal execution's own status. */
  execution: z.enum(['running', 'completed', 'failed', 'canceled', 'terminated', 'timed-out', 'other']),
  startedAt: z.string(),
  closedAt: z.string().nullable(),
  currentWave: z.number().int().nullable(),
  waves: z.number().int().nullable(),
  devices: z.object({ dispatched: z.number().int(), planned: z.number().int() }).nullable(),
  haltedStrata: z.array(z.string()),
});
const listReply = z.object({ items: z.array(listItem), nextCursor: z.string().nullable() });
type ListItem = z.infer<typeof listItem>;

/**
 * Opaque page cursor: Temporal's visibility page token, how many of that page were already shown,
 * and an HMAC. Temporal answers a forged token with a retried UNKNOWN error, so only tokens this API
 * process issued are passed on; the key is per process (another replica's cursor answers 400 and the
 * caller starts again from the first page).
 */
const cursorKey = randomBytes(32);
const cursorSchema = z
  .object({ t: z.string().max(3000), s: z.number().int().min(0).max(1000), m: z.string() })
  .strict();
const mac = (t: string, skip: number) =>
  createHmac('sha256', cursorKey).update(`${t}/${skip}`).digest('base64url');
function encodeCursor(token: Uint8Array | null | undefined, skip: number): string {
  const t = token && token.length > 0 ? Buffer.from(token).toString('base64') : '';
  return Buffer.from(JSON.stringify({ t, s: skip, m: mac(t, skip) })).toString('base64url');
}
function decodeCursor(c: string | undefined): { token: Uint8Array | undefined; skip: number } {
  if (!c) return { token: undefined, skip: 0 };
  let parsed: z.infer<typeof cursorSchema> | undefined;
  try {
    parsed = cursorSchema.parse(JSON.parse(Buffer.from(c, 'base64url').toString('utf8')));
  } catch {
    parsed = undefined;
  }
  const expected = parsed ? Buffer.from(mac(parsed.t, parsed.s)) : undefined;
  const given = parsed ? Buffer.from(parsed.m) : undefined;
  if (!parsed || !expected || !given || expected.length !== given.length || !timingSafeEqual(expected, given))
    throw new HttpError(400, 'invalid_cursor', 'not a cursor from a previous page of this API', 'cursor');
  return { token: parsed.t ? Buffer.from(parsed.t, 'base64') : undefined, skip: parsed.s };
}

const EXECUTION: Record<number, ListItem['execution']> = {
  1: 'running',
  2: 'completed',
  3: 'failed',
  4: 'canceled',
  5: 'terminated',
  7: 'timed-out',
};
/** Visibility filter that a state implies (the rollout state itself lives in the workflow). */
function executionFilter(state: ListItem['state'] | undefined): string {
  if (!state || state === 'unknown') return '';
  if (state === 'failed') return " AND ExecutionStatus IN ('Failed', 'Terminated', 'Canceled', 'TimedOut')";
  if (['aborted', 'completed', 'rejected'].includes(state)) return " AND ExecutionStatus = 'Completed'";
  return " AND ExecutionStatus = 'Running'";
}

function tsToIso(t: { seconds?: unknown; nanos?: number | null } | null | undefined): string | null {
  if (!t || t.seconds === undefined || t.seconds === null) return null;
  return new Date(Number(t.seconds) * 1000 + Math.floor((t.nanos ?? 0) / 1e6)).toISOString();
}

// The band is a few dozen bisection steps per stratum and is asked for at every SSE tick: memoise.
const bandCache = new Map<string, [number, number]>();
function band(n: number, k: number, alpha: number): [number, number] {
  if (n <= 0) return [0, 1];
  const key = `${n}/${k}/${alpha}`;
  let b = bandCache.get(key);
  if (!b) {
    // The gate's own anytime-valid bounds, α split over the two sides.
    b = [lowerBound(n, k, alpha / 2), upperBound(n, k, alpha / 2)];
    if (bandCache.size > 10_000) bandCache.clear();
    bandCache.set(key, b);
  }
  return b;
}

/** The progress as the API shows it: each stratum's brick rate with its band, beside θ and the control. */
function progressView(p: RolloutProgress): z.infer<typeof progressSchema> {
  if (!p.lastGate) return p as z.infer<typeof progressSchema>;
  const alpha = p.lastGate.familyWiseFalseAbortRate > 0 ? p.lastGate.familyWiseFalseAbortRate : 0.05;
  return {
    ...p,
    lastGate: {
      ...p.lastGate,
      perStratum: p.lastGate.perStratum.map((r) => {
        const [lower, upper] = band(r.concluded, r.bricks, alpha);
        return {
          ...r,
          rate: r.concluded > 0 ? r.bricks / r.concluded : 0,
          band: { lower, upper, confidence: 1 - alpha },
        };
      }),
    },
  };
}

function summary(
  id: string,
  base: Pick<ListItem, 'execution' | 'startedAt' | 'closedAt'>,
  p: Pick<FirmwareRolloutResult, 'status' | 'waves' | 'haltedStrata'> & { currentWave?: number },
): ListItem {
  return {
    id,
    ...base,
    state: p.status,
    currentWave: p.currentWave ?? null,
    waves: p.waves.length,
    devices: {
      dispatched: p.waves.reduce((n, w) => n + w.dispatched, 0),
      planned: p.waves.reduce((n, w) => n + w.devices, 0),
    },
    haltedStrata: p.haltedStrata,
  };
}

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
  const egress = opts.egress ?? webhookEgressFromEnv();
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
        response: {
          200: createReply,
          201: createReply,
          400: errorReply,
          403: errorReply,
          409: errorReply,
          422: errorReply,
        },
      },
    },
    async (req, reply) => {
      const { id, spec, dryRun } = req.body;
      // SSRF (OWASP API7): webhook targets must be public addresses unless the deployment allows more.
      // The notifier checks again at send time, against the address it connects to.
      for (const [i, t] of spec.notifications.entries()) {
        try {
          await checkOutboundUrl(t.url, egress);
        } catch (e) {
          if (!(e instanceof EgressRefused)) throw e;
          throw new HttpError(
            400,
            'webhook_target_refused',
            `webhook ${t.url} is refused: ${e.message}`,
            `spec.notifications.${i}.url`,
          );
        }
      }
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

  /** One listed execution with its live state: the progress query while running, the result once closed. */
  async function listed(e: {
    execution?: { workflowId?: string | null; runId?: string | null } | null;
    status?: number | null;
    startTime?: { seconds?: unknown; nanos?: number | null } | null;
    closeTime?: { seconds?: unknown; nanos?: number | null } | null;
  }): Promise<ListItem> {
    const id = e.execution?.workflowId ?? '';
    const runId = e.execution?.runId ?? undefined;
    const base = {
      execution: EXECUTION[e.status ?? 0] ?? ('other' as const),
      startedAt: tsToIso(e.startTime) ?? new Date(0).toISOString(),
      closedAt: tsToIso(e.closeTime),
    };
    const none: ListItem = {
      id,
      ...base,
      state: 'unknown',
      currentWave: null,
      waves: null,
      devices: null,
      haltedStrata: [],
    };
    if (base.execution !== 'running' && base.execution !== 'completed') return { ...none, state: 'failed' };
    const deadline = Date.now() + (opts.listQueryTimeoutMs ?? 3_000);
    try {
      if (base.execution === 'running') {
        const p = await opts.temporal.withDeadline(deadline, () => handleOf(id).query(progressQuery));
        return summary(id, base, p);
      }
      const r = await opts.temporal.withDeadline(deadline, () =>
        opts.temporal.workflow.getHandle(id, runId).result(),
      );
      return summary(id, base, r as FirmwareRolloutResult);
    } catch (err) {
      // No worker answering in time (or an old result shape): the list still shows the rollout.
      fastify.log.debug({ err, rolloutId: id }, 'rollout state unavailable for the list');
      return none;
    }
  }

  fastify.get(
    '/rollouts',
    {
      preHandler: requireRole('viewer'),
      schema: {
        tags: ['rollouts'],
        summary: 'Rollouts, newest first, with their live state; paged (`nextCursor`), filtered by state',
        querystring: listQuery,
        response: { 200: listReply, 400: errorReply, 401: errorReply, 403: errorReply },
      },
    },
    async (req) => {
      const { state, limit } = req.query;
      let { token, skip } = decodeCursor(req.query.cursor);
      // This deployment's rollouts: its task queue, one entry per rollout (not per continued run).
      const query =
        `WorkflowType = 'firmwareRollout' AND TaskQueue = '${opts.taskQueue.replace(/'/g, "''")}'` +
        ` AND ExecutionStatus != 'ContinuedAsNew'${executionFilter(state)}`;
      const items: ListItem[] = [];
      // Bounded work per request: a sparse filter returns a short page and a cursor to go on from.
      let scanned = 0;
      for (;;) {
        let page: Awaited<ReturnType<typeof opts.temporal.workflowService.listWorkflowExecutions>>;
        try {
          page = await opts.temporal.workflowService.listWorkflowExecutions({
            namespace: opts.temporal.options.namespace,
            pageSize: limit,
            query,
            ...(token ? { nextPageToken: token } : {}),
          });
        } catch (err) {
          // A token this process issued that Temporal no longer accepts.
          if (token && (err as { code?: number }).code === 3)
            throw new HttpError(400, 'invalid_cursor', 'the cursor has expired; start again', 'cursor');
          throw err;
        }
        const execs = (page.executions ?? []).slice(skip);
        const views = await Promise.all(execs.map((e) => listed(e)));
        for (const [i, v] of views.entries()) {
          if (state && v.state !== state) continue;
          items.push(v);
          if (items.length === limit) {
            const more = i + 1 < views.length;
            const next = page.nextPageToken && page.nextPageToken.length > 0;
            return {
              items,
              nextCursor: more
                ? encodeCursor(token, skip + i + 1)
                : next
                  ? encodeCursor(page.nextPageToken, 0)
                  : null,
            };
          }
        }
        scanned += execs.length;
        if (!page.nextPageToken || page.nextPageToken.length === 0) return { items, nextCursor: null };
        token = page.nextPageToken;
        skip = 0;
        if (scanned >= Math.max(200, limit)) return { items, nextCursor: encodeCursor(token, 0) };
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
    async (req) => progressView(await progressOf(req.params.id)),
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
      let last = JSON.stringify(progressView(await progressOf(id)));
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
          next = JSON.stringify(progressView(await handleOf(id).query(progressQuery)));
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
