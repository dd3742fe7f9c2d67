import http from 'node:http';
import type https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type pg from 'pg';
import { z } from 'zod';
import type { Db } from '../../db/client.js';
import { fleetDeviceId } from '../../fleet/identity.js';
import type { DeviceEvent } from '../../fleet/index.js';
import type { Logger } from '../../platform/logger.js';
import type { EndpointUpdate, WriteBatcher } from '../persist.js';
import type { SchemaGate } from '../schema-gate.js';
import type { CredentialCipher } from '../secrets.js';
import {
  claimNext,
  completeTask,
  failTask,
  findByCommandKey,
  abandonSession,
  AWAITING,
} from '../task-queue.js';
import { AdmissionSchedule, WaitingRoom } from './admission.js';
import { BatchedLookup } from './batched-lookup.js';
import { NonceIssuer, parseDigestAuthorization, verifyDigest } from './digest.js';
import { discover, runTask, toParameterValues } from './programs.js';
import { CwmpSession, type InformFacts, type Reply, SessionBroken } from './session.js';
import {
  ACS_FAULT,
  buildEmptyResponse,
  buildFault,
  buildGetRPCMethodsResponse,
  buildInformResponse,
  type CpeMessage,
  negotiateVersion,
  nsForVersion,
  type ParsedEnvelope,
  parseEnvelope,
  SoapError,
} from './soap.js';

export const AcsConfig = z.object({
  host: z.string().default('127.0.0.1'),
  port: z.number().int().min(0).max(65535).default(7547),
  /** CPE authentication: digest (default), basic (only over TLS), or none (tests, labs). */
  auth: z.enum(['digest', 'basic', 'none']).default('digest'),
  realm: z.string().default('fleetbrain'),
  /** Shared first-contact credentials for CPEs without per-device ones (factory default), if any. */
  provisioning: z.object({ username: z.string(), password: z.string() }).optional(),
  /** A CPE not in the inventory: register it, or refuse the session. */
  unknownDevices: z.enum(['register', 'reject']).default('register'),
  maxSessions: z.number().int().positive().default(2000),
  /** Shortest Retry-After handed to a shed CPE (the schedule below may hand out longer ones). */
  retryAfterSeconds: z.number().int().positive().default(30),
  /** Longest Retry-After: a storm's tail is told to come back within this. */
  maxRetryAfterSeconds: z.number().int().positive().default(900),
  /**
   * Open TCP connections accepted at once (beyond it the socket is closed at once): keeps the process
   * far from its descriptor limit (EMFILE) whatever a storm does.
   */
  maxConnections: z.number().int().positive().default(12_000),
  /**
   * New-session requests taken in at once (authentication, parsing, writing the Inform); beyond it
   * new sessions wait for room as beyond maxSessions, so a request taken in is answered quickly
   * instead of queueing behind hundreds of others until its CPE times out. Most of them wait for
   * their Inform's commit: with group commit that is one flush in flight and the next one filling,
   * a few hundred sessions each in a storm. At 1000 admission still stalled while PostgreSQL
   * committed (10k storm: 12% of the CPU idle, 0.52–0.55 of the bare server's rate); at 2000 the
   * ACS parses the next batch meanwhile (0.57–0.68; 4000 gave the same).
   */
  maxPendingNew: z.number().int().positive().default(2000),
  /**
   * A new session that finds no room waits this long for one (its request unread, costing no CPU)
   * before it is shed. A storm's CPEs are thus taken in at the pace sessions finish instead of being
   * shed and coming back, and those that are shed get a Retry-After booked at a measured rate rather
   * than a guessed one. A parked request costs a descriptor and its buffered bytes, no CPU; a shed
   * costs both sides a connection, a digest challenge and a retry. 20 s lets a storm's whole first
   * burst (thousands of CPEs at once) wait its turn at a few hundred sessions a second, and stays
   * under CPEs' usual response timeouts (30 s and more); 0 sheds at once.
   */
  admissionWaitMs: z.number().int().nonnegative().default(20_000),
  /** New sessions waiting for room at once; beyond it they are shed at once. */
  maxWaitingNew: z.number().int().nonnegative().default(10_000),
  sessionTimeoutMs: z.number().int().positive().default(30_000),
  maxBodyBytes: z
    .number()
    .int()
    .positive()
    .default(256 * 1024),
  retryBaseMs: z.number().int().nonnegative().default(5_000),
  /** A task held by a session that went quiet this long is taken over by the next session. */
  staleSessionMs: z.number().int().positive().default(60_000),
  /** TLS: basic auth is only accepted when the server runs with TLS. */
  tls: z.object({ key: z.string(), cert: z.string() }).optional(),
  /**
   * TCP accept backlog: a storm's SYNs must queue, not be dropped into retransmission backoff (1, 3,
   * 7, … s). Node accepts one connection per event-loop turn, so a busy ACS drains the queue slowly.
   * The kernel caps it at net.core.somaxconn (4096 on many systems: raise it, see README).
   */
  backlog: z.number().int().positive().default(16_384),
  /** Entries in the credential and known-device caches (bounded: memory must not grow with the fleet). */
  cacheEntries: z.number().int().positive().default(20_000),
});
export type AcsConfig = z.infer<typeof AcsConfig>;
export type AcsConfigInput = z.input<typeof AcsConfig>;

export interface AcsDeps {
  pool: pg.Pool;
  db: Db;
  batcher: WriteBatcher;
  gate: SchemaGate;
  cipher: CredentialCipher;
  log: Logger;
}

/** Counters for health rows and benchmarks. */
export interface AcsStats {
  sessionsStarted: number;
  sessionsCompleted: number;
  informs: number;
  rejected503: number;
  unauthorized: number;
  faults: number;
  active: number;
  /** New sessions waiting for room (admissionWaitMs). */
  waiting: number;
  /** Connections closed as soon as accepted, beyond maxConnections. */
  dropped: number;
}

const SESSION_COOKIE = 'FBSESSION';

/** A request parked until there is room for its session (admissionWaitMs). */
interface Parked {
  req: http.IncomingMessage;
  res: http.ServerResponse;
  until: number;
}

function cookieOf(req: http.IncomingMessage): string | null {
  const c = req.headers.cookie;
  if (!c) return null;
  for (const part of c.split(';')) {
    const [k, v] = part.trim().split('=');
    if (k === SESSION_COOKIE && v) return v;
  }
  return null;
}

/** Map TR-069 event codes to the fleet's device-event kinds (besides the `inform` row itself). */
function eventKinds(codes: string[]): Array<'boot' | 'bootstrap' | 'value_change'> {
  const out: Array<'boot' | 'bootstrap' | 'value_change'> = [];
  if (codes.includes('1 BOOT')) out.push('boot');
  if (codes.includes('0 BOOTSTRAP')) out.push('bootstrap');
  if (codes.includes('4 VALUE CHANGE')) out.push('value_change');
  return out;
}

interface Principal {
  /** Device the credentials belong to; null for shared provisioning credentials or auth none. */
  deviceId: string | null;
}

/**
 * The ACS endpoint: SOAP over HTTP, one CWMP session per cookie (or per TCP connection for CPEs
 * without cookies), admission control, CPE authentication, persistence before acknowledgement.
 */
export class AcsServer {
  readonly config: AcsConfig;
  /** Counters; `active` and `waiting` read the live session map and waiting room. */
  readonly stats: AcsStats = Object.defineProperties(
    {
      sessionsStarted: 0,
      sessionsCompleted: 0,
      informs: 0,
      rejected503: 0,
      unauthorized: 0,
      faults: 0,
      dropped: 0,
    } as AcsStats,
    {
      active: { enumerable: true, get: () => this.sessions.size },
      waiting: { enumerable: true, get: () => this.room.size },
    },
  );
  private readonly sessions = new Map<string, CwmpSession>();
  private readonly byDevice = new Map<string, CwmpSession>();
  private readonly bySocket = new WeakMap<Socket, CwmpSession>();
  private readonly nonces: NonceIssuer;
  private readonly discovering = new Set<string>();
  private readonly known = new Set<string>();
  private readonly credCache = new Map<string, { deviceId: string; password: string; at: number }>();
  private server: http.Server | https.Server | null = null;
  /** Requests for new sessions being taken in (authentication, parsing, the Inform's write). */
  private pendingNew = 0;
  /** New sessions waiting for room. */
  private readonly room = new WaitingRoom<Parked>();
  /**
   * Connections we challenged: true until their answer has used its turn in the waiting room (once
   * per connection, so a client failing authentication over and over does not stay ahead).
   */
  private readonly challenged = new WeakMap<Socket, boolean>();
  private sweeper: NodeJS.Timeout | null = null;
  private ticker: NodeJS.Timeout | null = null;
  private waitSweeper: NodeJS.Timeout | null = null;
  private completedAtLastTick = 0;
  /** Retry-After for shed CPEs (see AdmissionSchedule). */
  private readonly schedule: AdmissionSchedule;
  /** Informs per minute (epoch minute → count) over the last hour, for the health row's baseline. */
  readonly informsPerMinute = new Map<number, number>();

  constructor(
    private readonly deps: AcsDeps,
    config: AcsConfigInput = {},
  ) {
    this.config = AcsConfig.parse(config);
    this.nonces = new NonceIssuer(this.config.realm);
    // Until a rate is measured, assume a session takes a second of a slot.
    this.schedule = new AdmissionSchedule({
      minSeconds: this.config.retryAfterSeconds,
      maxSeconds: this.config.maxRetryAfterSeconds,
      initialRate: this.config.maxSessions,
    });
  }

  get url(): string {
    const a = this.server?.address() as AddressInfo | null;
    return `${this.config.tls ? 'https' : 'http'}://${this.config.host}:${a?.port ?? this.config.port}/`;
  }

  get activeSessions(): number {
    return this.sessions.size;
  }

  async listen(): Promise<void> {
    // A storm must not wait for PostgreSQL connections to be set up while the event loop is swamped
    // (they then time out and informs are refused): open the pool's connections now and keep them.
    const pool = this.deps.pool as pg.Pool & { options: { max?: number; idleTimeoutMillis?: number } };
    pool.options.idleTimeoutMillis = 0;
    await Promise.all(
      Array.from({ length: Math.min(pool.options.max ?? 10, 8) }, () => pool.query('SELECT 1')),
    );
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
      this.handle(req, res).catch((err) => this.failed(res, err));
    };
    const opts = { keepAlive: true, requestTimeout: 60_000, headersTimeout: 30_000 };
    this.server = this.config.tls
      ? (await import('node:https')).createServer({ ...opts, ...this.config.tls }, handler)
      : http.createServer(opts, handler);
    this.server.maxConnections = this.config.maxConnections;
    this.server.on('drop', () => {
      this.stats.dropped += 1;
    });
    this.server.keepAliveTimeout = this.config.sessionTimeoutMs;
    this.server.maxHeadersCount = 64;
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(this.config.port, this.config.host, this.config.backlog, () => resolve());
    });
    this.sweeper = setInterval(() => this.sweep(), Math.min(5_000, this.config.sessionTimeoutMs));
    this.sweeper.unref();
    this.ticker = setInterval(() => {
      this.schedule.tick(this.stats.sessionsCompleted - this.completedAtLastTick);
      this.completedAtLastTick = this.stats.sessionsCompleted;
    }, 1_000);
    this.ticker.unref();
    this.waitSweeper = setInterval(() => this.shedExpired(), 250);
    this.waitSweeper.unref();
  }

  private shed(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.stats.rejected503 += 1;
    const retryAfter = String(this.schedule.retryAfter());
    // Close the connection: a shed CPE must not hold a descriptor while it waits. But answer only once
    // its request is read: closing a socket with unread bytes makes the kernel send a reset, and the
    // CPE then sees ECONNRESET instead of the 503 and its Retry-After, and comes straight back.
    const answer = () => {
      if (res.headersSent) return;
      res.writeHead(503, { 'retry-after': retryAfter, 'content-length': '0', connection: 'close' }).end();
    };
    if (req.readableEnded || Number(req.headers['content-length'] ?? 0) > this.config.maxBodyBytes) answer();
    else {
      req.once('end', answer);
      req.once('error', answer);
    }
    req.resume();
  }

  private get hasRoom(): boolean {
    return this.sessions.size < this.config.maxSessions && this.pendingNew < this.config.maxPendingNew;
  }

  /** Park a new session until there is room, or shed it at once when too many wait already. */
  private wait(req: http.IncomingMessage, res: http.ServerResponse, answering: boolean): void {
    if (this.config.admissionWaitMs === 0 || this.room.size >= this.config.maxWaitingNew) {
      this.shed(req, res);
      return;
    }
    this.room.park({ req, res, until: Date.now() + this.config.admissionWaitMs }, answering);
  }

  /** Room freed: take in parked sessions, answers to our challenge first, then the oldest new ones. */
  private admitWaiting(): void {
    while (this.hasRoom) {
      const w = this.room.next();
      if (!w) break;
      if (w.req.socket.destroyed) continue;
      this.takeIn(w.req, w.res).catch((err) => this.failed(w.res, err));
    }
  }

  /** Parked sessions past their wait: 503 with a Retry-After booked at the rate measured meanwhile. */
  private shedExpired(): void {
    for (const w of this.room.expired(Date.now())) if (!w.req.socket.destroyed) this.shed(w.req, w.res);
  }

  private failed(res: http.ServerResponse, err: unknown): void {
    this.deps.log.error({ err }, 'ACS handler failed');
    if (!res.headersSent) res.writeHead(500).end();
  }

  async close(): Promise<void> {
    if (this.sweeper) clearInterval(this.sweeper);
    if (this.ticker) clearInterval(this.ticker);
    if (this.waitSweeper) clearInterval(this.waitSweeper);
    for (const s of this.sessions.values()) s.finish();
    this.room.clear();
    await new Promise<void>((resolve) => {
      if (!this.server) return resolve();
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
    await this.deps.batcher.drain();
  }

  /** Sessions that went quiet: end them; their tasks are retried in a later session. */
  private sweep(): void {
    const now = Date.now();
    for (const s of this.sessions.values()) {
      if (s.closing && now - s.lastSeen > 5_000) this.endSession(s, 'completed');
      else if (now - s.lastSeen > this.config.sessionTimeoutMs) this.endSession(s, 'timed out');
    }
    const hourAgo = Math.floor(now / 60_000) - 60;
    for (const m of this.informsPerMinute.keys()) if (m < hourAgo) this.informsPerMinute.delete(m);
  }

  private endSession(s: CwmpSession, why: string): void {
    if (!this.sessions.has(s.id)) return;
    this.sessions.delete(s.id);
    if (this.byDevice.get(s.facts.deviceId) === s) this.byDevice.delete(s.facts.deviceId);
    s.finish();
    this.admitWaiting();
    if (why !== 'completed') {
      abandonSession(this.deps.pool, s.id, why, this.config.retryBaseMs).catch((err) =>
        this.deps.log.warn({ err }, 'abandonSession failed'),
      );
    } else this.stats.sessionsCompleted += 1;
  }

  /** The request body, or null beyond maxBodyBytes. Plain listeners: an async iterator per request costs. */
  private readBody(req: http.IncomingMessage): Promise<string | null> {
    const limit = this.config.maxBodyBytes;
    const declared = Number(req.headers['content-length'] ?? '0');
    if (declared > limit) return Promise.resolve(null);
    if (req.readableEnded) return Promise.resolve('');
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      const onData = (c: Buffer) => {
        size += c.length;
        if (size <= limit) return void chunks.push(c);
        req.off('data', onData);
        req.off('end', onEnd);
        resolve(null);
      };
      const onEnd = () =>
        resolve(chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks).toString('utf8'));
      req.on('data', onData);
      req.once('end', onEnd);
      req.once('error', reject);
    });
  }

  private send(res: http.ServerResponse, r: Reply, extra: Record<string, string> = {}): void {
    const headers: Record<string, string> = { ...extra, ...(r.headers ?? {}) };
    if (r.body !== undefined) {
      headers['content-type'] ??= 'text/xml; charset="utf-8"';
      headers['content-length'] = String(Buffer.byteLength(r.body));
    } else if (r.status !== 204) headers['content-length'] = '0';
    res.writeHead(r.status, headers);
    res.end(r.body);
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (req.method !== 'POST') {
      res.writeHead(405, { allow: 'POST', 'content-length': '0' }).end();
      return;
    }
    const cookie = cookieOf(req);
    const byCookie = cookie ? this.sessions.get(cookie) : undefined;
    // Without a cookie, the TCP connection identifies the session (CPEs without cookie support).
    const bySocket = byCookie ? undefined : this.bySocket.get(req.socket);
    const session = (byCookie ?? bySocket)?.ended ? undefined : (byCookie ?? bySocket);

    // Admission control, before reading or authenticating anything: a new session waits (briefly,
    // behind those already waiting) when the sessions are at their limit or too many new ones are
    // being taken in, and is shed if no room comes (queueing longer only makes CPEs time out).
    if (!session) {
      const answering = this.challenged.get(req.socket) === true;
      if (answering) this.challenged.set(req.socket, false);
      if (!this.hasRoom || this.room.ahead(answering) > 0) return this.wait(req, res, answering);
      return this.takeIn(req, res);
    }
    return this.admitted(req, res, session, bySocket);
  }

  /** A new session given room: counted as being taken in until its Inform is answered. */
  private async takeIn(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    this.pendingNew += 1;
    try {
      await this.admitted(req, res, undefined, undefined);
    } finally {
      this.pendingNew -= 1;
      this.admitWaiting();
    }
  }

  private async admitted(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    found: CwmpSession | undefined,
    bySocket: CwmpSession | undefined,
  ): Promise<void> {
    let session = found;

    const body = await this.readBody(req);
    if (body === null) {
      res.writeHead(413, { 'content-length': '0', connection: 'close' }).end();
      return;
    }
    // A pooled connection reused by another client: an Inform always opens a new session.
    if (session && session === bySocket && /<([A-Za-z0-9_-]+:)?Inform[\s>/]/.test(body)) {
      session = undefined;
      if (this.sessions.size >= this.config.maxSessions) return this.shed(req, res);
    }
    if (session) {
      const s = session;
      this.send(res, await this.inSession(s, body));
      // A held CPE with nothing left to send ends the session by closing the connection (§3.7.1.4).
      if (s.closing && !s.ended)
        req.socket.once('close', () => {
          if (!s.ended) this.endSession(s, 'completed');
        });
      return;
    }

    const principal = this.authenticate(req, res);
    const who = await principal;
    if (!who) return;
    if (body.trim() === '') {
      res
        .writeHead(400, { 'content-type': 'text/plain', connection: 'close' })
        .end('a session starts with an Inform');
      return;
    }
    let env: ParsedEnvelope;
    try {
      env = parseEnvelope(body);
    } catch (err) {
      return this.badRequest(res, err);
    }
    if (env.message.type !== 'Inform') {
      this.stats.faults += 1;
      return this.send(res, {
        status: 500,
        body: buildFault(
          { ns: env.ns, id: env.id },
          ACS_FAULT.invalidArguments,
          'a session must start with Inform',
        ),
      });
    }
    await this.startSession(req, res, env, env.message, who);
  }

  private badRequest(res: http.ServerResponse, err: unknown): void {
    const msg = err instanceof Error ? err.message : String(err);
    const status = err instanceof SoapError ? err.status : 400;
    res
      .writeHead(status, { 'content-type': 'text/plain', 'content-length': String(Buffer.byteLength(msg)) })
      .end(msg);
  }

  /** Resolve a principal or answer 401 (with a fresh challenge). */
  private async authenticate(req: http.IncomingMessage, res: http.ServerResponse): Promise<Principal | null> {
    const mode = this.config.auth;
    if (mode === 'none') return { deviceId: null };
    const header = req.headers.authorization;
    const deny = (stale = false) => {
      this.stats.unauthorized += 1;
      if (!this.challenged.has(req.socket)) this.challenged.set(req.socket, true);
      req.resume();
      const challenge =
        mode === 'digest' ? this.nonces.challenge(stale) : `Basic realm="${this.config.realm}"`;
      res.writeHead(401, { 'www-authenticate': challenge, 'content-length': '0' }).end();
      return null;
    };
    if (mode === 'basic') {
      if (!this.config.tls) return deny(); // never accept cleartext passwords without TLS
      const m = /^Basic\s+([A-Za-z0-9+/=]+)$/.exec(header ?? '');
      if (!m) return deny();
      const [u, ...rest] = Buffer.from(m[1]!, 'base64').toString('utf8').split(':');
      const cred = await this.credentials(u ?? '');
      if (!cred || cred.password !== rest.join(':')) return deny();
      return { deviceId: cred.deviceId };
    }
    const c = parseDigestAuthorization(header);
    if (!c || c.realm !== this.config.realm) return deny();
    const nonce = this.nonces.check(c.nonce);
    if (nonce === 'bad') return deny();
    const cred = await this.credentials(c.username);
    if (!cred || !verifyDigest(c, cred.password, 'POST')) return deny();
    if (nonce === 'stale') return deny(true);
    return { deviceId: cred.deviceId || null };
  }

  /** Usernames looked up in batches (one query per few ms), so a storm does not queue one query per CPE. */
  private readonly credLookup = new BatchedLookup<Array<{ deviceId: string; password_enc: string | null }>>(
    async (usernames) => {
      const r = await this.deps.pool.query<{
        device_id: string;
        username: string;
        password_enc: string | null;
      }>(
        `SELECT device_id, username, password_enc FROM executor_endpoints WHERE username = ANY($1::text[])`,
        [usernames],
      );
      const by = new Map<string, Array<{ deviceId: string; password_enc: string | null }>>();
      for (const row of r.rows) {
        const l = by.get(row.username) ?? [];
        l.push({ deviceId: row.device_id, password_enc: row.password_enc });
        by.set(row.username, l);
      }
      return by;
    },
    [],
    (err) => {
      this.deps.log.error({ err }, 'credential lookup failed');
      return [];
    },
  );

  /**
   * Whether a device has queued work due now, asked in batches at Inform time (alongside the write of
   * the Inform): it decides HoldRequests, and a session without work skips the queue altogether.
   * On a failed query the answer is "yes" (the runner then asks the queue itself).
   */
  private readonly dueLookup = new BatchedLookup<boolean>(
    async (deviceIds) => {
      const r = await this.deps.pool.query<{ device_id: string }>(
        `SELECT DISTINCT device_id FROM executor_tasks
         WHERE device_id = ANY($1::text[]) AND state IN ('queued', 'triggered', 'in_session')
           AND deadline > now() AND not_before <= now()`,
        [deviceIds],
      );
      return new Map(r.rows.map((x) => [x.device_id, true]));
    },
    false,
    (err) => {
      this.deps.log.warn({ err }, 'queue probe failed');
      return true;
    },
  );

  private async credentials(username: string): Promise<{ deviceId: string; password: string } | null> {
    if (!username) return null;
    const hit = this.credCache.get(username);
    if (hit && Date.now() - hit.at < 60_000) return hit;
    const rows = await this.credLookup.get(username);
    let found: { deviceId: string; password: string } | null = null;
    const row = rows[0];
    if (rows.length === 1 && row?.password_enc)
      found = { deviceId: row.deviceId, password: this.deps.cipher.decrypt(row.password_enc) };
    else if (this.config.provisioning && username === this.config.provisioning.username)
      found = { deviceId: '', password: this.config.provisioning.password };
    if (found) {
      // Bounded (oldest first out) so memory does not grow with the fleet.
      if (this.credCache.size >= this.config.cacheEntries)
        this.credCache.delete(this.credCache.keys().next().value!);
      this.credCache.set(username, { ...found, at: Date.now() });
    }
    return found;
  }

  /** Forget cached credentials (after they changed). */
  invalidateCredentials(username?: string): void {
    if (username) this.credCache.delete(username);
    else this.credCache.clear();
  }

  private remember(deviceId: string): void {
    if (this.config.unknownDevices !== 'reject') return;
    if (this.known.size >= this.config.cacheEntries) this.known.delete(this.known.values().next().value!);
    this.known.add(deviceId);
  }

  private async isKnown(deviceId: string): Promise<boolean> {
    if (this.known.has(deviceId)) return true;
    const r = await this.deps.pool.query(`SELECT 1 FROM devices WHERE id = $1`, [deviceId]);
    if ((r.rowCount ?? 0) > 0) this.remember(deviceId);
    return (r.rowCount ?? 0) > 0;
  }

  private async startSession(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    env: ParsedEnvelope,
    inform: Extract<CpeMessage, { type: 'Inform' }>,
    who: Principal,
  ): Promise<void> {
    const deviceId = fleetDeviceId(inform.device);
    const fault = (code: number, msg: string, status = 500) => {
      this.stats.faults += 1;
      this.send(res, { status, body: buildFault({ ns: env.ns, id: env.id }, code, msg) });
    };
    if (who.deviceId && who.deviceId !== deviceId)
      return fault(ACS_FAULT.requestDenied, 'credentials belong to another device', 403);
    if (this.config.unknownDevices === 'reject' && !(await this.isKnown(deviceId)))
      return fault(ACS_FAULT.requestDenied, `unknown device ${deviceId}`, 403);

    const p = (suffix: string) => inform.params.find((x) => x.path.endsWith(suffix))?.value;
    const root = inform.params.some((x) => x.path.startsWith('InternetGatewayDevice.'))
      ? 'InternetGatewayDevice.'
      : 'Device.';
    const facts: InformFacts = {
      deviceId,
      oui: inform.device.oui,
      productClass: inform.device.productClass,
      serialNumber: inform.device.serialNumber,
      softwareVersion: p('DeviceInfo.SoftwareVersion') ?? '',
      root,
      parameterKey: p('ManagementServer.ParameterKey') ?? null,
      events: inform.events,
      params: inform.params,
    };
    const negotiated = negotiateVersion(env.supportedVersions);
    const version = negotiated ?? `1.${env.minor}`;
    const sessionNs = negotiated ? nsForVersion(negotiated) : env.ns;

    // Persist before acknowledging: the InformResponse goes out only after the commit.
    const now = new Date();
    const codes = inform.events.map((e) => e.code);
    const events: DeviceEvent[] = [
      {
        deviceId,
        at: now,
        kind: 'inform',
        payload: {
          eventCodes: codes,
          softwareVersion: facts.softwareVersion,
          retryCount: inform.retryCount,
          cwmp: version,
        },
      },
      ...eventKinds(codes).map(
        (kind): DeviceEvent =>
          kind === 'value_change'
            ? {
                deviceId,
                at: now,
                kind,
                payload: { parameters: Object.fromEntries(inform.params.map((x) => [x.path, x.value])) },
              }
            : { deviceId, at: now, kind, payload: { softwareVersion: facts.softwareVersion } },
      ),
    ];
    const interval = Number(p('ManagementServer.PeriodicInformInterval'));
    const endpoint: EndpointUpdate = {
      deviceId,
      protocol: 'cwmp',
      connectionRequestUrl: p('ManagementServer.ConnectionRequestURL') || undefined,
      udpConnectionRequestAddress: p('ManagementServer.UDPConnectionRequestAddress') || undefined,
      cwmpVersion: version,
      parameterKey: facts.parameterKey ?? undefined,
      periodicInformInterval: Number.isInteger(interval) && interval > 0 ? interval : undefined,
      lastInformAt: now,
    };
    // Asked while the Inform is written (both batched): is work waiting for this device?
    const due = this.dueLookup.get(deviceId);
    try {
      await this.deps.batcher.write({
        devices: [
          {
            id: deviceId,
            oui: facts.oui,
            serialNumber: facts.serialNumber,
            protocol: 'cwmp',
            manufacturer: inform.device.manufacturer || undefined,
            productClass: facts.productClass || undefined,
            modelName: p('DeviceInfo.ModelName') || undefined,
            hardwareVersion: p('DeviceInfo.HardwareVersion') || undefined,
            softwareVersion: facts.softwareVersion || undefined,
            dataModelRoot: root,
            lastContactAt: now,
            periodicInformIntervalS: endpoint.periodicInformInterval,
            connectionRequestUrl: endpoint.connectionRequestUrl,
          },
        ],
        events,
        values: toParameterValues(deviceId, inform.params, now),
        endpoints: [endpoint],
      });
    } catch (err) {
      // Nothing acknowledged: the CPE retries the Inform (RetryCount) later.
      this.deps.log.error({ err, deviceId }, 'inform not persisted');
      return fault(ACS_FAULT.internalError, 'inform could not be stored; retry later');
    }
    this.remember(deviceId);
    this.stats.informs += 1;
    const minute = Math.floor(Date.now() / 60_000);
    this.informsPerMinute.set(minute, (this.informsPerMinute.get(minute) ?? 0) + 1);

    // A device opening a new session abandons its old one (it dropped mid-way): retry at once.
    const old = this.byDevice.get(deviceId);
    if (old) {
      this.sessions.delete(old.id);
      old.finish('device opened a new session', true);
      // Let the old runner record its broken task first, so this session finds it due.
      await Promise.race([old.settled(), new Promise((r) => setTimeout(r, 2_000))]);
      await abandonSession(this.deps.pool, old.id, 'device opened a new session', 0);
    }
    const session = new CwmpSession(facts, sessionNs, version, this.config.sessionTimeoutMs, this.deps.log);
    // Work to do first (queued tasks due, a task of a dropped session, or discovery of an unknown
    // model): HoldRequests, so the CPE sends its empty POST at once and our requests go first; it
    // sends what it held back (TransferComplete, ...) once we are done. Nothing to do: no queue query.
    const key = { oui: facts.oui, productClass: facts.productClass, softwareVersion: facts.softwareVersion };
    session.hasWork =
      (await due) || old !== undefined || (!!facts.softwareVersion && this.deps.gate.match(key) !== 'exact');
    session.held = session.hasWork;
    this.sessions.set(session.id, session);
    this.byDevice.set(deviceId, session);
    this.bySocket.set(req.socket, session);
    this.stats.sessionsStarted += 1;

    await this.correlate(facts);

    this.send(
      res,
      {
        status: 200,
        body: buildInformResponse({
          ns: env.ns,
          id: env.id,
          useVersion: negotiated ?? undefined,
          holdRequests: session.held,
        }),
      },
      { 'set-cookie': `${SESSION_COOKIE}=${session.id}; Path=/; HttpOnly` },
    );
  }

  /** Inform events that finish parked tasks: "M Reboot" with our CommandKey after Reboot / activation. */
  private async correlate(f: InformFacts): Promise<void> {
    for (const e of f.events) {
      if (e.code !== 'M Reboot' || !e.commandKey) continue;
      const t = await findByCommandKey(this.deps.pool, f.deviceId, e.commandKey);
      if (!t || (t.operation.kind !== 'reboot' && t.operation.kind !== 'activateImage')) continue;
      if (t.operation.kind === 'activateImage' && f.softwareVersion !== t.operation.version) {
        await failTask(this.deps.pool, t.id, {
          reason: 'device_fault',
          message: `device rebooted into ${f.softwareVersion}, not ${t.operation.version}`,
        });
      } else await completeTask(this.deps.pool, t.id, { transfer: { version: f.softwareVersion } });
    }
  }

  private async inSession(s: CwmpSession, body: string): Promise<Reply> {
    s.lastSeen = Date.now();
    const empty = body.trim() === '';
    if (empty && s.closing) {
      // The held CPE has sent what it held back: now the session is over (§3.7.1.4).
      this.endSession(s, 'completed');
      return { status: 204 };
    }
    if (empty) return s.begin(() => this.runSession(s));
    let env: ParsedEnvelope;
    try {
      env = parseEnvelope(body);
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      return {
        status: err instanceof SoapError ? err.status : 400,
        body: msg,
        headers: { 'content-type': 'text/plain' },
      };
    }
    const m = env.message;
    const h = { ns: s.ns, id: env.id };
    switch (m.type) {
      case 'TransferComplete':
        return this.transferComplete(s, m, h);
      case 'AutonomousTransferComplete': {
        await this.deps.batcher.write({
          events: [
            {
              deviceId: s.facts.deviceId,
              at: new Date(),
              kind: 'transfer_complete',
              payload: {
                faultCode: m.faultCode,
                autonomous: true,
                fileType: m.fileType,
                faultString: m.faultString,
              },
            },
          ],
        });
        return { status: 200, body: buildEmptyResponse(h, 'AutonomousTransferCompleteResponse') };
      }
      case 'GetRPCMethods':
        return { status: 200, body: buildGetRPCMethodsResponse(h) };
      case 'Inform':
        this.stats.faults += 1;
        return {
          status: 500,
          body: buildFault(h, ACS_FAULT.invalidArguments, 'only one Inform per session'),
        };
      case 'Unknown':
        this.stats.faults += 1;
        return {
          status: 500,
          body: buildFault(h, ACS_FAULT.methodNotSupported, `method ${m.name} not supported`),
        };
      default:
        if (!s.awaiting) {
          this.stats.faults += 1;
          return {
            status: 500,
            body: buildFault(h, ACS_FAULT.invalidArguments, `unexpected ${m.type}: no request pending`),
          };
        }
        return s.deliver(m);
    }
  }

  private async transferComplete(
    s: CwmpSession,
    m: Extract<CpeMessage, { type: 'TransferComplete' }>,
    h: { ns: string; id: string | null },
  ): Promise<Reply> {
    const deviceId = s.facts.deviceId;
    await this.deps.batcher.write({
      events: [
        {
          deviceId,
          at: new Date(),
          kind: 'transfer_complete',
          payload: {
            faultCode: m.faultCode,
            commandKey: m.commandKey,
            faultString: m.faultString,
            startTime: m.startTime,
            completeTime: m.completeTime,
            softwareVersion: s.facts.softwareVersion,
          },
        },
      ],
    });
    const t = m.commandKey ? await findByCommandKey(this.deps.pool, deviceId, m.commandKey) : null;
    if (t && t.operation.kind === 'download') {
      if (m.faultCode === 0)
        await completeTask(this.deps.pool, t.id, {
          transfer: {
            startTime: m.startTime,
            completeTime: m.completeTime,
            version: s.facts.softwareVersion,
          },
        });
      else
        await failTask(this.deps.pool, t.id, {
          reason: 'transfer',
          code: m.faultCode,
          message: m.faultString || `transfer failed with ${m.faultCode}`,
        });
    }
    return { status: 200, body: buildEmptyResponse(h, 'TransferCompleteResponse') };
  }

  /** After the CPE's empty POST: discovery if its model is unknown, then its queued tasks in order. */
  private async runSession(s: CwmpSession): Promise<void> {
    const f = s.facts;
    const key = { oui: f.oui, productClass: f.productClass, softwareVersion: f.softwareVersion };
    const keyStr = `${key.oui}/${key.productClass}/${key.softwareVersion}`;
    const ctx = {
      pool: this.deps.pool,
      batcher: this.deps.batcher,
      gate: this.deps.gate,
      log: this.deps.log,
      retryBaseMs: this.config.retryBaseMs,
    };
    let how = 'completed';
    try {
      if (f.softwareVersion && this.deps.gate.match(key) !== 'exact' && !this.discovering.has(keyStr)) {
        this.discovering.add(keyStr);
        try {
          await discover(ctx, s);
        } finally {
          this.discovering.delete(keyStr);
        }
      }
      for (;;) {
        if (s.ended || !s.hasWork) break;
        const t = await claimNext(this.deps.pool, f.deviceId, s.id, this.config.staleSessionMs);
        if (!t) break;
        if (t.state === 'in_session' && t.attempts > 1)
          this.deps.log.info({ key: t.key, attempt: t.attempts }, 'retrying task');
        await runTask(ctx, s, t);
      }
    } catch (err) {
      how = err instanceof SessionBroken ? err.message : 'runner error';
      if (!(err instanceof SessionBroken))
        this.deps.log.warn({ err, device: f.deviceId }, 'session runner error');
    } finally {
      // We held the CPE's requests: its empty POST meant "nothing I may send", not "nothing to send",
      // so after our 204 it may still send what it held back (§3.7.1.4).
      if (how === 'completed' && s.held && !s.ended) s.release();
      else this.endSession(s, how);
    }
  }
}

export { AWAITING };
