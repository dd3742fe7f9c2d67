import { describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { MqttMtp } from '../../executor/usp/mtp/mqtt.js';
import type { InboundRecord } from '../../executor/usp/mtp/mtp.js';
import { agentTopic, controllerTopic, mqttAgentHost } from '../../sim/usp/host.js';
import { device, FAST, mqttController, uniq, until } from './harness.js';

describe('MQTT transport: Records at QoS 1 (default) and QoS 0', () => {
  it.each([1, 0] as const)(
    'QoS %s: a burst of Records arrives complete and in order, with the reply topic',
    async (qos) => {
      const url = inject('mqttUrl');
      const a = uniq('proto::qa');
      const b = uniq('proto::qb');
      const mk = (id: string) =>
        new MqttMtp({
          url,
          protocolVersion: 5,
          endpointId: id,
          subscriptions: [`t/${id}`],
          replyTopic: `t/${id}`,
          backoff: FAST,
          qos,
        });
      const ma = mk(a);
      const mb = mk(b);
      const got: InboundRecord[] = [];
      mb.onRecord((r) => got.push(r));
      await Promise.all([ma.start(), mb.start()]);
      try {
        // Bytes that are not a Record still travel (the endpoint above decides what they are).
        await Promise.all(
          Array.from({ length: 200 }, (_, i) => ma.send(`t/${b}`, new Uint8Array([i & 255, 7]))),
        );
        await until('all 200 arrive', () => got.length === 200);
        expect(got.map((r) => r.bytes[0])).toEqual(Array.from({ length: 200 }, (_, i) => i & 255));
        expect(new Set(got.map((r) => r.replyTo))).toEqual(new Set([`t/${a}`]));
      } finally {
        await Promise.all([ma.stop(), mb.stop()]);
      }
    },
  );

  it('QoS 0 at both ends: Set round trips and a failed required parameter behave as with QoS 1', async () => {
    const url = inject('mqttUrl');
    const ctrlId = `proto::${uniq('ctrlq0')}`;
    const mtp = new MqttMtp({
      url,
      protocolVersion: 5,
      endpointId: ctrlId,
      subscriptions: [controllerTopic(ctrlId)],
      replyTopic: controllerTopic(ctrlId),
      backoff: FAST,
      qos: 0,
    });
    const c = await mqttController({ endpointId: ctrlId, mtps: [mtp], onboarding: false });
    const host = mqttAgentHost({
      url,
      devices: [device(uniq('Q0A')), device(uniq('Q0B'))],
      backoff: FAST,
      qos: 0,
      agent: { controllerId: ctrlId, onboarded: true, timeScale: 0.01 },
    });
    await host.start();
    try {
      host.powerOnAll();
      const agents = [...host.agents.keys()];
      expect(agents.map(agentTopic).every((t) => t.startsWith('usp/agent/'))).toBe(true);
      const results = await Promise.all(
        Array.from({ length: 100 }, (_, i) =>
          c.controller.set(agents[i % 2] as string, {
            allow_partial: false,
            update_objs: [
              {
                obj_path: 'Device.WiFi.SSID.1.',
                param_settings: [{ param: 'SSID', value: `q0-${i}`, required: true }],
              },
            ],
          }),
        ),
      );
      expect(results).toHaveLength(100);
      expect(await c.controller.get(agents[0] as string, ['Device.WiFi.SSID.1.SSID'])).toEqual({
        'Device.WiFi.SSID.1.SSID': 'q0-98',
      });
      await expect(
        c.controller.set(agents[1] as string, {
          allow_partial: false,
          update_objs: [
            {
              obj_path: 'Device.DeviceInfo.',
              param_settings: [{ param: 'NoSuchParameter', value: 'x', required: true }],
            },
          ],
        }),
      ).rejects.toMatchObject({ name: 'UspRequestError' });
      expect(await c.controller.get(agents[1] as string, ['Device.WiFi.SSID.1.SSID'])).toEqual({
        'Device.WiFi.SSID.1.SSID': 'q0-99',
      });
    } finally {
      await host.stop();
      await c.controller.stop();
    }
  });
});
