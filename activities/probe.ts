import type { Logger } from '../platform/logger.js';

export interface ProbeDeps {
  logger: Logger;
  workerId: string;
}

export function createProbeActivities(deps: ProbeDeps) {
  return {
    async echo(id: string): Promise<string> {
      deps.logger.debug({ id }, 'probe echo');
      return `${id}@${deps.workerId}`;
    },
  };
}
