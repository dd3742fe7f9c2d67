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
      // Production backoff: a device that comes back in a new session must still get its task at once.
      acs: { retryBaseMs: 5_000 },
      fleet: {
        count: 4,
        models: ['hgw500', 'ontx1', 'gw98'],
        periodicIntervalS: 0,
        seed: 7,
        outcomes: { 'hgw500@3.0.0': { success: 1 } },
      },
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
    const inv = await h.db.pool.query(
      `SELECT software_version, data_model_root, last_contact_at FROM devices WHERE id = $1`,
      [id(0)],
    );
    expect(inv.rows[0]).toMatchObject({ software_version: '2.1.0', data_model_root: 'Device.' });
    const m = modelByKey('hgw500');
    expect(h.gate.match({ oui: m.oui, productClass: m.productClass, softwareVersion: '2.1.0' })).toBe(
      'exact',
    );
    const vals = await h.db.pool.query(
      `SELECT value FROM device_parameters WHERE device_id = $1 AND path = 'Device.WiFi.SSID.1.SSID'`,
      [id(0)],
    );
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
      operation: {
        kind: 'setValues',
        values: [{ path: 'Device.DeviceInfo.SoftwareVersion', value: '9.9.9' }],
      },
      deadline: inAMinute(),
      owner,
    });
    expect(out[0]).toMatchObject({ outcome: 'rejected', fault: { reason: 'validation' } });
    if (out[0]?.outcome === 'rejected') expect(out[0].fault.parameters?.[0]).toMatchObject({ code: 9008 });
    expect(dev(0).agent.device.value('Device.DeviceInfo.SoftwareVersion')).toBe('2.1.0');
  });

  it('maps a SetParameterValuesFault to per-parameter results and changes nothing (firmware narrower than TR-181)', async () => {
    const ref = { scope: 'cr-4', step: 'apply' };
    // TR-181 allows channel 1..255; this firmware only 1..13: validation passes, the device refuses.
    await h.executor.submit({
      ref,
      devices: [id(0)],
      operation: {
        kind: 'setValues',
        values: [
          { path: 'Device.WiFi.Radio.1.Channel', value: '14' },
          { path: 'Device.WiFi.SSID.2.SSID', value: 'changed' },
        ],
      },
      deadline: inAMinute(),
      owner,
    });
    const [s] = await h.waitFor(ref, (x) => x[0]?.state === 'failed');
    expect(s?.fault).toMatchObject({ reason: 'device_fault', code: 9003 });
    expect(s?.fault?.parameters).toEqual([
      expect.objectContaining({ path: 'Device.WiFi.Radio.1.Channel', code: 9007 }),
    ]);
    expect(dev(0).agent.device.value('Device.WiFi.SSID.2.SSID')).toBe('home-5g');
    await h.executor.releaseLeases(owner);
  });

  it('runs getValues, addObject and deleteObject in submission order within one session', async () => {
    const d = dev(3);
    // Same model and firmware as device 0: its schema is known, no discovery needed.
    const first = await h.fleet.runSession(d);
    expect(first?.outcome, JSON.stringify(first)).toBe('ok');
    const steps = [
      {
        ref: { scope: 'cr-5', step: '1-get' },
        operation: { kind: 'getValues' as const, paths: ['Device.WiFi.Radio.1.'] },
      },
      {
        ref: { scope: 'cr-5', step: '2-add' },
        operation: { kind: 'addObject' as const, path: 'Device.NAT.PortMapping.' },
      },
      {
        ref: { scope: 'cr-5', step: '3-del' },
        operation: { kind: 'deleteObject' as const, path: 'Device.NAT.PortMapping.2.' },
      },
    ];
    d.agent.busy = true; // hold the session until all three are queued
    for (const st of steps) {
      const out = await h.executor.submit({ ...st, devices: [id(3)], deadline: inAMinute(), owner });
      expect(out[0]?.outcome, JSON.stringify(out)).toBe('queued');
    }
    d.agent.busy = false;
    const r = await h.fleet.runSession(d);
    expect(r?.rpcs).toEqual(['GetParameterValues', 'AddObject', 'DeleteObject']);
    const [get] = await h.executor.status(steps[0]!.ref);
    expect(get?.result?.values).toEqual(
      expect.arrayContaining([expect.objectContaining({ path: 'Device.WiFi.Radio.1.Channel', value: '6' })]),
    );
    const [add] = await h.executor.status(steps[1]!.ref);
    expect(add?.result).toMatchObject({ instance: 2, status: 0 });
    const [del] = await h.executor.status(steps[2]!.ref);
    expect(del?.state).toBe('done');
    expect(d.agent.device.value('Device.NAT.PortMapping.2.Enable')).toBeUndefined();
    expect(d.agent.device.value('Device.NAT.PortMapping.1.Enable')).toBe('false');
    await h.executor.releaseLeases(owner);
  });

  it('does not apply a retried write twice: the answer was lost, the ParameterKey shows it landed', async () => {
    const d = dev(3);
    const ref = { scope: 'cr-6', step: 'apply' };
    await h.fleet.runSession(d);
    d.agent.opts.dropOn = 'SetParameterValues';
    d.agent.opts.applyBeforeDrop = true;
    const sub = await h.executor.submit({
      ref,
      devices: [id(3)],
      operation: {
        kind: 'setValues',
        values: [{ path: 'Device.DeviceInfo.ProvisioningCode', value: 'code-1' }],
      },
      deadline: inAMinute(),
      owner,
    });
    expect(sub[0]?.outcome, JSON.stringify(sub)).toBe('queued');
    await h.waitFor(ref, (x) => x[0]?.state === 'in_session' && (x[0]?.attempts ?? 0) >= 1);
    // Wait until the CR-triggered session dropped, then the device comes back.
    await new Promise((r) => setTimeout(r, 200));
    d.agent.opts.applyBeforeDrop = false;
    const r = await h.fleet.runSession(d);
    expect(r?.outcome).toBe('ok');
    expect(r?.rpcs).not.toContain('SetParameterValues');
    const [s] = await h.waitFor(ref, (x) => x[0]?.state === 'done');
    expect(s?.result).toMatchObject({ alreadyApplied: true });
    expect(s?.attempts).toBe(2);
    await h.executor.releaseLeases(owner);
  });

  it('resumes a session dropped before the device applied anything by sending the request again', async () => {
    const d = dev(3);
    const ref = { scope: 'cr-7', step: 'apply' };
    d.agent.opts.dropOn = 'SetParameterValues';
    d.agent.opts.applyBeforeDrop = false;
    await h.executor.submit({
      ref,
      devices: [id(3)],
      operation: {
        kind: 'setValues',
        values: [{ path: 'Device.DeviceInfo.ProvisioningCode', value: 'code-2' }],
      },
      deadline: inAMinute(),
      owner,
    });
    await h.waitFor(ref, (x) => x[0]?.state === 'in_session');
    await new Promise((r) => setTimeout(r, 200));
    expect(d.agent.device.value('Device.DeviceInfo.ProvisioningCode')).toBe('code-1');
    const r = await h.fleet.runSession(d);
    expect(r?.rpcs).toContain('SetParameterValues');
    await h.waitFor(ref, (x) => x[0]?.state === 'done');
    expect(d.agent.device.value('Device.DeviceInfo.ProvisioningCode')).toBe('code-2');
    await h.executor.releaseLeases(owner);
  });

  it('serialises two owners on one device with the lease', async () => {
    const a = { scope: 'ro-a', step: 'w1' };
    const b = { scope: 'ro-b', step: 'w1' };
    const op = { kind: 'getValues' as const, paths: ['Device.DeviceInfo.UpTime'] };
    const first = await h.executor.submit({
      ref: a,
      devices: [id(3)],
      operation: op,
      deadline: inAMinute(),
      owner: 'wf-a',
    });
    expect(first[0]?.outcome).toBe('queued');
    const second = await h.executor.submit({
      ref: b,
      devices: [id(3)],
      operation: op,
      deadline: inAMinute(),
      owner: 'wf-b',
    });
    expect(second[0]).toMatchObject({ outcome: 'lease_held', holder: 'wf-a' });
    expect(await h.executor.status(b)).toEqual([]);
    await h.waitFor(a, (x) => x[0]?.state === 'done');
    expect(await h.executor.releaseLeases('wf-a')).toBe(1);
    const third = await h.executor.submit({
      ref: b,
      devices: [id(3)],
      operation: op,
      deadline: inAMinute(),
      owner: 'wf-b',
    });
    expect(third[0]?.outcome).toBe('queued');
    await h.waitFor(b, (x) => x[0]?.state === 'done');
    expect((await h.executor.leases([id(3)]))[0]?.owner).toBe('wf-b');
    await h.executor.releaseLeases('wf-b');
  });

  it('downloads firmware, and TransferComplete after the reboot completes the task by CommandKey', async () => {
    const d = dev(0);
    const ref = { scope: 'ro-fw', step: 'download' };
    const img = h.fleet.imageInfo(d.agent.device.model, '3.0.0');
    await h.executor.submit({
      ref,
      devices: [id(0)],
      operation: {
        kind: 'download',
        url: img.url,
        version: '3.0.0',
        fileSize: img.size,
        checksum: img.sha256,
      },
      deadline: inAMinute(),
      owner,
    });
    const [s] = await h.waitFor(ref, (x) => x[0]?.state === 'done', 15_000);
    expect(s?.result?.transfer?.version).toBe('3.0.0');
    expect(d.agent.device.firmware).toBe('3.0.0');
    const ev = await h.events(id(0));
    const tc = ev.find((e) => e.kind === 'transfer_complete');
    expect(tc?.payload).toMatchObject({ faultCode: 0 });
    expect(ev.filter((e) => e.kind === 'boot').length).toBeGreaterThanOrEqual(2);
    await h.executor.releaseLeases(owner);
  });

  it('activates the previous image (dual bank) and completes on "M Reboot" with the CommandKey', async () => {
    const d = dev(0);
    // 3.0.0 is a new (model, firmware): the device's post-upgrade session discovered it.
    const m = d.agent.device.model;
    await h.waitFor(
      { scope: 'none', step: 'none' },
      () => h.gate.match({ oui: m.oui, productClass: m.productClass, softwareVersion: '3.0.0' }) === 'exact',
    );
    const ref = { scope: 'ro-fw', step: 'rollback' };
    await h.executor.submit({
      ref,
      devices: [id(0)],
      operation: { kind: 'activateImage', version: '2.1.0' },
      deadline: inAMinute(),
      owner,
    });
    const [s] = await h.waitFor(ref, (x) => x[0]?.state === 'done', 15_000);
    expect(s?.result?.transfer?.version).toBe('2.1.0');
    expect(d.agent.device.firmware).toBe('2.1.0');
    await h.executor.releaseLeases(owner);
  });

  it('manages a TR-098 (InternetGatewayDevice.) device the same way', async () => {
    const d = dev(2);
    const r = await h.fleet.runSession(d);
    expect(r?.rpcs).toEqual(['GetParameterNames', 'GetParameterValues']);
    const ref = { scope: 'cr-98', step: 'apply' };
    await h.executor.submit({
      ref,
      devices: [id(2)],
      operation: {
        kind: 'setValues',
        values: [{ path: 'InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.SSID', value: 'legacy-2' }],
      },
      deadline: inAMinute(),
      owner,
    });
    await h.waitFor(ref, (x) => x[0]?.state === 'done');
    expect(d.agent.device.value('InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.SSID')).toBe(
      'legacy-2',
    );
    await h.executor.releaseLeases(owner);
  });

  it('reboots and factory-resets through the queue', async () => {
    const d = dev(3);
    const ref = { scope: 'cr-8', step: 'reboot' };
    const boots = d.agent.device.bootCount;
    await h.executor.submit({
      ref,
      devices: [id(3)],
      operation: { kind: 'reboot' },
      deadline: inAMinute(),
      owner,
    });
    await h.waitFor(ref, (x) => x[0]?.state === 'done');
    expect(d.agent.device.bootCount).toBe(boots + 1);
    const fr = { scope: 'cr-8', step: 'factory-reset' };
    await h.executor.submit({
      ref: fr,
      devices: [id(3)],
      operation: { kind: 'factoryReset' },
      deadline: inAMinute(),
      owner,
    });
    await h.waitFor(fr, (x) => x[0]?.state === 'done');
    // The device resets once its session is over, and comes back after its reset with "0 BOOTSTRAP" (waited for, not timed).
    const bootstraps = async () => (await h.events(id(3))).filter((e) => e.kind === 'bootstrap').length;
    for (let i = 0; i < 200 && (await bootstraps()) < 2; i++) await new Promise((r) => setTimeout(r, 50));
    expect(await bootstraps()).toBeGreaterThanOrEqual(2);
    expect(d.agent.device.value('Device.DeviceInfo.ProvisioningCode')).toBe('');
    await h.executor.releaseLeases(owner);
  });
});
