import { createHash, createHmac, randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { format, parse } from 'auth-header';
import { hashSeed, type OutcomeTable, rng, SimDevice } from '../device.js';
import { imageBytes, imageFileName, MODELS, type ModelSpec, modelByKey, sha256Hex } from '../models.js';
import { CwmpAgent, type NatMode, type SessionResult } from './agent.js';
import { sessionRetryWaitMs } from './session-retry.js';

/**
 * Many simulated CPEs in one process: one shared connection-request listener (HTTP digest, one path
 * per device), one UDP listener (Annex G), one firmware file server, periodic informs with jitter,
 * NAT modes, and storm scenarios.
 */

export interface FleetOptions {
  acsUrl: string;
  count: number;
  /** Model keys to cycle through (default: all). */
  models?: string[];
  seed?: number;
  /** Periodic inform interval; 0 disables periodic informs. */
  periodicIntervalS?: number;
  jitter?: number;
  /** Share of devices per NAT mode. */
  nat?: Partial<Record<NatMode, number>>;
  outcomes?: OutcomeTable;
  /** Source addresses for outgoing sessions (spread over 127.x for large storms). */
  localAddresses?: string[];
  /** CWMP minor versions to spread over (default [0,1,2,3,4]). */
  cwmpMinors?: number[];
  secret?: string;
  serialPrefix?: string;
  /** Index of the first device (a fleet split over several processes numbers its devices on). */
  firstIndex?: number;
  /** Regions for the topology feed. */
  regions?: string[];
}

export interface FleetDevice {
  agent: CwmpAgent;
  nat: NatMode;
  region: string;
  username: string;
  password: string;
  crUsername: string;
  crPassword: string;
}

export interface StormStats {
  sessions: number;
  ok: number;
  rejected503: number;
  errors: number;
  informsAcked: number;
  latenciesMs: number[];
  /** Epoch milliseconds (comparable across processes). */
  firstStart: number;
  lastDone: number;
  sampleErrors: string[];
}

const md5 = (s: string) => createHash('md5').update(s).digest('hex');

export class SimFleet {
  readonly devices: FleetDevice[] = [];
  readonly bySerial = new Map<string, FleetDevice>();
  private crServer: http.Server | null = null;
  private fileServer: http.Server | null = null;
  private udp: dgram.Socket | null = null;
  private timers = new Set<NodeJS.Timeout>();
  private readonly images = new Map<string, Buffer>();
  crPort = 0;
  udpPort = 0;
  filePort = 0;
  /** Connection requests received, by outcome (for tests). */
  readonly crLog: Array<{ serial: string; via: 'http' | 'udp'; ok: boolean }> = [];
  readonly sessionsLog: SessionResult[] = [];
  private readonly nonce = randomBytes(8).toString('hex');

  constructor(readonly opts: FleetOptions) {}

  static credentialsFor(secret: string, deviceId: string) {
    const h = (p: string) =>
      createHmac('sha256', secret).update(`${p}:${deviceId}`).digest('base64url').slice(0, 16);
    return { username: deviceId, password: h('acs'), crUsername: `cr-${deviceId}`, crPassword: h('cr') };
  }

  imageUrl(model: ModelSpec, version: string): string {
    return `http://127.0.0.1:${this.filePort}/fw/${imageFileName(model, version)}`;
  }

  imageInfo(model: ModelSpec, version: string): { url: string; size: number; sha256: string } {
    const b = this.image(model, version);
    return { url: this.imageUrl(model, version), size: b.length, sha256: sha256Hex(b) };
  }

  private image(model: ModelSpec, version: string): Buffer {
    const k = imageFileName(model, version);
    let b = this.images.get(k);
    if (!b) {
      b = imageBytes(model, version);
      this.images.set(k, b);
    }
    return b;
  }

  async start(): Promise<void> {
    await this.startServers();
    const o = this.opts;
    const models = (o.models ?? MODELS.map((m) => m.key)).map(modelByKey);
    const random = rng(o.seed ?? 1);
    const natShares = Object.entries(o.nat ?? { none: 1 }) as Array<[NatMode, number]>;
    const natTotal = natShares.reduce((a, [, w]) => a + w, 0);
    const minors = o.cwmpMinors ?? [0, 1, 2, 3, 4];
    const regions = o.regions ?? ['north', 'south', 'east', 'west'];
    const secret = o.secret ?? 'sim-secret';
    const first = o.firstIndex ?? 0;
    for (let i = first; i < first + o.count; i++) {
      const model = models[i % models.length]!;
      const serial = `${o.serialPrefix ?? 'SIM'}${String(i).padStart(7, '0')}`;
      const device = new SimDevice({
        model,
        serial,
        outcomes: o.outcomes,
        seed: hashSeed(`${o.seed ?? 1}:${serial}`),
      });
      let x = random() * natTotal;
      let nat: NatMode = 'none';
      for (const [k, w] of natShares) {
        x -= w;
        if (x < 0) {
          nat = k;
          break;
        }
      }
      const cred = SimFleet.credentialsFor(secret, device.id);
      const localAddress = o.localAddresses?.[i % o.localAddresses.length];
      const agent = new CwmpAgent(device, {
        acsUrl: o.acsUrl,
        cwmpMinor: minors[i % minors.length]!,
        offerVersions: minors[i % minors.length] === 4 ? '1.0,1.1,1.2,1.3,1.4' : undefined,
        username: cred.username,
        password: cred.password,
        localAddress,
        periodicIntervalS: o.periodicIntervalS ?? 3600,
        // NAT: the listener's address is not reachable from the ACS (port 1 refuses on loopback).
        connectionRequestUrl:
          nat === 'none' ? `http://127.0.0.1:${this.crPort}/cr/${serial}` : `http://127.0.0.1:1/cr/${serial}`,
        udpAddress: nat === 'udp_only' ? `127.0.0.1:${this.udpPort}` : '',
      });
      const fd: FleetDevice = { agent, nat, region: regions[i % regions.length]!, ...cred };
      agent.onWake = () => void this.runSession(fd);
      this.devices.push(fd);
      this.bySerial.set(serial, fd);
    }
  }

  /** Change a device's NAT situation (what it reports in its next Inform). */
  setNat(d: FleetDevice, nat: NatMode): void {
    d.nat = nat;
    const r = d.agent.device.root;
    const serial = d.agent.device.serial;
    d.agent.device.setInternal(
      `${r}ManagementServer.ConnectionRequestURL`,
      nat === 'none' ? `http://127.0.0.1:${this.crPort}/cr/${serial}` : `http://127.0.0.1:1/cr/${serial}`,
    );
    d.agent.device.setInternal(
      `${r}ManagementServer.UDPConnectionRequestAddress`,
      nat === 'udp_only' ? `127.0.0.1:${this.udpPort}` : '',
    );
    d.agent.opts.udpAddress = nat === 'udp_only' ? `127.0.0.1:${this.udpPort}` : '';
  }

  /** Run one session for a device (skipped when one is already running). */
  async runSession(d: FleetDevice): Promise<SessionResult | null> {
    if (d.agent.busy) return null;
    const r = await d.agent.session();
    if (this.sessionsLog.length < 10_000) this.sessionsLog.push(r);
    return r;
  }

  /** Periodic informs with jitter for every device. */
  startPeriodic(): void {
    const interval = (this.opts.periodicIntervalS ?? 0) * 1000;
    if (interval <= 0) return;
    const jitter = this.opts.jitter ?? 0.1;
    for (const d of this.devices) {
      const schedule = () => {
        const t = setTimeout(
          () => {
            this.timers.delete(t);
            d.agent.queueEvent('2 PERIODIC');
            void this.runSession(d).finally(schedule);
          },
          interval * (1 - jitter + 2 * jitter * Math.random()),
        );
        t.unref();
        this.timers.add(t);
      };
      schedule();
    }
  }

  /**
   * Storm: every device (or those of a region) starts a session at once, as after a regional outage.
   * Devices answered 503 come back after Retry-After; a session that fails otherwise (reset, timeout)
   * is retried as TR-069 §3.2.1.1 has a CPE do it (sessionRetryWaitMs). Both waits are scaled by
   * `retryScale` (1 keeps them as given).
   * `concurrency` bounds the sessions (TCP connections) open at once from this process, so it stays
   * under its descriptor limit; the others wait for a free connection, as behind a saturated link.
   * `deadlineMs` bounds the whole storm: devices still retrying then give up (counted as not done).
   */
  async storm(
    opts: { region?: string; concurrency?: number; retryScale?: number; deadlineMs?: number } = {},
  ): Promise<StormStats> {
    const list = this.devices.filter((d) => !opts.region || d.region === opts.region);
    const now = () => performance.timeOrigin + performance.now();
    const stats: StormStats = {
      sessions: 0,
      ok: 0,
      rejected503: 0,
      errors: 0,
      informsAcked: 0,
      latenciesMs: [],
      firstStart: now(),
      lastDone: 0,
      sampleErrors: [],
    };
    for (const d of list) d.agent.queueEvent('1 BOOT');
    const deadline = now() + (opts.deadlineMs ?? 600_000);
    // A counting semaphore over open sessions.
    let open = 0;
    const waiting: Array<() => void> = [];
    const limit = opts.concurrency ?? list.length;
    const acquire = (): Promise<void> => {
      if (open < limit) {
        open += 1;
        return Promise.resolve();
      }
      return new Promise((r) => waiting.push(r));
    };
    const release = () => {
      const next = waiting.shift();
      if (next) next();
      else open -= 1;
    };
    const one = async (d: FleetDevice): Promise<void> => {
      // Consecutive failed sessions (the retry count of TR-069 §3.2.1.1).
      let failures = 0;
      for (;;) {
        await acquire();
        // Past the deadline while waiting for a connection: give up without another attempt.
        if (now() > deadline) {
          release();
          return;
        }
        let r: SessionResult;
        try {
          r = await d.agent.session();
        } finally {
          release();
        }
        stats.sessions += 1;
        if (r.informAcked) stats.informsAcked += 1;
        if (r.outcome === 'ok') {
          stats.ok += 1;
          stats.latenciesMs.push(r.ms);
          stats.lastDone = now();
          return;
        }
        if (r.outcome === 'rejected_503') stats.rejected503 += 1;
        else {
          stats.errors += 1;
          if (stats.sampleErrors.length < 5) stats.sampleErrors.push(r.error ?? r.outcome);
        }
        failures += 1;
        const wait =
          (r.outcome === 'rejected_503'
            ? (r.retryAfterS ?? 1) * 1000
            : sessionRetryWaitMs(failures, Math.random())) * (opts.retryScale ?? 1);
        if (now() + wait > deadline) return;
        await new Promise((res) =>
          setTimeout(res, r.outcome === 'rejected_503' ? wait * (0.9 + 0.2 * Math.random()) : wait),
        );
      }
    };
    await Promise.all(list.map(one));
    return stats;
  }

  /** The topology feed (JSON rows) for `fleetbrain fleet import-topology`. */
  topology(): Array<Record<string, string>> {
    return this.devices.map((d, i) => ({
      deviceId: d.agent.device.id,
      region: d.region,
      site: `${d.region}-site-${i % 8}`,
      olt: `${d.region}-olt-${i % 16}`,
      ponPort: `${i % 16}/${i % 4}`,
      bng: `${d.region}-bng-${i % 2}`,
      serviceTier: ['basic', 'plus', 'pro'][i % 3]!,
      timeZone: 'Europe/Berlin',
    }));
  }

  private async startServers(): Promise<void> {
    // Connection-request listener: GET /cr/<serial> with digest auth (TR-069 §3.2.2).
    this.crServer = http.createServer((req, res) => {
      const m = /^\/cr\/([^/?]+)/.exec(req.url ?? '');
      const d = m ? this.bySerial.get(m[1]!) : undefined;
      if (!d || req.method !== 'GET') return void res.writeHead(404).end();
      const challenge = () =>
        res
          .writeHead(401, {
            'www-authenticate': format({
              scheme: 'Digest',
              params: { realm: 'cpe', nonce: this.nonce, qop: 'auth' },
            }),
          })
          .end();
      const h = req.headers.authorization;
      if (!h) return challenge();
      const t = parse(h);
      const one = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v) ?? '';
      const p = t.params;
      const ha1 = md5(`${d.crUsername}:cpe:${d.crPassword}`);
      const ha2 = md5(`GET:${one(p.uri)}`);
      const want = md5(`${ha1}:${this.nonce}:${one(p.nc)}:${one(p.cnonce)}:auth:${ha2}`);
      const ok = one(p.username) === d.crUsername && one(p.response) === want;
      this.crLog.push({ serial: m![1]!, via: 'http', ok });
      if (!ok) return challenge();
      res.writeHead(200).end();
      d.agent.queueEvent('6 CONNECTION REQUEST');
      setImmediate(() => void this.runSession(d));
    });
    await new Promise<void>((r) => this.crServer!.listen(0, '127.0.0.1', () => r()));
    this.crPort = (this.crServer.address() as AddressInfo).port;

    // UDP connection requests (Annex G): verify the HMAC-SHA1 signature with the CR password.
    this.udp = dgram.createSocket('udp4');
    this.udp.on('message', (msg) => {
      const line = msg.toString('latin1').split('\r\n')[0] ?? '';
      const q = new URL(line.split(' ')[1] ?? 'http://x/').searchParams;
      const un = q.get('un') ?? '';
      const d = this.devices.find((x) => x.crUsername === un);
      if (!d) return;
      const sig = createHmac('sha1', d.crPassword)
        .update(`${q.get('ts')}${q.get('id')}${un}${q.get('cn')}`)
        .digest('hex');
      const fresh = Math.abs(Date.now() / 1000 - Number(q.get('ts'))) < 300;
      const ok = sig === q.get('sig') && fresh;
      this.crLog.push({ serial: d.agent.device.serial, via: 'udp', ok });
      if (!ok) return;
      d.agent.queueEvent('6 CONNECTION REQUEST');
      setImmediate(() => void this.runSession(d));
    });
    await new Promise<void>((r) => this.udp!.bind(0, '127.0.0.1', () => r()));
    this.udpPort = this.udp.address().port;

    // Firmware file server: images from memory, with their checksum in a header.
    this.fileServer = http.createServer((req, res) => {
      const name = /^\/fw\/([^/?]+)$/.exec(req.url ?? '')?.[1];
      const [key, ...rest] = (name ?? '').replace(/\.img$/, '').split('-');
      const model = MODELS.find((x) => x.key === key);
      const version = rest.join('-');
      if (!model?.firmwares.includes(version)) return void res.writeHead(404).end();
      const b = this.image(model, version);
      res.writeHead(200, { 'content-length': String(b.length), 'x-checksum-sha256': sha256Hex(b) }).end(b);
    });
    await new Promise<void>((r) => this.fileServer!.listen(0, '127.0.0.1', () => r()));
    this.filePort = (this.fileServer.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    await Promise.all(
      [this.crServer, this.fileServer].map(
        (s) =>
          new Promise<void>((r) => {
            if (!s) return r();
            s.close(() => r());
            s.closeAllConnections();
          }),
      ),
    );
    this.udp?.close();
  }
}
