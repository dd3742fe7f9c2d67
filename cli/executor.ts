import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { z } from 'zod';
import { connect } from '../db/client.js';
import { provisionCredentials } from '../executor/cwmp/driver.js';
import { CredentialCipher } from '../executor/secrets.js';
import { AcsConfig } from '../executor/cwmp/acs.js';
import { startCwmpService } from '../executor/cwmp/service.js';
import type { SchemaGate } from '../executor/schema-gate.js';
import { isValidEndpointId } from '../executor/usp/endpoint-id.js';
import { startUspRuntime } from '../executor/usp/runtime.js';
import { ConfigError, loadConfig } from '../platform/config.js';
import { createLogger, type Logger } from '../platform/logger.js';
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
  admissionWaitMs: string;
  tlsKey?: string;
  tlsCert?: string;
  provision?: string;
  uspEndpointId: string;
  uspMqttUrl?: string;
  uspWsHost: string;
  uspWsPort?: string;
}

/** The USP controller's side of `fleetbrain executor`: at least one MTP, or no controller at all. */
export interface UspCliConfig {
  endpointId: string;
  mqttUrl?: string;
  ws?: { host: string; port: number };
}

/** The USP controller from the command line; undefined when neither an MQTT broker nor a WebSocket port is given. */
export function uspConfigFromOptions(o: ExecutorOptions): UspCliConfig | undefined {
  if (o.uspMqttUrl === undefined && o.uspWsPort === undefined) return undefined;
  if (!isValidEndpointId(o.uspEndpointId))
    throw new ConfigError(
      `--usp-endpoint-id ${o.uspEndpointId}: not a USP endpoint ID (TR-369 form authority-scheme::id, e.g. proto::fleetbrain)`,
    );
  let mqttUrl: string | undefined;
  if (o.uspMqttUrl !== undefined) {
    let u: URL;
    try {
      u = new URL(o.uspMqttUrl);
    } catch {
      throw new ConfigError(
        `--usp-mqtt-url ${o.uspMqttUrl}: not a URL (mqtt://host:1883 or mqtts://host:8883)`,
      );
    }
    if (u.protocol !== 'mqtt:' && u.protocol !== 'mqtts:')
      throw new ConfigError(
        `--usp-mqtt-url ${o.uspMqttUrl}: the scheme must be mqtt: or mqtts:, not ${u.protocol}`,
      );
    mqttUrl = o.uspMqttUrl;
  }
  let ws: UspCliConfig['ws'];
  if (o.uspWsPort !== undefined) {
    const port = Number(o.uspWsPort);
    if (!Number.isInteger(port) || port < 0 || port > 65_535)
      throw new ConfigError(`--usp-ws-port ${o.uspWsPort}: not a TCP port (0–65535)`);
    ws = { host: o.uspWsHost, port };
  }
  return { endpointId: o.uspEndpointId, ...(mqttUrl ? { mqttUrl } : {}), ...(ws ? { ws } : {}) };
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
    admissionWaitMs: Number(o.admissionWaitMs),
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
    .description(
      'run the CWMP ACS endpoint (TR-069), the USP controller (TR-369) when an MTP is given, and the executor behind them',
    )
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'port to listen on', '7547')
    .option('--auth <mode>', 'CPE authentication: digest | basic (TLS only) | none', 'digest')
    .option('--unknown-devices <mode>', 'register | reject CPEs not in the inventory', 'register')
    .option('--max-sessions <n>', 'concurrent sessions; new ones beyond wait for room, then get 503', '2000')
    .option(
      '--admission-wait-ms <ms>',
      'how long a new session beyond --max-sessions waits for room before 503 + Retry-After (0: at once)',
      '20000',
    )
    .option('--tls-key <file>', 'serve HTTPS: private key (PEM); needs --tls-cert')
    .option('--tls-cert <file>', 'serve HTTPS: certificate chain (PEM); needs --tls-key')
    .option('--usp-mqtt-url <url>', 'run the USP controller on this MQTT broker (mqtt:// or mqtts://)')
    .option('--usp-ws-port <port>', 'run the USP controller with a WebSocket MTP listening on this port')
    .option('--usp-ws-host <host>', 'address of the USP WebSocket MTP', '127.0.0.1')
    .option('--usp-endpoint-id <id>', "the USP controller's endpoint ID", 'proto::fleetbrain')
    .option(
      '--provision <file>',
      'store per-device credentials (JSON from `fleetbrain sim --credentials`) before starting',
    )
    .action(async (o: ExecutorOptions) => {
      const config = loadConfig();
      const log = createLogger({ name: 'executor', level: config.env.LOG_LEVEL });
      const acs = acsConfigFromOptions(o);
      const usp = uspConfigFromOptions(o);
      const databaseUrl = requireDatabaseUrl(config);
      if (o.provision) {
        const rows = z.array(Credential).parse(JSON.parse(readFileSync(o.provision, 'utf8')));
        const db = connect(databaseUrl);
        await provisionCredentials(db.pool, CredentialCipher.fromEnv(), rows);
        await db.close();
        log.info({ devices: rows.length }, 'credentials stored (encrypted)');
      }
      const svc = await startCwmpService({ databaseUrl, log, acs });
      const controller = usp
        ? await startUsp(databaseUrl, usp, svc.gate, log).catch(async (err) => {
            await svc.close();
            throw err;
          })
        : undefined;
      onShutdown(async () => {
        await controller?.stop();
        await svc.close();
      });
    });
}

/** The USP controller with its own pool; writes are checked by the ACS's gate (the shared data models). */
async function startUsp(databaseUrl: string, usp: UspCliConfig, gate: SchemaGate, log: Logger) {
  const db = connect(databaseUrl, { max: 8, applicationName: 'fleetbrain-usp' });
  try {
    const runtime = await startUspRuntime({
      pool: db.pool,
      db: db.db,
      endpointId: usp.endpointId,
      ...(usp.mqttUrl ? { mqttUrl: usp.mqttUrl } : {}),
      ...(usp.ws ? { ws: usp.ws } : {}),
      gate,
      log: log.child({ component: 'usp' }),
    });
    log.info({ endpointId: usp.endpointId, mqtt: usp.mqttUrl, ws: runtime.wsUrl }, 'USP controller running');
    return {
      async stop() {
        await runtime.stop();
        await db.close();
      },
    };
  } catch (err) {
    await db.close();
    throw err;
  }
}
