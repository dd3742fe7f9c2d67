import { randomUUID } from 'node:crypto';
import type { Logger } from '../../platform/logger.js';
import { errorMsg, RESPONSE_FOR, requestMsg, requestTypeOf, responseMsg } from './codec.js';
import {
  attachEndpoint,
  type ConnectContext,
  type IgnoreReason,
  type MessageContext,
  sendMsg,
} from './endpoint.js';
import { USP_ERR, UspRequestError } from './errors.js';
import type { EventSink } from './event-sink.js';
import type {
  AddResp,
  DeleteResp,
  GetInstancesResp,
  GetResp,
  GetSupportedDMResp,
  Notify,
  OperateResp,
  Request,
  RequestType,
  Response,
  SetReq,
  SetResp,
  StringMap,
  UspMsg,
} from './messages.js';
import type { Mtp } from './mtp/mtp.js';
import { eventsForNotify } from './notify-events.js';

/** A Notify after it was persisted (and acknowledged when the agent asked for a NotifyResp). */
export interface Notification {
  endpointId: string;
  deviceId: string;
  msgId: string;
  notify: Notify;
  at: Date;
}

export interface AgentInfo {
  endpointId: string;
  oui: string;
  productClass: string;
  serialNumber: string;
  manufacturer?: string;
  modelName?: string;
  hardwareVersion?: string;
  softwareVersion?: string;
  /** Device.DeviceInfo. values read at onboarding (firmware banks among them), stored as last values. */
  values?: Record<string, string>;
  /** Our Device.LocalAgent.Controller.{i}.PeriodicNotifInterval (s): how often a live agent reports. */
  periodicNotifIntervalS?: number;
}

/** Subscriptions the controller creates on onboarding (Device.LocalAgent.Subscription.{i}.). */
export const ONBOARDING_SUBSCRIPTIONS: Array<{
  ID: string;
  NotifType: string;
  ReferenceList: string;
  NotifRetry: string;
}> = [
  { ID: 'fb-boot', NotifType: 'Event', ReferenceList: 'Device.Boot!', NotifRetry: 'true' },
  {
    ID: 'fb-transfer',
    NotifType: 'Event',
    ReferenceList: 'Device.LocalAgent.TransferComplete!',
    NotifRetry: 'true',
  },
  { ID: 'fb-opcomplete', NotifType: 'OperationComplete', ReferenceList: 'Device.', NotifRetry: 'true' },
  // Liveness (CWMP's periodic Inform): a rollout reads a silent device as down. No retry: the next one comes.
  {
    ID: 'fb-periodic',
    NotifType: 'Event',
    ReferenceList: 'Device.LocalAgent.Periodic!',
    NotifRetry: 'false',
  },
  {
    ID: 'fb-valuechange',
    NotifType: 'ValueChange',
    ReferenceList: 'Device.DeviceInfo.SoftwareVersion,Device.ManagementServer.PeriodicInformInterval',
    NotifRetry: 'false',
  },
];

export interface UspControllerOptions {
  endpointId: string;
  mtps: Mtp[];
  events: EventSink;
  /** Records the agent in the inventory (protocol `usp`) and returns its device id. */
  register?: (info: AgentInfo) => Promise<string>;
  /** Inventory device id of an endpoint, when known (a device moved from CWMP keeps its id). */
  deviceIdOf?: (endpointId: string) => string | undefined;
  /** Looks an endpoint's device id up (once per endpoint) before its first event is stored. */
  resolveDeviceId?: (
    endpointId: string,
    hint?: { oui: string; serialNumber: string; productClass?: string },
  ) => Promise<string | undefined>;
  /** Endpoint ID → inventory id of agents known and onboarded before (driver.ts knownUspDevices). */
  devices?: Iterable<[string, string]>;
  /** MQTT topic of an agent the controller has not heard from yet. */
  agentTopic?: (endpointId: string) => string;
  /** Agents already onboarded (their subscriptions exist), e.g. loaded from the database. */
  onboarded?: Iterable<string>;
  /** Run onboarding on OnBoardRequest and first contact (default true). */
  onboarding?: boolean;
  requestTimeoutMs?: number;
  /** Resends of an unanswered request (same msg_id; agents answer a repeated msg_id from cache). */
  retries?: number;
  log?: Logger;
}

interface Pending {
  msgId: string;
  agent: string;
  type: RequestType;
  msg: UspMsg;
  resolve: (r: Response) => void;
  reject: (e: Error) => void;
  timer?: NodeJS.Timeout;
  tries: number;
  sentAt: number;
  timeoutMs: number;
  retries: number;
  /** Not sent after this instant (ms since the epoch): rejected instead. */
  deadline?: number;
  /** Where it went first; a route learnt meanwhile wins on a resend. */
  route: { mtp: Mtp; address: string };
}

export class UspTimeoutError extends Error {
  override name = 'UspTimeoutError';
}

export interface RequestOptions {
  timeoutMs?: number;
  retries?: number;
  /**
   * The request is not sent, nor resent, after this instant, and fails at it: an operation whose
   * task has expired must not reach the device later (after an MTP outage, say).
   */
  deadline?: Date;
}

/**
 * The USP controller (TR-369): sends requests to agents over any MTP and correlates their responses
 * by msg_id, persists every Notify before it answers with NotifyResp, and onboards agents by creating
 * its subscriptions. The Executor driver (driver.ts) runs the task queue on top of it.
 */
export class UspController {
  readonly endpointId: string;
  private readonly routes = new Map<string, { mtp: Mtp; address: string }>();
  private readonly pending = new Map<string, Pending>();
  private readonly listeners = new Set<(n: Notification) => void>();
  private readonly connectListeners = new Set<(endpointId: string) => void>();
  private readonly onboarded: Set<string>;
  private readonly onboarding = new Map<string, Promise<void>>();
  private readonly deviceIds = new Map<string, string>();
  /** Inventory id → endpoint ID, the reverse of deviceIds (the driver addresses devices by inventory id). */
  private readonly endpoints = new Map<string, string>();
  /** Notifies already persisted (agent retries after a lost NotifyResp must not be stored twice). */
  private readonly persisted = new Map<string, number>();
  private readonly inflight = new Map<string, Promise<boolean>>();
  private counter = 0;
  /** Unique per controller instance, so msg_ids do not repeat across restarts (no UUID per request). */
  private readonly msgIdSuffix = randomUUID().slice(0, 8);
  readonly stats = {
    ignored: {} as Partial<Record<IgnoreReason, number>>,
    notifies: 0,
    notifyDuplicates: 0,
    persistFailures: 0,
    requests: 0,
    retries: 0,
    timeouts: 0,
  };

  constructor(private readonly opts: UspControllerOptions) {
    this.endpointId = opts.endpointId;
    this.onboarded = new Set(opts.onboarded ?? []);
    for (const [eid, id] of opts.devices ?? []) {
      this.mapDevice(eid, id);
      this.onboarded.add(eid);
    }
  }

  async start(): Promise<void> {
    for (const mtp of this.opts.mtps) {
      attachEndpoint(mtp, {
        isOwn: (to) => to === this.endpointId,
        onMessage: (ctx) => this.onMessage(ctx),
        onConnectRecord: (ctx) => this.onConnectRecord(ctx),
        onIgnored: (reason, detail) => {
          this.stats.ignored[reason] = (this.stats.ignored[reason] ?? 0) + 1;
          this.opts.log?.debug({ reason, detail }, 'usp record ignored');
        },
      });
    }
    for (const mtp of this.opts.mtps) mtp.onStatus((up) => up && this.resendVia(mtp));
    await Promise.all(this.opts.mtps.map((m) => m.start()));
  }

  async stop(): Promise<void> {
    for (const p of this.pending.values()) {
      if (p.timer) clearTimeout(p.timer);
      p.reject(new Error('controller stopped'));
    }
    this.pending.clear();
    await Promise.all(this.opts.mtps.map((m) => m.stop()));
  }

  onNotification(listener: (n: Notification) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Called when an agent shows presence (connect record, OnBoardRequest, Boot!). */
  onAgentConnected(listener: (endpointId: string) => void): () => void {
    this.connectListeners.add(listener);
    return () => this.connectListeners.delete(listener);
  }

  private mapDevice(endpointId: string, deviceId: string): void {
    this.deviceIds.set(endpointId, deviceId);
    this.endpoints.set(deviceId, endpointId);
  }

  /** The endpoint ID of an inventory id this controller has heard from or loaded. */
  endpointFor(deviceId: string): string | undefined {
    return this.endpoints.get(deviceId);
  }

  deviceIdFor(endpointId: string): string {
    return this.deviceIds.get(endpointId) ?? this.opts.deviceIdOf?.(endpointId) ?? endpointId;
  }

  isOnboarded(endpointId: string): boolean {
    return this.onboarded.has(endpointId);
  }

  knownRoute(endpointId: string): boolean {
    return this.routes.has(endpointId);
  }

  /** Waits for the next notification matching `pred` (tests, the driver's completions). */
  waitForNotification(pred: (n: Notification) => boolean, timeoutMs = 30_000): Promise<Notification> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new UspTimeoutError(`no matching notification within ${timeoutMs} ms`));
      }, timeoutMs);
      const off = this.onNotification((n) => {
        if (!pred(n)) return;
        clearTimeout(timer);
        off();
        resolve(n);
      });
    });
  }

  // ---- routing ---------------------------------------------------------------------------------

  private routeFor(agent: string): { mtp: Mtp; address: string } {
    const known = this.routes.get(agent);
    if (known) return known;
    const mqtt = this.opts.mtps.find((m) => m.kind === 'mqtt');
    if (mqtt && this.opts.agentTopic) return { mtp: mqtt, address: this.opts.agentTopic(agent) };
    throw new UspRequestError(
      USP_ERR.MESSAGE_FAILED,
      `no MTP route to ${agent} (the agent has not connected yet)`,
    );
  }

  private learnRoute(agent: string, mtp: Mtp, replyTo: string | undefined): void {
    if (!replyTo) return;
    const cur = this.routes.get(agent);
    if (cur?.mtp === mtp && cur.address === replyTo) return;
    this.routes.set(agent, { mtp, address: replyTo });
  }

  // ---- requests --------------------------------------------------------------------------------

  /** Sends one request and resolves with its response body; a USP Error rejects with UspRequestError. */
  request<K extends RequestType>(
    agent: string,
    type: K,
    body: NonNullable<Request[K]>,
    opts: RequestOptions = {},
  ): Promise<Response> {
    this.counter += 1;
    const msgId = `${type}-${this.counter}-${this.msgIdSuffix}`;
    const msg = requestMsg(msgId, type, body);
    const timeoutMs = opts.timeoutMs ?? this.opts.requestTimeoutMs ?? 30_000;
    const retries = opts.retries ?? this.opts.retries ?? 2;
    this.stats.requests += 1;
    return new Promise<Response>((resolve, reject) => {
      let route: { mtp: Mtp; address: string };
      try {
        route = this.routeFor(agent);
      } catch (err) {
        reject(err as Error);
        return;
      }
      const p: Pending = {
        msgId,
        agent,
        type,
        msg,
        resolve,
        reject,
        tries: 0,
        sentAt: Date.now(),
        timeoutMs,
        retries,
        deadline: opts.deadline?.getTime(),
        route,
      };
      this.pending.set(msgId, p);
      this.transmit(p);
    });
  }

  // The per-request steps are methods and bound fields, not closures made per request: the Set
  // benchmark sends thousands a second.
  private transmit(p: Pending): void {
    p.tries += 1;
    this.send(p);
  }

  private send(p: Pending): void {
    if (this.pastDeadline(p)) return;
    const r = this.routes.get(p.agent) ?? p.route;
    sendMsg(r.mtp, r.address, { to: p.agent, from: this.endpointId, msg: p.msg }).catch(this.sendFailed);
    const wait = p.deadline === undefined ? p.timeoutMs : Math.min(p.timeoutMs, p.deadline - Date.now());
    p.timer = setTimeout(this.expire, wait, p);
  }

  /**
   * An MTP came back: what it could not carry goes out now (same msg_id, its try count unchanged)
   * rather than after a full timeout.
   */
  private resendVia(mtp: Mtp): void {
    for (const p of this.pending.values()) {
      if ((this.routes.get(p.agent) ?? p.route).mtp !== mtp) continue;
      clearTimeout(p.timer);
      this.send(p);
    }
  }

  /** Fails a request whose deadline came (a timer may fire a millisecond early by the wall clock). */
  private pastDeadline(p: Pending): boolean {
    if (p.deadline === undefined || Date.now() < p.deadline - 2) return false;
    this.fail(p, new UspTimeoutError(`${p.type} to ${p.agent}: its deadline passed without a response`));
    return true;
  }

  private fail(p: Pending, err: Error): void {
    clearTimeout(p.timer);
    this.pending.delete(p.msgId);
    this.stats.timeouts += 1;
    p.reject(err);
  }

  private readonly sendFailed = (err: Error): void => {
    this.opts.log?.debug({ err: err.message }, 'usp send failed; resent when the MTP is up or on timeout');
  };

  private readonly expire = (p: Pending): void => {
    if (this.pending.get(p.msgId) !== p) return;
    if (this.pastDeadline(p)) return;
    if (p.tries <= p.retries) {
      this.stats.retries += 1;
      this.transmit(p);
      return;
    }
    this.fail(
      p,
      new UspTimeoutError(`${p.type} to ${p.agent}: no response after ${p.tries} tries of ${p.timeoutMs} ms`),
    );
  };

  async get(agent: string, paths: string[]): Promise<Record<string, string>> {
    const r = (await this.request(agent, 'get', { param_paths: paths, max_depth: 0 })).get_resp as GetResp;
    const out: Record<string, string> = {};
    const failures: Array<{ path: string; code: number; message: string }> = [];
    for (const rp of r.req_path_results) {
      if (rp.err_code) failures.push({ path: rp.requested_path, code: rp.err_code, message: rp.err_msg });
      for (const res of rp.resolved_path_results) {
        for (const [k, v] of Object.entries(res.result_params)) out[`${res.resolved_path}${k}`] = v;
      }
    }
    if (failures.length > 0 && Object.keys(out).length === 0) {
      throw new UspRequestError(
        failures[0]?.code ?? USP_ERR.INVALID_PATH,
        failures[0]?.message ?? 'Get failed',
        failures,
      );
    }
    return out;
  }

  async getDetailed(agent: string, paths: string[]): Promise<GetResp> {
    return (await this.request(agent, 'get', { param_paths: paths })).get_resp as GetResp;
  }

  async set(agent: string, req: SetReq, opts?: RequestOptions): Promise<SetResp> {
    return (await this.request(agent, 'set', req, opts)).set_resp as SetResp;
  }

  async add(
    agent: string,
    objs: Array<{
      obj_path: string;
      param_settings: Array<{ param: string; value: string; required?: boolean }>;
    }>,
    allowPartial = false,
  ): Promise<AddResp> {
    return (await this.request(agent, 'add', { allow_partial: allowPartial, create_objs: objs }))
      .add_resp as AddResp;
  }

  async delete(agent: string, paths: string[], allowPartial = false): Promise<DeleteResp> {
    return (await this.request(agent, 'delete', { allow_partial: allowPartial, obj_paths: paths }))
      .delete_resp as DeleteResp;
  }

  async operate(
    agent: string,
    command: string,
    commandKey: string,
    inputArgs: StringMap = {},
    opts?: RequestOptions,
  ): Promise<OperateResp> {
    return (
      await this.request(
        agent,
        'operate',
        { command, command_key: commandKey, send_resp: true, input_args: inputArgs },
        opts,
      )
    ).operate_resp as OperateResp;
  }

  async getSupportedDM(
    agent: string,
    paths: string[],
    opts: { firstLevelOnly?: boolean; commands?: boolean; events?: boolean; params?: boolean } = {},
  ): Promise<GetSupportedDMResp> {
    return (
      await this.request(agent, 'get_supported_dm', {
        obj_paths: paths,
        first_level_only: opts.firstLevelOnly ?? false,
        return_commands: opts.commands ?? true,
        return_events: opts.events ?? true,
        return_params: opts.params ?? true,
      })
    ).get_supported_dm_resp as GetSupportedDMResp;
  }

  async getInstances(agent: string, paths: string[], firstLevelOnly = false): Promise<GetInstancesResp> {
    return (
      await this.request(agent, 'get_instances', { obj_paths: paths, first_level_only: firstLevelOnly })
    ).get_instances_resp as GetInstancesResp;
  }

  async getSupportedProtocol(agent: string): Promise<string[]> {
    const r = await this.request(agent, 'get_supported_protocol', {
      controller_supported_protocol_versions: '1.0,1.1,1.2,1.3,1.4',
    });
    return (r.get_supported_protocol_resp?.agent_supported_protocol_versions ?? '')
      .split(',')
      .filter(Boolean);
  }

  // ---- inbound ---------------------------------------------------------------------------------

  private onConnectRecord(ctx: ConnectContext): void {
    if (ctx.kind === 'disconnect') return;
    this.learnRoute(ctx.from, ctx.mtp, ctx.replyTo);
    for (const l of this.connectListeners) l(ctx.from);
  }

  private onMessage(ctx: MessageContext): void {
    const { msg, from } = ctx;
    this.learnRoute(from, ctx.mtp, ctx.replyTo);
    if (msg.body.response || msg.body.error) {
      const p = this.pending.get(msg.header.msg_id);
      // R-MSG: a Response or Error nobody waits for (or from another endpoint) is ignored.
      if (!p || p.agent !== from) {
        this.stats.ignored.unexpected_response = (this.stats.ignored.unexpected_response ?? 0) + 1;
        return;
      }
      if (p.timer) clearTimeout(p.timer);
      this.pending.delete(msg.header.msg_id);
      if (msg.body.error) {
        const e = msg.body.error;
        p.reject(
          new UspRequestError(
            e.err_code,
            e.err_msg,
            (e.param_errs ?? []).map((x) => ({ path: x.param_path, code: x.err_code, message: x.err_msg })),
          ),
        );
        return;
      }
      const expected = RESPONSE_FOR[p.type];
      const resp = msg.body.response as Response;
      if (resp[expected] === undefined) {
        p.reject(
          new UspRequestError(
            USP_ERR.MESSAGE_FAILED,
            `expected ${expected}, got ${resp.resp_type ?? 'nothing'}`,
          ),
        );
        return;
      }
      p.resolve(resp);
      return;
    }
    const type = requestTypeOf(msg);
    if (type === 'notify' && msg.body.request?.notify) {
      void this.onNotify(ctx, msg.body.request.notify);
      return;
    }
    // A controller answers nothing but Notify (TR-369: other requests target agents).
    void ctx
      .reply(
        errorMsg(msg.header.msg_id, {
          err_code: USP_ERR.MESSAGE_NOT_SUPPORTED,
          err_msg: `${type ?? `message type ${String(msg.header.msg_type)}`} is not supported by this controller`,
        }),
      )
      .catch(() => {});
  }

  private async onNotify(ctx: MessageContext, notify: Notify): Promise<void> {
    const { from, msg } = ctx;
    this.stats.notifies += 1;
    const key = `${from}\u0000${msg.header.msg_id}`;
    if (!this.deviceIds.has(from) && this.opts.resolveDeviceId) {
      const hint = notify.on_board_req
        ? {
            oui: notify.on_board_req.oui,
            serialNumber: notify.on_board_req.serial_number,
            productClass: notify.on_board_req.product_class || undefined,
          }
        : undefined;
      const found = await this.opts.resolveDeviceId(from, hint).catch(() => undefined);
      if (found) this.mapDevice(from, found);
    }
    const deviceId = this.deviceIdFor(from);
    const ack = () =>
      notify.send_resp
        ? ctx
            .reply(responseMsg(msg.header.msg_id, 'notify_resp', { subscription_id: notify.subscription_id }))
            .catch(() => {})
        : undefined;
    const running = this.inflight.get(key);
    if (this.persisted.has(key) || running) {
      // A retry of a Notify already stored (or being stored): acknowledge it once that write held.
      this.stats.notifyDuplicates += 1;
      if (running && !(await running)) return;
      await ack();
      return;
    }
    // Invariant 6: written before acknowledged. On failure no NotifyResp: the agent retries.
    const write = this.opts.events.append(eventsForNotify(deviceId, from, msg.header.msg_id, notify)).then(
      () => true,
      (err: Error) => {
        this.stats.persistFailures += 1;
        this.opts.log?.warn({ err: err.message, agent: from }, 'usp notify not persisted; not acknowledged');
        return false;
      },
    );
    this.inflight.set(key, write);
    const stored = await write;
    this.inflight.delete(key);
    if (!stored) return;
    this.persisted.set(key, Date.now());
    if (this.persisted.size > 200_000) this.prunePersisted();
    await ack();
    const n: Notification = { endpointId: from, deviceId, msgId: msg.header.msg_id, notify, at: new Date() };
    for (const l of this.listeners) l(n);
    const presence =
      notify.on_board_req || (notify.event?.event_name === 'Boot!' && notify.event.obj_path === 'Device.');
    if (presence) for (const l of this.connectListeners) l(from);
    if (this.opts.onboarding !== false && (notify.on_board_req || !this.onboarded.has(from))) {
      this.onboardRetrying(from, notify.on_board_req ? true : undefined);
    }
  }

  /**
   * Onboarding after the OnBoardRequest was acknowledged: the agent will not ask again, so a failure
   * (agent busy, database saturated) is retried here with backoff, then on the agent's next contact.
   */
  private onboardRetrying(agent: string, force: boolean | undefined, attempt = 1): void {
    this.onboard(agent, force).catch((err: Error) => {
      if (attempt >= 5) {
        this.opts.log?.warn({ agent, err: err.message }, 'usp onboarding failed; retried on next contact');
        return;
      }
      setTimeout(() => this.onboardRetrying(agent, force, attempt + 1), 1_000 * 2 ** attempt).unref();
    });
  }

  private prunePersisted(): void {
    const cutoff = Date.now() - 3_600_000;
    for (const [k, t] of this.persisted) if (t < cutoff) this.persisted.delete(k);
    while (this.persisted.size > 150_000) this.persisted.delete(this.persisted.keys().next().value as string);
  }

  /**
   * Onboarding: create the controller's subscriptions that are missing (Boot!, TransferComplete!,
   * OperationComplete, ValueChange) and record the device in the inventory with protocol `usp`.
   */
  onboard(agent: string, force?: boolean): Promise<void> {
    const running = this.onboarding.get(agent);
    if (running) return running;
    if (this.onboarded.has(agent) && !force) return Promise.resolve();
    const job = (async () => {
      const existing = await this.get(agent, ['Device.LocalAgent.Subscription.*.ID']).catch(
        () => ({}) as Record<string, string>,
      );
      const ids = new Set(Object.values(existing));
      const missing = ONBOARDING_SUBSCRIPTIONS.filter((s) => !ids.has(s.ID));
      if (missing.length > 0) {
        const r = await this.add(
          agent,
          missing.map((s) => ({
            obj_path: 'Device.LocalAgent.Subscription.',
            param_settings: [
              { param: 'ID', value: s.ID, required: true },
              { param: 'NotifType', value: s.NotifType, required: true },
              { param: 'ReferenceList', value: s.ReferenceList, required: true },
              { param: 'NotifRetry', value: s.NotifRetry, required: false },
              { param: 'Persistent', value: 'true', required: false },
              { param: 'Enable', value: 'true', required: true },
            ],
          })),
          true,
        );
        const failed = r.created_obj_results.filter((c) => c.oper_status.oper_failure);
        if (failed.length > 0) {
          throw new Error(
            `subscriptions refused: ${failed.map((f) => f.oper_status.oper_failure?.err_msg).join('; ')}`,
          );
        }
      }
      const got = await this.get(agent, ['Device.DeviceInfo.', 'Device.LocalAgent.Controller.']);
      const info: Record<string, string> = {};
      for (const [k, v] of Object.entries(got)) if (k.startsWith('Device.DeviceInfo.')) info[k] = v;
      const d = (k: string) => info[`Device.DeviceInfo.${k}`];
      // Our Controller entry's Periodic! interval: the inventory's "not seen for N intervals" and the
      // rollout's health windows read it as CWMP's PeriodicInformInterval.
      const me = Object.entries(got).find(
        ([k, v]) => /^Device\.LocalAgent\.Controller\.\d+\.EndpointID$/.test(k) && v === this.endpointId,
      )?.[0];
      const interval = me ? Number(got[me.replace(/EndpointID$/, 'PeriodicNotifInterval')]) : Number.NaN;
      if (this.opts.register) {
        const id = await this.opts.register({
          endpointId: agent,
          oui: d('ManufacturerOUI') ?? '',
          productClass: d('ProductClass') ?? '',
          serialNumber: d('SerialNumber') ?? '',
          manufacturer: d('Manufacturer'),
          modelName: d('ModelName'),
          hardwareVersion: d('HardwareVersion'),
          softwareVersion: d('SoftwareVersion'),
          values: info,
          ...(Number.isInteger(interval) && interval > 0 ? { periodicNotifIntervalS: interval } : {}),
        });
        this.mapDevice(agent, id);
      }
      this.onboarded.add(agent);
    })().finally(() => this.onboarding.delete(agent));
    this.onboarding.set(agent, job);
    return job;
  }

  /** Requests still waiting for a response (diagnostics). */
  pendingCount(): number {
    return this.pending.size;
  }
}
