import { sql } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { executorEndpoints } from '../db/schema/executor.js';
import {
  appendEvents,
  type DeviceEvent,
  type DeviceUpsert,
  type ParameterValue,
  upsertDevices,
  updateLastValues,
} from '../fleet/index.js';

/** What a session hands to storage before it acknowledges the device. */
export interface WriteJob {
  events?: DeviceEvent[];
  devices?: DeviceUpsert[];
  values?: ParameterValue[];
  endpoints?: EndpointUpdate[];
}

export interface EndpointUpdate {
  deviceId: string;
  protocol: 'cwmp' | 'usp';
  connectionRequestUrl?: string;
  udpConnectionRequestAddress?: string;
  cwmpVersion?: string;
  parameterKey?: string;
  periodicInformInterval?: number;
  lastInformAt?: Date;
}

/**
 * Groups writes from many concurrent sessions into one transaction (a storm of informs becomes a few
 * multi-row INSERTs per flush). Each caller's promise settles only after its rows are committed, so
 * nothing is acknowledged before it is durable; a failed flush rejects every job in it.
 */
export class WriteBatcher {
  private pending: Array<{ job: WriteJob; resolve: () => void; reject: (e: unknown) => void }> = [];
  private timer: NodeJS.Timeout | null = null;
  private flushing = 0;
  /** Totals for health and benchmarks. */
  readonly stats = { flushes: 0, jobs: 0, events: 0, failures: 0 };

  constructor(
    private readonly db: Db,
    private readonly opts: { maxDelayMs?: number; maxJobs?: number; maxConcurrentFlushes?: number } = {},
  ) {}

  write(job: WriteJob): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pending.push({ job, resolve, reject });
      if (this.pending.length >= (this.opts.maxJobs ?? 500)) this.kick();
      else if (!this.timer) this.timer = setTimeout(() => this.kick(), this.opts.maxDelayMs ?? 5);
    });
  }

  private kick(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.pending.length === 0) return;
    if (this.flushing >= (this.opts.maxConcurrentFlushes ?? 4)) {
      // Retry when a flush finishes; meanwhile jobs keep accumulating into a bigger batch.
      return;
    }
    const batch = this.pending;
    this.pending = [];
    this.flushing += 1;
    this.flush(batch.map((b) => b.job))
      .then(
        () => {
          for (const b of batch) b.resolve();
        },
        (err) => {
          this.stats.failures += 1;
          for (const b of batch) b.reject(err);
        },
      )
      .finally(() => {
        this.flushing -= 1;
        if (this.pending.length > 0) this.kick();
      });
  }

  private async flush(jobs: WriteJob[]): Promise<void> {
    const events = jobs.flatMap((j) => j.events ?? []);
    const devices = jobs.flatMap((j) => j.devices ?? []);
    const values = jobs.flatMap((j) => j.values ?? []);
    const endpoints = new Map<string, EndpointUpdate>();
    for (const e of jobs.flatMap((j) => j.endpoints ?? []))
      endpoints.set(e.deviceId, { ...endpoints.get(e.deviceId), ...e });
    await this.db.transaction(async (tx) => {
      // Devices first: parameter rows reference them.
      if (devices.length > 0) await upsertDevices(tx, devices);
      if (events.length > 0) await appendEvents(tx, events);
      if (values.length > 0) await updateLastValues(tx, values);
      if (endpoints.size > 0) {
        const now = new Date();
        await tx
          .insert(executorEndpoints)
          .values(
            [...endpoints.values()].map((e) => ({
              deviceId: e.deviceId,
              protocol: e.protocol,
              connectionRequestUrl: e.connectionRequestUrl ?? null,
              udpConnectionRequestAddress: e.udpConnectionRequestAddress ?? null,
              cwmpVersion: e.cwmpVersion ?? null,
              parameterKey: e.parameterKey ?? null,
              periodicInformInterval: e.periodicInformInterval ?? null,
              lastInformAt: e.lastInformAt ?? null,
              updatedAt: now,
            })),
          )
          .onConflictDoUpdate({
            target: executorEndpoints.deviceId,
            set: {
              connectionRequestUrl: sql.raw(
                `coalesce(excluded."connection_request_url", "executor_endpoints"."connection_request_url")`,
              ),
              udpConnectionRequestAddress: sql.raw(
                `coalesce(excluded."udp_connection_request_address", "executor_endpoints"."udp_connection_request_address")`,
              ),
              cwmpVersion: sql.raw(`coalesce(excluded."cwmp_version", "executor_endpoints"."cwmp_version")`),
              parameterKey: sql.raw(
                `coalesce(excluded."parameter_key", "executor_endpoints"."parameter_key")`,
              ),
              periodicInformInterval: sql.raw(
                `coalesce(excluded."periodic_inform_interval", "executor_endpoints"."periodic_inform_interval")`,
              ),
              lastInformAt: sql.raw(
                `greatest(excluded."last_inform_at", "executor_endpoints"."last_inform_at")`,
              ),
              updatedAt: sql.raw(`excluded."updated_at"`),
            },
          });
      }
    });
    this.stats.flushes += 1;
    this.stats.jobs += jobs.length;
    this.stats.events += events.length;
  }

  /** Wait until everything queued so far is written (shutdown). */
  async drain(): Promise<void> {
    while (this.pending.length > 0 || this.flushing > 0) {
      this.kick();
      await new Promise((r) => setTimeout(r, 5));
    }
  }
}
