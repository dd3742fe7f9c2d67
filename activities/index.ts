import type { Logger } from '../platform/logger.js';
import { createProbeActivities } from './probe.js';

/** Everything the activities need from the outside world, built once per worker process. */
export interface ActivityDeps {
  logger: Logger;
  workerId: string;
}

export function createActivities(deps: ActivityDeps) {
  return {
    ...createProbeActivities(deps),
  };
}
