import { DATA_RULE, dataBlock, HandleTable, sanitizeText } from './sanitize.js';

/**
 * What the planner may show the model about devices. Every string here except the parameter paths
 * was reported by a device (or a neighbour's beacon) and is therefore untrusted.
 */
export interface DeviceFacts {
  id: string;
  manufacturer?: string;
  productClass?: string;
  modelName?: string;
  softwareVersion?: string;
  region?: string;
  ssids?: Array<{ radio: number; ssid: string }>;
  hosts?: Array<{ hostName: string; mac?: string }>;
  /** Free vendor fields (e.g. Device.DeviceInfo.Description). */
  vendorFields?: Record<string, string>;
  /** Current values of parameters relevant to the intent (path → value). */
  values?: Record<string, string>;
  neighbours?: Array<{ ssid: string; channel: number; rssi: number; band: '2.4GHz' | '5GHz' }>;
}

const s = (raw: string | undefined, max?: number) =>
  raw === undefined ? undefined : sanitizeText(raw, max).text;

/** Path-shaped keys only: a device cannot smuggle text through a key name. */
const PATH_KEY = /^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*\.?$/;

/**
 * The device section of a prompt: identities as handles, every device string sanitised (and quoted
 * by `dataBlock`). Returns the block and the handle table that resolves the model's references.
 */
export function deviceContext(devices: readonly DeviceFacts[], handles = new HandleTable()) {
  const rows = devices.map((d) => ({
    device: handles.handle('dev', d.id),
    manufacturer: s(d.manufacturer),
    productClass: s(d.productClass),
    modelName: s(d.modelName),
    softwareVersion: s(d.softwareVersion, 32),
    region: s(d.region, 32),
    ssids: d.ssids?.map((x) => ({
      network: handles.handle('ssid', x.ssid),
      radio: x.radio,
      ssid: s(x.ssid, 32),
    })),
    hosts: d.hosts
      ?.slice(0, 32)
      .map((h) => ({ host: handles.handle('host', h.hostName), hostName: s(h.hostName) })),
    vendorFields: d.vendorFields
      ? Object.fromEntries(
          Object.entries(d.vendorFields)
            .filter(([k]) => PATH_KEY.test(k))
            .slice(0, 16)
            .map(([k, v]) => [k, s(v, 128)]),
        )
      : undefined,
    values: d.values
      ? Object.fromEntries(
          Object.entries(d.values)
            .filter(([k]) => PATH_KEY.test(k))
            .map(([k, v]) => [k, s(v, 128)]),
        )
      : undefined,
    neighbours: d.neighbours?.slice(0, 64).map((n) => ({
      ssid: s(n.ssid, 32),
      channel: n.channel,
      rssi: n.rssi,
      band: n.band,
    })),
  }));
  return { block: dataBlock({ devices: rows }), handles };
}

export const PLANNER_SYSTEM = [
  'You are the Fleetbrain change planner for broadband CPEs (TR-069/USP, TR-181 data model).',
  'You only propose; deterministic code validates every path against the device firmware data model,',
  'a policy decides risk and whether a change is allowed, and people approve. You cannot approve,',
  'lower a risk class, or widen the operator scope: the target you give is intersected with it.',
  'When an algorithm exists as a tool (e.g. Wi-Fi channel assignment), call the tool and use its',
  'result instead of computing it yourself. If the intent cannot be served safely, abstain and say why.',
  'Your rationale is shown to approvers as model output, after the diff and the validation results.',
  DATA_RULE,
].join('\n');

/** The messages for one planning request. The operator's intent is trusted input; device text is not. */
export function plannerMessages(opts: {
  intent: string;
  scopeDescription: string;
  devices: readonly DeviceFacts[];
  handles?: HandleTable;
}) {
  const { block, handles } = deviceContext(opts.devices, opts.handles);
  const intent = sanitizeText(opts.intent, 2000).text;
  return {
    handles,
    messages: [
      { role: 'system' as const, content: PLANNER_SYSTEM },
      {
        role: 'user' as const,
        content: `Operator intent: ${JSON.stringify(intent)}\nOperator scope (fixed): ${opts.scopeDescription}\n\n${block}`,
      },
    ],
  };
}
