import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { connect } from '../db/client.js';
import { provisionCredentials } from '../executor/cwmp/driver.js';
import { startCwmpService } from '../executor/cwmp/service.js';
import { CredentialCipher } from '../executor/secrets.js';
import { startUspRuntime } from '../executor/usp/runtime.js';
import type { Config } from '../platform/config.js';
import type { Logger } from '../platform/logger.js';
import { startMosquitto } from '../platform/mqtt.js';
import { SimFleet } from '../sim/cwmp/fleet.js';
import { startUspFleet } from '../sim/usp/fleet.js';
import { DEV_OUTCOMES, seedDevCatalogue } from './dev-catalogue.js';

export const DEV_CONTROLLER_ID = 'proto::fleetbrain-dev';

/** The device key for stored CPE credentials: from the environment, else one kept in the data dir. */
function devCredentialKey(dataDir: string): string {
  if (process.env.FLEETBRAIN_CREDENTIAL_KEY) return process.env.FLEETBRAIN_CREDENTIAL_KEY;
  const file = path.join(dataDir, 'credential.key');
  if (!existsSync(file)) writeFileSync(file, randomBytes(32).toString('base64url'), { mode: 0o600 });
  return readFileSync(file, 'utf8').trim();
}

/**
 * The executor side of `fleetbrain dev`: an MQTT broker, the CWMP ACS and USP controller, and a
 * simulated mixed fleet (CWMP CPEs with digest auth, USP agents over MQTT) driving them.
 */
export async function startDevFleet(config: Config, databaseUrl: string, log: Logger) {
  const stops: Array<() => Promise<void>> = [];
  const stop = async () => {
    for (const s of stops.reverse()) await s().catch(() => {});
  };
  try {
    const e = config.env;
    const broker = await startMosquitto({
      dir: path.join(config.dataDir, 'mqtt'),
      port: e.FLEETBRAIN_MQTT_PORT,
      persistence: true,
    });
    stops.push(() => broker.stop());
    const cipher = new CredentialCipher(devCredentialKey(config.dataDir));
    const cwmp = await startCwmpService({
      databaseUrl,
      log: log.child({ component: 'executor' }),
      cipher,
      acs: { host: '127.0.0.1', port: e.FLEETBRAIN_ACS_PORT, auth: 'digest', unknownDevices: 'register' },
    });
    stops.push(() => cwmp.close());
    const db = connect(databaseUrl, { max: 8, applicationName: 'fleetbrain-usp' });
    stops.push(() => db.close());
    const usp = await startUspRuntime({
      pool: db.pool,
      db: db.db,
      endpointId: DEV_CONTROLLER_ID,
      mqttUrl: broker.url,
      // One schema registry per process: USP writes are checked against the same data models.
      gate: cwmp.gate,
      log: log.child({ component: 'usp' }),
    });
    stops.push(() => usp.stop());

    const sim = new SimFleet({
      acsUrl: `http://127.0.0.1:${e.FLEETBRAIN_ACS_PORT}/`,
      count: e.FLEETBRAIN_SIM_CWMP,
      periodicIntervalS: 60,
      jitter: 0.2,
      nat: { none: 0.8, udp_only: 0.1, blocked: 0.1 },
      seed: 1,
      secret: 'fleetbrain-dev',
      // The catalogue's bad image bricks some of the devices that install it.
      outcomes: DEV_OUTCOMES,
    });
    await sim.start();
    stops.push(() => sim.stop());
    // Sessions before this point are refused (401) and retried by the CPEs with their backoff.
    await provisionCredentials(
      db.pool,
      cipher,
      sim.devices.map((d) => ({
        deviceId: d.agent.device.id,
        username: d.username,
        password: d.password,
        crUsername: d.crUsername,
        crPassword: d.crPassword,
      })),
    );
    const catalogue = await seedDevCatalogue(db.db, sim);
    const uspFleet = await startUspFleet({
      mqttUrl: broker.url,
      controllerId: DEV_CONTROLLER_ID,
      count: e.FLEETBRAIN_SIM_USP,
    });
    stops.push(() => uspFleet.stop());
    return {
      summary: [
        `  ACS (CWMP)   ${cwmp.acs.url}`,
        `  MQTT broker  ${broker.url} (USP controller ${DEV_CONTROLLER_ID})`,
        `  simulated    ${sim.devices.length} CWMP CPEs, ${e.FLEETBRAIN_SIM_USP} USP agents`,
        ...catalogue,
      ],
      /** The ACS's and the USP controller's executors: the worker's activities drive them in the same process. */
      executors: { cwmp: cwmp.executor, usp: usp.executor },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
