import { describe, expect, it } from 'vitest';
import { DEFAULT_CHANNELS, overlap, planChannels, type Radio, radioCost } from './wifi-channels.js';

const r24 = (
  id: string,
  channel: number,
  neighbours: Radio['neighbours'] = [],
  peers: Radio['peers'] = [],
): Radio => ({
  id,
  band: '2.4GHz',
  channel,
  neighbours,
  peers,
});

/** Deterministic pseudo-random numbers for generated instances. */
function lcg(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

describe('Wi-Fi channel assignment', () => {
  it('models 2.4 GHz overlap: 5 channels apart do not interfere, adjacent ones partly', () => {
    expect(overlap('2.4GHz', 1, 6)).toBe(0);
    expect(overlap('2.4GHz', 1, 1)).toBe(1);
    expect(overlap('2.4GHz', 1, 3)).toBeCloseTo(0.6);
    expect(overlap('5GHz', 36, 40)).toBe(0);
  });

  it('moves a radio away from strong neighbours on 1 and 6 to 11', () => {
    const plan = planChannels([
      r24('a', 1, [
        { channel: 1, rssi: -40 },
        { channel: 6, rssi: -45 },
      ]),
    ]);
    expect(plan.assignments[0]?.to).toBe(11);
    expect(plan.totalAfter).toBeLessThan(plan.totalBefore);
  });

  it('counts partially overlapping neighbours (a strong neighbour on 9 weighs more on 11 than on 6)', () => {
    const plan = planChannels([
      r24('a', 11, [
        { channel: 9, rssi: -35 },
        { channel: 1, rssi: -30 },
      ]),
    ]);
    expect(plan.assignments[0]?.to).toBe(6);
  });

  it('separates three of our radios that hear each other onto 1, 6 and 11', () => {
    const peers = (me: string) => ['a', 'b', 'c'].filter((x) => x !== me).map((id) => ({ id, rssi: -50 }));
    const plan = planChannels([
      r24('a', 6, [], peers('a')),
      r24('b', 6, [], peers('b')),
      r24('c', 6, [], peers('c')),
    ]);
    expect(new Set(plan.assignments.map((x) => x.to))).toEqual(new Set([1, 6, 11]));
    expect(plan.totalAfter).toBe(0);
  });

  it('keeps the current channel unless moving is clearly better (hysteresis)', () => {
    // On 1: a -70 dBm neighbour; on 6: a -70.5 dBm one (11 % less): not worth a move.
    const plan = planChannels([
      r24('a', 1, [
        { channel: 1, rssi: -70 },
        { channel: 6, rssi: -70.5 },
        { channel: 11, rssi: -70 },
      ]),
    ]);
    expect(plan.assignments[0]?.to).toBe(1);
  });

  it('moves a radio off a non-standard channel even without interference', () => {
    expect(planChannels([r24('a', 3)]).assignments[0]?.to).toBe(1);
  });

  it('respects the allowed channel list (e.g. no DFS on 5 GHz)', () => {
    const plan = planChannels(
      [
        {
          id: 'a',
          band: '5GHz',
          channel: 36,
          neighbours: [
            { channel: 36, rssi: -40 },
            { channel: 40, rssi: -40 },
          ],
        },
      ],
      { channels: { '5GHz': [36, 40] } },
    );
    expect(plan.assignments[0]?.to).toBe(36);
  });

  it('reaches a local optimum on generated fleets: no single radio can improve by moving, and never worse than before', () => {
    for (let seed = 1; seed <= 30; seed++) {
      const rnd = lcg(seed);
      const n = 3 + Math.floor(rnd() * 10);
      const radios: Radio[] = Array.from({ length: n }, (_, i) => ({
        id: `r${i}`,
        band: '2.4GHz',
        channel: 1 + Math.floor(rnd() * 11),
        neighbours: Array.from({ length: Math.floor(rnd() * 6) }, () => ({
          channel: 1 + Math.floor(rnd() * 11),
          rssi: -90 + Math.floor(rnd() * 55),
        })),
        peers: Array.from({ length: n }, (_, j) => j)
          .filter((j) => j !== i && rnd() < 0.4)
          .map((j) => ({ id: `r${j}`, rssi: -85 + Math.floor(rnd() * 40) })),
      }));
      const plan = planChannels(radios, { hysteresis: 1 });
      expect(plan.totalAfter).toBeLessThanOrEqual(plan.totalBefore + 1e-12);
      const chosen = new Map(plan.assignments.map((a) => [a.id, a.to]));
      // Symmetrised peers as the planner sees them.
      const sym = radios.map((r) => ({
        ...r,
        peers: radios
          .filter((o) => o.id !== r.id)
          .flatMap((o) => {
            const a = r.peers?.find((p) => p.id === o.id)?.rssi;
            const b = o.peers?.find((p) => p.id === r.id)?.rssi;
            return a === undefined && b === undefined
              ? []
              : [{ id: o.id, rssi: Math.max(a ?? -Infinity, b ?? -Infinity) }];
          }),
      }));
      for (const r of sym) {
        const others = new Map(chosen);
        others.delete(r.id);
        const mine = radioCost(r, chosen.get(r.id) as number, others);
        for (const ch of DEFAULT_CHANNELS['2.4GHz'])
          expect(radioCost(r, ch, others)).toBeGreaterThanOrEqual(mine - 1e-15);
      }
    }
  });

  it('is deterministic', () => {
    const radios = [
      r24('x', 6, [{ channel: 6, rssi: -50 }], [{ id: 'y', rssi: -50 }]),
      r24('y', 6, [{ channel: 1, rssi: -50 }]),
    ];
    expect(planChannels(radios)).toEqual(planChannels([...radios].reverse()) && planChannels(radios));
    expect(planChannels(radios).assignments.map((a) => a.to)).toEqual(
      planChannels(radios).assignments.map((a) => a.to),
    );
  });
});
