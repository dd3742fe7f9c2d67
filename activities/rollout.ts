import { Context, heartbeat } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { and, eq, gte, inArray, lte, sql } from 'drizzle-orm';
import { appendAudit } from '../db/audit.js';
import type { Db } from '../db/client.js';
import {
  deviceEvents,
  devices as devicesTable,
  firmwareImages,
  fleetHealth,
  rolloutCohortDevices,
} from '../db/schema/index.js';
import type { Executor, SubmitOutcome } from '../executor/executor.js';
import { idempotencyKey } from '../executor/executor.js';
import { deviceSetHash, selectorQuery } from '../fleet/resolve.js';
import { parseSelector } from '../fleet/selector.js';
import {
  type Classified,
  type CohortDevice,
  type ControlCounts,
  type DeviceEvent,
  type FleetHealth,
  type GateResult,
  type HealthSample,
  type OutcomeCounts,
  type RolloutSpec,
  type WavePlanResult,
  classifyOutcome,
  estimateSchedule,
  inMaintenanceWindow,
  judgeInformRate,
  evaluateGate,
  gateParamsFromSpec,
  planAbort,
  planWaves,
  rolloutSpecSchema,
} from '../domain/rollout/index.js';
import { webhookEgressFromEnv } from '../platform/config.js';
import { EgressRefused, guardedFetch } from '../platform/egress.js';
import type { Logger } from '../platform/logger.js';

/** A cohort device with what rollback planning needs to know about its banks. */
export interface RolloutDevice extends CohortDevice {
  dualBank?: boolean;
  inactiveBankVersion?: string;
  /** IANA zone of the device's local time (maintenance windows). */
  timeZone?: string;
}

/** Cohort resolution for a rollout: `freeze` stores the snapshot; later calls read it back. */
export interface CohortOptions {
  rolloutId: string;
  freeze: boolean;
}

/** What a rollout needs from the fleet: the cohort, and per-device events plus fleet health to judge outcomes. */
export interface RolloutFleet {
  /**
   * The cohort. With `opts`, a rollout's frozen snapshot is returned when there is one; `freeze`
   * stores the live answer as the snapshot (at the start of a run), so devices that change firmware
   * during the rollout keep their stratum and stay in the plan.
   */
  resolveCohort(selector: unknown, opts?: CohortOptions): Promise<RolloutDevice[]>;
  /** Events of the given devices in [fromMs, toMs], and the fleet-health rows covering that span. */
  observe(
    deviceIds: readonly string[],
    fromMs: number,
    toMs: number,
  ): Promise<{
    events: Map<string, DeviceEvent[]>;
    health: FleetHealth;
  }>;
  /**
   * Is the infrastructure healthy right now (fresh, healthy fleet-health rows)? Dispatch asks before
   * each batch and stops promptly when not. Optional: fleets without it are taken as healthy.
   */
  healthyNow?(): Promise<boolean>;
}

/** `ApplicationFailure.type` of a dispatch stopped because the infrastructure is unhealthy (pause, not fail). */
export const INFRASTRUCTURE_UNHEALTHY = 'InfrastructureUnhealthy';

/** The catalogue entry a rollout installs, and the image it rolls back to. */
export interface RolloutImage {
  id: string;
  url: string;
  version: string;
  fileSize: number;
  checksum?: string;
  /** Version the cohort runs today (the rollback target). */
  previousVersion: string;
  previousUrl?: string;
  /** Models the image is built for (catalogue); absent: not restricted here (policy decides). */
  models?: string[];
  /** Versions the image may be installed over (catalogue). */
  allowedFromVersions?: string[];
}

/**
 * The firmware catalogue (`firmware_images`) as the rollout's image lookup. A catalogue id is the
 * image's version; the rollback target is the first version the image may be installed over, and
 * its URL is the catalogue's entry for that version when there is one (else only dual-bank devices
 * can be rolled back, by activating the old bank). Revoked images are not offered.
 */
export function dbRolloutImages(db: Db): (imageId: string) => Promise<RolloutImage | undefined> {
  return async (imageId) => {
    const rows = await db.select().from(firmwareImages);
    const img = rows.find((r) => r.version === imageId);
    if (!img || img.status === 'revoked') return undefined;
    const previousVersion = img.allowedFromVersions[0] ?? '';
    const prev = rows.find((r) => r.version === previousVersion && r.status !== 'revoked');
    return {
      id: img.version,
      url: img.url,
      version: img.version,
      fileSize: img.size,
      ...(/^[0-9a-f]{64}$/.test(img.checksum) ? { checksum: img.checksum } : {}),
      previousVersion,
      ...(prev ? { previousUrl: prev.url } : {}),
      models: img.models,
      allowedFromVersions: img.allowedFromVersions,
    };
  };
}

export interface RolloutDeps {
  logger: Logger;
  db?: Db;
  rolloutExecutor?: Executor;
  /** Defaults to the PostgreSQL-backed fleet (devices, device_events, fleet_health). */
  rolloutFleet?: RolloutFleet;
  /** Catalogue lookup; defaults to none (every rollout fails with a clear error). */
  rolloutImages?: (imageId: string) => Promise<RolloutImage | undefined>;
  /** Length of one spec minute in ms; tests with a fast fleet double shrink it. */
  rolloutMinuteMs?: number;
  /** Webhook sender (by default a fetch that refuses non-public addresses unless FLEETBRAIN_WEBHOOK_ALLOW_* say so). */
  rolloutFetch?: typeof fetch;
  /** Health-history tuning of the PostgreSQL-backed fleet (tests with short intervals). */
  rolloutHealth?: DbFleetOptions;
}

export interface WaveSummary {
  wave: number;
  stages: number;
  devices: number;
  perStratum: Record<string, number>;
}

export interface PreparedRollout {
  cohortSize: number;
  cohortHash: string;
  strata: Array<{ id: string; size: number; members: string[] }>;
  minStratumSize: number;
  waves: WaveSummary[];
  schedule: { totalMinutes: number };
  image: { id: string; version: string; previousVersion: string };
}

/** One dispatched batch: devices [from, to) of a wave's stage list, and when they went out. */
export interface DispatchedBatch {
  wave: number;
  stage: number;
  from: number;
  to: number;
  at: number;
  /**
   * When the batch's activity was first scheduled: its first devices may have answered before `at`
   * (a long, paced batch), so their events count from here. Absent in batches of older runs.
   */
  sentFrom?: number;
  /** Devices whose submit was `queued` or `existing` (sent); others are counted apart. */
  sent: number;
  leaseHeld: number;
  rejected: number;
  /**
   * With maintenance windows: the instant the slice was checked against each device's local window.
   * Devices outside it were not sent by this batch (recomputed from the frozen cohort, never listed).
   */
  windowAt?: number;
  /** Devices held back for their maintenance window; the wave re-dispatches the slice when it opens. */
  deferred?: number;
  /** When the earliest held-back device's window opens (absent: none opens within 8 days). */
  nextWindowAt?: number;
}

export interface EvaluateInput {
  rolloutId: string;
  spec: RolloutSpec;
  seed: string;
  cohortHash: string;
  batches: DispatchedBatch[];
  startedAt: number;
  /** Strata already halted (they take no further part). */
  haltedStrata: string[];
}

export type StratumCounts = Record<string, OutcomeCounts>;

export interface Evaluation {
  gate: Pick<GateResult, 'decision' | 'reasons' | 'haltStrata' | 'familyWiseFalseAbortRate'> & {
    /** Absent in evaluations recorded before the console charted them. */
    theta?: number;
    perStratum: Array<{
      stratum: string;
      decision: string;
      concluded: number;
      bricks: number;
      /** Share of the stratum's concurrent control group silent through the outcome window. */
      controlRate?: number;
      controlObserved?: number;
      abortBoundary?: number;
      promoteBoundary?: number;
    }>;
  };
  /** Outcome counts per wave and stratum, for the progress query. */
  perWave: Record<number, StratumCounts>;
  pending: number;
  healthy: boolean;
}

export interface RollbackResult {
  rollback: number;
  activate: number;
  redownload: number;
  fieldAction: string[];
  untouched: number;
  pending: number;
}

const BATCH = 200;
/** How long the infrastructure must stay unhealthy before a dispatch stops (real ms, not spec minutes). */
const HEALTH_CONFIRM_MS = 15_000;

function emptyCounts(): OutcomeCounts {
  return { success: 0, degraded: 0, reverted: 0, transferFailure: 0, brick: 0, unknown: 0, pending: 0 };
}

function bump(c: OutcomeCounts, o: Classified['outcome']): void {
  if (o === 'transfer-failure') c.transferFailure++;
  else c[o]++;
}

export interface DbFleetOptions {
  /** A fleet-health row older than this reads as unhealthy (the executor writes one every 5 s). */
  maxRowAgeMs?: number;
  /** Width of one bucket (and one sample) of the inform-rate health history. */
  healthBucketMs?: number;
  /** Look-back before the judged span that sets the baseline inform rate (default one hour). */
  baselineLookbackMs?: number;
  /**
   * Cap on the judged window's width. The window is as wide as the cohort's periodic inform
   * interval (lock-step informs never read as an outage), but no wider than this (default 15 min),
   * so devices informing once a day still get outages of minutes noticed.
   */
  maxHealthWindowMs?: number;
  /** Below this many informs per bucket at baseline, the rate says nothing (small or idle fleets). */
  minBaselinePerBucket?: number;
  /** Where a detected drop of the inform rate is reported (once per span). */
  log?: Logger;
}

/**
 * The PostgreSQL-backed fleet: devices table for the cohort, device_events + fleet_health for outcomes.
 *
 * Health history: `fleet_health` keeps only the latest row per component, so the past is read from
 * what the executor persisted before acknowledging: informs per time bucket, judged over sliding
 * windows at least as wide as the cohort's periodic inform interval against the median window of
 * the hour before (domain/rollout/health.ts). A window far below it means CPEs could not reach the
 * ACS; the outcome of a device whose window overlaps it is `unknown`, never `brick`. The present
 * (the unfinished bucket) is the latest rows: every component healthy and fresh.
 */
export function dbRolloutFleet(db: Db, opts: DbFleetOptions = {}): RolloutFleet {
  const maxRowAgeMs = opts.maxRowAgeMs ?? 15_000;
  const bucketMs = opts.healthBucketMs ?? 60_000;
  const minBaseline = opts.minBaselinePerBucket ?? 10;
  const lookbackMs = opts.baselineLookbackMs ?? 3_600_000;
  const maxWindowMs = opts.maxHealthWindowMs ?? 15 * 60_000;
  /** Inform counts of settled buckets by bucket start (late writes land within SETTLED_MS). */
  const counted = new Map<number, number>();
  const SETTLED_MS = 120_000;
  let intervalCache: { key: string; ms: number } | undefined;
  let expectedCache: { windowMs: number; at: number; n: number } | undefined;
  let lastLogged = '';
  return {
    async resolveCohort(selector, co) {
      if (co) {
        const frozen = await readSnapshot(co.rolloutId);
        if (frozen.length > 0) return frozen;
      }
      const live = await resolveLive(selector);
      if (co?.freeze && live.length > 0) {
        for (let i = 0; i < live.length; i += 5_000)
          await db
            .insert(rolloutCohortDevices)
            .values(
              live.slice(i, i + 5_000).map((d) => ({
                rolloutId: co.rolloutId,
                deviceId: d.id,
                model: d.model,
                hardwareVersion: d.hardwareVersion,
                firmware: d.firmware,
                region: d.topology?.region ?? null,
                bng: d.topology?.bng ?? null,
                olt: d.topology?.olt ?? null,
                ponPort: d.topology?.ponPort ?? null,
                timeZone: d.timeZone ?? null,
                dualBank: d.dualBank ?? false,
              })),
            )
            .onConflictDoNothing();
        // A concurrent attempt may have frozen first: the stored snapshot is the truth.
        return readSnapshot(co.rolloutId);
      }
      return live;
    },
    async healthyNow() {
      return presentHealthy(Date.now());
    },
    async observe(deviceIds, fromMs, toMs) {
      const events = new Map<string, DeviceEvent[]>();
      for (let i = 0; i < deviceIds.length; i += 5_000) {
        const rows = await db
          .select()
          .from(deviceEvents)
          .where(
            and(
              inArray(deviceEvents.deviceId, deviceIds.slice(i, i + 5_000)),
              gte(deviceEvents.at, new Date(fromMs)),
              lte(deviceEvents.at, new Date(toMs)),
            ),
          );
        for (const r of rows) {
          const at = r.at.getTime();
          const p = r.payload as Record<string, unknown>;
          const sv = typeof p.softwareVersion === 'string' ? p.softwareVersion : undefined;
          let e: DeviceEvent | undefined;
          if (r.kind === 'inform')
            e = {
              kind: 'inform',
              at,
              ...(sv ? { softwareVersion: sv } : {}),
              eventCodes: Array.isArray(p.eventCodes) ? (p.eventCodes as string[]) : [],
            };
          else if (r.kind === 'boot') e = { kind: 'boot', at, ...(sv ? { softwareVersion: sv } : {}) };
          else if (r.kind === 'transfer_complete')
            e = { kind: 'transfer-complete', at, faultCode: Number(p.faultCode ?? 0) };
          if (!e) continue;
          const arr = events.get(r.deviceId) ?? [];
          arr.push(e);
          events.set(r.deviceId, arr);
        }
      }
      return { events, health: await health(deviceIds, fromMs, toMs) };
    },
  };

  async function readSnapshot(rolloutId: string): Promise<RolloutDevice[]> {
    const rows = await db
      .select()
      .from(rolloutCohortDevices)
      .where(eq(rolloutCohortDevices.rolloutId, rolloutId))
      .orderBy(rolloutCohortDevices.deviceId);
    return rows.map((r) => ({
      id: r.deviceId,
      model: r.model,
      hardwareVersion: r.hardwareVersion,
      firmware: r.firmware,
      topology: {
        ...(r.region ? { region: r.region } : {}),
        ...(r.bng ? { bng: r.bng } : {}),
        ...(r.olt ? { olt: r.olt } : {}),
        ...(r.ponPort ? { ponPort: r.ponPort } : {}),
      },
      ...(r.timeZone ? { timeZone: r.timeZone } : {}),
      dualBank: r.dualBank,
      // After the upgrade the image the device ran at the start sits in its other bank.
      ...(r.dualBank ? { inactiveBankVersion: r.firmware } : {}),
    }));
  }

  async function resolveLive(selector: unknown): Promise<RolloutDevice[]> {
    const ids = (await db.execute<{ id: string }>(selectorQuery(parseSelector(selector)))).rows.map(
      (r) => r.id,
    );
    const out: RolloutDevice[] = [];
    for (let i = 0; i < ids.length; i += 10_000) {
      const chunk = ids.slice(i, i + 10_000);
      const rows = await db.execute<{
        id: string;
        model: string | null;
        hw: string | null;
        fw: string | null;
        region: string | null;
        bng: string | null;
        olt: string | null;
        pon: string | null;
        tz: string | null;
        dual: boolean;
      }>(sql`select d.id, coalesce(d.model_name, d.product_class) as model, d.hardware_version as hw,
               d.software_version as fw, d.region, d.bng, d.olt, d.pon_port as pon, d.time_zone as tz,
               exists (select 1 from device_parameters p where p.device_id = d.id
                       and p.path like d.data_model_root || 'DeviceInfo.FirmwareImage.2.%') as dual
             from devices d where d.id in (${sql.join(
               chunk.map((x) => sql`${x}`),
               sql`, `,
             )}) order by d.id`);
      for (const r of rows.rows)
        out.push({
          id: r.id,
          model: r.model ?? '?',
          hardwareVersion: r.hw ?? '?',
          firmware: r.fw ?? '?',
          topology: {
            ...(r.region ? { region: r.region } : {}),
            ...(r.bng ? { bng: r.bng } : {}),
            ...(r.olt ? { olt: r.olt } : {}),
            ...(r.pon ? { ponPort: r.pon } : {}),
          },
          ...(r.tz ? { timeZone: r.tz } : {}),
          dualBank: r.dual,
        });
    }
    return out;
  }

  /**
   * The periodic inform interval (ms) that matters for these devices: the 95th percentile of their
   * stored intervals (a few stragglers on a daily interval do not widen every window). Cached for
   * the last device set (a rollout's cohort is frozen, so every look asks about the same one).
   */
  async function informIntervalMs(ids: readonly string[]): Promise<number> {
    if (ids.length === 0) return 0;
    const key = `${ids.length}|${ids[0]}|${ids[ids.length - 1]}`;
    if (intervalCache?.key === key) return intervalCache.ms;
    let worst = 0;
    for (let i = 0; i < ids.length; i += 5_000) {
      const [row] = await db
        .select({
          s: sql<
            number | null
          >`percentile_disc(0.95) within group (order by ${devicesTable.periodicInformIntervalS})`,
        })
        .from(devicesTable)
        .where(inArray(devicesTable.id, ids.slice(i, i + 5_000)));
      worst = Math.max(worst, Number(row?.s ?? 0) * 1000);
    }
    intervalCache = { key, ms: worst };
    return worst;
  }

  /**
   * Informs per window the inventory expects from devices heard in the last day (a whole-fleet scan,
   * so cached for five minutes). A device silent for longer no longer counts: it cannot hide an outage.
   */
  async function expectedInforms(windowMs: number, now: number): Promise<number> {
    if (expectedCache && expectedCache.windowMs === windowMs && now - expectedCache.at < 300_000)
      return expectedCache.n;
    const r = await db.execute<{ n: number | null }>(
      sql`select sum(least(1.0, ${windowMs}::float8 / (periodic_inform_interval_s * 1000.0)))::float8 as n
          from devices where periodic_inform_interval_s > 0 and last_contact_at > now() - interval '1 day'`,
    );
    const n = Number(r.rows[0]?.n ?? 0);
    expectedCache = { windowMs, at: now, n };
    return n;
  }

  /** Informs per bucket in [from, to) (bucket-aligned); settled buckets come from the cache. */
  async function informCounts(from: number, to: number): Promise<number[]> {
    const n = Math.max(0, Math.round((to - from) / bucketMs));
    let q = from;
    while (q < to && counted.has(q)) q += bucketMs;
    if (q < to) {
      const r = await db.execute<{ b: string; n: number }>(
        sql`select (floor(extract(epoch from at) * 1000 / ${bucketMs}) * ${bucketMs})::bigint as b, count(*)::int as n
            from device_events where kind = 'inform' and at >= ${new Date(q)} and at < ${new Date(to)}
            group by 1`,
      );
      const fresh = new Map<number, number>();
      for (const row of r.rows) fresh.set(Number(row.b), Number(row.n));
      const settled = Date.now() - SETTLED_MS;
      if (counted.size > 200_000) counted.clear();
      for (let b = q; b < to; b += bucketMs) {
        const c = fresh.get(b) ?? 0;
        if (b + bucketMs <= settled) counted.set(b, c);
        else fresh.set(b, c);
      }
      return Array.from({ length: n }, (_, i) => {
        const b = from + i * bucketMs;
        return b < q ? counted.get(b)! : (fresh.get(b) ?? 0);
      });
    }
    return Array.from({ length: n }, (_, i) => counted.get(from + i * bucketMs)!);
  }

  async function presentHealthy(now: number): Promise<boolean> {
    const rows = await db.select().from(fleetHealth);
    const ok = rows.length > 0 && rows.every((x) => x.healthy && now - x.at.getTime() <= maxRowAgeMs);
    if (!ok && opts.log)
      opts.log.warn(
        {
          rows: rows.map((x) => ({
            component: x.component,
            healthy: x.healthy,
            ageMs: now - x.at.getTime(),
            reasons: (x.details as { reasons?: unknown }).reasons,
          })),
        },
        'fleet health: infrastructure unhealthy now',
      );
    return ok;
  }

  async function health(deviceIds: readonly string[], fromMs: number, toMs: number): Promise<FleetHealth> {
    const now = Date.now();
    // Buckets aligned to the epoch (settled ones are cached across looks); the last full bucket ends
    // at or before both `toMs` and now.
    const judgeStart = Math.floor(fromMs / bucketMs) * bucketMs;
    const end = Math.floor(Math.min(toMs, now) / bucketMs) * bucketMs;
    const lookStart = Math.floor((judgeStart - lookbackMs) / bucketMs) * bucketMs;
    const samples: HealthSample[] = [];
    if (end > judgeStart) {
      const intervalMs = Math.min(await informIntervalMs(deviceIds), maxWindowMs);
      const windowSteps = Math.max(1, Math.ceil(intervalMs / bucketMs));
      const expectedPerWindow = await expectedInforms(windowSteps * bucketMs, now);
      const j = judgeInformRate(await informCounts(lookStart, end), {
        expectedPerWindow,
        start: lookStart,
        stepMs: bucketMs,
        windowSteps,
        judgeFrom: (judgeStart - lookStart) / bucketMs,
        minBaselinePerWindow: minBaseline * windowSteps,
      });
      samples.push(...j.samples);
      if (j.lowWindows.length > 0 && opts.log) {
        const key = `${j.lowWindows[0]![0]}-${j.lowWindows.at(-1)![1]}`;
        if (key !== lastLogged) {
          lastLogged = key;
          opts.log.warn(
            {
              windows: j.lowWindows.length,
              from: new Date(j.lowWindows[0]![0]).toISOString(),
              to: new Date(j.lowWindows.at(-1)![1]).toISOString(),
              baselinePerWindow: j.baseline,
              baselineFrom: j.baselineFrom,
              windowMs: windowSteps * bucketMs,
            },
            'inform rate fell below the outage share: outcomes in that span are unknown',
          );
        }
      }
    }
    // The unfinished bucket up to now: judged by the latest rows (every component healthy and fresh).
    const current = await presentHealthy(now);
    samples.push({ at: Math.max(end, judgeStart), healthy: current });
    samples.push({ at: toMs, healthy: current });
    return { samples, maxStalenessMs: bucketMs };
  }
}

/**
 * Rollout activities. The plan (cohort → strata → waves) is never carried in workflow history: every
 * activity recomputes it deterministically from (cohort, spec, seed) and checks the device-set hash,
 * so a changed fleet fails loudly instead of dispatching to other devices.
 */
export function createRolloutActivities(deps: RolloutDeps) {
  const minuteMs = deps.rolloutMinuteMs ?? 60_000;
  const plans = new Map<string, { plan: WavePlanResult; cohort: Map<string, RolloutDevice>; hash: string }>();
  let fleetCache: RolloutFleet | undefined;

  function executor(): Executor {
    if (!deps.rolloutExecutor)
      throw new Error('rollout activities need an executor (ActivityDeps.rolloutExecutor)');
    return deps.rolloutExecutor;
  }
  function fleet(): RolloutFleet {
    if (deps.rolloutFleet) return deps.rolloutFleet;
    if (!deps.db) throw new Error('rollout activities need a fleet source or a database');
    fleetCache ??= dbRolloutFleet(deps.db, { healthBucketMs: minuteMs, ...(deps.rolloutHealth ?? {}) });
    return fleetCache;
  }
  async function image(id: string): Promise<RolloutImage> {
    const img = await deps.rolloutImages?.(id);
    if (!img)
      throw ApplicationFailure.create({
        type: 'UnknownImage',
        message: `image ${id} is not in the catalogue`,
        nonRetryable: true,
      });
    return img;
  }

  async function planFor(
    rolloutId: string,
    spec: RolloutSpec,
    seed: string,
    expectHash?: string,
    mode: 'run' | 'dry-run' = 'run',
  ) {
    const key = `${rolloutId}|${seed}|${expectHash ?? ''}|${mode}`;
    const hit = plans.get(key);
    if (hit) return hit;
    // A run freezes its cohort on first planning (prepare) and re-plans from that snapshot after.
    const devices = await fleet().resolveCohort(
      spec.cohort,
      mode === 'run' ? { rolloutId, freeze: expectHash === undefined } : undefined,
    );
    const hash = deviceSetHash(devices.map((d) => d.id).sort());
    if (expectHash !== undefined && hash !== expectHash)
      throw ApplicationFailure.create({
        type: 'CohortChanged',
        message: `cohort of ${rolloutId} changed since it was planned (${hash} ≠ ${expectHash})`,
        nonRetryable: true,
      });
    const plan = planWaves(devices, spec, seed);
    const entry = { plan, cohort: new Map(devices.map((d) => [d.id, d])), hash };
    if (plans.size > 64) plans.clear();
    plans.set(key, entry);
    if (mode === 'run') plans.set(`${rolloutId}|${seed}|${hash}|run`, entry);
    return entry;
  }

  function stageList(plan: WavePlanResult, wave: number, stage: number): string[] {
    return plan.waves.find((w) => w.wave === wave && w.stage === stage)?.deviceIds ?? [];
  }

  /** Is the device inside one of the spec's maintenance windows (its local time; UTC when unknown)? */
  function inWindow(spec: RolloutSpec, d: RolloutDevice | undefined, at: number): boolean {
    return inMaintenanceWindow(at, d?.timeZone ?? 'UTC', spec.maintenanceWindows);
  }

  /** The devices a batch actually sent: its slice, less those outside their window at `windowAt`. */
  function batchDevices(
    plan: WavePlanResult,
    cohort: Map<string, RolloutDevice>,
    spec: RolloutSpec,
    b: DispatchedBatch,
  ): string[] {
    const slice = stageList(plan, b.wave, b.stage).slice(b.from, b.to);
    if (b.windowAt === undefined || spec.maintenanceWindows.length === 0) return slice;
    return slice.filter((id) => inWindow(spec, cohort.get(id), b.windowAt!));
  }

  /** Earliest instant after `from` at which any of the devices' windows is open (minute steps, 8 days). */
  function nextOpening(spec: RolloutSpec, devices: RolloutDevice[], from: number): number | undefined {
    const zones = [...new Set(devices.map((d) => d.timeZone ?? 'UTC'))];
    const step = 60_000;
    for (let t = Math.ceil(from / step) * step; t <= from + 8 * 24 * 3600_000; t += step)
      if (zones.some((z) => inMaintenanceWindow(t, z, spec.maintenanceWindows))) return t;
    return undefined;
  }

  /** Defence in depth: the plan caps devices per topology element in each dispatch step; check it. */
  function assertTopologyCap(
    plan: WavePlanResult,
    cohort: Map<string, RolloutDevice>,
    spec: RolloutSpec,
    wave: number,
    stage: number,
  ): void {
    const cap = spec.rateCaps.perTopologyElement;
    if (!cap) return;
    const used = new Map<string, number>();
    for (const id of stageList(plan, wave, stage)) {
      const t = cohort.get(id)?.topology ?? {};
      const k = t[cap.level] ?? t.olt ?? t.region ?? '';
      const n = (used.get(k) ?? 0) + 1;
      used.set(k, n);
      if (n > cap.max)
        throw ApplicationFailure.create({
          type: 'TopologyCapExceeded',
          message: `wave ${wave + 1} stage ${stage + 1} would send more than ${cap.max} devices to ${cap.level} ${k}`,
          nonRetryable: true,
        });
    }
  }

  async function audit(action: string, rolloutId: string, data: Record<string, unknown>, key: string) {
    if (!deps.db) {
      deps.logger.info({ action, rolloutId, ...data }, 'rollout audit (no database)');
      return;
    }
    await appendAudit(deps.db, {
      actor: { id: 'fleetbrain-rollout', kind: 'system' },
      action,
      subject: { kind: 'rollout', id: rolloutId },
      data,
      idempotencyKey: key,
    });
  }

  return {
    /** Resolve the cohort, plan waves, estimate the schedule: the dry run and the start of a run. */
    async prepareRollout(input: {
      rolloutId: string;
      spec: unknown;
      seed: string;
      /** Plan only (the API's dry run): the cohort is not frozen. */
      dryRun?: boolean;
    }): Promise<PreparedRollout> {
      const spec = rolloutSpecSchema.parse(input.spec);
      const img = await image(spec.image);
      const { plan, hash } = await planFor(
        input.rolloutId,
        spec,
        input.seed,
        undefined,
        input.dryRun ? 'dry-run' : 'run',
      );
      const waves = new Map<number, WaveSummary>();
      for (const w of plan.waves) {
        const s = waves.get(w.wave) ?? { wave: w.wave, stages: 0, devices: 0, perStratum: {} };
        s.stages++;
        s.devices += w.deviceIds.length;
        for (const [k, v] of Object.entries(w.perStratum)) s.perStratum[k] = (s.perStratum[k] ?? 0) + v;
        waves.set(w.wave, s);
      }
      const schedule = estimateSchedule(plan.waves, spec.rateCaps.perMinute, spec.outcomeTimeoutMinutes);
      return {
        cohortSize: plan.stratumOf.size,
        cohortHash: hash,
        strata: plan.strata.map((s) => ({ id: s.id, size: s.size, members: s.members })),
        minStratumSize: Number.isFinite(plan.minStratumSize) ? plan.minStratumSize : -1,
        waves: [...waves.values()].sort((a, b) => a.wave - b.wave),
        schedule: { totalMinutes: schedule.totalMinutes },
        image: { id: img.id, version: img.version, previousVersion: img.previousVersion },
      };
    },

    /**
     * Submit a Download for devices [from, to) of a stage, in batches, heartbeating the index reached.
     * Idempotent by (rollout id, step, device, operation): a retried activity re-submits and the
     * executor answers `existing` for what already went out.
     */
    async dispatchBatch(input: {
      rolloutId: string;
      spec: RolloutSpec;
      seed: string;
      cohortHash: string;
      wave: number;
      stage: number;
      from: number;
      to: number;
      excludeStrata: string[];
      /** Retry round; 0 is the first dispatch. */
      attempt?: number;
      onlyDevices?: string[];
    }): Promise<DispatchedBatch> {
      const { plan, cohort } = await planFor(input.rolloutId, input.spec, input.seed, input.cohortHash);
      const img = await image(input.spec.image);
      const excluded = new Set(input.excludeStrata);
      assertTopologyCap(plan, cohort, input.spec, input.wave, input.stage);
      const all = input.onlyDevices ?? stageList(plan, input.wave, input.stage).slice(input.from, input.to);
      const eligible = all.filter((id) => !excluded.has(plan.stratumOf.get(id) ?? ''));
      // Maintenance windows, in each device's local time, are enforced here at dispatch: a device
      // outside its window is held back, and the wave sends it when its window opens.
      const windowed = input.spec.maintenanceWindows.length > 0 && !input.onlyDevices;
      const windowAt = Date.now();
      const ids = windowed
        ? eligible.filter((id) => inWindow(input.spec, cohort.get(id), windowAt))
        : eligible;
      const held = windowed ? eligible.filter((id) => !ids.includes(id)) : [];
      const nextWindowAt =
        held.length > 0
          ? nextOpening(input.spec, held.map((id) => cohort.get(id)!).filter(Boolean), windowAt)
          : undefined;
      const step = `wave-${input.wave}/stage-${input.stage}${input.attempt ? `/retry-${input.attempt}` : ''}/download`;
      const ref = { scope: input.rolloutId, step };
      const resumeAt = (Context.current().info.heartbeatDetails as number | undefined) ?? 0;
      const perMinute = input.spec.rateCaps.perMinute;
      let sent = 0;
      let leaseHeld = 0;
      let rejected = 0;
      const deadline = new Date(Date.now() + input.spec.outcomeTimeoutMinutes * minuteMs);
      // ACS (or broker) down: stop dispatching now and let the wave pause (invariant 5), instead of
      // retrying the activity until the outage ends. Sent devices stay sent (idempotency keys).
      const infraDown = (cause?: unknown) =>
        ApplicationFailure.create({
          type: INFRASTRUCTURE_UNHEALTHY,
          message: `infrastructure unhealthy: dispatch of wave ${input.wave + 1} stopped after ${sent} devices${cause ? ` (${String(cause)})` : ''}`,
          nonRetryable: true,
        });
      const healthyNow = async () => (fleet().healthyNow ? fleet().healthyNow!() : true);
      // One stale or unhealthy reading is not an outage (a stalled health writer on a busy host):
      // stop only when the infrastructure stays unhealthy for HEALTH_CONFIRM_MS.
      const down = async (): Promise<boolean> => {
        const until = Date.now() + HEALTH_CONFIRM_MS;
        for (;;) {
          if (await healthyNow().catch(() => false)) return false;
          if (Date.now() >= until) return true;
          heartbeat(sentUpTo);
          await Context.current().sleep(2_500);
        }
      };
      const sentFrom = Context.current().info.scheduledTimestampMs || Date.now();
      let sentUpTo = resumeAt;
      for (let i = 0; i < ids.length; i += BATCH) {
        const devices = ids.slice(i, i + BATCH);
        const skip = i + BATCH <= resumeAt;
        if (!skip && (await down())) throw infraDown();
        // Devices before the heartbeat point were submitted by an earlier attempt; submit() is
        // idempotent anyway, this only saves the round trip.
        const out: SubmitOutcome[] = skip
          ? devices.map((d) => ({
              deviceId: d,
              outcome: 'existing' as const,
              key: idempotencyKey(ref, d, 'download'),
              state: 'queued' as const,
            }))
          : await executor()
              .submit({
                ref,
                devices,
                owner: input.rolloutId,
                deadline,
                operation: {
                  kind: 'download',
                  url: img.url,
                  version: img.version,
                  fileSize: img.fileSize,
                  ...(img.checksum ? { checksum: img.checksum } : {}),
                },
              })
              .catch(async (err: unknown) => {
                // A failed submit during an outage pauses; otherwise the activity retries.
                if (await down()) throw infraDown(err);
                throw err;
              });
        for (const o of out) {
          if (o.outcome === 'queued' || o.outcome === 'existing') sent++;
          else if (o.outcome === 'lease_held') leaseHeld++;
          else rejected++;
        }
        sentUpTo = i + devices.length;
        heartbeat(sentUpTo);
        // Rate cap inside the activity: one activity covers many minutes of dispatch, so the
        // workflow history grows by one activity per chunk, not one per minute.
        // Context.sleep ends early when the activity is cancelled (worker shutdown): it resumes
        // from the heartbeat on the next attempt.
        if (i + BATCH < ids.length && i + BATCH > resumeAt)
          await Context.current().sleep((BATCH / perMinute) * minuteMs);
      }
      return {
        wave: input.wave,
        stage: input.stage,
        from: input.from,
        to: input.to,
        at: Date.now(),
        sentFrom,
        sent,
        leaseHeld,
        rejected,
        ...(windowed ? { windowAt, deferred: held.length } : {}),
        ...(nextWindowAt !== undefined ? { nextWindowAt } : {}),
      };
    },

    /** Size of one stage's device list (the workflow slices it into dispatch batches). */
    async stageSize(input: {
      rolloutId: string;
      spec: RolloutSpec;
      seed: string;
      cohortHash: string;
      wave: number;
      stage: number;
    }): Promise<number> {
      const { plan } = await planFor(input.rolloutId, input.spec, input.seed, input.cohortHash);
      return stageList(plan, input.wave, input.stage).length;
    },

    /** Classify every dispatched device, count per wave and stratum, and run the gate. */
    async evaluateRollout(input: EvaluateInput): Promise<Evaluation> {
      const { plan, cohort } = await planFor(input.rolloutId, input.spec, input.seed, input.cohortHash);
      const img = await image(input.spec.image);
      const now = Date.now();
      const halted = new Set(input.haltedStrata);
      const treated: StratumCounts = {};
      const perWave: Record<number, StratumCounts> = {};
      for (const s of plan.strata) if (!halted.has(s.id)) treated[s.id] = emptyCounts();
      const dispatched = new Map<string, { at: number; from: number; wave: number }>();
      for (const b of input.batches) {
        for (const id of batchDevices(plan, cohort, input.spec, b))
          if (!dispatched.has(id)) dispatched.set(id, { at: b.at, from: b.sentFrom ?? b.at, wave: b.wave });
      }
      const earliest = Math.min(...input.batches.map((b) => Math.min(b.at, b.sentFrom ?? b.at)), now);
      const windowMs = input.spec.outcomeTimeoutMinutes * minuteMs;
      // Concurrent control: cohort devices not dispatched, observed over the same window.
      const control = [...plan.stratumOf.keys()].filter((id) => !dispatched.has(id));
      // A stratum with every device dispatched (its last wave) would leave the gate blind for its largest
      // wave: its control is then that wave's devices over the outcome window that ended as the wave
      // went out, when they were not yet dispatched (present outages are the health check's to catch).
      const withControl = new Set(control.map((id) => plan.stratumOf.get(id)));
      const lastWave = new Map<string, { wave: number; start: number; ids: string[] }>();
      for (const [id, d] of dispatched) {
        const s = plan.stratumOf.get(id) ?? '';
        if (withControl.has(s) || halted.has(s)) continue;
        const w = lastWave.get(s);
        if (!w || d.wave > w.wave) lastWave.set(s, { wave: d.wave, start: d.from, ids: [id] });
        else if (d.wave === w.wave) {
          w.ids.push(id);
          w.start = Math.min(w.start, d.from);
        }
      }
      const from = Math.min(earliest - minuteMs, ...[...lastWave.values()].map((w) => w.start - windowMs));
      const observed = await fleet().observe([...dispatched.keys(), ...control], from, now);
      let pending = 0;
      for (const [id, d] of dispatched) {
        const s = plan.stratumOf.get(id) ?? '';
        if (halted.has(s)) continue;
        const c = classifyOutcome(observed.events.get(id) ?? [], observed.health, {
          dispatchedAt: d.at,
          sentFrom: d.from,
          now,
          targetVersion: img.version,
          previousVersion: img.previousVersion,
          outcomeTimeoutMs: windowMs,
          soakMs: input.spec.soakMinutes * minuteMs,
          bootLoopBoots: input.spec.bootLoopBoots,
        });
        if (c.outcome === 'pending') pending++;
        const t = treated[s] ?? emptyCounts();
        treated[s] = t;
        bump(t, c.outcome);
        const w = perWave[d.wave] ?? {};
        perWave[d.wave] = w;
        const ws = w[s] ?? emptyCounts();
        w[s] = ws;
        bump(ws, c.outcome);
      }
      const controlCounts: Record<string, ControlCounts> = {};
      const windowStart = now - windowMs;
      // Only once a full outcome window has passed since the first dispatch does silence mean anything.
      if (windowStart >= earliest - minuteMs) {
        for (const id of control) {
          const s = plan.stratumOf.get(id) ?? '';
          const c = controlCounts[s] ?? { observed: 0, silent: 0 };
          controlCounts[s] = c;
          c.observed++;
          const evs = observed.events.get(id) ?? [];
          if (!evs.some((e) => e.at >= windowStart)) c.silent++;
        }
      }
      for (const [s, w] of lastWave) {
        const c = { observed: w.ids.length, silent: 0 };
        controlCounts[s] = c;
        for (const id of w.ids) {
          const evs = observed.events.get(id) ?? [];
          if (!evs.some((e) => e.at >= w.start - windowMs && e.at < w.start)) c.silent++;
        }
      }
      const latest = observed.health.samples.reduce((a, b) => (b.at > a.at ? b : a), {
        at: 0,
        healthy: false,
      });
      // The gate pauses on the present state; past outages only turn outcomes into `unknown`.
      const healthy = latest.healthy && now - latest.at <= observed.health.maxStalenessMs;
      const gate = evaluateGate(treated, controlCounts, gateParamsFromSpec(input.spec.gate), {
        infrastructureHealthy: healthy,
        minutesSinceStart: (now - input.startedAt) / minuteMs,
        decisionDeadlineMinutes: input.spec.gate.decisionDeadlineMinutes,
      });
      return {
        gate: {
          decision: gate.decision,
          reasons: gate.reasons,
          haltStrata: gate.haltStrata,
          familyWiseFalseAbortRate: gate.familyWiseFalseAbortRate,
          // θ, the control group and the gate's boundaries, so the console can chart what was decided on.
          theta: input.spec.gate.theta,
          perStratum: gate.perStratum.map((r) => ({
            stratum: r.stratum,
            decision: r.decision,
            concluded: r.concluded,
            bricks: r.bricks,
            controlRate: r.controlRate,
            controlObserved: controlCounts[r.stratum]?.observed ?? 0,
            abortBoundary: r.abortBoundary,
            promoteBoundary: r.promoteBoundary,
          })),
        },
        perWave,
        pending,
        healthy,
      };
    },

    /** Devices of dispatched batches whose executor task failed or expired (for "retry failed"). */
    async failedDevices(input: {
      rolloutId: string;
      spec: RolloutSpec;
      seed: string;
      cohortHash: string;
      batches: DispatchedBatch[];
      attempt: number;
    }): Promise<Array<{ wave: number; stage: number; devices: string[] }>> {
      const out = new Map<string, { wave: number; stage: number; devices: string[] }>();
      for (const b of input.batches) {
        const k = `${b.wave}/${b.stage}`;
        if (out.has(k)) continue;
        const prev = input.attempt > 1 ? `/retry-${input.attempt - 1}` : '';
        const st = await executor().status({
          scope: input.rolloutId,
          step: `wave-${b.wave}/stage-${b.stage}${prev}/download`,
        });
        const devices = st
          .filter((s) => s.state === 'failed' || s.state === 'expired')
          .map((s) => s.deviceId);
        out.set(k, { wave: b.wave, stage: b.stage, devices });
      }
      return [...out.values()].filter((x) => x.devices.length > 0);
    },

    /**
     * Roll back the upgraded, reachable devices of the halted strata by the cheapest path; list the
     * bricked ones for field action. Idempotent by (rollout id, step, device, operation).
     */
    async rollBack(input: {
      rolloutId: string;
      spec: RolloutSpec;
      seed: string;
      cohortHash: string;
      batches: DispatchedBatch[];
      haltStrata: string[];
      startedAt: number;
    }): Promise<RollbackResult> {
      const { plan, cohort } = await planFor(input.rolloutId, input.spec, input.seed, input.cohortHash);
      const img = await image(input.spec.image);
      const now = Date.now();
      const dispatched = new Map<string, number>();
      const sentFrom = new Map<string, number>();
      for (const b of input.batches)
        for (const id of batchDevices(plan, cohort, input.spec, b))
          if (!dispatched.has(id)) {
            dispatched.set(id, b.at);
            sentFrom.set(id, b.sentFrom ?? b.at);
          }
      const observed = await fleet().observe(
        [...dispatched.keys()],
        Math.min(...sentFrom.values(), now),
        now,
      );
      const outcomes = new Map<string, Classified['outcome']>();
      for (const [id, at] of dispatched) {
        outcomes.set(
          id,
          classifyOutcome(observed.events.get(id) ?? [], observed.health, {
            dispatchedAt: at,
            sentFrom: sentFrom.get(id) ?? at,
            now,
            targetVersion: img.version,
            previousVersion: img.previousVersion,
            outcomeTimeoutMs: input.spec.outcomeTimeoutMinutes * minuteMs,
            soakMs: 0,
            bootLoopBoots: input.spec.bootLoopBoots,
          }).outcome,
        );
      }
      const devices = [...dispatched.keys()].map((id) => {
        const d = cohort.get(id);
        return {
          id,
          stratum: plan.stratumOf.get(id) ?? '',
          dualBank: d?.dualBank ?? false,
          ...(d?.inactiveBankVersion ? { inactiveBankVersion: d.inactiveBankVersion } : {}),
        };
      });
      const abort = planAbort(devices, outcomes, input.haltStrata, img.previousVersion, !!img.previousUrl);
      const deadline = new Date(now + input.spec.outcomeTimeoutMinutes * minuteMs);
      const activate = abort.rollback
        .filter((r) => r.path === 'activate-previous-bank')
        .map((r) => r.deviceId);
      const redl = abort.rollback.filter((r) => r.path === 'download-previous').map((r) => r.deviceId);
      for (let i = 0; i < activate.length; i += BATCH) {
        await executor().submit({
          ref: { scope: input.rolloutId, step: 'rollback/activate' },
          devices: activate.slice(i, i + BATCH),
          owner: input.rolloutId,
          deadline,
          operation: { kind: 'activateImage', version: img.previousVersion },
        });
        heartbeat(i);
      }
      for (let i = 0; i < redl.length && img.previousUrl; i += BATCH) {
        await executor().submit({
          ref: { scope: input.rolloutId, step: 'rollback/download' },
          devices: redl.slice(i, i + BATCH),
          owner: input.rolloutId,
          deadline,
          operation: { kind: 'download', url: img.previousUrl, version: img.previousVersion, fileSize: 0 },
        });
        heartbeat(i);
      }
      return {
        rollback: abort.rollback.length,
        activate: activate.length,
        redownload: redl.length,
        fieldAction: abort.fieldAction.slice(0, 1000),
        untouched: abort.untouched.length,
        pending: abort.pending.length,
      };
    },

    /** How the rollback itself went, from the executor's task states. */
    async rollbackStatus(input: {
      rolloutId: string;
    }): Promise<{ attempted: number; done: number; failed: number }> {
      let attempted = 0;
      let done = 0;
      let failed = 0;
      for (const step of ['rollback/activate', 'rollback/download']) {
        for (const s of await executor().status({ scope: input.rolloutId, step })) {
          attempted++;
          if (s.state === 'done') done++;
          else if (s.state === 'failed' || s.state === 'expired') failed++;
        }
      }
      return { attempted, done, failed };
    },

    async auditRollout(input: {
      rolloutId: string;
      action: string;
      data: Record<string, unknown>;
      key: string;
    }) {
      await audit(input.action, input.rolloutId, input.data, `rollout/${input.rolloutId}/${input.key}`);
    },

    /** POST the event to every target subscribed to it; a failing target fails the activity (retried). */
    async notifyRollout(input: {
      rolloutId: string;
      event: 'halt' | 'pause' | 'complete' | 'resume' | 'wave-start';
      targets: RolloutSpec['notifications'];
      data: Record<string, unknown>;
      key: string;
    }): Promise<number> {
      // Default: refuse non-public addresses at send time too (DNS rebinding), unless configured.
      const f = deps.rolloutFetch ?? guardedFetch(webhookEgressFromEnv());
      let sent = 0;
      for (const t of input.targets) {
        if (!t.events.includes(input.event)) continue;
        let res: Response;
        try {
          res = await f(t.url, {
            method: 'POST',
            headers: {
              'content-type': 'application/json',
              'idempotency-key': `${input.rolloutId}/${input.key}`,
            },
            body: JSON.stringify({ rolloutId: input.rolloutId, event: input.event, ...input.data }),
            signal: AbortSignal.timeout(10_000),
          });
        } catch (e) {
          // A target refused by the egress policy (e.g. its name now resolves to a private address)
          // will never succeed: skip it rather than retry, so it cannot hold the rollout up.
          const refused = e instanceof EgressRefused ? e : (e as Error).cause;
          if (!(refused instanceof EgressRefused)) throw e;
          deps.logger.warn({ rolloutId: input.rolloutId, reason: refused.message }, 'webhook target refused');
          continue;
        }
        if (!res.ok) throw new Error(`webhook ${t.url} answered ${res.status}`);
        sent++;
      }
      return sent;
    },
  };
}
