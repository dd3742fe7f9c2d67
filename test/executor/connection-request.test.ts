import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CwmpHarness, inAMinute, startCwmpHarness } from './harness.js';

/**
 * Connection-request paths, each visible in the task's status: HTTP digest success, wrong
 * credentials, NAT with a UDP address (Annex G), NAT without one (wait for the periodic Inform).
 */
describe('connection requests', () => {
  let h: CwmpHarness;
  const owner = 'wf-cr';
  const op = { kind: 'getValues' as const, paths: ['Device.DeviceInfo.UpTime'] };

  beforeAll(async () => {
    h = await startCwmpHarness({ fleet: { count: 4, models: ['hgw500'], periodicIntervalS: 0, seed: 3 } });
    // Every device informs once (and the first discovers the model) so the ACS knows its addresses.
    for (const d of h.fleet.devices) expect((await h.fleet.runSession(d))?.outcome).toBe('ok');
  });
  afterAll(async () => {
    await h?.stop();
  });

  const dev = (i: number) => h.fleet.devices[i]!;
  const id = (i: number) => dev(i).agent.device.id;

  it('HTTP with digest: the device opens a session at once', async () => {
    const ref = { scope: 'crp', step: 'http' };
    await h.executor.submit({ ref, devices: [id(0)], operation: op, deadline: inAMinute(), owner });
    const [s] = await h.waitFor(ref, (x) => x[0]?.state === 'done');
    expect(s?.path).toBe('connection_request');
    expect(s?.trail).toEqual([expect.objectContaining({ path: 'connection_request', outcome: 'ok' })]);
    expect(h.fleet.crLog.filter((c) => c.via === 'http' && c.ok).length).toBeGreaterThanOrEqual(1);
  });

  it('wrong credentials: refused by the CPE, recorded, and the task waits for the next Inform', async () => {
    const d = dev(1);
    const real = d.crPassword;
    d.crPassword = 'changed-on-the-device';
    const ref = { scope: 'crp', step: 'wrong' };
    await h.executor.submit({ ref, devices: [id(1)], operation: op, deadline: inAMinute(), owner });
    const [s] = await h.waitFor(ref, (x) => x[0]?.path === 'next_inform');
    expect(s?.state).toBe('triggered');
    expect(s?.trail.map((t) => [t.path, t.outcome])).toEqual([
      ['connection_request', 'unauthorized (wrong credentials)'],
      ['next_inform', expect.stringContaining('periodic Inform')],
    ]);
    expect(h.fleet.crLog.some((c) => c.serial === d.agent.device.serial && !c.ok)).toBe(true);
    d.crPassword = real;
    // The periodic Inform drains it.
    d.agent.queueEvent('2 PERIODIC');
    await h.fleet.runSession(d);
    const [done] = await h.waitFor(ref, (x) => x[0]?.state === 'done');
    expect(done?.path).toBe('next_inform');
  });

  it('NAT with a UDP address: HTTP fails, the signed UDP request wakes the device', async () => {
    const d = dev(2);
    h.fleet.setNat(d, 'udp_only');
    await h.fleet.runSession(d); // reports the new addresses
    const ref = { scope: 'crp', step: 'udp' };
    await h.executor.submit({ ref, devices: [id(2)], operation: op, deadline: inAMinute(), owner });
    const [s] = await h.waitFor(ref, (x) => x[0]?.state === 'done');
    expect(s?.path).toBe('udp');
    expect(s?.trail.map((t) => [t.path, t.outcome])).toEqual([
      ['connection_request', 'refused'],
      ['udp', 'sent'],
    ]);
    expect(h.fleet.crLog.some((c) => c.via === 'udp' && c.ok && c.serial === d.agent.device.serial)).toBe(
      true,
    );
  });

  it('NAT without UDP: the task waits, visibly, until the next periodic Inform', async () => {
    const d = dev(3);
    h.fleet.setNat(d, 'blocked');
    await h.fleet.runSession(d);
    const ref = { scope: 'crp', step: 'blocked' };
    await h.executor.submit({ ref, devices: [id(3)], operation: op, deadline: inAMinute(), owner });
    const [s] = await h.waitFor(ref, (x) => x[0]?.path === 'next_inform');
    expect(s?.state).toBe('triggered');
    expect(s?.trail.map((t) => t.path)).toEqual(['connection_request', 'next_inform']);
    await new Promise((r) => setTimeout(r, 300));
    expect((await h.executor.status(ref))[0]?.state).toBe('triggered');
    d.agent.queueEvent('2 PERIODIC');
    await h.fleet.runSession(d);
    const [done] = await h.waitFor(ref, (x) => x[0]?.state === 'done');
    expect(done?.result?.values?.[0]?.path).toBe('Device.DeviceInfo.UpTime');
  });

  it('de-duplicates concurrent wake-ups of one device', async () => {
    const before = h.fleet.crLog.length;
    await Promise.all([h.requester.request(id(0)), h.requester.request(id(0)), h.requester.request(id(0))]);
    expect(h.fleet.crLog.length - before).toBe(1);
  });
});
