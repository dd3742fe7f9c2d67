import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { BatchingSocket, MqttMtp } from '../../executor/usp/mtp/mqtt.js';
import type { InboundRecord } from '../../executor/usp/mtp/mtp.js';
import { agentTopic, controllerTopic, mqttAgentHost } from '../../sim/usp/host.js';
import { device, FAST, mqttController, uniq, until } from './harness.js';

/** A TCP server collecting what it receives (bytes and the number of reads). */
async function sink() {
  const chunks: Buffer[] = [];
  const server = net.createServer((c) => c.on('data', (d) => chunks.push(d)));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return { chunks, port, close: () => new Promise<void>((r) => server.close(() => r())) };
}

describe('BatchingSocket: what one event-loop turn writes leaves in one send', () => {
  it('holds mqtt-packet style cork/nextTick-uncork pairs until the turn ends, in order', async () => {
    const s = await sink();
    const sock = new BatchingSocket().connect({ host: '127.0.0.1', port: s.port });
    await new Promise<void>((r) => sock.once('connect', r));
    for (let i = 0; i < 50; i++) {
      // mqtt-packet: cork, write the pieces of one packet, uncork on the next tick.
      sock.cork();
      sock.write(Buffer.from([i]));
      sock.write(`p${i};`);
      process.nextTick(() => sock.uncork());
      await Promise.resolve(); // a later packet from a promise continuation, same turn
    }
    await until('bytes arrive', () => Buffer.concat(s.chunks).length > 0);
    await new Promise((r) => setTimeout(r, 50));
    expect(sock.flushes).toBe(1);
    const got = Buffer.concat(s.chunks);
    const want = Buffer.concat(
      Array.from({ length: 50 }, (_, i) => Buffer.concat([Buffer.from([i]), Buffer.from(`p${i};`)])),
    );
    expect(got.equals(want)).toBe(true);
    // end() while a turn is held still sends what was written before it.
    sock.cork();
    sock.write('last;');
    sock.end('bye');
    await until('end arrives', () => Buffer.concat(s.chunks).toString('latin1').endsWith('last;bye'));
    await s.close();
  });
});

describe('MQTT transport: Records at QoS 1 (default) and QoS 0', () => {
  it.each([1, 0] as const)('QoS %s: a burst of Records arrives complete, in a few sends', async (qos) => {
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
      const stream = (ma as unknown as { client: { stream: BatchingSocket } }).client.stream;
      expect(stream).toBeInstanceOf(BatchingSocket);
      const before = stream.flushes;
      // Bytes that are not a Record still travel (the endpoint above decides what they are).
      await Promise.all(
        Array.from({ length: 200 }, (_, i) => ma.send(`t/${b}`, new Uint8Array([i & 255, 7]))),
      );
      await until('all 200 arrive', () => got.length === 200);
      expect(got.map((r) => r.bytes[0])).toEqual(Array.from({ length: 200 }, (_, i) => i & 255));
      expect(new Set(got.map((r) => r.replyTo))).toEqual(new Set([`t/${a}`]));
      expect(stream.flushes - before).toBeLessThan(20);
    } finally {
      await Promise.all([ma.stop(), mb.stop()]);
    }
  });

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
