import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import {
  DecodeError,
  decodeMsg,
  decodeRecord,
  encodeMsg,
  encodeNoSessionRecord,
  encodeRecord,
  noSessionRecord,
  requestMsg,
} from './codec.js';
import { encodeInstance, isValidEndpointId, osEndpointId, parseEndpointId } from './endpoint-id.js';

describe('USP codec', () => {
  it('puts fields on the TR-369 field numbers (Record.to_id = 2, no_session_context = 7, payload = 2)', () => {
    const msg = requestMsg('m1', 'get', { param_paths: ['Device.'] });
    const bytes = encodeRecord(
      noSessionRecord({ to: 'os::00A0C9-1', from: 'proto::c', msg, version: '1.3' }),
    );
    const r = protobuf.Reader.create(bytes);
    const seen: Array<[number, number]> = [];
    while (r.pos < r.len) {
      const tag = r.uint32();
      seen.push([tag >>> 3, tag & 7]);
      r.skipType(tag & 7);
    }
    expect(seen).toEqual([
      [1, 2],
      [2, 2],
      [3, 2],
      [7, 2],
    ]);
    const rec = decodeRecord(bytes);
    expect(rec).toMatchObject({
      version: '1.3',
      to_id: 'os::00A0C9-1',
      from_id: 'proto::c',
      record_type: 'no_session_context',
    });
    const back = decodeMsg(rec.no_session_context?.payload as Uint8Array);
    expect(back.header).toEqual({ msg_id: 'm1', msg_type: 'GET' });
    expect(back.body.request?.get?.param_paths).toEqual(['Device.']);
    // Msg.header = 1, Header.msg_type = 2 with GET = 1.
    expect(Array.from(encodeMsg(msg).subarray(0, 2))).toEqual([0x0a, 2 + 2 + 2]);
  });

  it('decodes a no_session_context Record (fast path) exactly as the general toObject path does', () => {
    const root = new protobuf.Root().loadSync(
      [
        new URL('./proto/usp-record.proto', import.meta.url).pathname,
        new URL('./proto/usp-msg.proto', import.meta.url).pathname,
      ],
      { keepCase: true },
    );
    const T = root.lookupType('usp_record.Record');
    const general = (b: Uint8Array) =>
      T.toObject(T.decode(b), {
        longs: String,
        enums: String,
        defaults: true,
        arrays: true,
        objects: true,
        oneofs: true,
      });
    const payload = encodeMsg(requestMsg('m2', 'get', { param_paths: ['Device.DeviceInfo.'] }));
    const cases = [
      encodeNoSessionRecord('os::00A0C9-1', 'proto::c', payload),
      encodeNoSessionRecord('os::00A0C9-1', 'proto::c', payload, '1.0'),
      encodeRecord({
        version: '1.3',
        to_id: 'a',
        from_id: 'b',
        payload_security: 'TLS12',
        mac_signature: new Uint8Array([1, 2]),
        no_session_context: { payload },
      }),
      encodeRecord({
        version: '1.4',
        to_id: 'a',
        from_id: 'b',
        no_session_context: { payload: new Uint8Array() },
      }),
    ];
    for (const b of cases) {
      expect(decodeRecord(b)).toEqual(general(b));
    }
    // The hot-path encoder writes what the general one writes for a plaintext Record.
    expect(
      Buffer.from(encodeNoSessionRecord('os::00A0C9-1', 'proto::c', payload, '1.2')).equals(
        Buffer.from(
          encodeRecord({
            version: '1.2',
            to_id: 'os::00A0C9-1',
            from_id: 'proto::c',
            payload_security: 'PLAINTEXT',
            no_session_context: { payload },
          }),
        ),
      ),
    ).toBe(true);
  });

  it('round-trips a Notify with a oneof member and maps', () => {
    const msg = requestMsg('n1', 'notify', {
      subscription_id: 's',
      send_resp: true,
      oper_complete: {
        obj_path: 'Device.',
        command_name: 'Reboot()',
        command_key: 'k',
        req_output_args: { output_args: { a: 'b' } },
      },
    });
    const back = decodeMsg(encodeMsg(msg));
    expect(back.body.request?.notify?.notification).toBe('oper_complete');
    expect(back.body.request?.notify?.oper_complete?.req_output_args?.output_args).toEqual({ a: 'b' });
  });

  it('rejects bytes that are not a Record or Msg', () => {
    expect(() => decodeRecord(Buffer.from([0xff, 0xff, 0xff, 0xff]))).toThrow(DecodeError);
    expect(() => decodeMsg(Buffer.from([]))).toThrow(DecodeError);
  });
});

describe('Endpoint IDs', () => {
  it.each([
    'os::00256D-0123456789',
    'ops::00256D-STB-0123456789',
    'oui:00256D:my-unique-bbf-id-42',
    'cid:3AA3F8:my-unique-usp-id-42',
    'pen:3561:my-unique-bbf-id-42',
    'self::my-Agent',
    'uuid::f81d4fae-7dec-11d0-a765-00a0c91e6bf6',
    'imei::990000862471854',
    'proto::my-Agent',
    'doc::x',
    'urn:bbf:usp:id:os::00256D-0123456789',
  ])('accepts %s', (id) => expect(isValidEndpointId(id)).toBe(true));

  it.each([
    ['os:00256D:123', 'authority-id must be empty'],
    ['oui:256D:x', '6 hex digits'],
    ['uuid::not-a-uuid', 'UUID'],
    ['proto::has space', 'unreserved'],
    ['foo::bar', 'unknown authority-scheme'],
    ['proto::', 'empty'],
    [`proto::${'a'.repeat(51)}`, 'longer than 50'],
    ['os::0123456789', '<OUI>-<SerialNumber>'],
  ])('rejects %s', (id, why) => {
    const r = parseEndpointId(id);
    expect(r.ok).toBe(false);
    expect(r.ok ? '' : r.reason).toContain(why);
  });

  it('derives os:: IDs from a CWMP identity, percent-encoding what R-ARC.5 forbids', () => {
    expect(osEndpointId('00a0c9', 'SN 1/2')).toBe('os::00A0C9-SN%201%2F2');
    expect(encodeInstance('a:b')).toBe('a%3Ab');
    expect(isValidEndpointId(osEndpointId('00a0c9', 'SN 1/2'))).toBe(true);
  });
});
