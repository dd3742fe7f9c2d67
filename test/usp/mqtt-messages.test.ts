import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UspController } from '../../executor/usp/controller.js';
import { UspRequestError } from '../../executor/usp/errors.js';
import type { memorySink } from '../../executor/usp/event-sink.js';
import type { AgentHost } from '../../sim/usp/host.js';
import { device, mqttAgents, mqttController, until } from './harness.js';

describe('USP over MQTT 5 through mosquitto: onboarding and every request message', () => {
  let controller: UspController;
  let sink: ReturnType<typeof memorySink>;
  let host: AgentHost;
  let agent: string;

  beforeAll(async () => {
    const c = await mqttController();
    controller = c.controller;
    sink = c.sink;
    host = await mqttAgents({ controllerId: c.endpointId, devices: [device('MSG0001')] });
    agent = [...host.agents.keys()][0] as string;
    host.powerOnAll();
    await until('onboarding', () => controller.isOnboarded(agent));
  });
  afterAll(async () => {
    await host?.stop();
    await controller?.stop();
  });

  it('persists the OnBoardRequest before the NotifyResp and creates the onboarding subscriptions', async () => {
    expect(agent).toBe('os::00A0C9-MSG0001');
    const boot = sink.events.find((e) => e.kind === 'bootstrap');
    expect(boot?.deviceId).toBe(agent);
    expect(boot?.payload).toMatchObject({ oui: '00A0C9', productClass: 'HGW-500', serialNumber: 'MSG0001' });
    const a = host.agents.get(agent);
    expect(a?.pendingNotifies()).toBe(0);
    const ids = await controller.get(agent, ['Device.LocalAgent.Subscription.*.ID']);
    expect(Object.values(ids).sort()).toEqual([
      'fb-boot',
      'fb-opcomplete',
      'fb-periodic',
      'fb-transfer',
      'fb-valuechange',
    ]);
  });

  it('Get returns values grouped by object, and a per-path error for an unknown path', async () => {
    const v = await controller.get(agent, ['Device.DeviceInfo.SoftwareVersion', 'Device.WiFi.SSID.']);
    expect(v['Device.DeviceInfo.SoftwareVersion']).toBe('2.1.0');
    expect(v['Device.WiFi.SSID.1.SSID']).toBe('home-2g');
    expect(v['Device.WiFi.SSID.2.SSID']).toBe('home-5g');
    const detailed = await controller.getDetailed(agent, ['Device.Nope.', 'Device.WiFi.Radio.*.Channel']);
    expect(detailed.req_path_results[0]?.err_code).toBe(7026);
    expect(detailed.req_path_results[1]?.resolved_path_results.map((r) => r.resolved_path)).toEqual([
      'Device.WiFi.Radio.1.',
      'Device.WiFi.Radio.2.',
    ]);
  });

  it('GetSupportedDM reports objects, parameters, async commands and events', async () => {
    const r = await controller.getSupportedDM(agent, ['Device.']);
    const objs = r.req_obj_results[0]?.supported_objs ?? [];
    const fw = objs.find((o) => o.supported_obj_path === 'Device.DeviceInfo.FirmwareImage.{i}.');
    expect(fw?.is_multi_instance).toBe(true);
    expect(fw?.supported_commands?.map((c) => [c.command_name, c.command_type])).toEqual([
      ['Download()', 'CMD_ASYNC'],
      ['Activate()', 'CMD_ASYNC'],
    ]);
    const root = objs.find((o) => o.supported_obj_path === 'Device.');
    expect(root?.supported_events?.map((e) => e.event_name)).toContain('Boot!');
    const radio = objs.find((o) => o.supported_obj_path === 'Device.WiFi.Radio.{i}.');
    expect(radio?.supported_params?.find((p) => p.param_name === 'Channel')).toMatchObject({
      access: 'PARAM_READ_WRITE',
      value_type: 'PARAM_UNSIGNED_INT',
    });
  });

  it('GetInstances lists table instances, first level only when asked', async () => {
    const r = await controller.getInstances(agent, ['Device.WiFi.'], true);
    expect(r.req_path_results[0]?.curr_insts).toEqual([]);
    const all = await controller.getInstances(agent, ['Device.WiFi.SSID.'], true);
    expect(all.req_path_results[0]?.curr_insts.map((i) => i.instantiated_obj_path)).toEqual([
      'Device.WiFi.SSID.1.',
      'Device.WiFi.SSID.2.',
    ]);
  });

  it('GetSupportedProtocol names Record versions 1.0 to 1.4', async () => {
    expect(await controller.getSupportedProtocol(agent)).toEqual(['1.0', '1.1', '1.2', '1.3', '1.4']);
  });

  it('Set applies values and a ValueChange subscription reports them', async () => {
    const vc = controller.waitForNotification(
      (n) => n.notify.value_change?.param_path === 'Device.ManagementServer.PeriodicInformInterval',
    );
    const r = await controller.set(agent, {
      allow_partial: false,
      update_objs: [
        {
          obj_path: 'Device.ManagementServer.',
          param_settings: [{ param: 'PeriodicInformInterval', value: '600', required: true }],
        },
      ],
    });
    expect(
      r.updated_obj_results[0]?.oper_status.oper_success?.updated_inst_results[0]?.updated_params,
    ).toEqual({
      PeriodicInformInterval: '600',
    });
    await vc;
    expect(sink.events.some((e) => e.kind === 'value_change')).toBe(true);
    expect(
      (await controller.get(agent, ['Device.ManagementServer.PeriodicInformInterval']))[
        'Device.ManagementServer.PeriodicInformInterval'
      ],
    ).toBe('600');
  });

  it('Set with allow_partial=false fails as a whole with per-parameter errors and changes nothing', async () => {
    const err = await controller
      .set(agent, {
        allow_partial: false,
        update_objs: [
          {
            obj_path: 'Device.WiFi.SSID.1.',
            param_settings: [{ param: 'SSID', value: 'changed', required: true }],
          },
          {
            obj_path: 'Device.WiFi.Radio.1.',
            param_settings: [{ param: 'Channel', value: '99', required: true }],
          },
        ],
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UspRequestError);
    expect((err as UspRequestError).params).toEqual([
      { path: 'Device.WiFi.Radio.1.Channel', code: 7012, message: expect.stringContaining('outside') },
    ]);
    const v = await controller.get(agent, ['Device.WiFi.SSID.1.SSID', 'Device.WiFi.Radio.1.Channel']);
    expect(v).toEqual({ 'Device.WiFi.SSID.1.SSID': 'home-2g', 'Device.WiFi.Radio.1.Channel': '6' });
  });

  it('Set with allow_partial=true keeps the good objects, fails the object whose required parameter failed, and reports non-required errors', async () => {
    const r = await controller.set(agent, {
      allow_partial: true,
      update_objs: [
        {
          obj_path: 'Device.WiFi.SSID.1.',
          param_settings: [
            { param: 'SSID', value: 'partial-ok', required: true },
            { param: 'Bogus', value: 'x', required: false },
          ],
        },
        {
          obj_path: 'Device.WiFi.Radio.1.',
          param_settings: [{ param: 'Channel', value: '99', required: true }],
        },
        {
          obj_path: 'Device.DeviceInfo.',
          param_settings: [{ param: 'SoftwareVersion', value: '9', required: true }],
        },
      ],
    });
    const [ssid, radio, ro] = r.updated_obj_results;
    const inst = ssid?.oper_status.oper_success?.updated_inst_results[0];
    expect(inst?.updated_params).toEqual({ SSID: 'partial-ok' });
    expect(inst?.param_errs).toEqual([{ param: 'Bogus', err_code: 7010, err_msg: expect.any(String) }]);
    expect(radio?.oper_status.oper_failure?.err_code).toBe(7021);
    expect(radio?.oper_status.oper_failure?.updated_inst_failures?.[0]?.param_errs[0]?.err_code).toBe(7012);
    expect(ro?.oper_status.oper_failure?.updated_inst_failures?.[0]?.param_errs[0]?.err_code).toBe(7013);
    const v = await controller.get(agent, ['Device.WiFi.SSID.1.SSID', 'Device.WiFi.Radio.1.Channel']);
    expect(v).toEqual({ 'Device.WiFi.SSID.1.SSID': 'partial-ok', 'Device.WiFi.Radio.1.Channel': '6' });
  });

  it('Add creates an instance (ObjectCreation notified) and Delete removes it (ObjectDeletion notified)', async () => {
    await controller.add(agent, [
      {
        obj_path: 'Device.LocalAgent.Subscription.',
        param_settings: [
          { param: 'ID', value: 'objs', required: true },
          { param: 'NotifType', value: 'ObjectCreation', required: true },
          { param: 'ReferenceList', value: 'Device.NAT.PortMapping.', required: true },
          { param: 'Enable', value: 'true', required: true },
        ],
      },
      {
        obj_path: 'Device.LocalAgent.Subscription.',
        param_settings: [
          { param: 'ID', value: 'objd', required: true },
          { param: 'NotifType', value: 'ObjectDeletion', required: true },
          { param: 'ReferenceList', value: 'Device.NAT.PortMapping.', required: true },
          { param: 'Enable', value: 'true', required: true },
        ],
      },
    ]);
    const created = controller.waitForNotification((n) => n.notify.obj_creation !== undefined);
    const r = await controller.add(agent, [
      {
        obj_path: 'Device.NAT.PortMapping.',
        param_settings: [{ param: 'Description', value: 'game', required: true }],
      },
    ]);
    const path = r.created_obj_results[0]?.oper_status.oper_success?.instantiated_path;
    expect(path).toMatch(/^Device\.NAT\.PortMapping\.\d+\.$/);
    const insts = await controller.getInstances(agent, ['Device.NAT.PortMapping.'], true);
    expect(insts.req_path_results[0]?.curr_insts.map((i) => i.instantiated_obj_path)).toContain(path);
    expect((await created).notify.obj_creation?.obj_path).toBe(path);
    expect((await controller.get(agent, [`${path}Description`]))[`${path}Description`]).toBe('game');

    const bad = await controller
      .add(agent, [
        {
          obj_path: 'Device.NAT.PortMapping.',
          param_settings: [{ param: 'Enable', value: 'maybe', required: true }],
        },
      ])
      .catch((e: unknown) => e);
    expect((bad as UspRequestError).code).toBe(7021);

    const deleted = controller.waitForNotification((n) => n.notify.obj_deletion !== undefined);
    const d = await controller.delete(agent, [path as string]);
    expect(d.deleted_obj_results[0]?.oper_status.oper_success?.affected_paths).toEqual([path]);
    expect((await deleted).notify.obj_deletion?.obj_path).toBe(path);
    const gone = await controller.delete(agent, ['Device.NAT.PortMapping.7.'], true);
    expect(gone.deleted_obj_results[0]?.oper_status.oper_failure?.err_code).toBe(7016);
  });

  it('an unknown command is a USP Error 7026 mapped to the CWMP 9005 per-item result', async () => {
    const err = await controller.operate(agent, 'Device.SelfDestruct()', 'k1').catch((e: unknown) => e);
    expect((err as UspRequestError).code).toBe(7026);
    const { faultFrom } = await import('../../executor/usp/errors.js');
    expect(faultFrom(err as UspRequestError)).toMatchObject({
      reason: 'device_fault',
      code: 7026,
      message: expect.stringContaining('CWMP 9005'),
    });
  });

  it('Reboot() answers synchronously, then Boot! with the CommandKey is persisted and acknowledged', async () => {
    const boot = controller.waitForNotification((n) => n.notify.event?.event_name === 'Boot!');
    const r = await controller.operate(agent, 'Device.Reboot()', 'reboot-1');
    expect(r.operation_results[0]?.req_output_args).toBeDefined();
    const n = await boot;
    expect(n.notify.send_resp).toBe(true);
    expect(n.notify.event?.params?.CommandKey).toBe('reboot-1');
    const stored = sink.events.find((e) => e.kind === 'boot');
    expect(stored?.payload).toMatchObject({
      commandKey: 'reboot-1',
      cause: 'RemoteReboot',
      firmwareUpdated: false,
    });
    await until('NotifyResp for Boot!', () => host.agents.get(agent)?.pendingNotifies() === 0);
  });
});
