import type pg from 'pg';
import type { Db } from '../../db/client.js';
import type { Logger } from '../../platform/logger.js';
import { rates, startHealthWriter } from '../health.js';
import { WriteBatcher } from '../persist.js';
import type { SchemaGate } from '../schema-gate.js';
import { UspController } from './controller.js';
import {
  batcherSink,
  createUspExecutor,
  deviceResolver,
  inventoryProjection,
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
  /** How often the health row is written (default 5 s). */
  healthIntervalMs?: number;
}

/** The `fleet_health` component of the USP controller (rollouts pause while it is unhealthy). */
export const USP_HEALTH_COMPONENT = 'usp-controller';

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
  controller.onNotification(inventoryProjection(opts.pool, { log: opts.log }));
  // Fleet health (executor/health.ts): broker connection or WebSocket listener up.
  const notifiesPerMinute = new Map<number, number>();
  controller.onNotification(() => {
    const m = Math.floor(Date.now() / 60_000);
    notifiesPerMinute.set(m, (notifiesPerMinute.get(m) ?? 0) + 1);
    notifiesPerMinute.delete(m - 61);
  });
  const stopHealth = startHealthWriter(
    opts.pool,
    USP_HEALTH_COMPONENT,
    () => ({
      accepting: mtps.every((m) => m.isUp()),
      activeSessions: controller.pendingCount(),
      informsLastMinute: rates(notifiesPerMinute).informsLastMinute,
      // USP agents keep no periodic contact (unlike CWMP informs): a quiet minute after an onboarding
      // wave is not an outage, so no baseline is judged; the broker/listener connection is the signal.
      baselinePerMinute: 0,
    }),
    {
      intervalMs: opts.healthIntervalMs,
      onError: (err) => opts.log?.warn({ err }, 'usp health row not written'),
    },
  );
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
      stopHealth();
      executor.stop();
      await controller.stop();
    },
  };
}
