import { createHash } from 'node:crypto';
import http from 'node:http';
import { format, parse } from 'auth-header';
import { DeviceFault, type SimDevice } from '../device.js';
import { sha256Hex } from '../models.js';
import {
  type AcsMessage,
  esc,
  envelope,
  faultXml,
  informXml,
  paramList,
  parseAcs,
  strings,
  text,
  transferCompleteXml,
  valueStructs,
} from './soap.js';

/**
 * One simulated CPE speaking CWMP over HTTP: opens sessions (Inform first, digest auth, cookies,
 * empty POST, 204 ends it), answers every ACS RPC from its SimDevice, downloads firmware and
 * reports TransferComplete after the reboot.
 */

export type NatMode = 'none' | 'udp_only' | 'blocked';

export interface AgentOptions {
  acsUrl: string;
  /** CWMP namespace minor version the CPE speaks (urn:dslforum-org:cwmp-1-N). */
  cwmpMinor: number;
  /** Offer CWMP 1.4 SupportedCWMPVersions. */
  offerVersions?: string;
  username: string;
  password: string;
  localAddress?: string;
  periodicIntervalS: number;
  connectionRequestUrl: string;
  udpAddress: string;
  requestTimeoutMs?: number;
  /** Test hook: drop the connection (no answer) when this RPC arrives, once. */
  dropOn?: string | null;
  /** Test hook: apply the RPC before dropping (the change landed, the answer was lost). */
  applyBeforeDrop?: boolean;
}

export interface SessionResult {
  outcome: 'ok' | 'rejected_503' | 'unauthorized' | 'error' | 'dropped' | 'bricked';
  informAcked: boolean;
  retryAfterS?: number;
  rpcs: string[];
  ms: number;
  error?: string;
}

interface HttpReply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function md5(s: string) {
  return createHash('md5').update(s).digest('hex');
}

export class CwmpAgent {
  /** Event codes waiting to be delivered in the next Inform. */
  pending: Array<{ code: string; commandKey: string }> = [
    { code: '0 BOOTSTRAP', commandKey: '' },
    { code: '1 BOOT', commandKey: '' },
  ];
  retryCount = 0;
  busy = false;
  /** Actions decided in a session, carried out after it ends. */
  private after: Array<() => Promise<void>> = [];
  readonly log: string[] = [];
  informsAcked = 0;
  /** Sessions in which the ACS held this CPE's requests (HoldRequests in the InformResponse). */
  heldSessions = 0;

  constructor(
    readonly device: SimDevice,
    readonly opts: AgentOptions,
  ) {
    const r = device.root;
    device.setInternal(`${r}ManagementServer.URL`, opts.acsUrl);
    device.setInternal(`${r}ManagementServer.ConnectionRequestURL`, opts.connectionRequestUrl);
    device.setInternal(`${r}ManagementServer.UDPConnectionRequestAddress`, opts.udpAddress);
    device.setInternal(`${r}ManagementServer.PeriodicInformInterval`, String(opts.periodicIntervalS));
  }

  get ns(): string {
    return `urn:dslforum-org:cwmp-1-${this.opts.cwmpMinor}`;
  }

  queueEvent(code: string, commandKey = ''): void {
    if (!this.pending.some((e) => e.code === code && e.commandKey === commandKey))
      this.pending.push({ code, commandKey });
  }

  private informParams(): Array<{ path: string; value: string; type: string }> {
    const r = this.device.root;
    const paths = [
      `${r}DeviceInfo.HardwareVersion`,
      `${r}DeviceInfo.SoftwareVersion`,
      `${r}DeviceInfo.ProvisioningCode`,
      `${r}ManagementServer.ConnectionRequestURL`,
      `${r}ManagementServer.ParameterKey`,
      `${r}ManagementServer.PeriodicInformInterval`,
      ...(this.opts.udpAddress ? [`${r}ManagementServer.UDPConnectionRequestAddress`] : []),
    ];
    return paths.map((p) => ({ path: p, value: this.device.value(p) ?? '', type: this.device.paramType(p) }));
  }

  private post(agent: http.Agent, body: string, headers: Record<string, string>): Promise<HttpReply> {
    const url = new URL(this.opts.acsUrl);
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          host: url.hostname,
          port: url.port,
          path: url.pathname,
          method: 'POST',
          agent,
          localAddress: this.opts.localAddress,
          headers: {
            ...headers,
            'content-type': 'text/xml; charset="utf-8"',
            'content-length': String(Buffer.byteLength(body)),
            ...(body ? { soapaction: '' } : {}),
          },
          timeout: this.opts.requestTimeoutMs ?? 60_000,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              body: Buffer.concat(chunks).toString('utf8'),
            }),
          );
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error('request timeout')));
      req.on('error', reject);
      req.end(body);
    });
  }

  private digest(challenge: string, uri: string, nc: number): string {
    const t = parse(challenge);
    const one = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v) ?? '';
    const realm = one(t.params.realm);
    const nonce = one(t.params.nonce);
    const qop = one(t.params.qop).includes('auth') ? 'auth' : '';
    const cnonce = Math.random().toString(16).slice(2, 10);
    const ncs = nc.toString(16).padStart(8, '0');
    const ha1 = md5(`${this.opts.username}:${realm}:${this.opts.password}`);
    const ha2 = md5(`POST:${uri}`);
    const response = qop
      ? md5(`${ha1}:${nonce}:${ncs}:${cnonce}:${qop}:${ha2}`)
      : md5(`${ha1}:${nonce}:${ha2}`);
    const params: Array<[string, string]> = [
      ['username', this.opts.username],
      ['realm', realm],
      ['nonce', nonce],
      ['uri', uri],
      ['response', response],
    ];
    if (qop) params.push(['qop', qop], ['nc', ncs], ['cnonce', cnonce]);
    return format({ scheme: 'Digest', params });
  }

  /** One CWMP session from Inform to 204. */
  async session(): Promise<SessionResult> {
    const t0 = performance.now();
    const rpcs: string[] = [];
    if (this.device.life === 'bricked') return { outcome: 'bricked', informAcked: false, rpcs, ms: 0 };
    this.busy = true;
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const headers: Record<string, string> = {};
    const done = (r: Omit<SessionResult, 'ms' | 'rpcs'>): SessionResult => ({
      ...r,
      rpcs,
      ms: performance.now() - t0,
    });
    let acked = false;
    try {
      const events = [...this.pending];
      const inform = informXml({
        ns: this.ns,
        id: `inf-${this.device.bootCount}-${this.retryCount}`,
        manufacturer: this.device.model.manufacturer,
        oui: this.device.model.oui,
        productClass: this.device.model.productClass,
        serial: this.device.serial,
        events,
        retryCount: this.retryCount,
        params: this.informParams(),
        supportedVersions: this.opts.offerVersions,
      });
      let r = await this.post(agent, inform, headers);
      if (r.status === 401 && r.headers['www-authenticate']) {
        headers.authorization = this.digest(
          String(r.headers['www-authenticate']),
          new URL(this.opts.acsUrl).pathname,
          1,
        );
        r = await this.post(agent, inform, headers);
      }
      if (r.status === 503) {
        this.retryCount += 1;
        return done({
          outcome: 'rejected_503',
          informAcked: false,
          retryAfterS: Number(r.headers['retry-after'] ?? 30),
        });
      }
      if (r.status === 401) return done({ outcome: 'unauthorized', informAcked: false });
      if (r.status !== 200) {
        this.retryCount += 1;
        return done({
          outcome: 'error',
          informAcked: false,
          error: `Inform answered ${r.status}: ${r.body.slice(0, 200)}`,
        });
      }
      const ir = parseAcs(r.body);
      if (ir.name !== 'InformResponse') {
        this.retryCount += 1;
        return done({
          outcome: 'error',
          informAcked: false,
          error: `expected InformResponse, got ${ir.name}`,
        });
      }
      acked = true;
      this.informsAcked += 1;
      this.retryCount = 0;
      // Delivered: drop the events the ACS acknowledged.
      this.pending = this.pending.filter((e) => !events.includes(e));
      const sc = r.headers['set-cookie'];
      if (sc) headers.cookie = (Array.isArray(sc) ? sc : [sc]).map((c) => c.split(';')[0]).join('; ');
      let ns = this.ns;
      if (ir.useVersion) ns = `urn:dslforum-org:cwmp-${ir.useVersion.replace('.', '-')}`;
      // Our own requests (TransferComplete), sent when the ACS does not hold them (HoldRequests applies
      // to the POST that follows the envelope carrying it, TR-069 Table 28).
      const sendOwn = async (): Promise<string | null> => {
        while (this.device.transfers.length > 0) {
          const tr = this.device.transfers[0]!;
          const a = await this.post(agent, transferCompleteXml(ns, `tc-${tr.commandKey}`, tr), headers);
          if (a.status !== 200 || parseAcs(a.body).name !== 'TransferCompleteResponse')
            return `TransferComplete answered ${a.status}`;
          this.device.transfers.shift();
        }
        return null;
      };
      let held = ir.holdRequests;
      this.heldSessions += held ? 1 : 0;
      if (!held) {
        const e = await sendOwn();
        if (e) return done({ outcome: 'error', informAcked: acked, error: e });
      }
      let reply = await this.post(agent, '', headers);
      for (;;) {
        if (reply.status === 204) {
          // The ACS is done; requests held back go now, then the empty POST ends the session.
          if (!held || this.device.transfers.length === 0) break;
          held = false;
          const e = await sendOwn();
          if (e) return done({ outcome: 'error', informAcked: acked, error: e });
          reply = await this.post(agent, '', headers);
          continue;
        }
        if (reply.status !== 200)
          return done({ outcome: 'error', informAcked: acked, error: `ACS answered ${reply.status}` });
        const m = parseAcs(reply.body);
        rpcs.push(m.name);
        if (m.holdRequests) held = true;
        if (this.opts.dropOn === m.name) {
          this.opts.dropOn = null;
          if (this.opts.applyBeforeDrop) this.answer(m, ns);
          agent.destroy();
          return done({ outcome: 'dropped', informAcked: acked });
        }
        const answer = this.answer(m, ns);
        reply = await this.post(agent, answer, headers);
      }
      return done({ outcome: 'ok', informAcked: acked });
    } catch (err) {
      if (!acked) this.retryCount += 1;
      const when = `after ${Math.round(performance.now() - t0)} ms${acked ? ', Inform acknowledged' : ''}`;
      return done({ outcome: 'error', informAcked: acked, error: `${(err as Error).message} (${when})` });
    } finally {
      agent.destroy();
      this.busy = false;
      const after = this.after;
      this.after = [];
      for (const a of after) await a();
    }
  }

  /** Build the CPE's answer to one ACS request. */
  answer(m: AcsMessage, ns: string): string {
    const id = m.id;
    const d = this.device;
    try {
      switch (m.name) {
        case 'GetParameterValues': {
          const vals = d.getValues(strings(m.body.ParameterNames));
          return envelope(
            ns,
            id,
            `<cwmp:GetParameterValuesResponse>${paramList(vals)}</cwmp:GetParameterValuesResponse>`,
          );
        }
        case 'SetParameterValues': {
          const vals = valueStructs(m.body.ParameterList);
          const status = d.setValues(vals, text(m.body.ParameterKey));
          return envelope(
            ns,
            id,
            `<cwmp:SetParameterValuesResponse><Status>${status}</Status></cwmp:SetParameterValuesResponse>`,
          );
        }
        case 'GetParameterNames': {
          const names = d.getNames(
            text(m.body.ParameterPath),
            text(m.body.NextLevel) === 'true' || text(m.body.NextLevel) === '1',
          );
          const items = names
            .map(
              (n) =>
                `<ParameterInfoStruct><Name>${esc(n.path)}</Name><Writable>${n.writable ? 1 : 0}</Writable></ParameterInfoStruct>`,
            )
            .join('');
          return envelope(
            ns,
            id,
            `<cwmp:GetParameterNamesResponse><ParameterList soapenc:arrayType="cwmp:ParameterInfoStruct[${names.length}]">${items}</ParameterList></cwmp:GetParameterNamesResponse>`,
          );
        }
        case 'AddObject': {
          const n = d.addObject(text(m.body.ObjectName), text(m.body.ParameterKey));
          return envelope(
            ns,
            id,
            `<cwmp:AddObjectResponse><InstanceNumber>${n}</InstanceNumber><Status>0</Status></cwmp:AddObjectResponse>`,
          );
        }
        case 'DeleteObject': {
          d.deleteObject(text(m.body.ObjectName), text(m.body.ParameterKey));
          return envelope(
            ns,
            id,
            `<cwmp:DeleteObjectResponse><Status>0</Status></cwmp:DeleteObjectResponse>`,
          );
        }
        case 'Download': {
          const commandKey = text(m.body.CommandKey);
          const fileType = text(m.body.FileType);
          if (fileType !== '1 Firmware Upgrade Image')
            throw new DeviceFault(9003, `unsupported FileType ${fileType}`);
          const url = text(m.body.URL);
          const size = Number(text(m.body.FileSize));
          this.after.push(() => this.download(url, size, commandKey));
          return envelope(
            ns,
            id,
            `<cwmp:DownloadResponse><Status>1</Status><StartTime>0001-01-01T00:00:00Z</StartTime><CompleteTime>0001-01-01T00:00:00Z</CompleteTime></cwmp:DownloadResponse>`,
          );
        }
        case 'Reboot': {
          const commandKey = text(m.body.CommandKey);
          this.after.push(async () => this.reboot([{ code: 'M Reboot', commandKey }]));
          return envelope(ns, id, `<cwmp:RebootResponse/>`);
        }
        case 'FactoryReset': {
          this.after.push(async () => {
            d.factoryReset();
            this.reboot([{ code: '0 BOOTSTRAP', commandKey: '' }]);
          });
          return envelope(ns, id, `<cwmp:FactoryResetResponse/>`);
        }
        case 'ScheduleInform': {
          const commandKey = text(m.body.CommandKey);
          const delay = Number(text(m.body.DelaySeconds));
          this.after.push(async () => {
            setTimeout(() => {
              this.queueEvent('3 SCHEDULED');
              this.queueEvent('M ScheduleInform', commandKey);
              this.onWake?.('scheduled');
            }, delay * 1000).unref();
          });
          return envelope(ns, id, `<cwmp:ScheduleInformResponse/>`);
        }
        case 'GetRPCMethods':
          return envelope(
            ns,
            id,
            `<cwmp:GetRPCMethodsResponse><MethodList soapenc:arrayType="xsd:string[9]">${[
              'GetRPCMethods',
              'SetParameterValues',
              'GetParameterValues',
              'GetParameterNames',
              'AddObject',
              'DeleteObject',
              'Download',
              'Reboot',
              'FactoryReset',
            ]
              .map((x) => `<string>${x}</string>`)
              .join('')}</MethodList></cwmp:GetRPCMethodsResponse>`,
          );
        default:
          return faultXml(ns, id, 9000, `Method not supported: ${m.name}`);
      }
    } catch (err) {
      if (err instanceof DeviceFault) return faultXml(ns, id, err.code, err.message, err.parameters);
      return faultXml(ns, id, 9002, (err as Error).message);
    }
  }

  /** Called when the device wants a session (set by the fleet). */
  onWake?: (why: string) => void;
  /** Delay before a rebooted device informs again (ms). */
  bootDelayMs = 50;

  reboot(events: Array<{ code: string; commandKey: string }>): void {
    const life = this.device.reboot();
    if (life === 'bricked') return;
    this.queueEvent('1 BOOT');
    for (const e of events) this.queueEvent(e.code, e.commandKey);
    setTimeout(() => this.onWake?.('boot'), this.bootDelayMs).unref();
  }

  private async download(url: string, _size: number, commandKey: string): Promise<void> {
    const start = new Date().toISOString();
    let bytes: Buffer | null = null;
    let expected: string | undefined;
    let fetchFault = 9010;
    try {
      const res = await fetch(url);
      if (res.status === 404) fetchFault = 9017;
      if (res.ok) {
        bytes = Buffer.from(await res.arrayBuffer());
        expected = res.headers.get('x-checksum-sha256') ?? undefined;
      }
    } catch {
      fetchFault = 9010;
    }
    const r = this.device.install(
      bytes,
      { checksum: expected, sha256: bytes ? sha256Hex(bytes) : undefined },
      fetchFault,
    );
    const report = {
      commandKey,
      faultCode: r.faultCode,
      faultString: r.faultString,
      startTime: start,
      completeTime: new Date().toISOString(),
    };
    this.device.transfers.push(report);
    this.queueEvent('7 TRANSFER COMPLETE');
    this.queueEvent('M Download', commandKey);
    if (r.reboot) {
      this.reboot([]);
      // A boot loop comes up, informs, and goes down again: its TransferComplete never gets through.
      if (this.device.life === 'boot_loop') this.device.transfers = [];
    } else setTimeout(() => this.onWake?.('transfer'), this.bootDelayMs).unref();
  }
}
