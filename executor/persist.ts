import type { z } from 'zod';
import type pg from 'pg';
import type { Db } from '../db/client.js';
import {
  DeviceEvent,
  DeviceUpsert,
  type DeviceEvent as DeviceEventInput,
  type DeviceUpsert as DeviceUpsertInput,
  ParameterValue,
  type ParameterValue as ParameterValueInput,
  versionKey,
} from '../fleet/index.js';
import { typedColumns } from '../fleet/parameters.js';

/** What a session hands to storage before it acknowledges the device. */
export interface WriteJob {
  events?: DeviceEventInput[];
  devices?: DeviceUpsertInput[];
  values?: ParameterValueInput[];
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

/** A job checked and flattened into rows when it is handed in (so a bad job fails alone). */
interface Rows {
  devices: Array<DeviceRow & { softwareVersionKey: string | null | undefined }>;
  events: Array<{ deviceId: string; at: Date; kind: string; payload: unknown }>;
  values: Array<{
    deviceId: string;
    path: string;
    type: string;
    value: string;
    valueNum: string | null;
    valueBool: boolean | null;
    valueTime: Date | null;
    versionKey: string | null;
    at: Date | null;
  }>;
  endpoints: EndpointUpdate[];
}

type DeviceRow = z.output<typeof DeviceUpsert>;

function check<T>(schema: z.ZodType, v: unknown, what: string, i: number): T {
  const r = schema.safeParse(v);
  if (r.success) return r.data as T;
  const issue = r.error.issues[0];
  throw new Error(`${what} ${i}: ${issue?.path.join('.') || what}: ${issue?.message ?? 'invalid'}`);
}

/** Validate a job (fleet's zod schemas) and turn it into rows; throws a specific error for bad input. */
function toRows(job: WriteJob): Rows {
  const devices = (job.devices ?? []).map((d, i) => {
    const v = check<DeviceRow>(DeviceUpsert, d, 'device', i);
    return {
      ...v,
      softwareVersionKey: v.softwareVersion === undefined ? undefined : versionKey(v.softwareVersion),
    };
  });
  const events = (job.events ?? []).map((e, i) => {
    const v = check<{ deviceId: string; at: Date; kind: string; payload: unknown }>(
      DeviceEvent,
      e,
      'device event',
      i,
    );
    return { deviceId: v.deviceId, at: v.at, kind: v.kind, payload: v.payload ?? {} };
  });
  const values = (job.values ?? []).map((p, i) => {
    const v = check<{ deviceId: string; path: string; type: string; value: string; at?: Date }>(
      ParameterValue,
      p,
      'parameter value',
      i,
    );
    return {
      deviceId: v.deviceId,
      path: v.path,
      type: v.type,
      value: v.value,
      ...typedColumns(v.type as never, v.value),
      at: v.at ?? null,
    };
  });
  return { devices, events, values, endpoints: job.endpoints ?? [] };
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
/** `excluded.col` when the row carried a value, else the stored one. */
const keep = (col: string) => `${col} = coalesce(excluded.${col}, devices.${col})`;

/**
 * Groups writes from many concurrent sessions into one statement: a storm of informs becomes one
 * multi-row insert per table (devices, events, last values, endpoints) per flush, each reading its
 * rows from one JSON parameter, so the cost per row is an object literal rather than a query builder.
 * Each caller's promise settles only after its rows are committed, so nothing is acknowledged before
 * it is durable; a failed flush rejects every job in it (their devices retry, nothing was acked).
 * A job with bad input is refused alone when it is handed in, before it can spoil a batch.
 * Rows are sorted by key so concurrent flushes lock in the same order (no deadlocks between them).
 */
export class WriteBatcher {
  private pending: Array<{ rows: Rows; resolve: () => void; reject: (e: unknown) => void }> = [];
  private timer: NodeJS.Timeout | null = null;
  private flushing = 0;
  private readonly pool: pg.Pool;
  /** Totals for health and benchmarks. */
  readonly stats = { flushes: 0, jobs: 0, events: 0, failures: 0 };

  constructor(
    db: Db,
    private readonly opts: { maxDelayMs?: number; maxJobs?: number; maxConcurrentFlushes?: number } = {},
  ) {
    // The node-postgres pool under drizzle: the flush speaks plain SQL (no query builder per row).
    this.pool = (db as unknown as { $client: pg.Pool }).$client;
  }

  write(job: WriteJob): Promise<void> {
    let rows: Rows;
    try {
      rows = toRows(job);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise((resolve, reject) => {
      this.pending.push({ rows, resolve, reject });
      if (this.pending.length >= (this.opts.maxJobs ?? 500)) this.kick();
      // While a flush is in flight, its end starts the next one: no timer.
      else if (!this.timer && this.flushing === 0)
        this.timer = setTimeout(() => this.kick(), this.opts.maxDelayMs ?? 5);
    });
  }

  /**
   * Start a flush of what is pending. One flush is in flight at a time unless a full batch waits
   * (then up to maxConcurrentFlushes): jobs handed in meanwhile wait for it and go together in the
   * next one (group commit), so PostgreSQL's fixed cost per transaction is shared by as many jobs as
   * arrive while it works, rather than paid every maxDelayMs by a few.
   */
  private kick(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.pending.length === 0) return;
    const max = this.opts.maxJobs ?? 500;
    if (this.flushing > 0 && this.pending.length < max) return;
    if (this.flushing >= (this.opts.maxConcurrentFlushes ?? 4)) return;
    const batch = this.pending.length > max ? this.pending.splice(0, max) : this.pending;
    if (batch === this.pending) this.pending = [];
    this.flushing += 1;
    this.flush(batch.map((b) => b.rows))
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

  private async flush(jobs: Rows[]): Promise<void> {
    // Within a flush the last entry for a key wins, as in the fleet repository functions.
    const devices = new Map<string, Rows['devices'][number]>();
    const values = new Map<string, Rows['values'][number]>();
    const endpoints = new Map<string, EndpointUpdate>();
    const events: Rows['events'] = [];
    for (const j of jobs) {
      for (const d of j.devices) devices.set(d.id, d);
      for (const v of j.values) values.set(`${v.deviceId}\n${v.path}`, v);
      for (const e of j.endpoints) endpoints.set(e.deviceId, { ...endpoints.get(e.deviceId), ...e });
      for (const e of j.events) events.push(e);
    }
    const parts: Part[] = [];
    if (devices.size > 0) parts.push(...deviceParts([...devices.values()].sort((a, b) => cmp(a.id, b.id))));
    if (events.length > 0) parts.push(eventPart(events));
    if (values.size > 0)
      parts.push(
        valuePart([...values.values()].sort((a, b) => cmp(a.deviceId, b.deviceId) || cmp(a.path, b.path))),
      );
    if (endpoints.size > 0)
      parts.push(endpointPart([...endpoints.values()].sort((a, b) => cmp(a.deviceId, b.deviceId))));
    // One statement, so one round trip and atomic without BEGIN/COMMIT: each flush used to make six,
    // and in a storm every one of them waited for the busy event loop. Foreign keys are checked at
    // the statement's end, when the devices it inserts are there. The tail names $1's type, which a
    // flush of events alone would otherwise leave undetermined.
    await this.pool.query({
      name: `persist-${parts.map((x) => x.key).join('+')}`,
      text: `WITH ${parts.map((x, i) => `w${i} AS (${x.sql(`$${i + 2}::json`)})`).join(',\n')} SELECT $1::timestamptz`,
      values: [new Date(), ...parts.map((x) => x.rows)],
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

/**
 * Rows travel to PostgreSQL as one JSON text per statement, read by `json_to_recordset`: the text is
 * one native JSON.stringify, where node-postgres would build and escape an array literal per column
 * and format every Date by hand (together a sixth of what the ACS allocated in a storm). An absent
 * key reads as NULL.
 */
const DEVICE_COLS: Array<[col: string, type: string, get: (d: Rows['devices'][number]) => unknown]> = [
  ['id', 'text', (d) => d.id],
  ['oui', 'text', (d) => d.oui],
  ['serial_number', 'text', (d) => d.serialNumber],
  ['protocol', 'text', (d) => d.protocol],
  ['manufacturer', 'text', (d) => d.manufacturer],
  ['product_class', 'text', (d) => d.productClass],
  ['model_name', 'text', (d) => d.modelName],
  ['hardware_version', 'text', (d) => d.hardwareVersion],
  ['software_version', 'text', (d) => d.softwareVersion],
  ['software_version_key', 'text', (d) => d.softwareVersionKey],
  ['last_contact_at', 'timestamptz', (d) => d.lastContactAt],
  ['periodic_inform_interval_s', 'int4', (d) => d.periodicInformIntervalS],
  ['connection_request_url', 'text', (d) => d.connectionRequestUrl],
];

/**
 * One table's rows in a flush: a data-modifying statement reading them from its JSON parameter
 * (`rows`), and `key` naming the statement's shape. `$1` is the flush's time.
 */
interface Part {
  key: string;
  sql: (json: string) => string;
  rows: string;
}

/**
 * Same semantics as fleet's upsertDevices: absent fields keep their stored value, lastContactAt only
 * moves forward; columns with a default (data model root, tags) are only written by rows that carry
 * them, so rows are grouped by which of those they carry.
 */
function deviceParts(rows: Rows['devices']): Part[] {
  const groups = new Map<string, Rows['devices']>();
  for (const r of rows) {
    const k = `${r.tags !== undefined}/${r.dataModelRoot !== undefined}`;
    const g = groups.get(k);
    if (g) g.push(r);
    else groups.set(k, [r]);
  }
  return [...groups].map(([k, group]) => {
    const [hasTags, hasRoot] = k.split('/').map((x) => x === 'true');
    const cols = [...DEVICE_COLS];
    if (hasRoot) cols.push(['data_model_root', 'text', (d) => d.dataModelRoot]);
    if (hasTags) cols.push(['tags', 'text[]', (d) => d.tags]);
    const records = group.map((d) => {
      const o: Record<string, unknown> = {};
      for (const [c, , get] of cols) o[c] = get(d);
      return o;
    });
    const set = [
      'oui = excluded.oui',
      'serial_number = excluded.serial_number',
      'protocol = excluded.protocol',
      ...['manufacturer', 'product_class', 'model_name', 'hardware_version', 'software_version'].map(keep),
      'software_version_key = CASE WHEN excluded.software_version IS NULL THEN devices.software_version_key ELSE excluded.software_version_key END',
      'last_contact_at = greatest(excluded.last_contact_at, devices.last_contact_at)',
      keep('periodic_inform_interval_s'),
      keep('connection_request_url'),
      'updated_at = excluded.updated_at',
      ...(hasRoot ? ['data_model_root = excluded.data_model_root'] : []),
      ...(hasTags ? ['tags = excluded.tags'] : []),
    ];
    const names = cols.map(([c]) => c).join(', ');
    return {
      key: `devices-${k}`,
      sql: (json) => `INSERT INTO devices (${names}, updated_at)
       SELECT ${names}, $1::timestamptz
       FROM json_to_recordset(${json}) AS u(${cols.map(([c, t]) => `${c} ${t}`).join(', ')})
       ON CONFLICT (id) DO UPDATE SET ${set.join(', ')}`,
      rows: JSON.stringify(records),
    };
  });
}

function eventPart(rows: Rows['events']): Part {
  return {
    key: 'events',
    sql: (json) => `INSERT INTO device_events (device_id, at, kind, payload)
     SELECT d, a, k, p FROM json_to_recordset(${json}) AS u(d text, a timestamptz, k text, p jsonb)`,
    rows: JSON.stringify(rows.map((r) => ({ d: r.deviceId, a: r.at, k: r.kind, p: r.payload }))),
  };
}

/** Same semantics as fleet's updateLastValues: an older report never overwrites a newer value. */
function valuePart(rows: Rows['values']): Part {
  return {
    key: 'values',
    sql: (
      json,
    ) => `INSERT INTO device_parameters (device_id, path, type, value, value_num, value_bool, value_time, version_key, updated_at)
     SELECT d, p, t, v, n, b, tm, vk, coalesce(at, $1::timestamptz)
     FROM json_to_recordset(${json})
       AS u(d text, p text, t text, v text, n numeric, b bool, tm timestamptz, vk text, at timestamptz)
     ON CONFLICT (device_id, path) DO UPDATE SET type = excluded.type, value = excluded.value,
       value_num = excluded.value_num, value_bool = excluded.value_bool, value_time = excluded.value_time,
       version_key = excluded.version_key, updated_at = excluded.updated_at
     WHERE excluded.updated_at >= device_parameters.updated_at`,
    rows: JSON.stringify(
      rows.map((r) => ({
        d: r.deviceId,
        p: r.path,
        t: r.type,
        v: r.value,
        n: r.valueNum,
        b: r.valueBool,
        tm: r.valueTime,
        vk: r.versionKey,
        at: r.at,
      })),
    ),
  };
}

function endpointPart(rows: EndpointUpdate[]): Part {
  const c = (col: string) => `${col} = coalesce(excluded.${col}, executor_endpoints.${col})`;
  const cols = `device_id, protocol, connection_request_url, udp_connection_request_address, cwmp_version,
       parameter_key, periodic_inform_interval, last_inform_at`;
  return {
    key: 'endpoints',
    sql: (json) => `INSERT INTO executor_endpoints (${cols}, updated_at)
     SELECT ${cols}, $1::timestamptz FROM json_to_recordset(${json}) AS u(device_id text, protocol text,
       connection_request_url text, udp_connection_request_address text, cwmp_version text, parameter_key text,
       periodic_inform_interval int4, last_inform_at timestamptz)
     ON CONFLICT (device_id) DO UPDATE SET ${[
       c('connection_request_url'),
       c('udp_connection_request_address'),
       c('cwmp_version'),
       c('parameter_key'),
       c('periodic_inform_interval'),
     ].join(', ')},
       last_inform_at = greatest(excluded.last_inform_at, executor_endpoints.last_inform_at),
       updated_at = excluded.updated_at`,
    rows: JSON.stringify(
      rows.map((r) => ({
        device_id: r.deviceId,
        protocol: r.protocol,
        connection_request_url: r.connectionRequestUrl,
        udp_connection_request_address: r.udpConnectionRequestAddress,
        cwmp_version: r.cwmpVersion,
        parameter_key: r.parameterKey,
        periodic_inform_interval: r.periodicInformInterval,
        last_inform_at: r.lastInformAt,
      })),
    ),
  };
}
