import { describe, expect, it } from 'vitest';
import { DeviceEvent } from '../../fleet/events.js';
import { batchingSink } from './event-sink.js';
import { eventsForNotify } from './notify-events.js';

const at = new Date('2026-01-01T00:00:00Z');

describe('USP Notify → device events (same kinds and fields as CWMP)', () => {
  it('maps every notification type to a valid device event', () => {
    const cases = [
      eventsForNotify(
        'd',
        'os::00A0C9-1',
        'm1',
        {
          subscription_id: '',
          on_board_req: {
            oui: '00A0C9',
            product_class: 'P',
            serial_number: '1',
            agent_supported_protocol_versions: '1.3',
          },
        },
        at,
      ),
      eventsForNotify(
        'd',
        'e',
        'm2',
        {
          subscription_id: 's',
          event: {
            obj_path: 'Device.',
            event_name: 'Boot!',
            params: {
              Cause: 'RemoteReboot',
              CommandKey: 'k',
              FirmwareUpdated: 'true',
              ParameterMap: '{"Device.DeviceInfo.SoftwareVersion":"3.0.0"}',
            },
          },
        },
        at,
      ),
      eventsForNotify(
        'd',
        'e',
        'm3',
        {
          subscription_id: 's',
          event: {
            obj_path: 'Device.LocalAgent.',
            event_name: 'TransferComplete!',
            params: { FaultCode: '7022', CommandKey: 'dl' },
          },
        },
        at,
      ),
      eventsForNotify(
        'd',
        'e',
        'm4',
        { subscription_id: 's', value_change: { param_path: 'Device.X', param_value: '1' } },
        at,
      ),
      eventsForNotify(
        'd',
        'e',
        'm5',
        {
          subscription_id: 's',
          oper_complete: {
            obj_path: 'Device.',
            command_name: 'Reboot()',
            command_key: 'k',
            cmd_failure: { err_code: 7022, err_msg: 'no' },
          },
        },
        at,
      ),
      eventsForNotify(
        'd',
        'e',
        'm6',
        { subscription_id: 's', obj_creation: { obj_path: 'Device.NAT.PortMapping.2.' } },
        at,
      ),
      eventsForNotify(
        'd',
        'e',
        'm7',
        { subscription_id: 's', obj_deletion: { obj_path: 'Device.NAT.PortMapping.2.' } },
        at,
      ),
      eventsForNotify(
        'd',
        'e',
        'm8',
        { subscription_id: 's', event: { obj_path: 'Device.WiFi.', event_name: 'Custom!', params: {} } },
        at,
      ),
    ];
    expect(cases.map((c) => c[0]?.kind)).toEqual([
      'bootstrap',
      'boot',
      'transfer_complete',
      'value_change',
      'operation_complete',
      'inform',
      'inform',
      'inform',
    ]);
    for (const c of cases) expect(DeviceEvent.safeParse(c[0]).success).toBe(true);
    expect(cases[1]?.[0]?.payload).toMatchObject({
      firmwareUpdated: true,
      softwareVersion: '3.0.0',
      commandKey: 'k',
    });
    // A TR-369 code in TransferComplete! becomes the CWMP fault a TR-069 device would report, and is kept.
    expect(cases[2]?.[0]?.payload).toMatchObject({ faultCode: 9010, uspFaultCode: 7022 });
    expect(cases[4]?.[0]?.payload).toMatchObject({
      operation: 'Device.Reboot()',
      result: 'failure',
      errCode: 7022,
    });
  });
});

describe('batchingSink', () => {
  it('groups concurrent appends into one write and settles each caller after it', async () => {
    const writes: number[] = [];
    const sink = batchingSink(async (events) => {
      writes.push(events.length);
    });
    const ev = { deviceId: 'd', at, kind: 'boot' as const, payload: {} };
    await Promise.all(Array.from({ length: 50 }, () => sink.append([ev])));
    expect(writes).toEqual([50]);
  });

  it('rejects every caller of a failed batch (none of them may be acknowledged)', async () => {
    const sink = batchingSink(async () => {
      throw new Error('db down');
    });
    const ev = { deviceId: 'd', at, kind: 'boot' as const, payload: {} };
    const results = await Promise.allSettled([sink.append([ev]), sink.append([ev])]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
  });
});
