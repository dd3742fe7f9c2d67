import net from 'node:net';
import mqtt, {
  type IClientOptions,
  type IClientPublishOptions,
  type IPublishPacket,
  type MqttClient,
} from 'mqtt';
import { decodeRecord } from '../codec.js';
import type { UspRecord } from '../messages.js';
import {
  type BackoffOptions,
  backoffDelay,
  DEFAULT_BACKOFF,
  type InboundRecord,
  type Mtp,
  type SendOptions,
} from './mtp.js';

/** R-MQTT.27 as amended: content type of USP Records; the older IANA form is accepted on receipt. */
export const USP_CONTENT_TYPE = 'usp.msg';
const USP_CONTENT_TYPES = new Set([USP_CONTENT_TYPE, 'application/vnd.bbf.usp.msg']);
export const USP_ERROR_CONTENT_TYPE = 'usp.error';
const REPLY_TO = '/reply-to=';

export interface MqttMtpOptions {
  url: string;
  /** 5 (MQTT 5.0, required by R-MQTT.1) or 4 (MQTT 3.1.1). */
  protocolVersion: 5 | 4;
  /** This connection's endpoint ID (CONNECT user property `usp-endpoint-id`, R-MQTT.13). */
  endpointId: string;
  /** Topic filters to subscribe to (R-MQTT.15). */
  subscriptions: string[];
  /** The exact topic others reply to (Response Topic / `reply-to=` suffix, R-MQTT.22-24). */
  replyTopic: string;
  /** Per-sender reply topic when one connection carries several endpoints (the simulator). */
  replyTopicFor?: (fromEndpointId: string) => string;
  /** Defaults to the endpoint ID for 3.1.1 (R-MQTT.8) and a derived one for 5.0. */
  clientId?: string;
  username?: string;
  password?: string;
  /** TLS (mqtts://) options pass straight to the client. */
  tls?: Pick<IClientOptions, 'ca' | 'cert' | 'key' | 'rejectUnauthorized' | 'servername'>;
  keepaliveS?: number;
  backoff?: BackoffOptions;
  /** Loopback source address for load tests (one address has ~28 000 ephemeral ports). */
  localAddress?: string;
  /** Clean start off and a session that outlives short outages: queued QoS 1 records are kept. */
  sessionExpiryS?: number;
  /**
   * QoS of the Records this endpoint publishes and subscribes to (R-MQTT.20: both must work; TR-369
   * leaves the choice to the deployment). Default 1: the broker acknowledges every Record and a
   * persistent session keeps what arrives during a short outage. With 0 the USP layer's own recovery
   * is all there is (a request is resent with the same msg_id after its timeout, a Notify is resent
   * until its NotifyResp): half the MQTT packets, less CPU at both ends and in the broker.
   */
  qos?: 0 | 1;
}

/** A received Record (a class: no closure per Record for its reject()). */
class MqttInbound implements InboundRecord {
  constructor(
    private readonly mtp: MqttMtp,
    private readonly packet: IPublishPacket,
    readonly bytes: Uint8Array,
    readonly record: UspRecord | undefined,
    readonly replyTo: string | undefined,
    readonly receivedOn: string,
    readonly peerEndpointId: string | undefined,
  ) {}

  reject(errCode: number, errMsg: string): void {
    this.mtp.rejectPacket(this.packet, errCode, errMsg);
  }
}

/** One MQTT client connection carrying USP Records (TR-369 MQTT binding), reconnecting with backoff. */
export class MqttMtp implements Mtp {
  readonly kind = 'mqtt' as const;
  private client: MqttClient | undefined;
  private recordHandlers: Array<(rec: InboundRecord) => void> = [];
  private statusHandlers: Array<(up: boolean) => void> = [];
  private up = false;
  private attempt = 0;
  private replyTopic: string;
  private stopped = false;
  private readonly decoded = new WeakMap<IPublishPacket, UspRecord>();
  private readonly qos: 0 | 1;
  /** PUBLISH properties per sending endpoint, built once (mqtt-packet does not mutate them). */
  private readonly publishProps = new Map<string, IClientPublishOptions['properties']>();

  constructor(private readonly opts: MqttMtpOptions) {
    this.replyTopic = opts.replyTopic;
    this.qos = opts.qos ?? 1;
  }

  get describe(): string {
    return `mqtt${this.opts.protocolVersion === 5 ? '5' : '3.1.1'} ${this.opts.url} (${this.opts.endpointId})`;
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

  /** Resolves at the first successful connect + subscribe; keeps reconnecting afterwards. */
  start(): Promise<void> {
    const o = this.opts;
    const backoff = o.backoff ?? DEFAULT_BACKOFF;
    const v5 = o.protocolVersion === 5;
    const url = new URL(o.url);
    const options: IClientOptions = {
      protocolVersion: o.protocolVersion,
      clientId: o.clientId ?? (v5 ? `usp-${o.endpointId}` : o.endpointId),
      clean: !o.sessionExpiryS,
      keepalive: o.keepaliveS ?? 60,
      reconnectPeriod: backoff.minMs,
      connectTimeout: 10_000,
      username: o.username,
      password: o.password,
      resubscribe: false,
      // Pings go out every keepalive period even while Records flow (rescheduling them on every
      // packet costs a timer update per Record).
      reschedulePings: false,
      // mqtt.js logs through `debug` on every packet; formatting nothing still costs per call.
      log: process.env.DEBUG?.includes('mqttjs') ? undefined : () => {},
      ...o.tls,
      properties: v5
        ? {
            requestResponseInformation: true,
            userProperties: { 'usp-endpoint-id': o.endpointId },
            ...(o.sessionExpiryS ? { sessionExpiryInterval: o.sessionExpiryS } : {}),
          }
        : undefined,
      customHandleAcks: (topic, payload, packet, done) => {
        // R-MQTT.32: a record that cannot be extracted gets PUBACK reason 153 (payload format invalid);
        // the endpoint still sees it, to answer per R-MQTT.31 and count it.
        try {
          // Decoded once: the endpoint gets this Record with the message event.
          this.decoded.set(packet, decodeRecord(payload));
          done(0);
        } catch {
          this.dispatch(topic, payload, packet);
          done(153);
        }
      },
    };
    const client =
      o.localAddress && (url.protocol === 'mqtt:' || url.protocol === 'tcp:')
        ? new mqtt.MqttClient(
            () =>
              net.connect({
                host: url.hostname,
                port: Number(url.port || 1883),
                localAddress: o.localAddress,
              }),
            options,
          )
        : mqtt.connect(o.url, options);
    this.client = client;

    return new Promise((resolve, reject) => {
      let first = true;
      client.on('connect', (connack) => {
        // Records are small and latency-bound: no Nagle delay on the broker connection.
        (client.stream as Partial<net.Socket>).setNoDelay?.(true);
        this.attempt = 0;
        client.options.reconnectPeriod = backoff.minMs;
        const filters = [...o.subscriptions];
        const props = connack.properties;
        if (v5 && props) {
          // R-MQTT.21 / R-MQTT.15: the server may assign our reply topic and what to subscribe to.
          if (props.responseInformation) {
            this.replyTopic = props.responseInformation;
            if (!filters.includes(props.responseInformation)) filters.push(props.responseInformation);
          }
          const sub = props.userProperties?.['subscribe-topic'];
          for (const t of Array.isArray(sub) ? sub : sub ? [sub] : [])
            if (!filters.includes(t)) filters.push(t);
        }
        client.subscribe(
          // `t/#` also matches `t` itself and catches 3.1.1 peers' `t/reply-to=...` topics.
          filters.map((f) => (f.endsWith('#') ? f : `${f}/#`)),
          { qos: this.qos },
          (err, granted) => {
            // The connection dropped before the SUBACK (mqtt.js fails the SUBSCRIBE as its stream
            // closes, before it marks itself disconnected): not a refusal; the reconnect subscribes again.
            if (err && (client.stream.destroyed || !client.connected)) return;
            // R-MQTT.17: without at least one subscription nothing may be published.
            const ok = !err && (granted ?? []).some((g) => g.qos < 128);
            if (!ok) {
              client.end(true);
              if (first)
                reject(new Error(`${this.describe}: subscribe failed: ${err?.message ?? 'refused'}`));
              return;
            }
            this.setUp(true);
            if (first) {
              first = false;
              resolve();
            }
          },
        );
      });
      client.on('close', () => {
        this.dropInFlight(client);
        this.setUp(false);
        if (this.stopped) return;
        this.attempt += 1;
        client.options.reconnectPeriod = backoffDelay(
          this.attempt,
          backoff.minMs,
          backoff.multiplier,
          backoff.maxMs,
        );
      });
      client.on('error', (err) => {
        if (first && this.attempt >= 3) {
          first = false;
          reject(new Error(`${this.describe}: ${err.message}`));
        }
      });
      client.on('message', (topic, payload, packet) => this.dispatch(topic, payload, packet));
    });
  }

  private replyPathOf(topic: string, packet: IPublishPacket): { replyTo?: string; receivedOn: string } {
    const responseTopic = packet.properties?.responseTopic;
    if (responseTopic) return { replyTo: responseTopic, receivedOn: topic };
    // R-MQTT.25: the part after the last "/reply-to=" is the response topic, %2F meaning "/".
    const at = topic.lastIndexOf(REPLY_TO);
    if (at < 0) return { receivedOn: topic };
    return {
      replyTo: topic.slice(at + REPLY_TO.length).replace(/%2F/gi, '/'),
      receivedOn: topic.slice(0, at),
    };
  }

  private dispatch(topic: string, payload: Buffer, packet: IPublishPacket): void {
    const ct = packet.properties?.contentType;
    if (ct && !USP_CONTENT_TYPES.has(ct)) return; // usp.error and foreign payloads are not Records
    const { replyTo, receivedOn } = this.replyPathOf(topic, packet);
    const eid = packet.properties?.userProperties?.['usp-endpoint-id'];
    const rec = new MqttInbound(
      this,
      packet,
      payload,
      this.decoded.get(packet),
      replyTo,
      receivedOn,
      Array.isArray(eid) ? eid[0] : eid,
    );
    for (const h of this.recordHandlers) h(rec);
  }

  /** @internal MqttInbound.reject */
  rejectPacket(packet: IPublishPacket, errCode: number, errMsg: string): void {
    if (this.opts.protocolVersion !== 5) return; // R-MQTT.30: 3.1.1 drops silently
    const replyTo = packet.properties?.responseTopic;
    if (!replyTo || !this.client) return;
    const errId = packet.properties?.userProperties?.['usp-err-id'];
    // R-MQTT.31: a usp.error publish with the received usp-err-id, two UTF-8 lines.
    this.client.publish(replyTo, `err_code:${errCode}\nerr_msg:${errMsg}`, {
      qos: 1,
      properties: {
        contentType: USP_ERROR_CONTENT_TYPE,
        ...(errId ? { userProperties: { 'usp-err-id': errId } } : {}),
      },
    });
  }

  private setUp(up: boolean): void {
    if (this.up === up) return;
    this.up = up;
    for (const h of this.statusHandlers) h(up);
  }

  /**
   * QoS 1 publishes not yet acknowledged when the connection drops fail instead of waiting in
   * mqtt.js's store for the next connection: a request resent after its sender gave up (a Download()
   * whose task expired during a broker outage) would be carried out late.
   */
  private dropInFlight(client: MqttClient): void {
    for (const id of Object.keys(client.outgoing)) client.removeOutgoingMessage(Number(id));
  }

  send(address: string, bytes: Uint8Array, opts?: SendOptions): Promise<void> {
    const client = this.client;
    if (!client) return Promise.reject(new Error(`${this.describe}: not started`));
    // Not handed to mqtt.js's offline queue (see dropInFlight); the USP layer resends.
    if (!this.up) return Promise.reject(new Error(`${this.describe}: not connected`));
    const v5 = this.opts.protocolVersion === 5;
    const from = opts?.from ?? this.opts.endpointId;
    const replyTopic =
      opts?.from && this.opts.replyTopicFor ? this.opts.replyTopicFor(opts.from) : this.replyTopic;
    const topic = v5 ? address : `${address}${REPLY_TO}${replyTopic.replace(/\//g, '%2F')}`;
    let properties: IClientPublishOptions['properties'];
    if (v5) {
      properties = this.publishProps.get(from);
      if (properties?.responseTopic !== replyTopic) {
        // Each agent of a shared connection names its own topic as the Response Topic (R-MQTT.24).
        properties = {
          responseTopic: replyTopic,
          contentType: USP_CONTENT_TYPE,
          userProperties: { 'usp-endpoint-id': from },
        };
        if (this.publishProps.size >= 10_000) this.publishProps.clear();
        this.publishProps.set(from, properties);
      }
    }
    return new Promise((resolve, reject) => {
      client.publish(
        topic,
        Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength),
        { qos: this.qos, properties },
        (err) => (err ? reject(err) : resolve()),
      );
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const client = this.client;
    if (!client) return;
    await new Promise<void>((resolve) => client.end(false, {}, () => resolve()));
    this.setUp(false);
  }

  /** Drops the TCP connection without DISCONNECT (tests: a crash or network cut). */
  crash(): void {
    this.client?.stream.destroy();
  }
}
