import { sql } from 'drizzle-orm';
import {
  bigserial,
  boolean,
  check,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
} from 'drizzle-orm/pg-core';

/**
 * Configuration profiles (issue 11). `profiles` holds the current version of each live profile;
 * `profile_versions` every version ever written (created, updated, deleted), so history survives a
 * delete. Ownership is not stored per (device, path): it is derived from the current profiles
 * (domain/profiles), which is what makes "removing a field releases it" true by construction.
 */
export const profiles = pgTable(
  'profiles',
  {
    /** The profile's name (lower-case, stable): what the API and CLI address. */
    id: text('id').primaryKey(),
    description: text('description'),
    /** Fleet selector DSL (fleet/selector.ts). */
    selector: jsonb('selector').$type<Record<string, unknown>>().notNull(),
    /** [{ path, value }] with instance wildcards allowed. */
    parameters: jsonb('parameters')
      .$type<Array<{ path: string; value: string | number | boolean }>>()
      .notNull(),
    priority: integer('priority').notNull().default(0),
    owner: text('owner').notNull(),
    validFrom: timestamp('valid_from', { withTimezone: true }),
    validUntil: timestamp('valid_until', { withTimezone: true }),
    /** 'profile', or 'override': a time-boxed profile created for a change request. */
    kind: text('kind').notNull().default('profile'),
    changeRequestId: text('change_request_id'),
    version: integer('version').notNull(),
    updatedBy: text('updated_by').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    check('profiles_kind_ck', sql`${t.kind} in ('profile', 'override')`),
    // An override is always time-boxed and always tied to its change request.
    check(
      'profiles_override_ck',
      sql`${t.kind} = 'profile' or (${t.validUntil} is not null and ${t.changeRequestId} is not null)`,
    ),
    check(
      'profiles_window_ck',
      sql`${t.validFrom} is null or ${t.validUntil} is null or ${t.validFrom} < ${t.validUntil}`,
    ),
    index('profiles_valid_until_idx').on(t.validUntil),
  ],
);

export const profileVersions = pgTable(
  'profile_versions',
  {
    profileId: text('profile_id').notNull(),
    version: integer('version').notNull(),
    action: text('action').notNull(),
    /** The full profile as written (null fields omitted); for 'deleted', the last version's spec. */
    spec: jsonb('spec').$type<Record<string, unknown>>().notNull(),
    actor: text('actor').notNull(),
    at: timestamp('at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.profileId, t.version] }),
    check('profile_versions_action_ck', sql`${t.action} in ('created', 'updated', 'deleted')`),
  ],
);

/**
 * A person's decision (possibly on a planner's suggestion) for one field fought over by exactly
 * `profiles` (sorted). A profile joining the fight later voids it (domain/profiles/precedence.ts).
 */
export const profileDecisions = pgTable(
  'profile_decisions',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    path: text('path').notNull(),
    profiles: text('profiles').array().notNull(),
    winner: text('winner').notNull(),
    decidedBy: text('decided_by').notNull(),
    /** Who proposed it: a person or the planner (with a rationale). */
    proposedBy: text('proposed_by').notNull(),
    proposerKind: text('proposer_kind').notNull(),
    rationale: text('rationale'),
    /** The approval request (`<workflowId>/<gate>`) that approved it. */
    approvalRequestId: text('approval_request_id'),
    at: timestamp('at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [uniqueIndex('profile_decisions_field_uq').on(t.path, t.profiles)],
);

/** Single-row settings: the order in which precedence rules are tried. */
export const profileSettings = pgTable(
  'profile_settings',
  {
    id: boolean('id').primaryKey().default(true),
    rules: text('rules').array().notNull().default(sql`'{priority,specificity,newest}'::text[]`),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [check('profile_settings_single_row_ck', sql`${t.id}`)],
);

/** One row per reconcile run (the workflow mirrors its progress here for `reconcile status`). */
export const profileReconcileRuns = pgTable(
  'profile_reconcile_runs',
  {
    id: text('id').primaryKey(),
    status: text('status').notNull(),
    trigger: text('trigger').notNull(),
    /** Bootstrap events up to this instant were handled (the next run starts after it). */
    eventCursor: timestamp('event_cursor', { withTimezone: true }),
    counts: jsonb('counts').$type<Record<string, number>>().notNull().default({}),
    startedAt: timestamp('started_at', { withTimezone: true }).notNull().defaultNow(),
    finishedAt: timestamp('finished_at', { withTimezone: true }),
  },
  (t) => [
    check('profile_reconcile_runs_status_ck', sql`${t.status} in ('running', 'completed', 'failed')`),
    index('profile_reconcile_runs_started_idx').on(t.startedAt),
  ],
);
