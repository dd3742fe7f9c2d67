import { spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { type Service, startService, waitFor } from './process.js';
import { postgresBinDir } from './tools.js';

export interface EmbeddedPostgres {
  url: string;
  port: number;
  service: Service;
  stop(): Promise<void>;
}

const isRoot = () => process.getuid?.() === 0;

/** PostgreSQL refuses to run as root, so as root the cluster belongs to the `postgres` user. */
function asPgUser(cmd: string, args: string[]): [string, string[]] {
  return isRoot() ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args];
}

function chownToPg(dir: string): void {
  if (!isRoot()) return;
  const id = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  if (id.status !== 0) throw new Error('running as root but there is no `postgres` user to own the cluster');
  chownSync(dir, Number(id.stdout.trim()), Number(gid.stdout.trim()));
}

/**
 * Starts (initialising on first use) a PostgreSQL cluster in `dataDir`, listening on loopback only.
 * `ephemeral` trades durability for speed (tests and benchmarks).
 */
export async function startPostgres(opts: {
  dataDir: string;
  port: number;
  database?: string;
  ephemeral?: boolean;
}): Promise<EmbeddedPostgres> {
  const bin = postgresBinDir();
  const database = opts.database ?? 'fleetbrain';
  mkdirSync(opts.dataDir, { recursive: true });
  chownToPg(opts.dataDir);
  if (!existsSync(path.join(opts.dataDir, 'PG_VERSION'))) {
    const [cmd, args] = asPgUser(path.join(bin, 'initdb'), [
      '-D',
      opts.dataDir,
      '-U',
      'fleetbrain',
      '--auth=trust',
      '-E',
      'UTF8',
      '--no-locale',
    ]);
    const res = spawnSync(cmd, args, { encoding: 'utf8' });
    if (res.status !== 0) throw new Error(`initdb failed in ${opts.dataDir}: ${res.stderr.trim()}`);
  }
  const settings = [
    '-D',
    opts.dataDir,
    '-p',
    String(opts.port),
    '-c',
    'listen_addresses=127.0.0.1',
    '-c',
    'unix_socket_directories=',
    '-c',
    'max_connections=200',
    '-c',
    'shared_buffers=256MB',
    ...(opts.ephemeral
      ? ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off']
      : // Fewer checkpoints under an inform storm: after each, every page's first change is logged
        // whole, and the storm's random index inserts touch a new page each (PostgreSQL's CPU per
        // session at 50k CPEs: 0.50 ms with the 1 GB default, 0.42 ms with this).
        ['-c', 'max_wal_size=4GB', '-c', 'checkpoint_timeout=30min']),
  ];
  const [cmd, args] = asPgUser(path.join(bin, 'postgres'), settings);
  // SIGINT is PostgreSQL's "fast shutdown": clients are disconnected, data is flushed.
  const service = startService('postgres', cmd, args, { stopSignal: 'SIGINT' });
  const adminUrl = `postgres://fleetbrain@127.0.0.1:${opts.port}/postgres`;
  await waitFor(
    `PostgreSQL on port ${opts.port}`,
    async () => {
      if (service.child.exitCode !== null) {
        throw new Error(
          `PostgreSQL exited during start-up: ${service.output().trim().split('\n').slice(-3).join(' | ')}`,
        );
      }
      const c = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 1000 });
      try {
        await c.connect();
        await c.end();
        return true;
      } catch {
        await c.end().catch(() => {});
        return false;
      }
    },
    30_000,
  );
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
  if (exists.rowCount === 0) await admin.query(`CREATE DATABASE "${database}"`);
  await admin.end();
  const url = `postgres://fleetbrain@127.0.0.1:${opts.port}/${database}`;
  return { url, port: opts.port, service, stop: () => service.stop() };
}
