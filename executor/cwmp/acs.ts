import http from 'node:http';
import type https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type pg from 'pg';
import { z } from 'zod';
import type { Db } from '../../db/client.js';
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
  retryAfterSeconds: z.number().int().positive().default(30),
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
  /** TCP accept backlog: a storm's SYNs must queue, not be dropped into retransmission backoff. */
  backlog: z.number().int().positive().default(4096),
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
}

const SESSION_COOKIE = 'FBSESSION';

function cookieOf(req: http.IncomingMessage): string | null {
  const c = req.headers.cookie;
  if (!c) return null;
  for (const part of c.split(';')) {
    const [k, v] = part.trim().split('=');
    if (k === SESSION_COOKIE && v) return v;
  }
  return null;
}

/** TR-069 §3.4.4: DeviceId is OUI-ProductClass-SerialNumber, or OUI-SerialNumber without a product class. */
export function deviceIdOf(d: { oui: string; productClass: string; serialNumber: string }): string {
  return d.productClass ? `${d.oui}-${d.productClass}-${d.serialNumber}` : `${d.oui}-${d.serialNumber}`;
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
  readonly stats: AcsStats = {
    sessionsStarted: 0,
    sessionsCompleted: 0,
    informs: 0,
    rejected503: 0,
    unauthorized: 0,
    faults: 0,
    active: 0,
  };
  private readonly sessions = new Map<string, CwmpSession>();
  private readonly byDevice = new Map<string, CwmpSession>();
  private readonly bySocket = new WeakMap<Socket, CwmpSession>();
  private readonly nonces: NonceIssuer;
  private readonly discovering = new Set<string>();
  private readonly known = new Set<string>();
  private readonly credCache = new Map<string, { deviceId: string; password: string; at: number }>();
  private server: http.Server | https.Server | null = null;
  private sweeper: NodeJS.Timeout | null = null;
  /** Informs per minute (epoch minute → count) over the last hour, for the health row's baseline. */
  readonly informsPerMinute = new Map<number, number>();

  constructor(
    private readonly deps: AcsDeps,
    config: AcsConfigInput = {},
  ) {
    this.config = AcsConfig.parse(config);
    this.nonces = new NonceIssuer(this.config.realm);
  }

  get url(): string {
    const a = this.server?.address() as AddressInfo | null;
    return `${this.config.tls ? 'https' : 'http'}://${this.config.host}:${a?.port ?? this.config.port}/`;
  }

  get activeSessions(): number {
    return this.sessions.size;
  }

  async listen(): Promise<void> {
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
      this.handle(req, res).catch((err) => {
        this.deps.log.error({ err }, 'ACS handler failed');
        if (!res.headersSent) res.writeHead(500).end();
      });
    };
    this.server = http.createServer(
      { keepAlive: true, requestTimeout: 60_000, headersTimeout: 30_000 },
      handler,
    );
    this.server.keepAliveTimeout = this.config.sessionTimeoutMs;
    this.server.maxHeadersCount = 64;
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(this.config.port, this.config.host, this.config.backlog, () => resolve());
    });
    this.sweeper = setInterval(() => this.sweep(), Math.min(5_000, this.config.sessionTimeoutMs));
    this.sweeper.unref();
  }

  async close(): Promise<void> {
    if (this.sweeper) clearInterval(this.sweeper);
    for (const s of this.sessions.values()) s.finish();
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
      if (now - s.lastSeen > this.config.sessionTimeoutMs) this.endSession(s, 'timed out');
    }
    const hourAgo = Math.floor(now / 60_000) - 60;
    for (const m of this.informsPerMinute.keys()) if (m < hourAgo) this.informsPerMinute.delete(m);
  }

  private endSession(s: CwmpSession, why: string): void {
    if (!this.sessions.has(s.id)) return;
    this.sessions.delete(s.id);
    if (this.byDevice.get(s.facts.deviceId) === s) this.byDevice.delete(s.facts.deviceId);
    this.stats.active = this.sessions.size;
    s.finish();
    if (why !== 'completed') {
      abandonSession(this.deps.pool, s.id, why, this.config.retryBaseMs).catch((err) =>
        this.deps.log.warn({ err }, 'abandonSession failed'),
      );
    } else this.stats.sessionsCompleted += 1;
  }

  private async readBody(req: http.IncomingMessage): Promise<string | null> {
    const limit = this.config.maxBodyBytes;
    const declared = Number(req.headers['content-length'] ?? '0');
    if (declared > limit) return null;
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of req) {
      size += (c as Buffer).length;
      if (size > limit) return null;
      chunks.push(c as Buffer);
    }
    return Buffer.concat(chunks).toString('utf8');
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
    let session = (byCookie ?? bySocket)?.ended ? undefined : (byCookie ?? bySocket);

    if (!session && this.sessions.size >= this.config.maxSessions) {
      // Admission control: shed new sessions cheaply, before reading or authenticating anything.
      this.stats.rejected503 += 1;
      req.resume();
      const jitter = Math.floor(Math.random() * this.config.retryAfterSeconds);
      res
        .writeHead(503, {
          'retry-after': String(this.config.retryAfterSeconds + jitter),
          'content-length': '0',
        })
        .end();
      return;
    }

    const body = await this.readBody(req);
    if (body === null) {
      res.writeHead(413, { 'content-length': '0', connection: 'close' }).end();
      return;
    }
    // A pooled connection reused by another client: an Inform always opens a new session.
    if (session && session === bySocket && /<([A-Za-z0-9_-]+:)?Inform[\s>/]/.test(body)) {
      session = undefined;
      if (this.sessions.size >= this.config.maxSessions) {
        this.stats.rejected503 += 1;
        res
          .writeHead(503, { 'retry-after': String(this.config.retryAfterSeconds), 'content-length': '0' })
          .end();
        return;
      }
    }
    if (session) return this.send(res, await this.inSession(session, body));

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

  private credWaiters = new Map<
    string,
    Array<(r: { deviceId: string; password_enc: string | null }[]) => void>
  >();
  private credTimer: NodeJS.Timeout | null = null;

  /** Look usernames up in batches (one query per few ms), so a storm does not queue one query per CPE. */
  private lookup(username: string): Promise<Array<{ deviceId: string; password_enc: string | null }>> {
    return new Promise((resolve) => {
      const w = this.credWaiters.get(username);
      if (w) w.push(resolve);
      else this.credWaiters.set(username, [resolve]);
      this.credTimer ??= setTimeout(() => {
        this.credTimer = null;
        const batch = this.credWaiters;
        this.credWaiters = new Map();
        this.deps.pool
          .query<{ device_id: string; username: string; password_enc: string | null }>(
            `SELECT device_id, username, password_enc FROM executor_endpoints WHERE username = ANY($1::text[])`,
            [[...batch.keys()]],
          )
          .then(
            (r) => {
              const by = new Map<string, Array<{ deviceId: string; password_enc: string | null }>>();
              for (const row of r.rows) {
                const l = by.get(row.username) ?? [];
                l.push({ deviceId: row.device_id, password_enc: row.password_enc });
                by.set(row.username, l);
              }
              for (const [u, ws] of batch) for (const f of ws) f(by.get(u) ?? []);
            },
            (err) => {
              this.deps.log.error({ err }, 'credential lookup failed');
              for (const ws of batch.values()) for (const f of ws) f([]);
            },
          );
      }, 2);
    });
  }

  private async credentials(username: string): Promise<{ deviceId: string; password: string } | null> {
    if (!username) return null;
    const hit = this.credCache.get(username);
    if (hit && Date.now() - hit.at < 60_000) return hit;
    const rows = await this.lookup(username);
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
    const deviceId = deviceIdOf(inform.device);
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
    this.sessions.set(session.id, session);
    this.byDevice.set(deviceId, session);
    this.bySocket.set(req.socket, session);
    this.stats.sessionsStarted += 1;
    this.stats.active = this.sessions.size;

    await this.correlate(facts);

    this.send(
      res,
      {
        status: 200,
        body: buildInformResponse({ ns: env.ns, id: env.id, useVersion: negotiated ?? undefined }),
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
    if (body.trim() === '') return s.begin(() => this.runSession(s));
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
        if (s.ended) break;
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
      this.endSession(s, how);
    }
  }
}

export { AWAITING };
