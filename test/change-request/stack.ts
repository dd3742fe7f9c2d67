import type { FastifyInstance } from 'fastify';
import { buildServer } from '../../api/server.js';
import type { Executor } from '../../executor/executor.js';
import { createLogger } from '../../platform/logger.js';
import { WriteBatcher } from '../../executor/persist.js';
import type { UspController } from '../../executor/usp/controller.js';
import {
  batcherSink,
  createUspExecutor,
  deviceResolver,
  inventoryRegistrar,
} from '../../executor/usp/driver.js';
import { type FixtureServer, startFixtureServer } from '../../planner/fixture-server.js';
import { createLlm } from '../../planner/llm.js';
import { defaultPolicyData } from '../../planner/policy-gate.js';
import { loadPolicyEngine, type PolicyEngine } from '../../policies/engine.js';
import type { SimDevice } from '../../sim/device.js';
import type { FleetDevice } from '../../sim/cwmp/fleet.js';
import type { AgentHost } from '../../sim/usp/host.js';
import { createTestIdentity } from '../support/auth.js';
import { startTestWorker } from '../support/temporal.js';
import { type CwmpHarness, startCwmpHarness } from '../executor/harness.js';
import { device, mqttAgents, mqttController, until } from '../usp/harness.js';

/**
 * The real stack for change requests: PostgreSQL, the Temporal dev server and a worker, the API with
 * authentication, the CWMP ACS + executor with simulated CPEs over HTTP, the USP controller + executor
 * with simulated agents over MQTT, the shipped Rego policy in-process, and the planner pointed at a
 * local OpenAI-compatible server replaying AUTHORED FIXTURES (the model's side is written by hand).
 */

/** The fault this test's devices have: with their NTP client off they lose the clock (see below). */
export const CR_FAULT = { path: 'Device.Time.Enable', value: 'false' };

export async function startChangeStack(opts: { cwmp: number; usp: number; silenceMs: number }) {
  const h: CwmpHarness = await startCwmpHarness({
    fleet: { count: opts.cwmp, models: ['hgw500'], periodicIntervalS: 1, jitter: 0.2, seed: 11 },
  });
  // Fault model of this test (authored, not the simulator's): a CPE whose NTP client is switched off
  // loses its clock and with it the TLS session to the ACS — it stops informing and ignores
  // connection requests until its watchdog reboots it `silenceMs` later, still holding the bad value.
  const silent = new Set<FleetDevice>();
  const run = h.fleet.runSession.bind(h.fleet);
  h.fleet.runSession = async (d: FleetDevice) => {
    if (silent.has(d)) return null;
    const r = await run(d);
    if (!silent.has(d) && d.agent.device.value(CR_FAULT.path) === CR_FAULT.value) {
      silent.add(d);
      const t = setTimeout(() => {
        silent.delete(d);
        d.agent.queueEvent('1 BOOT');
        void h.fleet.runSession(d);
      }, opts.silenceMs);
      t.unref();
    }
    return r;
  };
  for (const d of h.fleet.devices) await h.fleet.runSession(d);
  h.fleet.startPeriodic();

  const batcher = new WriteBatcher(h.db.db);
  const c = await mqttController({
    events: batcherSink(batcher),
    register: inventoryRegistrar(h.db.pool, batcher),
    resolveDeviceId: deviceResolver(h.db.pool),
  });
  const controller: UspController = c.controller;
  const usp = createUspExecutor({ pool: h.db.pool, controller, sweepMs: 200, retryBaseMs: 200 });
  usp.start();
  const uspDevices = Array.from({ length: opts.usp }, (_, i) => device(`CRU${String(i).padStart(4, '0')}`));
  const host: AgentHost = await mqttAgents({ controllerId: c.endpointId, devices: uspDevices });
  const endpoints = [...host.agents.keys()];
  host.powerOnAll();
  await until('USP agents onboarded', () => endpoints.every((e) => controller.isOnboarded(e)), 30_000);
  let uspCount = 0;
  for (let i = 0; i < 150; i++) {
    const r = await h.db.pool.query<{ n: string }>(
      `SELECT count(*) AS n FROM devices WHERE protocol = 'usp'`,
    );
    uspCount = Number(r.rows[0]?.n ?? 0);
    if (uspCount >= opts.usp) break;
    await new Promise((r2) => setTimeout(r2, 200));
  }

  // Topology (stands in for the OSS import): alternate regions over both protocols.
  const all = await h.db.pool.query<{ id: string; protocol: string; serial_number: string }>(
    `SELECT id, protocol, serial_number FROM devices ORDER BY protocol, id`,
  );
  const regionOf = new Map<string, string>();
  all.rows.forEach((r, i) => {
    regionOf.set(r.id, ['north', 'south', 'east'][i % 3] as string);
  });
  for (const [id, region] of regionOf)
    await h.db.pool.query(`UPDATE devices SET region = $2 WHERE id = $1`, [id, region]);

  /** The simulated device behind an inventory id, whichever protocol it speaks. */
  const simOf = (id: string): SimDevice => {
    const row = all.rows.find((r) => r.id === id);
    if (!row) throw new Error(`no device ${id}`);
    if (row.protocol === 'cwmp') {
      const d = h.fleet.devices.find((x) => x.agent.device.id === id);
      if (!d) throw new Error(`no CWMP sim for ${id}`);
      return d.agent.device;
    }
    const d = uspDevices.find((x) => x.serial === row.serial_number);
    if (!d) throw new Error(`no USP sim for ${id}`);
    return d;
  };

  const policy: PolicyEngine = await loadPolicyEngine({ data: defaultPolicyData(), opaUrl: '' });
  const schemaFor = (k: { oui: string; productClass: string; softwareVersion: string }) => {
    const r = h.registry.resolve(k);
    return r.match === 'exact' ? r.schema : undefined;
  };
  const fixtures: FixtureServer = await startFixtureServer({});
  const executors: Partial<Record<'cwmp' | 'usp', Executor>> = { cwmp: h.executor, usp };
  const env = await startTestWorker({
    db: h.db.db,
    changeExecutors: executors,
    changeSchemaFor: schemaFor,
    changePolicy: policy,
    changePollMs: 150,
  });
  const llm = createLlm({ baseUrl: fixtures.baseUrl, model: 'fixture' });
  const server: FastifyInstance = (await buildServer(
    {
      db: h.db,
      temporal: { client: env.client, namespace: 'default', taskQueue: env.taskQueue },
      readiness: [],
      auth: {},
      llm,
      changeRequests: { schemaFor, policy, ssePollMs: 100 },
    },
    { logger: createLogger({ name: 'test-api', level: 'error' }) },
  )) as unknown as FastifyInstance;
  const alice = await createTestIdentity(h.db.db, 'alice', ['operator', 'approver']);
  const bob = await createTestIdentity(h.db.db, 'bob', ['approver']);
  const vic = await createTestIdentity(h.db.db, 'vic', ['viewer']);
  const plannerSvc = await createTestIdentity(h.db.db, 'svc-planner', ['operator'], { kind: 'service' });

  return {
    h,
    usp,
    host,
    controller,
    env,
    server,
    fixtures,
    policy,
    regionOf,
    devices: all.rows,
    simOf,
    who: { alice, bob, vic, planner: plannerSvc },
    async stop() {
      await server.close();
      await env.stop();
      await fixtures.close();
      await policy.close();
      usp.stop();
      await host.stop();
      await controller.stop();
      await h.stop();
    },
  };
}

export type ChangeStack = Awaited<ReturnType<typeof startChangeStack>>;
