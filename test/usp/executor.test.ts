import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeviceTaskStatus, Executor, StepRef } from '../../executor/executor.js';
import { WriteBatcher } from '../../executor/persist.js';
import { createQueueExecutor } from '../../executor/queue-executor.js';
import type { UspController } from '../../executor/usp/controller.js';
import { uspPrecheck } from '../../executor/usp/precheck.js';
import {
  batcherSink,
  createUspExecutor,
  deviceResolver,
  inventoryRegistrar,
} from '../../executor/usp/driver.js';
import { appendEvents } from '../../fleet/events.js';
import { imageBytes, modelByKey, sha256Hex } from '../../sim/models.js';
import type { AgentHost } from '../../sim/usp/host.js';
import { createTestDatabase } from '../support/db.js';
import { device, mqttAgents, mqttController, until } from './harness.js';

const image = imageBytes(modelByKey('hgw500'), '3.0.0');
const URL_300 = 'http://files.test/hgw500-3.0.0.img';

async function settled(
  exec: Executor,
  ref: StepRef,
  n: number,
  timeoutMs = 20_000,
): Promise<DeviceTaskStatus[]> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const s = await exec.status(ref);
    if (s.length === n && s.every((x) => ['done', 'failed', 'expired'].includes(x.state))) return s;
    if (Date.now() > end)
      throw new Error(`not settled: ${JSON.stringify(s.map((x) => [x.deviceId, x.state, x.fault]))}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('USP Executor on the shared PostgreSQL task queue', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let controller: UspController;
  let exec: ReturnType<typeof createUspExecutor>;
  let host: AgentHost;
  /** Endpoint IDs of the agents, and their inventory ids (fleet identity OUI-ProductClass-Serial). */
  let ids: string[];
  let fleetIds: string[];
  const agentOf = (deviceId: string) => host.agents.get(ids[fleetIds.indexOf(deviceId)] as string);
  const deadline = () => new Date(Date.now() + 60_000);

  beforeAll(async () => {
    db = await createTestDatabase();
    // A device that spoke CWMP before: same OUI and serial as the USP agent MOVE1 below.
    await db.pool.query(
      `INSERT INTO devices (id, oui, serial_number, protocol, product_class, software_version) VALUES ('00A0C9-HGW-500-MOVE1', '00A0C9', 'MOVE1', 'cwmp', 'HGW-500', '2.1.0')`,
    );
    await appendEvents(db.db, [
      {
        deviceId: '00A0C9-HGW-500-MOVE1',
        at: new Date(Date.now() - 86_400_000),
        kind: 'inform',
        payload: { eventCodes: ['2 PERIODIC'] },
      },
    ]);
    await db.pool.query(
      `INSERT INTO executor_leases (device_id, owner, acquired_at, expires_at) VALUES ('00A0C9-HGW-500-MOVE1', 'rollout-owner', now(), now() + interval '1 hour')`,
    );
    const batcher = new WriteBatcher(db.db);
    const c = await mqttController({
      events: batcherSink(batcher),
      register: inventoryRegistrar(db.pool, batcher),
      resolveDeviceId: deviceResolver(db.pool),
    });
    controller = c.controller;
    exec = createUspExecutor({ pool: db.pool, controller, batcher, sweepMs: 200, retryBaseMs: 200 });
    exec.start();
    host = await mqttAgents({
      controllerId: c.endpointId,
      devices: [device('EX0001'), device('EX0002'), device('EX0003'), device('MOVE1')],
      fetchImage: async (url) => (url === URL_300 ? image : null),
    });
    ids = [...host.agents.keys()];
    host.powerOnAll();
    await until('all onboarded', () => ids.every((i) => controller.isOnboarded(i)), 15_000);
    fleetIds = ids.map((i) => controller.deviceIdFor(i));
  });
  afterAll(async () => {
    exec?.stop();
    await host?.stop();
    await controller?.stop();
    await db?.drop();
  });

  it('records onboarded agents in the inventory with protocol usp; a device moved from CWMP keeps its id, history and lease', async () => {
    const r = await db.pool.query<{ id: string; protocol: string; software_version: string }>(
      `SELECT id, protocol, software_version FROM devices ORDER BY id`,
    );
    expect(r.rows).toEqual([
      { id: '00A0C9-HGW-500-EX0001', protocol: 'usp', software_version: '2.1.0' },
      { id: '00A0C9-HGW-500-EX0002', protocol: 'usp', software_version: '2.1.0' },
      { id: '00A0C9-HGW-500-EX0003', protocol: 'usp', software_version: '2.1.0' },
      { id: '00A0C9-HGW-500-MOVE1', protocol: 'usp', software_version: '2.1.0' },
    ]);
    const ev = await db.pool.query<{ kind: string }>(
      `SELECT kind FROM device_events WHERE device_id = '00A0C9-HGW-500-MOVE1' ORDER BY at`,
    );
    expect(ev.rows.map((e) => e.kind)).toEqual(['inform', 'bootstrap']);
    const lease = await exec.leases(['00A0C9-HGW-500-MOVE1']);
    expect(lease[0]?.owner).toBe('rollout-owner');
    // The lease holder still owns it: another owner's write is refused, the holder's goes through USP.
    const ref = { scope: 'cr-move', step: 'apply' };
    const op = { kind: 'setValues' as const, values: [{ path: 'Device.WiFi.SSID.1.SSID', value: 'moved' }] };
    const other = await exec.submit({
      ref,
      devices: ['00A0C9-HGW-500-MOVE1'],
      operation: op,
      deadline: deadline(),
      owner: 'someone-else',
    });
    expect(other[0]?.outcome).toBe('lease_held');
    const mine = await exec.submit({
      ref,
      devices: ['00A0C9-HGW-500-MOVE1'],
      operation: op,
      deadline: deadline(),
      owner: 'rollout-owner',
    });
    expect(mine[0]?.outcome).toBe('queued');
    const [s] = await settled(exec, ref, 1);
    expect(s?.state).toBe('done');
    expect(host.agents.get('os::00A0C9-MOVE1')?.device.value('Device.WiFi.SSID.1.SSID')).toBe('moved');
  });

  it('setValues reaches every device once; a resubmitted step queues nothing; unknown devices are rejected', async () => {
    const ref = { scope: 'cr-1', step: 'apply' };
    const devs = fleetIds.filter((i) => i.includes('EX'));
    const req = {
      ref,
      devices: [...devs, 'os::00A0C9-NOPE'],
      operation: {
        kind: 'setValues' as const,
        values: [{ path: 'Device.WiFi.SSID.2.SSID', value: 'fleet-5g' }],
      },
      deadline: deadline(),
      owner: 'wf-1',
    };
    const out = await exec.submit(req);
    expect(out.map((o) => o.outcome)).toEqual(['queued', 'queued', 'queued', 'rejected']);
    const st = await settled(exec, ref, 3);
    expect(st.map((s) => [s.state, s.path])).toEqual(devs.map(() => ['done', 'usp_message']));
    for (const d of devs) expect(agentOf(d)?.device.value('Device.WiFi.SSID.2.SSID')).toBe('fleet-5g');
    // The value set is the device's last known value, written before the task completed.
    const last = await db.pool.query<{ device_id: string; value: string }>(
      `SELECT device_id, value FROM device_parameters WHERE path = 'Device.WiFi.SSID.2.SSID' ORDER BY device_id`,
    );
    expect(last.rows).toEqual(devs.map((d) => ({ device_id: d, value: 'fleet-5g' })));
    const again = await exec.submit(req);
    expect(again.slice(0, 3).map((o) => o.outcome)).toEqual(['existing', 'existing', 'existing']);
    expect(await exec.releaseLeases('wf-1')).toBe(3);
  });

  it('work queued by another process (a standalone worker) is carried out by the controller; non-USP devices are refused there', async () => {
    // The worker has no controller: it only queues, with the same admission checks, and wakes nobody.
    const worker = createQueueExecutor({ pool: db.pool, protocol: 'usp', precheck: uspPrecheck(db.pool) });
    await db.pool.query(
      `INSERT INTO devices (id, oui, serial_number, protocol, product_class) VALUES ('00A0C9-HGW-500-CW9', '00A0C9', 'CW9', 'cwmp', 'HGW-500')`,
    );
    const ref = { scope: 'cr-queued', step: 'apply' };
    const dev = fleetIds[1] as string;
    const out = await worker.submit({
      ref,
      devices: [dev, '00A0C9-HGW-500-CW9'],
      operation: { kind: 'setValues', values: [{ path: 'Device.WiFi.SSID.1.SSID', value: 'from-worker' }] },
      deadline: deadline(),
      owner: 'wf-queued',
    });
    expect(out.map((o) => o.outcome)).toEqual(['queued', 'rejected']);
    const [s] = await settled(worker, ref, 1);
    expect(s?.state).toBe('done');
    expect(agentOf(dev)?.device.value('Device.WiFi.SSID.1.SSID')).toBe('from-worker');
    expect(await worker.releaseLeases('wf-queued')).toBe(1);
  });

  it('a device fault fails the task with the USP code, the CWMP equivalent and per-parameter faults', async () => {
    const ref = { scope: 'cr-2', step: 'apply' };
    const dev = fleetIds[0] as string;
    await exec.submit({
      ref,
      devices: [dev],
      operation: { kind: 'setValues', values: [{ path: 'Device.WiFi.Radio.1.Channel', value: '99' }] },
      deadline: deadline(),
      owner: 'wf-2',
    });
    const [s] = await settled(exec, ref, 1);
    expect(s?.state).toBe('failed');
    expect(s?.fault).toMatchObject({
      reason: 'device_fault',
      code: 7000,
      parameters: [{ path: 'Device.WiFi.Radio.1.Channel', code: 7012 }],
    });
    expect(s?.fault?.message).toContain('CWMP 9002');
    await exec.releaseLeases('wf-2');
  });

  it('firmware rollout: download then activate complete asynchronously; events land in device_events', async () => {
    const devs = fleetIds.filter((i) => i.includes('EX'));
    const dl = { scope: 'rollout-1', step: 'wave-1/download' };
    await exec.submit({
      ref: dl,
      devices: devs,
      operation: {
        kind: 'download',
        url: URL_300,
        version: '3.0.0',
        fileSize: image.length,
        checksum: sha256Hex(image),
      },
      deadline: deadline(),
      owner: 'rollout-1',
    });
    const d = await settled(exec, dl, 3);
    expect(d.map((s) => s.state)).toEqual(['done', 'done', 'done']);
    const act = { scope: 'rollout-1', step: 'wave-1/activate' };
    await exec.submit({
      ref: act,
      devices: devs,
      operation: { kind: 'activateImage', version: '3.0.0' },
      deadline: deadline(),
      owner: 'rollout-1',
    });
    const a = await settled(exec, act, 3);
    expect(a.map((s) => [s.state, s.result?.transfer?.version])).toEqual(devs.map(() => ['done', '3.0.0']));
    const ev = await db.pool.query<{ kind: string; n: string }>(
      `SELECT kind, count(*) AS n FROM device_events WHERE device_id = ANY($1::text[]) GROUP BY kind ORDER BY kind`,
      [devs],
    );
    const counts = Object.fromEntries(ev.rows.map((r) => [r.kind, Number(r.n)]));
    expect(counts).toMatchObject({ bootstrap: 3, transfer_complete: 3, boot: 3 });
    const boots = await db.pool.query<{ payload: { firmwareUpdated: boolean; softwareVersion: string } }>(
      `SELECT payload FROM device_events WHERE kind = 'boot' AND device_id = ANY($1::text[])`,
      [devs],
    );
    expect(boots.rows.every((r) => r.payload.firmwareUpdated && r.payload.softwareVersion === '3.0.0')).toBe(
      true,
    );
    await exec.releaseLeases('rollout-1');
  });

  it('reboot completes on the Boot! that carries its CommandKey', async () => {
    const ref = { scope: 'ops-1', step: 'reboot' };
    await exec.submit({
      ref,
      devices: [fleetIds[0] as string],
      operation: { kind: 'reboot' },
      deadline: deadline(),
      owner: 'ops',
    });
    const [s] = await settled(exec, ref, 1);
    expect(s?.state).toBe('done');
  });
});
