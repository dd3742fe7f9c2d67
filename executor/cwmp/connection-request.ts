import { createHmac, randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import http from 'node:http';
import type pg from 'pg';
import type { Logger } from '../../platform/logger.js';
import type { CredentialCipher } from '../secrets.js';
import { markTriggered } from '../task-queue.js';
import { authorize, parseChallenge } from './digest.js';

/**
 * Wakes a CPE so it opens a session (TR-069 §3.2.2, Annex G): HTTP GET with digest auth to its
 * ConnectionRequestURL; when that fails (timeout, refused, NAT), a signed UDP connection request to
 * its UDPConnectionRequestAddress; otherwise the task waits for the next periodic Inform. Every path
 * tried is recorded on the device's open tasks. Rate-limited and de-duplicated per device.
 */
export interface ConnectionRequesterOptions {
  pool: pg.Pool;
  cipher: CredentialCipher;
  log: Logger;
  timeoutMs?: number;
  /** At most one attempt per device in this window. */
  minIntervalMs?: number;
  maxConcurrent?: number;
}

export type CrOutcome = 'connection_request' | 'udp' | 'next_inform';

interface Endpoint {
  url: string | null;
  udp: string | null;
  username: string;
  password: string;
}

export class ConnectionRequester {
  private readonly inflight = new Map<string, Promise<CrOutcome>>();
  private readonly lastAttempt = new Map<string, number>();
  private running = 0;
  private readonly queue: Array<() => void> = [];
  private udp: dgram.Socket | null = null;

  constructor(private readonly o: ConnectionRequesterOptions) {}

  /** Wake each device (fire and forget); outcomes land in the task trail. */
  wake(deviceIds: string[]): void {
    for (const d of deviceIds)
      this.request(d).catch((err) => this.o.log.warn({ err, device: d }, 'connection request failed'));
  }

  /** Wake one device; resolves with the path that was used. */
  request(deviceId: string): Promise<CrOutcome> {
    const cur = this.inflight.get(deviceId);
    if (cur) return cur;
    const last = this.lastAttempt.get(deviceId) ?? 0;
    if (Date.now() - last < (this.o.minIntervalMs ?? 10_000)) return Promise.resolve('next_inform');
    this.lastAttempt.set(deviceId, Date.now());
    const p = this.slot(() => this.attempt(deviceId)).finally(() => this.inflight.delete(deviceId));
    this.inflight.set(deviceId, p);
    return p;
  }

  private async slot<T>(fn: () => Promise<T>): Promise<T> {
    if (this.running >= (this.o.maxConcurrent ?? 64)) await new Promise<void>((r) => this.queue.push(r));
    this.running += 1;
    try {
      return await fn();
    } finally {
      this.running -= 1;
      this.queue.shift()?.();
    }
  }

  private async endpoint(deviceId: string): Promise<Endpoint | null> {
    const r = await this.o.pool.query<{
      connection_request_url: string | null;
      udp_connection_request_address: string | null;
      cr_username: string | null;
      cr_password_enc: string | null;
    }>(
      `SELECT connection_request_url, udp_connection_request_address, cr_username, cr_password_enc
       FROM executor_endpoints WHERE device_id = $1`,
      [deviceId],
    );
    const row = r.rows[0];
    if (!row) return null;
    return {
      url: row.connection_request_url,
      udp: row.udp_connection_request_address,
      username: row.cr_username ?? '',
      password: row.cr_password_enc ? this.o.cipher.decrypt(row.cr_password_enc) : '',
    };
  }

  private async attempt(deviceId: string): Promise<CrOutcome> {
    const ep = await this.endpoint(deviceId);
    await this.o.pool.query(
      `UPDATE executor_endpoints SET last_connection_request_at = now() WHERE device_id = $1`,
      [deviceId],
    );
    if (ep?.url) {
      const r = await this.httpRequest(ep.url, ep);
      if (r === 'ok') {
        await markTriggered(this.o.pool, deviceId, 'connection_request', 'ok');
        return 'connection_request';
      }
      await markTriggered(this.o.pool, deviceId, 'connection_request', r);
    }
    if (ep?.udp) {
      try {
        await this.sendUdp(ep.udp, ep);
        await markTriggered(this.o.pool, deviceId, 'udp', 'sent');
        return 'udp';
      } catch (err) {
        await markTriggered(this.o.pool, deviceId, 'udp', `failed: ${(err as Error).message}`);
      }
    }
    await markTriggered(
      this.o.pool,
      deviceId,
      'next_inform',
      ep
        ? 'no reachable connection-request path; waiting for the periodic Inform'
        : 'device never informed; waiting for its first Inform',
    );
    return 'next_inform';
  }

  private get1(url: URL, auth?: string): Promise<{ status: number; challenge?: string }> {
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          host: url.hostname,
          port: url.port || 80,
          path: `${url.pathname}${url.search}`,
          method: 'GET',
          agent: false,
          timeout: this.o.timeoutMs ?? 3_000,
          headers: auth ? { authorization: auth } : {},
        },
        (res) => {
          res.resume();
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              challenge: res.headers['www-authenticate'] as string | undefined,
            }),
          );
        },
      );
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', reject);
      req.end();
    });
  }

  /** 'ok', or why it failed ('timeout', 'refused', 'unauthorized', 'status 500', …). */
  private async httpRequest(raw: string, ep: Endpoint): Promise<string> {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      return 'bad URL';
    }
    if (url.protocol !== 'http:') return `unsupported scheme ${url.protocol}`;
    try {
      let r = await this.get1(url);
      if (r.status === 401) {
        const ch = parseChallenge(r.challenge);
        if (!ch) return 'unauthorized (no digest challenge)';
        r = await this.get1(url, authorize(ch, ep, 'GET', `${url.pathname}${url.search}`));
        if (r.status === 401) return 'unauthorized (wrong credentials)';
      }
      return r.status === 200 || r.status === 204 ? 'ok' : `status ${r.status}`;
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code === 'ECONNREFUSED') return 'refused';
      if (e.message === 'timeout' || e.code === 'ETIMEDOUT') return 'timeout';
      return e.code ?? e.message;
    }
  }

  /** TR-069 Annex G: an HTTP-formatted GET in one UDP datagram, signed with HMAC-SHA1 over ts|id|un|cn. */
  private async sendUdp(address: string, ep: Endpoint): Promise<void> {
    const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(address);
    if (!m) throw new Error(`bad UDPConnectionRequestAddress ${address}`);
    const msg = udpConnectionRequest(address, ep.username, ep.password);
    this.udp ??= dgram.createSocket('udp4');
    this.udp.unref();
    await new Promise<void>((resolve, reject) =>
      this.udp!.send(msg, Number(m[2]), m[1], (err) => (err ? reject(err) : resolve())),
    );
  }

  close(): void {
    this.udp?.close();
    this.udp = null;
  }
}

export function udpConnectionRequest(
  address: string,
  username: string,
  password: string,
  now = Date.now(),
): Buffer {
  const ts = Math.floor(now / 1000).toString();
  const id = randomBytes(6).toString('hex');
  const cn = randomBytes(8).toString('hex');
  const sig = createHmac('sha1', password).update(`${ts}${id}${username}${cn}`).digest('hex');
  const q = `ts=${ts}&id=${id}&un=${encodeURIComponent(username)}&cn=${cn}&sig=${sig}`;
  return Buffer.from(`GET http://${address}?${q} HTTP/1.1\r\nHost: ${address}\r\n\r\n`);
}
