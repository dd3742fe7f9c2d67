import { sql } from 'drizzle-orm';
import { check, index, integer, jsonb, pgTable, primaryKey, text, timestamp } from 'drizzle-orm/pg-core';

/**
 * Change requests: a proposal (from the planner or a person) with its validation and policy result,
 * bound to a plan hash, carried out by the `changeRequest` workflow. The workflow is the authority on
 * progress; `status` and `progress` here are its read model, written by activities.
 */
export const changeRequests = pgTable(
  'change_requests',
  {
    id: text('id').primaryKey(),
    /** planner | manual */
    source: text('source').notNull(),
    intent: text('intent').notNull(),
    /** Who asked (a person); the planner proposes as a service identity on their behalf. */
    requestedBy: text('requested_by').notNull(),
    requestedByName: text('requested_by_name').notNull(),
    proposerId: text('proposer_id').notNull(),
    /** The typed proposal (planner/proposal.ts `Proposal`), as checked. */
    proposal: jsonb('proposal').notNull(),
    /** Resolved devices in id order: the device set the plan hash covers. */
    deviceIds: jsonb('device_ids').$type<string[]>().notNull(),
    /** Validation errors and the policy decision (planner/check.ts `CheckResult`). */
    check: jsonb('check').notNull(),
    /** Staging and verification settings (canary size, batch size, verify window, tolerance). */
    execution: jsonb('execution').notNull(),
    /** Planner rounds (tool calls, errors fed back), when the planner proposed. */
    plannerRounds: jsonb('planner_rounds'),
    planHash: text('plan_hash').notNull(),
    riskClass: text('risk_class'),
    requiredApprovals: integer('required_approvals').notNull(),
    status: text('status').notNull(),
    /** Stage summaries and per-device counts, mirrored from the workflow. */
    progress: jsonb('progress'),
    reasons: jsonb('reasons').$type<string[]>().notNull().default(sql`'[]'::jsonb`),
    version: integer('version').notNull().default(0),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    index('change_requests_status_idx').on(t.status, t.createdAt),
    check(
      'change_requests_status_ck',
      sql`${t.status} in ('denied', 'planner_failed', 'awaiting_approval', 'rejected', 'expired', 'applying', 'compensating', 'completed', 'compensated', 'cancelled', 'failed')`,
    ),
  ],
);

/**
 * Per device: the values read just before the first write (the snapshot compensation restores), what
 * was applied, and how verification and compensation ended. Large device sets stay out of history.
 */
export const changeRequestDevices = pgTable(
  'change_request_devices',
  {
    changeId: text('change_id')
      .notNull()
      .references(() => changeRequests.id, { onDelete: 'cascade' }),
    deviceId: text('device_id').notNull(),
    protocol: text('protocol').notNull(),
    /** 0 = canary, then 1, 2, … */
    batch: integer('batch').notNull(),
    snapshot: jsonb('snapshot').$type<Record<string, string>>(),
    /** Instances created by addObject (compensation deletes them). */
    added: jsonb('added').$type<string[]>(),
    /** pending | applied | partial | failed | skipped */
    apply: text('apply').notNull().default('pending'),
    /** pending | verified | failed */
    verify: text('verify').notNull().default('pending'),
    /** none | restored | failed | pending */
    compensation: text('compensation').notNull().default('none'),
    detail: jsonb('detail').$type<string[]>().notNull().default(sql`'[]'::jsonb`),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.changeId, t.deviceId] }),
    index('change_request_devices_batch_idx').on(t.changeId, t.batch),
  ],
);
