import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UspController } from '../../executor/usp/controller.js';
import type { memorySink } from '../../executor/usp/event-sink.js';
import { imageBytes, modelByKey } from '../../sim/models.js';
import type { AgentHost } from '../../sim/usp/host.js';
import { device, mqttAgents, mqttController, until } from './harness.js';

const hgw = modelByKey('hgw500');
const images: Record<string, Buffer> = {
  'http://files.test/hgw-3.0.0.img': imageBytes(hgw, '3.0.0'),
  'http://files.test/ont.img': imageBytes(modelByKey('ontx1'), '1.5.0'),
};
const fetchImage = async (url: string) => images[url] ?? null;

describe('firmware over USP: Download() and Activate() complete by OperationComplete, then Boot!', () => {
  let controller: UspController;
  let sink: ReturnType<typeof memorySink>;
  let host: AgentHost;
  let agent: string;

  beforeAll(async () => {
    const c = await mqttController();
    controller = c.controller;
    sink = c.sink;
    host = await mqttAgents({ controllerId: c.endpointId, devices: [device('FW0001')], fetchImage });
    agent = [...host.agents.keys()][0] as string;
    host.powerOnAll();
    await until('onboarding', () => controller.isOnboarded(agent));
  });
  afterAll(async () => {
    await host?.stop();
    await controller?.stop();
  });

  it('Download() answers with a request path, then OperationComplete and TransferComplete! (fault 0) arrive', async () => {
    const done = controller.waitForNotification((n) => n.notify.oper_complete?.command_key === 'dl-1');
    const transfer = controller.waitForNotification(
      (n) => n.notify.event?.event_name === 'TransferComplete!',
    );
    const r = await controller.operate(agent, 'Device.DeviceInfo.FirmwareImage.2.Download()', 'dl-1', {
      URL: 'http://files.test/hgw-3.0.0.img',
      AutoActivate: 'false',
      FileSize: String(images['http://files.test/hgw-3.0.0.img']?.length),
    });
    expect(r.operation_results[0]?.req_obj_path).toMatch(/^Device\.LocalAgent\.Request\.\d+\.$/);
    const oc = await done;
    expect(oc.notify.oper_complete).toMatchObject({
      obj_path: 'Device.DeviceInfo.FirmwareImage.2.',
      command_name: 'Download()',
    });
    expect(oc.notify.oper_complete?.cmd_failure).toBeUndefined();
    expect((await transfer).notify.event?.params?.FaultCode).toBe('0');
    expect(sink.events.find((e) => e.kind === 'transfer_complete')?.payload).toMatchObject({
      faultCode: 0,
      commandKey: 'dl-1',
    });
    const v = await controller.get(agent, [
      'Device.DeviceInfo.FirmwareImage.2.Version',
      'Device.DeviceInfo.SoftwareVersion',
    ]);
    expect(v).toEqual({
      'Device.DeviceInfo.FirmwareImage.2.Version': '3.0.0',
      'Device.DeviceInfo.SoftwareVersion': '2.1.0',
    });
  });

  it('Activate() in a TimeWindow reboots into the new image: Boot! with FirmwareUpdated, then OperationComplete', async () => {
    const boot = controller.waitForNotification((n) => n.notify.event?.event_name === 'Boot!');
    const done = controller.waitForNotification((n) => n.notify.oper_complete?.command_key === 'act-1');
    const r = await controller.operate(agent, 'Device.DeviceInfo.FirmwareImage.2.Activate()', 'act-1', {
      'TimeWindow.1.Start': '10',
      'TimeWindow.1.End': '3600',
      'TimeWindow.1.Mode': 'AnyTime',
      'TimeWindow.1.MaxRetries': '1',
    });
    expect(r.operation_results[0]?.req_obj_path).toBeTruthy();
    const b = await boot;
    expect(b.notify.event?.params).toMatchObject({ FirmwareUpdated: 'true', CommandKey: 'act-1' });
    expect((await done).notify.oper_complete?.command_name).toBe('Activate()');
    const stored = sink.events.filter((e) => e.kind === 'boot').at(-1);
    expect(stored?.payload).toMatchObject({ firmwareUpdated: true, softwareVersion: '3.0.0' });
    expect(
      (await controller.get(agent, ['Device.DeviceInfo.SoftwareVersion']))[
        'Device.DeviceInfo.SoftwareVersion'
      ],
    ).toBe('3.0.0');
  });

  it('a corrupt image fails the Download() with a command failure and a CWMP-equivalent transfer fault', async () => {
    const done = controller.waitForNotification((n) => n.notify.oper_complete?.command_key === 'dl-bad');
    await controller.operate(agent, 'Device.DeviceInfo.FirmwareImage.1.Download()', 'dl-bad', {
      URL: 'http://files.test/ont.img',
    });
    const oc = await done;
    expect(oc.notify.oper_complete?.cmd_failure?.err_code).toBe(7022);
    await until('transfer event', () =>
      sink.events.some((e) => e.kind === 'transfer_complete' && e.payload.commandKey === 'dl-bad'),
    );
    const ev = sink.events.find((e) => e.kind === 'transfer_complete' && e.payload.commandKey === 'dl-bad');
    expect(ev?.payload?.faultCode).toBe(9018);
  });

  it('Download() of an unreachable URL reports fault 9010 (download failure)', async () => {
    const done = controller.waitForNotification((n) => n.notify.oper_complete?.command_key === 'dl-404');
    await controller.operate(agent, 'Device.DeviceInfo.FirmwareImage.1.Download()', 'dl-404', {
      URL: 'http://files.test/missing',
    });
    expect((await done).notify.oper_complete?.cmd_failure).toBeDefined();
    await until('transfer event', () =>
      sink.events.some((e) => e.kind === 'transfer_complete' && e.payload.commandKey === 'dl-404'),
    );
    expect(
      sink.events.find((e) => e.payload?.commandKey === 'dl-404' && e.kind === 'transfer_complete')?.payload
        ?.faultCode,
    ).toBe(9010);
  });
});
