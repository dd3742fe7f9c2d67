import { randomUUID } from 'node:crypto';
import { type Client, WorkflowNotFoundError } from '@temporalio/client';
import { desc, eq } from 'drizzle-orm';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import {
  changeFights,
  createOverrideProfile,
  deviceEffectiveConfig,
  fleetConflicts,
} from '../../activities/profiles.js';
import type { Db } from '../../db/client.js';
import {
  deleteProfile,
  getProfile,
  listProfiles,
  ProfileStoreError,
  precedenceRules,
  profileHistory,
  putProfile,
  setPrecedenceRules,
  type StoredProfile,
} from '../../db/profiles.js';
import { profileReconcileRuns } from '../../db/schema/profiles.js';
import { PrecedenceOrder } from '../../domain/profiles/precedence.js';
import { ParamPath, ParamValue, ProfileParameters, ProfileSpec } from '../../domain/profiles/profile.js';
import { SelectorError, parseSelector } from '../../fleet/selector.js';
import { profileReconcile } from '../../workflows/profileReconcile.js';
import {
  profileResolution,
  proposalRefusal,
  proposeSignal,
  resolutionStateQuery,
} from '../../workflows/profileResolution.js';
import { principalOf, requireRole } from '../auth/guards.js';
import { errorBody, HttpError } from '../errors.js';

/**
 * Profiles: create/update/delete with history, the effective configuration of a device, fleet-wide
 * conflicts (shown before anything is applied), change-request checks and time-boxed overrides,
 * proposals that resolve a conflict (approved through /approvals), and reconcile runs.
 */

export interface ProfileRoutesOptions {
  db: Db;
  temporal: Client;
  taskQueue: string;
}

const idParam = z.object({ id: z.string().min(1).max(128) });
const deviceParam = z.object({ deviceId: z.string().min(1).max(256) });

const profileSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    description: z.string().optional(),
    selector: z.record(z.string(), z.unknown()),
    parameters: z.array(z.object({ path: z.string(), value: ParamValue })),
    priority: z.number().int(),
    owner: z.string(),
    validFrom: z.string().optional(),
    validUntil: z.string().optional(),
    version: z.number().int(),
    updatedAt: z.string(),
    kind: z.enum(['profile', 'override']),
    changeRequestId: z.string().optional(),
    updatedBy: z.string(),
  })
  .meta({ id: 'Profile' });

const writeBody = z.object({
  spec: ProfileSpec,
  /** Optimistic concurrency: refuse (409) unless the stored version is this one. */
  expectedVersion: z.number().int().positive().optional(),
});

const field = z.object({
  path: z.string(),
  status: z.string(),
  value: ParamValue.optional(),
  owners: z.array(z.string()),
  overridden: z.array(z.object({ profileId: z.string(), value: ParamValue, rule: z.string() })),
});

const conflictGroup = field.omit({ path: true }).extend({
  path: z.string(),
  claims: z.array(z.object({ profileId: z.string(), value: ParamValue })),
  devices: z.number().int(),
  sample: z.array(z.string()),
  escalation: z.string().optional(),
});

function out(p: StoredProfile): z.infer<typeof profileSchema> {
  return {
    ...p,
    validFrom: p.validFrom?.toISOString(),
    validUntil: p.validUntil?.toISOString(),
    updatedAt: p.updatedAt.toISOString(),
  };
}

function storeError(e: unknown): never {
  if (e instanceof ProfileStoreError) {
    const status = { not_found: 404, exists: 409, version_conflict: 409, invalid: 400 }[e.code];
    throw new HttpError(status, e.code, e.message);
  }
  if (e instanceof SelectorError)
    throw new HttpError(400, 'invalid_selector', e.message, 'body.spec.selector');
  throw e;
}

function checkSelector(s: unknown, field: string): void {
  try {
    parseSelector(s);
  } catch (e) {
    if (e instanceof SelectorError) throw new HttpError(400, 'invalid_selector', e.message, field);
    throw e;
  }
}

export const profileRoutes: FastifyPluginAsyncZod<ProfileRoutesOptions> = async (fastify, opts) => {
  const { db } = opts;
  const actorOf = (req: Parameters<typeof principalOf>[0]) => {
    const p = principalOf(req);
    return { id: p.id, kind: p.kind };
  };

  fastify.get(
    '/profiles',
    {
      preHandler: requireRole('viewer'),
      schema: {
        tags: ['profiles'],
        summary: 'All stored profiles',
        response: { 200: z.array(profileSchema) },
      },
    },
    async () => (await listProfiles(db)).map(out),
  );

  fastify.post(
    '/profiles',
    {
      preHandler: requireRole('operator'),
      schema: {
        tags: ['profiles'],
        summary: 'Create a profile (selector, values, priority, owner, validity window)',
        body: writeBody.omit({ expectedVersion: true }),
        response: { 201: profileSchema, 400: errorBody, 409: errorBody },
      },
    },
    async (req, reply) => {
      checkSelector(req.body.spec.selector, 'body.spec.selector');
      try {
        return reply
          .code(201)
          .send(out(await putProfile(db, req.body.spec, actorOf(req), { mode: 'create' })));
      } catch (e) {
        storeError(e);
      }
    },
  );

  fastify.post(
    '/profiles/plan',
    {
      preHandler: requireRole('viewer'),
      schema: {
        tags: ['profiles'],
        summary:
          'Plan a create or update without storing it: the conflicts it would take part in across the fleet, and how each is resolved',
        body: writeBody.omit({ expectedVersion: true }),
        response: {
          200: z.object({
            profile: z.string(),
            version: z.number().int(),
            devices: z.number().int(),
            rules: z.array(z.string()),
            groups: z.array(conflictGroup),
          }),
          400: errorBody,
        },
      },
    },
    async (req) => {
      checkSelector(req.body.spec.selector, 'body.spec.selector');
      const spec = req.body.spec;
      const stored = await getProfile(db, spec.name);
      const version = (stored?.version ?? 0) + 1;
      const r = await fleetConflicts(db, {
        candidate: { ...spec, id: spec.name, version, updatedAt: new Date() },
        involving: spec.name,
      });
      return { profile: spec.name, version, devices: r.devices, rules: r.rules, groups: r.groups };
    },
  );

  fastify.get(
    '/profiles/:id',
    {
      preHandler: requireRole('viewer'),
      schema: { tags: ['profiles'], params: idParam, response: { 200: profileSchema, 404: errorBody } },
    },
    async (req) => {
      const p = await getProfile(db, req.params.id);
      if (!p) throw new HttpError(404, 'not_found', `no profile ${req.params.id}`);
      return out(p);
    },
  );

  fastify.put(
    '/profiles/:id',
    {
      preHandler: requireRole('operator'),
      schema: {
        tags: ['profiles'],
        summary: 'Replace a profile; fields left out are released',
        params: idParam,
        body: writeBody,
        response: { 200: profileSchema, 400: errorBody, 404: errorBody, 409: errorBody },
      },
    },
    async (req) => {
      if (req.body.spec.name !== req.params.id)
        throw new HttpError(400, 'name_mismatch', 'spec.name must equal the profile id', 'body.spec.name');
      checkSelector(req.body.spec.selector, 'body.spec.selector');
      try {
        return out(
          await putProfile(db, req.body.spec, actorOf(req), {
            mode: 'update',
            ...(req.body.expectedVersion !== undefined ? { expectedVersion: req.body.expectedVersion } : {}),
          }),
        );
      } catch (e) {
        storeError(e);
      }
    },
  );

  fastify.delete(
    '/profiles/:id',
    {
      preHandler: requireRole('operator'),
      schema: {
        tags: ['profiles'],
        summary: 'Delete a profile (its fields are released; history is kept)',
        params: idParam,
        querystring: z.object({ expectedVersion: z.coerce.number().int().positive().optional() }),
        response: {
          200: z.object({ id: z.string(), version: z.number().int() }),
          404: errorBody,
          409: errorBody,
        },
      },
    },
    async (req) => {
      try {
        return {
          id: req.params.id,
          version: await deleteProfile(db, req.params.id, actorOf(req), req.query.expectedVersion),
        };
      } catch (e) {
        storeError(e);
      }
    },
  );

  fastify.get(
    '/profiles/:id/history',
    {
      preHandler: requireRole('viewer'),
      schema: {
        tags: ['profiles'],
        summary: 'Every version of a profile, including its deletion',
        params: idParam,
        response: {
          200: z.array(
            z.object({
              version: z.number().int(),
              action: z.string(),
              spec: z.record(z.string(), z.unknown()),
              actor: z.string(),
              at: z.string(),
            }),
          ),
          404: errorBody,
        },
      },
    },
    async (req) => {
      const rows = await profileHistory(db, req.params.id);
      if (rows.length === 0) throw new HttpError(404, 'not_found', `no profile ${req.params.id}`);
      return rows.map((r) => ({
        version: r.version,
        action: r.action,
        spec: r.spec,
        actor: r.actor,
        at: r.at.toISOString(),
      }));
    },
  );

  fastify.get(
    '/devices/:deviceId/effective-config',
    {
      preHandler: requireRole('viewer'),
      schema: {
        tags: ['profiles'],
        summary: "A device's effective configuration: owners, precedence, reported values, drift",
        params: deviceParam,
        response: {
          200: z.object({
            deviceId: z.string(),
            firmware: z.object({ oui: z.string(), productClass: z.string(), softwareVersion: z.string() }),
            profiles: z.array(z.object({ id: z.string(), matchedDevices: z.number().int() })),
            fields: z.array(field.extend({ reported: z.string().optional(), drifted: z.boolean() })),
            invalid: z.array(
              z.object({ profileId: z.string(), path: z.string(), code: z.string(), message: z.string() }),
            ),
          }),
          404: errorBody,
        },
      },
    },
    async (req) => {
      const c = await deviceEffectiveConfig(db, req.params.deviceId);
      if (!c) throw new HttpError(404, 'not_found', `no device ${req.params.deviceId}`);
      return c;
    },
  );

  fastify.get(
    '/profiles/conflicts',
    {
      preHandler: requireRole('viewer'),
      schema: {
        tags: ['profiles'],
        summary: 'Fleet-wide conflicts: which profiles, which parameters, how many devices, which values',
        querystring: z.object({ sample: z.coerce.number().int().min(0).max(100).default(5) }),
        response: {
          200: z.object({
            devices: z.number().int(),
            profiles: z.number().int(),
            rules: z.array(z.string()),
            claimedPairs: z.number().int(),
            multiplyClaimedPairs: z.number().int(),
            conflictingPairs: z.number().int(),
            unresolvedPairs: z.number().int(),
            groups: z.array(conflictGroup),
          }),
        },
      },
    },
    async (req) => fleetConflicts(db, { sampleSize: req.query.sample }),
  );

  fastify.put(
    '/profiles/precedence',
    {
      preHandler: requireRole('admin'),
      schema: {
        tags: ['profiles'],
        summary: 'The order in which precedence rules decide a conflict',
        body: z.object({ rules: PrecedenceOrder }),
        response: { 200: z.object({ rules: z.array(z.string()) }) },
      },
    },
    async (req) => {
      await setPrecedenceRules(db, req.body.rules, actorOf(req));
      return { rules: await precedenceRules(db) };
    },
  );

  fastify.post(
    '/profiles/check-change',
    {
      preHandler: requireRole('viewer'),
      schema: {
        tags: ['profiles'],
        summary: 'Does a change request fight a profile? (a different value on a profile-owned field)',
        body: z.object({
          selector: z.record(z.string(), z.unknown()),
          items: z
            .array(z.object({ path: ParamPath, value: ParamValue }))
            .min(1)
            .max(1000),
        }),
        response: {
          200: z.object({
            targets: z.number().int(),
            fights: z.array(
              z.object({
                path: z.string(),
                value: ParamValue,
                effective: ParamValue,
                owners: z.array(z.string()),
                devices: z.number().int(),
                sample: z.array(z.string()),
              }),
            ),
          }),
          400: errorBody,
        },
      },
    },
    async (req) => {
      checkSelector(req.body.selector, 'body.selector');
      return changeFights(db, req.body);
    },
  );

  fastify.post(
    '/profiles/overrides',
    {
      preHandler: requireRole('operator'),
      schema: {
        tags: ['profiles'],
        summary: 'A time-boxed override profile so a change request is not undone by reconcile',
        body: z.object({
          changeRequestId: z.string().min(1).max(100),
          selector: z.record(z.string(), z.unknown()),
          parameters: ProfileParameters,
          validUntil: z.coerce.date(),
          description: z.string().max(2000).optional(),
        }),
        response: { 201: profileSchema, 400: errorBody, 409: errorBody },
      },
    },
    async (req, reply) => {
      checkSelector(req.body.selector, 'body.selector');
      const p = principalOf(req);
      try {
        const created = await createOverrideProfile(db, {
          ...req.body,
          owner: p.name,
          actor: { id: p.id, kind: p.kind },
        });
        return reply.code(201).send(out(created));
      } catch (e) {
        storeError(e);
      }
    },
  );

  fastify.post(
    '/profiles/conflicts/proposals',
    {
      preHandler: requireRole('operator'),
      schema: {
        tags: ['profiles'],
        summary:
          'Propose the winner of an unresolved conflict (a person, or the planner with a rationale); approvers decide at /approvals',
        body: z.object({
          path: ParamPath,
          profiles: z.array(z.string().min(1)).min(2).max(100),
          winner: z.string().min(1),
          rationale: z.string().max(4000).optional(),
        }),
        response: {
          200: z.object({ workflowId: z.string(), gate: z.string(), planHash: z.string() }),
          404: errorBody,
          422: errorBody,
          504: errorBody,
        },
      },
    },
    async (req) => {
      const profiles = [...new Set(req.body.profiles)].sort();
      const conflicts = await fleetConflicts(db, { sampleSize: 0 });
      const g = conflicts.groups.find(
        (x) =>
          x.status === 'conflict' &&
          x.path === req.body.path &&
          x.claims
            .map((c) => c.profileId)
            .sort()
            .join(',') === profiles.join(','),
      );
      if (!g?.escalation)
        throw new HttpError(
          404,
          'no_conflict',
          `no unresolved conflict on ${req.body.path} between ${profiles.join(', ')}`,
        );
      const handle = opts.temporal.workflow.getHandle(g.escalation);
      const p = principalOf(req);
      const proposal = {
        proposalId: randomUUID(),
        winner: req.body.winner,
        ...(req.body.rationale ? { rationale: req.body.rationale } : {}),
        proposer: { id: p.id, name: p.name, kind: p.kind },
      };
      // Checked here for a clear answer; the workflow checks again (it may have moved on meanwhile).
      const current = await handle.query(resolutionStateQuery).catch(() => undefined);
      const why = proposalRefusal(current ?? { status: 'awaiting-proposal', profiles }, proposal);
      if (why) throw new HttpError(422, 'proposal_refused', why);
      await opts.temporal.workflow.signalWithStart(profileResolution, {
        taskQueue: opts.taskQueue,
        workflowId: g.escalation,
        workflowExecutionTimeout: '7 days',
        args: [{ path: g.path, profiles, claims: g.claims, devices: g.devices }],
        signal: proposeSignal,
        signalArgs: [proposal],
      });
      const end = Date.now() + 20_000;
      for (;;) {
        const st = await handle.query(resolutionStateQuery);
        if (st.proposal?.proposalId === proposal.proposalId && st.planHash)
          return { workflowId: g.escalation, gate: 'resolution', planHash: st.planHash };
        const refused = st.refused.find((r) => r.proposalId === proposal.proposalId);
        if (refused) throw new HttpError(422, 'proposal_refused', refused.reason);
        if (Date.now() > end)
          throw new HttpError(504, 'proposal_pending', 'the resolution workflow did not answer in time');
        await new Promise((r) => setTimeout(r, 100));
      }
    },
  );

  fastify.get(
    '/profiles/conflicts/resolutions/:id',
    {
      preHandler: requireRole('viewer'),
      schema: {
        tags: ['profiles'],
        params: idParam,
        response: {
          200: z.object({
            status: z.string(),
            path: z.string(),
            profiles: z.array(z.string()),
            planHash: z.string().optional(),
            approvers: z.array(z.string()).optional(),
            proposal: z
              .object({
                winner: z.string(),
                rationale: z.string().optional(),
                proposer: z.object({ id: z.string(), name: z.string(), kind: z.string() }),
              })
              .optional(),
          }),
          404: errorBody,
        },
      },
    },
    async (req) => {
      try {
        return await opts.temporal.workflow.getHandle(req.params.id).query(resolutionStateQuery);
      } catch (e) {
        if (e instanceof WorkflowNotFoundError)
          throw new HttpError(404, 'not_found', `no resolution ${req.params.id}`);
        throw e;
      }
    },
  );

  const runSchema = z.object({
    id: z.string(),
    status: z.string(),
    trigger: z.string(),
    counts: z.record(z.string(), z.number()),
    startedAt: z.string(),
    finishedAt: z.string().nullable(),
  });

  fastify.get(
    '/profiles/reconcile',
    {
      preHandler: requireRole('viewer'),
      schema: {
        tags: ['profiles'],
        summary: 'Recent reconcile runs and their counts',
        querystring: z.object({ limit: z.coerce.number().int().min(1).max(100).default(10) }),
        response: { 200: z.array(runSchema) },
      },
    },
    async (req) =>
      (
        await db
          .select()
          .from(profileReconcileRuns)
          .orderBy(desc(profileReconcileRuns.startedAt))
          .limit(req.query.limit)
      ).map((r) => ({
        id: r.id,
        status: r.status,
        trigger: r.trigger,
        counts: r.counts,
        startedAt: r.startedAt.toISOString(),
        finishedAt: r.finishedAt?.toISOString() ?? null,
      })),
  );

  fastify.post(
    '/profiles/reconcile',
    {
      preHandler: requireRole('operator'),
      schema: {
        tags: ['profiles'],
        summary: 'Start a reconcile run now (all devices, or the given ones)',
        body: z.object({ devices: z.array(z.string().min(1)).min(1).max(10_000).optional() }).default({}),
        response: { 202: z.object({ workflowId: z.string() }) },
      },
    },
    async (req, reply) => {
      const workflowId = `profile-reconcile-manual-${randomUUID()}`;
      await opts.temporal.workflow.start(profileReconcile, {
        taskQueue: opts.taskQueue,
        workflowId,
        args: [{ trigger: 'manual', ...(req.body.devices ? { devices: req.body.devices } : {}) }],
      });
      return reply.code(202).send({ workflowId });
    },
  );

  fastify.get(
    '/profiles/reconcile/:id',
    {
      preHandler: requireRole('viewer'),
      schema: { tags: ['profiles'], params: idParam, response: { 200: runSchema, 404: errorBody } },
    },
    async (req) => {
      const [r] = await db
        .select()
        .from(profileReconcileRuns)
        .where(eq(profileReconcileRuns.id, req.params.id));
      if (!r) throw new HttpError(404, 'not_found', `no reconcile run ${req.params.id}`);
      return {
        id: r.id,
        status: r.status,
        trigger: r.trigger,
        counts: r.counts,
        startedAt: r.startedAt.toISOString(),
        finishedAt: r.finishedAt?.toISOString() ?? null,
      };
    },
  );
};
