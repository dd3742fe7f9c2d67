import { randomBytes } from 'node:crypto';
import type { Logger } from '../../platform/logger.js';
import type { QueuedTask } from '../task-queue.js';
import { type AcsRequest, buildRequest, type CpeMessage, type ParamValueStruct } from './soap.js';

/** An HTTP answer to one CPE POST. */
export interface Reply {
  status: number;
  body?: string;
  headers?: Record<string, string>;
}

export class SessionBroken extends Error {
  constructor(
    message: string,
    /** Retry at once (the device is back in a new session), not after the backoff. */
    readonly immediate = false,
  ) {
    super(message);
  }
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve: (v: T) => void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** What the Inform told about the device, kept for the rest of the session. */
export interface InformFacts {
  deviceId: string;
  oui: string;
  productClass: string;
  serialNumber: string;
  softwareVersion: string;
  root: 'Device.' | 'InternetGatewayDevice.';
  parameterKey: string | null;
  events: Array<{ code: string; commandKey: string }>;
  params: ParamValueStruct[];
}

/**
 * One CWMP session (TR-069 §3.7): after the Inform, the CPE sends its own requests, then an empty
 * POST; from then on every HTTP response carries one ACS request and every CPE POST its answer,
 * until the ACS answers 204. The runner is an async function that calls `call(rpc)` and receives
 * the CPE's next message; the HTTP handler feeds messages in and takes replies out.
 */
export class CwmpSession {
  readonly id = randomBytes(12).toString('base64url');
  lastSeen = Date.now();
  ended = false;
  /** The runner has been started (the CPE sent its empty POST). */
  started = false;
  private outbox: Deferred<Reply> | null = null;
  private waiter: {
    resolve: (m: CpeMessage) => void;
    reject: (e: Error) => void;
    timer: NodeJS.Timeout;
  } | null = null;
  private rpcSeq = 0;
  /** The task currently on the wire (for diagnostics and for abandoning). */
  current: QueuedTask | null = null;
  /**
   * HoldRequests (TR-069 §3.7.1.4, Table 28): the ACS told the CPE to hold its own requests (in the
   * InformResponse and in every request of ours) so that queued work goes first.
   */
  held = false;
  /** Queued work (or discovery) was found for this device when it informed. */
  hasWork = true;
  /**
   * The runner is done but the CPE was held: it may still send the requests it held back
   * (TransferComplete, ...); the session ends at its empty POST or when it closes the connection.
   */
  closing = false;

  constructor(
    readonly facts: InformFacts,
    /** Namespace for the rest of the session (negotiated or the CPE's own). */
    public ns: string,
    readonly version: string,
    private readonly timeoutMs: number,
    private readonly log: Logger,
  ) {}

  /** The CPE posted an answer to our pending request; returns the HTTP reply to send back. */
  deliver(msg: CpeMessage): Promise<Reply> {
    this.lastSeen = Date.now();
    const w = this.waiter;
    if (!w) return Promise.resolve({ status: 204 });
    this.waiter = null;
    clearTimeout(w.timer);
    const out = deferred<Reply>();
    this.outbox = out;
    w.resolve(msg);
    return out.promise;
  }

  /** The CPE sent its empty POST: start the runner (once) and return its first reply. */
  begin(runner: () => Promise<void>): Promise<Reply> {
    this.lastSeen = Date.now();
    if (this.waiter) {
      // An empty POST while we wait for an answer: the CPE gave up on our request.
      const w = this.waiter;
      this.waiter = null;
      clearTimeout(w.timer);
      const out = deferred<Reply>();
      this.outbox = out;
      w.reject(new SessionBroken('CPE sent an empty POST instead of a response'));
      return out.promise;
    }
    const out = deferred<Reply>();
    this.outbox = out;
    if (!this.started) {
      this.started = true;
      this.running = runner()
        .catch((err) => this.log.warn({ err, session: this.id }, 'session runner failed'))
        .finally(() => {
          if (!this.closing) this.finish();
        });
    } else {
      // The runner already finished: nothing more to say.
      this.finish();
    }
    return out.promise;
  }

  /** Send one ACS request and wait for the CPE's answer (or a timeout / a broken session). */
  call(req: AcsRequest): Promise<CpeMessage> {
    if (this.ended) return Promise.reject(new SessionBroken('session ended'));
    const body = buildRequest(
      { ns: this.ns, id: `${this.id}.${++this.rpcSeq}`, holdRequests: this.held },
      req,
    );
    return new Promise<CpeMessage>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (this.waiter?.timer === timer) {
          this.waiter = null;
          reject(new SessionBroken(`no answer to ${req.rpc} within ${this.timeoutMs} ms`));
        }
      }, this.timeoutMs);
      this.waiter = { resolve, reject, timer };
      this.send({
        status: 200,
        body,
        headers: { 'content-type': 'text/xml; charset="utf-8"', soapaction: '' },
      });
    });
  }

  /**
   * The runner is done but the CPE was held: answer its pending POST with 204 and wait for the
   * requests it held back, then its empty POST (or the connection closing).
   */
  release(): void {
    this.closing = true;
    this.send({ status: 204 });
  }

  private send(r: Reply): void {
    const o = this.outbox;
    this.outbox = null;
    o?.resolve(r);
  }

  /** Resolves when the runner (if any) has finished, including its bookkeeping of a broken task. */
  private running: Promise<void> = Promise.resolve();
  settled(): Promise<void> {
    return this.running;
  }

  /** End the session: the CPE gets 204 for its pending POST, a pending call fails. */
  finish(reason = 'session ended', immediate = false): void {
    if (!this.ended) this.ended = true;
    if (this.waiter) {
      clearTimeout(this.waiter.timer);
      this.waiter.reject(new SessionBroken(reason, immediate));
      this.waiter = null;
    }
    this.send({ status: 204 });
  }

  /** Whether a request of ours is waiting for the CPE. */
  get awaiting(): boolean {
    return this.waiter !== null;
  }
}
