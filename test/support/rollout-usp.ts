/**
 * USP and mixed-fleet drivers for the rollout e2e harness (rollout-stack.ts `FleetDriver`): the USP
 * controller (executor/usp/runtime.ts: MQTT, executor, health row) on its own mosquitto, simulated
 * USP agents multiplexed over a few MQTT connections, and for a mixed fleet the CWMP driver beside it
 * with one executor that routes each device by its inventory protocol (executor/by-protocol.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type pg from 'pg';
import { connect } from '../../db/client.js';
import type { firmwareImages } from '../../db/schema/index.js';
import { protocolRouter } from '../../executor/by-protocol.js';
import type { Executor } from '../../executor/executor.js';
import type { Operate } from '../../executor/usp/messages.js';
import { startUspRuntime } from '../../executor/usp/runtime.js';
import { createLogger } from '../../platform/logger.js';
import { startMosquitto } from '../../platform/mqtt.js';
import { freePort } from '../../platform/process.js';
import type { OutcomeTable } from '../../sim/device.js';
import { imageBytes, imageFileName, modelByKey, sha256Hex } from '../../sim/models.js';
import { startUspFleet } from '../../sim/usp/fleet.js';
import type { FleetDriver } from './rollout-stack.js';

const log = createLogger({ name: 'e2e-usp', level: 'warn' });

export interface UspGroup {
  serialPrefix: string;
  count: number;
  models: string[];
  /**
   * Periodic! interval (s): rollout cohorts report often (a device's silence through the outcome
   * timeout must mean something, and the gate's control group is judged by it), the rest less often.
   */
  periodicIntervalS: number;
}

/** The USP fleet: controller + executor on a private broker (so an outage is this test's alone). */
export async function startUspRolloutFleet(opts: {
  databaseUrl: string;
  pool: pg.Pool;
  groups: UspGroup[];
  outcomes: OutcomeTable;
  images: Array<{ model: string; version: string; from: string[] }>;
  /** Agents per MQTT connection (each keeps its own endpoint ID and topic). */
  perConnection?: number;
}): Promise<FleetDriver> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fleetbrain-e2e-usp-'));
  const broker = await startMosquitto({ dir, port: await freePort() });
  const dbh = connect(opts.databaseUrl, { max: 16 });
  const runtime = await startUspRuntime({
    pool: dbh.pool,
    db: dbh.db,
    endpointId: 'proto::fleetbrain-e2e',
    mqttUrl: broker.url,
    healthIntervalMs: 1_000,
    log,
  });
  const fleets: Array<Awaited<ReturnType<typeof startUspFleet>>> = [];
  /** Download() requests that reached each device, by msg_id (a resend of one request is not a second). */
  const downloads = new Map<string, Set<string>>();
  let total = 0;
  for (const g of opts.groups) {
    const f = await startUspFleet({
      mqttUrl: broker.url,
      controllerId: runtime.controller.endpointId,
      count: g.count,
      perConnection: opts.perConnection ?? 100,
      serialPrefix: g.serialPrefix,
      models: g.models,
      outcomes: opts.outcomes,
      backoff: { minMs: 200, multiplier: 2, maxMs: 2_000 },
      notifyRetryMs: 5_000,
      rebootMs: 1_000,
      periodicNotifIntervalS: g.periodicIntervalS,
    });
    fleets.push(f);
    total += g.count;
    for (const h of f.hosts)
      for (const a of h.agents.values()) {
        const handle = a.handle.bind(a);
        // Count what reached the device, at the device: the ground truth for "second Download".
        a.handle = (ctx) => {
          const op = ctx.msg.body.request?.operate as Operate | undefined;
          if (op?.command.endsWith('.Download()') && a.isOnline()) {
            const seen = downloads.get(a.device.id) ?? new Set<string>();
            downloads.set(a.device.id, seen.add(ctx.msg.header.msg_id));
          }
          handle(ctx);
        };
      }
  }
  // Onboarded: every agent is in the inventory with its firmware banks (dual-bank detection).
  const end = Date.now() + 300_000;
  for (;;) {
    // A saturated machine may time a connection out: that is retried until the deadline.
    const n = await opts.pool
      .query<{ n: number }>(
        `SELECT count(DISTINCT d.id)::int AS n FROM devices d JOIN device_parameters p ON p.device_id = d.id
          WHERE d.protocol = 'usp' AND p.path = 'Device.DeviceInfo.SoftwareVersion'`,
      )
      .then((r) => r.rows[0]?.n ?? 0)
      .catch(() => -1);
    if (n >= total) break;
    if (Date.now() > end) throw new Error(`only ${n} of ${total} USP agents onboarded`);
    await new Promise((r2) => setTimeout(r2, 250));
  }
  let up = true;
  return {
    name: 'usp',
    executor: runtime.executor,
    downloads: () => new Map([...downloads].map(([id, msgs]) => [id, msgs.size])),
    catalogue: () =>
      opts.images.map((i) => {
        const m = modelByKey(i.model);
        const b = imageBytes(m, i.version);
        return {
          version: i.version,
          models: [m.modelName],
          allowedFromVersions: i.from,
          url: `http://images.usp.test/fw/${imageFileName(m, i.version)}`,
          size: b.length,
          checksum: sha256Hex(b),
          status: 'approved',
        } satisfies typeof firmwareImages.$inferInsert;
      }),
    async outage() {
      if (!up) return;
      up = false;
      await broker.stop();
    },
    async recover() {
      if (up) return;
      await broker.restart();
      up = true;
    },
    async close() {
      for (const f of fleets) await f.stop();
      await runtime.stop();
      await dbh.close();
      await broker.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A mixed fleet: the CWMP driver and the USP driver side by side on one database; rollouts see one
 * executor that sends each device's task to its protocol's driver. The catalogue is the CWMP
 * simulator's (its file server), which USP agents download from too; an outage takes both down.
 */
export function mixedFleet(cwmp: FleetDriver, usp: FleetDriver, pool: pg.Pool): FleetDriver {
  const executor: Executor = protocolRouter(pool, { cwmp: cwmp.executor, usp: usp.executor });
  return {
    name: 'mixed',
    executor,
    downloads: () => new Map([...cwmp.downloads(), ...usp.downloads()]),
    catalogue: () => cwmp.catalogue(),
    async outage() {
      await Promise.all([cwmp.outage(), usp.outage()]);
    },
    async recover() {
      await Promise.all([cwmp.recover(), usp.recover()]);
    },
    async close() {
      await usp.close();
      await cwmp.close();
    },
  };
}
