import { describe, expect, it } from 'vitest';
import { detectFleetConflicts, type FleetProfile } from './fleet.js';
import {
  diffOwnership,
  driftedFields,
  effectiveConfig,
  fightsWithProfiles,
  type MatchedProfile,
} from './ownership.js';
import { isConflict } from './precedence.js';
import { ProfileSpec } from './profile.js';

const now = new Date('2026-11-25T12:00:00Z');
const CH = 'Device.WiFi.Radio.1.Channel';
const SSID = 'Device.WiFi.SSID.*.SSID';

function prof(
  id: string,
  params: Record<string, string | number | boolean>,
  o: { priority?: number; updatedAt?: string; matched?: number; validUntil?: Date; validFrom?: Date } = {},
): MatchedProfile {
  return {
    profile: {
      id,
      priority: o.priority ?? 0,
      parameters: Object.entries(params).map(([path, value]) => ({ path, value })),
      updatedAt: new Date(o.updatedAt ?? '2026-01-01T00:00:00Z'),
      validFrom: o.validFrom,
      validUntil: o.validUntil,
    },
    matchedDevices: o.matched ?? 100,
  };
}
const field = (ps: MatchedProfile[], path: string, rules?: Parameters<typeof effectiveConfig>[1]['rules']) =>
  effectiveConfig(ps, { now, rules }).fields.find((f) => f.path === path);

describe('profile schema', () => {
  it('accepts instance wildcards and rejects malformed paths, duplicates and inverted windows', () => {
    const base = { name: 'base', selector: { all: true }, owner: 'noc', priority: 1 };
    expect(ProfileSpec.safeParse({ ...base, parameters: [{ path: SSID, value: 'x' }] }).success).toBe(true);
    const bad = ProfileSpec.safeParse({ ...base, parameters: [{ path: 'Device..WiFi', value: 1 }] });
    expect(bad.success).toBe(false);
    expect(bad.error?.issues[0]?.path).toEqual(['parameters', 0, 'path']);
    expect(
      ProfileSpec.safeParse({
        ...base,
        parameters: [
          { path: CH, value: 1 },
          { path: CH, value: 6 },
        ],
      }).success,
    ).toBe(false);
    const w = ProfileSpec.safeParse({
      ...base,
      parameters: [{ path: CH, value: 1 }],
      validFrom: '2026-02-01T00:00:00Z',
      validUntil: '2026-01-01T00:00:00Z',
    });
    expect(w.error?.issues[0]?.path).toEqual(['validUntil']);
  });
});

describe('ownership on one device', () => {
  it('equal values from overlapping profiles share ownership, no conflict', () => {
    const f = field([prof('a', { [CH]: 6 }), prof('b', { [CH]: '6' })], CH);
    expect(f?.status).toBe('shared');
    expect(f?.owners).toEqual(['a', 'b']);
    expect(f && isConflict(f)).toBe(false);
  });

  it('different values with nothing to tell the profiles apart are an unresolved conflict: nothing is applied', () => {
    const f = field([prof('a', { [CH]: 1 }), prof('b', { [CH]: 11 })], CH);
    expect(f?.status).toBe('conflict');
    expect(f?.value).toBeUndefined();
    expect(f?.claims.map((c) => c.value).sort()).toEqual([1, 11]);
  });

  it('priority decides first', () => {
    const f = field(
      [prof('a', { [CH]: 1 }, { priority: 5, matched: 1000 }), prof('b', { [CH]: 11 }, { matched: 10 })],
      CH,
    );
    expect(f).toMatchObject({ status: 'resolved', value: 1, owners: ['a'] });
    expect(f?.overridden).toEqual([{ profileId: 'b', value: 11, rule: 'priority' }]);
  });

  it('at equal priority the more specific selector (fewer devices) wins', () => {
    const f = field(
      [
        prof('a', { [CH]: 1 }, { matched: 1000, updatedAt: '2026-06-01T00:00:00Z' }),
        prof('b', { [CH]: 11 }, { matched: 10 }),
      ],
      CH,
    );
    expect(f).toMatchObject({ status: 'resolved', value: 11, owners: ['b'] });
    expect(f?.overridden[0]?.rule).toBe('specificity');
  });

  it('at equal priority and specificity the newest profile wins', () => {
    const f = field(
      [prof('a', { [CH]: 1 }, { updatedAt: '2026-06-01T00:00:00Z' }), prof('b', { [CH]: 11 })],
      CH,
    );
    expect(f).toMatchObject({ status: 'resolved', value: 1 });
    expect(f?.overridden[0]?.rule).toBe('newest');
  });

  it('the rule order is configurable, and an empty order leaves every difference to a person', () => {
    const ps = [
      prof('a', { [CH]: 1 }, { priority: 5, matched: 1000 }),
      prof('b', { [CH]: 11 }, { matched: 10 }),
    ];
    expect(field(ps, CH, ['specificity', 'priority'])).toMatchObject({ value: 11 });
    expect(field(ps, CH, ['priority', 'specificity'])).toMatchObject({ value: 1 });
    expect(field(ps, CH, [])?.status).toBe('conflict');
  });

  it('a person decides a conflict; the decision is void once another contender joins', () => {
    const ps = [prof('a', { [CH]: 1 }), prof('b', { [CH]: 11 })];
    const decisions = [{ path: CH, profiles: ['b', 'a'], winner: 'b', decidedBy: 'alice' }];
    const f = effectiveConfig(ps, { now, decisions }).fields[0];
    expect(f).toMatchObject({ status: 'decided', value: 11, owners: ['b'] });
    expect(f?.overridden).toEqual([{ profileId: 'a', value: 1, rule: 'decision' }]);
    const g = effectiveConfig([...ps, prof('c', { [CH]: 6 })], { now, decisions }).fields[0];
    expect(g?.status).toBe('conflict');
  });

  it('removing a field from a profile releases it; the other owner keeps it, an unclaimed field is orphaned', () => {
    const before = effectiveConfig(
      [prof('a', { [CH]: 1, [SSID]: 'home' }), prof('b', { [CH]: 11 }, { priority: 1 })],
      {
        now,
      },
    );
    const after = effectiveConfig([prof('a', { [SSID]: 'home' }), prof('b', { [CH]: 11 }, { priority: 1 })], {
      now,
    });
    expect(diffOwnership(before, after)).toEqual([
      { path: CH, claimed: [], released: ['a'], orphaned: false },
    ]);
    expect(after.fields.find((f) => f.path === CH)).toMatchObject({ status: 'owned', owners: ['b'] });
    const gone = effectiveConfig([prof('b', { [CH]: 11 }, { priority: 1 })], { now });
    expect(diffOwnership(after, gone)).toEqual([
      { path: SSID, claimed: [], released: ['a'], orphaned: true },
    ]);
  });

  it('a profile outside its validity window claims nothing', () => {
    const ps = [
      prof('a', { [CH]: 1 }),
      prof('tmp', { [CH]: 11 }, { priority: 9, validUntil: new Date('2026-11-01T00:00:00Z') }),
    ];
    expect(field(ps, CH)).toMatchObject({ status: 'owned', owners: ['a'], value: 1 });
  });

  it('a wildcard claim meets a concrete claim on the instance it covers', () => {
    const ps = [
      prof('a', { [SSID]: 'home' }),
      prof('b', { 'Device.WiFi.SSID.2.SSID': 'guest' }, { priority: 1 }),
    ];
    const cfg = effectiveConfig(ps, { now });
    expect(cfg.fields.find((f) => f.path === 'Device.WiFi.SSID.2.SSID')).toMatchObject({
      status: 'resolved',
      value: 'guest',
    });
    expect(cfg.fields.find((f) => f.path === SSID)).toMatchObject({ status: 'owned', value: 'home' });
  });

  it('a change request that fights a profile says so (also through a wildcard)', () => {
    const cfg = effectiveConfig([prof('a', { [CH]: 6, [SSID]: 'home' })], { now });
    expect(
      fightsWithProfiles(cfg, [
        { path: CH, value: 6 },
        { path: 'Device.WiFi.SSID.3.SSID', value: 'x' },
      ]),
    ).toEqual([{ path: 'Device.WiFi.SSID.3.SSID', value: 'x', effective: 'home', owners: ['a'] }]);
  });

  it('drift: reported values that differ from the effective value', () => {
    const cfg = effectiveConfig([prof('a', { [CH]: 6, 'Device.Time.Enable': true })], { now });
    const reported = new Map([
      [CH, '1'],
      ['Device.Time.Enable', 'true'],
    ]);
    expect(driftedFields(cfg, (p) => reported.get(p))).toEqual([{ path: CH, want: 6, have: '1' }]);
  });
});

/** Deterministic pseudo-random numbers (mulberry32). */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('fleet-wide conflict detection', () => {
  it('finds exactly the conflicts the per-device merge finds, device by device', () => {
    const r = rng(7);
    const n = 2000;
    const paths = ['Device.A.1.X', 'Device.A.*.X', 'Device.B.Y', 'Device.C.Z', 'Device.D.W'];
    const profiles: FleetProfile[] = [];
    for (let i = 0; i < 30; i++) {
      const share = 0.01 + r() * 0.49;
      const members = Uint32Array.from([...Array(n).keys()].filter(() => r() < share));
      const params = paths
        .filter(() => r() < 0.5)
        .map((path) => ({ path, value: r() < 0.8 ? 'v0' : `v${i % 3}` }));
      if (params.length === 0) params.push({ path: 'Device.B.Y', value: 'v0' });
      profiles.push({
        profile: {
          id: `p${i}`,
          priority: Math.floor(r() * 3),
          parameters: params,
          updatedAt: new Date(Date.UTC(2026, 0, 1 + (i % 5))),
        },
        members,
      });
    }
    const fleet = detectFleetConflicts({ deviceCount: n, profiles, now, sampleSize: n });
    expect(fleet.conflictingPairs).toBeGreaterThan(100);
    expect(fleet.unresolvedPairs).toBeGreaterThan(0);
    const fromFleet = new Set<string>();
    const statusFleet = new Map<string, string>();
    for (const g of fleet.groups)
      for (const d of g.sample) {
        fromFleet.add(`${d} ${g.path}`);
        statusFleet.set(`${d} ${g.path}`, `${g.resolution.status}:${String(g.resolution.value)}`);
      }
    const brute = new Set<string>();
    for (let d = 0; d < n; d++) {
      const matched = profiles
        .filter((p) => p.members.includes(d))
        .map((p) => ({ profile: p.profile, matchedDevices: p.members.length }));
      for (const f of effectiveConfig(matched, { now }).fields) {
        if (!isConflict(f)) continue;
        brute.add(`${d} ${f.path}`);
        expect(statusFleet.get(`${d} ${f.path}`)).toBe(`${f.status}:${String(f.value)}`);
      }
    }
    expect(fromFleet).toEqual(brute);
    expect(fleet.conflictingPairs).toBe(brute.size);
  });

  it('a value invalid on a firmware claims nothing on devices running it', () => {
    const mk = (id: string, value: number, members: number[], invalidOn?: Set<number>): FleetProfile => ({
      profile: { id, priority: 0, parameters: [{ path: CH, value }], updatedAt: new Date(0) },
      members: Uint32Array.from(members),
      invalidOn: [invalidOn],
    });
    const res = detectFleetConflicts({
      deviceCount: 4,
      profiles: [mk('a', 1, [0, 1, 2, 3]), mk('b', 165, [0, 1, 2, 3], new Set([1]))],
      firmwareOf: Uint16Array.from([0, 1, 0, 1]),
      now,
    });
    expect(res.conflictingPairs).toBe(2);
    expect(res.groups[0]?.sample).toEqual([0, 2]);
    expect(res.claimedPairs).toBe(4);
    expect(res.multiplyClaimedPairs).toBe(2);
  });
});
