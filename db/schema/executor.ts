import { sql } from 'drizzle-orm';
import { bigserial, check, index, integer, jsonb, pgTable, text, timestamp } from 'drizzle-orm/pg-core';

/**
 * Executor task queue: one row per (scope, step, device, operation) — the idempotency key — ordered
 * per device by `id`, drained in the device's next session. Shared by the CWMP and USP drivers.
 * `state` only moves forward (queued → triggered → in_session → done | failed | expired).
 */
export const executorTasks = pgTable(
  'executor_tasks',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    key: text('key').notNull().unique(),
    scope: text('scope').notNull(),
    step: text('step').notNull(),
    deviceId: text('device_id').notNull(),
    kind: text('kind').notNull(),
    operation: jsonb('operation').$type<Record<string, unknown>>().notNull(),
    /** Sent with writes as ParameterKey / CommandKey; derived from `key`. */
    commandKey: text('command_key').notNull(),
    owner: text('owner').notNull(),
    state: text('state').notNull().default('queued'),
    path: text('path'),
    trail: jsonb('trail').$type<Array<{ path: string; at: string; outcome: string }>>().notNull().default([]),
    attempts: integer('attempts').notNull().default(0),
    maxAttempts: integer('max_attempts').notNull().default(5),
    /** Not handed to a session before this instant (retry backoff). */
    notBefore: timestamp('not_before', { withTimezone: true }).notNull().defaultNow(),
    deadline: timestamp('deadline', { withTimezone: true }).notNull(),
    /** Session currently holding the task (driver-specific id); a broken session leaves it set. */
    sessionId: text('session_id'),
    result: jsonb('result').$type<Record<string, unknown>>(),
    fault: jsonb('fault').$type<Record<string, unknown>>(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    index('executor_tasks_device_idx').on(t.deviceId, t.id),
    index('executor_tasks_scope_idx').on(t.scope, t.step),
    index('executor_tasks_open_idx')
      .on(t.deadline)
      .where(sql`${t.state} in ('queued', 'triggered', 'in_session')`),
    check(
      'executor_tasks_state_ck',
      sql`${t.state} in ('queued', 'triggered', 'in_session', 'done', 'failed', 'expired')`,
    ),
    check(
      'executor_tasks_path_ck',
      sql`${t.path} is null or ${t.path} in ('connection_request', 'udp', 'next_inform', 'usp_message')`,
    ),
  ],
);

/** One active operation per device: the lease is held by the owning workflow id until released or expired. */
export const executorLeases = pgTable(
  'executor_leases',
  {
    deviceId: text('device_id').primaryKey(),
    owner: text('owner').notNull(),
    acquiredAt: timestamp('acquired_at', { withTimezone: true }).notNull().defaultNow(),
    expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
  },
  (t) => [index('executor_leases_owner_idx').on(t.owner)],
);

/**
 * What the executor needs to reach a device and to authenticate it: connection-request address,
 * UDP address, credentials (AES-256-GCM encrypted at rest, `v1:<iv>:<tag>:<ciphertext>` base64url),
 * and the last ParameterKey the device reported. Inventory facts live in the fleet tables.
 */
export const executorEndpoints = pgTable(
  'executor_endpoints',
  {
    deviceId: text('device_id').primaryKey(),
    protocol: text('protocol').notNull().default('cwmp'),
    /** CPE → ACS credentials (digest / basic over TLS). */
    username: text('username'),
    passwordEnc: text('password_enc'),
    /** ACS → CPE connection-request credentials. */
    crUsername: text('cr_username'),
    crPasswordEnc: text('cr_password_enc'),
    connectionRequestUrl: text('connection_request_url'),
    udpConnectionRequestAddress: text('udp_connection_request_address'),
    /** CWMP version the device negotiated, e.g. `1-4`. */
    cwmpVersion: text('cwmp_version'),
    parameterKey: text('parameter_key'),
    periodicInformInterval: integer('periodic_inform_interval'),
    lastInformAt: timestamp('last_inform_at', { withTimezone: true }),
    lastConnectionRequestAt: timestamp('last_connection_request_at', { withTimezone: true }),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  // CPEs authenticate with a username; the ACS finds the device (and its password) from it.
  (t) => [index('executor_endpoints_username_idx').on(t.username)],
);
