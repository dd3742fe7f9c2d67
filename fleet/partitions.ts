import { sql } from 'drizzle-orm';
import { fleetSettings } from '../db/schema/fleet.js';
import type { DbOrTx } from './db.js';

/**
 * Partition maintenance for `device_events` (range-partitioned by `at`, one partition per UTC day,
 * plus a default partition created by the migration). Run at start-up and periodically by any process
 * (the executor does); concurrent runs serialise on an advisory lock and are idempotent.
 */

const DAY_MS = 86_400_000;
const PARTITION_RE = /^device_events_p(\d{4})(\d{2})(\d{2})$/;
// Arbitrary but fixed: every process maintaining partitions takes the same lock.
const PARTITION_LOCK_KEY = 0x46_42_50_54; // 'FBPT'

function dayStart(d: Date): Date {
  return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()));
}

export function partitionName(day: Date): string {
  const iso = dayStart(day).toISOString();
  return `device_events_p${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}`;
}

export interface RetentionSettings {
  eventRetentionDays: number;
  eventPartitionsAhead: number;
}

export async function readRetention(db: DbOrTx): Promise<RetentionSettings> {
  const [row] = await db
    .select({
      eventRetentionDays: fleetSettings.eventRetentionDays,
      eventPartitionsAhead: fleetSettings.eventPartitionsAhead,
    })
    .from(fleetSettings);
  return row ?? { eventRetentionDays: 90, eventPartitionsAhead: 7 };
}

export async function setRetention(db: DbOrTx, settings: Partial<RetentionSettings>): Promise<void> {
  await db
    .insert(fleetSettings)
    .values({ id: true, ...settings, updatedAt: new Date() })
    .onConflictDoUpdate({ target: fleetSettings.id, set: { ...settings, updatedAt: new Date() } });
}

export interface MaintenanceResult {
  created: string[];
  dropped: string[];
  /** Rows moved out of the default partition into a newly created daily partition. */
  moved: number;
  /** Rows deleted from the default partition because they are older than the retention. */
  expiredDefaultRows: number;
}

async function existingPartitions(db: DbOrTx): Promise<string[]> {
  const res = await db.execute<{ name: string }>(sql`
    select c.relname as name from pg_inherits i
    join pg_class c on c.oid = i.inhrelid
    join pg_class p on p.oid = i.inhparent
    where p.relname = 'device_events'`);
  return res.rows.map((r) => r.name);
}

/**
 * Creates daily partitions from the oldest retained day up to `partitionsAhead` days after `now`, and
 * drops partitions whose whole day is older than the retention. Rows that landed in the default
 * partition for a day that gets its own partition are moved into it (PostgreSQL refuses to create the
 * partition otherwise).
 */
export async function maintainEventPartitions(
  db: DbOrTx,
  opts: { now?: Date; createFrom?: Date } = {},
): Promise<MaintenanceResult> {
  const now = opts.now ?? new Date();
  const { eventRetentionDays, eventPartitionsAhead } = await readRetention(db);
  const oldestKept = new Date(dayStart(now).getTime() - eventRetentionDays * DAY_MS);
  const from = dayStart(opts.createFrom && opts.createFrom > oldestKept ? opts.createFrom : now);
  const result: MaintenanceResult = { created: [], dropped: [], moved: 0, expiredDefaultRows: 0 };
  await db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(${PARTITION_LOCK_KEY})`);
    const existing = new Set(await existingPartitions(tx));
    for (let t = from.getTime(); t <= dayStart(now).getTime() + eventPartitionsAhead * DAY_MS; t += DAY_MS) {
      const day = new Date(t);
      const name = partitionName(day);
      if (existing.has(name)) continue;
      const lo = day.toISOString();
      const hi = new Date(t + DAY_MS).toISOString();
      // Identifiers and bounds come from dates formatted here, never from input.
      await tx.execute(
        sql.raw(`create table "${name}" (like "device_events" including defaults including constraints)`),
      );
      const moved = await tx.execute(
        sql.raw(
          `with m as (delete from "device_events_default" where "at" >= '${lo}' and "at" < '${hi}' returning *)
           insert into "${name}" select * from m`,
        ),
      );
      result.moved += moved.rowCount ?? 0;
      await tx.execute(
        sql.raw(
          `alter table "device_events" attach partition "${name}" for values from ('${lo}') to ('${hi}')`,
        ),
      );
      result.created.push(name);
    }
    for (const name of existing) {
      const m = PARTITION_RE.exec(name);
      if (!m) continue;
      const dayEnd = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])) + DAY_MS;
      if (dayEnd <= oldestKept.getTime()) {
        await tx.execute(sql.raw(`drop table "${name}"`));
        result.dropped.push(name);
      }
    }
    // Rows outside every daily partition are kept in the default partition until they expire too.
    const expired = await tx.execute(
      sql`delete from "device_events_default" where "at" < ${oldestKept.toISOString()}::timestamptz`,
    );
    result.expiredDefaultRows = expired.rowCount ?? 0;
  });
  return result;
}

/**
 * Runs {@link maintainEventPartitions} now and then every `everyMs` (default hourly), so tomorrow's
 * partition exists before midnight and expired days are dropped without an operator. Failures are
 * reported and retried at the next tick: until then new events still land in the default partition.
 */
export function startPartitionMaintenance(
  db: DbOrTx,
  opts: { everyMs?: number; onError: (err: unknown) => void; onDone?: (r: MaintenanceResult) => void },
): () => void {
  let running = false;
  const tick = () => {
    if (running) return;
    running = true;
    maintainEventPartitions(db)
      .then((r) => opts.onDone?.(r))
      .catch(opts.onError)
      .finally(() => {
        running = false;
      });
  };
  tick();
  const timer = setInterval(tick, opts.everyMs ?? 3_600_000);
  timer.unref();
  return () => clearInterval(timer);
}
