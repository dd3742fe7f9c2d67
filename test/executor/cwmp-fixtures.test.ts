import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { schemaFromParameterNames } from '../../datamodel/discovered.js';
import { authorize, parseChallenge } from '../../executor/cwmp/digest.js';
import { provisionCredentials } from '../../executor/cwmp/driver.js';
import { parameterKeyFor } from '../../executor/executor.js';
import {
  DEVICE,
  DEVICE_ID,
  getParameterValuesResponse,
  getRpcMethods,
  inform,
  MALFORMED,
  setParameterValuesFault,
  transferComplete,
  unknownRpc,
} from './fixtures.js';
import { type CwmpHarness, inAMinute, startCwmpHarness } from './harness.js';

const NS = (n: number) => `urn:dslforum-org:cwmp-1-${n}`;
const PASSWORD = 'fixture-secret';

interface Res {
  status: number;
  body: string;
  headers: Headers;
}

/** A hand-driven CPE: raw POSTs, digest answered by the test, cookie carried along. */
class RawCpe {
  cookie = '';
  constructor(
    private readonly url: string,
    private readonly user = { username: DEVICE_ID, password: PASSWORD },
  ) {}

  async post(body: string, auth = false): Promise<Res> {
    const headers: Record<string, string> = { 'content-type': 'text/xml' };
    if (this.cookie) headers.cookie = this.cookie;
    let r = await fetch(this.url, { method: 'POST', body, headers });
    if (r.status === 401 && auth) {
      await r.text();
      const ch = parseChallenge(r.headers.get('www-authenticate') ?? '');
      headers.authorization = authorize(ch!, this.user, 'POST', '/');
      r = await fetch(this.url, { method: 'POST', body, headers });
    }
    const sc = r.headers.get('set-cookie');
    if (sc) this.cookie = sc.split(';')[0]!;
    return { status: r.status, body: await r.text(), headers: r.headers };
  }
}

async function eventCount(h: CwmpHarness, deviceId = DEVICE_ID): Promise<number> {
  const r = await h.db.pool.query(`SELECT count(*)::int AS n FROM device_events WHERE device_id = $1`, [
    deviceId,
  ]);
  return r.rows[0].n as number;
}

describe('ACS against hand-written SOAP fixtures', () => {
  let h: CwmpHarness;
  const key = { oui: DEVICE.oui, productClass: DEVICE.productClass, softwareVersion: '1.0.0' };

  beforeAll(async () => {
    h = await startCwmpHarness({
      // One take-in at a time, so the order in which parked requests are taken in shows.
      acs: {
        maxBodyBytes: 16 * 1024,
        maxSessions: 3,
        maxPendingNew: 1,
        retryAfterSeconds: 7,
        admissionWaitMs: 2_000,
      },
    });
    await provisionCredentials(h.db.pool, h.cipher, [
      { deviceId: DEVICE_ID, username: DEVICE_ID, password: PASSWORD },
    ]);
    // A known model for the fixture device, so writes are allowed.
    await h.registry.register(
      key,
      schemaFromParameterNames([
        { name: 'Device.', writable: false },
        { name: 'Device.DeviceInfo.UpTime', writable: false },
        { name: 'Device.WiFi.Radio.1.Channel', writable: true },
        { name: 'Device.WiFi.SSID.1.SSID', writable: true },
      ]),
      'gpn',
    );
  });
  afterAll(async () => {
    await h?.stop();
  });

  for (const n of [0, 1, 2, 3, 4]) {
    it(`speaks cwmp-1-${n}: 401 first, InformResponse in the CPE's namespace with its cwmp:ID, then 204`, async () => {
      const cpe = new RawCpe(h.acs.url);
      const before = await eventCount(h);
      const unauth = await cpe.post(inform(NS(n), { id: `id-${n}` }));
      expect(unauth.status).toBe(401);
      expect(unauth.headers.get('www-authenticate')).toMatch(/^Digest /);
      expect(await eventCount(h)).toBe(before);
      const r = await cpe.post(inform(NS(n), { id: `id-${n}` }), true);
      expect(r.status).toBe(200);
      expect(r.body).toContain(`xmlns:cwmp="${NS(n)}"`);
      expect(r.body).toMatch(new RegExp(`<cwmp:ID soap-env:mustUnderstand="1">id-${n}</cwmp:ID>`));
      expect(r.body).toContain('<cwmp:InformResponse><MaxEnvelopes>1</MaxEnvelopes></cwmp:InformResponse>');
      expect(cpe.cookie).toMatch(/^FBSESSION=/);
      // The inform was stored before it was acknowledged.
      expect(await eventCount(h)).toBeGreaterThan(before);
      const end = await cpe.post('');
      expect(end.status).toBe(204);
    });
  }

  it('negotiates CWMP 1.4: UseCWMPVersion in the InformResponse and that namespace for the rest of the session', async () => {
    const ref = { scope: 'fx', step: 'nego' };
    await h.executor.submit({
      ref,
      devices: [DEVICE_ID],
      operation: { kind: 'getValues', paths: ['Device.DeviceInfo.UpTime'] },
      deadline: inAMinute(),
      owner: 'fx',
    });
    const cpe = new RawCpe(h.acs.url);
    const r = await cpe.post(inform(NS(0), { supported: '1.0,1.1,1.2' }), true);
    expect(r.body).toContain('<cwmp:UseCWMPVersion soap-env:mustUnderstand="1">1.2</cwmp:UseCWMPVersion>');
    const req = await cpe.post('');
    expect(req.status).toBe(200);
    expect(req.body).toContain(`xmlns:cwmp="${NS(2)}"`);
    expect(req.body).toContain('<cwmp:GetParameterValues>');
    const id = /<cwmp:ID[^>]*>([^<]+)<\/cwmp:ID>/.exec(req.body)![1]!;
    const done = await cpe.post(getParameterValuesResponse(NS(2), id));
    expect(done.status).toBe(204);
    const [s] = await h.executor.status(ref);
    expect(s?.state).toBe('done');
    // Entities decoded: the device-reported string arrives as data, unchanged.
    expect(s?.result?.values).toEqual(
      expect.arrayContaining([{ path: 'Device.WiFi.SSID.1.SSID', value: 'café <guest>', type: 'string' }]),
    );
    await h.executor.releaseLeases('fx');
  });

  it('maps a SetParameterValuesFault fixture to per-parameter faults', async () => {
    const ref = { scope: 'fx', step: 'spv' };
    await h.executor.submit({
      ref,
      devices: [DEVICE_ID],
      operation: {
        kind: 'setValues',
        values: [
          { path: 'Device.WiFi.Radio.1.Channel', value: '999' },
          { path: 'Device.WiFi.SSID.1.SSID', value: 'x' },
        ],
      },
      deadline: inAMinute(),
      owner: 'fx',
    });
    const cpe = new RawCpe(h.acs.url);
    await cpe.post(inform(NS(3)), true);
    const req = await cpe.post('');
    expect(req.body).toContain('<cwmp:SetParameterValues>');
    expect(req.body).toContain(
      `<ParameterKey>${parameterKeyFor(`fx/spv/${encodeURIComponent(DEVICE_ID)}/setValues`)}</ParameterKey>`,
    );
    const id = /<cwmp:ID[^>]*>([^<]+)<\/cwmp:ID>/.exec(req.body)![1]!;
    expect((await cpe.post(setParameterValuesFault(NS(3), id))).status).toBe(204);
    const [s] = await h.executor.status(ref);
    expect(s?.state).toBe('failed');
    expect(s?.fault).toEqual({
      reason: 'device_fault',
      code: 9003,
      message: 'Invalid arguments',
      parameters: [
        { path: 'Device.WiFi.Radio.1.Channel', code: 9007, message: 'Invalid parameter value' },
        { path: 'Device.WiFi.SSID.1.SSID', code: 9008, message: 'Attempt to set a non-writable parameter' },
      ],
    });
    await h.executor.releaseLeases('fx');
  });

  it('correlates a TransferComplete fixture with the download task by CommandKey, storing it before the response', async () => {
    const ref = { scope: 'fx', step: 'dl' };
    await h.executor.submit({
      ref,
      devices: [DEVICE_ID],
      operation: { kind: 'download', url: 'http://127.0.0.1:9/fw.img', version: '2.0.0', fileSize: 10 },
      deadline: inAMinute(),
      owner: 'fx',
    });
    const cpe = new RawCpe(h.acs.url);
    await cpe.post(inform(NS(1)), true);
    const req = await cpe.post('');
    expect(req.body).toContain('<FileType>1 Firmware Upgrade Image</FileType>');
    const commandKey = /<CommandKey>([^<]+)<\/CommandKey>/.exec(req.body)![1]!;
    const id = /<cwmp:ID[^>]*>([^<]+)<\/cwmp:ID>/.exec(req.body)![1]!;
    const dl = `<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:cwmp="${NS(1)}"><SOAP-ENV:Header><cwmp:ID SOAP-ENV:mustUnderstand="1">${id}</cwmp:ID></SOAP-ENV:Header><SOAP-ENV:Body><cwmp:DownloadResponse><Status>1</Status><StartTime>0001-01-01T00:00:00Z</StartTime><CompleteTime>0001-01-01T00:00:00Z</CompleteTime></cwmp:DownloadResponse></SOAP-ENV:Body></SOAP-ENV:Envelope>`;
    expect((await cpe.post(dl)).status).toBe(204);
    expect((await h.executor.status(ref))[0]?.state).toBe('in_session');
    // Later session (after the reboot): TransferComplete with a fault.
    const cpe2 = new RawCpe(h.acs.url);
    await cpe2.post(inform(NS(1), { events: ['1 BOOT', '7 TRANSFER COMPLETE', 'M Download'] }), true);
    const tc = await cpe2.post(transferComplete(NS(1), commandKey, 9010));
    expect(tc.status).toBe(200);
    expect(tc.body).toContain('<cwmp:TransferCompleteResponse></cwmp:TransferCompleteResponse>');
    const ev = await h.events(DEVICE_ID);
    expect(ev.at(-1)).toMatchObject({ kind: 'transfer_complete', payload: { faultCode: 9010, commandKey } });
    const [s] = await h.executor.status(ref);
    expect(s).toMatchObject({ state: 'failed', fault: { reason: 'transfer', code: 9010 } });
    expect((await cpe2.post('')).status).toBe(204);
    await h.executor.releaseLeases('fx');
  });

  it('answers GetRPCMethods from the CPE and refuses an unknown RPC with fault 8000', async () => {
    const cpe = new RawCpe(h.acs.url);
    await cpe.post(inform(NS(2)), true);
    const m = await cpe.post(getRpcMethods(NS(2)));
    expect(m.status).toBe(200);
    expect(m.body).toContain('<string>TransferComplete</string>');
    expect(m.body).toContain('grm-7');
    const before = await eventCount(h);
    const u = await cpe.post(unknownRpc(NS(2)));
    expect(u.status).toBe(500);
    expect(u.body).toContain('<FaultCode>8000</FaultCode>');
    expect(await eventCount(h)).toBe(before);
    expect((await cpe.post('')).status).toBe(204);
  });

  it('rejects malformed SOAP, oversized bodies, non-Inform first messages and wrong credentials, changing nothing', async () => {
    const before = await eventCount(h);
    const tasksBefore = (await h.db.pool.query(`SELECT count(*)::int AS n FROM executor_tasks`)).rows[0].n;
    const cpe = new RawCpe(h.acs.url);
    for (const [name, body] of Object.entries(MALFORMED)) {
      const r = await cpe.post(body, true);
      expect(r.status, name).toBe(400);
      expect(r.body.length, name).toBeGreaterThan(0);
    }
    const big = inform(NS(0)).replace(
      '<RetryCount>0</RetryCount>',
      `<RetryCount>0</RetryCount><X>${'a'.repeat(20_000)}</X>`,
    );
    expect((await cpe.post(big, true)).status).toBe(413);
    const first = await cpe.post(unknownRpc(NS(0)), true);
    expect(first.status).toBe(500);
    expect(first.body).toContain('<FaultCode>8003</FaultCode>');
    expect((await cpe.post('', true)).status).toBe(400);
    const wrong = new RawCpe(h.acs.url, { username: DEVICE_ID, password: 'wrong' });
    expect((await wrong.post(inform(NS(0)), true)).status).toBe(401);
    const stranger = new RawCpe(h.acs.url, { username: 'nobody', password: PASSWORD });
    expect((await stranger.post(inform(NS(0)), true)).status).toBe(401);
    expect((await fetch(h.acs.url)).status).toBe(405);
    expect(cpe.cookie).toBe('');
    expect(await eventCount(h)).toBe(before);
    expect((await h.db.pool.query(`SELECT count(*)::int AS n FROM executor_tasks`)).rows[0].n).toBe(
      tasksBefore,
    );
  });

  it('refuses credentials used for another device', async () => {
    const cpe = new RawCpe(h.acs.url);
    const r = await cpe.post(inform(NS(0), { serial: 'OTHER1' }), true);
    expect(r.status).toBe(403);
    expect(r.body).toContain('<FaultCode>8001</FaultCode>');
    expect(await eventCount(h, `${DEVICE.oui}-${DEVICE.productClass}-OTHER1`)).toBe(0);
  });

  it('admits a bounded number of sessions: 503 with Retry-After beyond it, sessions in progress continue', async () => {
    const open: RawCpe[] = [];
    const adm = (i: number) => `${DEVICE.oui}-${DEVICE.productClass}-ADM${i}`;
    await provisionCredentials(
      h.db.pool,
      h.cipher,
      [0, 1, 2, 3].map((i) => ({ deviceId: adm(i), username: adm(i), password: PASSWORD })),
    );
    for (let i = 0; i < 3; i++) {
      const c = new RawCpe(h.acs.url, { username: adm(i), password: PASSWORD });
      const ok = await c.post(inform(NS(0), { serial: `ADM${i}` }), true);
      expect(ok.status, ok.body).toBe(200);
      open.push(c);
    }
    const before = await eventCount(h);
    const late = new RawCpe(h.acs.url, { username: adm(3), password: PASSWORD });
    const t0 = Date.now();
    const r = await late.post(inform(NS(0), { serial: 'ADM3' }), true);
    expect(r.status).toBe(503);
    // Shed only after it waited for room in vain (admissionWaitMs).
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1_900);
    expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(7);
    expect(await eventCount(h)).toBe(before);
    // The admitted sessions finish normally.
    for (const c of open) expect((await c.post('')).status).toBe(204);
    expect((await late.post(inform(NS(0), { serial: 'ADM3' }), true)).status).toBe(200);
    expect((await late.post('')).status).toBe(204);
  });

  it('lets a new session beyond the limit wait: taken in as soon as a session ends, not shed', async () => {
    const id = (i: number) => `${DEVICE.oui}-${DEVICE.productClass}-WAIT${i}`;
    await provisionCredentials(
      h.db.pool,
      h.cipher,
      [0, 1, 2, 3].map((i) => ({ deviceId: id(i), username: id(i), password: PASSWORD })),
    );
    const open: RawCpe[] = [];
    for (let i = 0; i < 3; i++) {
      const c = new RawCpe(h.acs.url, { username: id(i), password: PASSWORD });
      expect((await c.post(inform(NS(0), { serial: `WAIT${i}` }), true)).status).toBe(200);
      open.push(c);
    }
    const shed = h.acs.stats.rejected503;
    const late = new RawCpe(h.acs.url, { username: id(3), password: PASSWORD });
    const pending = late.post(inform(NS(0), { serial: 'WAIT3' }), true);
    await new Promise((r) => setTimeout(r, 300));
    expect(h.acs.stats.waiting).toBe(1);
    expect((await open[0]!.post('')).status).toBe(204);
    const r = await pending;
    expect(r.status, r.body).toBe(200);
    expect(h.acs.stats.waiting).toBe(0);
    expect(h.acs.stats.rejected503).toBe(shed);
    expect(await eventCount(h, id(3))).toBeGreaterThan(0);
    for (const c of [...open.slice(1), late]) expect((await c.post('')).status).toBe(204);
  });
  it('takes in a CPE answering its digest challenge before new sessions that wait, once per connection', async () => {
    const id = (i: number) => `${DEVICE.oui}-${DEVICE.productClass}-ANS${i}`;
    await provisionCredentials(
      h.db.pool,
      h.cipher,
      [0, 1, 2, 3].map((i) => ({ deviceId: id(i), username: id(i), password: PASSWORD })),
    );
    // The answer must come on the connection that was challenged: one keep-alive socket per CPE.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const post = (body: string, headers: Record<string, string> = {}) =>
      new Promise<{ status: number; challenge: string }>((resolve, reject) => {
        const req = http.request(h.acs.url, { method: 'POST', agent, headers }, (res) => {
          res.resume();
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, challenge: String(res.headers['www-authenticate']) }),
          );
        });
        req.on('error', reject);
        req.end(body);
      });
    const open: RawCpe[] = [];
    const openSession = async (i: number) => {
      const c = new RawCpe(h.acs.url, { username: id(i), password: PASSWORD });
      expect((await c.post(inform(NS(0), { serial: `ANS${i}` }), true)).status).toBe(200);
      open.push(c);
    };
    try {
      await openSession(0);
      await openSession(1);
      // Challenged while there is room; the sessions fill up before it answers.
      const body = inform(NS(0), { serial: 'ANS3' });
      const first = await post(body);
      expect(first.status).toBe(401);
      await openSession(2);
      const newcomer = new RawCpe(h.acs.url, { username: id(2), password: PASSWORD });
      const newcomerDone = newcomer.post(inform(NS(0), { serial: 'ANS2' }));
      await new Promise((r) => setTimeout(r, 200));
      expect(h.acs.stats.waiting).toBe(1);
      const c = parseChallenge(first.challenge)!;
      const answer = post(body, {
        authorization: authorize(c, { username: id(3), password: PASSWORD }, 'POST', '/'),
      });
      await new Promise((r) => setTimeout(r, 200));
      expect(h.acs.stats.waiting).toBe(2);
      // One session ends: the answer goes first, although the newcomer waited longer.
      expect((await open.shift()!.post('')).status).toBe(204);
      expect((await answer).status).toBe(200);
      expect(h.acs.stats.waiting).toBe(1);
      expect(await eventCount(h, id(3))).toBeGreaterThan(0);
      expect((await post('')).status).toBe(204);
      expect((await newcomerDone).status).toBe(401);
      expect(h.acs.stats.waiting).toBe(0);

      // Once per connection: after a failed answer, the next one on that connection queues like any
      // new session.
      const wrong = await post(body, {
        authorization: authorize(c, { username: id(3), password: 'wrong' }, 'POST', '/'),
      });
      expect(wrong.status).toBe(401);
      await openSession(0);
      const order: string[] = [];
      const queued = newcomer.post(inform(NS(0), { serial: 'ANS2' })).then((r) => {
        order.push('newcomer');
        return r;
      });
      await new Promise((r) => setTimeout(r, 200));
      const again = post(body, {
        authorization: authorize(
          parseChallenge(wrong.challenge)!,
          { username: id(3), password: 'wrong again' },
          'POST',
          '/',
        ),
      }).then((r) => {
        order.push('again');
        return r;
      });
      await new Promise((r) => setTimeout(r, 200));
      expect(h.acs.stats.waiting).toBe(2);
      expect((await open.shift()!.post('')).status).toBe(204);
      expect((await queued).status).toBe(401);
      expect((await again).status).toBe(401);
      expect(order).toEqual(['newcomer', 'again']);
    } finally {
      for (const o of open) await o.post('');
      agent.destroy();
    }
  });
});

describe('ACS configured to reject unknown devices', () => {
  let h: CwmpHarness;
  beforeAll(async () => {
    h = await startCwmpHarness({ acs: { auth: 'none', unknownDevices: 'reject' } });
  });
  afterAll(async () => {
    await h?.stop();
  });

  it('refuses an Inform from a device not in the inventory with fault 8001 and stores nothing', async () => {
    const cpe = new RawCpe(h.acs.url);
    const r = await cpe.post(inform(NS(1)));
    expect(r.status).toBe(403);
    expect(r.body).toContain('<FaultCode>8001</FaultCode>');
    expect(await eventCount(h)).toBe(0);
    expect((await h.db.pool.query(`SELECT count(*)::int AS n FROM devices`)).rows[0].n).toBe(0);
  });
});
