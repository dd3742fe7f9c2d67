import path from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import type { MsgType, Request, RequestType, Response, UspError, UspMsg, UspRecord } from './messages.js';

const protoDir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'proto');
// keepCase: field names stay as TR-369 spells them (to_id, msg_id, ...).
const root = new protobuf.Root().loadSync(
  [path.join(protoDir, 'usp-record.proto'), path.join(protoDir, 'usp-msg.proto')],
  {
    keepCase: true,
  },
);
const RecordType = root.lookupType('usp_record.Record');
const MsgTypeT = root.lookupType('usp.Msg');
const PAYLOAD_SECURITY = root.lookupEnum('usp_record.Record.PayloadSecurity').valuesById;
/** What toObject gives for an absent bytes field (the decoder's own default is a plain empty array). */
const NO_BYTES = Buffer.alloc(0);
const bytesOrEmpty = (b: Uint8Array) => (b.length > 0 ? b : NO_BYTES);

/** A Record as protobufjs' generated decoder returns it (fields unset read their defaults). */
interface DecodedRecord {
  version: string;
  to_id: string;
  from_id: string;
  payload_security: number;
  mac_signature: Uint8Array;
  sender_cert: Uint8Array;
  no_session_context?: { payload: Uint8Array } | null;
  record_type?: string;
}

const toObjectOptions: protobuf.IConversionOptions = {
  longs: String,
  enums: String,
  defaults: true,
  arrays: true,
  objects: true,
  oneofs: true,
};

/** Record versions this endpoint speaks; what it sends is the newest. */
export const SUPPORTED_VERSIONS = ['1.0', '1.1', '1.2', '1.3', '1.4'] as const;
export const RECORD_VERSION = '1.4';
export const SUPPORTED_PROTOCOL_VERSIONS = SUPPORTED_VERSIONS.join(',');

export class DecodeError extends Error {
  override name = 'DecodeError';
}

export function encodeRecord(rec: UspRecord): Uint8Array {
  const { record_type: _ignored, ...fields } = rec;
  return RecordType.encode(RecordType.fromObject(fields)).finish();
}

/**
 * Encodes a no_session_context Record around an encoded Msg: the path every request, response and
 * Notify takes, so the fields go straight to the generated encoder (no fromObject conversion).
 * payload_security is PLAINTEXT, the proto3 default, and is not written (as fromObject's path does).
 */
export function encodeNoSessionRecord(
  to: string,
  from: string,
  payload: Uint8Array,
  version: string = RECORD_VERSION,
): Uint8Array {
  return RecordType.encode({ version, to_id: to, from_id: from, no_session_context: { payload } }).finish();
}

/** Decodes a Record; throws DecodeError when the bytes are not a USP Record. */
export function decodeRecord(bytes: Uint8Array): UspRecord {
  let decoded: protobuf.Message;
  try {
    decoded = RecordType.decode(bytes);
  } catch (err) {
    throw new DecodeError(`record could not be parsed: ${(err as Error).message}`);
  }
  const m = decoded as unknown as DecodedRecord;
  if (m.record_type === 'no_session_context' && m.no_session_context) {
    // The common Record, copied out as toObject would present it (same fields, enum by name,
    // defaults filled) without its reflective walk; other kinds take the general path below.
    return {
      version: m.version,
      to_id: m.to_id,
      from_id: m.from_id,
      payload_security:
        (PAYLOAD_SECURITY[m.payload_security] as UspRecord['payload_security']) ?? m.payload_security,
      mac_signature: bytesOrEmpty(m.mac_signature),
      sender_cert: bytesOrEmpty(m.sender_cert),
      no_session_context: { payload: bytesOrEmpty(m.no_session_context.payload) },
      record_type: 'no_session_context',
    };
  }
  return RecordType.toObject(decoded, toObjectOptions) as UspRecord;
}

export function encodeMsg(msg: UspMsg): Uint8Array {
  // fromObject reads declared fields only: protobufjs' virtual oneof names (`req_type`, ...) of a
  // decoded Msg are ignored, so a decoded Msg re-encodes as it came.
  return MsgTypeT.encode(MsgTypeT.fromObject(msg as unknown as Record<string, unknown>)).finish();
}

export function decodeMsg(bytes: Uint8Array): UspMsg {
  let decoded: protobuf.Message;
  try {
    decoded = MsgTypeT.decode(bytes);
  } catch (err) {
    throw new DecodeError(`message could not be parsed: ${(err as Error).message}`);
  }
  const msg = MsgTypeT.toObject(decoded, toObjectOptions) as Partial<UspMsg>;
  if (!msg.header || !msg.body) throw new DecodeError('message has no header or body');
  if (!msg.header.msg_id) throw new DecodeError('message has an empty msg_id');
  return msg as UspMsg;
}

export function noSessionRecord(opts: {
  to: string;
  from: string;
  msg: UspMsg;
  version?: string;
}): UspRecord {
  return {
    version: opts.version ?? RECORD_VERSION,
    to_id: opts.to,
    from_id: opts.from,
    payload_security: 'PLAINTEXT',
    no_session_context: { payload: encodeMsg(opts.msg) },
  };
}

export const REQUEST_MSG_TYPE: Record<RequestType, MsgType> = {
  get: 'GET',
  get_supported_dm: 'GET_SUPPORTED_DM',
  get_instances: 'GET_INSTANCES',
  set: 'SET',
  add: 'ADD',
  delete: 'DELETE',
  operate: 'OPERATE',
  notify: 'NOTIFY',
  get_supported_protocol: 'GET_SUPPORTED_PROTO',
  register: 'REGISTER',
  deregister: 'DEREGISTER',
};

export const RESPONSE_FOR: Record<RequestType, keyof Response> = {
  get: 'get_resp',
  get_supported_dm: 'get_supported_dm_resp',
  get_instances: 'get_instances_resp',
  set: 'set_resp',
  add: 'add_resp',
  delete: 'delete_resp',
  operate: 'operate_resp',
  notify: 'notify_resp',
  get_supported_protocol: 'get_supported_protocol_resp',
  register: 'register_resp',
  deregister: 'deregister_resp',
};

const RESPONSE_MSG_TYPE: Record<string, MsgType> = {
  get_resp: 'GET_RESP',
  get_supported_dm_resp: 'GET_SUPPORTED_DM_RESP',
  get_instances_resp: 'GET_INSTANCES_RESP',
  set_resp: 'SET_RESP',
  add_resp: 'ADD_RESP',
  delete_resp: 'DELETE_RESP',
  operate_resp: 'OPERATE_RESP',
  notify_resp: 'NOTIFY_RESP',
  get_supported_protocol_resp: 'GET_SUPPORTED_PROTO_RESP',
  register_resp: 'REGISTER_RESP',
  deregister_resp: 'DEREGISTER_RESP',
};

/** The request type a Msg carries, if it is a request of a known kind. */
export function requestTypeOf(msg: UspMsg): RequestType | undefined {
  const req = msg.body.request;
  if (!req) return undefined;
  return req.req_type ?? (Object.keys(REQUEST_MSG_TYPE) as RequestType[]).find((k) => req[k] !== undefined);
}

export function requestMsg<K extends RequestType>(
  msgId: string,
  type: K,
  body: NonNullable<Request[K]>,
): UspMsg {
  return {
    header: { msg_id: msgId, msg_type: REQUEST_MSG_TYPE[type] },
    body: { request: { [type]: body } as Request },
  };
}

export function responseMsg<K extends keyof Response>(
  msgId: string,
  type: K,
  body: NonNullable<Response[K]>,
): UspMsg {
  const msgType = RESPONSE_MSG_TYPE[type as string];
  if (!msgType) throw new Error(`not a response type: ${String(type)}`);
  return {
    header: { msg_id: msgId, msg_type: msgType },
    body: { response: { [type]: body } as Response },
  };
}

export function errorMsg(msgId: string, error: UspError): UspMsg {
  return { header: { msg_id: msgId, msg_type: 'ERROR' }, body: { error } };
}
