import {
  DecodeError,
  decodeMsg,
  decodeRecord,
  encodeMsg,
  encodeNoSessionRecord,
  errorMsg,
  RECORD_VERSION,
  SUPPORTED_VERSIONS,
} from './codec.js';
import { isValidEndpointId } from './endpoint-id.js';
import { USP_ERR } from './errors.js';
import type { UspMsg, UspRecord } from './messages.js';
import type { InboundRecord, Mtp } from './mtp/mtp.js';

/** Why a Record was dropped without an answer (TR-369 R-E2E / R-MTP.5); counted for tests and metrics. */
export type IgnoreReason =
  | 'unparseable'
  | 'wrong_to_id'
  | 'invalid_from_id'
  | 'from_id_mismatch'
  | 'no_return_path'
  | 'bad_response'
  | 'unexpected_response';

export interface MessageContext {
  mtp: Mtp;
  /** Our endpoint ID the record was addressed to. */
  to: string;
  from: string;
  /** Record version the peer used; answers use the same. */
  version: string;
  replyTo?: string;
  msg: UspMsg;
  reply(msg: UspMsg): Promise<void>;
}

export interface ConnectContext {
  mtp: Mtp;
  to: string;
  from: string;
  replyTo?: string;
  kind: 'mqtt_connect' | 'websocket_connect' | 'stomp_connect' | 'uds_connect' | 'disconnect';
  record: UspRecord;
}

export interface EndpointHooks {
  /** True when `toId` is one of ours (a controller has one; a simulator connection hosts many). */
  isOwn(toId: string): boolean;
  onMessage(ctx: MessageContext): void;
  onConnectRecord?(ctx: ConnectContext): void;
  onIgnored?(reason: IgnoreReason, detail: string): void;
}

/** Sends one USP Msg in a no_session_context Record over `mtp`. */
export function sendMsg(
  mtp: Mtp,
  address: string,
  opts: { to: string; from: string; msg: UspMsg; version?: string },
): Promise<void> {
  const bytes = encodeNoSessionRecord(opts.to, opts.from, encodeMsg(opts.msg), opts.version);
  return mtp.send(address, bytes, { from: opts.from });
}

/**
 * Record-level processing shared by the controller and the simulated agents, as TR-369 prescribes:
 * unparseable → MTP-level rejection; to_id not ours → ignore (R-E2E.1); from_id invalid or not the one
 * the MTP vouches for → ignore; otherwise Record errors (7100-7106) go back as a USP Error when a
 * return path is known (R-MTP.5), except for Records carrying Responses or Errors, which are ignored.
 */
export function attachEndpoint(mtp: Mtp, hooks: EndpointHooks): void {
  mtp.onRecord((inbound) => handleRecord(mtp, inbound, hooks));
}

/** Endpoint IDs already checked: a storm of 100 000 agents would otherwise re-parse each ID per Record. */
const validIds = new Set<string>();
function validFromId(id: string): boolean {
  if (validIds.has(id)) return true;
  if (!isValidEndpointId(id)) return false;
  if (validIds.size >= 250_000) validIds.clear();
  validIds.add(id);
  return true;
}

/** Why a Record was dropped, told to the hooks; returns undefined so callers can `return ignore(...)`. */
function ignore(hooks: EndpointHooks, reason: IgnoreReason, detail: string): undefined {
  hooks.onIgnored?.(reason, detail);
}

const SUPPORTED = new Set<string>(SUPPORTED_VERSIONS);

/**
 * The context handed to onMessage. A class, so the per-Record work allocates one object and no
 * closures (each closure also costs a name definition under the tsx loader the product runs on).
 */
class RecordContext implements MessageContext {
  constructor(
    readonly mtp: Mtp,
    readonly to: string,
    readonly from: string,
    readonly version: string,
    readonly replyTo: string | undefined,
    readonly msg: UspMsg,
    private readonly hooks: EndpointHooks,
  ) {}

  reply(answer: UspMsg): Promise<void> {
    if (!this.replyTo) {
      ignore(this.hooks, 'no_return_path', `cannot answer ${this.msg.header.msg_id}`);
      return Promise.resolve();
    }
    return sendMsg(this.mtp, this.replyTo, {
      to: this.from,
      from: this.to,
      version: this.version,
      msg: answer,
    });
  }
}

/** A Record-level error answered with a USP Error when a return path is known (R-MTP.5), else ignored. */
function recordError(
  mtp: Mtp,
  hooks: EndpointHooks,
  rec: UspRecord,
  replyTo: string | undefined,
  version: string,
  code: number,
  message: string,
): undefined {
  if (!replyTo) return ignore(hooks, 'no_return_path', message);
  // The Error answers the request's msg_id when the payload still decodes; otherwise a fresh one.
  let msgId = `record-error-${Date.now().toString(36)}`;
  try {
    const inner = rec.no_session_context?.payload ?? rec.session_context?.payload?.[0];
    if (inner) msgId = decodeMsg(inner).header.msg_id;
  } catch {}
  void sendMsg(mtp, replyTo, {
    to: rec.from_id,
    from: rec.to_id,
    version,
    msg: errorMsg(msgId, { err_code: code, err_msg: message }),
  }).catch(() => {});
}

export function handleRecord(mtp: Mtp, inbound: InboundRecord, hooks: EndpointHooks): undefined {
  let rec: UspRecord;
  try {
    rec = inbound.record ?? decodeRecord(inbound.bytes);
  } catch (err) {
    inbound.reject(USP_ERR.RECORD_NOT_PARSED, (err as Error).message);
    return ignore(hooks, 'unparseable', (err as Error).message);
  }
  if (!rec.to_id || !hooks.isOwn(rec.to_id)) return ignore(hooks, 'wrong_to_id', rec.to_id);
  if (!validFromId(rec.from_id)) return ignore(hooks, 'invalid_from_id', rec.from_id);
  if (inbound.peerEndpointId && inbound.peerEndpointId !== rec.from_id) {
    return ignore(hooks, 'from_id_mismatch', `${rec.from_id} on a connection of ${inbound.peerEndpointId}`);
  }
  const supported = SUPPORTED.has(rec.version);
  const version = supported ? rec.version : RECORD_VERSION;
  const to = rec.to_id;
  const from = rec.from_id;
  const replyTo = inbound.replyTo;

  if (!supported) {
    return recordError(
      mtp,
      hooks,
      rec,
      replyTo,
      version,
      USP_ERR.RECORD_FIELD_INVALID,
      `unsupported Record version "${rec.version}"`,
    );
  }
  switch (rec.record_type) {
    case 'no_session_context':
      break;
    case 'session_context':
      return recordError(
        mtp,
        hooks,
        rec,
        replyTo,
        version,
        USP_ERR.SESSION_CONTEXT_NOT_ALLOWED,
        'E2E session context is not supported',
      );
    case 'mqtt_connect':
    case 'websocket_connect':
    case 'stomp_connect':
    case 'uds_connect':
    case 'disconnect':
      hooks.onConnectRecord?.({ mtp, to, from, replyTo, kind: rec.record_type, record: rec });
      return;
    default:
      return recordError(
        mtp,
        hooks,
        rec,
        replyTo,
        version,
        USP_ERR.RECORD_FIELD_INVALID,
        'Record has no record_type',
      );
  }
  if (rec.payload_security && rec.payload_security !== 'PLAINTEXT' && rec.payload_security !== 0) {
    return recordError(
      mtp,
      hooks,
      rec,
      replyTo,
      version,
      USP_ERR.SECURE_SESS_NOT_SUPPORTED,
      'TLS payload security is not supported',
    );
  }
  if (rec.mac_signature && rec.mac_signature.length > 0) {
    return recordError(
      mtp,
      hooks,
      rec,
      replyTo,
      version,
      USP_ERR.SECURE_SESS_NOT_SUPPORTED,
      'Record integrity protection is not supported',
    );
  }
  let msg: UspMsg;
  try {
    msg = decodeMsg(rec.no_session_context?.payload ?? new Uint8Array());
  } catch (err) {
    return recordError(
      mtp,
      hooks,
      rec,
      replyTo,
      version,
      USP_ERR.RECORD_NOT_PARSED,
      err instanceof DecodeError ? err.message : String(err),
    );
  }
  hooks.onMessage(new RecordContext(mtp, to, from, version, replyTo, msg, hooks));
}
