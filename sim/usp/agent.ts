import { createHash } from 'node:crypto';
import {
  encodeRecord,
  errorMsg,
  RECORD_VERSION,
  requestMsg,
  requestTypeOf,
  responseMsg,
  SUPPORTED_PROTOCOL_VERSIONS,
} from '../../executor/usp/codec.js';
import { type MessageContext, sendMsg } from '../../executor/usp/endpoint.js';
import { osEndpointId } from '../../executor/usp/endpoint-id.js';
import { USP_ERR } from '../../executor/usp/errors.js';
import type {
  Add,
  AddResp,
  Delete,
  DeleteResp,
  Get,
  GetInstances,
  GetResp,
  GetSupportedDM,
  GetSupportedDMResp,
  Notify,
  Operate,
  ParameterError,
  SetReq,
  SetResp,
  StringMap,
  SupportedObject,
  UspMsg,
} from '../../executor/usp/messages.js';
import type { Mtp } from '../../executor/usp/mtp/mtp.js';
import { DeviceFault, FAULT, type SimDevice } from '../device.js';
import { instancesIn, pathMatcher, splitParam, supportedForm, uspCodeFor } from './paths.js';

const SUB = 'Device.LocalAgent.Subscription.';
const NOTIF_TYPES = ['ValueChange', 'ObjectCreation', 'ObjectDeletion', 'OperationComplete', 'Event'];

interface Subscription {
  ID: string;
  Enable: string;
  NotifType: string;
  ReferenceList: string;
  NotifRetry: string;
  Persistent: string;
  Recipient: string;
}

export interface UspAgentOptions {
  device: SimDevice;
  /** Defaults to `os::<OUI>-<SerialNumber>`. */
  endpointId?: string;
  controllerId: string;
  /** The controller's MQTT topic (or any string for WebSocket, which has one peer). */
  controllerAddress: string;
  mtp: Mtp;
  /** Simulated durations (reboot, TimeWindow seconds, notify retry) are multiplied by this. */
  timeScale?: number;
  rebootMs?: number;
  /** First retry of an unanswered send_resp Notify; doubles up to 60 s (scaled). */
  notifyRetryMs?: number;
  /** Fetches an image (Download()); null means the transfer failed. Defaults to HTTP(S) fetch. */
  fetchImage?: (url: string) => Promise<Buffer | null>;
  /** Send an MQTTConnect/WebSocketConnect record after each (re)connect (R-MTP.6). */
  sendConnectRecord?: boolean;
  /** Already onboarded with the controller (a device that re-joins after an outage). */
  onboarded?: boolean;
  /** Subscriptions as the controller created them earlier (`onboarded` agents in load tests). */
  subscriptions?: Array<Partial<Subscription>>;
  /**
   * Device.LocalAgent.Controller.1.PeriodicNotifInterval (seconds, scaled): while up, the agent sends
   * `Device.LocalAgent.Periodic!` to subscribers at this interval, at a random phase per agent (the
   * liveness a rollout reads, as CWMP's periodic Inform). Absent: no periodic contact.
   */
  periodicNotifIntervalS?: number;
}

/** Default image fetch: plain HTTP(S) GET, null on any failure. */
async function httpFetch(url: string): Promise<Buffer | null> {
  try {
    const res = await fetch(url);
    if (!res.ok) return null;
    return Buffer.from(await res.arrayBuffer());
  } catch {
    return null;
  }
}

/**
 * A simulated USP Agent (TR-369) wrapping a protocol-neutral SimDevice: answers Get, GetSupportedDM,
 * GetInstances, GetSupportedProtocol, Set, Add, Delete and Operate, keeps its LocalAgent subscriptions,
 * and sends Notify (OnBoardRequest, Boot!, TransferComplete!, ValueChange, OperationComplete,
 * ObjectCreation/Deletion), retrying the ones sent with send_resp until their NotifyResp arrives.
 */
export class UspAgent {
  readonly endpointId: string;
  readonly device: SimDevice;
  private readonly subs = new Map<number, Subscription>();
  private nextSub = 1;
  private nextRequest = 1;
  private msgCounter = 0;
  private onboarded: boolean;
  private online = false;
  private stopped = false;
  private readonly pendingNotify = new Map<
    string,
    { msg: UspMsg; attempt: number; timer?: NodeJS.Timeout }
  >();
  private readonly answered = new Map<string, UspMsg>();
  private readonly timers = new Set<NodeJS.Timeout>();
  /** Work to report after the next boot (Activate() completion). */
  private afterBoot: Array<() => void> = [];
  private bootCause = 'LocalReboot';
  private bootCommandKey = '';
  private versionBeforeReboot: string;
  /** Counters for tests and benchmarks. */
  readonly stats = { requests: 0, notifiesSent: 0, notifyAcks: 0, boots: 0 };

  constructor(private readonly opts: UspAgentOptions) {
    this.device = opts.device;
    this.endpointId = opts.endpointId ?? osEndpointId(opts.device.model.oui, opts.device.serial);
    this.onboarded = opts.onboarded ?? false;
    this.versionBeforeReboot = opts.device.firmware;
    for (const s of opts.subscriptions ?? []) this.addSubscription(s);
  }

  private get scale(): number {
    return this.opts.timeScale ?? 1;
  }

  private later(ms: number, fn: () => void): NodeJS.Timeout {
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (!this.stopped) fn();
    }, ms);
    this.timers.add(t);
    return t;
  }

  isOnline(): boolean {
    return this.online;
  }

  /** Power on: onboard (first contact) or announce Boot!. Call once the MTP is up. */
  powerOn(): void {
    this.online = true;
    this.stats.boots += 1;
    this.announce();
    this.startPeriodic();
  }

  private periodicStarted = false;

  /** Periodic! every PeriodicNotifInterval while up (the clock keeps running through reboots). */
  private startPeriodic(): void {
    const s = this.opts.periodicNotifIntervalS;
    if (!s || s <= 0 || this.periodicStarted) return;
    this.periodicStarted = true;
    const every = s * 1000 * this.scale;
    const tick = () => {
      if (this.online) this.emitEvent('Device.LocalAgent.', 'Periodic!', {});
      this.later(every, tick);
    };
    this.later(Math.random() * every, tick);
  }

  /** Announce presence after a (re)connect or boot: connect record, OnBoardRequest or Boot!. */
  private announce(): void {
    if (this.opts.sendConnectRecord) this.sendConnectRecord();
    if (!this.onboarded) {
      this.sendNotify('', true, {
        on_board_req: {
          oui: this.device.model.oui,
          product_class: this.device.model.productClass,
          serial_number: this.device.serial,
          agent_supported_protocol_versions: SUPPORTED_PROTOCOL_VERSIONS,
        },
      });
      return;
    }
    this.emitEvent('Device.', 'Boot!', {
      CommandKey: this.bootCommandKey,
      Cause: this.bootCause,
      FirmwareUpdated: String(this.device.firmware !== this.versionBeforeReboot),
      ParameterMap: JSON.stringify({ 'Device.DeviceInfo.SoftwareVersion': this.device.firmware }),
    });
    const pending = this.afterBoot;
    this.afterBoot = [];
    for (const fn of pending) fn();
  }

  private sendConnectRecord(): void {
    const mtp = this.opts.mtp;
    const record =
      mtp.kind === 'mqtt'
        ? { mqtt_connect: { version: 'V5' as const, subscribed_topic: '' } }
        : { websocket_connect: {} };
    mtp
      .send(
        this.opts.controllerAddress,
        encodeRecord({
          version: RECORD_VERSION,
          to_id: this.opts.controllerId,
          from_id: this.endpointId,
          ...record,
        }),
        { from: this.endpointId },
      )
      .catch(() => {});
  }

  /** The MTP came back: resend every Notify still waiting for its NotifyResp. */
  onMtpUp(): void {
    if (!this.online) return;
    for (const [id, p] of this.pendingNotify) this.transmit(id, p.msg);
  }

  stop(): void {
    this.stopped = true;
    this.online = false;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const p of this.pendingNotify.values()) if (p.timer) clearTimeout(p.timer);
  }

  pendingNotifies(): number {
    return this.pendingNotify.size;
  }

  // ---- outbound --------------------------------------------------------------------------------

  private newMsgId(kind: string): string {
    this.msgCounter += 1;
    return `${kind}-${this.device.bootCount}-${this.msgCounter}-${Date.now().toString(36)}`;
  }

  private transmit(msgId: string, msg: UspMsg): void {
    const p = this.pendingNotify.get(msgId);
    // Offline (rebooting): nothing is sent, but a Notify awaiting its NotifyResp keeps its retry
    // schedule, so a retry that falls into a reboot is sent on a later attempt instead of never.
    if (!this.online && !p) return;
    if (this.online) {
      this.stats.notifiesSent += 1;
      sendMsg(this.opts.mtp, this.opts.controllerAddress, {
        to: this.opts.controllerId,
        from: this.endpointId,
        msg,
      }).catch(() => {});
    }
    if (p) {
      if (p.timer) clearTimeout(p.timer);
      // TR-369 NotifRetry: the n-th retry waits a random time in [m·k^(n-1), m·k^n] with
      // m = USPNotifRetryMinimumWaitInterval (5 s) and k = USPNotifRetryIntervalMultiplier (2000 ‰);
      // the interval stops growing after the 10th retry (as CWMP's session retry does).
      const base = (this.opts.notifyRetryMs ?? 5_000) * this.scale;
      const lo = base * 2 ** Math.min(p.attempt, 9);
      const wait = lo + Math.random() * lo;
      p.attempt += 1;
      p.timer = this.later(wait, () => this.transmit(msgId, msg));
    }
  }

  private sendNotify(
    subscriptionId: string,
    sendResp: boolean,
    body: Omit<Notify, 'subscription_id' | 'send_resp'>,
  ): void {
    const msgId = this.newMsgId('notify');
    const msg = requestMsg(msgId, 'notify', {
      subscription_id: subscriptionId,
      send_resp: sendResp,
      ...body,
    });
    if (sendResp) this.pendingNotify.set(msgId, { msg, attempt: 0 });
    this.transmit(msgId, msg);
  }

  private matching(type: string, path: string): Subscription[] {
    const out: Subscription[] = [];
    for (const s of this.subs.values()) {
      if (s.Enable !== 'true' || s.NotifType !== type) continue;
      const refs = s.ReferenceList.split(',').map((r) => r.trim());
      if (refs.some((r) => r === path || (r.endsWith('.') && path.startsWith(r)))) out.push(s);
    }
    return out;
  }

  emitEvent(objPath: string, name: string, params: StringMap): void {
    for (const s of this.matching('Event', `${objPath}${name}`)) {
      this.sendNotify(s.ID, s.NotifRetry === 'true', {
        event: { obj_path: objPath, event_name: name, params },
      });
    }
  }

  private emitOperationComplete(
    objPath: string,
    command: string,
    commandKey: string,
    result: { ok: true; output: StringMap } | { ok: false; code: number; message: string },
  ): void {
    for (const s of this.matching('OperationComplete', `${objPath}${command}`)) {
      this.sendNotify(s.ID, s.NotifRetry === 'true', {
        oper_complete: {
          obj_path: objPath,
          command_name: command,
          command_key: commandKey,
          ...(result.ok
            ? { req_output_args: { output_args: result.output } }
            : { cmd_failure: { err_code: result.code, err_msg: result.message } }),
        },
      });
    }
  }

  private emitValueChanges(changes: Array<{ path: string; value: string }>): void {
    for (const c of changes) {
      for (const s of this.matching('ValueChange', c.path)) {
        this.sendNotify(s.ID, s.NotifRetry === 'true', {
          value_change: { param_path: c.path, param_value: c.value },
        });
      }
    }
  }

  // ---- inbound ---------------------------------------------------------------------------------

  handle(ctx: MessageContext): void {
    if (!this.online) return; // rebooting or bricked: the message is lost like on a real device
    const { msg } = ctx;
    if (msg.body.response?.notify_resp !== undefined || msg.body.response?.resp_type === 'notify_resp') {
      const p = this.pendingNotify.get(msg.header.msg_id);
      if (p) {
        if (p.timer) clearTimeout(p.timer);
        this.pendingNotify.delete(msg.header.msg_id);
        this.stats.notifyAcks += 1;
        if (p.msg.body.request?.notify?.on_board_req) {
          this.onboarded = true;
        }
      }
      return;
    }
    if (msg.body.response || msg.body.error) return; // unexpected responses are ignored (R-MSG)
    const type = requestTypeOf(msg);
    if (!msg.body.request) {
      void ctx.reply(
        errorMsg(msg.header.msg_id, { err_code: USP_ERR.MESSAGE_FAILED, err_msg: 'message has no body' }),
      );
      return;
    }
    this.stats.requests += 1;
    // A retried request (same msg_id) gets the same answer and is not applied twice.
    const cached = this.answered.get(msg.header.msg_id);
    if (cached) {
      void ctx.reply(cached).catch(() => {});
      return;
    }
    let answer: UspMsg | undefined;
    try {
      const id = msg.header.msg_id;
      const req = msg.body.request;
      switch (type) {
        case 'get':
          answer = responseMsg(id, 'get_resp', this.get(req.get as Get));
          break;
        case 'get_supported_dm':
          answer = responseMsg(
            id,
            'get_supported_dm_resp',
            this.getSupportedDM(req.get_supported_dm as GetSupportedDM),
          );
          break;
        case 'get_instances':
          answer = responseMsg(
            id,
            'get_instances_resp',
            this.getInstances(req.get_instances as GetInstances),
          );
          break;
        case 'get_supported_protocol':
          answer = responseMsg(id, 'get_supported_protocol_resp', {
            agent_supported_protocol_versions: SUPPORTED_PROTOCOL_VERSIONS,
          });
          break;
        case 'set':
          answer = this.set(id, req.set as SetReq);
          break;
        case 'add':
          answer = this.add(id, req.add as Add);
          break;
        case 'delete':
          answer = this.delete(id, req.delete as Delete);
          break;
        case 'operate':
          answer = this.operate(id, req.operate as Operate);
          break;
        default:
          answer = errorMsg(id, {
            err_code: USP_ERR.MESSAGE_NOT_SUPPORTED,
            err_msg: `message type ${type ?? String(msg.header.msg_type)} is not supported by this agent`,
          });
      }
    } catch (err) {
      const code = err instanceof DeviceFault ? uspCodeFor(err.code, 'object') : USP_ERR.INTERNAL_ERROR;
      answer = errorMsg(msg.header.msg_id, { err_code: code, err_msg: (err as Error).message });
    }
    if (!answer) return;
    this.answered.set(msg.header.msg_id, answer);
    if (this.answered.size > 64) this.answered.delete(this.answered.keys().next().value as string);
    void ctx.reply(answer).catch(() => {});
  }

  // ---- data model ------------------------------------------------------------------------------

  private localAgentParams(): Map<string, string> {
    const m = new Map<string, string>();
    m.set('Device.LocalAgent.EndpointID', this.endpointId);
    m.set('Device.LocalAgent.SupportedProtocols', 'MQTT,WebSocket');
    m.set('Device.LocalAgent.SubscriptionNumberOfEntries', String(this.subs.size));
    // Device.LocalAgent.Controller.{i}.: modelled for the periodic interval, when one is configured.
    if (this.opts.periodicNotifIntervalS) {
      m.set('Device.LocalAgent.ControllerNumberOfEntries', '1');
      m.set('Device.LocalAgent.Controller.1.EndpointID', this.opts.controllerId);
      m.set('Device.LocalAgent.Controller.1.PeriodicNotifInterval', String(this.opts.periodicNotifIntervalS));
    }
    for (const [n, s] of this.subs) for (const [k, v] of Object.entries(s)) m.set(`${SUB}${n}.${k}`, v);
    return m;
  }

  private allValues(): Map<string, string> {
    const m = new Map<string, string>();
    for (const p of this.device.allPaths()) m.set(p, this.device.value(p) ?? '');
    for (const [k, v] of this.localAgentParams()) m.set(k, v);
    return m;
  }

  private get(req: Get): GetResp {
    const all = this.allValues();
    const keys = [...all.keys()];
    return {
      req_path_results: req.param_paths.map((requested) => {
        let hits: string[];
        try {
          const match = pathMatcher(requested);
          hits = keys.filter(match);
        } catch (err) {
          return {
            requested_path: requested,
            err_code: 7008,
            err_msg: (err as Error).message,
            resolved_path_results: [],
          };
        }
        if (hits.length === 0 && !requested.includes('*')) {
          return {
            requested_path: requested,
            err_code: 7026,
            err_msg: `Invalid path ${requested}`,
            resolved_path_results: [],
          };
        }
        const byObj = new Map<string, StringMap>();
        for (const h of hits) {
          const [obj, name] = splitParam(h);
          const m = byObj.get(obj) ?? {};
          m[name] = all.get(h) ?? '';
          byObj.set(obj, m);
        }
        return {
          requested_path: requested,
          err_code: 0,
          err_msg: '',
          resolved_path_results: [...byObj].map(([resolved_path, result_params]) => ({
            resolved_path,
            result_params,
          })),
        };
      }),
    };
  }

  private getSupportedDM(req: GetSupportedDM): GetSupportedDMResp {
    const paths = [...this.device.allPaths(), ...this.localAgentParams().keys()];
    const objs = new Map<string, SupportedObject>();
    const obj = (p: string): SupportedObject => {
      let o = objs.get(p);
      if (!o) {
        o = {
          supported_obj_path: p,
          access: p === SUB ? 'OBJ_ADD_DELETE' : 'OBJ_READ_ONLY',
          is_multi_instance: p.endsWith('.{i}.'),
          supported_commands: [],
          supported_events: [],
          supported_params: [],
        };
        objs.set(p, o);
      }
      return o;
    };
    const valueType: Record<string, string> = {
      string: 'PARAM_STRING',
      boolean: 'PARAM_BOOLEAN',
      unsignedInt: 'PARAM_UNSIGNED_INT',
      int: 'PARAM_INT',
      dateTime: 'PARAM_DATE_TIME',
      unsignedLong: 'PARAM_UNSIGNED_LONG',
    };
    for (const p of paths) {
      const [o, name] = splitParam(supportedForm(p));
      const seen = obj(o);
      if (seen.supported_params?.some((x) => x.param_name === name)) continue;
      const writable = p.startsWith('Device.LocalAgent.')
        ? p.startsWith(SUB)
        : (this.device.getNames(p, false)[0]?.writable ?? false);
      if (req.return_params !== false) {
        seen.supported_params?.push({
          param_name: name,
          access: writable ? 'PARAM_READ_WRITE' : 'PARAM_READ_ONLY',
          value_type: valueType[this.device.paramType(p)] ?? 'PARAM_STRING',
          value_change: 'VALUE_CHANGE_ALLOWED',
        });
      }
    }
    obj(SUB);
    const root = obj('Device.');
    const fw = obj('Device.DeviceInfo.FirmwareImage.{i}.');
    if (req.return_commands) {
      root.supported_commands = [
        { command_name: 'Reboot()', command_type: 'CMD_SYNC' },
        { command_name: 'FactoryReset()', command_type: 'CMD_SYNC' },
      ];
      fw.supported_commands = [
        {
          command_name: 'Download()',
          input_arg_names: [
            'URL',
            'AutoActivate',
            'Username',
            'Password',
            'FileSize',
            'CheckSumAlgorithm',
            'CheckSum',
          ],
          command_type: 'CMD_ASYNC',
        },
        {
          command_name: 'Activate()',
          input_arg_names: [
            'TimeWindow.{i}.Start',
            'TimeWindow.{i}.End',
            'TimeWindow.{i}.Mode',
            'TimeWindow.{i}.MaxRetries',
          ],
          command_type: 'CMD_ASYNC',
        },
      ];
    }
    if (req.return_events) {
      root.supported_events = [
        { event_name: 'Boot!', arg_names: ['CommandKey', 'Cause', 'FirmwareUpdated', 'ParameterMap'] },
      ];
      obj('Device.LocalAgent.').supported_events = [
        { event_name: 'Periodic!', arg_names: [] },
        {
          event_name: 'TransferComplete!',
          arg_names: [
            'Command',
            'CommandKey',
            'Requestor',
            'TransferType',
            'Affected',
            'TransferURL',
            'StartTime',
            'CompleteTime',
            'FaultCode',
            'FaultString',
          ],
        },
      ];
    }
    const sorted = [...objs.values()].sort((a, b) =>
      a.supported_obj_path.localeCompare(b.supported_obj_path),
    );
    return {
      req_obj_results: req.obj_paths.map((requested) => {
        const base = supportedForm(requested);
        const hits = sorted.filter((o) =>
          req.first_level_only
            ? o.supported_obj_path === base ||
              (o.supported_obj_path.startsWith(base) &&
                !o.supported_obj_path
                  .slice(base.length)
                  .replace(/\{i\}\.$/, '')
                  .slice(0, -1)
                  .includes('.'))
            : o.supported_obj_path.startsWith(base),
        );
        if (hits.length === 0) {
          return {
            req_obj_path: requested,
            err_code: 7026,
            err_msg: `Invalid path ${requested}`,
            supported_objs: [],
          };
        }
        return {
          req_obj_path: requested,
          err_code: 0,
          err_msg: '',
          data_model_inst_uri: 'urn:broadband-forum-org:tr-181-2-19-1-usp',
          supported_objs: hits,
        };
      }),
    };
  }

  private getInstances(req: GetInstances) {
    const insts = instancesIn(this.allValues().keys());
    return {
      req_path_results: req.obj_paths.map((requested) => {
        if (!requested.endsWith('.')) {
          return { requested_path: requested, err_code: 7026, err_msg: 'not an object path', curr_insts: [] };
        }
        const hits = [...insts].filter((i) => {
          if (!i.startsWith(requested)) return false;
          if (!req.first_level_only) return true;
          return /^\d+\.$/.test(i.slice(requested.length));
        });
        return {
          requested_path: requested,
          err_code: 0,
          err_msg: '',
          curr_insts: hits.sort().map((instantiated_obj_path) => ({
            instantiated_obj_path,
            unique_keys: (instantiated_obj_path.startsWith(SUB)
              ? { ID: this.subs.get(Number(instantiated_obj_path.slice(SUB.length, -1)))?.ID ?? '' }
              : {}) as StringMap,
          })),
        };
      }),
    };
  }

  /** Applies one object's parameter settings; returns per-parameter errors and whether the object failed. */
  private applyToObject(
    objPath: string,
    settings: Array<{ param: string; value: string; required?: boolean }>,
  ): { failed: boolean; errs: ParameterError[]; applied: StringMap } {
    const full = settings.map((s) => ({
      path: `${objPath}${s.param}`,
      value: s.value,
      required: !!s.required,
    }));
    const errs: ParameterError[] = [];
    const subN = objPath.startsWith(SUB) ? Number(objPath.slice(SUB.length, -1)) : undefined;
    if (subN !== undefined) {
      const sub = this.subs.get(subN);
      if (!sub) return { failed: true, errs: [], applied: {} };
      const applied: StringMap = {};
      for (const s of settings) {
        const bad = this.subscriptionValueProblem(s.param, s.value, subN);
        if (bad) errs.push({ param: s.param, err_code: bad.code, err_msg: bad.message });
      }
      const failed = errs.some((e) => settings.find((s) => s.param === e.param)?.required);
      if (!failed) {
        for (const s of settings) {
          if (errs.some((e) => e.param === s.param)) continue;
          (sub as unknown as Record<string, string>)[s.param] = s.value;
          applied[s.param] = s.value;
        }
      }
      return { failed, errs, applied };
    }
    const key = this.device.value('Device.ManagementServer.ParameterKey') ?? '';
    let ok = full;
    try {
      this.device.setValues(
        full.map(({ path, value }) => ({ path, value })),
        key,
      );
    } catch (err) {
      if (!(err instanceof DeviceFault)) throw err;
      const bad = new Set(err.parameters.map((p) => p.path));
      for (const p of err.parameters) {
        errs.push({ param: p.path.slice(objPath.length), err_code: uspCodeFor(p.code), err_msg: p.message });
      }
      if (err.parameters.length === 0) {
        for (const f of full)
          errs.push({
            param: f.path.slice(objPath.length),
            err_code: uspCodeFor(err.code),
            err_msg: err.message,
          });
      }
      const failed = full.some((f) => f.required && (bad.has(f.path) || err.parameters.length === 0));
      if (failed) return { failed: true, errs, applied: {} };
      ok = full.filter((f) => !bad.has(f.path));
      if (ok.length > 0)
        this.device.setValues(
          ok.map(({ path, value }) => ({ path, value })),
          key,
        );
    }
    const applied: StringMap = {};
    for (const f of ok) applied[f.path.slice(objPath.length)] = f.value;
    return { failed: false, errs, applied };
  }

  private subscriptionValueProblem(
    param: string,
    value: string,
    self?: number,
  ): { code: number; message: string } | null {
    switch (param) {
      case 'NotifType':
        return NOTIF_TYPES.includes(value)
          ? null
          : { code: 7012, message: `NotifType must be one of ${NOTIF_TYPES.join(', ')}` };
      case 'Enable':
      case 'NotifRetry':
      case 'Persistent':
        return /^(true|false)$/.test(value) ? null : { code: 7012, message: `${param} must be a boolean` };
      case 'ID':
        for (const [n, s] of this.subs)
          if (n !== self && s.ID === value) return { code: 7025, message: `ID ${value} exists` };
        return value ? null : { code: 7012, message: 'ID must not be empty' };
      case 'ReferenceList':
      case 'Recipient':
        return null;
      default:
        return { code: 7010, message: `Unsupported parameter ${param}` };
    }
  }

  private resolveObjects(objPath: string): string[] {
    if (!objPath.includes('*')) return [objPath];
    const match = pathMatcher(objPath);
    return [...instancesIn(this.allValues().keys())].filter(
      (i) => match(i) && i.split('.').length === objPath.split('.').length,
    );
  }

  private snapshot(paths: string[]): Array<{ path: string; value: string }> {
    return paths
      .filter((p) => this.device.value(p) !== undefined)
      .map((p) => ({ path: p, value: this.device.value(p) ?? '' }));
  }

  private set(msgId: string, req: SetReq): UspMsg {
    const results: SetResp['updated_obj_results'] = [];
    const changes: Array<{ path: string; value: string }> = [];
    // Values before the message, to roll back when allow_partial is false and an object fails.
    const touched = req.update_objs.flatMap((u) =>
      this.resolveObjects(u.obj_path).flatMap((o) => u.param_settings.map((s) => `${o}${s.param}`)),
    );
    const before = this.snapshot(touched);
    // Subscriptions are only copied when the message touches them (the common Set does not).
    const subsBefore = req.update_objs.some(
      (u) => u.obj_path.startsWith('Device.LocalAgent.') || u.obj_path.includes('*'),
    )
      ? new Map([...this.subs].map(([n, s]) => [n, { ...s }]))
      : undefined;
    const failures: Array<{ param_path: string; err_code: number; err_msg: string }> = [];
    for (const u of req.update_objs) {
      const objs = this.resolveObjects(u.obj_path);
      const exists = (o: string) =>
        o.startsWith(SUB)
          ? this.subs.has(Number(o.slice(SUB.length, -1))) ||
            [...this.localAgentParams().keys()].some((k) => k.startsWith(o))
          : o.startsWith('Device.LocalAgent.')
            ? [...this.localAgentParams().keys()].some((k) => k.startsWith(o))
            : // A parameter being set that exists proves the object exists without a tree scan.
              u.param_settings.some((ps) => this.device.value(`${o}${ps.param}`) !== undefined) ||
              this.device.hasPrefix(o);
      if (objs.length === 1 && !u.obj_path.includes('*') && !exists(objs[0] as string)) {
        const failure = { err_code: 7016, err_msg: `Object ${u.obj_path} does not exist` };
        failures.push({ param_path: u.obj_path, ...failure });
        results.push({
          requested_path: u.obj_path,
          oper_status: { oper_failure: { ...failure, updated_inst_failures: [] } },
        });
        continue;
      }
      const instResults: NonNullable<
        SetResp['updated_obj_results'][number]['oper_status']['oper_success']
      >['updated_inst_results'] = [];
      const instFailures: Array<{ affected_path: string; param_errs: ParameterError[] }> = [];
      for (const o of objs) {
        const r = this.applyToObject(o, u.param_settings);
        if (r.failed) instFailures.push({ affected_path: o, param_errs: r.errs });
        else {
          instResults.push({ affected_path: o, param_errs: r.errs, updated_params: r.applied });
          for (const [k, v] of Object.entries(r.applied)) changes.push({ path: `${o}${k}`, value: v });
        }
      }
      if (instFailures.length > 0) {
        const first = instFailures[0]?.param_errs[0];
        for (const f of instFailures) {
          for (const e of f.param_errs)
            failures.push({
              param_path: `${f.affected_path}${e.param}`,
              err_code: e.err_code,
              err_msg: e.err_msg,
            });
        }
        results.push({
          requested_path: u.obj_path,
          oper_status: {
            oper_failure: {
              err_code: USP_ERR.REQUIRED_PARAM_FAILED,
              err_msg: first
                ? `required parameter ${first.param} failed: ${first.err_msg}`
                : 'object update failed',
              updated_inst_failures: instFailures,
            },
          },
        });
      } else {
        results.push({
          requested_path: u.obj_path,
          oper_status: { oper_success: { updated_inst_results: instResults } },
        });
      }
    }
    const anyFailed = results.some((r) => r.oper_status.oper_failure);
    if (anyFailed && !req.allow_partial) {
      // All or nothing: restore what earlier objects of this message changed.
      const key = this.device.value('Device.ManagementServer.ParameterKey') ?? '';
      if (before.length > 0) this.device.setValues(before, key);
      if (subsBefore) {
        this.subs.clear();
        for (const [n, s] of subsBefore) this.subs.set(n, s);
      }
      return errorMsg(msgId, {
        err_code: failures[0]?.err_code === 7016 ? 7016 : USP_ERR.MESSAGE_FAILED,
        err_msg: 'Set failed; nothing was changed (allow_partial is false)',
        param_errs: failures,
      });
    }
    this.emitValueChanges(changes);
    return responseMsg(msgId, 'set_resp', { updated_obj_results: results });
  }

  private addSubscription(settings: Partial<Subscription>): number {
    const n = this.nextSub++;
    this.subs.set(n, {
      ID: settings.ID ?? `sub-${n}`,
      Enable: settings.Enable ?? 'false',
      NotifType: settings.NotifType ?? 'ValueChange',
      ReferenceList: settings.ReferenceList ?? '',
      NotifRetry: settings.NotifRetry ?? 'false',
      Persistent: settings.Persistent ?? 'true',
      Recipient: settings.Recipient ?? 'Device.LocalAgent.Controller.1',
    });
    return n;
  }

  private add(msgId: string, req: Add): UspMsg {
    const results: AddResp['created_obj_results'] = [];
    const created: Array<{ path: string; undo: () => void }> = [];
    const key = this.device.value('Device.ManagementServer.ParameterKey') ?? '';
    for (const c of req.create_objs) {
      try {
        let instPath: string;
        let errs: ParameterError[] = [];
        if (c.obj_path === SUB) {
          const bad = c.param_settings
            .map((s) => ({ s, p: this.subscriptionValueProblem(s.param, s.value) }))
            .filter((x) => x.p);
          const required = bad.find((b) => b.s.required);
          if (required?.p)
            throw Object.assign(new Error(required.p.message), { uspCode: USP_ERR.REQUIRED_PARAM_FAILED });
          const settings: Partial<Subscription> = {};
          for (const s of c.param_settings) {
            if (!bad.some((b) => b.s === s)) (settings as Record<string, string>)[s.param] = s.value;
          }
          const n = this.addSubscription(settings);
          instPath = `${SUB}${n}.`;
          errs = bad.map((b) => ({
            param: b.s.param,
            err_code: b.p?.code ?? 7012,
            err_msg: b.p?.message ?? '',
          }));
          created.push({ path: instPath, undo: () => this.subs.delete(n) });
        } else {
          const n = this.device.addObject(c.obj_path, key);
          instPath = `${c.obj_path}${n}.`;
          created.push({ path: instPath, undo: () => this.device.deleteObject(instPath, key) });
          if (c.param_settings.length > 0) {
            const r = this.applyToObject(instPath, c.param_settings);
            if (r.failed) {
              const first = r.errs[0];
              throw Object.assign(new Error(`required parameter ${first?.param ?? ''} failed`), {
                uspCode: USP_ERR.REQUIRED_PARAM_FAILED,
              });
            }
            errs = r.errs;
          }
        }
        results.push({
          requested_path: c.obj_path,
          oper_status: { oper_success: { instantiated_path: instPath, param_errs: errs, unique_keys: {} } },
        });
        for (const s of this.matching('ObjectCreation', instPath)) {
          this.sendNotify(s.ID, s.NotifRetry === 'true', {
            obj_creation: { obj_path: instPath, unique_keys: {} },
          });
        }
      } catch (err) {
        const code =
          (err as { uspCode?: number }).uspCode ??
          (err instanceof DeviceFault
            ? err.code === FAULT.invalidName
              ? 7026
              : uspCodeFor(err.code)
            : 7017);
        const failure = { err_code: code, err_msg: (err as Error).message };
        if (!req.allow_partial) {
          for (const c2 of created.reverse()) c2.undo();
          return errorMsg(msgId, { ...failure, param_errs: [{ param_path: c.obj_path, ...failure }] });
        }
        results.push({ requested_path: c.obj_path, oper_status: { oper_failure: failure } });
      }
    }
    return responseMsg(msgId, 'add_resp', { created_obj_results: results });
  }

  private delete(msgId: string, req: Delete): UspMsg {
    const results: DeleteResp['deleted_obj_results'] = [];
    const key = this.device.value('Device.ManagementServer.ParameterKey') ?? '';
    for (const path of req.obj_paths) {
      try {
        const targets = this.resolveObjects(path);
        for (const t of targets) {
          if (t.startsWith(SUB)) {
            const n = Number(t.slice(SUB.length, -1));
            if (!this.subs.delete(n)) throw new DeviceFault(FAULT.invalidName, `Object ${t} does not exist`);
          } else this.device.deleteObject(t, key);
          for (const s of this.matching('ObjectDeletion', t)) {
            this.sendNotify(s.ID, s.NotifRetry === 'true', { obj_deletion: { obj_path: t } });
          }
        }
        results.push({
          requested_path: path,
          oper_status: { oper_success: { affected_paths: targets, unaffected_path_errs: [] } },
        });
      } catch (err) {
        const failure = {
          err_code: err instanceof DeviceFault ? 7016 : 7024,
          err_msg: (err as Error).message,
        };
        if (!req.allow_partial)
          return errorMsg(msgId, { ...failure, param_errs: [{ param_path: path, ...failure }] });
        results.push({ requested_path: path, oper_status: { oper_failure: failure } });
      }
    }
    return responseMsg(msgId, 'delete_resp', { deleted_obj_results: results });
  }

  // ---- commands --------------------------------------------------------------------------------

  private operate(msgId: string, req: Operate): UspMsg | undefined {
    const commandKey = req.command_key ?? '';
    const args = req.input_args ?? {};
    const sync = (output: StringMap) =>
      req.send_resp
        ? responseMsg(msgId, 'operate_resp', {
            operation_results: [{ executed_command: req.command, req_output_args: { output_args: output } }],
          })
        : undefined;
    const asyncStarted = () => {
      const reqPath = `Device.LocalAgent.Request.${this.nextRequest++}.`;
      return req.send_resp
        ? responseMsg(msgId, 'operate_resp', {
            operation_results: [{ executed_command: req.command, req_obj_path: reqPath }],
          })
        : undefined;
    };
    if (req.command === 'Device.Reboot()') {
      this.later(1, () => this.reboot('RemoteReboot', commandKey));
      return sync({});
    }
    if (req.command === 'Device.FactoryReset()') {
      this.later(1, () => {
        this.device.factoryReset();
        this.subs.clear();
        this.onboarded = false;
        this.reboot('FactoryReset', commandKey);
      });
      return sync({});
    }
    const fw = /^Device\.DeviceInfo\.FirmwareImage\.(\d+)\.(Download|Activate)\(\)$/.exec(req.command);
    if (fw && this.device.model.dualBank && Number(fw[1]) >= 1 && Number(fw[1]) <= this.device.banks.length) {
      const instance = Number(fw[1]);
      const objPath = `Device.DeviceInfo.FirmwareImage.${instance}.`;
      if (fw[2] === 'Download') {
        if (!args.URL) {
          return errorMsg(msgId, { err_code: USP_ERR.INVALID_COMMAND_ARGS, err_msg: 'Download() needs URL' });
        }
        const answer = asyncStarted();
        void this.download(objPath, commandKey, args);
        return answer;
      }
      const answer = asyncStarted();
      this.activateLater(instance, objPath, commandKey, args);
      return answer;
    }
    return errorMsg(msgId, { err_code: USP_ERR.INVALID_PATH, err_msg: `unknown command ${req.command}` });
  }

  private async download(objPath: string, commandKey: string, args: StringMap): Promise<void> {
    const start = new Date().toISOString();
    const fetchImage = this.opts.fetchImage ?? httpFetch;
    const bytes = await fetchImage(args.URL as string);
    if (this.stopped || !this.online) return;
    const sha256 = bytes ? createHash('sha256').update(bytes).digest('hex') : undefined;
    const wantsSha = !args.CheckSumAlgorithm || /sha-?256/i.test(args.CheckSumAlgorithm);
    const result = this.device.install(bytes, {
      checksum: args.CheckSum && wantsSha ? args.CheckSum.toLowerCase() : undefined,
      sha256,
    });
    const complete = new Date().toISOString();
    const command = 'Download()';
    this.emitEvent('Device.LocalAgent.', 'TransferComplete!', {
      Command: `${objPath}${command}`,
      CommandKey: commandKey,
      Requestor: this.opts.controllerId,
      TransferType: 'Download',
      Affected: objPath,
      TransferURL: args.URL ?? '',
      StartTime: start,
      CompleteTime: complete,
      FaultCode: String(result.faultCode),
      FaultString: result.faultString,
    });
    if (result.faultCode !== 0) {
      this.emitOperationComplete(objPath, command, commandKey, {
        ok: false,
        code: USP_ERR.COMMAND_FAILURE,
        message: `${result.faultCode} ${result.faultString}`,
      });
      return;
    }
    this.emitOperationComplete(objPath, command, commandKey, { ok: true, output: {} });
    if (/^(true|1)$/.test(args.AutoActivate ?? '')) this.reboot('RemoteReboot', commandKey);
  }

  private activateLater(instance: number, objPath: string, commandKey: string, args: StringMap): void {
    // TimeWindow.{i}: activate at the start of the first window whose mode allows it.
    const start = Number(args['TimeWindow.1.Start'] ?? '0');
    const mode = args['TimeWindow.1.Mode'] ?? 'AnyTime';
    const delayMs = (Number.isFinite(start) ? start : 0) * 1000 * this.scale;
    this.later(Math.max(1, delayMs), () => {
      if (!this.online) return;
      if (mode === 'ConfirmationNeeded') {
        this.emitOperationComplete(objPath, 'Activate()', commandKey, {
          ok: false,
          code: USP_ERR.COMMAND_CANCELLED,
          message: 'no user confirmed the activation',
        });
        return;
      }
      const pending = (this.device as unknown as { pendingBoot: { target: number } | null }).pendingBoot;
      try {
        // A Download() just installed into this bank with its boot outcome: keep that outcome.
        if (!pending || pending.target !== instance - 1) this.device.activate(instance);
      } catch (err) {
        this.emitOperationComplete(objPath, 'Activate()', commandKey, {
          ok: false,
          code: USP_ERR.COMMAND_FAILURE,
          message: (err as Error).message,
        });
        return;
      }
      this.afterBoot.push(() =>
        this.emitOperationComplete(objPath, 'Activate()', commandKey, { ok: true, output: {} }),
      );
      this.reboot('RemoteReboot', commandKey);
    });
  }

  /** Reboot: offline for rebootMs, then Boot! (unless the image bricked the device). */
  reboot(cause: string, commandKey: string): void {
    this.online = false;
    this.versionBeforeReboot = this.device.firmware;
    const life = this.device.reboot();
    this.bootCause = cause;
    this.bootCommandKey = commandKey;
    if (life === 'bricked') {
      this.afterBoot = [];
      return;
    }
    this.later((this.opts.rebootMs ?? 2_000) * this.scale, () => {
      if (life === 'boot_loop') this.afterBoot = [];
      this.powerOn();
      if (life === 'boot_loop')
        this.later((this.opts.rebootMs ?? 2_000) * this.scale, () => this.reboot('LocalReboot', ''));
    });
  }
}
