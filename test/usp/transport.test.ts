import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { MqttMtp } from '../../executor/usp/mtp/mqtt.js';
import { WsServerMtp } from '../../executor/usp/mtp/websocket.js';
import { type MqttBroker, startMosquitto } from '../../platform/mqtt.js';
import { freePort } from '../../platform/process.js';
import { imageBytes, modelByKey } from '../../sim/models.js';
import { wsAgentHost } from '../../sim/usp/host.js';
import { device, FAST, mqttAgents, mqttController, uniq, until } from './harness.js';

/**
 * A TCP relay to the test broker that can be cut (its listener closed, its links dropped) and opened
 * again on the same port. `pass` sees each chunk from the client; false drops the link instead.
 */
async function brokerRelay(pass: (chunk: Buffer) => boolean = () => true) {
  const broker = new URL(inject('mqttUrl'));
  const links = new Set<net.Socket>();
  const server = net.createServer((down) => {
    const up = net.connect(Number(broker.port), broker.hostname);
    for (const s of [down, up]) {
      links.add(s);
      s.on('error', () => {}).on('close', () => links.delete(s));
    }
    down.on('data', (chunk: Buffer) => {
      if (pass(chunk)) up.write(chunk);
      else for (const s of [down, up]) s.destroy();
    });
    up.pipe(down);
  });
  const port = await freePort();
  const listen = () => new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
  await listen();
  return {
    url: `mqtt://127.0.0.1:${port}`,
    listen,
    cut: () =>
      new Promise<void>((r) => {
        if (!server.listening) r();
        else server.close(() => r());
        for (const s of links) s.destroy();
      }),
  };
}

describe('MQTT 3.1.1: reply-to carried in the topic name', () => {
  it('onboards, reads and writes with both ends on 3.1.1', async () => {
    const c = await mqttController({ protocolVersion: 4 });
    const host = await mqttAgents({
      controllerId: c.endpointId,
      devices: [device('V311')],
      protocolVersion: 4,
    });
    try {
      const agent = [...host.agents.keys()][0] as string;
      host.powerOnAll();
      await until('onboarding', () => c.controller.isOnboarded(agent));
      await c.controller.set(agent, {
        allow_partial: false,
        update_objs: [
          {
            obj_path: 'Device.WiFi.SSID.2.',
            param_settings: [{ param: 'SSID', value: 'via-311', required: true }],
          },
        ],
      });
      expect(await c.controller.get(agent, ['Device.WiFi.SSID.2.SSID'])).toEqual({
        'Device.WiFi.SSID.2.SSID': 'via-311',
      });
      expect(c.sink.events.map((e) => e.kind)).toContain('bootstrap');
    } finally {
      await host.stop();
      await c.controller.stop();
    }
  });
});

describe('WebSocket MTP: agent connects to the controller with v1.usp and eid=', () => {
  it('onboards, sets, reboots with Boot!, and reconnects after its session is dropped', async () => {
    const server = new WsServerMtp({ endpointId: 'proto::ws-ctrl-1', port: 0 });
    const c = await mqttController({ endpointId: 'proto::ws-ctrl-1', mtps: [server] });
    const host = wsAgentHost({
      url: server.url,
      device: device('WS0001', undefined, 'ontx1'),
      agent: { controllerId: c.endpointId, timeScale: 0.01, notifyRetryMs: 20_000, sendConnectRecord: true },
      backoff: FAST,
    });
    try {
      await host.start();
      const agent = [...host.agents.keys()][0] as string;
      host.powerOnAll();
      await until('onboarding', () => c.controller.isOnboarded(agent));
      expect(server.connectedPeers()).toEqual([agent]);
      const r = await c.controller.set(agent, {
        allow_partial: true,
        update_objs: [
          {
            obj_path: 'Device.WiFi.Radio.2.',
            param_settings: [{ param: 'Channel', value: '44', required: true }],
          },
        ],
      });
      expect(r.updated_obj_results[0]?.oper_status.oper_success).toBeDefined();
      const boot = c.controller.waitForNotification((n) => n.notify.event?.event_name === 'Boot!');
      await c.controller.operate(agent, 'Device.Reboot()', 'ws-reboot');
      expect((await boot).deviceId).toBe(agent);

      server.disconnectPeer(agent);
      await until('session dropped', () => server.connectedPeers().length === 0, 3_000).catch(() => {});
      await until('reconnected', () => server.connectedPeers().includes(agent), 5_000);
      expect(await c.controller.get(agent, ['Device.WiFi.Radio.2.Channel'])).toEqual({
        'Device.WiFi.Radio.2.Channel': '44',
      });
    } finally {
      await host.stop();
      await c.controller.stop();
    }
  });
});

describe('outages lose no result', () => {
  let broker: MqttBroker | undefined;
  let dir: string;
  afterAll(async () => {
    await broker?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('an async Download() finishing while the broker is down is delivered and persisted after the restart', async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'usp-broker-'));
    broker = await startMosquitto({ dir, port: await freePort() });
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const image = imageBytes(modelByKey('hgw500'), '2.2.0');
    const c = await mqttController({ url: broker.url });
    const host = await mqttAgents({
      url: broker.url,
      controllerId: c.endpointId,
      devices: [device('OUT0001')],
      fetchImage: async () => {
        await gate;
        return image;
      },
    });
    try {
      const agent = [...host.agents.keys()][0] as string;
      host.powerOnAll();
      await until('onboarding', () => c.controller.isOnboarded(agent));
      await c.controller.operate(agent, 'Device.DeviceInfo.FirmwareImage.2.Download()', 'outage-dl', {
        URL: 'http://x/img',
      });

      await broker.stop();
      await until('both ends see the outage', () => !c.mtp.isUp() && !host.mtp.isUp(), 5_000);
      release();
      // The agent finished while offline: its notifications wait for the broker.
      await new Promise((r) => setTimeout(r, 300));
      expect(c.sink.events.some((e) => e.kind === 'transfer_complete')).toBe(false);
      // A controller request issued during the outage completes once the broker is back.
      const pendingGet = c.controller.get(agent, ['Device.DeviceInfo.FirmwareImage.2.Version']);
      await broker.restart();

      const done = await c.controller
        .waitForNotification((n) => n.notify.oper_complete?.command_key === 'outage-dl', 15_000)
        .catch(() => undefined);
      await until(
        'transfer result persisted',
        () => c.sink.events.some((e) => e.kind === 'transfer_complete'),
        15_000,
      );
      expect(done === undefined || done.notify.oper_complete?.cmd_failure === undefined).toBe(true);
      expect(c.sink.events.filter((e) => e.kind === 'transfer_complete')).toHaveLength(1);
      expect(
        c.sink.events.some((e) => e.kind === 'operation_complete' && e.payload.commandKey === 'outage-dl'),
      ).toBe(true);
      expect(await pendingGet).toEqual({ 'Device.DeviceInfo.FirmwareImage.2.Version': '2.2.0' });
      await until('all NotifyResp received', () => host.agents.get(agent)?.pendingNotifies() === 0, 10_000);
    } finally {
      await host.stop();
      await c.controller.stop();
    }
  }, 60_000);

  it('a request waiting out a cut of the controller link is resent on reconnect, unless its deadline passed: that one never reaches the agent', async () => {
    // The controller reaches the broker through a TCP relay that can be cut; the agent stays connected.
    const relay = await brokerRelay();
    const c = await mqttController({ url: relay.url });
    const host = await mqttAgents({ controllerId: c.endpointId, devices: [device('LATE0001')] });
    try {
      const [eid, agent] = [...host.agents][0]!;
      const reached: string[] = [];
      const handle = agent.handle.bind(agent);
      agent.handle = (ctx) => {
        const key = ctx.msg.body.request?.operate?.command_key;
        if (key) reached.push(key);
        handle(ctx);
      };
      host.powerOnAll();
      await until('onboarding', () => c.controller.isOnboarded(eid));
      await relay.cut();
      await until('the controller sees the outage', () => !c.mtp.isUp(), 5_000);

      const download = (key: string, deadline: Date) =>
        c.controller.operate(
          eid,
          'Device.DeviceInfo.FirmwareImage.2.Download()',
          key,
          { URL: 'http://x/img' },
          // A timeout longer than this test: only the resend on reconnect can answer in time.
          { timeoutMs: 120_000, deadline },
        );
      const late = download('late', new Date(Date.now() + 500));
      const inTime = download('in-time', new Date(Date.now() + 60_000));
      await expect(late).rejects.toThrow(/deadline passed/);
      await relay.listen();
      const r = await inTime;
      expect(r.operation_results[0]?.req_obj_path).toMatch(/^Device\.LocalAgent\.Request\.\d+\.$/);
      // Anything still queued below the USP layer arrives with the reconnect.
      await new Promise((r2) => setTimeout(r2, 1_000));
      expect(reached).toEqual(['in-time']);
    } finally {
      await host.stop();
      await c.controller.stop();
      await relay.cut();
    }
  }, 60_000);

  it('a connection dropped between CONNACK and SUBACK is not a refused subscription: the MTP reconnects and subscribes', async () => {
    // The first connection is cut as the client's SUBSCRIBE comes (MQTT packet type 8; the client
    // sends it only after the CONNACK, so it starts a write of its own).
    let cuts = 0;
    const relay = await brokerRelay((chunk) => {
      if (cuts > 0 || chunk[0]! >> 4 !== 8) return true;
      cuts += 1;
      return false;
    });
    const id = uniq('proto::suback');
    const mtp = new MqttMtp({
      url: relay.url,
      protocolVersion: 5,
      endpointId: id,
      subscriptions: [`t/${id}`],
      replyTopic: `t/${id}`,
      backoff: FAST,
    });
    const peer = new MqttMtp({
      url: inject('mqttUrl'),
      protocolVersion: 5,
      endpointId: `${id}-peer`,
      subscriptions: [`t/${id}-peer`],
      replyTopic: `t/${id}-peer`,
      backoff: FAST,
    });
    const got: number[] = [];
    mtp.onRecord((r) => got.push(r.bytes[0]!));
    try {
      await Promise.all([mtp.start(), peer.start()]);
      expect(cuts).toBe(1);
      expect(mtp.isUp()).toBe(true);
      await peer.send(`t/${id}`, new Uint8Array([42]));
      await until('the record arrives over the second connection', () => got.length === 1);
      expect(got).toEqual([42]);
    } finally {
      await Promise.all([mtp.stop(), peer.stop()]);
      await relay.cut();
    }
  });

  it('a Notify whose events cannot be stored is not acknowledged; the retry is stored exactly once', async () => {
    const c = await mqttController({ onboarding: false });
    const host = await mqttAgents({
      controllerId: c.endpointId,
      devices: [device('PERSIST1')],
      onboarded: true,
      subscriptions: [
        {
          ID: 'fb-boot',
          Enable: 'true',
          NotifType: 'Event',
          ReferenceList: 'Device.Boot!',
          NotifRetry: 'true',
        },
      ],
    });
    try {
      const agent = host.agents.values().next().value;
      c.sink.failNext = 1;
      agent?.powerOn();
      await until('stored after retry', () => c.sink.events.length === 1, 10_000);
      await until('acknowledged', () => agent?.pendingNotifies() === 0, 10_000);
      expect(c.controller.stats.persistFailures).toBe(1);
      expect(agent?.stats.notifiesSent).toBeGreaterThanOrEqual(2);
      expect(c.sink.events[0]?.kind).toBe('boot');
    } finally {
      await host.stop();
      await c.controller.stop();
    }
  });
});
