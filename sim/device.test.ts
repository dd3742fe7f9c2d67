import { describe, expect, it } from 'vitest';
import { DeviceFault, pickOutcome, SimDevice } from './device.js';
import { imageBytes, modelByKey, treeFor } from './models.js';

const hgw = modelByKey('hgw500');

describe('simulated device', () => {
  it('applies SetParameterValues atomically and reports per-parameter faults', () => {
    const d = new SimDevice({ model: hgw, serial: 'S1' });
    try {
      d.setValues(
        [
          { path: 'Device.WiFi.Radio.1.Channel', value: '99' },
          { path: 'Device.WiFi.SSID.1.SSID', value: 'ok' },
          { path: 'Device.DeviceInfo.SerialNumber', value: 'x' },
          { path: 'Device.Nope', value: '1' },
        ],
        'k1',
      );
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(DeviceFault);
      expect((e as DeviceFault).parameters.map((p) => p.code)).toEqual([9007, 9008, 9005]);
    }
    expect(d.value('Device.WiFi.SSID.1.SSID')).toBe('home-2g');
    expect(d.setValues([{ path: 'Device.WiFi.SSID.1.SSID', value: 'ok' }], 'k2')).toBe(0);
    expect(d.value('Device.ManagementServer.ParameterKey')).toBe('k2');
  });

  it('installs into the other bank; brick, boot loop and fallback follow the outcome table', () => {
    const img = imageBytes(hgw, '3.0.0');
    const run = (kind: string) => {
      const d = new SimDevice({ model: hgw, serial: kind, outcomes: { 'hgw500@3.0.0': { [kind]: 1 } } });
      const r = d.install(img, {});
      return { d, r, life: r.reboot ? d.reboot() : d.life };
    };
    const ok = run('success');
    expect(ok.life).toBe('up');
    expect(ok.d.firmware).toBe('3.0.0');
    expect(ok.d.bankOf('2.1.0')).toBe(1);
    expect(run('brick').life).toBe('bricked');
    expect(run('boot_loop').life).toBe('boot_loop');
    const fb = run('fallback');
    expect(fb.life).toBe('up');
    expect(fb.d.firmware).toBe('2.1.0');
    expect(run('transfer_9017').r).toMatchObject({ faultCode: 9017, reboot: false });
    const corrupt = new SimDevice({ model: hgw, serial: 'c' }).install(Buffer.from('garbage'), {});
    expect(corrupt.faultCode).toBe(9018);
  });

  it('applies firmware drift to the tree (range narrowed, default changed, vendor parameter added)', () => {
    const a = treeFor(hgw, '2.1.0');
    const b = treeFor(hgw, '3.0.0');
    expect(a.get('Device.WiFi.Radio.1.Channel')?.range).toEqual([1, 13]);
    expect(b.get('Device.WiFi.Radio.1.Channel')?.range).toEqual([1, 11]);
    expect(b.get('Device.ManagementServer.PeriodicInformInterval')?.value).toBe('1800');
    expect(b.has('Device.DeviceInfo.X_ACME_Telemetry')).toBe(true);
    expect(a.has('Device.DeviceInfo.X_ACME_Telemetry')).toBe(false);
  });

  it('picks outcomes by weight deterministically', () => {
    const t = { 'hgw500@3.0.0': { success: 0.9, brick: 0.1 } };
    expect(pickOutcome(t, hgw, '3.0.0', 0.5).kind).toBe('success');
    expect(pickOutcome(t, hgw, '3.0.0', 0.95).kind).toBe('brick');
    expect(pickOutcome(t, hgw, '2.2.0', 0.95).kind).toBe('success');
  });
});
