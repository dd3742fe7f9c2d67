import mqtt, { type MqttClient } from 'mqtt';
import protobuf from 'protobufjs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import WebSocket from 'ws';
import {
  decodeMsg,
  decodeRecord,
  encodeMsg,
  encodeRecord,
  noSessionRecord,
  requestMsg,
  responseMsg,
} from '../../executor/usp/codec.js';
import type { UspController } from '../../executor/usp/controller.js';
import type { memorySink } from '../../executor/usp/event-sink.js';
import type { UspMsg } from '../../executor/usp/messages.js';
import { WsServerMtp } from '../../executor/usp/mtp/websocket.js';
import { agentTopic, controllerTopic } from '../../sim/usp/host.js';
import { mqttController, uniq, until } from './harness.js';

/** A hand-driven MQTT 5 peer that can send anything, including what a real agent never would. */
async function rawPeer(
  endpointId: string,
): Promise<{ client: MqttClient; inbox: Array<{ payload: Buffer; contentType?: string }> }> {
  const inbox: Array<{ payload: Buffer; contentType?: string }> = [];
  const client = await mqtt.connectAsync(inject('mqttUrl'), { protocolVersion: 5, clientId: uniq('raw') });
  await client.subscribeAsync(`${agentTopic(endpointId)}/#`, { qos: 1 });
  client.on('message', (_t, payload, packet) =>
    inbox.push({ payload, contentType: packet.properties?.contentType }),
  );
  return { client, inbox };
}

describe('TR-369 handling of bad Records and Messages (controller side, MQTT 5)', () => {
  let controller: UspController;
  let sink: ReturnType<typeof memorySink>;
  let ctrlId: string;
  const agentId = 'proto::raw-agent-1';
  let peer: Awaited<ReturnType<typeof rawPeer>>;

  const send = (bytes: Uint8Array | string, from = agentId) =>
    peer.client.publishAsync(controllerTopic(ctrlId), Buffer.from(bytes), {
      qos: 1,
      properties: {
        responseTopic: agentTopic(agentId),
        contentType: 'usp.msg',
        userProperties: { 'usp-endpoint-id': from },
      },
    });
  const record = (msg: UspMsg, over: Partial<{ to: string; from: string; version: string }> = {}) =>
    encodeRecord(
      noSessionRecord({ to: over.to ?? ctrlId, from: over.from ?? agentId, msg, version: over.version }),
    );
  const bootNotify = (id: string) =>
    requestMsg(id, 'notify', {
      subscription_id: 'fb-boot',
      send_resp: true,
      event: { obj_path: 'Device.', event_name: 'Boot!', params: { Cause: 'LocalReboot' } },
    });
  const settle = () => new Promise((r) => setTimeout(r, 300));

  beforeAll(async () => {
    const c = await mqttController({ onboarding: false });
    controller = c.controller;
    sink = c.sink;
    ctrlId = c.endpointId;
    peer = await rawPeer(agentId);
  });
  afterAll(async () => {
    await peer?.client.endAsync();
    await controller?.stop();
  });

  it('a well-formed Notify is persisted and acknowledged (the baseline the other cases differ from)', async () => {
    await send(record(bootNotify('ok-1')));
    await until('NotifyResp', () => peer.inbox.length === 1);
    const msg = decodeMsg(
      decodeRecord(peer.inbox[0]?.payload as Buffer).no_session_context?.payload as Uint8Array,
    );
    expect(msg.header).toMatchObject({ msg_id: 'ok-1', msg_type: 'NOTIFY_RESP' });
    expect(sink.events).toHaveLength(1);
    peer.inbox.length = 0;
  });

  it('an unparseable Record gets a usp.error publish with err_code 7100 (R-MQTT.31) and changes nothing', async () => {
    await send('this is not protobuf \u0000\u0001\u0002');
    await until('usp.error', () => peer.inbox.length === 1);
    expect(peer.inbox[0]?.contentType).toBe('usp.error');
    expect(peer.inbox[0]?.payload.toString()).toMatch(/^err_code:7100\nerr_msg:/);
    expect(sink.events).toHaveLength(1);
    expect(controller.stats.ignored.unparseable).toBe(1);
    peer.inbox.length = 0;
  });

  it('a Record whose to_id is not the controller is ignored (R-E2E.1): no answer, nothing stored', async () => {
    await send(record(bootNotify('wrong-to'), { to: 'proto::someone-else' }));
    await settle();
    expect(peer.inbox).toHaveLength(0);
    expect(sink.events).toHaveLength(1);
    expect(controller.stats.ignored.wrong_to_id).toBe(1);
  });

  it('a from_id that does not match the MTP-supplied endpoint ID is ignored', async () => {
    await send(record(bootNotify('spoof'), { from: 'proto::victim' }), agentId);
    await settle();
    expect(peer.inbox).toHaveLength(0);
    expect(sink.events).toHaveLength(1);
    expect(controller.stats.ignored.from_id_mismatch).toBe(1);
  });

  it('an invalid from_id is ignored: no Error can be addressed to it (R-MTP.5)', async () => {
    await send(record(bootNotify('bad-from'), { from: 'not-an-endpoint-id' }), 'not-an-endpoint-id');
    await settle();
    expect(peer.inbox).toHaveLength(0);
    expect(controller.stats.ignored.invalid_from_id).toBe(1);
  });

  it('a Record version outside 1.0-1.4 is answered with Error 7104 and not processed', async () => {
    await send(record(bootNotify('v9'), { version: '9.0' }));
    await until('error', () => peer.inbox.length === 1);
    const msg = decodeMsg(
      decodeRecord(peer.inbox[0]?.payload as Buffer).no_session_context?.payload as Uint8Array,
    );
    expect(msg.body.error?.err_code).toBe(7104);
    expect(sink.events).toHaveLength(1);
    peer.inbox.length = 0;
  });

  it('a session_context Record gets Error 7106 (session context not supported)', async () => {
    const bytes = encodeRecord({
      version: '1.3',
      to_id: ctrlId,
      from_id: agentId,
      session_context: {
        session_id: '1',
        sequence_id: '1',
        expected_id: '1',
        payload: [encodeMsg(bootNotify('sc'))],
      },
    });
    await send(bytes);
    await until('error', () => peer.inbox.length === 1);
    const msg = decodeMsg(
      decodeRecord(peer.inbox[0]?.payload as Buffer).no_session_context?.payload as Uint8Array,
    );
    expect(msg.body.error?.err_code).toBe(7106);
    expect(sink.events).toHaveLength(1);
    peer.inbox.length = 0;
  });

  it('an unknown request type (a field this version does not define) is answered with Error 7001', async () => {
    // Hand-encode Msg{header{msg_id,msg_type=99}, body{request{field 30: empty}}}.
    const w = protobuf.Writer.create();
    w.uint32((1 << 3) | 2)
      .fork()
      .uint32((1 << 3) | 2)
      .string('unk-1')
      .uint32(2 << 3)
      .uint32(99)
      .ldelim();
    w.uint32((2 << 3) | 2)
      .fork()
      .uint32((1 << 3) | 2)
      .fork()
      .uint32((30 << 3) | 2)
      .bytes(new Uint8Array())
      .ldelim()
      .ldelim();
    const payload = w.finish();
    await send(
      encodeRecord({ version: '1.4', to_id: ctrlId, from_id: agentId, no_session_context: { payload } }),
    );
    await until('error', () => peer.inbox.length === 1);
    const msg = decodeMsg(
      decodeRecord(peer.inbox[0]?.payload as Buffer).no_session_context?.payload as Uint8Array,
    );
    expect(msg.header.msg_id).toBe('unk-1');
    expect(msg.body.error?.err_code).toBe(7001);
    peer.inbox.length = 0;
  });

  it('a Response nobody asked for is ignored (R-MSG): no Error goes back', async () => {
    await send(record(responseMsg('never-sent', 'get_resp', { req_path_results: [] })));
    await settle();
    expect(peer.inbox).toHaveLength(0);
    expect(controller.stats.ignored.unexpected_response).toBe(1);
  });

  it('a Record whose payload is not a Msg gets Error 7100 over a known return path', async () => {
    await send(
      encodeRecord({
        version: '1.4',
        to_id: ctrlId,
        from_id: agentId,
        no_session_context: { payload: Buffer.from([0xff, 0xff, 0xff]) },
      }),
    );
    await until('error', () => peer.inbox.length === 1);
    const msg = decodeMsg(
      decodeRecord(peer.inbox[0]?.payload as Buffer).no_session_context?.payload as Uint8Array,
    );
    expect(msg.body.error?.err_code).toBe(7100);
    expect(sink.events).toHaveLength(1);
  });
});

describe('TR-369 handling over WebSocket (controller is the server)', () => {
  let server: WsServerMtp;
  let controller: UspController;
  let sink: ReturnType<typeof memorySink>;
  const ctrlId = 'proto::ws-ctrl-errors';

  beforeAll(async () => {
    server = new WsServerMtp({ endpointId: ctrlId, port: 0 });
    const c = await mqttController({ endpointId: ctrlId, mtps: [server], onboarding: false });
    controller = c.controller;
    sink = c.sink;
  });
  afterAll(async () => controller?.stop());

  const open = (eid: string, protocol = 'v1.usp', extension = false) =>
    new Promise<{ ws: WebSocket; closed: Promise<number> }>((resolve, reject) => {
      const ws = new WebSocket(`${server.url}?eid=${encodeURIComponent(eid)}`, protocol, {
        headers: extension ? { 'Sec-WebSocket-Extensions': `bbf-usp-protocol; eid="${eid}"` } : {},
      });
      const closed = new Promise<number>((r) => ws.on('close', (code) => r(code)));
      ws.on('open', () => resolve({ ws, closed }));
      ws.on('error', reject);
    });

  it('refuses a handshake without the v1.usp subprotocol (R-WS.12a)', async () => {
    await expect(open('proto::ws-a', 'chat')).rejects.toThrow(/400/);
  });

  it('answers with its own eid in the bbf-usp-protocol extension when offered (R-WS.11a)', async () => {
    const res = await new Promise<string | undefined>((resolve, reject) => {
      const ws = new WebSocket(`${server.url}`, 'v1.usp', {
        perMessageDeflate: false,
        headers: { 'Sec-WebSocket-Extensions': 'bbf-usp-protocol; eid="proto::ws-ext"' },
      });
      ws.on('upgrade', (r) => resolve(r.headers['sec-websocket-extensions'] as string | undefined));
      ws.on('error', () => {});
      setTimeout(() => reject(new Error('no upgrade')), 3000);
    });
    expect(res).toBe(`bbf-usp-protocol; eid="${ctrlId}"`);
  });

  it('closes with 1003 on a text frame and on an unparseable binary Record (R-WS.16)', async () => {
    const a = await open('proto::ws-b');
    a.ws.send('hello');
    expect(await a.closed).toBe(1003);
    const b = await open('proto::ws-c');
    b.ws.send(Buffer.from([0xde, 0xad, 0xbe, 0xef, 0x00]));
    expect(await b.closed).toBe(1003);
    expect(sink.events).toHaveLength(0);
  });

  it('ignores a Record whose from_id is not the eid of the connection', async () => {
    const a = await open('proto::ws-d');
    const msg = requestMsg('spoof', 'notify', {
      subscription_id: 's',
      send_resp: true,
      event: { obj_path: 'Device.', event_name: 'Boot!', params: {} },
    });
    const got: Buffer[] = [];
    a.ws.on('message', (d) => got.push(d as Buffer));
    a.ws.send(encodeRecord(noSessionRecord({ to: ctrlId, from: 'proto::someone-else', msg })));
    a.ws.send(
      encodeRecord(
        noSessionRecord({
          to: ctrlId,
          from: 'proto::ws-d',
          msg: { ...msg, header: { ...msg.header, msg_id: 'real' } },
        }),
      ),
    );
    await until('one NotifyResp', () => got.length === 1);
    await new Promise((r) => setTimeout(r, 200));
    expect(got).toHaveLength(1);
    expect(sink.events.map((e) => e.payload?.msgId)).toEqual(['real']);
    expect(controller.stats.ignored.from_id_mismatch).toBe(1);
    a.ws.close();
  });
});
