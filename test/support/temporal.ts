import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Client, Connection } from '@temporalio/client';
import type { Worker } from '@temporalio/worker';
import { inject } from 'vitest';
import type { ActivityDeps } from '../../activities/index.js';
import { createLogger } from '../../platform/logger.js';
import { createWorker } from '../../platform/worker.js';

/** A worker on a fresh task queue against the run's dev server, with the run's shared bundle. */
export async function startTestWorker(deps: Partial<ActivityDeps> = {}) {
  const address = inject('temporalAddress');
  const taskQueue = `test-${randomUUID()}`;
  const { worker, connection: nativeConnection } = await createWorker({
    address,
    namespace: 'default',
    taskQueue,
    deps: { logger: createLogger({ name: 'test', level: 'warn' }), workerId: 'test-worker', ...deps },
    workflowBundle: { code: readFileSync(inject('workflowBundlePath'), 'utf8') },
  });
  const connection = await Connection.connect({ address });
  const client = new Client({ connection, namespace: 'default' });
  const running = worker.run();
  return {
    worker: worker as Worker,
    client,
    taskQueue,
    async stop() {
      worker.shutdown();
      await running;
      await nativeConnection.close();
      await connection.close();
    },
  };
}
