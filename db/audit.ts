import { createHash } from 'node:crypto';
import { and, asc, desc, eq, gt, sql } from 'drizzle-orm';
import { z } from 'zod';
import {
  AUDIT_GENESIS_HASH,
  type AuditHashInput,
  auditEntryHash,
  type ChainBreak,
  checkLink,
} from '../domain/approval/audit-chain.js';
import type { Db } from './client.js';
import { auditLog } from './schema/audit.js';

/**
 * The audit log API other parts call: `appendAudit(db, entry)` (or `appendAuditBatch`) inside or
 * outside a transaction, `verifyAudit(db)` and `auditHead(db)`. Writers serialise on a
 * transaction-scoped advisory lock so the chain is a line, never a tree.
 */

// Fixed key shared by every writer: 'FBAU'.
const AUDIT_LOCK_KEY = 0x46_42_41_55;

export const auditEntrySchema = z
  .object({
    actor: z.object({ id: z.string().min(1), kind: z.enum(['user', 'service', 'system']) }),
    /** Dotted verb: proposal.created, policy.decided, approval.granted, rollout.halted, … */
    action: z
      .string()
      .regex(/^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$/, 'a dotted verb such as approval.granted'),
    subject: z.object({ kind: z.string().min(1), id: z.string().min(1) }),
    data: z.record(z.string(), z.unknown()).default({}),
    /** For writers that may retry (activities): the same key appends once. */
    idempotencyKey: z.string().min(1).max(512).optional(),
    /** Defaults to the time of the append. */
    at: z.date().optional(),
  })
  .strict();
export type AuditEntry = z.input<typeof auditEntrySchema>;

export type AuditRow = typeof auditLog.$inferSelect;

// Same digest as the domain's pure-JS sha-256, computed natively (verify hashes every entry).
const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

type Tx = Parameters<Parameters<Db['transaction']>[0]>[0];
/** A database or an open transaction (the entry then commits or rolls back with the caller's work). */
export type AuditWriter = Db | Tx;

function toHashInput(row: AuditRow): AuditHashInput {
  return {
    seq: row.seq,
    at: row.at.toISOString(),
    actorId: row.actorId,
    actorKind: row.actorKind as AuditHashInput['actorKind'],
    action: row.action,
    subjectKind: row.subjectKind,
    subjectId: row.subjectId,
    data: row.data,
    idempotencyKey: row.idempotencyKey,
    prevHash: row.prevHash,
  };
}

/** Appends one entry to the chain and returns the stored row (the existing one for a known idempotency key). */
export async function appendAudit(db: AuditWriter, input: AuditEntry): Promise<AuditRow> {
  const [row] = await appendAuditBatch(db, [input]);
  if (!row) throw new Error('audit append returned no row');
  return row;
}

/**
 * Appends several entries in one transaction, in order (one lock, one commit: use it for bursts such
 * as a wave's per-stratum events). Returns one row per input, existing rows for known idempotency keys.
 */
export async function appendAuditBatch(db: AuditWriter, inputs: AuditEntry[]): Promise<AuditRow[]> {
  const entries = inputs.map((input) => {
    const entry = auditEntrySchema.parse(input);
    return {
      entry,
      // What is hashed must be exactly what PostgreSQL gives back: the JSON round trip drops undefined etc.
      data: JSON.parse(JSON.stringify(entry.data)) as Record<string, unknown>,
      // A JavaScript Date has millisecond precision, which timestamptz stores exactly: the hashed value survives.
      at: entry.at ?? new Date(),
    };
  });
  if (entries.length === 0) return [];
  return db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(${AUDIT_LOCK_KEY})`);
    const [last] = await tx
      .select({ seq: auditLog.seq, hash: auditLog.hash })
      .from(auditLog)
      .orderBy(desc(auditLog.seq))
      .limit(1);
    let prev = { seq: last?.seq ?? 0, hash: last?.hash ?? AUDIT_GENESIS_HASH };
    const out: AuditRow[] = [];
    for (const { entry, data, at } of entries) {
      if (entry.idempotencyKey) {
        const [existing] = await tx
          .select()
          .from(auditLog)
          .where(eq(auditLog.idempotencyKey, entry.idempotencyKey));
        if (existing) {
          out.push(existing);
          continue;
        }
      }
      const hashInput: AuditHashInput = {
        seq: prev.seq + 1,
        at: at.toISOString(),
        actorId: entry.actor.id,
        actorKind: entry.actor.kind,
        action: entry.action,
        subjectKind: entry.subject.kind,
        subjectId: entry.subject.id,
        data,
        idempotencyKey: entry.idempotencyKey ?? null,
        prevHash: prev.hash,
      };
      const [row] = await tx
        .insert(auditLog)
        .values({ ...hashInput, at, hash: auditEntryHash(hashInput, sha256) })
        .returning();
      if (!row) throw new Error('audit append returned no row');
      out.push(row);
      prev = { seq: row.seq, hash: row.hash };
    }
    return out;
  });
}

export interface AuditHead {
  seq: number;
  hash: string;
  at: string | null;
}

/** The newest entry's sequence number and hash; export it somewhere safe to detect truncation later. */
export async function auditHead(db: Db): Promise<AuditHead> {
  const [last] = await db.select().from(auditLog).orderBy(desc(auditLog.seq)).limit(1);
  return last
    ? { seq: last.seq, hash: last.hash, at: last.at.toISOString() }
    : { seq: 0, hash: AUDIT_GENESIS_HASH, at: null };
}

export type VerifyResult =
  | { ok: true; entries: number; head: AuditHead }
  | {
      ok: false;
      entries: number;
      firstBreak: ChainBreak | { seq: number; kind: 'head_mismatch' | 'truncated'; message: string };
    };

/**
 * Recomputes the chain from the first entry and reports the first broken link. With `expectHead`
 * (an exported head), it also checks that entry still exists with that hash — which catches deleting
 * the newest entries, the one edit a chain alone cannot show.
 */
export async function verifyAudit(
  db: Db,
  opts: { expectHead?: { seq: number; hash: string }; batchSize?: number } = {},
): Promise<VerifyResult> {
  const batch = opts.batchSize ?? 1000;
  let prev: { seq: number; hash: string } | null = null;
  let entries = 0;
  let lastAt: string | null = null;
  for (;;) {
    const rows: AuditRow[] = await db
      .select()
      .from(auditLog)
      .where(prev ? gt(auditLog.seq, prev.seq) : undefined)
      .orderBy(asc(auditLog.seq))
      .limit(batch);
    for (const row of rows) {
      const broken = checkLink(prev, { ...toHashInput(row), hash: row.hash }, sha256);
      if (broken) return { ok: false, entries, firstBreak: broken };
      if (opts.expectHead && row.seq === opts.expectHead.seq && row.hash !== opts.expectHead.hash) {
        return {
          ok: false,
          entries,
          firstBreak: {
            seq: row.seq,
            kind: 'head_mismatch',
            message: `entry ${row.seq} differs from the exported head`,
          },
        };
      }
      prev = { seq: row.seq, hash: row.hash };
      lastAt = row.at.toISOString();
      entries++;
    }
    if (rows.length < batch) break;
  }
  if (opts.expectHead && (prev?.seq ?? 0) < opts.expectHead.seq) {
    return {
      ok: false,
      entries,
      firstBreak: {
        seq: (prev?.seq ?? 0) + 1,
        kind: 'truncated',
        message: `the exported head is entry ${opts.expectHead.seq} but the log ends at ${prev?.seq ?? 0}`,
      },
    };
  }
  return {
    ok: true,
    entries,
    head: prev ? { ...prev, at: lastAt } : { seq: 0, hash: AUDIT_GENESIS_HASH, at: null },
  };
}

/** Entries about one subject, oldest first (for the API and CLI). */
export async function listAudit(
  db: Db,
  filter: { subjectKind?: string; subjectId?: string; afterSeq?: number; limit?: number },
): Promise<AuditRow[]> {
  const conds = [
    filter.subjectKind ? eq(auditLog.subjectKind, filter.subjectKind) : undefined,
    filter.subjectId ? eq(auditLog.subjectId, filter.subjectId) : undefined,
    filter.afterSeq !== undefined ? gt(auditLog.seq, filter.afterSeq) : undefined,
  ];
  return db
    .select()
    .from(auditLog)
    .where(and(...conds))
    .orderBy(asc(auditLog.seq))
    .limit(filter.limit ?? 100);
}
