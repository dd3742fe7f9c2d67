import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { migrate } from '../db/migrate.js';
import { type MqttBroker, startMosquitto } from '../platform/mqtt.js';
import { type EmbeddedPostgres, startPostgres } from '../platform/postgres.js';
import { freePort } from '../platform/process.js';
import { type DevServer, startTemporalDevServer } from '../platform/temporal-server.js';
import { opaBin } from '../platform/tools.js';
import { bundleWorkflows } from '../platform/worker.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Admin URL of the throwaway cluster (database `postgres`). */
    pgAdminUrl: string;
    /** A migrated database that tests clone with `CREATE DATABASE ... TEMPLATE`. */
    pgTemplate: string;
    temporalAddress: string;
    opaBin: string;
    /** Workflow bundle built once per run (webpack is slow; every worker shares it). */
    workflowBundlePath: string;
    /** A mosquitto broker (MQTT 5 and 3.1.1) on loopback for the USP MTP tests. */
    mqttUrl: string;
  }
}

/** One throwaway PostgreSQL and Temporal dev server for the whole run, on free loopback ports. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // The broker starts in well under a second, so it runs even for the unit-test shortcut below.
  const mqttDir = mkdtempSync(path.join(os.tmpdir(), 'fleetbrain-mqtt-'));
  const broker: MqttBroker = await startMosquitto({ dir: mqttDir, port: await freePort() });
  project.provide('mqttUrl', broker.url);
  const stopBroker = async () => {
    await broker.stop();
    rmSync(mqttDir, { recursive: true, force: true });
  };
  // Developer shortcut for pure unit tests; the test command always starts the services.
  if (process.env.FB_TEST_SERVICES === 'none') return stopBroker;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fleetbrain-test-'));
  // As root, the cluster runs as `postgres`, which must be able to reach its data directory.
  chmodSync(dir, 0o755);
  let postgres: EmbeddedPostgres | undefined;
  let temporal: DevServer | undefined;
  const teardown = async () => {
    await Promise.allSettled([temporal?.stop(), postgres?.stop(), stopBroker()]);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const [pgPort, tPort] = [await freePort(), await freePort()];
    const bundlePath = path.join(dir, 'workflow-bundle.js');
    const bundling = bundleWorkflows().then(({ code }) => writeFileSync(bundlePath, code));
    bundling.catch(() => {}); // awaited below; avoid an unhandled rejection while services start
    [postgres, temporal] = await Promise.all([
      startPostgres({
        dataDir: path.join(dir, 'pg'),
        port: pgPort,
        database: 'fleetbrain_template',
        ephemeral: true,
      }),
      startTemporalDevServer({
        port: tPort,
        logLevel: 'error',
        searchAttributes: { FleetbrainKind: 'Keyword', FleetbrainStatus: 'Keyword' },
      }),
    ]);
    await migrate(postgres.url);
    // A template must have no open connections when cloned; migrate() closed its own.
    const admin = new pg.Client({ connectionString: postgres.url.replace(/\/[^/]+$/, '/postgres') });
    await admin.connect();
    await admin.query(`ALTER DATABASE fleetbrain_template WITH IS_TEMPLATE true`);
    await admin.end();
    project.provide('pgAdminUrl', postgres.url.replace(/\/[^/]+$/, '/postgres'));
    project.provide('pgTemplate', 'fleetbrain_template');
    project.provide('temporalAddress', temporal.address);
    project.provide('opaBin', opaBin());
    await bundling;
    project.provide('workflowBundlePath', bundlePath);
  } catch (err) {
    await teardown();
    throw err;
  }
  return teardown;
}
