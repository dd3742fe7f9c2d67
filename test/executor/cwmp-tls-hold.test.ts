import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { schemaFromParameterNames } from '../../datamodel/discovered.js';
import { provisionCredentials } from '../../executor/cwmp/driver.js';
import { DEVICE, DEVICE_ID, getParameterValuesResponse, inform, transferComplete } from './fixtures.js';
import { type CwmpHarness, inAMinute, startCwmpHarness } from './harness.js';

const NS = 'urn:dslforum-org:cwmp-1-2';
const PASSWORD = 'tls-fixture-secret';
const HOLD = '<cwmp:HoldRequests soap-env:mustUnderstand="1">1</cwmp:HoldRequests>';

/** A self-signed certificate for 127.0.0.1, made for this test run with openssl. */
function selfSigned(): { key: string; cert: string } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fb-tls-'));
  try {
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1']
        .concat(['-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'])
        .concat(['-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')]),
      { stdio: 'ignore' },
    );
    return {
      key: readFileSync(path.join(dir, 'key.pem'), 'utf8'),
      cert: readFileSync(path.join(dir, 'cert.pem'), 'utf8'),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

interface Res {
  status: number;
  body: string;
  headers: Record<string, string | string[] | undefined>;
}

/** A hand-driven CPE over HTTPS (trusting only the test's certificate), one TCP connection per session. */
class TlsCpe {
  cookie = '';
  private readonly agent: https.Agent;
  constructor(
    private readonly url: string,
    ca: string,
    private readonly auth?: { username: string; password: string },
  ) {
    this.agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca });
  }

  post(body: string): Promise<Res> {
    const headers: Record<string, string> = {
      'content-type': 'text/xml',
      'content-length': String(Buffer.byteLength(body)),
    };
    if (this.cookie) headers.cookie = this.cookie;
    if (this.auth)
      headers.authorization = `Basic ${Buffer.from(`${this.auth.username}:${this.auth.password}`).toString('base64')}`;
    return new Promise((resolve, reject) => {
      const req = https.request(this.url, { method: 'POST', agent: this.agent, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const sc = res.headers['set-cookie'];
          if (sc?.[0]) this.cookie = sc[0].split(';')[0]!;
          resolve({
            status: res.statusCode ?? 0,
            body: Buffer.concat(chunks).toString('utf8'),
            headers: res.headers,
          });
        });
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

async function informCount(h: CwmpHarness): Promise<number> {
  const r = await h.db.pool.query(
    `SELECT count(*)::int AS n FROM device_events WHERE device_id = $1 AND kind = 'inform'`,
    [DEVICE_ID],
  );
  return r.rows[0].n as number;
}

describe('ACS over HTTPS with basic authentication', () => {
  let h: CwmpHarness;
  let plain: CwmpHarness;
  const tls = selfSigned();

  beforeAll(async () => {
    h = await startCwmpHarness({ acs: { auth: 'basic', tls } });
    // The same configuration without TLS: basic credentials must never be accepted in cleartext.
    plain = await startCwmpHarness({ acs: { auth: 'basic' } });
    for (const x of [h, plain])
      await provisionCredentials(x.db.pool, x.cipher, [
        { deviceId: DEVICE_ID, username: DEVICE_ID, password: PASSWORD },
      ]);
    await h.registry.register(
      { oui: DEVICE.oui, productClass: DEVICE.productClass, softwareVersion: '1.0.0' },
      schemaFromParameterNames([
        { name: 'Device.', writable: false },
        { name: 'Device.DeviceInfo.UpTime', writable: false },
      ]),
      'manual',
    );
  });
  afterAll(async () => {
    await h?.stop();
    await plain?.stop();
  });

  it('serves HTTPS and accepts the right basic credentials', async () => {
    expect(h.acs.url.startsWith('https://')).toBe(true);
    const cpe = new TlsCpe(h.acs.url, tls.cert, { username: DEVICE_ID, password: PASSWORD });
    const before = await informCount(h);
    const r = await cpe.post(inform(NS));
    expect(r.status).toBe(200);
    expect(r.body).toContain('<cwmp:InformResponse>');
    expect(await informCount(h)).toBe(before + 1);
    expect((await cpe.post('')).status).toBe(204);
    cpe.close();
  });

  it('challenges with Basic and refuses wrong or missing credentials, storing nothing', async () => {
    const before = await informCount(h);
    for (const auth of [
      undefined,
      { username: DEVICE_ID, password: 'wrong' },
      { username: 'nobody', password: PASSWORD },
    ]) {
      const cpe = new TlsCpe(h.acs.url, tls.cert, auth);
      const r = await cpe.post(inform(NS));
      expect(r.status).toBe(401);
      expect(r.headers['www-authenticate']).toBe('Basic realm="fleetbrain"');
      cpe.close();
    }
    expect(await informCount(h)).toBe(before);
  });

  it('refuses basic authentication over plain HTTP even with the right password, storing nothing', async () => {
    expect(plain.acs.url.startsWith('http://')).toBe(true);
    const r = await fetch(plain.acs.url, {
      method: 'POST',
      body: inform(NS),
      headers: { authorization: `Basic ${Buffer.from(`${DEVICE_ID}:${PASSWORD}`).toString('base64')}` },
    });
    expect(r.status).toBe(401);
    await r.text();
    expect(await informCount(plain)).toBe(0);
  });

  it('holds the CPE’s requests while it has queued work, and takes them once done (HoldRequests)', async () => {
    // No work queued: no HoldRequests, the CPE may send its requests at once.
    const idle = new TlsCpe(h.acs.url, tls.cert, { username: DEVICE_ID, password: PASSWORD });
    const r0 = await idle.post(inform(NS));
    expect(r0.status).toBe(200);
    expect(r0.body).not.toContain('HoldRequests');
    expect((await idle.post('')).status).toBe(204);
    idle.close();

    const ref = { scope: 'tls', step: 'hold' };
    await h.executor.submit({
      ref,
      devices: [DEVICE_ID],
      operation: { kind: 'getValues', paths: ['Device.DeviceInfo.UpTime'] },
      deadline: inAMinute(),
      owner: 'tls',
    });
    const cpe = new TlsCpe(h.acs.url, tls.cert, { username: DEVICE_ID, password: PASSWORD });
    const r = await cpe.post(inform(NS, { events: ['1 BOOT', '7 TRANSFER COMPLETE'] }));
    expect(r.body).toContain(HOLD);
    // Held: the CPE keeps its TransferComplete back and sends the empty POST; our request goes first.
    const req = await cpe.post('');
    expect(req.status).toBe(200);
    expect(req.body).toContain('<cwmp:GetParameterValues>');
    expect(req.body).toContain(HOLD);
    const id = /<cwmp:ID[^>]*>([^<]+)<\/cwmp:ID>/.exec(req.body)![1]!;
    // The ACS is done: 204, but the session stays open for what the CPE held back.
    expect((await cpe.post(getParameterValuesResponse(NS, id))).status).toBe(204);
    expect((await h.executor.status(ref))[0]?.state).toBe('done');
    const tc = await cpe.post(transferComplete(NS, 'held-key', 0));
    expect(tc.status).toBe(200);
    expect(tc.body).toContain('TransferCompleteResponse');
    const ev = await h.events(DEVICE_ID);
    expect(ev.at(-1)).toMatchObject({ kind: 'transfer_complete', payload: { commandKey: 'held-key' } });
    expect((await cpe.post('')).status).toBe(204);
    // The empty POST ended it: the cookie no longer opens a session (a new one needs an Inform).
    const after = await cpe.post(transferComplete(NS, 'late', 0));
    expect(after.status).toBe(500);
    expect(after.body).toContain('a session must start with Inform');
    cpe.close();
    await h.executor.releaseLeases('tls');
  });
});

describe('ACS admission of new sessions being taken in', () => {
  let h: CwmpHarness;
  beforeAll(async () => {
    h = await startCwmpHarness({ acs: { maxPendingNew: 1, retryAfterSeconds: 3, admissionWaitMs: 500 } });
  });
  afterAll(async () => {
    await h?.stop();
  });

  it('sheds a new session with 503 + Retry-After while the limit of requests being taken in is reached', async () => {
    const url = new URL(h.acs.url);
    // A CPE whose Inform is still arriving (half its body sent) occupies the one slot.
    const slow = net.connect(Number(url.port), url.hostname);
    await new Promise<void>((r) => slow.once('connect', () => r()));
    slow.write('POST / HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nContent-Length: 1000\r\n\r\n<soap');
    await new Promise((r) => setTimeout(r, 200));
    const r = await fetch(h.acs.url, { method: 'POST', body: inform(NS) });
    expect(r.status).toBe(503);
    expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(3);
    await r.text();
    slow.destroy();
    // Once it is gone, new sessions are taken in again (challenged for credentials).
    for (let i = 0; i < 50; i++) {
      const again = await fetch(h.acs.url, { method: 'POST', body: inform(NS) });
      await again.text();
      if (again.status === 401) return;
      await new Promise((res) => setTimeout(res, 50));
    }
    throw new Error('new sessions still shed after the slow request went away');
  });
});
