import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { z } from 'zod';
import { connect } from '../db/client.js';
import { provisionCredentials } from '../executor/cwmp/driver.js';
import { CredentialCipher } from '../executor/secrets.js';
import { AcsConfig } from '../executor/cwmp/acs.js';
import { startCwmpService } from '../executor/cwmp/service.js';
import { loadConfig } from '../platform/config.js';
import { createLogger } from '../platform/logger.js';
import { onShutdown, requireDatabaseUrl } from './shared.js';

const Credential = z.object({
  deviceId: z.string().min(1),
  username: z.string().min(1),
  password: z.string().min(1),
  crUsername: z.string().optional(),
  crPassword: z.string().optional(),
});

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
    .option(
      '--provision <file>',
      'store per-device credentials (JSON from `fleetbrain sim --credentials`) before starting',
    )
    .action(
      async (o: {
        host: string;
        port: string;
        auth: string;
        unknownDevices: string;
        maxSessions: string;
        provision?: string;
      }) => {
        const config = loadConfig();
        const log = createLogger({ name: 'executor', level: config.env.LOG_LEVEL });
        const acs = AcsConfig.parse({
          host: o.host,
          port: Number(o.port),
          auth: o.auth,
          unknownDevices: o.unknownDevices,
          maxSessions: Number(o.maxSessions),
        });
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
      },
    );
}
