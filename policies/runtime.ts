import { eq } from 'drizzle-orm';
import type { DbHandle } from '../db/client.js';
import { identities } from '../db/schema/identity.js';
import { loadPolicyEngine, type PolicyEngine } from './engine.js';
import { loadPolicyData } from './store.js';

/**
 * The policy engine of a running process, with its data document built from the tables. Throws
 * (PolicyLoadError naming the file and OPA's message) when the bundle is missing or broken, so the
 * API and worker refuse to start: policy fails closed.
 */
export async function openPolicyEngine(db: DbHandle, opts: { opaUrl?: string } = {}): Promise<PolicyEngine> {
  // Service identities (the planner, reconciliation) may propose but never approve or waive.
  const services = await db.db
    .select({ id: identities.id, name: identities.name })
    .from(identities)
    .where(eq(identities.kind, 'service'));
  const data = await loadPolicyData(db.db, { plannerIds: services.flatMap((s) => [s.id, s.name]) });
  return loadPolicyEngine({ data, opaUrl: opts.opaUrl });
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
