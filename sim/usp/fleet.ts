import { type OutcomeTable, SimDevice } from '../device.js';
import { MODELS, modelByKey } from '../models.js';
import { type AgentHost, mqttAgentHost } from './host.js';

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
        agent: { controllerId: opts.controllerId, timeScale: opts.timeScale },
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
