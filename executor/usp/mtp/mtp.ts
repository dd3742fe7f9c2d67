/**
 * The Message Transfer Protocol seam: a USP endpoint (controller or simulated agent) hands Records to
 * an MTP and gets Records back with their return path. Record semantics live above this line.
 */

import type { UspRecord } from '../messages.js';

export interface InboundRecord {
  bytes: Uint8Array;
  /** The Record when the MTP already decoded it (MQTT decodes to choose its PUBACK reason). */
  record?: UspRecord;
  /** Return path on this MTP (MQTT topic, WebSocket connection key); undefined when none is known. */
  replyTo?: string;
  /** Endpoint ID the MTP vouches for (WebSocket `eid`, MQTT 5 `usp-endpoint-id` property). */
  peerEndpointId?: string;
  /** Where it arrived (MQTT topic without the 3.1.1 reply-to suffix); lets one connection host many agents. */
  receivedOn?: string;
  /**
   * MTP-level answer to a record that cannot be extracted: WebSocket close 1003 (R-WS.16), MQTT 5
   * `usp.error` publish (R-MQTT.31), MQTT 3.1.1 silent drop (R-MQTT.30).
   */
  reject(errCode: number, errMsg: string): void;
}

export interface SendOptions {
  /** Endpoint ID sending the record when one connection carries several (the simulator). */
  from?: string;
}

export interface Mtp {
  readonly kind: 'mqtt' | 'websocket';
  /** Human-readable description for logs and errors. */
  readonly describe: string;
  onRecord(handler: (rec: InboundRecord) => void): void;
  /** Called each time the MTP (re)connects, and with false when it drops. */
  onStatus(handler: (up: boolean) => void): void;
  start(): Promise<void>;
  /**
   * Sends a Record; resolves once the MTP accepted it (MQTT PUBACK, WebSocket write). Rejects at once
   * while the MTP is down: nothing is queued below the USP layer, whose own resends (same msg_id)
   * stop when the sender gives up; a Record delivered after that would act too late.
   */
  send(address: string, bytes: Uint8Array, opts?: SendOptions): Promise<void>;
  isUp(): boolean;
  stop(): Promise<void>;
}

/** Exponential backoff with jitter (R-WS.19 shape: m · k^n with a random point in the interval). */
export function backoffDelay(attempt: number, minMs: number, multiplier: number, maxMs: number): number {
  const lo = minMs * multiplier ** Math.max(0, attempt - 1);
  const hi = lo * multiplier;
  return Math.min(maxMs, Math.round(lo + Math.random() * (hi - lo)));
}

export interface BackoffOptions {
  minMs: number;
  multiplier: number;
  maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { minMs: 1_000, multiplier: 2, maxMs: 60_000 };
