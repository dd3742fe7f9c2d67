import { hashJson } from './hash.js';

/** What an approval is bound to: the exact change and the exact devices it will touch. */
export interface PlanForHash {
  /** The change itself (profile values, firmware image, wave plan, …), any JSON. */
  spec: unknown;
  /** The resolved device set — ids, not the selector, so devices joining later are not covered. */
  deviceIds: readonly string[];
}

/** Version tag inside the hashed document: changing the hashing scheme must never collide with old hashes. */
const PLAN_HASH_VERSION = 'fleetbrain.plan.v1';

/**
 * The plan hash an approval is bound to. Device order and duplicates do not matter (a set), every
 * other difference — a value, a device, a wave size — gives a different hash.
 */
export function planHash(plan: PlanForHash): string {
  const deviceIds = [...new Set(plan.deviceIds)].sort();
  return hashJson({ v: PLAN_HASH_VERSION, spec: plan.spec, deviceIds });
}

export const planHashPattern = /^[0-9a-f]{64}$/;
