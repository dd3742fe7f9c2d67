import { randomUUID } from 'node:crypto';
import type { Client } from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/client';
import { desc, eq, sql } from 'drizzle-orm';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import {
  type ChangeCheck,
  type ChangeStatus,
  checkChange,
  dbCheckPorts,
  ExecutionSpec,
  storable,
  profileConflicts,
  conflictReasons,
  type ProfileConflict,
} from '../../activities/change-request.js';
import type { Db } from '../../db/client.js';
import { changeRequestDevices, changeRequests } from '../../db/schema/change-request.js';
import type { CheckPorts } from '../../planner/check.js';
import type { DeviceFacts } from '../../planner/context.js';
import { isUnavailable, type Llm, type PlannerUnavailable } from '../../planner/llm.js';
import { planChange, type RoundRecord } from '../../planner/plan.js';
import {
  ChangeOp,
  manualProposal,
  type Proposal,
  ProposalError,
  RiskClass,
  selector,
} from '../../planner/proposal.js';
import type { Selector } from '../../fleet/selector.js';
import { wifiChannelTool } from '../../planner/tools/wifi-tool.js';
import type { PolicyEngine } from '../../policies/engine.js';
import { recordDecision } from '../../policies/store.js';
import {
  cancelChangeRequestUpdate,
  changeRequest,
  changeRequestProgressQuery,
} from '../../workflows/change-request.js';
import { principalOf, requireRole } from '../auth/guards.js';
import { errorBody, HttpError } from '../errors.js';

export interface ChangeRequestRoutesOptions {
  db: Db;
  temporal: Client;
  taskQueue: string;
  /** Exact data model of a firmware (undefined: writes fail closed). */
  schemaFor: CheckPorts['schemaFor'];
  policy: PolicyEngine;
  llm: Llm | PlannerUnavailable;
  /** Planner repair rounds. */
  maxRounds?: number;
  approvalWindowMs?: number;
  ssePollMs?: number;
}

const id = z
  .string()
  .regex(/^cr-[a-z0-9][a-z0-9-]{2,60}$/, '"cr-" then 3–61 lower-case letters, digits or dashes');

const createBody = z
  .object({
    id: id.optional(),
    /** What the operator wants, in words. With `planner: true` the planner proposes the change set. */
    intent: z.string().min(1).max(2000),
    /** The operator's scope (fleet selector). Nothing outside it can be targeted, whoever proposes. */
    scope: z.unknown(),
    planner: z.boolean().default(false),
    /** Manual proposals: target selector (within scope), changes, per-device changes. */
    target: z.unknown().optional(),
    changes: z.array(ChangeOp).max(1000).default([]),
    perDevice: z
      .array(z.strictObject({ deviceId: z.string().min(1), changes: z.array(ChangeOp).min(1).max(50) }))
      .max(10_000)
      .optional(),
    requestedRiskClass: RiskClass.optional(),
    rationale: z.string().max(4000).default(''),
    execution: ExecutionSpec.prefault({}),
  })
  .strict();

const statusSchema = z.enum([
  'denied',
  'planner_failed',
  'awaiting_approval',
  'rejected',
  'expired',
  'applying',
  'compensating',
  'completed',
  'compensated',
  'cancelled',
  'failed',
]);

const diffItem = z.object({
  op: z.enum(['set', 'add', 'delete']),
  path: z.string(),
  value: z.union([z.string(), z.number(), z.boolean()]).optional(),
  /** 'all' for every targeted device, otherwise the one device this line is for. */
  device: z.string(),
});

const view = z
  .object({
    id: z.string(),
    status: statusSchema,
    source: z.enum(['planner', 'manual']),
    intent: z.string(),
    /** First what would change … */
    diff: z.array(diffItem),
    devices: z.object({
      count: z.number().int(),
      sample: z.array(z.string()),
      excluded: z.array(
        z.object({
          oui: z.string(),
          productClass: z.string(),
          softwareVersion: z.string(),
          devices: z.number().int(),
          reasons: z.array(z.string()),
        }),
      ),
    }),
    /** … then why it may or may not … */
    validation: z.object({
      ok: z.boolean(),
      errors: z.array(
        z.object({ stage: z.string(), code: z.string(), message: z.string(), path: z.string().optional() }),
      ),
    }),
    /** Fields of the change that a profile owns on these devices (edit the profile, or apply as an override). */
    profileConflicts: z.array(
      z.object({
        path: z.string(),
        value: z.unknown(),
        effective: z.unknown(),
        owners: z.array(z.string()),
        devices: z.number().int(),
        sample: z.array(z.string()),
      }),
    ),
    policy: z
      .object({
        allow: z.boolean(),
        riskClass: RiskClass,
        requiredApprovals: z.number().int(),
        deny: z.array(z.object({ code: z.string(), message: z.string(), path: z.string().optional() })),
        riskFactors: z.array(z.object({ source: z.string(), class: z.string(), detail: z.string() })),
      })
      .nullable(),
    /** Where approvers decide: the shared approvals API (`POST /approvals/{workflowId}/{gate}/approve`). */
    approval: z.object({ workflowId: z.string(), gate: z.string(), planHash: z.string() }).nullable(),
    execution: z.record(z.string(), z.unknown()),
    progress: z.unknown().nullable(),
    reasons: z.array(z.string()),
    requestedBy: z.object({ id: z.string(), name: z.string() }),
    createdAt: z.string(),
    planner: z
      .object({
        rounds: z.array(
          z.object({
            round: z.number().int(),
            outcome: z.string(),
            errors: z.array(z.string()),
            toolCalls: z.array(z.object({ name: z.string(), args: z.unknown() })),
          }),
        ),
      })
      .nullable(),
    /** … and last the proposer's words; for the planner, marked as model output. */
    rationale: z.object({ origin: z.enum(['model', 'operator']), label: z.string(), text: z.string() }),
  })
  .meta({ id: 'ChangeRequest' });

const perDeviceView = z.object({
  deviceId: z.string(),
  protocol: z.string(),
  batch: z.number().int(),
  apply: z.string(),
  verify: z.string(),
  compensation: z.string(),
  detail: z.array(z.string()),
});

type Row = typeof changeRequests.$inferSelect;

function toView(r: Row): z.infer<typeof view> {
  const p = r.proposal as Proposal;
  const c = r.check as ChangeCheck['check'] & {
    excluded?: ChangeCheck['excluded'];
    profileConflicts?: ProfileConflict[];
  };
  const ids = r.deviceIds;
  const d = c.decision;
  return {
    id: r.id,
    status: r.status as ChangeStatus,
    source: p.source,
    intent: r.intent,
    diff: [
      ...p.changes.map((x) => ({ ...x, device: 'all' })),
      ...p.perDevice.flatMap((pd) => pd.changes.map((x) => ({ ...x, device: pd.deviceId }))),
    ],
    devices: { count: ids.length, sample: ids.slice(0, 20), excluded: c.excluded ?? [] },
    validation: { ok: c.errors.every((e) => e.stage === 'policy'), errors: c.errors },
    profileConflicts: c.profileConflicts ?? [],
    policy: d
      ? {
          allow: d.allow,
          riskClass: d.risk_class,
          requiredApprovals: d.require_approvals,
          deny: d.deny,
          riskFactors: d.risk_factors,
        }
      : null,
    approval:
      r.status === 'denied' || r.status === 'planner_failed'
        ? null
        : { workflowId: r.id, gate: 'plan', planHash: r.planHash },
    execution: r.execution as Record<string, unknown>,
    progress: r.progress ?? null,
    reasons: r.reasons,
    requestedBy: { id: r.requestedBy, name: r.requestedByName },
    createdAt: r.createdAt.toISOString(),
    planner: r.plannerRounds ? { rounds: r.plannerRounds as RoundRecord[] } : null,
    rationale: {
      origin: p.rationale.origin,
      label:
        p.rationale.origin === 'model'
          ? 'Model output: written by the planner, not checked by anyone. Judge the diff, validation and policy above.'
          : 'Written by the proposer.',
      text: p.rationale.text,
    },
  };
}

/** What the planner may see about devices in scope: device strings go through the sanitiser in the prompt. */
async function deviceFacts(db: Db, ids: string[]): Promise<DeviceFacts[]> {
  if (ids.length === 0) return [];
  const rows = await db.execute<{
    id: string;
    product_class: string | null;
    software_version: string | null;
    region: string | null;
    manufacturer: string | null;
    path: string | null;
    value: string | null;
  }>(sql`select d.id, d.product_class, d.software_version, d.region, d.manufacturer, p.path, p.value
         from devices d left join device_parameters p on p.device_id = d.id and (
           p.path like 'Device.WiFi.SSID.%.SSID' or p.path like 'Device.WiFi.Radio.%.Channel'
           or p.path like 'Device.Hosts.Host.%.HostName' or p.path = 'Device.DeviceInfo.Description')
         where d.id = any(${sql.param(ids)}::text[]) order by d.id, p.path`);
  const out = new Map<string, DeviceFacts>();
  for (const r of rows.rows) {
    const f = out.get(r.id) ?? {
      id: r.id,
      ...(r.product_class ? { productClass: r.product_class } : {}),
      ...(r.software_version ? { softwareVersion: r.software_version } : {}),
      ...(r.region ? { region: r.region } : {}),
      ...(r.manufacturer ? { manufacturer: r.manufacturer } : {}),
    };
    out.set(r.id, f);
    if (!r.path || r.value === null) continue;
    const ssid = /^Device\.WiFi\.SSID\.(\d+)\.SSID$/.exec(r.path);
    if (ssid) f.ssids = [...(f.ssids ?? []), { radio: Number(ssid[1]), ssid: r.value }];
    else if (/^Device\.Hosts\.Host\.\d+\.HostName$/.test(r.path))
      f.hosts = [...(f.hosts ?? []), { hostName: r.value }];
    else if (r.path === 'Device.DeviceInfo.Description')
      f.vendorFields = { ...(f.vendorFields ?? {}), [r.path]: r.value };
    else f.values = { ...(f.values ?? {}), [r.path]: r.value };
  }
  return [...out.values()];
}

/**
 * Change requests: propose (from an intent through the planner, or typed by a person), inspect,
 * list, cancel, follow progress. Approval goes through the shared approvals API; this only says where.
 */
export const changeRequestRoutes: FastifyPluginAsyncZod<ChangeRequestRoutesOptions> = async (app, opts) => {
  const { db } = opts;
  async function load(crId: string): Promise<Row> {
    const [row] = await db.select().from(changeRequests).where(eq(changeRequests.id, crId));
    if (!row) throw new HttpError(404, 'not_found', `no change request ${crId}`);
    return row;
  }

  app.post(
    '/change-requests',
    {
      preHandler: requireRole('operator'),
      schema: {
        tags: ['change-requests'],
        summary:
          'Propose a change (planner from an intent, or manual), validated per firmware and decided by policy; starts the workflow, which waits for approval',
        body: createBody,
        response: {
          201: view,
          400: errorBody,
          401: errorBody,
          403: errorBody,
          409: errorBody,
          503: errorBody,
        },
      },
    },
    async (req, reply) => {
      const me = principalOf(req);
      const b = req.body;
      const crId = b.id ?? `cr-${randomUUID().slice(0, 13)}`;
      const [exists] = await db
        .select({ id: changeRequests.id })
        .from(changeRequests)
        .where(eq(changeRequests.id, crId));
      if (exists) throw new HttpError(409, 'already_exists', `change request ${crId} exists`);
      const execution = b.execution;
      let evaluated: Awaited<ReturnType<PolicyEngine['decide']>> | undefined;
      const ports = dbCheckPorts(db, opts.schemaFor, async (input) => {
        evaluated = await opts.policy.decide(input);
        return evaluated.decision;
      });
      const asProposal = (f: () => Proposal) => {
        try {
          return f();
        } catch (err) {
          if (err instanceof ProposalError)
            throw new HttpError(400, 'invalid_proposal', err.message, err.field);
          throw err;
        }
      };
      let proposal: Proposal;
      let rounds: RoundRecord[] | null = null;
      let plannerFailure: string | null = null;
      if (b.planner) {
        if (isUnavailable(opts.llm)) throw new HttpError(503, 'planner_unavailable', opts.llm.reason);
        if (b.changes.length > 0 || b.perDevice || b.target !== undefined)
          throw new HttpError(
            400,
            'invalid_proposal',
            'with planner: true the planner writes the changes; send none',
            'changes',
          );
        let scope: Selector;
        try {
          scope = selector(b.scope, 'scope');
        } catch (err) {
          if (err instanceof ProposalError)
            throw new HttpError(400, 'invalid_proposal', err.message, err.field);
          throw err;
        }
        const { devices } = await ports.resolve(scope);
        const facts = await deviceFacts(
          db,
          devices.slice(0, 200).map((d) => d.id),
        );
        const r = await planChange(opts.llm, ports, {
          intent: b.intent,
          scope,
          scopeDescription: JSON.stringify(scope),
          devices: facts,
          tools: (h) => [wifiChannelTool(facts, h)],
          ...(opts.maxRounds ? { maxRounds: opts.maxRounds } : {}),
          key: { suite: 'change-requests', case: crId },
        });
        if (r.kind === 'planner_unavailable') throw new HttpError(503, 'planner_unavailable', r.reason);
        rounds = r.rounds;
        if (r.kind === 'proposed') proposal = r.proposal;
        else if (r.kind === 'failed' && r.lastProposal) {
          proposal = r.lastProposal;
          plannerFailure = r.reason;
        } else {
          throw new HttpError(
            409,
            r.kind === 'abstained' ? 'planner_abstained' : 'planner_failed',
            r.kind === 'abstained' ? `the planner abstained: ${r.reason}` : r.reason,
          );
        }
      } else {
        proposal = asProposal(() =>
          manualProposal(
            {
              intent: b.intent,
              scope: b.scope,
              ...(b.target !== undefined ? { target: b.target } : {}),
              changes: b.changes,
              ...(b.perDevice ? { perDevice: b.perDevice } : {}),
              ...(b.requestedRiskClass ? { requestedRiskClass: b.requestedRiskClass } : {}),
              rationale: b.rationale,
            },
            { id: me.id, kind: me.kind === 'service' ? 'service' : 'user', roles: me.roles },
          ),
        );
      }
      const checked = await checkChange(proposal, execution, ports);
      if (evaluated && checked.check.policyInput)
        await recordDecision(
          db,
          { kind: 'change_request', id: crId },
          checked.check.policyInput as never,
          evaluated,
        );
      const conflicts = await profileConflicts(db, proposal, checked.deviceIds);
      const conflictErrors = conflictReasons(conflicts, execution);
      const ok = checked.check.ok && plannerFailure === null && conflictErrors.length === 0;
      const status: ChangeStatus = plannerFailure ? 'planner_failed' : ok ? 'awaiting_approval' : 'denied';
      const reasons = [
        ...(plannerFailure ? [plannerFailure] : []),
        ...checked.check.errors.map(
          (e) => `[${e.stage}] ${e.code}${e.path ? ` at ${e.path}` : ''}: ${e.message}`,
        ),
        ...conflictErrors,
      ];
      const [row] = await db
        .insert(changeRequests)
        .values({
          id: crId,
          source: proposal.source,
          intent: storable(b.intent),
          requestedBy: me.id,
          requestedByName: me.name,
          proposerId: proposal.proposer.id,
          proposal: storable(proposal) as never,
          deviceIds: checked.deviceIds,
          check: storable({
            ...checked.check,
            excluded: checked.excluded,
            profileConflicts: conflicts,
          }) as never,
          execution: execution as never,
          plannerRounds: storable(rounds) as never,
          planHash: checked.planHash,
          riskClass: checked.check.decision?.risk_class ?? null,
          requiredApprovals: checked.check.decision?.require_approvals ?? 0,
          status,
          reasons: storable(reasons),
        })
        .returning();
      if (ok) {
        await opts.temporal.workflow.start(changeRequest, {
          taskQueue: opts.taskQueue,
          workflowId: crId,
          args: [
            {
              changeId: crId,
              proposer: { id: me.id, name: me.name, kind: me.kind },
              title: `Change request ${crId}: ${b.intent.slice(0, 120)} (${checked.deviceIds.length} devices)`,
              planHash: checked.planHash,
              ...(opts.approvalWindowMs ? { approvalWindowMs: opts.approvalWindowMs } : {}),
            },
          ],
        });
      }
      return reply.code(201).send(toView(row as Row));
    },
  );

  app.get(
    '/change-requests',
    {
      preHandler: requireRole('viewer'),
      schema: {
        tags: ['change-requests'],
        summary: 'Change requests, newest first',
        querystring: z.object({
          status: statusSchema.optional(),
          limit: z.coerce.number().int().min(1).max(500).default(100),
        }),
        response: { 200: z.object({ items: z.array(view) }), 401: errorBody, 403: errorBody },
      },
    },
    async (req) => {
      const rows = await db
        .select()
        .from(changeRequests)
        .where(req.query.status ? eq(changeRequests.status, req.query.status) : undefined)
        .orderBy(desc(changeRequests.createdAt))
        .limit(req.query.limit);
      return { items: rows.map(toView) };
    },
  );

  app.get(
    '/change-requests/:id',
    {
      preHandler: requireRole('viewer'),
      schema: {
        tags: ['change-requests'],
        summary: 'One change request: diff first, then validation and policy, the rationale last',
        params: z.object({ id }),
        response: { 200: view, 401: errorBody, 403: errorBody, 404: errorBody },
      },
    },
    async (req) => toView(await load(req.params.id)),
  );

  app.get(
    '/change-requests/:id/devices',
    {
      preHandler: requireRole('viewer'),
      schema: {
        tags: ['change-requests'],
        summary: 'Per device: batch, apply, verification and compensation result with details',
        params: z.object({ id }),
        querystring: z.object({ limit: z.coerce.number().int().min(1).max(10_000).default(1000) }),
        response: { 200: z.object({ items: z.array(perDeviceView) }), 404: errorBody },
      },
    },
    async (req) => {
      await load(req.params.id);
      const rows = await db
        .select()
        .from(changeRequestDevices)
        .where(eq(changeRequestDevices.changeId, req.params.id))
        .orderBy(changeRequestDevices.batch, changeRequestDevices.deviceId)
        .limit(req.query.limit);
      return {
        items: rows.map((r) => ({
          deviceId: r.deviceId,
          protocol: r.protocol,
          batch: r.batch,
          apply: r.apply,
          verify: r.verify,
          compensation: r.compensation,
          detail: r.detail,
        })),
      };
    },
  );

  app.post(
    '/change-requests/:id/cancel',
    {
      preHandler: requireRole('operator'),
      schema: {
        tags: ['change-requests'],
        summary: 'Cancel: before approval nothing is written; while applying, written devices are restored',
        params: z.object({ id }),
        body: z
          .object({ reason: z.string().max(2000).optional() })
          .strict()
          .prefault({}),
        response: {
          200: z.object({ accepted: z.boolean(), status: statusSchema }),
          404: errorBody,
          409: errorBody,
        },
      },
    },
    async (req) => {
      const row = await load(req.params.id);
      const me = principalOf(req);
      try {
        return await opts.temporal.workflow.getHandle(row.id).executeUpdate(cancelChangeRequestUpdate, {
          args: [{ by: me.id, ...(req.body.reason ? { reason: req.body.reason } : {}) }],
        });
      } catch (err) {
        if (err instanceof WorkflowNotFoundError)
          throw new HttpError(409, 'not_running', `change request ${row.id} is ${row.status}; nothing runs`);
        throw err;
      }
    },
  );

  app.get(
    '/change-requests/:id/events',
    {
      preHandler: requireRole('viewer'),
      schema: {
        tags: ['change-requests'],
        summary: 'Progress as server-sent events (`progress` per change; ends with the change request)',
        params: z.object({ id }),
        response: { 404: errorBody },
      },
    },
    async (req, reply) => {
      const row = await load(req.params.id);
      const query = async () => {
        try {
          return JSON.stringify(
            await opts.temporal.workflow.getHandle(row.id).query(changeRequestProgressQuery),
          );
        } catch {
          const r = await load(row.id);
          return JSON.stringify({
            changeId: r.id,
            status: r.status,
            reasons: r.reasons,
            ...(r.progress as object),
          });
        }
      };
      let last = await query();
      reply.hijack();
      reply.raw.writeHead(200, {
        'content-type': 'text/event-stream',
        'cache-control': 'no-cache',
        connection: 'keep-alive',
      });
      const send = (data: string) => reply.raw.write(`event: progress\ndata: ${data}\n\n`);
      send(last);
      const done = (s: string) =>
        [
          'denied',
          'planner_failed',
          'rejected',
          'expired',
          'completed',
          'compensated',
          'cancelled',
          'failed',
        ].includes((JSON.parse(s) as { status: string }).status);
      let closed = false;
      req.raw.on('close', () => {
        closed = true;
      });
      while (!closed && !done(last)) {
        await new Promise((r) => setTimeout(r, opts.ssePollMs ?? 1000));
        const next = await query();
        if (next !== last) {
          last = next;
          send(last);
        }
      }
      reply.raw.end();
    },
  );
};
