import { canonicalJson, sha256Hex } from './hash.js';

/** A sha-256 to hex function; callers outside workflows pass node:crypto's, which is much faster. */
export type Sha256Hex = (text: string) => string;

/** The `prev_hash` of the first entry. */
export const AUDIT_GENESIS_HASH = '0'.repeat(64);

export type AuditActorKind = 'user' | 'service' | 'system';

/** Exactly the fields an audit entry's hash covers (timestamps as ISO strings, data as stored JSON). */
export interface AuditHashInput {
  seq: number;
  at: string;
  actorId: string;
  actorKind: AuditActorKind;
  action: string;
  subjectKind: string;
  subjectId: string;
  data: Record<string, unknown>;
  idempotencyKey: string | null;
  prevHash: string;
}

const AUDIT_HASH_VERSION = 'fleetbrain.audit.v1';

/** sha-256 over the canonical JSON of the entry, which includes the previous entry's hash. */
export function auditEntryHash(e: AuditHashInput, sha256: Sha256Hex = sha256Hex): string {
  return sha256(canonicalJson({ v: AUDIT_HASH_VERSION, ...e }));
}

export type ChainBreak =
  | { seq: number; kind: 'seq_gap'; message: string }
  | { seq: number; kind: 'prev_hash_mismatch'; message: string }
  | { seq: number; kind: 'hash_mismatch'; message: string };

/**
 * Checks one entry against its predecessor (or the genesis). Feed entries in `seq` order; the first
 * non-null result is the first broken link.
 */
export function checkLink(
  prev: { seq: number; hash: string } | null,
  entry: AuditHashInput & { hash: string },
  sha256: Sha256Hex = sha256Hex,
): ChainBreak | null {
  const expectedSeq = prev ? prev.seq + 1 : 1;
  if (entry.seq !== expectedSeq) {
    return {
      seq: entry.seq,
      kind: 'seq_gap',
      message: `expected entry ${expectedSeq}, found ${entry.seq}: entries were deleted or renumbered`,
    };
  }
  const expectedPrev = prev ? prev.hash : AUDIT_GENESIS_HASH;
  if (entry.prevHash !== expectedPrev) {
    return {
      seq: entry.seq,
      kind: 'prev_hash_mismatch',
      message: `entry ${entry.seq} does not point at entry ${expectedSeq - 1}: entries were removed, inserted or reordered`,
    };
  }
  const { hash, ...rest } = entry;
  if (auditEntryHash(rest, sha256) !== hash) {
    return {
      seq: entry.seq,
      kind: 'hash_mismatch',
      message: `entry ${entry.seq} was modified after it was written`,
    };
  }
  return null;
}
