import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { z } from 'zod';
import { connect } from '../db/client.js';
import { provisionCredentials } from '../executor/cwmp/driver.js';
import { CredentialCipher } from '../executor/secrets.js';
import { AcsConfig } from '../executor/cwmp/acs.js';
import { startCwmpService } from '../executor/cwmp/service.js';
import { ConfigError, loadConfig } from '../platform/config.js';
import { createLogger } from '../platform/logger.js';
import { onShutdown, requireDatabaseUrl } from './shared.js';

const Credential = z.object({
  deviceId: z.string().min(1),
  username: z.string().min(1),
  password: z.string().min(1),
  crUsername: z.string().optional(),
  crPassword: z.string().optional(),
});

/** The command line options of `fleetbrain executor` (as commander hands them over). */
export interface ExecutorOptions {
  host: string;
  port: string;
  auth: string;
  unknownDevices: string;
  maxSessions: string;
  tlsKey?: string;
  tlsCert?: string;
  provision?: string;
}

function readPem(file: string, flag: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`${flag} ${file}: cannot be read (${(err as NodeJS.ErrnoException).code ?? err})`);
  }
}

/**
 * The ACS configuration from the command line: TLS needs both the key and the certificate (PEM
 * files, read here so a bad path fails before anything starts), and basic authentication needs TLS
 * (the ACS would refuse every cleartext password anyway; better to say so at start).
 */
export function acsConfigFromOptions(o: ExecutorOptions): AcsConfig {
  if ((o.tlsKey === undefined) !== (o.tlsCert === undefined))
    throw new ConfigError(
      `${o.tlsKey === undefined ? '--tls-cert' : '--tls-key'} given without ${o.tlsKey === undefined ? '--tls-key' : '--tls-cert'}: TLS needs both the private key and the certificate`,
    );
  const tls =
    o.tlsKey !== undefined && o.tlsCert !== undefined
      ? { key: readPem(o.tlsKey, '--tls-key'), cert: readPem(o.tlsCert, '--tls-cert') }
      : undefined;
  if (o.auth === 'basic' && !tls)
    throw new ConfigError(
      '--auth basic needs --tls-key and --tls-cert: basic credentials are never accepted in cleartext',
    );
  const r = AcsConfig.safeParse({
    host: o.host,
    port: Number(o.port),
    auth: o.auth,
    unknownDevices: o.unknownDevices,
    maxSessions: Number(o.maxSessions),
    tls,
  });
  if (!r.success) {
    const i = r.error.issues[0];
    throw new ConfigError(`executor option ${i?.path.join('.') ?? ''}: ${i?.message ?? 'invalid'}`);
  }
  return r.data;
}

/** `fleetbrain executor`: the CWMP ACS endpoint with the executor behind it. */
export function executorCommand(program: Command): void {
  program
    .command('executor')
    .description('run the CWMP ACS endpoint (TR-069) and the executor behind it')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'port to listen on', '7547')
    .option('--auth <mode>', 'CPE authentication: digest | basic (TLS only) | none', 'digest')
    .option('--unknown-devices <mode>', 'register | reject CPEs not in the inventory', 'register')
    .option('--max-sessions <n>', 'concurrent sessions before new ones get 503', '2000')
    .option('--tls-key <file>', 'serve HTTPS: private key (PEM); needs --tls-cert')
    .option('--tls-cert <file>', 'serve HTTPS: certificate chain (PEM); needs --tls-key')
    .option(
      '--provision <file>',
      'store per-device credentials (JSON from `fleetbrain sim --credentials`) before starting',
    )
    .action(async (o: ExecutorOptions) => {
      const config = loadConfig();
      const log = createLogger({ name: 'executor', level: config.env.LOG_LEVEL });
      const acs = acsConfigFromOptions(o);
      const databaseUrl = requireDatabaseUrl(config);
      if (o.provision) {
        const rows = z.array(Credential).parse(JSON.parse(readFileSync(o.provision, 'utf8')));
        const db = connect(databaseUrl);
        await provisionCredentials(db.pool, CredentialCipher.fromEnv(), rows);
        await db.close();
        log.info({ devices: rows.length }, 'credentials stored (encrypted)');
      }
      const svc = await startCwmpService({ databaseUrl, log, acs });
      onShutdown(() => svc.close());
    });
}
