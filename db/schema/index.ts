// One file per area; this index is what the client and drizzle-kit see.
export * from './health.js';
export * from './executor.js';
export * from './identity.js';
export * from './audit.js';
export * from './approval.js';
export * from './fleet.js';
export * from './policy.js';
export * from './rollout.js';
export * from './change-request.js';
export * from './profiles.js';
export * from './datamodel.js';
