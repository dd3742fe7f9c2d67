import { type OutcomeTable, SimDevice } from '../device.js';
import { imageBytes, MODELS, modelByKey } from '../models.js';
import { type AgentHost, mqttAgentHost } from './host.js';

/**
 * The simulator's firmware images by URL: the last path segment `<model>-<version>.img` (as the CWMP
 * simulator's file server names them) is built in-process; anything else is fetched over HTTP(S).
 */
export async function simImage(url: string): Promise<Buffer | null> {
  const m = /\/([a-z0-9]+)-([^/]+)\.img$/.exec(url);
  const model = m ? MODELS.find((x) => x.key === m[1]) : undefined;
  if (m && model) return imageBytes(model, m[2] as string);
  try {
    const res = await fetch(url);
    return res.ok ? Buffer.from(await res.arrayBuffer()) : null;
  } catch {
    return null;
  }
}

/**
 * A simulated USP fleet for `fleetbrain dev` and load tests: `count` agents of the TR-181 models,
 * `perConnection` agents per MQTT connection, sharing device models, firmware outcomes and faults
 * with the CWMP simulator (sim/device.ts).
 */
export async function startUspFleet(opts: {
  mqttUrl: string;
  controllerId: string;
  count: number;
  perConnection?: number;
  serialPrefix?: string;
  models?: string[];
  outcomes?: OutcomeTable;
  timeScale?: number;
  /** Image fetch for Download(); default: the image a `<model>-<version>.img` URL names, built in-process. */
  fetchImage?: (url: string) => Promise<Buffer | null>;
  rebootMs?: number;
  notifyRetryMs?: number;
  /** Periodic! interval in seconds (TR-181 PeriodicNotifInterval); absent: no periodic contact. */
  periodicNotifIntervalS?: number;
  backoff?: { minMs: number; multiplier: number; maxMs: number };
}): Promise<{ hosts: AgentHost[]; stop(): Promise<void> }> {
  const models = (opts.models ?? MODELS.filter((m) => m.root === 'Device.').map((m) => m.key)).map(
    modelByKey,
  );
  const per = opts.perConnection ?? 200;
  const hosts: AgentHost[] = [];
  for (let i = 0; i < opts.count; i += per) {
    const devices: SimDevice[] = [];
    for (let j = i; j < Math.min(opts.count, i + per); j++) {
      const model = models[j % models.length];
      if (!model) continue;
      devices.push(
        new SimDevice({
          model,
          serial: `${opts.serialPrefix ?? 'USP'}${String(j).padStart(6, '0')}`,
          outcomes: opts.outcomes,
        }),
      );
    }
    hosts.push(
      mqttAgentHost({
        url: opts.mqttUrl,
        devices,
        backoff: opts.backoff,
        agent: {
          controllerId: opts.controllerId,
          timeScale: opts.timeScale,
          fetchImage: opts.fetchImage ?? simImage,
          rebootMs: opts.rebootMs,
          notifyRetryMs: opts.notifyRetryMs,
          periodicNotifIntervalS: opts.periodicNotifIntervalS,
        },
      }),
    );
  }
  for (const h of hosts) {
    await h.start();
    h.powerOnAll();
  }
  return {
    hosts,
    async stop() {
      await Promise.all(hosts.map((h) => h.stop()));
    },
  };
}
