import { heartbeat } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { and, desc, eq, type SQL, sql } from 'drizzle-orm';
import { PgDialect } from 'drizzle-orm/pg-core';
import type pg from 'pg';
import type { DeviceKey } from '../datamodel/registry.js';
import { appendAudit } from '../db/audit.js';
import type { Db } from '../db/client.js';
import {
  activeProfiles,
  decisions,
  ProfileStoreError,
  precedenceRules,
  putProfile,
  recordDecision,
} from '../db/profiles.js';
import { profileReconcileRuns } from '../db/schema/profiles.js';
import { sha256Hex } from '../domain/approval/hash.js';
import { type EffectiveConfig, effectiveConfig, fightsWithProfiles } from '../domain/profiles/ownership.js';
import { covers, isPattern } from '../domain/profiles/paths.js';
import { type ParamValue, type Profile, ProfileSpec, valueKey } from '../domain/profiles/profile.js';
import type { Executor } from '../executor/executor.js';
import type { SchemaGate } from '../executor/schema-gate.js';
import type { Logger } from '../platform/logger.js';
import { requireDb } from './audit.js';
import { detectFleetConflicts, type FleetConflicts, type FleetProfile } from '../domain/profiles/fleet.js';
import type { Decision, PrecedenceRule } from '../domain/profiles/precedence.js';
import type { ParameterCatalog } from '../fleet/catalog.js';
import { compileWhere } from '../fleet/compile.js';
import { parseSelector } from '../fleet/selector.js';

/**
 * Plan-time conflict detection over the fleet in PostgreSQL. All selectors are resolved in one read-only,
 * repeatable-read transaction (one snapshot): device ids once in id order, then each selector as a
 * '0'/'1' string over that order, many selectors per table scan. The dense index of a device is its
 * position in id order, which is what the pure engine works on.
 */

export interface Memberships {
  ids: string[];
  members: Uint32Array[];
}

const PER_SCAN = 25;

export async function resolveMemberships(
  pool: pg.Pool,
  selectors: readonly unknown[],
  opts: { now: Date; catalog?: ParameterCatalog; statementTimeoutMs?: number; perScan?: number },
): Promise<Memberships> {
  const dialect = new PgDialect();
  const wheres = selectors.map((s) => compileWhere(parseSelector(s, { catalog: opts.catalog }), opts));
  const perScan = opts.perScan ?? PER_SCAN;
  const begin = `begin isolation level repeatable read read only`;
  const timeout = `set local statement_timeout = ${Math.max(1, Math.floor(opts.statementTimeoutMs ?? 60_000))}`;
  const lead = await pool.connect();
  try {
    await lead.query(begin);
    await lead.query(timeout);
    // Every scan reads the lead's snapshot, so ids and memberships describe one fleet state.
    const snap = (await lead.query<{ s: string }>('select pg_export_snapshot() as s')).rows[0]?.s;
    const idRows = await lead.query<{ ids: string | null }>(
      `select string_agg(s."id", E'\n') as ids from (select "id" from "devices" order by "id") s`,
    );
    const all = idRows.rows[0]?.ids;
    const ids = all ? all.split('\n') : [];
    const chunks: SQL[][] = [];
    for (let start = 0; start < wheres.length; start += perScan)
      chunks.push(wheres.slice(start, start + perScan));
    const results = await Promise.all(
      chunks.map(async (chunk) => {
        const cols = chunk.map(
          (w, i) => sql`string_agg(case when ${w} then '1' else '0' end, '') as ${sql.raw(`b${i}`)}`,
        );
        const q = dialect.sqlToQuery(
          sql`select ${sql.join(cols, sql`, `)} from (select * from "devices" order by "id") d`,
        );
        const c = await pool.connect();
        try {
          await c.query(begin);
          await c.query(`set transaction snapshot '${snap}'`);
          await c.query(timeout);
          const r = await c.query<Record<string, string | null>>(q.sql, q.params);
          await c.query('commit');
          const row = r.rows[0] ?? {};
          return chunk.map((_, i) => bitsToIndices(row[`b${i}`] ?? ''));
        } catch (e) {
          await c.query('rollback').catch(() => undefined);
          throw e;
        } finally {
          c.release();
        }
      }),
    );
    await lead.query('commit');
    const members = results.flat();
    for (const m of members) {
      const last = m[m.length - 1];
      if (last !== undefined && last >= ids.length)
        throw new Error('selector resolution and id list disagree');
    }
    return { ids, members };
  } catch (e) {
    await lead.query('rollback').catch(() => undefined);
    throw e;
  } finally {
    lead.release();
  }
}

function bitsToIndices(bits: string): Uint32Array {
  let n = 0;
  for (let i = 0; i < bits.length; i++) if (bits.charCodeAt(i) === 49) n++;
  const out = new Uint32Array(n);
  let k = 0;
  for (let i = 0; i < bits.length; i++) if (bits.charCodeAt(i) === 49) out[k++] = i;
  return out;
}

export interface DbConflicts extends FleetConflicts {
  ids: string[];
  memberships: Memberships;
  /** Seconds spent resolving selectors in PostgreSQL (the rest is the engine). */
  resolveSeconds: number;
}

/** Resolves every profile's selector once and finds all conflicts across the fleet. */
export async function detectConflictsInDb(
  pool: pg.Pool,
  profiles: readonly Profile[],
  opts: {
    now: Date;
    catalog?: ParameterCatalog;
    rules?: readonly PrecedenceRule[];
    decisions?: readonly Decision[];
    sampleSize?: number;
    perScan?: number;
  },
): Promise<DbConflicts> {
  const t0 = performance.now();
  const memberships = await resolveMemberships(
    pool,
    profiles.map((p) => p.selector),
    opts,
  );
  const resolveSeconds = (performance.now() - t0) / 1000;
  const fleet: FleetProfile[] = profiles.map((profile, i) => ({
    profile,
    members: memberships.members[i] as Uint32Array,
  }));
  const res = detectFleetConflicts({
    deviceCount: memberships.ids.length,
    profiles: fleet,
    now: opts.now,
    rules: opts.rules,
    decisions: opts.decisions,
    sampleSize: opts.sampleSize,
  });
  return { ...res, ids: memberships.ids, memberships, resolveSeconds };
}

// ---------------------------------------------------------------------------------------------
// Reconciliation and conflict resolution (the `profileReconcile` and `profileResolution` workflows)

export interface ProfileActivityDeps {
  logger: Logger;
  db?: Db;
  /** Executors by device protocol; reconcile writes only through them (invariant 2). */
  profileExecutors?: Partial<Record<'cwmp' | 'usp', Executor>>;
  /** Per-firmware validation (the executor's schema gate); without it the executor still refuses invalid writes. */
  profileGate?: Pick<SchemaGate, 'checkWrite'>;
}

/** One unresolved conflict that reconcile escalates to a person (through `profileResolution`). */
export interface Escalation {
  workflowId: string;
  path: string;
  profiles: string[];
  claims: Array<{ profileId: string; value: string | number | boolean }>;
  devices: number;
}

export interface ReconcileSubmitted {
  runId: string;
  /** Devices matched by at least one active profile. */
  devices: number;
  /** Devices whose reported value differs from the effective value on some field. */
  drifted: number;
  /** Devices provisioned again after a BOOTSTRAP (factory reset, first contact). */
  bootstrapped: number;
  sent: number;
  existing: number;
  busy: number;
  rejected: number;
  /** (device, path) pairs left alone because their conflict is unresolved. */
  unresolved: number;
  /** (device, profile, path) claims that the device's firmware refuses. */
  invalid: number;
  steps: Array<{ protocol: 'cwmp' | 'usp'; step: string }>;
  escalations: Escalation[];
  rejections: Array<{ deviceId: string; reason: string; message: string }>;
}

export interface ReconcileProgress {
  total: number;
  done: number;
  failed: number;
  expired: number;
  open: number;
}

const SUBMIT_BATCH = 200;
/** Events written later than this after their `at` could be missed by the bootstrap cursor. */
const EVENT_SETTLE_MS = 2_000;

export const reconcileScope = (runId: string) => `profile-reconcile/${runId}`;
export const resolutionWorkflowId = (path: string, profiles: readonly string[]) =>
  `profile-conflict-${sha256Hex(`${path}\n${[...profiles].sort().join(',')}`).slice(0, 24)}`;

/** Heartbeat when running as an activity; a plain call (CLI, tests) has no activity context. */
function beat(details: unknown): void {
  try {
    heartbeat(details);
  } catch {
    // not inside an activity
  }
}

function poolOf(db: Db): pg.Pool {
  return (db as unknown as { $client: pg.Pool }).$client;
}

function globRegex(pattern: string): string {
  return `^${pattern
    .split('.')
    .map((s) => (s === '*' ? '[1-9][0-9]*' : s.replace(/[^A-Za-z0-9_-]/g, (c) => `\\${c}`)))
    .join('\\.')}$`;
}

export function createProfileActivities(deps: ProfileActivityDeps) {
  const db = () => requireDb(deps, 'profile activities');
  const executorFor = (protocol: string): Executor => {
    const e = deps.profileExecutors?.[protocol as 'cwmp' | 'usp'];
    if (!e)
      throw ApplicationFailure.create({
        type: 'NoExecutor',
        message: `reconcile needs a ${protocol} executor (ActivityDeps.profileExecutors.${protocol})`,
        nonRetryable: true,
      });
    return e;
  };

  return {
    /**
     * Computes every matched device's effective configuration, compares it with what devices reported,
     * and submits the drifted fields (all fields for devices that sent BOOTSTRAP since the last run)
     * through the executor, grouped by identical value sets, in batches. Idempotent per
     * (run, values, device, setValues): a retry re-submits and the executor answers `existing`.
     */
    async reconcileProfiles(input: {
      runId: string;
      trigger: string;
      deadlineMs: number;
      onlyDevices?: string[];
    }): Promise<ReconcileSubmitted> {
      const d = db();
      // The run row pins the bootstrap window, so a retried attempt handles exactly the same events.
      const prev = await d
        .select({ cursor: profileReconcileRuns.eventCursor })
        .from(profileReconcileRuns)
        .where(
          and(
            eq(profileReconcileRuns.status, 'completed'),
            sql`${profileReconcileRuns.id} <> ${input.runId}`,
          ),
        )
        .orderBy(desc(profileReconcileRuns.startedAt))
        .limit(1);
      await d
        .insert(profileReconcileRuns)
        .values({
          id: input.runId,
          status: 'running',
          trigger: input.trigger,
          eventCursor: new Date(Date.now() - EVENT_SETTLE_MS),
        })
        .onConflictDoNothing();
      const [run] = await d
        .select()
        .from(profileReconcileRuns)
        .where(eq(profileReconcileRuns.id, input.runId));
      const from = prev[0]?.cursor ?? new Date(0);
      const to = run?.eventCursor ?? new Date();
      const now = new Date();
      const [profs, rules, decs] = await Promise.all([
        activeProfiles(d, now),
        precedenceRules(d),
        decisions(d),
      ]);
      const m = await resolveMemberships(
        poolOf(d),
        profs.map((p) => p.selector),
        { now },
      );
      const only = input.onlyDevices ? new Set(input.onlyDevices) : undefined;
      // Which profiles match each device (indices into profs), and how many devices each matched.
      const byDevice = new Map<number, number[]>();
      profs.forEach((_, pi) => {
        for (const di of m.members[pi] as Uint32Array) {
          if (only && !only.has(m.ids[di] as string)) continue;
          const l = byDevice.get(di);
          if (l) l.push(pi);
          else byDevice.set(di, [pi]);
        }
      });
      const deviceIds = [...byDevice.keys()].map((i) => m.ids[i] as string);
      const info = new Map<string, { protocol: string; key: DeviceKey }>();
      // Latest BOOTSTRAP per device in the window (ms); values stored before it are stale.
      const boot = new Map<string, number>();
      const reported = new Map<string, Map<string, { value: string; at: number }>>();
      const claimed = new Set(profs.flatMap((p) => p.parameters.map((x) => x.path)));
      const concrete = [...claimed].filter((p) => !isPattern(p));
      const regex = [...claimed].filter(isPattern).map(globRegex).join('|');
      for (let i = 0; i < deviceIds.length; i += 5_000) {
        const chunk = deviceIds.slice(i, i + 5_000);
        const list = chunk.join('\n');
        const [devs, evs, vals] = await Promise.all([
          d.execute<{ id: string; protocol: string; oui: string; pc: string | null; sw: string | null }>(
            sql`select id, protocol, oui, product_class as pc, software_version as sw from devices
                where id = any(string_to_array(${list}, E'\n'))`,
          ),
          d.execute<{ device_id: string; at: Date }>(
            sql`select device_id, max(at) as at from device_events
                where kind = 'bootstrap' and at > ${from} and at <= ${to}
                  and device_id = any(string_to_array(${list}, E'\n'))
                group by device_id`,
          ),
          d.execute<{ device_id: string; path: string; value: string; updated_at: Date }>(
            sql`select device_id, path, value, updated_at from device_parameters
                where device_id = any(string_to_array(${list}, E'\n'))
                  and (path = any(${sql`string_to_array(${concrete.join('\n')}, E'\n')`})
                       ${regex ? sql`or path ~ ${regex}` : sql``})`,
          ),
        ]);
        for (const r of devs.rows)
          info.set(r.id, {
            protocol: r.protocol,
            key: { oui: r.oui, productClass: r.pc ?? '', softwareVersion: r.sw ?? '' },
          });
        for (const r of evs.rows) boot.set(r.device_id, new Date(r.at).getTime());
        for (const r of vals.rows) {
          const mm = reported.get(r.device_id) ?? new Map<string, { value: string; at: number }>();
          reported.set(r.device_id, mm);
          mm.set(r.path, { value: r.value, at: new Date(r.updated_at).getTime() });
        }
        beat({ phase: 'read', devices: i });
      }
      // Devices with the same profiles and firmware share one effective configuration.
      const configs = new Map<string, EffectiveConfig>();
      const out: ReconcileSubmitted = {
        runId: input.runId,
        devices: deviceIds.length,
        drifted: 0,
        bootstrapped: 0,
        sent: 0,
        existing: 0,
        busy: 0,
        rejected: 0,
        unresolved: 0,
        invalid: 0,
        steps: [],
        escalations: [],
        rejections: [],
      };
      const escalations = new Map<string, Escalation>();
      // Conflicts this run settles by a rule or a person's decision: audited with the rule that decided.
      const settled = new Map<
        string,
        {
          path: string;
          status: string;
          value: ParamValue;
          owners: string[];
          overridden: unknown[];
          devices: number;
        }
      >();
      const toSend = new Map<
        string,
        { protocol: 'cwmp' | 'usp'; values: Array<{ path: string; value: string }>; devices: string[] }
      >();
      for (const [di, pis] of byDevice) {
        const id = m.ids[di] as string;
        const dev = info.get(id);
        if (!dev) continue; // deleted since the snapshot
        const fwKey = `${dev.key.oui}/${dev.key.productClass}/${dev.key.softwareVersion}`;
        const ck = `${pis.join(',')}|${fwKey}`;
        let cfg = configs.get(ck);
        if (!cfg) {
          const gate = deps.profileGate;
          cfg = effectiveConfig(
            pis.map((pi) => ({
              profile: profs[pi] as Profile,
              matchedDevices: (m.members[pi] as Uint32Array).length,
            })),
            {
              now,
              rules,
              decisions: decs,
              ...(gate
                ? {
                    check: (path: string, value: ParamValue) => {
                      const f = gate.checkWrite(dev.key, {
                        kind: 'setValues',
                        values: [{ path, value: valueKey(value) }],
                      });
                      return f ? { ok: false, code: f.reason, message: f.message } : { ok: true };
                    },
                  }
                : {}),
            },
          );
          configs.set(ck, cfg);
        }
        out.invalid += cfg.invalid.length;
        for (const f of cfg.fields) {
          if ((f.status !== 'resolved' && f.status !== 'decided') || f.value === undefined) continue;
          const k = `${f.path}\n${f.claims
            .map((c) => c.profileId)
            .sort()
            .join(',')}`;
          const e = settled.get(k);
          if (e) e.devices++;
          else
            settled.set(k, {
              path: f.path,
              status: f.status,
              value: f.value,
              owners: f.owners,
              overridden: f.overridden,
              devices: 1,
            });
        }
        const rep = reported.get(id) ?? new Map<string, { value: string; at: number }>();
        const want: Array<{ path: string; value: string }> = [];
        const bootAt = boot.get(id);
        for (const f of cfg.fields) {
          if (f.value === undefined) {
            out.unresolved++;
            const ids = f.claims.map((c) => c.profileId).sort();
            const wf = resolutionWorkflowId(f.path, ids);
            const e = escalations.get(wf);
            if (e) e.devices++;
            else
              escalations.set(wf, {
                workflowId: wf,
                path: f.path,
                profiles: ids,
                claims: f.claims.map((c) => ({ profileId: c.profileId, value: c.value })),
                devices: 1,
              });
            continue;
          }
          const v = valueKey(f.value);
          // A wildcard field covers every instance the device reports that no concrete field names.
          const paths = isPattern(f.path)
            ? [...rep.keys()].filter((p) => covers(f.path, p) && !cfg.fields.some((g) => g.path === p))
            : [f.path];
          for (const p of paths) {
            const r = rep.get(p);
            // After a BOOTSTRAP (factory reset) a value stored before it says nothing about the device now.
            const stale = bootAt !== undefined && r !== undefined && r.at < bootAt;
            if (r?.value !== v || stale) want.push({ path: p, value: v });
          }
        }
        if (want.length === 0) continue;
        if (bootAt !== undefined) out.bootstrapped++;
        else out.drifted++;
        want.sort((a, b) => (a.path < b.path ? -1 : 1));
        const protocol = dev.protocol === 'usp' ? 'usp' : 'cwmp';
        const sk = `${protocol}\n${JSON.stringify(want)}`;
        const g = toSend.get(sk);
        if (g) g.devices.push(id);
        else toSend.set(sk, { protocol, values: want, devices: [id] });
      }
      const deadline = new Date(Date.now() + input.deadlineMs);
      const scope = reconcileScope(input.runId);
      for (const g of toSend.values()) {
        const step = `set/${sha256Hex(JSON.stringify(g.values)).slice(0, 24)}`;
        out.steps.push({ protocol: g.protocol, step });
        g.devices.sort();
        for (let i = 0; i < g.devices.length; i += SUBMIT_BATCH) {
          const res = await executorFor(g.protocol).submit({
            ref: { scope, step },
            devices: g.devices.slice(i, i + SUBMIT_BATCH),
            operation: { kind: 'setValues', values: g.values },
            deadline,
            owner: input.runId,
          });
          for (const r of res) {
            if (r.outcome === 'queued') out.sent++;
            else if (r.outcome === 'existing') out.existing++;
            else if (r.outcome === 'lease_held') out.busy++;
            else {
              out.rejected++;
              if (out.rejections.length < 100)
                out.rejections.push({
                  deviceId: r.deviceId,
                  reason: r.fault.reason,
                  message: r.fault.message,
                });
            }
          }
          beat({ phase: 'submit', step, i });
        }
      }
      out.escalations = [...escalations.values()].sort((a, b) => b.devices - a.devices).slice(0, 50);
      if (settled.size > 0 || escalations.size > 0)
        await appendAudit(d, {
          actor: { id: 'fleetbrain-reconcile', kind: 'system' },
          action: 'profile.conflicts_settled',
          subject: { kind: 'profile_reconcile', id: input.runId },
          data: {
            resolutions: [...settled.values()].sort((a, b) => b.devices - a.devices).slice(0, 500),
            resolutionCount: settled.size,
            unresolved: out.escalations.map((e) => ({
              path: e.path,
              profiles: e.profiles,
              devices: e.devices,
            })),
          },
          idempotencyKey: `profile-reconcile/${input.runId}/settled`,
        });
      return out;
    },

    /** Task states of a run's steps, summed. */
    async reconcileProgress(input: {
      runId: string;
      steps: Array<{ protocol: 'cwmp' | 'usp'; step: string }>;
    }): Promise<ReconcileProgress> {
      const p: ReconcileProgress = { total: 0, done: 0, failed: 0, expired: 0, open: 0 };
      for (const s of input.steps) {
        for (const t of await executorFor(s.protocol).status({
          scope: reconcileScope(input.runId),
          step: s.step,
        })) {
          p.total++;
          if (t.state === 'done') p.done++;
          else if (t.state === 'failed') p.failed++;
          else if (t.state === 'expired') p.expired++;
          else p.open++;
        }
      }
      return p;
    },

    /** Releases the run's leases, stores its counts and audits it. Idempotent. */
    async finishReconcile(input: {
      runId: string;
      status: 'completed' | 'failed';
      counts: Record<string, number>;
    }): Promise<void> {
      const d = db();
      for (const protocol of Object.keys(deps.profileExecutors ?? {}))
        await executorFor(protocol).releaseLeases(input.runId);
      await d.transaction(async (tx) => {
        await tx
          .update(profileReconcileRuns)
          .set({ status: input.status, counts: input.counts, finishedAt: sql`now()` })
          .where(eq(profileReconcileRuns.id, input.runId));
        await appendAudit(tx, {
          actor: { id: 'fleetbrain-reconcile', kind: 'system' },
          action: `profile.reconcile_${input.status}`,
          subject: { kind: 'profile_reconcile', id: input.runId },
          data: input.counts,
          idempotencyKey: `profile-reconcile/${input.runId}/finish`,
        });
      });
    },

    /** Stores a resolution a person approved (possibly suggested by the planner) and audits it. */
    async recordProfileDecision(input: {
      path: string;
      profiles: string[];
      winner: string;
      approvers: string[];
      proposer: { id: string; kind: 'user' | 'service' };
      rationale?: string;
      approvalRequestId: string;
      planHash: string;
    }): Promise<void> {
      await recordDecision(db(), {
        path: input.path,
        profiles: input.profiles,
        winner: input.winner,
        decidedBy: input.approvers,
        proposedBy: input.proposer,
        ...(input.rationale ? { rationale: input.rationale } : {}),
        approvalRequestId: input.approvalRequestId,
        idempotencyKey: `profile-decision/${input.approvalRequestId}/${input.planHash}`,
      });
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Read-side services shared by the API and the CLI

export interface DeviceEffectiveConfig {
  deviceId: string;
  firmware: DeviceKey;
  profiles: Array<{ id: string; matchedDevices: number }>;
  fields: Array<{
    path: string;
    status: string;
    value?: ParamValue;
    owners: string[];
    overridden: Array<{ profileId: string; value: ParamValue; rule: string }>;
    reported?: string;
    drifted: boolean;
  }>;
  invalid: EffectiveConfig['invalid'];
}

/** Which active profiles match one device, its effective configuration, and drift against what it reported. */
export async function deviceEffectiveConfig(
  d: Db,
  deviceId: string,
  opts: { now?: Date; gate?: Pick<SchemaGate, 'checkWrite'> } = {},
): Promise<DeviceEffectiveConfig | undefined> {
  const now = opts.now ?? new Date();
  const dev = (
    await d.execute<{ oui: string; pc: string | null; sw: string | null }>(
      sql`select oui, product_class as pc, software_version as sw from devices where id = ${deviceId}`,
    )
  ).rows[0];
  if (!dev) return undefined;
  const key: DeviceKey = { oui: dev.oui, productClass: dev.pc ?? '', softwareVersion: dev.sw ?? '' };
  const [profs, rules, decs] = await Promise.all([activeProfiles(d, now), precedenceRules(d), decisions(d)]);
  const matched: Array<{ profile: Profile; matchedDevices: number }> = [];
  for (const p of profs) {
    const w = compileWhere(parseSelector(p.selector), { now });
    const r = await d.execute<{ hit: boolean; n: string }>(
      sql`select bool_or(d.id = ${deviceId}) as hit, count(*) as n from devices d where ${w}`,
    );
    if (r.rows[0]?.hit) matched.push({ profile: p, matchedDevices: Number(r.rows[0].n) });
  }
  const gate = opts.gate;
  const cfg = effectiveConfig(matched, {
    now,
    rules,
    decisions: decs,
    ...(gate
      ? {
          check: (path: string, value: ParamValue) => {
            const f = gate.checkWrite(key, { kind: 'setValues', values: [{ path, value: valueKey(value) }] });
            return f ? { ok: false as const, code: f.reason, message: f.message } : { ok: true as const };
          },
        }
      : {}),
  });
  const rep = new Map(
    (
      await d.execute<{ path: string; value: string }>(
        sql`select path, value from device_parameters where device_id = ${deviceId}`,
      )
    ).rows.map((r) => [r.path, r.value]),
  );
  return {
    deviceId,
    firmware: key,
    profiles: matched.map((x) => ({ id: x.profile.id, matchedDevices: x.matchedDevices })),
    fields: cfg.fields.map((f) => {
      const reported = rep.get(f.path);
      return {
        path: f.path,
        status: f.status,
        ...(f.value !== undefined ? { value: f.value } : {}),
        owners: f.owners,
        overridden: f.overridden,
        ...(reported !== undefined ? { reported } : {}),
        drifted: f.value !== undefined && !isPattern(f.path) && reported !== valueKey(f.value),
      };
    }),
    invalid: cfg.invalid,
  };
}

/** Plan-time conflict detection over the whole fleet, with the stored rules and decisions. */
export async function fleetConflicts(
  d: Db,
  opts: {
    now?: Date;
    sampleSize?: number;
    /** Plan a change without storing it: this profile replaces the stored one of the same id. */
    candidate?: Profile;
    /** Only groups in which this profile takes part. */
    involving?: string;
  } = {},
) {
  const now = opts.now ?? new Date();
  const [stored, rules, decs] = await Promise.all([activeProfiles(d, now), precedenceRules(d), decisions(d)]);
  const cand = opts.candidate;
  const profs: Profile[] = cand ? [...stored.filter((p) => p.id !== cand.id), cand] : stored;
  const res = await detectConflictsInDb(poolOf(d), profs, {
    now,
    rules,
    decisions: decs,
    sampleSize: opts.sampleSize ?? 5,
  });
  return {
    devices: res.ids.length,
    profiles: profs.length,
    rules,
    claimedPairs: res.claimedPairs,
    multiplyClaimedPairs: res.multiplyClaimedPairs,
    conflictingPairs: res.conflictingPairs,
    unresolvedPairs: res.unresolvedPairs,
    groups: res.groups
      .filter((g) => !opts.involving || g.claims.some((c) => c.profileId === opts.involving))
      .map((g) => ({
        path: g.path,
        claims: g.claims,
        devices: g.devices,
        sample: g.sample.map((i) => res.ids[i] as string),
        status: g.resolution.status,
        ...(g.resolution.value !== undefined ? { value: g.resolution.value } : {}),
        owners: g.resolution.owners,
        overridden: g.resolution.overridden,
        ...(g.resolution.status === 'conflict'
          ? {
              escalation: resolutionWorkflowId(
                g.path,
                g.claims.map((c) => c.profileId),
              ),
            }
          : {}),
      })),
  };
}

/**
 * Which items of a change request fight a profile on its target devices (a different value on a
 * profile-owned field), aggregated per (path, value, effective value, owners).
 */
export async function changeFights(
  d: Db,
  input: { selector: unknown; items: Array<{ path: string; value: ParamValue }>; now?: Date },
) {
  const now = input.now ?? new Date();
  const [profs, rules, decs] = await Promise.all([activeProfiles(d, now), precedenceRules(d), decisions(d)]);
  const m = await resolveMemberships(poolOf(d), [input.selector, ...profs.map((p) => p.selector)], { now });
  const target = m.members[0] as Uint32Array;
  const sets = new Map<number, number[]>();
  for (const di of target) sets.set(di, []);
  profs.forEach((_, pi) => {
    for (const di of m.members[pi + 1] as Uint32Array) sets.get(di)?.push(pi);
  });
  const bySig = new Map<string, string[]>();
  for (const [di, pis] of sets) {
    const k = pis.join(',');
    const l = bySig.get(k);
    if (l) l.push(m.ids[di] as string);
    else bySig.set(k, [m.ids[di] as string]);
  }
  const out = new Map<
    string,
    {
      path: string;
      value: ParamValue;
      effective: ParamValue;
      owners: string[];
      devices: number;
      sample: string[];
    }
  >();
  for (const [sig, ids] of bySig) {
    if (sig === '') continue;
    const pis = sig.split(',').map(Number);
    const cfg = effectiveConfig(
      pis.map((pi) => ({
        profile: profs[pi] as Profile,
        matchedDevices: (m.members[pi + 1] as Uint32Array).length,
      })),
      { now, rules, decisions: decs },
    );
    for (const f of fightsWithProfiles(cfg, input.items)) {
      const k = JSON.stringify([f.path, f.value, f.effective, f.owners]);
      const e = out.get(k) ?? { ...f, devices: 0, sample: [] };
      e.devices += ids.length;
      for (const id of ids) if (e.sample.length < 10) e.sample.push(id);
      out.set(k, e);
    }
  }
  return { targets: target.length, fights: [...out.values()].sort((a, b) => b.devices - a.devices) };
}

/** Longest an override may last: it exists to let a change request stand, not to replace a profile. */
export const MAX_OVERRIDE_MS = 30 * 86_400_000;

/**
 * A time-boxed override profile for a change request: its values win over every active profile that
 * claims the same fields (priority above theirs) until `validUntil`; then reconcile brings the owned
 * values back.
 */
export async function createOverrideProfile(
  d: Db,
  input: {
    changeRequestId: string;
    selector: Record<string, unknown>;
    parameters: Array<{ path: string; value: ParamValue }>;
    validUntil: Date;
    owner: string;
    description?: string;
    actor: { id: string; kind: 'user' | 'service' | 'system' };
    now?: Date;
  },
) {
  const now = input.now ?? new Date();
  if (input.validUntil.getTime() <= now.getTime())
    throw new ProfileStoreError('invalid', 'validUntil must be in the future');
  if (input.validUntil.getTime() - now.getTime() > MAX_OVERRIDE_MS)
    throw new ProfileStoreError('invalid', 'an override lasts at most 30 days');
  parseSelector(input.selector);
  const profs = await activeProfiles(d, now);
  const rivals = profs.filter((p) =>
    p.parameters.some((x) => input.parameters.some((y) => covers(x.path, y.path) || covers(y.path, x.path))),
  );
  const priority = Math.min(1_000_000, Math.max(0, ...rivals.map((p) => p.priority)) + 1);
  const name = `override-${input.changeRequestId.toLowerCase().replace(/[^a-z0-9._-]/g, '-')}`.slice(0, 128);
  const spec = ProfileSpec.parse({
    name,
    description: input.description ?? `time-boxed override for change request ${input.changeRequestId}`,
    selector: input.selector,
    parameters: input.parameters,
    priority,
    owner: input.owner,
    validFrom: now,
    validUntil: input.validUntil,
  });
  return putProfile(d, spec, input.actor, {
    mode: 'create',
    kind: 'override',
    changeRequestId: input.changeRequestId,
  });
}
