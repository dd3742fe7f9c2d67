import { sql } from 'drizzle-orm';
import { boolean, check, index, integer, pgTable, text, timestamp, uniqueIndex } from 'drizzle-orm/pg-core';

/**
 * What waits for a decision (the inbox), mirrored from the owning workflow by an activity. The
 * workflow is the authority; these rows are a read model, written with a monotonic `version` so a
 * late, older write never overwrites a newer one.
 */
export const approvalRequests = pgTable(
  'approval_requests',
  {
    /** `<workflowId>/<gate>` */
    id: text('id').primaryKey(),
    workflowId: text('workflow_id').notNull(),
    gate: text('gate').notNull(),
    subjectKind: text('subject_kind').notNull(),
    subjectId: text('subject_id').notNull(),
    title: text('title').notNull(),
    proposerId: text('proposer_id').notNull(),
    proposerName: text('proposer_name').notNull(),
    planHash: text('plan_hash').notNull(),
    planRevision: integer('plan_revision').notNull(),
    requiredApprovals: integer('required_approvals').notNull(),
    approvals: integer('approvals').notNull(),
    status: text('status').notNull(),
    expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
    version: integer('version').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex('approval_requests_workflow_gate_uq').on(t.workflowId, t.gate),
    index('approval_requests_status_idx').on(t.status, t.expiresAt),
    check('approval_requests_status_ck', sql`${t.status} in ('pending', 'approved', 'rejected', 'expired')`),
  ],
);

/** Every accepted vote; votes on an older plan are kept, marked void. */
export const approvalVotes = pgTable(
  'approval_votes',
  {
    approvalId: text('approval_id').primaryKey(),
    requestId: text('request_id')
      .notNull()
      .references(() => approvalRequests.id, { onDelete: 'cascade' }),
    approverId: text('approver_id').notNull(),
    approverName: text('approver_name').notNull(),
    decision: text('decision').notNull(),
    planHash: text('plan_hash').notNull(),
    comment: text('comment'),
    voided: boolean('voided').notNull().default(false),
    at: timestamp('at', { withTimezone: true }).notNull(),
  },
  (t) => [
    index('approval_votes_request_idx').on(t.requestId),
    check('approval_votes_decision_ck', sql`${t.decision} in ('approve', 'reject')`),
  ],
);
