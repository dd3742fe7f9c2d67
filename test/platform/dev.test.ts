import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../../platform/paths.js';
import { freePort } from '../../platform/process.js';

// `fleetbrain dev` as a user runs it: a real process tree, stopped with Ctrl-C (SIGINT).
describe('fleetbrain dev', () => {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'fb-dev-'));
  chmodSync(dataDir, 0o755);
  const ports = { api: 0, pg: 0, temporal: 0, ui: 0, acs: 0, mqtt: 0 };
  let env: NodeJS.ProcessEnv;
  let child: ChildProcess | undefined;

  beforeAll(async () => {
    for (const k of Object.keys(ports) as Array<keyof typeof ports>) ports[k] = await freePort();
    const yaml = readFileSync(path.join(repoRoot, 'temporal.yaml'), 'utf8')
      .replace(/address: 127\.0\.0\.1:7233/, `address: 127.0.0.1:${ports.temporal}`)
      .replace(/port: 7233/, `port: ${ports.temporal}`)
      .replace(/uiPort: 8233/, `uiPort: ${ports.ui}`);
    const yamlFile = path.join(dataDir, 'temporal.yaml');
    writeFileSync(yamlFile, yaml);
    env = {
      ...process.env,
      FLEETBRAIN_DATA_DIR: dataDir,
      API_PORT: String(ports.api),
      FLEETBRAIN_PG_PORT: String(ports.pg),
      TEMPORAL_YAML: yamlFile,
      FLEETBRAIN_ACS_PORT: String(ports.acs),
      FLEETBRAIN_MQTT_PORT: String(ports.mqtt),
      FLEETBRAIN_SIM_CWMP: '20',
      FLEETBRAIN_SIM_USP: '10',
      LOG_LEVEL: 'warn',
    };
    delete env.DATABASE_URL;
    delete env.TEMPORAL_ADDRESS;
  });

  afterAll(() => {
    child?.kill('SIGKILL');
    // Belt and braces: nothing of this test may outlive it.
    try {
      execFileSync('pkill', ['-9', '-f', dataDir]);
    } catch {}
    rmSync(dataDir, { recursive: true, force: true });
  });

  const start = () => {
    const c = spawn(path.join(repoRoot, 'bin', 'fleetbrain'), ['dev'], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    c.stdout?.on('data', (b: Buffer) => (out += b.toString()));
    c.stderr?.on('data', (b: Buffer) => (out += b.toString()));
    return { c, output: () => out };
  };
  const readyz = async () => {
    try {
      const res = await fetch(`http://127.0.0.1:${ports.api}/readyz`);
      return res.status;
    } catch {
      return 0;
    }
  };
  const processesOf = () => {
    try {
      return execFileSync('pgrep', ['-f', dataDir], { encoding: 'utf8' }).trim();
    } catch {
      return '';
    }
  };
  const stop = async (c: ChildProcess) => {
    const exited = new Promise<number | null>((r) => c.once('exit', (code) => r(code)));
    c.kill('SIGINT');
    return exited;
  };

  it('starts everything, stops cleanly on Ctrl-C, and keeps its data across a restart', async () => {
    const first = start();
    child = first.c;
    // The summary is printed once every part (API, executor, simulated fleet) has started.
    await expect
      .poll(first.output, { timeout: 240_000, interval: 500 })
      .toContain(`Temporal UI  http://127.0.0.1:${ports.ui}`);
    expect(first.output()).toContain('simulated    20 CWMP CPEs, 10 USP agents');
    await expect.poll(readyz, { timeout: 30_000, interval: 500 }).toBe(200);

    const url = `postgres://fleetbrain@127.0.0.1:${ports.pg}/fleetbrain`;
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    await db.query(`INSERT INTO fleet_health (component, at, healthy) VALUES ('dev-test', now(), true)`);
    await db.end();
    const connection = await Connection.connect({ address: `127.0.0.1:${ports.temporal}` });
    const client = new Client({ connection });
    await client.workflow.start('probe', {
      taskQueue: 'fleetbrain',
      workflowId: 'dev-test-probe',
      args: [{ id: 'x', awaitAck: true, ackTimeoutMs: 3_600_000 }],
    });
    await connection.close();

    expect(await stop(first.c)).toBe(0);
    expect(processesOf()).toBe('');

    const second = start();
    child = second.c;
    await expect.poll(second.output, { timeout: 240_000, interval: 500 }).toContain('Press Ctrl-C to stop.');
    await expect.poll(readyz, { timeout: 30_000, interval: 500 }).toBe(200);
    const db2 = new pg.Client({ connectionString: url });
    await db2.connect();
    const rows = await db2.query(`SELECT component FROM fleet_health WHERE component = 'dev-test'`);
    await db2.end();
    expect(rows.rowCount).toBe(1);
    const connection2 = await Connection.connect({ address: `127.0.0.1:${ports.temporal}` });
    const desc = await new Client({ connection: connection2 }).workflow
      .getHandle('dev-test-probe')
      .describe();
    await connection2.close();
    expect(desc.status.name).toBe('RUNNING');

    expect(await stop(second.c)).toBe(0);
    expect(processesOf()).toBe('');
  }, 600_000);
});
