import type pg from 'pg';
import {
  DeviceTaskStatus,
  type ExecuteRequest,
  type Operation,
  type StepRef,
  type SubmitOutcome,
  type TaskFault,
  type TaskResult,
  type TaskState,
  type TriggerPath,
  idempotencyKey,
  parameterKeyFor,
} from './executor.js';
import { acquireLeases, type Queryable } from './leases.js';

/**
 * The PostgreSQL task queue shared by every driver. Rules:
 * - a task is keyed by (scope, step, device, operation); inserting a key twice queues nothing;
 * - tasks of one device run in insertion (`id`) order, one at a time;
 * - state only moves forward; every UPDATE here is guarded by the states it may leave;
 * - a task whose session broke off is retried with exponential backoff until `max_attempts`;
 * - a task not finished by its deadline expires.
 */

export interface QueuedTask {
  id: number;
  key: string;
  ref: StepRef;
  deviceId: string;
  operation: Operation;
  commandKey: string;
  owner: string;
  state: TaskState;
  attempts: number;
  maxAttempts: number;
  deadline: Date;
}

interface TaskRow {
  id: string | number;
  key: string;
  scope: string;
  step: string;
  device_id: string;
  kind: string;
  operation: Operation;
  command_key: string;
  owner: string;
  state: TaskState;
  path: TriggerPath | null;
  trail: Array<{ path: TriggerPath; at: string; outcome: string }>;
  attempts: number;
  max_attempts: number;
  deadline: Date;
  result: TaskResult | null;
  fault: TaskFault | null;
  updated_at: Date;
}

const OPEN = `('queued', 'triggered', 'in_session')`;
/** session_id of a task waiting for an asynchronous report; it blocks later tasks until it ends. */
export const AWAITING = 'awaiting-report';

function toTask(r: TaskRow): QueuedTask {
  return {
    id: Number(r.id),
    key: r.key,
    ref: { scope: r.scope, step: r.step },
    deviceId: r.device_id,
    operation: r.operation,
    commandKey: r.command_key,
    owner: r.owner,
    state: r.state,
    attempts: r.attempts,
    maxAttempts: r.max_attempts,
    deadline: r.deadline,
  };
}

function toStatus(r: TaskRow): DeviceTaskStatus {
  return DeviceTaskStatus.parse({
    key: r.key,
    ref: { scope: r.scope, step: r.step },
    deviceId: r.device_id,
    kind: r.kind,
    state: r.state,
    path: r.path,
    trail: r.trail,
    attempts: r.attempts,
    result: r.result,
    fault: r.fault,
    deadline: r.deadline.toISOString(),
    updatedAt: r.updated_at.toISOString(),
  });
}

/** Checks a driver runs per device before queueing (inventory, schema, validation); null = accept. */
export type Precheck = (deviceIds: string[], op: Operation) => Promise<Map<string, TaskFault>>;

/**
 * Queue `request` for its devices: returns one outcome per device (queued, existing, lease_held,
 * rejected). Leases are taken in the same transaction as the inserts.
 */
export async function enqueue(
  pool: pg.Pool,
  request: ExecuteRequest,
  precheck?: Precheck,
): Promise<SubmitOutcome[]> {
  const { ref, operation, owner } = request;
  const devices = [...new Set(request.devices)];
  const keyOf = new Map(devices.map((d) => [d, idempotencyKey(ref, d, operation.kind)]));
  const out = new Map<string, SubmitOutcome>();

  const existing = await pool.query<{ key: string; device_id: string; state: TaskState }>(
    `SELECT key, device_id, state FROM executor_tasks WHERE key = ANY($1::text[])`,
    [[...keyOf.values()]],
  );
  for (const r of existing.rows)
    out.set(r.device_id, { deviceId: r.device_id, outcome: 'existing', key: r.key, state: r.state });

  let fresh = devices.filter((d) => !out.has(d));
  if (precheck && fresh.length > 0) {
    const refused = await precheck(fresh, operation);
    for (const [deviceId, fault] of refused) out.set(deviceId, { deviceId, outcome: 'rejected', fault });
    fresh = fresh.filter((d) => !out.has(d));
  }

  if (fresh.length > 0) {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      const leaseUntil = new Date(request.deadline.getTime() + request.leaseGraceSeconds * 1000);
      const grant = await acquireLeases(client, owner, fresh, leaseUntil);
      for (const h of grant.held)
        out.set(h.deviceId, {
          deviceId: h.deviceId,
          outcome: 'lease_held',
          holder: h.holder,
          expiresAt: h.expiresAt,
        });
      const granted = fresh.filter((d) => grant.granted.includes(d));
      if (granted.length > 0) {
        const keys = granted.map((d) => keyOf.get(d)!);
        const inserted = await client.query<{ key: string; device_id: string }>(
          `INSERT INTO executor_tasks (key, scope, step, device_id, kind, operation, command_key, owner, max_attempts, deadline)
           SELECT k, $2, $3, d, $4, $5::jsonb, ck, $6, $7, $8
           FROM unnest($1::text[], $9::text[], $10::text[]) AS t(k, d, ck)
           ON CONFLICT (key) DO NOTHING
           RETURNING key, device_id`,
          [
            keys,
            ref.scope,
            ref.step,
            operation.kind,
            JSON.stringify(operation),
            owner,
            request.maxAttempts,
            request.deadline,
            granted,
            keys.map(parameterKeyFor),
          ],
        );
        const got = new Set(inserted.rows.map((r) => r.device_id));
        for (const d of granted) {
          const key = keyOf.get(d)!;
          // Lost a race with a concurrent identical submit: report it as existing.
          out.set(
            d,
            got.has(d)
              ? { deviceId: d, outcome: 'queued', key }
              : { deviceId: d, outcome: 'existing', key, state: 'queued' },
          );
        }
      }
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      client.release();
    }
  }
  return devices.map((d) => out.get(d)!);
}

/**
 * Devices with open tasks that are due, i.e. that need a session (for the trigger loop). With
 * `protocol`, only devices the inventory says speak it: on a mixed fleet each driver's loop wakes its
 * own devices (a CWMP connection request to a USP device only rewrites its task's trigger path).
 */
export async function devicesNeedingSession(
  q: Queryable,
  limit = 1000,
  protocol?: string,
): Promise<Array<{ deviceId: string; state: TaskState }>> {
  const r = await q.query<{ device_id: string; state: TaskState }>(
    `SELECT DISTINCT ON (t.device_id) t.device_id, t.state FROM executor_tasks t
     WHERE t.state IN ('queued', 'triggered') AND t.not_before <= now() AND t.deadline > now()
       AND ($2::text IS NULL OR EXISTS (SELECT 1 FROM devices d WHERE d.id = t.device_id AND d.protocol = $2))
     ORDER BY t.device_id, t.id LIMIT $1`,
    [limit, protocol ?? null],
  );
  return r.rows.map((x) => ({ deviceId: x.device_id, state: x.state }));
}

/** Whether the device has work waiting (decides whether a session continues after Inform). */
export async function hasOpenTasks(q: Queryable, deviceId: string): Promise<boolean> {
  const r = await q.query(
    `SELECT 1 FROM executor_tasks WHERE device_id = $1 AND state IN ${OPEN} AND not_before <= now() AND deadline > now()
       AND session_id IS DISTINCT FROM '${AWAITING}' LIMIT 1`,
    [deviceId],
  );
  return (r.rowCount ?? 0) > 0;
}

/** Record that the device's open tasks were triggered by `path`, with how that attempt went. */
export async function markTriggered(
  q: Queryable,
  deviceId: string,
  path: TriggerPath,
  outcome: string,
): Promise<number> {
  const entry = JSON.stringify([{ path, at: new Date().toISOString(), outcome }]);
  const r = await q.query(
    `UPDATE executor_tasks SET
       state = CASE WHEN state = 'queued' THEN 'triggered' ELSE state END,
       path = $2, trail = trail || $3::jsonb, updated_at = now()
     WHERE device_id = $1 AND state IN ${OPEN} AND deadline > now()`,
    [deviceId, path, entry],
  );
  return r.rowCount ?? 0;
}

/**
 * Hand the device's next task to `sessionId` (state → in_session, attempts + 1). Returns null when
 * nothing is due, or when the head task belongs to another live session (order is kept: no skipping).
 * A task left in_session by a session that went quiet for `staleMs` is taken over.
 */
export async function claimNext(
  q: Queryable,
  deviceId: string,
  sessionId: string,
  staleMs = 60_000,
): Promise<QueuedTask | null> {
  const r = await q.query<TaskRow>(
    `WITH head AS (
       SELECT id, state, session_id, updated_at FROM executor_tasks
       WHERE device_id = $1 AND state IN ${OPEN} AND deadline > now()
       ORDER BY id LIMIT 1 FOR UPDATE
     )
     UPDATE executor_tasks t SET state = 'in_session', session_id = $2, attempts = t.attempts + 1,
       path = COALESCE(t.path, 'next_inform'), updated_at = now()
     FROM head
     WHERE t.id = head.id AND t.not_before <= now()
       AND (head.state <> 'in_session' OR head.session_id IS NULL OR head.session_id = $2
            OR (head.session_id <> '${AWAITING}' AND head.updated_at < now() - make_interval(secs => $3::double precision / 1000)))
     RETURNING t.*`,
    [deviceId, sessionId, staleMs],
  );
  const row = r.rows[0];
  return row ? toTask(row) : null;
}

/** Finish a task successfully. Returns false if it was no longer open (e.g. expired meanwhile). */
export async function completeTask(q: Queryable, id: number, result: TaskResult): Promise<boolean> {
  const r = await q.query(
    `UPDATE executor_tasks SET state = 'done', result = $2::jsonb, session_id = NULL, updated_at = now()
     WHERE id = $1 AND state IN ${OPEN}`,
    [id, JSON.stringify(result)],
  );
  return (r.rowCount ?? 0) > 0;
}

export async function failTask(q: Queryable, id: number, fault: TaskFault): Promise<boolean> {
  const r = await q.query(
    `UPDATE executor_tasks SET state = 'failed', fault = $2::jsonb, session_id = NULL, updated_at = now()
     WHERE id = $1 AND state IN ${OPEN}`,
    [id, JSON.stringify(fault)],
  );
  return (r.rowCount ?? 0) > 0;
}

/** Backoff before the n-th retry (1-based): 5 s, 10 s, 20 s, … capped at 10 minutes. */
export function backoffMs(attempt: number, baseMs = 5_000, capMs = 600_000): number {
  return Math.min(capMs, baseMs * 2 ** Math.max(0, attempt - 1));
}

/**
 * A session broke off while holding the task: retry later (state stays in_session — it never moves
 * back), or fail it when its attempts are used up.
 */
export async function retryTask(
  q: Queryable,
  id: number,
  why: string,
  baseMs = 5_000,
): Promise<'retry' | 'failed' | 'closed'> {
  const r = await q.query<{ attempts: number; max_attempts: number }>(
    `SELECT attempts, max_attempts FROM executor_tasks WHERE id = $1 AND state IN ${OPEN}`,
    [id],
  );
  const row = r.rows[0];
  if (!row) return 'closed';
  if (row.attempts >= row.max_attempts) {
    await failTask(q, id, {
      reason: 'retries_exhausted',
      message: `${row.attempts} sessions broke off: ${why}`,
    });
    return 'failed';
  }
  await q.query(
    `UPDATE executor_tasks SET session_id = NULL, not_before = now() + make_interval(secs => $2::double precision / 1000),
       updated_at = now() WHERE id = $1 AND state IN ${OPEN}`,
    [id, backoffMs(row.attempts, baseMs)],
  );
  return 'retry';
}

/** Release every task a session held (the session ended or timed out without answers). */
export async function abandonSession(
  q: Queryable,
  sessionId: string,
  why: string,
  baseMs = 5_000,
): Promise<number> {
  const r = await q.query<{ id: string }>(
    `SELECT id FROM executor_tasks WHERE session_id = $1 AND state = 'in_session'`,
    [sessionId],
  );
  for (const row of r.rows) await retryTask(q, Number(row.id), why, baseMs);
  return r.rows.length;
}

/** Expire open tasks past their deadline. */
export async function expireDue(q: Queryable): Promise<number> {
  const r = await q.query(
    `UPDATE executor_tasks SET state = 'expired', session_id = NULL, updated_at = now()
     WHERE state IN ${OPEN} AND deadline <= now()`,
  );
  return r.rowCount ?? 0;
}

/** Cancel tasks of a step that have not reached a session. */
export async function cancelTasks(q: Queryable, ref: StepRef, deviceIds?: string[]): Promise<number> {
  const fault = JSON.stringify({ reason: 'cancelled', message: 'cancelled by its owner' });
  const r = deviceIds
    ? await q.query(
        `UPDATE executor_tasks SET state = 'failed', fault = $3::jsonb, updated_at = now()
         WHERE scope = $1 AND step = $2 AND state IN ('queued', 'triggered') AND device_id = ANY($4::text[])`,
        [ref.scope, ref.step, fault, deviceIds],
      )
    : await q.query(
        `UPDATE executor_tasks SET state = 'failed', fault = $3::jsonb, updated_at = now()
         WHERE scope = $1 AND step = $2 AND state IN ('queued', 'triggered')`,
        [ref.scope, ref.step, fault],
      );
  return r.rowCount ?? 0;
}

export async function stepStatus(
  q: Queryable,
  ref: StepRef,
  deviceIds?: string[],
): Promise<DeviceTaskStatus[]> {
  const r = deviceIds
    ? await q.query<TaskRow>(
        `SELECT * FROM executor_tasks WHERE scope = $1 AND step = $2 AND device_id = ANY($3::text[]) ORDER BY device_id, id`,
        [ref.scope, ref.step, deviceIds],
      )
    : await q.query<TaskRow>(
        `SELECT * FROM executor_tasks WHERE scope = $1 AND step = $2 ORDER BY device_id, id`,
        [ref.scope, ref.step],
      );
  return r.rows.map(toStatus);
}

/** Every task of one device, oldest first (diagnostics, the CLI). */
export async function deviceTasks(q: Queryable, deviceId: string, limit = 100): Promise<DeviceTaskStatus[]> {
  const r = await q.query<TaskRow>(
    `SELECT * FROM executor_tasks WHERE device_id = $1 ORDER BY id DESC LIMIT $2`,
    [deviceId, limit],
  );
  return r.rows.reverse().map(toStatus);
}

/** Find the open task a device's asynchronous report belongs to (TransferComplete by CommandKey). */
export async function findByCommandKey(
  q: Queryable,
  deviceId: string,
  commandKey: string,
): Promise<QueuedTask | null> {
  const r = await q.query<TaskRow>(
    `SELECT * FROM executor_tasks WHERE device_id = $1 AND command_key = $2 ORDER BY id DESC LIMIT 1`,
    [deviceId, commandKey],
  );
  const row = r.rows[0];
  return row ? toTask(row) : null;
}

/** Park a task that waits for an asynchronous report (e.g. TransferComplete): no retry, keeps its deadline. */
export async function parkTask(q: Queryable, id: number, note: TaskResult): Promise<void> {
  await q.query(
    `UPDATE executor_tasks SET result = $2::jsonb, session_id = '${AWAITING}', updated_at = now()
     WHERE id = $1 AND state IN ${OPEN}`,
    [id, JSON.stringify(note)],
  );
}
