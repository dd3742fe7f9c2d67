import { type AuditEntry, appendAudit } from '../db/audit.js';
import type { Db } from '../db/client.js';
import type { Logger } from '../platform/logger.js';

export interface AuditDeps {
  logger: Logger;
  db?: Db;
}

/** Activity input: the audit entry with its time as an ISO string (Dates do not survive the payload converter). */
export type AuditActivityEntry = Omit<AuditEntry, 'at'> & { at?: string };

export function requireDb(deps: { db?: Db }, what: string): Db {
  if (!deps.db) throw new Error(`${what} needs a database: pass \`db\` in the worker's ActivityDeps`);
  return deps.db;
}

/**
 * The audit log for workflows: one activity that appends an entry. Always pass an idempotency key
 * derived from the workflow (id, step, subject), never from the activity id, so a retry appends once.
 */
export function createAuditActivities(deps: AuditDeps) {
  return {
    async appendAuditEntry(entry: AuditActivityEntry): Promise<{ seq: number; hash: string }> {
      const { at, ...rest } = entry;
      const row = await appendAudit(requireDb(deps, 'appendAuditEntry'), {
        ...rest,
        ...(at !== undefined ? { at: new Date(at) } : {}),
      });
      return { seq: row.seq, hash: row.hash };
    },
  };
}
