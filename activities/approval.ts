import { sql } from 'drizzle-orm';
import { appendAudit } from '../db/audit.js';
import type { Db } from '../db/client.js';
import { approvalRequests, approvalVotes } from '../db/schema/approval.js';
import type { ApprovalStatus, ApprovalVote } from '../domain/approval/rules.js';
import type { Logger } from '../platform/logger.js';
import { type AuditActivityEntry, requireDb } from './audit.js';

export interface ApprovalActivityDeps {
  logger: Logger;
  db?: Db;
}

/** The workflow's approval state as the inbox shows it; `version` grows with every change. */
export interface ApprovalSnapshot {
  requestId: string;
  workflowId: string;
  gate: string;
  subject: { kind: string; id: string };
  title: string;
  proposer: { id: string; name: string };
  planHash: string;
  planRevision: number;
  requiredApprovals: number;
  approvals: number;
  status: ApprovalStatus;
  expiresAt: number;
  version: number;
  votes: ApprovalVote[];
  voided: ApprovalVote[];
}

export function createApprovalActivities(deps: ApprovalActivityDeps) {
  return {
    /**
     * Mirrors the workflow's approval state into the inbox tables and appends the audit entry for
     * the change, in one transaction. Idempotent: an older snapshot never overwrites a newer one, and
     * the audit entry carries the workflow's idempotency key.
     */
    async recordApproval(input: { snapshot: ApprovalSnapshot; audit: AuditActivityEntry }): Promise<void> {
      const db = requireDb(deps, 'recordApproval');
      const s = input.snapshot;
      await db.transaction(async (tx) => {
        const row = {
          id: s.requestId,
          workflowId: s.workflowId,
          gate: s.gate,
          subjectKind: s.subject.kind,
          subjectId: s.subject.id,
          title: s.title,
          proposerId: s.proposer.id,
          proposerName: s.proposer.name,
          planHash: s.planHash,
          planRevision: s.planRevision,
          requiredApprovals: s.requiredApprovals,
          approvals: s.approvals,
          status: s.status,
          expiresAt: new Date(s.expiresAt),
          version: s.version,
        };
        await tx
          .insert(approvalRequests)
          .values(row)
          .onConflictDoUpdate({
            target: approvalRequests.id,
            set: {
              planHash: row.planHash,
              planRevision: row.planRevision,
              requiredApprovals: row.requiredApprovals,
              approvals: row.approvals,
              status: row.status,
              expiresAt: row.expiresAt,
              version: row.version,
              updatedAt: sql`now()`,
            },
            setWhere: sql`${approvalRequests.version} < ${row.version}`,
          });
        const votes = [
          ...s.voided.map((v) => ({ v, voided: true })),
          ...s.votes.map((v) => ({ v, voided: false })),
        ];
        if (votes.length > 0) {
          await tx
            .insert(approvalVotes)
            .values(
              votes.map(({ v, voided }) => ({
                approvalId: v.approvalId,
                requestId: s.requestId,
                approverId: v.approverId,
                approverName: v.approverName,
                decision: v.decision,
                planHash: v.planHash,
                comment: v.comment ?? null,
                voided,
                at: new Date(v.at),
              })),
            )
            // A vote only ever moves from valid to void.
            .onConflictDoUpdate({
              target: approvalVotes.approvalId,
              set: { voided: sql`${approvalVotes.voided} or excluded.voided` },
            });
        }
        const { at, ...audit } = input.audit;
        await appendAudit(tx, { ...audit, ...(at !== undefined ? { at: new Date(at) } : {}) });
      });
    },
  };
}
