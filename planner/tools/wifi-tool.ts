import { z } from 'zod';
import type { DeviceFacts } from '../context.js';
import { defineTool } from '../llm.js';
import type { HandleTable } from '../sanitize.js';
import { type Band, planChannels, type Radio } from './wifi-channels.js';

const RADIO_INDEX: Record<Band, number> = { '2.4GHz': 1, '5GHz': 2 };
const channelPath = (band: Band) => `Device.WiFi.Radio.${RADIO_INDEX[band]}.Channel`;

/**
 * The channel planner as a model tool. The model passes device handles only; scan data, current
 * channels and which of our networks hear each other come from the facts in code.
 */
export function wifiChannelTool(devices: readonly DeviceFacts[], handles: HandleTable) {
  return defineTool({
    name: 'assign_wifi_channels',
    description:
      'Computes channel assignments for the given devices from their neighbour scans (deterministic). ' +
      'Returns per device the parameter path and the channel to set; use these values as they are.',
    parameters: z.strictObject({
      band: z.enum(['2.4GHz', '5GHz']),
      devices: z
        .array(z.string().regex(/^dev#\d+$/))
        .min(1)
        .max(1000),
    }),
    run: ({ band, devices: hs }) => {
      const byId = new Map(devices.map((d) => [d.id, d]));
      const chosen: Array<{ handle: string; facts: DeviceFacts }> = [];
      for (const h of hs) {
        const id = handles.resolve(h, 'dev');
        const facts = id === undefined ? undefined : byId.get(id);
        if (!facts) throw new Error(`unknown device handle ${h}`);
        chosen.push({ handle: h, facts });
      }
      const path = channelPath(band);
      const ssidOwner = new Map<string, string>();
      for (const c of chosen) for (const s of c.facts.ssids ?? []) ssidOwner.set(s.ssid, c.handle);
      const radios: Radio[] = chosen.map(({ handle, facts }) => {
        const own = (facts.neighbours ?? []).filter((n) => n.band === band);
        return {
          id: handle,
          band,
          channel: Number(facts.values?.[path] ?? 0),
          neighbours: own
            .filter((n) => !ssidOwner.has(n.ssid))
            .map((n) => ({ channel: n.channel, rssi: n.rssi })),
          peers: own.flatMap((n) => {
            const peer = ssidOwner.get(n.ssid);
            return peer && peer !== handle ? [{ id: peer, rssi: n.rssi }] : [];
          }),
        };
      });
      const plan = planChannels(radios);
      return {
        assignments: plan.assignments.map((a) => ({ device: a.id, path, from: a.from, to: a.to })),
        interferenceBefore: plan.totalBefore,
        interferenceAfter: plan.totalAfter,
      };
    },
  });
}
