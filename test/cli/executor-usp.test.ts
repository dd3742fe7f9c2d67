import { type ChildProcess, spawn } from 'node:child_process';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { type ExecutorOptions, uspConfigFromOptions } from '../../cli/executor.js';
import { ConfigError } from '../../platform/config.js';
import { repoRoot } from '../../platform/paths.js';
import type { AgentHost } from '../../sim/usp/host.js';
import { createTestDatabase } from '../support/db.js';
import { device, mqttAgents, uniq } from '../usp/harness.js';

const base: ExecutorOptions = {
  host: '127.0.0.1',
  port: '0',
  auth: 'digest',
  unknownDevices: 'register',
  maxSessions: '2000',
  admissionWaitMs: '5000',
  uspEndpointId: 'proto::fleetbrain',
  uspWsHost: '127.0.0.1',
};

describe('fleetbrain executor --usp-*', () => {
  it('runs no controller without an MTP, and one per MTP given', () => {
    expect(uspConfigFromOptions(base)).toBeUndefined();
    expect(uspConfigFromOptions({ ...base, uspMqttUrl: 'mqtts://broker:8883', uspWsPort: '5683' })).toEqual({
      endpointId: 'proto::fleetbrain',
      mqttUrl: 'mqtts://broker:8883',
      ws: { host: '127.0.0.1', port: 5683 },
    });
  });

  it.each([
    [{ uspMqttUrl: 'http://broker' }, /--usp-mqtt-url http:\/\/broker: the scheme must be mqtt: or mqtts:/],
    [{ uspMqttUrl: 'broker:1883' }, /--usp-mqtt-url broker:1883: the scheme must be/],
    [{ uspMqttUrl: '::nope' }, /--usp-mqtt-url ::nope: not a URL/],
    [{ uspWsPort: '70000' }, /--usp-ws-port 70000: not a TCP port/],
    [
      { uspWsPort: '1883', uspEndpointId: 'fleetbrain' },
      /--usp-endpoint-id fleetbrain: not a USP endpoint ID/,
    ],
  ])('refuses %o with a specific error', (o, message) => {
    const run = () => uspConfigFromOptions({ ...base, ...o });
    expect(run).toThrow(ConfigError);
    expect(run).toThrow(message);
  });

  describe('as a real process on the test broker', () => {
    let child: ChildProcess | undefined;
    let host: AgentHost | undefined;
    let db: Awaited<ReturnType<typeof createTestDatabase>> | undefined;
    afterAll(async () => {
      child?.kill('SIGKILL');
      await host?.stop();
      await db?.drop();
    });

    it('onboards USP agents into the inventory, next to the ACS', async () => {
      db = await createTestDatabase();
      const controllerId = `proto::${uniq('exec')}`;
      let out = '';
      child = spawn(
        process.execPath,
        [
          '--import',
          'tsx',
          'cli/main.ts',
          'executor',
          '--port',
          '0',
          '--usp-mqtt-url',
          inject('mqttUrl'),
        ].concat(['--usp-endpoint-id', controllerId]),
        {
          cwd: repoRoot,
          env: {
            ...process.env,
            DATABASE_URL: db.url,
            FLEETBRAIN_CREDENTIAL_KEY: 'executor-usp-test-key',
            LOG_LEVEL: 'info',
          },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      for (const s of [child.stdout, child.stderr]) s?.on('data', (c: Buffer) => (out += c.toString()));
      await expect.poll(() => out, { timeout: 180_000, interval: 200 }).toContain('USP controller running');
      host = await mqttAgents({ controllerId, devices: [device('CLI001'), device('CLI002')] });
      host.powerOnAll();
      const inventory = async () =>
        (
          await db?.pool.query<{ id: string }>(`SELECT id FROM devices WHERE protocol = 'usp' ORDER BY id`)
        )?.rows.map((r) => r.id);
      await expect
        .poll(inventory, { timeout: 30_000, interval: 250 })
        .toEqual(['00A0C9-HGW-500-CLI001', '00A0C9-HGW-500-CLI002']);
      const exited = new Promise<number | null>((r) => child?.once('exit', (code) => r(code)));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    }, 300_000);
  });
});
