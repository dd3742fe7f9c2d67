import { Connection } from '@temporalio/client';
import { type Service, startService, waitFor } from './process.js';
import { temporalCli } from './tools.js';

export interface DevServer {
  address: string;
  uiUrl?: string;
  service: Service;
  stop(): Promise<void>;
}

/** Starts `temporal server start-dev` on loopback; `dbFile` makes its state persistent. */
export async function startTemporalDevServer(opts: {
  ip?: string;
  port: number;
  uiPort?: number;
  dbFile?: string;
  namespace?: string;
  logLevel?: string;
  searchAttributes?: Record<string, string>;
}): Promise<DevServer> {
  const ip = opts.ip ?? '127.0.0.1';
  const args = [
    'server',
    'start-dev',
    '--ip',
    ip,
    '--port',
    String(opts.port),
    '--log-level',
    opts.logLevel ?? 'warn',
  ];
  if (opts.uiPort) args.push('--ui-port', String(opts.uiPort));
  else args.push('--headless');
  if (opts.dbFile) args.push('--db-filename', opts.dbFile);
  if (opts.namespace && opts.namespace !== 'default') args.push('--namespace', opts.namespace);
  for (const [k, v] of Object.entries(opts.searchAttributes ?? {}))
    args.push('--search-attribute', `${k}=${v}`);
  const service = startService('temporal', temporalCli(), args, { stopSignal: 'SIGTERM' });
  const address = `${ip}:${opts.port}`;
  await waitFor(
    `Temporal dev server on ${address}`,
    async () => {
      if (service.child.exitCode !== null) {
        throw new Error(
          `Temporal dev server exited: ${service.output().trim().split('\n').slice(-3).join(' | ')}`,
        );
      }
      return temporalReachable(address, 1000);
    },
    60_000,
  );
  return {
    address,
    uiUrl: opts.uiPort ? `http://${ip}:${opts.uiPort}` : undefined,
    service,
    stop: () => service.stop(),
  };
}

export async function temporalReachable(address: string, timeoutMs: number): Promise<boolean> {
  try {
    const conn = await Connection.connect({ address, connectTimeout: timeoutMs });
    try {
      await conn.withDeadline(Date.now() + timeoutMs, () => conn.workflowService.getSystemInfo({}));
      return true;
    } finally {
      await conn.close();
    }
  } catch {
    return false;
  }
}
