import { attachEndpoint, type IgnoreReason } from '../../executor/usp/endpoint.js';
import { encodeInstance, osEndpointId } from '../../executor/usp/endpoint-id.js';
import { MqttMtp } from '../../executor/usp/mtp/mqtt.js';
import type { Mtp } from '../../executor/usp/mtp/mtp.js';
import { WsClientMtp } from '../../executor/usp/mtp/websocket.js';
import type { SimDevice } from '../device.js';
import { UspAgent, type UspAgentOptions } from './agent.js';

/** The MQTT topic a simulated agent listens on. */
export const agentTopic = (endpointId: string) => `usp/agent/${endpointId}`;
export const controllerTopic = (endpointId: string) => `usp/controller/${endpointId}`;

/**
 * One MTP connection carrying one or many simulated agents. Each agent keeps its own endpoint ID and
 * topic; sharing the TCP connection only saves sockets when a benchmark runs 100 000 agents.
 */
export class AgentHost {
  readonly agents = new Map<string, UspAgent>();
  readonly ignored: Partial<Record<IgnoreReason, number>> = {};

  constructor(readonly mtp: Mtp) {
    attachEndpoint(mtp, {
      isOwn: (to) => this.agents.has(to),
      onMessage: (ctx) => this.agents.get(ctx.to)?.handle(ctx),
      onIgnored: (reason) => {
        this.ignored[reason] = (this.ignored[reason] ?? 0) + 1;
      },
    });
    mtp.onStatus((up) => {
      if (!up) return;
      for (const a of this.agents.values()) a.onMtpUp();
    });
  }

  add(agent: UspAgent): UspAgent {
    this.agents.set(agent.endpointId, agent);
    return agent;
  }

  async start(): Promise<void> {
    await this.mtp.start();
  }

  powerOnAll(): void {
    for (const a of this.agents.values()) a.powerOn();
  }

  async stop(): Promise<void> {
    for (const a of this.agents.values()) a.stop();
    await this.mtp.stop();
  }
}

export interface SimAgentCommon extends Omit<UspAgentOptions, 'device' | 'mtp' | 'controllerAddress'> {
  controllerId: string;
}

/** A host of MQTT agents on one connection (MQTT 5 unless `protocolVersion: 4`). */
export function mqttAgentHost(opts: {
  url: string;
  devices: SimDevice[];
  agent: SimAgentCommon;
  protocolVersion?: 5 | 4;
  clientId?: string;
  localAddress?: string;
  backoff?: { minMs: number; multiplier: number; maxMs: number };
  /** MQTT QoS of the agents' Records (default 1, see MqttMtpOptions.qos). */
  qos?: 0 | 1;
}): AgentHost {
  // Endpoint IDs are needed before the MTP exists (its subscriptions are the agents' topics).
  const single = opts.devices.length === 1;
  const ids = opts.devices.map(
    (d) => (single && opts.agent.endpointId) || osEndpointId(d.model.oui, d.serial),
  );
  const first = ids[0] ?? 'proto::empty';
  const mtp = new MqttMtp({
    url: opts.url,
    protocolVersion: opts.protocolVersion ?? 5,
    endpointId: single ? first : `proto::simhost-${encodeInstance(first).slice(0, 40)}`,
    clientId: opts.clientId,
    subscriptions: ids.map(agentTopic),
    replyTopic: agentTopic(first),
    replyTopicFor: agentTopic,
    localAddress: opts.localAddress,
    backoff: opts.backoff,
    qos: opts.qos,
  });
  const host = new AgentHost(mtp);
  opts.devices.forEach((device, i) => {
    host.add(
      new UspAgent({
        ...opts.agent,
        endpointId: ids[i],
        device,
        mtp,
        controllerAddress: controllerTopic(opts.agent.controllerId),
      }),
    );
  });
  return host;
}

/** One WebSocket agent (WebSocket sessions are per endpoint, R-WS.4). */
export function wsAgentHost(opts: {
  url: string;
  device: SimDevice;
  agent: SimAgentCommon;
  backoff?: { minMs: number; multiplier: number; maxMs: number };
}): AgentHost {
  const endpointId = opts.agent.endpointId ?? osEndpointId(opts.device.model.oui, opts.device.serial);
  const mtp = new WsClientMtp({ url: opts.url, endpointId, backoff: opts.backoff });
  const host = new AgentHost(mtp);
  host.add(
    new UspAgent({ ...opts.agent, endpointId, device: opts.device, mtp, controllerAddress: 'controller' }),
  );
  return host;
}
