import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deviceEffectiveConfig } from '../../activities/profiles.js';
import { putProfile } from '../../db/profiles.js';
import { ProfileSpec } from '../../domain/profiles/profile.js';
import type { UspController } from '../../executor/usp/controller.js';
import {
  batcherSink,
  createUspExecutor,
  deviceResolver,
  inventoryRegistrar,
  knownUspDevices,
} from '../../executor/usp/driver.js';
import type { AgentHost } from '../../sim/usp/host.js';
import { type CwmpHarness, inAMinute, startCwmpHarness } from '../executor/harness.js';
import { mqttAgents, mqttController, until } from './harness.js';

/**
 * A device that spoke CWMP through the real ACS is moved to USP (the same simulated CPE, now a USP
 * agent over mosquitto). Its fleet identity (OUI-ProductClass-SerialNumber) is the same under both
 * protocols, so it keeps its inventory row and topology, its history (device events, tasks, last
 * values) and what its profiles own; from then on the USP executor reaches it and the CWMP one does not.
 */

const SSID = 'Device.WiFi.SSID.1.SSID';
const CHANNEL = 'Device.WiFi.Radio.1.Channel';
const system = { id: 'test', kind: 'system' as const };

describe('a device moved from CWMP to USP', () => {
  let h: CwmpHarness;
  let controller: UspController;
  let usp: ReturnType<typeof createUspExecutor>;
  let host: AgentHost | undefined;
  let movedId: string;
  let stayId: string;

  beforeAll(async () => {
    h = await startCwmpHarness({ fleet: { count: 2, models: ['hgw500'], periodicIntervalS: 0, seed: 9 } });
    for (const d of h.fleet.devices) expect((await h.fleet.runSession(d))?.outcome).toBe('ok');
    movedId = h.fleet.devices[0]?.agent.device.id as string;
    stayId = h.fleet.devices[1]?.agent.device.id as string;
    // Topology from the OSS feed, which the profiles select on.
    await h.db.pool.query(`UPDATE devices SET region = 'north', tags = '{gold}'`);
    await putProfile(
      h.db.db,
      ProfileSpec.parse({
        name: 'north-wifi',
        owner: 'netops',
        selector: { field: 'region', op: 'eq', value: 'north' },
        parameters: [{ path: SSID, value: 'north-ssid' }],
      }),
      system,
      { mode: 'create' },
    );
    await putProfile(
      h.db.db,
      ProfileSpec.parse({
        name: 'gold-radio',
        owner: 'netops',
        priority: 5,
        selector: { field: 'tags', op: 'has', value: 'gold' },
        parameters: [{ path: CHANNEL, value: 11 }],
      }),
      system,
      { mode: 'create' },
    );
    // History under CWMP: a change applied through the ACS.
    const ref = { scope: 'before-move', step: 'apply' };
    const out = await h.executor.submit({
      ref,
      devices: [movedId],
      operation: { kind: 'setValues', values: [{ path: SSID, value: 'north-ssid' }] },
      deadline: inAMinute(),
      owner: 'cr-before',
    });
    expect(out[0]?.outcome).toBe('queued');
    await h.waitFor(ref, (s) => s[0]?.state === 'done', 20_000);
    await h.executor.releaseLeases('cr-before');
  }, 120_000);

  afterAll(async () => {
    usp?.stop();
    await host?.stop();
    await controller?.stop();
    await h?.stop();
  });

  it('keeps its inventory id, topology, history and ownership, and is reached over USP only', async () => {
    const rowBefore = (
      await h.db.pool.query(`SELECT id, created_at, region, tags FROM devices WHERE id = $1`, [movedId])
    ).rows[0];
    const eventsBefore = (
      await h.db.pool.query<{ id: string; kind: string }>(
        `SELECT id, kind FROM device_events WHERE device_id = $1 ORDER BY at, id`,
        [movedId],
      )
    ).rows;
    expect(eventsBefore.map((e) => e.kind)).toContain('bootstrap');
    const ownedBefore = await deviceEffectiveConfig(h.db.db, movedId);
    expect(ownedBefore?.profiles.map((p) => p.id).sort()).toEqual(['gold-radio', 'north-wifi']);

    // The move: the CPE stops speaking CWMP and comes back as a USP agent (new firmware config).
    const batcher = h.batcher;
    const c = await mqttController({
      events: batcherSink(batcher),
      register: inventoryRegistrar(h.db.pool, batcher),
      resolveDeviceId: deviceResolver(h.db.pool),
      devices: await knownUspDevices(h.db.pool),
    });
    controller = c.controller;
    usp = createUspExecutor({ pool: h.db.pool, controller, batcher, sweepMs: 200, retryBaseMs: 200 });
    usp.start();
    const sim = h.fleet.devices[0]?.agent.device;
    if (!sim) throw new Error('no simulated device');
    host = await mqttAgents({ controllerId: c.endpointId, devices: [sim] });
    const eid = [...host.agents.keys()][0] as string;
    host.powerOnAll();
    await until('onboarded over USP', () => controller.isOnboarded(eid), 20_000);

    // One inventory row, same id, same creation and topology; only the protocol changed.
    const rows = (
      await h.db.pool.query(
        `SELECT id, protocol, created_at, region, tags FROM devices WHERE serial_number = $1`,
        [sim.serial],
      )
    ).rows;
    expect(rows).toEqual([{ ...rowBefore, protocol: 'usp' }]);
    expect(controller.deviceIdFor(eid)).toBe(movedId);

    // History continues under the same id: the CWMP events, then the USP OnBoardRequest.
    const events = (
      await h.db.pool.query<{ id: string; kind: string; protocol: string | null }>(
        `SELECT id, kind, payload->>'protocol' AS protocol FROM device_events WHERE device_id = $1 ORDER BY at, id`,
        [movedId],
      )
    ).rows;
    const ids = events.map((e) => e.id);
    expect(eventsBefore.every((e) => ids.includes(e.id))).toBe(true);
    expect(events.filter((e) => e.protocol === 'usp').map((e) => e.kind)).toEqual(['bootstrap']);
    expect(events.at(-1)).toMatchObject({ kind: 'bootstrap', protocol: 'usp' });
    const task = await h.db.pool.query(
      `SELECT state FROM executor_tasks WHERE device_id = $1 AND scope = 'before-move'`,
      [movedId],
    );
    expect(task.rows).toEqual([{ state: 'done' }]);
    const last = await h.db.pool.query(
      `SELECT value FROM device_parameters WHERE device_id = $1 AND path = $2`,
      [movedId, SSID],
    );
    expect(last.rows).toEqual([{ value: 'north-ssid' }]);

    // Ownership is derived from the same row: the same profiles own the same fields.
    const ownedAfter = await deviceEffectiveConfig(h.db.db, movedId);
    const owners = (cfg: typeof ownedAfter) =>
      (cfg?.fields ?? []).map((f) => [f.path, f.status, f.owners, f.value]).sort();
    expect(ownedAfter?.profiles).toEqual(ownedBefore?.profiles);
    expect(owners(ownedAfter)).toEqual(owners(ownedBefore));
    expect(owners(ownedAfter)).toEqual([
      [CHANNEL, 'owned', ['gold-radio'], 11],
      [SSID, 'owned', ['north-wifi'], 'north-ssid'],
    ]);

    // Reached over USP now; the CWMP executor refuses it, and the device that stayed is unaffected.
    const ref = { scope: 'after-move', step: 'apply' };
    const out = await usp.submit({
      ref,
      devices: [movedId, stayId],
      operation: { kind: 'setValues', values: [{ path: CHANNEL, value: '11' }] },
      deadline: inAMinute(),
      owner: 'cr-after',
    });
    expect(out.map((o) => o.outcome)).toEqual(['queued', 'rejected']);
    const end = Date.now() + 20_000;
    for (;;) {
      const [s] = await usp.status(ref);
      if (s?.state === 'done') {
        expect(s.path).toBe('usp_message');
        break;
      }
      if (Date.now() > end) throw new Error(`USP task not done: ${JSON.stringify(s)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(sim.value(CHANNEL)).toBe('11');
    const viaCwmp = await h.executor.submit({
      ref: { scope: 'after-move-cwmp', step: 'apply' },
      devices: [movedId],
      operation: { kind: 'setValues', values: [{ path: SSID, value: 'x' }] },
      deadline: inAMinute(),
      owner: 'cr-cwmp',
    });
    expect(viaCwmp[0]?.outcome).toBe('rejected');
    const stay = (await h.db.pool.query(`SELECT protocol FROM devices WHERE id = $1`, [stayId])).rows;
    expect(stay).toEqual([{ protocol: 'cwmp' }]);
  }, 120_000);
});
