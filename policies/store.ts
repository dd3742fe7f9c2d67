import { and, desc, eq } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { firmwareImages, maintenanceWindows, policyDecisions, policyRiskCaps } from '../db/schema/policy.js';
import type { EvaluatedDecision } from './engine.js';
import { defaultMaintenanceWindows, defaultRiskCaps, policyDataFromRows } from './policy-data.js';
import { type PolicyData, PolicyDecision } from './schema.js';

/** PostgreSQL side of policy: the data document from tables, and the record of every decision. */

/** The policy data document as the tables hold it now; throws if they describe an unusable policy. */
export async function loadPolicyData(db: Db, opts: { plannerIds: string[] }): Promise<PolicyData> {
  const [images, windows, caps] = await Promise.all([
    db.select().from(firmwareImages),
    db.select().from(maintenanceWindows),
    db.select().from(policyRiskCaps),
  ]);
  return policyDataFromRows({
    firmwareImages: images,
    maintenanceWindows: windows,
    riskCaps: caps,
    plannerIds: opts.plannerIds,
  });
}

/** Default caps and a nightly window on a fresh installation; existing rows are left alone. */
export async function seedPolicyDefaults(db: Db): Promise<void> {
  await db.insert(policyRiskCaps).values(defaultRiskCaps).onConflictDoNothing();
  await db.insert(maintenanceWindows).values(defaultMaintenanceWindows).onConflictDoNothing();
}

export interface DecisionSubject {
  /** change_request, rollout, profile, dry_run… */
  kind: string;
  id?: string;
}

/** Stores one decision (input hash, bundle hash, result, latency) and returns its id. */
export async function recordDecision(
  db: Db,
  subject: DecisionSubject,
  input: { action: string; actor: { id: string } } & Record<string, unknown>,
  evaluated: EvaluatedDecision,
  opts: { storeInput?: boolean } = {},
): Promise<string> {
  const d = evaluated.decision;
  const [row] = await db
    .insert(policyDecisions)
    .values({
      subjectKind: subject.kind,
      subjectId: subject.id ?? null,
      action: input.action,
      actorId: input.actor.id,
      engine: evaluated.engine,
      inputHash: evaluated.inputHash,
      bundleHash: evaluated.bundleHash,
      policyHash: evaluated.policyHash,
      dataHash: evaluated.dataHash,
      allow: d.allow,
      riskClass: d.risk_class,
      requireApprovals: d.require_approvals,
      result: d as unknown as Record<string, unknown>,
      input: opts.storeInput === false ? null : input,
      latencyMs: evaluated.latencyMs,
    })
    .returning({ id: policyDecisions.id });
  if (!row) throw new Error('policy decision insert returned no row');
  return row.id;
}

export interface StoredDecision {
  id: string;
  decidedAt: Date;
  action: string;
  actorId: string;
  engine: string;
  inputHash: string;
  bundleHash: string;
  latencyMs: number;
  decision: PolicyDecision;
}

/** A subject's decisions, newest first, with their reasons: what is shown wherever a change is shown. */
export async function decisionsFor(db: Db, subject: DecisionSubject, limit = 20): Promise<StoredDecision[]> {
  const where = subject.id
    ? and(eq(policyDecisions.subjectKind, subject.kind), eq(policyDecisions.subjectId, subject.id))
    : eq(policyDecisions.subjectKind, subject.kind);
  const rows = await db
    .select()
    .from(policyDecisions)
    .where(where)
    .orderBy(desc(policyDecisions.decidedAt))
    .limit(limit);
  return rows.map((r) => ({
    id: r.id,
    decidedAt: r.decidedAt,
    action: r.action,
    actorId: r.actorId,
    engine: r.engine,
    inputHash: r.inputHash,
    bundleHash: r.bundleHash,
    latencyMs: r.latencyMs,
    decision: PolicyDecision.parse(r.result),
  }));
}

/** One line per reason, for CLIs, logs and the console. */
export function explainDecision(d: PolicyDecision): string[] {
  const head = `${d.allow ? 'ALLOW' : 'DENY'} · risk ${d.risk_class} · ${d.require_approvals} approval(s) required`;
  const reasons = d.deny.map((r) => `  deny ${r.code}${r.path ? ` [${r.path}]` : ''}: ${r.message}`);
  const factors = d.risk_factors.map((f) => `  risk ${f.class} from ${f.source}: ${f.detail}`);
  return [head, ...reasons, ...factors];
}
