/**
 * Wi-Fi channel assignment from neighbour scans: a deterministic algorithm the planner's model calls
 * instead of guessing. Interference is modelled as received power (mW from dBm) times the spectral
 * overlap of two channels; our own radios that hear each other interfere both ways and are assigned
 * jointly (greedy by most-interfered first, then coordinate descent to a local optimum). A radio keeps
 * its current channel unless moving lowers its cost by the hysteresis factor, to avoid churn.
 */

export type Band = '2.4GHz' | '5GHz';

export interface Radio {
  /** Opaque id (a handle such as "dev#3" or a device id); never interpreted. */
  id: string;
  band: Band;
  channel: number;
  /** External networks this radio hears (from its neighbour scan). */
  neighbours: Array<{ channel: number; rssi: number }>;
  /** Our other radios this radio hears, by id, with the received signal. */
  peers?: Array<{ id: string; rssi: number }>;
}

export interface ChannelPlanOptions {
  /** Candidate channels per band; defaults 1/6/11 and the non-DFS 5 GHz channels. */
  channels?: Partial<Record<Band, readonly number[]>>;
  /** Move only if the new cost is below this fraction of the current one (default 0.8). */
  hysteresis?: number;
  /** Coordinate-descent passes (default 20). */
  maxPasses?: number;
}

export interface Assignment {
  id: string;
  from: number;
  to: number;
  costBefore: number;
  costAfter: number;
}

export interface ChannelPlan {
  assignments: Assignment[];
  totalBefore: number;
  totalAfter: number;
  passes: number;
}

export const DEFAULT_CHANNELS: Record<Band, readonly number[]> = {
  '2.4GHz': [1, 6, 11],
  '5GHz': [36, 40, 44, 48, 149, 153, 157, 161, 165],
};

/** Spectral overlap of two 20 MHz channels: 2.4 GHz channels are 5 MHz apart and 22 MHz wide. */
export function overlap(band: Band, a: number, b: number): number {
  if (band === '5GHz') return a === b ? 1 : 0;
  const d = Math.abs(a - b);
  return d >= 5 ? 0 : 1 - d / 5;
}

const mw = (dbm: number) => 10 ** (dbm / 10);

/**
 * Total interference cost of `radio` on `channel` given the channels currently chosen for its peers.
 * Exported for tests: the plan's costs are computed by the same function.
 */
export function radioCost(radio: Radio, channel: number, chosen: ReadonlyMap<string, number>): number {
  let c = 0;
  for (const n of radio.neighbours) c += mw(n.rssi) * overlap(radio.band, channel, n.channel);
  for (const p of radio.peers ?? []) {
    const pc = chosen.get(p.id);
    if (pc !== undefined) c += mw(p.rssi) * overlap(radio.band, channel, pc);
  }
  return c;
}

function total(radios: readonly Radio[], chosen: ReadonlyMap<string, number>): number {
  return radios.reduce((s, r) => s + radioCost(r, chosen.get(r.id) ?? r.channel, chosen), 0);
}

export function planChannels(radios: readonly Radio[], opts: ChannelPlanOptions = {}): ChannelPlan {
  const hysteresis = opts.hysteresis ?? 0.8;
  const maxPasses = opts.maxPasses ?? 20;
  const ids = new Set(radios.map((r) => r.id));
  if (ids.size !== radios.length) throw new Error('radio ids must be unique');
  // Peers are symmetric: if a hears b, b is disturbed by a as well (use the stronger report).
  const peers = new Map<string, Map<string, number>>();
  for (const r of radios) peers.set(r.id, new Map());
  for (const r of radios) {
    for (const p of r.peers ?? []) {
      if (!ids.has(p.id) || p.id === r.id) continue;
      const other = radios.find((x) => x.id === p.id);
      if (other?.band !== r.band) continue;
      const ab = peers.get(r.id) as Map<string, number>;
      const ba = peers.get(p.id) as Map<string, number>;
      ab.set(p.id, Math.max(ab.get(p.id) ?? -Infinity, p.rssi));
      ba.set(r.id, Math.max(ba.get(r.id) ?? -Infinity, p.rssi));
    }
  }
  const rs: Radio[] = radios.map((r) => ({
    ...r,
    peers: [...(peers.get(r.id) ?? new Map()).entries()].map(([id, rssi]) => ({ id, rssi })),
  }));
  const current = new Map(rs.map((r) => [r.id, r.channel]));
  const totalBefore = total(rs, current);

  const candidates = (r: Radio) => opts.channels?.[r.band] ?? DEFAULT_CHANNELS[r.band];
  const best = (r: Radio, chosen: Map<string, number>, keep: number | undefined) => {
    let bestCh = keep;
    let bestCost = keep === undefined ? Infinity : radioCost(r, keep, chosen) * hysteresis;
    for (const ch of candidates(r)) {
      const c = radioCost(r, ch, chosen);
      // Strictly lower wins; ties keep the earlier (lower) channel: deterministic.
      if (c < bestCost - 1e-15) {
        bestCost = c;
        bestCh = ch;
      }
    }
    return bestCh as number;
  };

  // Greedy: most interfered radios choose first, seeing only the radios already placed.
  const order = [...rs].sort(
    (a, b) => radioCost(b, b.channel, current) - radioCost(a, a.channel, current) || (a.id < b.id ? -1 : 1),
  );
  const chosen = new Map<string, number>();
  for (const r of order) {
    const keep = candidates(r).includes(r.channel) ? r.channel : undefined;
    chosen.set(r.id, best(r, chosen, keep));
  }
  // Coordinate descent: each pass re-optimises every radio against all others; stops when stable.
  let passes = 0;
  for (; passes < maxPasses; passes++) {
    let moved = false;
    for (const r of order) {
      const cur = chosen.get(r.id) as number;
      const keep = cur === r.channel ? cur : undefined;
      const others = new Map(chosen);
      others.delete(r.id);
      let next = best(r, others, keep);
      // A moved radio may move again only for a strict improvement (no oscillation).
      if (keep === undefined && radioCost(r, cur, others) <= radioCost(r, next, others)) next = cur;
      if (next !== cur) {
        chosen.set(r.id, next);
        moved = true;
      }
    }
    if (!moved) break;
  }
  const assignments = rs.map((r) => ({
    id: r.id,
    from: r.channel,
    to: chosen.get(r.id) as number,
    costBefore: radioCost(r, r.channel, current),
    costAfter: radioCost(r, chosen.get(r.id) as number, chosen),
  }));
  return { assignments, totalBefore, totalAfter: total(rs, chosen), passes };
}
