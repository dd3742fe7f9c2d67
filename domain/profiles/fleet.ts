import { coveringPaths } from './paths.js';
import {
  type Claim,
  DEFAULT_RULES,
  type Decision,
  type FieldResolution,
  type PrecedenceRule,
  resolveField,
} from './precedence.js';
import { isActive, type ParamValue, type Profile, valueKey } from './profile.js';

/**
 * Fleet-wide conflict detection at plan time. Each selector is resolved once (by the caller, from the
 * database) to an array of dense device indices; then, path by path, one pass over the claiming
 * profiles' members marks the devices where two different values meet. Only those devices are
 * revisited to group them by the exact set of contenders, and each group is resolved once.
 */

export interface FleetProfile {
  profile: Pick<Profile, 'id' | 'priority' | 'parameters' | 'validFrom' | 'validUntil' | 'updatedAt'>;
  /** Dense indices (0 ≤ i < deviceCount) of the devices the selector matched, ascending. */
  members: Uint32Array;
  /**
   * Per parameter (same order as profile.parameters): firmware indices on which the value is invalid.
   * Those devices are not claimed by that parameter.
   */
  invalidOn?: ReadonlyArray<ReadonlySet<number> | undefined>;
}

export interface FleetInput {
  deviceCount: number;
  profiles: readonly FleetProfile[];
  /** Firmware index per device; required only when any profile has `invalidOn`. */
  firmwareOf?: Uint16Array;
  now: Date;
  rules?: readonly PrecedenceRule[];
  decisions?: readonly Decision[];
  /** Device indices kept per conflict group (default 10). */
  sampleSize?: number;
}

export interface ConflictGroup {
  path: string;
  /** The contenders and their values. */
  claims: Array<{ profileId: string; value: ParamValue }>;
  devices: number;
  sample: number[];
  resolution: FieldResolution;
}

export interface FleetConflicts {
  /** Distinct (device, path) pairs claimed by at least one profile. */
  claimedPairs: number;
  /** … of which claimed by two or more profiles. */
  multiplyClaimedPairs: number;
  /** … of which claimed with two or more different values: conflicts. */
  conflictingPairs: number;
  /** Conflicting pairs that no rule or decision resolves. */
  unresolvedPairs: number;
  groups: ConflictGroup[];
}

interface Claimant {
  profile: number;
  param: number;
  value: number;
}

export function detectFleetConflicts(input: FleetInput): FleetConflicts {
  const n = input.deviceCount;
  const rules = input.rules ?? DEFAULT_RULES;
  const sampleSize = input.sampleSize ?? 10;
  const active = input.profiles.map((p) => isActive(p.profile, input.now));
  const claimantsByPath = new Map<string, Claimant[]>();
  const valueIds = new Map<string, number>();
  for (let pi = 0; pi < input.profiles.length; pi++) {
    if (!active[pi]) continue;
    const ps = (input.profiles[pi] as FleetProfile).profile.parameters;
    for (let k = 0; k < ps.length; k++) {
      const p = ps[k] as { path: string; value: ParamValue };
      const vk = valueKey(p.value);
      let v = valueIds.get(vk);
      if (v === undefined) {
        v = valueIds.size;
        valueIds.set(vk, v);
      }
      const list = claimantsByPath.get(p.path);
      const c = { profile: pi, param: k, value: v };
      if (list) list.push(c);
      else claimantsByPath.set(p.path, [c]);
    }
  }
  const decisions = new Map(
    (input.decisions ?? []).map((d) => [`${d.path}\n${[...d.profiles].sort().join(',')}`, d]),
  );
  const first = new Int32Array(n);
  const count = new Uint8Array(n);
  const conflicted = new Uint8Array(n);
  // A device has a field for a path only if some claim names that path itself (not only a wildcard).
  const own = new Uint8Array(n);
  const sigA = new Int32Array(n);
  const sigB = new Int32Array(n);
  const out: FleetConflicts = {
    claimedPairs: 0,
    multiplyClaimedPairs: 0,
    conflictingPairs: 0,
    unresolvedPairs: 0,
    groups: [],
  };
  const fw = input.firmwareOf;
  for (const [path, covering] of coveringPaths([...claimantsByPath.keys()])) {
    const claimants = covering.flatMap((p) => claimantsByPath.get(p) ?? []);
    count.fill(0);
    conflicted.fill(0);
    own.fill(0);
    let anyConflict = false;
    for (const c of claimants) {
      const fp = input.profiles[c.profile] as FleetProfile;
      const bad = fp.invalidOn?.[c.param];
      const named = (fp.profile.parameters[c.param] as { path: string }).path === path ? 1 : 0;
      const keep = bad && fw ? excludeInvalid(fp.members, bad, fw) : fp.members;
      if (claimPass(keep, c.value, named, first, count, conflicted, own)) anyConflict = true;
    }
    const conflictedDevices: number[] = [];
    const tally = countPass(n, count, own, conflicted, conflictedDevices);
    out.claimedPairs += tally.claimed;
    out.multiplyClaimedPairs += tally.multiply;
    if (!anyConflict) continue;
    out.conflictingPairs += conflictedDevices.length;
    // Second pass only over conflicted devices: a 53-bit signature of the contenders reaching each one,
    // so devices are grouped without a list per device; each group's contenders are then listed once.
    for (const d of conflictedDevices) {
      sigA[d] = 0x811c9dc5;
      sigB[d] = 0x01000193;
    }
    for (let ci = 0; ci < claimants.length; ci++) {
      const c = claimants[ci] as Claimant;
      const fp = input.profiles[c.profile] as FleetProfile;
      const bad = fp.invalidOn?.[c.param];
      const keep = bad && fw ? excludeInvalid(fp.members, bad, fw) : fp.members;
      signPass(keep, ci + 1, conflicted, own, sigA, sigB);
    }
    const groups = new Map<number, { rep: number; devices: number; sample: number[] }>();
    for (const d of conflictedDevices) {
      const key = ((sigA[d] as number) >>> 0) * 0x200000 + ((sigB[d] as number) & 0x1fffff);
      const g = groups.get(key);
      if (g) {
        g.devices++;
        if (g.sample.length < sampleSize) g.sample.push(d);
      } else groups.set(key, { rep: d, devices: 1, sample: sampleSize > 0 ? [d] : [] });
    }
    for (const g of groups.values()) {
      const cis = contendersOf(g.rep, claimants, input.profiles, fw);
      const claims: Claim[] = cis.map((ci) => {
        const c = claimants[ci] as Claimant;
        const fp = input.profiles[c.profile] as FleetProfile;
        return {
          profileId: fp.profile.id,
          value: (fp.profile.parameters[c.param] as { value: ParamValue }).value,
          priority: fp.profile.priority,
          matchedDevices: fp.members.length,
          updatedAt: fp.profile.updatedAt.getTime(),
        };
      });
      const ids = claims
        .map((c) => c.profileId)
        .sort()
        .join(',');
      const resolution = resolveField(path, claims, rules, decisions.get(`${path}\n${ids}`));
      if (resolution.status === 'conflict') out.unresolvedPairs += g.devices;
      out.groups.push({
        path,
        claims: claims.map((c) => ({ profileId: c.profileId, value: c.value })),
        devices: g.devices,
        sample: g.sample,
        resolution,
      });
    }
  }
  out.groups.sort((a, b) => b.devices - a.devices || (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return out;
}

// The hot loops live in small functions of their own: V8 optimises them after a few calls, where one
// large function with the loops inside stays slow for the whole (single) call of a plan.

/** Members whose firmware accepts the value (the rest are not claimed by it). */
function excludeInvalid(m: Uint32Array, bad: ReadonlySet<number>, fw: Uint16Array): Uint32Array {
  const out = new Uint32Array(m.length);
  let k = 0;
  for (let i = 0; i < m.length; i++) {
    const d = m[i] as number;
    if (!bad.has(fw[d] as number)) out[k++] = d;
  }
  return out.subarray(0, k);
}

/** One claimant over its devices: count claims, remember the first value, mark value clashes. */
function claimPass(
  m: Uint32Array,
  value: number,
  named: number,
  first: Int32Array,
  count: Uint8Array,
  conflicted: Uint8Array,
  own: Uint8Array,
): boolean {
  let any = false;
  for (let i = 0; i < m.length; i++) {
    const d = m[i] as number;
    if (named) own[d] = 1;
    const k = count[d] as number;
    if (k === 0) first[d] = value;
    else if (first[d] !== value && conflicted[d] === 0) {
      conflicted[d] = 1;
      any = true;
    }
    if (k < 255) count[d] = k + 1;
  }
  return any;
}

function countPass(
  n: number,
  count: Uint8Array,
  own: Uint8Array,
  conflicted: Uint8Array,
  conflictedDevices: number[],
): { claimed: number; multiply: number } {
  let claimed = 0;
  let multiply = 0;
  for (let d = 0; d < n; d++) {
    const k = count[d] as number;
    if (k === 0 || own[d] === 0) continue;
    claimed++;
    if (k > 1) multiply++;
    if (conflicted[d]) conflictedDevices.push(d);
  }
  return { claimed, multiply };
}

/** Folds claimant `tag` into the contender signature of each conflicted device it reaches. */
function signPass(
  m: Uint32Array,
  tag: number,
  conflicted: Uint8Array,
  own: Uint8Array,
  sigA: Int32Array,
  sigB: Int32Array,
): void {
  for (let i = 0; i < m.length; i++) {
    const d = m[i] as number;
    if (conflicted[d] === 0 || own[d] === 0) continue;
    sigA[d] = Math.imul((sigA[d] as number) ^ tag, 0x01000193);
    sigB[d] = Math.imul((sigB[d] as number) + tag * 0x9e3779b1, 0x85ebca6b) ^ ((sigB[d] as number) >>> 13);
  }
}

/** The claimants (indices) that reach device `d`: membership by binary search in the sorted member arrays. */
function contendersOf(
  d: number,
  claimants: readonly Claimant[],
  profiles: readonly FleetProfile[],
  fw: Uint16Array | undefined,
): number[] {
  const out: number[] = [];
  for (let ci = 0; ci < claimants.length; ci++) {
    const c = claimants[ci] as Claimant;
    const fp = profiles[c.profile] as FleetProfile;
    const bad = fp.invalidOn?.[c.param];
    if (bad && fw && bad.has(fw[d] as number)) continue;
    if (hasSorted(fp.members, d)) out.push(ci);
  }
  return out;
}

function hasSorted(a: Uint32Array, x: number): boolean {
  let lo = 0;
  let hi = a.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const v = a[mid] as number;
    if (v === x) return true;
    if (v < x) lo = mid + 1;
    else hi = mid - 1;
  }
  return false;
}
