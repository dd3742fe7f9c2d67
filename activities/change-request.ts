import { heartbeat } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { and, eq, inArray, sql } from 'drizzle-orm';
import { z } from 'zod';
import { appendAudit } from '../db/audit.js';
import type { SchemaRegistry } from '../datamodel/registry.js';
import type { Db } from '../db/client.js';
import { changeRequestDevices, changeRequests } from '../db/schema/change-request.js';
import { planHash } from '../domain/approval/plan-hash.js';
import type { DeviceTaskStatus, Executor, Operation, StepRef } from '../executor/executor.js';
import { TERMINAL_STATES } from '../executor/executor.js';
import { listDeviceIds } from '../fleet/resolve.js';
import type { Selector } from '../fleet/selector.js';
import type { Logger } from '../platform/logger.js';
import type { CheckPorts, CheckResult, TargetDevice } from '../planner/check.js';
import { checkProposal } from '../planner/check.js';
import { allChanges, type ChangeOp, type Proposal } from '../planner/proposal.js';
import type { PolicyEngine } from '../policies/engine.js';
import type { PolicyDecision } from '../policies/schema.js';
import { recordDecision } from '../policies/store.js';
import { changeFights, createOverrideProfile } from './profiles.js';
import { deleteProfile, listProfiles, ProfileStoreError } from '../db/profiles.js';

/**
 * Change-request activities: the only bridge from the `changeRequest` workflow to the fleet, the
 * policy engine and the executors. The plan (proposal + resolved devices) lives in PostgreSQL, never
 * in workflow history; every activity reloads it. Every executor step is keyed by
 * (change id, step, device, operation) — invariant 2 — so a retried activity never applies twice.
 */

const ParamPath = z
  .string()
  .min(1)
  .max(512)
  .regex(/^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*\.?$/, 'a dotted parameter path');

/** How a checked proposal is carried out and judged. Part of the plan hash: editing it voids approvals. */
export const ExecutionSpec = z.strictObject({
  /** Devices in the canary batch (batch 0). */
  canarySize: z.number().int().min(1).max(1000).default(1),
  /** Devices per batch after the canary. */
  batchSize: z.number().int().min(1).max(10_000).default(100),
  /** Writes not finished by then count as failed for that device. */
  applyTimeoutSeconds: z.number().int().min(1).max(86_400).default(600),
  verify: z
    .strictObject({
      /** CWMP devices must send an Inform of their own (not one we asked for) within this time after the write. */
      informWithinSeconds: z.number().int().min(1).max(86_400).optional(),
      /** Extra parameters that must read these values after the change (e.g. an uplink status). */
      health: z
        .array(z.strictObject({ path: ParamPath, equals: z.string().max(256) }))
        .max(20)
        .default([]),
      /** Read-back and inform checks must pass within this time. */
      timeoutSeconds: z.number().int().min(1).max(86_400).default(300),
    })
    .default({ health: [], timeoutSeconds: 300 }),
  /** Share of a batch's devices that may fail (partial, write failed, verify failed) before everything is undone. */
  maxFailedShare: z.number().min(0).max(1).default(0),
  /** How long compensation may wait for devices to come back. */
  compensateTimeoutSeconds: z
    .number()
    .int()
    .min(1)
    .max(7 * 86_400)
    .default(3600),
  /**
   * A change valid on some firmware versions and not others: `all_or_nothing` refuses the whole
   * proposal; `per_device` leaves out the devices whose firmware refuses it (listed in the plan).
   */
  onInvalidFirmware: z.enum(['all_or_nothing', 'per_device']).default('all_or_nothing'),
  /**
   * A value on a field a profile owns: `refuse` (the default) says so and stops; `override` applies it
   * under a time-boxed override profile (created before the first write), so reconciliation never
   * fights it. To change the fleet for good, edit the profile instead.
   */
  profileConflicts: z.enum(['refuse', 'override']).default('refuse'),
  overrideHours: z.number().int().min(1).max(720).default(168),
});
export type ExecutionSpec = z.infer<typeof ExecutionSpec>;
export type ExecutionSpecInput = z.input<typeof ExecutionSpec>;

export type ChangeStatus =
  | 'denied'
  | 'planner_failed'
  | 'awaiting_approval'
  | 'rejected'
  | 'expired'
  | 'applying'
  | 'compensating'
  | 'completed'
  | 'compensated'
  | 'cancelled'
  | 'failed';

export interface ChangeRequestDeps {
  logger: Logger;
  db?: Db;
  /** One executor per protocol; a device goes to the executor of its inventory protocol. */
  changeExecutors?: Partial<Record<'cwmp' | 'usp', Executor>>;
  /** The exact data model of a firmware (undefined: writes fail closed). */
  changeSchemaFor?: CheckPorts['schemaFor'];
  changePolicy?: PolicyEngine;
  /** Executor status poll interval while a step runs. */
  changePollMs?: number;
}

export interface Exclusion {
  oui: string;
  productClass: string;
  softwareVersion: string;
  devices: number;
  reasons: string[];
}

export interface ChangeCheck {
  check: CheckResult;
  deviceIds: string[];
  planHash: string;
  /** Firmware groups left out under `per_device`. */
  excluded: Exclusion[];
}

// ---------------------------------------------------------------------------------------------
// Checking (shared by the API, at proposal time, and the workflow, before anything is written)

/** CheckPorts over PostgreSQL: the selector resolves in the database, read-only. */
export function dbCheckPorts(
  db: Db,
  schemaFor: CheckPorts['schemaFor'],
  decide: CheckPorts['decide'],
  now?: () => Date,
): CheckPorts {
  return {
    async resolve(selector: Selector) {
      const { ids } = await listDeviceIds(db, selector, { rowCap: 100_000 });
      const devices: TargetDevice[] = [];
      for (let i = 0; i < ids.length; i += 5000) {
        const rows = await db.execute<{
          id: string;
          oui: string;
          product_class: string | null;
          software_version: string | null;
          time_zone: string | null;
          region: string | null;
        }>(
          sql`select id, oui, product_class, software_version, time_zone, region from devices where id = any(${sql.param(ids.slice(i, i + 5000))}::text[]) order by id`,
        );
        for (const r of rows.rows)
          devices.push({
            id: r.id,
            oui: r.oui,
            productClass: r.product_class ?? '?',
            softwareVersion: r.software_version ?? '?',
            ...(r.time_zone ? { timeZone: r.time_zone } : {}),
            ...(r.region ? { region: r.region } : {}),
          });
      }
      const fleet = await db.execute<{ n: string }>(sql`select count(*) as n from devices`);
      const regions = [...new Set(devices.flatMap((d) => (d.region ? [d.region] : [])))];
      const regionTotals: Record<string, number> = {};
      if (regions.length > 0) {
        const r = await db.execute<{ region: string; n: string }>(
          sql`select region, count(*) as n from devices where region = any(${sql.param(regions)}::text[]) group by region`,
        );
        for (const x of r.rows) regionTotals[x.region] = Number(x.n);
      }
      await (schemaFor as { ensure?: SchemaRegistry['ensure'] }).ensure?.(devices);
      return { devices, fleetSize: Number(fleet.rows[0]?.n ?? 0), regionTotals };
    },
    schemaFor,
    decide,
    ...(now ? { now } : {}),
  };
}

/** Exact data models only: a fallback schema never authorises a write (invariant 3). */
export function registrySchemaFor(
  registry: Pick<SchemaRegistry, 'resolve'> & Partial<Pick<SchemaRegistry, 'ensure'>>,
): CheckPorts['schemaFor'] {
  const schemaFor: CheckPorts['schemaFor'] & { ensure?: SchemaRegistry['ensure'] } = (k) => {
    const r = registry.resolve(k);
    return r.match === 'exact' ? r.schema : undefined;
  };
  // dbCheckPorts awaits this for the resolved devices: a shared registry re-reads firmwares it does
  // not know yet (another process may have discovered them) before the synchronous lookups.
  if (registry.ensure) schemaFor.ensure = (keys) => registry.ensure!(keys);
  return schemaFor;
}

/** What the plan hash covers: the exact change, how it is staged and verified, and the device ids. */
export function changePlanHash(p: Proposal, execution: ExecutionSpec, deviceIds: readonly string[]): string {
  return planHash({
    spec: {
      kind: 'change_request',
      changes: p.changes,
      perDevice: p.perDevice,
      requestedRiskClass: p.requestedRiskClass ?? null,
      execution,
    },
    deviceIds,
  });
}

const NO_DECISION = {
  allow: true,
  deny: [],
  risk_class: 'low',
  require_approvals: 0,
  constraints: {},
  risk_factors: [],
} as const satisfies PolicyDecision;

const groupOf = (d: { oui: string; productClass: string; softwareVersion: string }) =>
  `${d.oui}\u0000${d.productClass}\u0000${d.softwareVersion}`;

/**
 * The deterministic gate: TR-181 validation per firmware, then one policy decision on the devices
 * that remain. Under `per_device`, firmware groups whose model refuses a change are left out by
 * narrowing the target (so the policy decides on the real cohort) and listed; a group without an
 * exact data model is never "left out" silently — it is listed the same way, and nothing is written to it.
 */
export async function checkChange(
  p: Proposal,
  execution: ExecutionSpec,
  ports: CheckPorts,
): Promise<ChangeCheck> {
  let proposal = p;
  let check = await checkProposal(proposal, ports);
  const excluded: Exclusion[] = [];
  if (execution.onInvalidFirmware === 'per_device' && check.policyInput) {
    const { devices } = await ports.resolve(p.effectiveTarget);
    const groups = new Map<string, TargetDevice[]>();
    for (const d of devices) groups.set(groupOf(d), [...(groups.get(groupOf(d)) ?? []), d]);
    const bad: Selector[] = [];
    for (const members of groups.values()) {
      const first = members[0] as TargetDevice;
      const schema = ports.schemaFor(first);
      const label = `${first.productClass} ${first.softwareVersion}`;
      const one = await checkProposal(
        {
          ...p,
          effectiveTarget: {
            and: [
              p.effectiveTarget,
              { field: 'oui', op: 'eq', value: first.oui },
              { field: 'productClass', op: 'eq', value: first.productClass },
              { field: 'softwareVersion', op: 'eq', value: first.softwareVersion },
            ],
          } as Selector,
          perDevice: p.perDevice.filter((x) => members.some((m) => m.id === x.deviceId)),
        },
        // Only the validation part matters per group; the real decision is taken once, below.
        { ...ports, decide: async () => NO_DECISION },
      );
      const reasons = one.errors.filter((e) => e.stage === 'validation').map((e) => e.message);
      if (!schema || reasons.length > 0) {
        excluded.push({
          oui: first.oui,
          productClass: first.productClass,
          softwareVersion: first.softwareVersion,
          devices: members.length,
          reasons: reasons.length ? reasons : [`no data model for ${label}`],
        });
        bad.push({
          and: [
            { field: 'oui', op: 'eq', value: first.oui },
            { field: 'productClass', op: 'eq', value: first.productClass },
            { field: 'softwareVersion', op: 'eq', value: first.softwareVersion },
          ],
        } as Selector);
      }
    }
    if (excluded.length > 0) {
      const keep = new Set(
        devices.filter((d) => !excluded.some((e) => groupOf(e) === groupOf(d))).map((d) => d.id),
      );
      proposal = {
        ...p,
        effectiveTarget: { and: [p.effectiveTarget, ...bad.map((b) => ({ not: b }))] } as Selector,
        perDevice: p.perDevice.filter((x) => keep.has(x.deviceId)),
      };
      check = await checkProposal(proposal, ports);
    }
  }
  const { devices } = await ports.resolve(proposal.effectiveTarget);
  const deviceIds = devices.map((d) => d.id).sort();
  return { check, deviceIds, planHash: changePlanHash(proposal, execution, deviceIds), excluded };
}

/**
 * PostgreSQL text and jsonb cannot hold U+0000. Model output and device strings may contain it; they
 * are stored with it replaced (U+FFFD), never rejected and never silently truncated.
 */
export function storable<T>(x: T): T {
  return JSON.parse(JSON.stringify(x).replaceAll('\\u0000', '\\ufffd')) as T;
}

export interface ProfileConflict {
  path: string;
  value: unknown;
  effective: unknown;
  owners: string[];
  devices: number;
  sample: string[];
}

/** Values of the change that differ from what an active profile owns on the same devices. */
export async function profileConflicts(
  db: Db,
  p: Proposal,
  deviceIds: readonly string[],
): Promise<ProfileConflict[]> {
  const items = allChanges(p).flatMap((c) =>
    c.change.op === 'set' ? [{ path: c.change.path, value: c.change.value }] : [],
  );
  if (items.length === 0 || deviceIds.length === 0) return [];
  const r = await changeFights(db, { selector: p.effectiveTarget, items });
  return r.fights as ProfileConflict[];
}

export function conflictReasons(conflicts: readonly ProfileConflict[], execution: ExecutionSpec): string[] {
  if (execution.profileConflicts === 'override') return [];
  return conflicts.map(
    (c) =>
      `[profile] profile_owned at ${c.path}: owned by ${c.owners.join(', ')} (value ${JSON.stringify(c.effective)}) on ${c.devices} device(s); edit the profile, or propose again with execution.profileConflicts "override" for a time-boxed override`,
  );
}

// ---------------------------------------------------------------------------------------------
// Per-device operations

interface DeviceOps {
  sets: Array<{ path: string; value: string }>;
  adds: string[];
  deletes: string[];
}

const asText = (v: string | number | boolean) => (typeof v === 'string' ? v : String(v));

/** The operations one device gets: every common change plus its own; later sets of a path win. */
export function opsFor(p: Proposal, deviceId: string): DeviceOps {
  const list: ChangeOp[] = allChanges(p)
    .filter((c) => c.deviceId === undefined || c.deviceId === deviceId)
    .map((c) => c.change);
  const sets = new Map<string, string>();
  const adds: string[] = [];
  const deletes: string[] = [];
  for (const c of list) {
    if (c.op === 'set') sets.set(c.path, asText(c.value));
    else if (c.op === 'add') adds.push(c.path.endsWith('.') ? c.path : `${c.path}.`);
    else deletes.push(c.path.endsWith('.') ? c.path : `${c.path}.`);
  }
  return { sets: [...sets].map(([path, value]) => ({ path, value })), adds, deletes };
}

/** Canary first, then batches; the order is a stable hash of (change id, device id), spreading strata. */
export function assignBatches(changeId: string, deviceIds: readonly string[], execution: ExecutionSpec) {
  const h = (s: string) => {
    let x = 2166136261;
    for (let i = 0; i < s.length; i++) x = Math.imul(x ^ s.charCodeAt(i), 16777619);
    return x >>> 0;
  };
  const ordered = [...deviceIds].sort(
    (a, b) => h(`${changeId}/${a}`) - h(`${changeId}/${b}`) || (a < b ? -1 : 1),
  );
  const out = new Map<string, number>();
  ordered.forEach((id, i) => {
    out.set(
      id,
      i < execution.canarySize ? 0 : 1 + Math.floor((i - execution.canarySize) / execution.batchSize),
    );
  });
  return out;
}

export interface BatchSummary {
  batch: number;
  devices: number;
  applied: number;
  partial: number;
  failed: number;
  skipped: number;
  verified: number;
  verifyFailed: number;
}

export interface CompensationSummary {
  attempted: number;
  restored: number;
  failed: number;
  pending: number;
  notRestorable: number;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function nonRetryable(type: string, message: string): ApplicationFailure {
  return ApplicationFailure.create({ type, message, nonRetryable: true });
}

export function createChangeRequestActivities(deps: ChangeRequestDeps) {
  const pollMs = deps.changePollMs ?? 1000;
  function db(): Db {
    if (!deps.db) throw new Error('change-request activities need a database (ActivityDeps.db)');
    return deps.db;
  }
  function executor(protocol: string): Executor {
    const e = deps.changeExecutors?.[protocol as 'cwmp' | 'usp'];
    if (!e) throw nonRetryable('NoExecutor', `no ${protocol} executor is configured in this worker`);
    return e;
  }
  function ports(): CheckPorts {
    const policy = deps.changePolicy;
    if (!policy || !deps.changeSchemaFor)
      throw nonRetryable(
        'NotConfigured',
        'change-request activities need a policy engine and a data-model lookup (changePolicy, changeSchemaFor)',
      );
    return dbCheckPorts(db(), deps.changeSchemaFor, async (input) => (await policy.decide(input)).decision);
  }

  async function load(changeId: string) {
    const [row] = await db().select().from(changeRequests).where(eq(changeRequests.id, changeId));
    if (!row) throw nonRetryable('UnknownChange', `no change request ${changeId}`);
    return {
      row,
      proposal: row.proposal as Proposal,
      execution: ExecutionSpec.parse(row.execution),
    };
  }

  async function devicesOf(changeId: string, batches?: number[], only?: string[]) {
    const where = [eq(changeRequestDevices.changeId, changeId)];
    if (batches) where.push(inArray(changeRequestDevices.batch, batches));
    if (only) where.push(inArray(changeRequestDevices.deviceId, only));
    return db()
      .select()
      .from(changeRequestDevices)
      .where(and(...where))
      .orderBy(changeRequestDevices.deviceId);
  }

  async function update(
    changeId: string,
    deviceId: string,
    set: Partial<typeof changeRequestDevices.$inferInsert>,
  ): Promise<void> {
    await db()
      .update(changeRequestDevices)
      .set({ ...set, updatedAt: new Date() })
      .where(and(eq(changeRequestDevices.changeId, changeId), eq(changeRequestDevices.deviceId, deviceId)));
  }

  /** Submit per protocol; operations grouped so devices with identical operations share one submit. */
  async function submitAll(
    changeId: string,
    items: Array<{ deviceId: string; protocol: string; step: string; operation: Operation }>,
    deadline: Date,
  ) {
    const groups = new Map<
      string,
      { protocol: string; step: string; operation: Operation; devices: string[] }
    >();
    for (const it of items) {
      const k = `${it.protocol}\u0000${it.step}\u0000${JSON.stringify(it.operation)}`;
      const g = groups.get(k) ?? {
        protocol: it.protocol,
        step: it.step,
        operation: it.operation,
        devices: [],
      };
      g.devices.push(it.deviceId);
      groups.set(k, g);
    }
    const refused = new Map<string, string>();
    for (const g of groups.values()) {
      for (let i = 0; i < g.devices.length; i += 1000) {
        const out = await executor(g.protocol).submit({
          ref: { scope: changeId, step: g.step },
          devices: g.devices.slice(i, i + 1000),
          operation: g.operation,
          deadline,
          owner: changeId,
        });
        for (const o of out) {
          if (o.outcome === 'lease_held')
            refused.set(`${o.deviceId}\u0000${g.step}`, `lease held by ${o.holder} until ${o.expiresAt}`);
          else if (o.outcome === 'rejected')
            refused.set(
              `${o.deviceId}\u0000${g.step}`,
              `${o.fault.reason}: ${o.fault.message}${o.fault.parameters?.length ? ` (${o.fault.parameters.map((x) => `${x.path} ${x.code}`).join(', ')})` : ''}`,
            );
        }
      }
    }
    return refused;
  }

  /** Waits until every listed task is terminal or the deadline passed, heartbeating; returns statuses by device and step. */
  async function awaitSteps(
    changeId: string,
    wanted: Array<{ deviceId: string; protocol: string; step: string }>,
    deadline: number,
  ): Promise<Map<string, DeviceTaskStatus>> {
    const byRef = new Map<string, { protocol: string; ref: StepRef; devices: string[] }>();
    for (const w of wanted) {
      const k = `${w.protocol}\u0000${w.step}`;
      const g = byRef.get(k) ?? { protocol: w.protocol, ref: { scope: changeId, step: w.step }, devices: [] };
      g.devices.push(w.deviceId);
      byRef.set(k, g);
    }
    const result = new Map<string, DeviceTaskStatus>();
    for (;;) {
      result.clear();
      for (const g of byRef.values())
        for (const s of await executor(g.protocol).status(g.ref, g.devices))
          result.set(`${s.deviceId}\u0000${s.ref.step}`, s);
      const open = wanted.filter((w) => {
        const s = result.get(`${w.deviceId}\u0000${w.step}`);
        return s && !TERMINAL_STATES.has(s.state);
      }).length;
      heartbeat({ open });
      if (open === 0 || Date.now() >= deadline) return result;
      await sleep(pollMs);
    }
  }

  async function audit(changeId: string, action: string, key: string, data: Record<string, unknown>) {
    await appendAudit(db(), {
      actor: { id: 'fleetbrain-change', kind: 'system' },
      action,
      subject: { kind: 'change_request', id: changeId },
      data,
      idempotencyKey: `change/${changeId}/${key}`,
    });
  }

  return {
    /**
     * Re-run validation and policy on today's fleet; the decision is stored with its input and bundle
     * hashes (invariant 3). The plan hash must still be the one the change was proposed (and approved)
     * with: a changed device set or edited plan fails here, before anything is written.
     */
    async crCheck(input: { changeId: string; expectPlanHash: string }): Promise<{
      ok: boolean;
      planHash: string;
      requiredApprovals: number;
      riskClass: string | null;
      reasons: string[];
      batches: number;
    }> {
      const { row, proposal, execution } = await load(input.changeId);
      const policy = deps.changePolicy;
      let evaluated: Awaited<ReturnType<PolicyEngine['decide']>> | undefined;
      const base = ports();
      const c = await checkChange(proposal, execution, {
        ...base,
        decide: async (pi) => {
          evaluated = await (policy as PolicyEngine).decide(pi);
          return evaluated.decision;
        },
      });
      if (evaluated && c.check.policyInput)
        await recordDecision(
          db(),
          { kind: 'change_request', id: input.changeId },
          { ...c.check.policyInput, action: 'execute' } as never,
          evaluated,
        );
      const reasons = c.check.errors.map(
        (e) => `[${e.stage}] ${e.code}${e.path ? ` at ${e.path}` : ''}: ${e.message}`,
      );
      reasons.push(...conflictReasons(await profileConflicts(db(), proposal, c.deviceIds), execution));
      if (c.planHash !== input.expectPlanHash)
        reasons.push(
          `plan_changed: the plan is no longer the one proposed (device set or change differs: ${c.planHash.slice(0, 12)} ≠ ${input.expectPlanHash.slice(0, 12)}); propose again`,
        );
      const ok = reasons.length === 0 && c.check.ok;
      let batches = 0;
      if (ok) {
        const assigned = assignBatches(input.changeId, c.deviceIds, execution);
        batches = Math.max(0, ...assigned.values()) + 1;
        const protocols = await db().execute<{ id: string; protocol: string }>(
          sql`select id, protocol from devices where id = any(${sql.param(c.deviceIds)}::text[])`,
        );
        const proto = new Map(protocols.rows.map((r) => [r.id, r.protocol]));
        for (let i = 0; i < c.deviceIds.length; i += 1000) {
          const chunk = c.deviceIds.slice(i, i + 1000);
          await db()
            .insert(changeRequestDevices)
            .values(
              chunk.map((id) => ({
                changeId: input.changeId,
                deviceId: id,
                protocol: proto.get(id) ?? 'cwmp',
                batch: assigned.get(id) ?? 0,
              })),
            )
            .onConflictDoNothing();
        }
      }
      return {
        ok,
        planHash: c.planHash,
        requiredApprovals: c.check.decision?.require_approvals ?? row.requiredApprovals,
        riskClass: c.check.decision?.risk_class ?? null,
        reasons,
        batches,
      };
    },

    /** Mirrors the workflow's status and progress into the read model; older versions never win. */
    async crRecord(input: {
      changeId: string;
      status: ChangeStatus;
      version: number;
      progress: unknown;
      reasons: string[];
      audit?: { action: string; key: string; data?: Record<string, unknown> };
    }): Promise<void> {
      await db()
        .update(changeRequests)
        .set({
          status: input.status,
          progress: storable(input.progress) as never,
          reasons: storable(input.reasons),
          version: input.version,
          updatedAt: new Date(),
        })
        .where(and(eq(changeRequests.id, input.changeId), sql`${changeRequests.version} < ${input.version}`));
      if (input.audit)
        await audit(input.changeId, input.audit.action, input.audit.key, {
          status: input.status,
          ...(input.audit.data ?? {}),
        });
    },

    /**
     * Read the current values of every path the batch will set (takes the devices' leases for this
     * change). A device whose values cannot be read gets no write: without a snapshot there is nothing
     * to restore.
     */
    async crSnapshot(input: { changeId: string; batch: number }): Promise<{ ok: number; skipped: number }> {
      const { proposal, execution } = await load(input.changeId);
      const rows = (await devicesOf(input.changeId, [input.batch])).filter((r) => r.apply === 'pending');
      const step = `snapshot/b${input.batch}`;
      const items = rows.flatMap((r) => {
        const paths = [
          ...new Set([
            ...opsFor(proposal, r.deviceId).sets.map((s) => s.path),
            ...execution.verify.health.map((h) => h.path),
          ]),
        ];
        return paths.length
          ? [
              {
                deviceId: r.deviceId,
                protocol: r.protocol,
                step,
                operation: { kind: 'getValues', paths } as Operation,
              },
            ]
          : [];
      });
      const deadline = Date.now() + execution.applyTimeoutSeconds * 1000;
      const refused = await submitAll(input.changeId, items, new Date(deadline));
      const st = await awaitSteps(
        input.changeId,
        items.filter((i) => !refused.has(`${i.deviceId}\u0000${i.step}`)),
        deadline,
      );
      let ok = 0;
      let skipped = 0;
      for (const r of rows) {
        const needs = items.some((i) => i.deviceId === r.deviceId);
        const s = st.get(`${r.deviceId}\u0000${step}`);
        if (!needs) {
          await update(input.changeId, r.deviceId, { snapshot: {} });
          ok++;
        } else if (s?.state === 'done') {
          const snap = Object.fromEntries((s.result?.values ?? []).map((v) => [v.path, v.value]));
          await update(input.changeId, r.deviceId, { snapshot: snap });
          ok++;
        } else {
          const why =
            refused.get(`${r.deviceId}\u0000${step}`) ??
            (s?.fault ? `${s.fault.reason}: ${s.fault.message}` : `snapshot ${s?.state ?? 'not queued'}`);
          await update(input.changeId, r.deviceId, {
            apply: 'skipped',
            detail: [`not written, no snapshot: ${why}`],
          });
          skipped++;
        }
      }
      return { ok, skipped };
    },

    /**
     * Write the batch: one setValues with every value, then each addObject and deleteObject, in that
     * order per device (the executor runs a device's tasks in submission order). A device where some
     * operations landed and others faulted is `partial` — reported and compensated, never hidden.
     */
    async crApply(input: { changeId: string; batch: number }): Promise<BatchSummary> {
      const { proposal, execution } = await load(input.changeId);
      const rows = (await devicesOf(input.changeId, [input.batch])).filter(
        (r) => r.apply === 'pending' || r.apply === 'applying',
      );
      const items: Array<{ deviceId: string; protocol: string; step: string; operation: Operation }> = [];
      for (const r of rows) {
        const o = opsFor(proposal, r.deviceId);
        if (o.sets.length)
          items.push({
            deviceId: r.deviceId,
            protocol: r.protocol,
            step: `apply/b${input.batch}/set`,
            operation: { kind: 'setValues', values: o.sets },
          });
        for (const [i, path] of o.adds.entries())
          items.push({
            deviceId: r.deviceId,
            protocol: r.protocol,
            step: `apply/b${input.batch}/add-${i}`,
            operation: { kind: 'addObject', path },
          });
        for (const [i, path] of o.deletes.entries())
          items.push({
            deviceId: r.deviceId,
            protocol: r.protocol,
            step: `apply/b${input.batch}/delete-${i}`,
            operation: { kind: 'deleteObject', path },
          });
      }
      const deadline = Date.now() + execution.applyTimeoutSeconds * 1000;
      const refused = await submitAll(input.changeId, items, new Date(deadline));
      const st = await awaitSteps(
        input.changeId,
        items.filter((i) => !refused.has(`${i.deviceId}\u0000${i.step}`)),
        deadline,
      );
      for (const r of rows) {
        const mine = items.filter((i) => i.deviceId === r.deviceId);
        const detail: string[] = [];
        let done = 0;
        const added: string[] = [];
        let refusedSteps = 0;
        for (const it of mine) {
          const why = refused.get(`${r.deviceId}\u0000${it.step}`);
          if (why) {
            // Refused before it was queued (lease held, unknown model, validation by the executor).
            refusedSteps++;
            detail.push(`${it.step} refused by the executor: ${why}`);
            continue;
          }
          const s = st.get(`${r.deviceId}\u0000${it.step}`);
          if (s?.state === 'done') {
            done++;
            if (it.operation.kind === 'addObject' && s.result?.instance !== undefined)
              added.push(`${it.operation.path}${s.result.instance}.`);
          } else if (s) {
            const params = s.fault?.parameters?.map((p) => `${p.path}: ${p.code} ${p.message}`).join('; ');
            detail.push(
              `${it.step} ${s.state}${s.fault ? `: ${s.fault.reason}${s.fault.code ? ` ${s.fault.code}` : ''} ${s.fault.message}` : ''}${params ? ` (${params})` : ''}`,
            );
          }
        }
        let apply: string;
        if (done === mine.length) apply = 'applied';
        else if (refusedSteps === mine.length) apply = 'skipped';
        else if (done > 0) apply = 'partial';
        else apply = 'failed';
        await update(input.changeId, r.deviceId, { apply, added, detail });
      }
      return summary(input.batch, await devicesOf(input.changeId, [input.batch]));
    },

    /**
     * Verify the applied devices: read every set value and health parameter back (this needs a new
     * session, so a device that stopped answering fails it), and for CWMP devices, when the spec asks,
     * an Inform the device sent of its own accord after the write.
     */
    async crVerify(input: { changeId: string; batch: number; appliedAt: number }): Promise<BatchSummary> {
      const { proposal, execution } = await load(input.changeId);
      const rows = (await devicesOf(input.changeId, [input.batch])).filter(
        (r) => r.apply === 'applied' && r.verify === 'pending',
      );
      const step = `verify/b${input.batch}`;
      const items = rows.map((r) => {
        const o = opsFor(proposal, r.deviceId);
        const paths = [
          ...new Set([
            ...o.sets.map((s) => s.path),
            ...execution.verify.health.map((h) => h.path),
            ...(r.added ?? []),
          ]),
        ];
        return {
          deviceId: r.deviceId,
          protocol: r.protocol,
          step,
          paths,
          operation: { kind: 'getValues', paths } as Operation,
          ops: o,
        };
      });
      const withPaths = items.filter((i) => i.paths.length > 0);
      const deadline = Date.now() + execution.verify.timeoutSeconds * 1000;
      const refused = await submitAll(input.changeId, withPaths, new Date(deadline));
      const informWithin = execution.verify.informWithinSeconds;
      const informDeadline = informWithin ? input.appliedAt + informWithin * 1000 : 0;
      const informed = new Set<string>();
      const cwmp = rows.filter((r) => r.protocol === 'cwmp').map((r) => r.deviceId);
      const checkInforms = async () => {
        if (!informWithin || cwmp.length === 0) return;
        // An Inform only for our own connection request proves nothing about the device's own schedule.
        const r = await db().execute<{ device_id: string }>(sql`
          select distinct device_id from device_events
          where device_id = any(${sql.param(cwmp)}::text[]) and kind = 'inform' and at > ${new Date(input.appliedAt).toISOString()}::timestamptz
            and exists (select 1 from jsonb_array_elements_text(coalesce(payload->'eventCodes', '[]'::jsonb)) c where c <> '6 CONNECTION REQUEST')`);
        for (const x of r.rows) informed.add(x.device_id);
      };
      const st = await awaitSteps(
        input.changeId,
        withPaths.filter((i) => !refused.has(`${i.deviceId}\u0000${i.step}`)),
        deadline,
      );
      // The inform check may need longer than the read-back: wait for it up to its own limit.
      for (;;) {
        await checkInforms();
        if (
          !informWithin ||
          cwmp.every((d) => informed.has(d)) ||
          Date.now() >= Math.min(informDeadline, deadline)
        )
          break;
        heartbeat({ waitingForInforms: cwmp.length - informed.size });
        await sleep(pollMs);
      }
      const unverified: Array<{ protocol: string; deviceId: string }> = [];
      for (const it of items) {
        const problems: string[] = [];
        if (it.paths.length > 0) {
          const s = st.get(`${it.deviceId}\u0000${step}`);
          const why = refused.get(`${it.deviceId}\u0000${step}`);
          if (why) problems.push(`read-back refused: ${why}`);
          else if (s?.state !== 'done')
            problems.push(
              `read-back ${s?.state ?? 'missing'}${s?.fault ? `: ${s.fault.message}` : ''}: the device did not answer in time`,
            );
          else {
            const got = new Map((s.result?.values ?? []).map((v) => [v.path, v.value]));
            for (const w of it.ops.sets)
              if (!sameValue(got.get(w.path), w.value))
                problems.push(
                  `${w.path} reads ${JSON.stringify(got.get(w.path) ?? null)}, expected ${JSON.stringify(w.value)}`,
                );
            for (const h of execution.verify.health)
              if (got.get(h.path) !== h.equals)
                problems.push(
                  `health ${h.path} reads ${JSON.stringify(got.get(h.path) ?? null)}, expected ${JSON.stringify(h.equals)}`,
                );
          }
        }
        const row = rows.find((r) => r.deviceId === it.deviceId);
        if (informWithin && row?.protocol === 'cwmp' && !informed.has(it.deviceId))
          problems.push(
            `no Inform of its own within ${informWithin} s of the change: the device stopped informing`,
          );
        if (problems.length > 0)
          unverified.push({ protocol: row?.protocol ?? 'cwmp', deviceId: it.deviceId });
        await update(input.changeId, it.deviceId, {
          verify: problems.length ? 'failed' : 'verified',
          detail: [...(row?.detail ?? []), ...problems],
        });
      }
      // A read-back still queued for a silent device would only delay its restore.
      for (const proto of new Set(unverified.map((u) => u.protocol)))
        await executor(proto).cancel(
          { scope: input.changeId, step },
          unverified.filter((u) => u.protocol === proto).map((u) => u.deviceId),
        );
      return summary(input.batch, await devicesOf(input.changeId, [input.batch]));
    },

    /**
     * Restore the snapshot on the given devices (or every written device up to `throughBatch`): the old
     * values set back, created instances deleted. Waits for devices to come back up to the spec's
     * compensation timeout; reports each device as restored, failed or still pending.
     */
    async crCompensate(input: {
      changeId: string;
      throughBatch?: number;
      devices?: string[];
      round: string;
    }): Promise<CompensationSummary> {
      const { execution, proposal } = await load(input.changeId);
      const all = await devicesOf(
        input.changeId,
        input.throughBatch === undefined
          ? undefined
          : Array.from({ length: input.throughBatch + 1 }, (_, i) => i),
        input.devices,
      );
      const rows = all.filter(
        (r) => (r.apply === 'applied' || r.apply === 'partial') && r.compensation !== 'restored',
      );
      const step = `compensate/${input.round}`;
      const items: Array<{ deviceId: string; protocol: string; step: string; operation: Operation }> = [];
      for (const r of rows) {
        const snap = Object.entries(r.snapshot ?? {});
        if (snap.length)
          items.push({
            deviceId: r.deviceId,
            protocol: r.protocol,
            step: `${step}/set`,
            operation: { kind: 'setValues', values: snap.map(([path, value]) => ({ path, value })) },
          });
        for (const [i, path] of (r.added ?? []).entries())
          items.push({
            deviceId: r.deviceId,
            protocol: r.protocol,
            step: `${step}/delete-${i}`,
            operation: { kind: 'deleteObject', path },
          });
      }
      const deadline = Date.now() + execution.compensateTimeoutSeconds * 1000;
      const refused = await submitAll(input.changeId, items, new Date(deadline));
      const st = await awaitSteps(
        input.changeId,
        items.filter((i) => !refused.has(`${i.deviceId}\u0000${i.step}`)),
        deadline,
      );
      const out: CompensationSummary = {
        attempted: rows.length,
        restored: 0,
        failed: 0,
        pending: 0,
        notRestorable: 0,
      };
      for (const r of rows) {
        const mine = items.filter((i) => i.deviceId === r.deviceId);
        const states = mine.map((i) => st.get(`${r.deviceId}\u0000${i.step}`)?.state);
        // Deletes that landed (apply 'applied', or a partial whose delete step finished).
        const deleted = r.apply === 'applied' ? opsFor(proposal, r.deviceId).deletes.length : 0;
        let compensation: string;
        const detail = [...(r.detail ?? [])];
        const whys = mine.flatMap((i) => refused.get(`${r.deviceId}\u0000${i.step}`) ?? []);
        if (whys.length > 0) {
          compensation = 'failed';
          detail.push(`restore refused: ${whys.join('; ')}`);
        } else if (states.every((s) => s === 'done')) compensation = 'restored';
        else if (states.some((s) => s === undefined || !TERMINAL_STATES.has(s))) compensation = 'pending';
        else compensation = 'failed';
        if (deleted > 0) {
          // A deleted object comes back only as a new instance with other numbering: say so.
          detail.push(`${deleted} deleted object(s) cannot be restored exactly; field action needed`);
          out.notRestorable++;
        }
        out[compensation as 'restored' | 'failed' | 'pending']++;
        await update(input.changeId, r.deviceId, { compensation, detail });
      }
      return out;
    },

    /** Under `profileConflicts: override`: the time-boxed override profile, before the first write. Idempotent. */
    async crOverride(input: { changeId: string }): Promise<string | null> {
      const { row, proposal, execution } = await load(input.changeId);
      if (execution.profileConflicts !== 'override') return null;
      const conflicts = await profileConflicts(db(), proposal, row.deviceIds);
      if (conflicts.length === 0) return null;
      const existing = (await listProfiles(db())).find((x) => x.changeRequestId === input.changeId);
      if (existing) return existing.id;
      const parameters = allChanges(proposal).flatMap((c) =>
        c.change.op === 'set' && conflicts.some((f) => f.path === (c.change as { path: string }).path)
          ? [{ path: c.change.path, value: c.change.value }]
          : [],
      );
      try {
        const created = await createOverrideProfile(db(), {
          changeRequestId: input.changeId,
          // Bound to the approved device ids, not the selector: devices joining later are not covered.
          selector: { field: 'id', op: 'in', values: row.deviceIds.slice(0, 1000) },
          parameters,
          validUntil: new Date(Date.now() + execution.overrideHours * 3600_000),
          owner: row.requestedBy,
          actor: { id: 'fleetbrain-change', kind: 'system' },
        });
        return (created as { id: string }).id;
      } catch (err) {
        if (err instanceof ProfileStoreError && err.code === 'exists') return null;
        throw err;
      }
    },

    /** Compensated or cancelled: the override goes too, so reconciliation restores the profile's values. */
    async crDropOverride(input: { changeId: string }): Promise<number> {
      let n = 0;
      for (const p of await listProfiles(db()))
        if (p.changeRequestId === input.changeId) {
          await deleteProfile(db(), p.id, { id: 'fleetbrain-change', kind: 'system' });
          n++;
        }
      return n;
    },

    async crTolerance(input: { changeId: string }): Promise<{ maxFailedShare: number }> {
      return { maxFailedShare: (await load(input.changeId)).execution.maxFailedShare };
    },

    /** Devices of a batch that were written (in part) and then failed: each is restored alone. */
    async crFailedDevices(input: { changeId: string; batch: number }): Promise<string[]> {
      return (await devicesOf(input.changeId, [input.batch]))
        .filter((r) => r.apply === 'partial' || (r.apply === 'applied' && r.verify === 'failed'))
        .map((r) => r.deviceId);
    },

    /** Give the devices back: the change's leases end here, whatever the outcome. */
    async crRelease(input: { changeId: string }): Promise<number> {
      let n = 0;
      for (const e of Object.values(deps.changeExecutors ?? {}))
        if (e) n += await e.releaseLeases(input.changeId);
      return n;
    },
  };
}

/** Device-reported values compare as text, booleans loosely ("1" is "true"). */
function sameValue(got: string | undefined, want: string): boolean {
  if (got === undefined) return false;
  if (got === want) return true;
  const b = (x: string) => (x === '1' || x === 'true' ? 'true' : x === '0' || x === 'false' ? 'false' : x);
  return b(got) === b(want);
}

function summary(batch: number, rows: Array<typeof changeRequestDevices.$inferSelect>): BatchSummary {
  const s: BatchSummary = {
    batch,
    devices: rows.length,
    applied: 0,
    partial: 0,
    failed: 0,
    skipped: 0,
    verified: 0,
    verifyFailed: 0,
  };
  for (const r of rows) {
    if (r.apply === 'applied') s.applied++;
    else if (r.apply === 'partial') s.partial++;
    else if (r.apply === 'failed') s.failed++;
    else if (r.apply === 'skipped') s.skipped++;
    if (r.verify === 'verified') s.verified++;
    else if (r.verify === 'failed') s.verifyFailed++;
  }
  return s;
}
