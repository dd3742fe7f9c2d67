import type { Db } from '../db/client.js';
import type { Logger } from '../platform/logger.js';
import { createApprovalActivities } from './approval.js';
import { createAuditActivities } from './audit.js';
import { type ChangeRequestDeps, createChangeRequestActivities } from './change-request.js';
import { createProbeActivities } from './probe.js';
import { createProfileActivities, type ProfileActivityDeps } from './profiles.js';
import { type RolloutDeps, createRolloutActivities } from './rollout.js';

/** Everything the activities need from the outside world, built once per worker process. */
export interface ActivityDeps {
  logger: Logger;
  workerId: string;
  /** PostgreSQL (drizzle); activities that need it fail with a clear error when absent. */
  db?: Db;
  /** Firmware rollouts (activities/rollout.ts): executor, fleet source, catalogue lookup. */
  rolloutExecutor?: RolloutDeps['rolloutExecutor'];
  rolloutFleet?: RolloutDeps['rolloutFleet'];
  rolloutImages?: RolloutDeps['rolloutImages'];
  rolloutMinuteMs?: number;
  rolloutHealth?: RolloutDeps['rolloutHealth'];
  rolloutFetch?: RolloutDeps['rolloutFetch'];
  /** Profile reconciliation (activities/profiles.ts): executors by protocol and the schema gate. */
  profileExecutors?: ProfileActivityDeps['profileExecutors'];
  profileGate?: ProfileActivityDeps['profileGate'];
}

/** Change requests (activities/change-request.ts): executors by protocol, data-model lookup, policy engine. */
export interface ActivityDeps
  extends Pick<ChangeRequestDeps, 'changeExecutors' | 'changeSchemaFor' | 'changePolicy' | 'changePollMs'> {}

export function createActivities(deps: ActivityDeps) {
  return {
    ...createProbeActivities(deps),
    ...createAuditActivities(deps),
    ...createApprovalActivities(deps),
    ...createRolloutActivities(deps),
    ...createChangeRequestActivities(deps),
    ...createProfileActivities(deps),
  };
}
