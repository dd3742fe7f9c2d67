import { coveringPaths, covers } from './paths.js';
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
 * Field ownership on one device, in the spirit of Kubernetes server-side apply: every active profile
 * that matches the device claims its fields; equal values share ownership; different values are a
 * conflict that precedence or a person's decision resolves. Ownership is derived from the current
 * profiles, so removing a field from a profile (or the profile) releases it.
 */

export interface MatchedProfile {
  profile: Pick<Profile, 'id' | 'priority' | 'parameters' | 'validFrom' | 'validUntil' | 'updatedAt'>;
  /** How many devices the profile's selector matched fleet-wide (specificity). */
  matchedDevices: number;
}

/** Per-firmware check of one value; `ok: false` keeps the claim out of this device's configuration. */
export type FirmwareCheck = (
  path: string,
  value: ParamValue,
) => { ok: true } | { ok: false; code: string; message: string };

export interface EffectiveConfig {
  fields: FieldResolution[];
  /** Claims that this device's firmware rejects: never applied, never owned here. */
  invalid: Array<{ profileId: string; path: string; code: string; message: string }>;
}

export interface EffectiveOptions {
  now: Date;
  rules?: readonly PrecedenceRule[];
  decisions?: readonly Decision[];
  check?: FirmwareCheck;
}

/** Instance wildcards validate like any one instance: the schema is the same for all of them. */
export function schemaProbePath(path: string): string {
  return path.replace(/\.\*(?=\.|$)/g, '.1');
}

export function effectiveConfig(matched: readonly MatchedProfile[], opts: EffectiveOptions): EffectiveConfig {
  const byPath = new Map<string, Claim[]>();
  const invalid: EffectiveConfig['invalid'] = [];
  for (const { profile, matchedDevices } of matched) {
    if (!isActive(profile, opts.now)) continue;
    for (const p of profile.parameters) {
      if (opts.check) {
        const r = opts.check(schemaProbePath(p.path), p.value);
        if (!r.ok) {
          invalid.push({ profileId: profile.id, path: p.path, code: r.code, message: r.message });
          continue;
        }
      }
      const c: Claim = {
        profileId: profile.id,
        value: p.value,
        priority: profile.priority,
        matchedDevices,
        updatedAt: profile.updatedAt.getTime(),
      };
      const list = byPath.get(p.path);
      if (list) list.push(c);
      else byPath.set(p.path, [c]);
    }
  }
  const decisions = new Map(
    (opts.decisions ?? []).map((d) => [`${d.path}\n${[...d.profiles].sort().join(',')}`, d]),
  );
  const fields: FieldResolution[] = [];
  for (const [path, covering] of coveringPaths([...byPath.keys()])) {
    const claims = covering.flatMap((p) => byPath.get(p) ?? []);
    const key = `${path}\n${claims
      .map((c) => c.profileId)
      .sort()
      .join(',')}`;
    fields.push(resolveField(path, claims, opts.rules ?? DEFAULT_RULES, decisions.get(key)));
  }
  fields.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { fields, invalid };
}

export interface OwnershipChange {
  path: string;
  claimed: string[];
  released: string[];
  /** No profile owns the field any more: reconcile leaves the device's value alone from now on. */
  orphaned: boolean;
}

/** What applying a profile change did to ownership on a device (claims gained and released). */
export function diffOwnership(before: EffectiveConfig, after: EffectiveConfig): OwnershipChange[] {
  const owners = (c: EffectiveConfig) =>
    new Map(c.fields.map((f) => [f.path, new Set(f.claims.map((x) => x.profileId))]));
  const a = owners(before);
  const b = owners(after);
  const out: OwnershipChange[] = [];
  for (const path of new Set([...a.keys(), ...b.keys()])) {
    const x = a.get(path) ?? new Set<string>();
    const y = b.get(path) ?? new Set<string>();
    const claimed = [...y].filter((p) => !x.has(p)).sort();
    const released = [...x].filter((p) => !y.has(p)).sort();
    if (claimed.length || released.length) out.push({ path, claimed, released, orphaned: y.size === 0 });
  }
  return out.sort((p, q) => (p.path < q.path ? -1 : 1));
}

export interface ChangeFight {
  path: string;
  value: ParamValue;
  effective: ParamValue;
  owners: string[];
}

/**
 * Which items of a change request fight a profile on this device: a different value on a field a
 * profile owns. Such a change must edit the profile or add a time-boxed override profile instead.
 */
export function fightsWithProfiles(
  cfg: EffectiveConfig,
  items: ReadonlyArray<{ path: string; value: ParamValue }>,
): ChangeFight[] {
  const out: ChangeFight[] = [];
  for (const it of items) {
    // The concrete field when a profile names it, else the wildcard field that covers it.
    const f = cfg.fields.find((x) => x.path === it.path) ?? cfg.fields.find((x) => covers(x.path, it.path));
    if (f?.value !== undefined && valueKey(f.value) !== valueKey(it.value))
      out.push({ path: it.path, value: it.value, effective: f.value, owners: f.owners });
  }
  return out;
}

/** Fields whose reported value differs from the effective value (drift), in path order. */
export function driftedFields(
  cfg: EffectiveConfig,
  reported: (path: string) => string | undefined,
): Array<{ path: string; want: ParamValue; have: string | undefined }> {
  const out: Array<{ path: string; want: ParamValue; have: string | undefined }> = [];
  for (const f of cfg.fields) {
    if (f.value === undefined || f.path.includes('*')) continue;
    const have = reported(f.path);
    if (have !== valueKey(f.value)) out.push({ path: f.path, want: f.value, have });
  }
  return out;
}
