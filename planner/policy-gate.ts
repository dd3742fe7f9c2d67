import { loadPolicyEngine, type PolicyEngine } from '../policies/engine.js';
import { defaultMaintenanceWindows, defaultRiskCaps, policyDataFromRows } from '../policies/policy-data.js';
import type { PolicyData, PolicyDecision, PolicyInput } from '../policies/schema.js';
import { PLANNER_IDENTITY } from './proposal.js';

/** Default policy data for planner checks outside a database (evals, CLI): shipped caps and windows. */
export function defaultPolicyData(): PolicyData {
  return policyDataFromRows({
    firmwareImages: [],
    maintenanceWindows: defaultMaintenanceWindows,
    riskCaps: defaultRiskCaps,
    plannerIds: [PLANNER_IDENTITY.id],
  });
}

/** The shipped Rego policy, in-process (wasm), as the `decide` port of a proposal check. */
export async function loadPolicyDecider(
  data: PolicyData = defaultPolicyData(),
): Promise<{ decide(input: PolicyInput): Promise<PolicyDecision>; engine: PolicyEngine }> {
  const engine = await loadPolicyEngine({ data, opaUrl: '' });
  return { engine, decide: async (input) => (await engine.decide(input)).decision };
}
