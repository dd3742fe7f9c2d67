import { createServer as createHttpServer, type IncomingMessage, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Duplex } from 'node:stream';
import WebSocket, { WebSocketServer } from 'ws';
import { isValidEndpointId } from '../endpoint-id.js';
import { type BackoffOptions, backoffDelay, DEFAULT_BACKOFF, type InboundRecord, type Mtp } from './mtp.js';

/** R-WS.9: the subprotocol for protobuf-encoded USP Records. */
export const USP_SUBPROTOCOL = 'v1.usp';
const EXTENSION = 'bbf-usp-protocol';
/** R-WS.16: a record that cannot be extracted closes the connection with 1003. */
export const WS_UNSUPPORTED_DATA = 1003;

/** The `eid` parameter of a `bbf-usp-protocol` extension offer, if any. */
export function extensionEid(header: string | undefined): string | undefined {
  if (!header) return undefined;
  for (const offer of header.split(',')) {
    const [name, ...params] = offer.split(';').map((p) => p.trim());
    if (name !== EXTENSION) continue;
    for (const p of params) {
      const m = /^eid\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s;,]+))$/.exec(p);
      if (m) return (m[1] ?? m[2] ?? '').replace(/\\(.)/g, '$1');
    }
  }
  return undefined;
}

export interface WsServerMtpOptions {
  /** The controller's endpoint ID, returned in the `bbf-usp-protocol` extension (R-WS.11a). */
  endpointId: string;
  host?: string;
  port: number;
  path?: string;
  tls?: { key: string | Buffer; cert: string | Buffer; ca?: string | Buffer };
  pingIntervalMs?: number;
}

/**
 * The controller's WebSocket server: agents connect with subprotocol `v1.usp` and their endpoint ID
 * (`bbf-usp-protocol; eid="..."` extension or an `eid=` query parameter). One session per agent (R-WS.4).
 */
export class WsServerMtp implements Mtp {
  readonly kind = 'websocket' as const;
  private server: Server | undefined;
  private wss: WebSocketServer | undefined;
  private readonly peers = new Map<string, WebSocket>();
  private recordHandlers: Array<(rec: InboundRecord) => void> = [];
  private statusHandlers: Array<(up: boolean) => void> = [];
  private pingTimer: NodeJS.Timeout | undefined;
  private up = false;
  private boundPort = 0;

  constructor(private readonly opts: WsServerMtpOptions) {}

  get describe(): string {
    return `websocket ${this.url}`;
  }

  get url(): string {
    return `${this.opts.tls ? 'wss' : 'ws'}://${this.opts.host ?? '127.0.0.1'}:${this.boundPort}${this.opts.path ?? '/usp'}`;
  }

  onRecord(handler: (rec: InboundRecord) => void): void {
    this.recordHandlers.push(handler);
  }

  onStatus(handler: (up: boolean) => void): void {
    this.statusHandlers.push(handler);
  }

  isUp(): boolean {
    return this.up;
  }

  connectedPeers(): string[] {
    return [...this.peers.keys()];
  }

  /** Closes one agent's session (tests; operator action). */
  disconnectPeer(eid: string, code = 1000): void {
    this.peers.get(eid)?.close(code);
  }

  async start(): Promise<void> {
    const server = this.opts.tls ? createHttpsServer(this.opts.tls) : createHttpServer();
    server.on('request', (_req, res) => {
      res.writeHead(426, { 'content-type': 'text/plain' }).end('WebSocket (v1.usp) only\n');
    });
    const wss = new WebSocketServer({
      noServer: true,
      perMessageDeflate: false,
      maxPayload: 4 * 1024 * 1024,
    });
    wss.on('headers', (headers, req) => {
      if (extensionEid(req.headers['sec-websocket-extensions'])) {
        headers.push(`Sec-WebSocket-Extensions: ${EXTENSION}; eid="${this.opts.endpointId}"`);
      }
    });
    server.on('upgrade', (req, socket, head) => this.upgrade(wss, req, socket, head));
    this.server = server;
    this.wss = wss;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.opts.port, this.opts.host ?? '127.0.0.1', () => resolve());
    });
    const addr = server.address();
    this.boundPort = typeof addr === 'object' && addr ? addr.port : this.opts.port;
    this.pingTimer = setInterval(() => this.ping(), this.opts.pingIntervalMs ?? 30_000);
    this.pingTimer.unref();
    this.up = true;
    for (const h of this.statusHandlers) h(true);
  }

  private upgrade(wss: WebSocketServer, req: IncomingMessage, socket: Duplex, head: Buffer): undefined {
    const refuse = (status: number, why: string): undefined => {
      socket.end(`HTTP/1.1 ${status} ${why}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    };
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== (this.opts.path ?? '/usp')) return refuse(404, 'Not Found');
    const protocols = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
    // R-WS.12a: no v1.usp subprotocol, no session.
    if (!protocols.includes(USP_SUBPROTOCOL)) return refuse(400, 'Bad Request');
    const eid = extensionEid(req.headers['sec-websocket-extensions']) ?? url.searchParams.get('eid') ?? '';
    if (!isValidEndpointId(eid)) return refuse(400, 'Bad Request');
    wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, eid));
  }

  private accept(ws: WebSocket, eid: string): void {
    // R-WS.4: at most one session per peer; the newest wins (the old one is usually a dead NAT path).
    const previous = this.peers.get(eid);
    if (previous) previous.close(1000, 'replaced by a new session');
    this.peers.set(eid, ws);
    let alive = true;
    ws.on('pong', () => {
      alive = true;
    });
    (ws as WebSocket & { isAlive?: () => boolean; markPing?: () => void }).isAlive = () => alive;
    (ws as WebSocket & { markPing?: () => void }).markPing = () => {
      alive = false;
    };
    ws.on('message', (data, isBinary) => {
      if (!isBinary) {
        ws.close(WS_UNSUPPORTED_DATA, 'USP Records are binary frames');
        return;
      }
      const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
      const rec: InboundRecord = {
        bytes,
        replyTo: eid,
        peerEndpointId: eid,
        reject: (_code, msg) => ws.close(WS_UNSUPPORTED_DATA, msg.slice(0, 120)),
      };
      for (const h of this.recordHandlers) h(rec);
    });
    ws.on('close', () => {
      if (this.peers.get(eid) === ws) this.peers.delete(eid);
    });
    ws.on('error', () => {});
  }

  private ping(): void {
    for (const ws of this.peers.values()) {
      const w = ws as WebSocket & { isAlive?: () => boolean; markPing?: () => void };
      if (w.isAlive && !w.isAlive()) {
        ws.terminate();
        continue;
      }
      w.markPing?.();
      ws.ping();
    }
  }

  send(address: string, bytes: Uint8Array): Promise<void> {
    const ws = this.peers.get(address);
    if (!ws || ws.readyState !== WebSocket.OPEN) {
      return Promise.reject(new Error(`no WebSocket session with ${address}`));
    }
    return new Promise((resolve, reject) =>
      ws.send(bytes, { binary: true }, (err) => (err ? reject(err) : resolve())),
    );
  }

  async stop(): Promise<void> {
    if (this.pingTimer) clearInterval(this.pingTimer);
    for (const ws of this.peers.values()) ws.terminate();
    this.peers.clear();
    this.wss?.close();
    const server = this.server;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    this.up = false;
    for (const h of this.statusHandlers) h(false);
  }
}

export interface WsClientMtpOptions {
  /** Controller URL, e.g. ws://127.0.0.1:7547/usp */
  url: string;
  /** This agent's endpoint ID, sent as `eid=` query parameter. */
  endpointId: string;
  /** Also offer the `bbf-usp-protocol` extension (R-WS.10a); off for `ws` clients, which reject unknown extensions in responses. */
  offerExtension?: boolean;
  backoff?: BackoffOptions;
  pingIntervalMs?: number;
  tls?: { ca?: string | Buffer; rejectUnauthorized?: boolean };
  localAddress?: string;
}

/** An agent's WebSocket session to its controller, re-established with R-WS.19-style backoff. */
export class WsClientMtp implements Mtp {
  readonly kind = 'websocket' as const;
  private ws: WebSocket | undefined;
  private recordHandlers: Array<(rec: InboundRecord) => void> = [];
  private statusHandlers: Array<(up: boolean) => void> = [];
  private attempt = 0;
  private stopped = false;
  private up = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private pingTimer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: WsClientMtpOptions) {}

  get describe(): string {
    return `websocket client ${this.opts.url} (${this.opts.endpointId})`;
  }

  onRecord(handler: (rec: InboundRecord) => void): void {
    this.recordHandlers.push(handler);
  }

  onStatus(handler: (up: boolean) => void): void {
    this.statusHandlers.push(handler);
  }

  isUp(): boolean {
    return this.up;
  }

  start(): Promise<void> {
    return new Promise((resolve) => {
      let first = true;
      const onUp = (up: boolean) => {
        if (up && first) {
          first = false;
          resolve();
        }
      };
      this.statusHandlers.push(onUp);
      this.connect();
    });
  }

  private connect(): void {
    if (this.stopped) return;
    const url = new URL(this.opts.url);
    url.searchParams.set('eid', this.opts.endpointId);
    const headers: Record<string, string> = {};
    if (this.opts.offerExtension)
      headers['Sec-WebSocket-Extensions'] = `${EXTENSION}; eid="${this.opts.endpointId}"`;
    const ws = new WebSocket(url, USP_SUBPROTOCOL, {
      perMessageDeflate: false,
      headers,
      localAddress: this.opts.localAddress,
      ca: this.opts.tls?.ca,
      rejectUnauthorized: this.opts.tls?.rejectUnauthorized,
      handshakeTimeout: 10_000,
    });
    this.ws = ws;
    ws.on('open', () => {
      // R-WS.12: without the v1.usp subprotocol in the answer there is no session.
      if (ws.protocol !== USP_SUBPROTOCOL) {
        ws.close(1002, 'v1.usp subprotocol not accepted');
        return;
      }
      this.attempt = 0; // R-WS.20
      this.setUp(true);
      const every = this.opts.pingIntervalMs ?? 30_000;
      this.pingTimer = setInterval(() => ws.ping(), every); // R-WS.17
      this.pingTimer.unref();
    });
    ws.on('message', (data, isBinary) => {
      if (!isBinary) {
        ws.close(WS_UNSUPPORTED_DATA, 'USP Records are binary frames');
        return;
      }
      const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
      const rec: InboundRecord = {
        bytes,
        replyTo: 'controller',
        reject: (_code, msg) => ws.close(WS_UNSUPPORTED_DATA, msg.slice(0, 120)),
      };
      for (const h of this.recordHandlers) h(rec);
    });
    ws.on('error', () => {});
    ws.on('close', () => {
      if (this.pingTimer) clearInterval(this.pingTimer);
      this.setUp(false);
      if (this.stopped) return;
      this.attempt += 1;
      const b = this.opts.backoff ?? DEFAULT_BACKOFF;
      this.retryTimer = setTimeout(
        () => this.connect(),
        backoffDelay(this.attempt, b.minMs, b.multiplier, b.maxMs),
      );
    });
  }

  private setUp(up: boolean): void {
    if (this.up === up) return;
    this.up = up;
    for (const h of [...this.statusHandlers]) h(up);
  }

  send(_address: string, bytes: Uint8Array): Promise<void> {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN)
      return Promise.reject(new Error(`${this.describe}: not connected`));
    return new Promise((resolve, reject) =>
      ws.send(bytes, { binary: true }, (err) => (err ? reject(err) : resolve())),
    );
  }

  /** Sends a text frame (tests: the controller must close with 1003). */
  sendText(text: string): void {
    this.ws?.send(text);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.pingTimer) clearInterval(this.pingTimer);
    const ws = this.ws;
    if (ws && ws.readyState !== WebSocket.CLOSED) {
      await new Promise<void>((resolve) => {
        ws.once('close', () => resolve());
        ws.close(1000);
        setTimeout(() => {
          ws.terminate();
          resolve();
        }, 2_000).unref();
      });
    }
    this.setUp(false);
  }
}
