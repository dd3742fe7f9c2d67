/**
 * The real stack for end-to-end rollout tests: PostgreSQL (a cloned test database), the Temporal dev
 * server with a restartable worker on a fixed task queue, the PostgreSQL fleet and firmware catalogue,
 * a webhook receiver, and a fleet driver. The fleet/executor is a parameter (`FleetDriver`): the CWMP
 * driver below runs the real ACS and a simulated CPE fleet in this process; a USP or mixed-fleet
 * driver plugs in the same way.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client, Connection } from '@temporalio/client';
import type { Worker } from '@temporalio/worker';
import { inject } from 'vitest';
import { dbRolloutFleet, dbRolloutImages } from '../../activities/rollout.js';
import { type RolloutSpec, type RolloutSpecInput, rolloutSpecSchema } from '../../domain/rollout/spec.js';
import { firmwareImages } from '../../db/schema/index.js';
import { provisionCredentials } from '../../executor/cwmp/driver.js';
import { startCwmpService } from '../../executor/cwmp/service.js';
import type { Executor } from '../../executor/executor.js';
import { CredentialCipher } from '../../executor/secrets.js';
import { guardedFetch } from '../../platform/egress.js';
import { createLogger } from '../../platform/logger.js';
import { createWorker } from '../../platform/worker.js';
import { firmwareRollout } from '../../workflows/firmwareRollout.js';
import type { OutcomeTable } from '../../sim/device.js';
import { SimFleet } from '../../sim/cwmp/fleet.js';
import { modelByKey } from '../../sim/models.js';
import { createTestDatabase } from './db.js';

/** What a rollout e2e needs from a fleet: its executor, outages, and what devices received. */
export interface FleetDriver {
  readonly name: string;
  /** The executor rollout activities drive. Stable across outages (the same object keeps working). */
  executor: Executor;
  /** Download (or USP firmware transfer) requests each device received, by device id. */
  downloads(): Map<string, number>;
  /** Catalogue rows (firmware_images) for the images this fleet can install. */
  catalogue(): Array<typeof firmwareImages.$inferInsert>;
  /** Take the ACS (or broker) down: no sessions, no health rows. */
  outage(): Promise<void>;
  recover(): Promise<void>;
  close(): Promise<void>;
}

const log = createLogger({ name: 'e2e', level: 'warn' });

/** The CWMP fleet: the real ACS (digest auth) and a simulated fleet in this process. */
export interface SimGroup {
  /** Serial prefix of the group's CPEs (their serials are prefix + 7 digits). */
  serialPrefix: string;
  count: number;
  models: string[];
  periodicIntervalS: number;
}

export async function startCwmpFleet(opts: {
  databaseUrl: string;
  pool: import('pg').Pool;
  /**
   * Groups of CPEs with their own periodic interval: rollout cohorts inform often (a device's
   * silence through the outcome timeout must mean something), the rest of the fleet less often.
   */
  groups: SimGroup[];
  outcomes: OutcomeTable;
  /** Images for the catalogue: model key, version, versions it may replace. */
  images: Array<{ model: string; version: string; from: string[] }>;
}): Promise<FleetDriver> {
  const cipher = new CredentialCipher(randomBytes(32).toString('base64'));
  const acsOpts = { host: '127.0.0.1', auth: 'digest' as const, unknownDevices: 'register' as const };
  let svc = await startCwmpService({
    databaseUrl: opts.databaseUrl,
    log,
    cipher,
    acs: { ...acsOpts, port: 0 },
    sweepMs: 1000,
  });
  const port = Number(new URL(svc.acs.url).port);
  let up = true;
  // One executor object for the whole test: it forwards to the service that is up.
  const executor: Executor = {
    protocol: 'cwmp',
    submit: (r) => svc.executor.submit(r),
    status: (r, d) => svc.executor.status(r, d),
    cancel: (r, d) => svc.executor.cancel(r, d),
    releaseLeases: (o, d) => svc.executor.releaseLeases(o, d),
    leases: (d) => svc.executor.leases(d),
  };
  // Spread the CPEs' sessions over several loopback source addresses (ulimit, ephemeral ports).
  const localAddresses = Array.from({ length: 8 }, (_, i) => `127.0.${10 + i}.1`);
  const sims: SimFleet[] = [];
  for (const [i, g] of opts.groups.entries()) {
    const sim = new SimFleet({
      acsUrl: svc.acs.url,
      count: g.count,
      models: g.models,
      periodicIntervalS: g.periodicIntervalS,
      jitter: 0.5,
      nat: { none: 1 },
      outcomes: opts.outcomes,
      seed: 7 + i,
      secret: 'e2e',
      serialPrefix: g.serialPrefix,
      localAddresses,
    });
    await sim.start();
    sims.push(sim);
  }
  const devices = sims.flatMap((x) => x.devices);
  const counts = new Map<string, number>();
  for (const d of devices) {
    const a = d.agent;
    const answer = a.answer.bind(a);
    // Count what reached the device, at the device: the test's ground truth for "second Download".
    a.answer = (m, ns) => {
      if (m.name === 'Download') counts.set(a.device.id, (counts.get(a.device.id) ?? 0) + 1);
      return answer(m, ns);
    };
  }
  await provisionCredentials(
    opts.pool,
    cipher,
    devices.map((d) => ({
      deviceId: d.agent.device.id,
      username: d.username,
      password: d.password,
      crUsername: d.crUsername,
      crPassword: d.crPassword,
    })),
  );
  // First contact (bootstrap, discovery of each model's tree), then periodic informs.
  for (const sim of sims) {
    const first = await sim.storm({ concurrency: 200, retryScale: 0.02, deadlineMs: 300_000 });
    if (first.ok < sim.devices.length)
      throw new Error(`only ${first.ok} of ${sim.devices.length} CPEs completed first contact`);
  }
  for (const sim of sims) sim.startPeriodic();
  const sim = sims[0]!;
  return {
    name: 'cwmp',
    executor,
    downloads: () => counts,
    catalogue: () =>
      opts.images.map((i) => {
        const m = modelByKey(i.model);
        const info = sim.imageInfo(m, i.version);
        return {
          version: i.version,
          models: [m.modelName],
          allowedFromVersions: i.from,
          url: info.url,
          size: info.size,
          checksum: info.sha256,
          status: 'approved',
        };
      }),
    async outage() {
      if (!up) return;
      up = false;
      await svc.close();
    },
    async recover() {
      if (up) return;
      svc = await startCwmpService({
        databaseUrl: opts.databaseUrl,
        log,
        cipher,
        acs: { ...acsOpts, port },
        sweepMs: 1000,
      });
      up = true;
    },
    async close() {
      for (const x of sims) await x.stop();
      if (up) await svc.close();
    },
  };
}

export interface RolloutStack {
  db: Awaited<ReturnType<typeof createTestDatabase>>;
  fleet: FleetDriver;
  client: Client;
  taskQueue: string;
  hooks: Array<{ event: string; body: Record<string, unknown> }>;
  hookUrl: string;
  minuteMs: number;
  /** Shut the worker down mid-flight (in-flight activities are cancelled) … */
  stopWorker(): Promise<void>;
  /** … and start a new one on the same task queue. */
  startWorker(): Promise<void>;
  close(): Promise<void>;
}

/** Database, Temporal worker (restartable), webhook receiver and the fleet built by `makeFleet`. */
export async function startRolloutStack(opts: {
  minuteMs: number;
  makeFleet: (db: { url: string; pool: import('pg').Pool }) => Promise<FleetDriver>;
}): Promise<RolloutStack> {
  const db = await createTestDatabase();
  const fleet = await opts.makeFleet({ url: db.url, pool: db.pool });
  await db.db.insert(firmwareImages).values(fleet.catalogue());
  const hooks: RolloutStack['hooks'] = [];
  const hookServer = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      const parsed = JSON.parse(body) as Record<string, unknown>;
      hooks.push({ event: String(parsed.event), body: parsed });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => hookServer.listen(0, '127.0.0.1', r));
  const hookUrl = `http://127.0.0.1:${(hookServer.address() as AddressInfo).port}/hook`;

  const address = inject('temporalAddress');
  const taskQueue = `e2e-${randomUUID()}`;
  const bundle = { code: readFileSync(inject('workflowBundlePath'), 'utf8') };
  const connection = await Connection.connect({ address });
  const client = new Client({ connection, namespace: 'default' });
  let current: { worker: Worker; running: Promise<void>; close(): Promise<void> } | undefined;

  const startWorker = async () => {
    const { worker, connection: nc } = await createWorker({
      address,
      namespace: 'default',
      taskQueue,
      deps: {
        logger: log,
        workerId: `e2e-${randomUUID().slice(0, 8)}`,
        db: db.db,
        rolloutExecutor: fleet.executor,
        // Health history in 15-s buckets, judged over windows of the cohort's 30-s inform interval.
        rolloutFleet: dbRolloutFleet(db.db, {
          healthBucketMs: 15 * opts.minuteMs,
          // The executor writes a row every 5 s; on a loaded box this one process stalls for
          // seconds, so a row reads as stale only after 20 s (an outage is still seen within it).
          maxRowAgeMs: 20_000,
          log,
        }),
        rolloutImages: dbRolloutImages(db.db),
        rolloutMinuteMs: opts.minuteMs,
        // The webhook receiver is on loopback: allowed explicitly (the default refuses non-public targets).
        rolloutFetch: guardedFetch({ allowCidrs: ['127.0.0.1/32'] }),
      },
      workflowBundle: bundle,
    });
    const running = worker.run();
    current = {
      worker,
      running,
      async close() {
        worker.shutdown();
        await running;
        await nc.close();
      },
    };
  };
  await startWorker();
  return {
    db,
    fleet,
    client,
    taskQueue,
    hooks,
    hookUrl,
    minuteMs: opts.minuteMs,
    async stopWorker() {
      const c = current;
      current = undefined;
      await c?.close();
    },
    startWorker,
    async close() {
      await current?.close();
      await fleet.close();
      await connection.close();
      await new Promise<void>((r) => hookServer.close(() => r()));
      await db.drop();
    },
  };
}

/** Devices of one model whose serial starts with one of the prefixes (disjoint cohorts per test). */
export function serialCohort(productClass: string, prefixes: string[]) {
  return {
    and: [
      { field: 'productClass', op: 'eq', value: productClass },
      { or: prefixes.map((p) => ({ field: 'serialNumber', op: 'prefix', value: p })) },
    ],
  };
}

/**
 * The e2e rollout: waves of 10, 40 and 100 %, no approvals, no soak, halts, pauses and completion
 * posted to the stack's webhook. Each fleet names its outcome timeout (its devices' pace) and the
 * stratum size its cohorts fill; `extra` overrides the rest per test.
 */
export function e2eSpec(
  stack: RolloutStack,
  o: {
    name: string;
    image: string;
    cohort: unknown;
    outcomeTimeoutMinutes: number;
    minStratumSize: number;
  },
  extra: Partial<RolloutSpecInput> = {},
): RolloutSpec {
  return rolloutSpecSchema.parse({
    ...o,
    waves: { kind: 'steps', steps: [{ percent: 10 }, { percent: 40 }, { percent: 100 }] },
    rateCaps: { perMinute: 1200 },
    gate: { theta: 0.01, hardCeilingBricked: 500, decisionDeadlineMinutes: 100_000 },
    soakMinutes: 0,
    approvals: { beforeStart: false },
    notifications: [{ url: stack.hookUrl, events: ['halt', 'pause', 'complete'] }],
    ...extra,
  });
}

/** Start a rollout (proposed by `proposerId`, no approvals required) on the stack's scaled minute. */
export function startRollout(stack: RolloutStack, id: string, spec: RolloutSpec, proposerId = 'alice') {
  return stack.client.workflow.start(firmwareRollout, {
    taskQueue: stack.taskQueue,
    workflowId: id,
    args: [
      {
        rolloutId: id,
        spec,
        seed: id,
        proposer: { id: proposerId, kind: 'user' } as never,
        requiredApprovals: 0,
        minuteMs: stack.minuteMs,
        pollMs: 2 * stack.minuteMs,
      },
    ],
  });
}
