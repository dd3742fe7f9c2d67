import { inject } from 'vitest';
import { UspController, type UspControllerOptions } from '../../executor/usp/controller.js';
import { memorySink } from '../../executor/usp/event-sink.js';
import { MqttMtp } from '../../executor/usp/mtp/mqtt.js';
import type { Mtp } from '../../executor/usp/mtp/mtp.js';
import { SimDevice } from '../../sim/device.js';
import { modelByKey } from '../../sim/models.js';
import { type AgentHost, agentTopic, controllerTopic, mqttAgentHost } from '../../sim/usp/host.js';

let n = 0;
/** A unique suffix per test so tests sharing the run's broker never see each other's topics. */
export function uniq(prefix: string): string {
  n += 1;
  return `${prefix}${process.pid}x${n}x${Date.now().toString(36)}`;
}

export const FAST = { minMs: 100, multiplier: 2, maxMs: 1_000 };

export function device(serial: string, firmware?: string, model = 'hgw500'): SimDevice {
  return new SimDevice({ model: modelByKey(model), serial, firmware });
}

export async function mqttController(
  opts: Partial<UspControllerOptions> & { url?: string; protocolVersion?: 5 | 4; mtps?: Mtp[] } = {},
) {
  const endpointId = opts.endpointId ?? `proto::${uniq('ctrl')}`;
  const sink = memorySink();
  const mtp = new MqttMtp({
    url: opts.url ?? inject('mqttUrl'),
    protocolVersion: opts.protocolVersion ?? 5,
    endpointId,
    subscriptions: [controllerTopic(endpointId)],
    replyTopic: controllerTopic(endpointId),
    backoff: FAST,
  });
  const controller = new UspController({
    endpointId,
    mtps: opts.mtps ?? [mtp],
    events: opts.events ?? sink,
    agentTopic,
    requestTimeoutMs: 2_000,
    ...opts,
  });
  await controller.start();
  return { controller, sink, mtp, endpointId };
}

export async function mqttAgents(opts: {
  controllerId: string;
  devices: SimDevice[];
  url?: string;
  protocolVersion?: 5 | 4;
  onboarded?: boolean;
  subscriptions?: Array<Record<string, string>>;
  fetchImage?: (url: string) => Promise<Buffer | null>;
  /** Periodic! interval in (unscaled) seconds; the agents run at timeScale 0.01. */
  periodicNotifIntervalS?: number;
}): Promise<AgentHost> {
  const host = mqttAgentHost({
    url: opts.url ?? inject('mqttUrl'),
    devices: opts.devices,
    protocolVersion: opts.protocolVersion,
    backoff: FAST,
    agent: {
      controllerId: opts.controllerId,
      timeScale: 0.01,
      rebootMs: 2_000,
      notifyRetryMs: 20_000,
      onboarded: opts.onboarded,
      subscriptions: opts.subscriptions,
      fetchImage: opts.fetchImage,
      periodicNotifIntervalS: opts.periodicNotifIntervalS,
    },
  });
  await host.start();
  return host;
}

export async function until(what: string, pred: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
