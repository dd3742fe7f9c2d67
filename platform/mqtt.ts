import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { portOpen, type Service, startService, waitFor } from './process.js';
import { mosquittoBin } from './tools.js';

/** A running mosquitto broker on loopback. `restart()` keeps the port (broker-outage tests). */
export interface MqttBroker {
  url: string;
  port: number;
  stop(): Promise<void>;
  restart(): Promise<void>;
  output(): string;
}

/**
 * Starts Debian's mosquitto (MQTT 5 and 3.1.1) on `host:port` with a generated config in `dir`.
 * Queue limits are lifted: a controller subscribed to every agent's notifications must not have
 * QoS 1 messages dropped by the broker's default per-client queue of 1 000 during a boot storm.
 */
export async function startMosquitto(opts: {
  dir: string;
  port: number;
  host?: string;
  persistence?: boolean;
}): Promise<MqttBroker> {
  const host = opts.host ?? '127.0.0.1';
  mkdirSync(opts.dir, { recursive: true });
  const conf = path.join(opts.dir, 'mosquitto.conf');
  writeFileSync(
    conf,
    [
      `listener ${opts.port} ${host}`,
      'allow_anonymous true',
      'max_inflight_messages 0',
      'max_queued_messages 0',
      'max_queued_bytes 0',
      'set_tcp_nodelay true',
      'log_dest stderr',
      'log_type error',
      'log_type warning',
      `persistence ${opts.persistence ? 'true' : 'false'}`,
      ...(opts.persistence ? [`persistence_location ${opts.dir}/`] : []),
      // As root mosquitto drops to the `mosquitto` user; keep root so it can read/write `dir`.
      ...(process.getuid?.() === 0 ? ['user root'] : []),
      '',
    ].join('\n'),
  );
  const bin = mosquittoBin();
  let service: Service | undefined;
  const start = async () => {
    const svc = startService('mosquitto', bin, ['-c', conf]);
    service = svc;
    await waitFor(
      `mosquitto on ${host}:${opts.port}`,
      async () => {
        if (svc.child.exitCode !== null) throw new Error(`mosquitto exited: ${svc.output().trim()}`);
        return portOpen(opts.port, host);
      },
      15_000,
    );
  };
  await start();
  return {
    url: `mqtt://${host}:${opts.port}`,
    port: opts.port,
    output: () => service?.output() ?? '',
    async stop() {
      await service?.stop();
    },
    async restart() {
      await service?.stop();
      await start();
    },
  };
}
