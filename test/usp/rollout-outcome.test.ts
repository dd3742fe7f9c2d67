/**
 * What a firmware rollout reads from USP devices (the cause of the withdrawn all-USP and mixed e2e
 * tests: USP devices were classified as bricks after the rollout's download). Real mosquitto and
 * PostgreSQL; the rollout side is the real reader (activities/rollout.ts dbRolloutFleet) and the
 * real classifier (domain/rollout/outcome.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dbRolloutFleet } from '../../activities/rollout.js';
import { classifyOutcome, type FleetHealth } from '../../domain/rollout/outcome.js';
import type { DeviceTaskStatus, StepRef } from '../../executor/executor.js';
import { WriteBatcher } from '../../executor/persist.js';
import type { UspController } from '../../executor/usp/controller.js';
import {
  batcherSink,
  createUspExecutor,
  deviceResolver,
  inventoryProjection,
  inventoryRegistrar,
} from '../../executor/usp/driver.js';
import type { Operate } from '../../executor/usp/messages.js';
import { SimDevice } from '../../sim/device.js';
import { imageBytes, modelByKey, sha256Hex } from '../../sim/models.js';
import type { AgentHost } from '../../sim/usp/host.js';
import { createTestDatabase } from '../support/db.js';
import { mqttAgents, mqttController, until } from './harness.js';

const hgw = modelByKey('hgw500');
const images: Record<string, Buffer> = {
  'http://files.test/hgw500-2.1.0.img': imageBytes(hgw, '2.1.0'),
  'http://files.test/hgw500-2.2.0.img': imageBytes(hgw, '2.2.0'),
  'http://files.test/hgw500-3.0.0.img': imageBytes(hgw, '3.0.0'),
};
const download = (version: string) => {
  const url = `http://files.test/hgw500-${version}.img`;
  const b = images[url] as Buffer;
  return { kind: 'download' as const, url, version, fileSize: b.length, checksum: sha256Hex(b) };
};
const OUTCOME_TIMEOUT_MS = 60_000;
const healthy = (from: number, to: number): FleetHealth => ({
  samples: [
    { at: from, healthy: true },
    { at: to, healthy: true },
  ],
  maxStalenessMs: to - from + 1,
});

describe('USP devices as a firmware rollout reads them', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let controller: UspController;
  let exec: ReturnType<typeof createUspExecutor>;
  let host: AgentHost;
  /** Inventory id → endpoint ID, and Download()/Activate() requests each agent received. */
  const eidOf = new Map<string, string>();
  const received = new Map<string, string[]>();
  let good: string;
  let brick: string;
  let live: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    const batcher = new WriteBatcher(db.db);
    const c = await mqttController({
      events: batcherSink(batcher),
      register: inventoryRegistrar(db.pool, batcher),
      resolveDeviceId: deviceResolver(db.pool),
    });
    controller = c.controller;
    controller.onNotification(inventoryProjection(db.pool));
    exec = createUspExecutor({ pool: db.pool, controller, batcher, sweepMs: 200, retryBaseMs: 200 });
    exec.start();
    const outcomes = { 'hgw500@3.0.0': { brick: 1 } };
    host = await mqttAgents({
      controllerId: c.endpointId,
      devices: ['RO0001', 'RO0002', 'RO0003'].map(
        (serial) => new SimDevice({ model: hgw, serial, firmware: '2.1.0', outcomes }),
      ),
      fetchImage: async (url) => images[url] ?? null,
      // 20 s at the harness's time scale of 0.01: a Periodic! every 200 ms.
      periodicNotifIntervalS: 20,
    });
    for (const a of host.agents.values()) {
      const handle = a.handle.bind(a);
      a.handle = (ctx) => {
        const op = ctx.msg.body.request?.operate as Operate | undefined;
        if (op && a.isOnline())
          received.set(a.device.serial, [...(received.get(a.device.serial) ?? []), op.command]);
        handle(ctx);
      };
    }
    host.powerOnAll();
    const eids = [...host.agents.keys()];
    await until('all onboarded', () => eids.every((e) => controller.isOnboarded(e)), 30_000);
    const ids = eids.map((e) => controller.deviceIdFor(e));
    for (const [i, id] of ids.entries()) eidOf.set(id, eids[i] as string);
    [good, brick, live] = ids as [string, string, string];
  }, 60_000);
  afterAll(async () => {
    exec?.stop();
    await host?.stop();
    await controller?.stop();
    await db?.drop();
  });

  const agentOf = (id: string) => host.agents.get(eidOf.get(id) as string)!;

  /** Polls `read` until `ok` holds for its answer (conditions, not wall time: the machine is loaded). */
  async function poll<T>(what: string, read: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 30_000) {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const v = await read();
      if (ok(v)) return v;
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(v)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  const settled = async (ref: StepRef): Promise<DeviceTaskStatus> =>
    (
      await poll(
        `task of ${ref.scope} settled`,
        () => exec.status(ref),
        (s) => ['done', 'failed', 'expired'].includes(s[0]?.state ?? ''),
      )
    )[0]!;

  async function classify(id: string, dispatchedAt: number, target: string, previous: string, now: number) {
    const fleet = dbRolloutFleet(db.db);
    const seen = await fleet.observe([id], dispatchedAt - 1_000, Date.now());
    return {
      events: seen.events.get(id) ?? [],
      outcome: classifyOutcome(seen.events.get(id) ?? [], healthy(dispatchedAt, now), {
        dispatchedAt,
        now,
        targetVersion: target,
        previousVersion: previous,
        outcomeTimeoutMs: OUTCOME_TIMEOUT_MS,
        soakMs: 0,
        bootLoopBoots: 3,
      }),
    };
  }

  it("the Executor's download runs the image: one Download(), done on the Boot! into it, read as success", async () => {
    const ref = { scope: 'ro-good', step: 'wave-0/stage-0/download' };
    const at = Date.now();
    const [sub] = await exec.submit({
      ref,
      devices: [good],
      operation: download('2.2.0'),
      deadline: new Date(at + OUTCOME_TIMEOUT_MS),
      owner: 'ro-good',
    });
    expect(sub?.outcome).toBe('queued');
    const s = await settled(ref);
    expect(s.state).toBe('done');
    expect(s.result?.transfer?.version).toBe('2.2.0');
    expect(agentOf(good).device.firmware).toBe('2.2.0');
    expect(received.get(agentOf(good).device.serial)).toEqual([
      'Device.DeviceInfo.FirmwareImage.2.Download()',
    ]);
    // The Boot! was stored before the task completed: the rollout reads it as the target image.
    const { events, outcome } = await classify(good, at, '2.2.0', '2.1.0', Date.now());
    expect(events).toContainEqual(expect.objectContaining({ kind: 'boot', softwareVersion: '2.2.0' }));
    expect(outcome.outcome).toBe('success');
    await poll(
      'inventory follows Boot!',
      () => db.pool.query<{ v: string }>(`SELECT software_version AS v FROM devices WHERE id = $1`, [good]),
      (r) => r.rows[0]?.v === '2.2.0',
    );
    await exec.releaseLeases('ro-good');
  });

  it('an image already in the other bank is activated, not transferred again (the device runs it)', async () => {
    // After the upgrade above 2.1.0 sits in bank 1: downloading it again is an Activate().
    const ref = { scope: 'ro-back', step: 'rollback/download' };
    const at = Date.now();
    await exec.submit({
      ref,
      devices: [good],
      operation: download('2.1.0'),
      deadline: new Date(at + OUTCOME_TIMEOUT_MS),
      owner: 'ro-back',
    });
    const s = await settled(ref);
    expect(s.state).toBe('done');
    expect(s.result?.transfer?.version).toBe('2.1.0');
    expect(agentOf(good).device.firmware).toBe('2.1.0');
    expect(received.get(agentOf(good).device.serial)).toEqual([
      'Device.DeviceInfo.FirmwareImage.2.Download()',
      'Device.DeviceInfo.FirmwareImage.1.Activate()',
    ]);
    // For the rollout of 2.2.0 this device is now reverted, and no brick.
    const { outcome } = await classify(good, at, '2.2.0', '2.1.0', Date.now());
    expect(outcome.outcome).toBe('reverted');
    await exec.releaseLeases('ro-back');
  });

  it('a device the image bricks never completes its download and is read as a brick after the outcome timeout', async () => {
    const ref = { scope: 'ro-brick', step: 'wave-0/stage-0/download' };
    const at = Date.now();
    await exec.submit({
      ref,
      devices: [brick],
      operation: download('3.0.0'),
      deadline: new Date(at + OUTCOME_TIMEOUT_MS),
      owner: 'ro-brick',
    });
    // The transfer itself succeeded (TransferComplete! fault 0 stored), then the device went dark.
    await poll(
      'transfer stored',
      () =>
        db.pool.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM device_events WHERE device_id = $1 AND kind = 'transfer_complete'`,
          [brick],
        ),
      (r) => (r.rows[0]?.n ?? 0) > 0,
    );
    await until('agent down', () => !agentOf(brick).isOnline());
    brickDownAt = Date.now();
    const [s] = await exec.status(ref);
    expect(['triggered', 'in_session']).toContain(s?.state);
    const { events, outcome } = await classify(brick, at, '3.0.0', '2.1.0', at + OUTCOME_TIMEOUT_MS + 1);
    expect(events.some((e) => e.kind === 'boot')).toBe(false);
    expect(outcome.outcome).toBe('brick');
    await exec.cancel(ref);
  });
  let brickDownAt = 0;

  it('agents report Periodic!, stored as periodic informs the rollout reads as liveness; a bricked one is silent', async () => {
    // From a moment after the bricked agent went down (a Periodic! in flight then may still land).
    const since = new Date(brickDownAt + 500);
    const { rows } = await poll(
      'periodic informs stored',
      () =>
        db.pool.query<{ codes: string[] }>(
          `SELECT payload->'eventCodes' AS codes FROM device_events WHERE device_id = $1 AND kind = 'inform' AND at > $2`,
          [live, since],
        ),
      (r) => r.rows.length >= 3,
    );
    expect(rows[0]?.codes).toEqual(['2 PERIODIC', 'Device.LocalAgent.Periodic!']);
    // The interval is in the inventory, as a CWMP device's PeriodicInformInterval ("not seen for N
    // intervals", the rollout's health windows).
    const iv = await db.pool.query<{ s: number }>(
      `SELECT periodic_inform_interval_s AS s FROM devices WHERE id = $1`,
      [live],
    );
    expect(iv.rows[0]?.s).toBe(20);
    const seen = await dbRolloutFleet(db.db).observe([live], Date.now() - 60_000, Date.now());
    expect((seen.events.get(live) ?? []).filter((e) => e.kind === 'inform').length).toBeGreaterThanOrEqual(3);
    // The bricked agent said nothing meanwhile: the gate's control group tells silence from life by this.
    expect(brickDownAt).toBeGreaterThan(0);
    const dark = await db.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM device_events WHERE device_id = $1 AND at > $2`,
      [brick, since],
    );
    expect(dark.rows[0]?.n).toBe(0);
  });
});
