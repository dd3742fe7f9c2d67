import type { Connection } from '@temporalio/client';
import type { DbHandle } from '../db/client.js';
import type { ReadinessCheck } from './readiness.js';

export function postgresCheck(db: DbHandle): ReadinessCheck {
  return {
    name: 'postgres',
    async check() {
      await db.pool.query('SELECT 1');
    },
  };
}

export function temporalCheck(connection: Connection, timeoutMs = 1_500): ReadinessCheck {
  return {
    name: 'temporal',
    async check() {
      await connection.withDeadline(Date.now() + timeoutMs, () =>
        connection.workflowService.getSystemInfo({}),
      );
    },
  };
}
