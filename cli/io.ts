import { connect, type DbHandle } from '../db/client.js';
import { loadConfig } from '../platform/config.js';
import { requireDatabaseUrl } from './shared.js';

/** What a database command needs from its surroundings; tests pass their own. */
export interface CliIo {
  out(line: string): void;
  err(line: string): void;
  openDb(): DbHandle;
}

export const defaultIo: CliIo = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
  openDb: () => connect(requireDatabaseUrl(loadConfig()), { max: 2, applicationName: 'fleetbrain-cli' }),
};

/** Runs `fn` with a database handle that is closed afterwards, whatever happens. */
export async function withDb<T>(io: CliIo, fn: (db: DbHandle) => Promise<T>): Promise<T> {
  const handle = io.openDb();
  try {
    return await fn(handle);
  } finally {
    await handle.close();
  }
}
