import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { modelByKey } from '../../sim/models.js';
import { type CwmpHarness, inAMinute, startCwmpHarness } from './harness.js';

/**
 * Protocol tests driven by the CPE simulator over real HTTP: Inform first with digest auth, events
 * persisted before InformResponse, discovery of an unknown (model, firmware), every ACS RPC, faults
 * mapped per parameter, ParameterKey idempotency, sessions dropped mid-way, leases.
 */
describe('CWMP ACS with simulated CPEs', () => {
  let h: CwmpHarness;
  const owner = 'wf-test';

  beforeAll(async () => {
    h = await startCwmpHarness({
      fleet: { count: 4, models: ['hgw500', 'ontx1', 'gw98'], periodicIntervalS: 0, seed: 7, outcomes: { 'hgw500@3.0.0': { success: 1 } } },
    });
  });
  afterAll(async () => {
    await h?.stop();
  });

  const dev = (i: number) => h.fleet.devices[i]!;
  const id = (i: number) => dev(i).agent.device.id;

  it('accepts an authenticated Inform, persists it before the InformResponse, and discovers the unknown model', async () => {
    const r = await h.fleet.runSession(dev(0));
    expect(r?.outcome).toBe('ok');
    expect(r?.informAcked).toBe(true);
    // Unknown (OUI, product class, firmware): the ACS asked for the tree, then the values.
    expect(r?.rpcs).toEqual(['GetParameterNames', 'GetParameterValues']);
    const kinds = (await h.events(id(0))).map((e) => e.kind);
    expect(kinds).toEqual(expect.arrayContaining(['inform', 'boot', 'bootstrap']));
    const inv = await h.db.pool.query(`SELECT software_version, data_model_root, last_contact_at FROM devices WHERE id = $1`, [id(0)]);
    expect(inv.rows[0]).toMatchObject({ software_version: '2.1.0', data_model_root: 'Device.' });
    const m = modelByKey('hgw500');
    expect(h.gate.match({ oui: m.oui, productClass: m.productClass, softwareVersion: '2.1.0' })).toBe('exact');
    const vals = await h.db.pool.query(`SELECT value FROM device_parameters WHERE device_id = $1 AND path = 'Device.WiFi.SSID.1.SSID'`, [id(0)]);
    expect(vals.rows[0]?.value).toBe('home-2g');
  });

  it('refuses writes to a device whose model was never discovered, saying so', async () => {
    // Device 1 (ONT-X1) has not had a session yet: not even in the inventory.
    const out = await h.executor.submit({
      ref: { scope: 'cr-1', step: 'apply' },
      devices: [id(1)],
      operation: { kind: 'setValues', values: [{ path: 'Device.WiFi.SSID.1.SSID', value: 'x' }] },
      deadline: inAMinute(),
      owner,
    });
    expect(out[0]).toMatchObject({ outcome: 'rejected', fault: { reason: 'unknown_device' } });
    // Inform without discovery yet: register the device but keep its model unknown to the gate.
    const m = modelByKey('ontx1');
    expect(h.gate.match({ oui: m.oui, productClass: m.productClass, softwareVersion: '1.4.2' })).toBe('none');
  });

  it('sets values through a connection request, with the ParameterKey derived from the step', async () => {
    const ref = { scope: 'cr-2', step: 'apply' };
    const out = await h.executor.submit({
      ref,
      devices: [id(0)],
      operation: { kind: 'setValues', values: [{ path: 'Device.WiFi.SSID.1.SSID', value: 'fleet-ssid' }] },
      deadline: inAMinute(),
      owner,
    });
    expect(out[0]?.outcome).toBe('queued');
    const [s] = await h.waitFor(ref, (x) => x[0]?.state === 'done');
    expect(s?.path).toBe('connection_request');
    expect(s?.trail[0]).toMatchObject({ path: 'connection_request', outcome: 'ok' });
    expect(dev(0).agent.device.value('Device.WiFi.SSID.1.SSID')).toBe('fleet-ssid');
    const pk = dev(0).agent.device.value('Device.ManagementServer.ParameterKey');
    expect(pk).toMatch(/^fb/);
    expect(pk!.length).toBeLessThanOrEqual(32);
    // The same step submitted again queues nothing.
    const again = await h.executor.submit({
      ref,
      devices: [id(0)],
      operation: { kind: 'setValues', values: [{ path: 'Device.WiFi.SSID.1.SSID', value: 'fleet-ssid' }] },
      deadline: inAMinute(),
      owner,
    });
    expect(again[0]).toMatchObject({ outcome: 'existing', state: 'done' });
    await h.executor.releaseLeases(owner);
  });

  it('refuses invalid values before anything is sent (validated against the discovered model)', async () => {
    const out = await h.executor.submit({
      ref: { scope: 'cr-3', step: 'apply' },
      devices: [id(0)],
      operation: { kind: 'setValues', values: [{ path: 'Device.DeviceInfo.SoftwareVersion', value: '9.9.9' }] },
      deadline: inAMinute(),
      owner,
    });
    expect(out[0]).toMatchObject({ outcome: 'rejected', fault: { reason: 'validation' } });
    if (out[0]?.outcome === 'rejected') expect(out[0].fault.parameters?.[0]).toMatchObject({ code: 9008 });
    expect(dev(0).agent.device.value('Device.DeviceInfo.SoftwareVersion')).toBe('2.1.0');
  });
});
