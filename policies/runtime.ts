import { eq } from 'drizzle-orm';
import { z } from 'zod';
import type { DbHandle } from '../db/client.js';
import { identities } from '../db/schema/identity.js';
import { PolicyLoadError } from './bundle.js';
import { loadPolicyEngine, type PolicyEngine } from './engine.js';
import { loadPolicyData } from './store.js';

/**
 * The policy engine of a running process, with its data document built from the tables. Throws
 * (PolicyLoadError naming the file and OPA's message) when the bundle is missing or broken, so the
 * API and worker refuse to start: policy fails closed.
 */
export async function openPolicyEngine(
  db: DbHandle,
  opts: { opaUrl?: string; policyDir?: string } = {},
): Promise<PolicyEngine> {
  // Service identities (the planner, reconciliation) may propose but never approve or waive.
  const services = await db.db
    .select({ id: identities.id, name: identities.name })
    .from(identities)
    .where(eq(identities.kind, 'service'));
  let data: Awaited<ReturnType<typeof loadPolicyData>>;
  try {
    data = await loadPolicyData(db.db, { plannerIds: services.flatMap((s) => [s.id, s.name]) });
  } catch (err) {
    const issue = err instanceof z.ZodError ? err.issues[0] : undefined;
    const detail = issue ? `${issue.path.join('.')}: ${issue.message}` : (err as Error).message;
    throw new PolicyLoadError(
      `policy data from the database is unusable (${detail}); run 'fleetbrain migrate', which seeds the default caps and windows`,
    );
  }
  return loadPolicyEngine({ data, opaUrl: opts.opaUrl, policyDir: opts.policyDir });
}

/** Readiness: the engine answers an evaluation (for an OPA server: it is reachable). */
export function policyEngineCheck(engine: PolicyEngine) {
  return {
    name: 'policy',
    async check() {
      await engine.evaluate({});
    },
  };
}
