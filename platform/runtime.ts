import { Client, Connection } from '@temporalio/client';
import { OpenTelemetryWorkflowClientInterceptor } from '@temporalio/interceptors-opentelemetry';
import { connect, type DbHandle } from '../db/client.js';
import type { Config } from './config.js';

/** Connections shared by the API and the worker of one process. */
export interface Runtime {
  db: DbHandle;
  connection: Connection;
  client: Client;
  close(): Promise<void>;
}

export async function openRuntime(config: Config, databaseUrl: string, name: string): Promise<Runtime> {
  const db = connect(databaseUrl, { applicationName: `fleetbrain-${name}` });
  const connection = await Connection.connect({ address: config.temporal.address });
  const client = new Client({
    connection,
    namespace: config.temporal.namespace,
    interceptors: { workflow: [new OpenTelemetryWorkflowClientInterceptor()] },
  });
  return {
    db,
    connection,
    client,
    async close() {
      await connection.close();
      await db.close();
    },
  };
}
