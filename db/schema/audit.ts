import { sql } from 'drizzle-orm';
import { bigint, check, index, jsonb, pgTable, text, timestamp, uniqueIndex } from 'drizzle-orm/pg-core';

/**
 * Append-only, hash-chained audit log. `seq` is assigned by the (serialised) writer without gaps;
 * `hash` = sha-256 of the canonical JSON of the entry including `prev_hash`. The application role
 * has no UPDATE/DELETE/TRUNCATE on it (migration `audit_role`); `fleetbrain audit verify` recomputes
 * the chain.
 */
export const auditLog = pgTable(
  'audit_log',
  {
    seq: bigint('seq', { mode: 'number' }).primaryKey(),
    at: timestamp('at', { withTimezone: true }).notNull(),
    actorId: text('actor_id').notNull(),
    actorKind: text('actor_kind').notNull(),
    /** Dotted verb, e.g. `approval.granted`, `rollout.halted`, `policy.decided`. */
    action: text('action').notNull(),
    subjectKind: text('subject_kind').notNull(),
    subjectId: text('subject_id').notNull(),
    data: jsonb('data').$type<Record<string, unknown>>().notNull(),
    /** Set by writers that may retry (activities): a second append with the same key is a no-op. */
    idempotencyKey: text('idempotency_key'),
    prevHash: text('prev_hash').notNull(),
    hash: text('hash').notNull(),
  },
  (t) => [
    uniqueIndex('audit_log_hash_uq').on(t.hash),
    uniqueIndex('audit_log_prev_hash_uq').on(t.prevHash),
    uniqueIndex('audit_log_idempotency_key_uq').on(t.idempotencyKey),
    index('audit_log_subject_idx').on(t.subjectKind, t.subjectId, t.seq),
    check('audit_log_seq_ck', sql`${t.seq} > 0`),
    check('audit_log_actor_kind_ck', sql`${t.actorKind} in ('user', 'service', 'system')`),
  ],
);
