import type pg from 'pg';
import type { Db } from '../../db/client.js';
import type { Logger } from '../../platform/logger.js';
import { WriteBatcher } from '../persist.js';
import type { SchemaGate } from '../schema-gate.js';
import { UspController } from './controller.js';
import {
  batcherSink,
  createUspExecutor,
  deviceResolver,
  inventoryRegistrar,
  knownUspDevices,
} from './driver.js';
import { MqttMtp } from './mtp/mqtt.js';
import type { Mtp } from './mtp/mtp.js';
import { WsServerMtp } from './mtp/websocket.js';

export interface UspRuntimeOptions {
  pool: pg.Pool;
  db: Db;
  /** The controller's endpoint ID, e.g. `proto::fleetbrain` (or an `oui:` one in production). */
  endpointId: string;
  /** MQTT broker URL (mqtt:// or mqtts://); the controller subscribes to `usp/controller/<endpointId>`. */
  mqttUrl?: string;
  mqttVersion?: 5 | 4;
  mqttTls?: ConstructorParameters<typeof MqttMtp>[0]['tls'];
  /** WebSocket server for agents that connect directly (`ws://host:port/usp`). */
  ws?: { host?: string; port: number; tls?: { key: string | Buffer; cert: string | Buffer } };
  gate?: SchemaGate;
  log?: Logger;
}

export const controllerTopicOf = (endpointId: string) => `usp/controller/${endpointId}`;
export const agentTopicOf = (endpointId: string) => `usp/agent/${endpointId}`;

/** The USP side of an executor process (`fleetbrain executor` / `fleetbrain dev`): controller, MTPs, driver. */
export async function startUspRuntime(opts: UspRuntimeOptions) {
  const mtps: Mtp[] = [];
  if (opts.mqttUrl) {
    mtps.push(
      new MqttMtp({
        url: opts.mqttUrl,
        protocolVersion: opts.mqttVersion ?? 5,
        endpointId: opts.endpointId,
        subscriptions: [controllerTopicOf(opts.endpointId)],
        replyTopic: controllerTopicOf(opts.endpointId),
        tls: opts.mqttTls,
        sessionExpiryS: 3_600,
      }),
    );
  }
  const ws = opts.ws
    ? new WsServerMtp({
        endpointId: opts.endpointId,
        host: opts.ws.host,
        port: opts.ws.port,
        tls: opts.ws.tls,
      })
    : undefined;
  if (ws) mtps.push(ws);
  if (mtps.length === 0) throw new Error('USP controller needs at least one MTP (mqttUrl or ws)');
  const batcher = new WriteBatcher(opts.db);
  const known = await knownUspDevices(opts.pool);
  const controller = new UspController({
    endpointId: opts.endpointId,
    mtps,
    events: batcherSink(batcher),
    register: inventoryRegistrar(opts.pool, batcher),
    resolveDeviceId: deviceResolver(opts.pool),
    agentTopic: agentTopicOf,
    devices: known,
    log: opts.log,
  });
  await controller.start();
  const executor = createUspExecutor({
    pool: opts.pool,
    controller,
    gate: opts.gate,
    log: opts.log,
    batcher,
  });
  executor.start();
  return {
    controller,
    executor,
    wsUrl: ws?.url,
    async stop() {
      executor.stop();
      await controller.stop();
    },
  };
}
