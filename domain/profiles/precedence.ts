import { z } from 'zod';
import { type ParamValue, valueKey } from './profile.js';

/**
 * Precedence between two profiles that claim one field with different values. Rules are tried in the
 * configured order; the first rule that tells the two apart decides. When none does, the conflict is a
 * person's (or a planner-suggested, person-approved) decision.
 */
export const PrecedenceRule = z.enum(['priority', 'specificity', 'newest']);
export type PrecedenceRule = z.infer<typeof PrecedenceRule>;
export const DEFAULT_RULES: readonly PrecedenceRule[] = ['priority', 'specificity', 'newest'];

export const PrecedenceOrder = z
  .array(PrecedenceRule)
  .max(3)
  .refine((r) => new Set(r).size === r.length, 'each rule at most once');

/** One profile's claim on one field. */
export interface Claim {
  profileId: string;
  value: ParamValue;
  priority: number;
  /** How many devices the profile's selector matched: fewer is more specific. */
  matchedDevices: number;
  /** Epoch milliseconds of the profile's current version. */
  updatedAt: number;
}

/** A person's decision for one field fought over by exactly `profiles` (sorted ids). */
export interface Decision {
  path: string;
  profiles: string[];
  winner: string;
  decidedBy: string;
}

/** >0 when `a` beats `b` under `rule`, <0 when `b` wins, 0 when the rule cannot tell them apart. */
function byRule(rule: PrecedenceRule, a: Claim, b: Claim): number {
  switch (rule) {
    case 'priority':
      return a.priority - b.priority;
    case 'specificity':
      return b.matchedDevices - a.matchedDevices;
    case 'newest':
      return a.updatedAt - b.updatedAt;
  }
}

/** The rule that ranks `a` above or below `b`, with the sign; null when all rules tie. */
export function decidingRule(
  rules: readonly PrecedenceRule[],
  a: Claim,
  b: Claim,
): { rule: PrecedenceRule; sign: number } | null {
  for (const r of rules) {
    const s = byRule(r, a, b);
    if (s !== 0) return { rule: r, sign: Math.sign(s) };
  }
  return null;
}

export type FieldStatus = 'owned' | 'shared' | 'resolved' | 'decided' | 'conflict';

export interface FieldResolution {
  path: string;
  /** owned: one profile; shared: several, equal values; resolved: by a precedence rule; decided: by a person; conflict: unresolved. */
  status: FieldStatus;
  /** The effective value; absent while the conflict is unresolved (nothing is sent). */
  value?: ParamValue;
  /** Profiles that own the field (all claims with the winning value), sorted. */
  owners: string[];
  /** Losing claims and what beat them ('decision' for a person's decision). */
  overridden: Array<{ profileId: string; value: ParamValue; rule: PrecedenceRule | 'decision' }>;
  claims: Claim[];
}

export function isConflict(f: FieldResolution): boolean {
  return f.status === 'resolved' || f.status === 'decided' || f.status === 'conflict';
}

/** Resolves one field from all claims on it (any order; at least one). */
export function resolveField(
  path: string,
  claims: readonly Claim[],
  rules: readonly PrecedenceRule[] = DEFAULT_RULES,
  decision?: Decision,
): FieldResolution {
  const values = new Set(claims.map((c) => valueKey(c.value)));
  const ownersOf = (v: ParamValue) =>
    claims
      .filter((c) => valueKey(c.value) === valueKey(v))
      .map((c) => c.profileId)
      .sort();
  const first = claims[0];
  if (first === undefined) throw new Error(`no claims on ${path}`);
  if (values.size === 1) {
    return {
      path,
      status: claims.length > 1 ? 'shared' : 'owned',
      value: first.value,
      owners: ownersOf(first.value),
      overridden: [],
      claims: [...claims],
    };
  }
  const ids = claims.map((c) => c.profileId).sort();
  // A decision binds to the exact set of contenders: a profile that joins later voids it.
  const w =
    decision && decision.path === path && sameSet(decision.profiles, ids)
      ? claims.find((c) => c.profileId === decision.winner)
      : undefined;
  if (w) {
    const k = valueKey(w.value);
    return {
      path,
      status: 'decided',
      value: w.value,
      owners: ownersOf(w.value),
      overridden: claims
        .filter((c) => valueKey(c.value) !== k)
        .map((c) => ({ profileId: c.profileId, value: c.value, rule: 'decision' as const })),
      claims: [...claims],
    };
  }
  let top = first;
  for (const c of claims) if ((decidingRule(rules, c, top)?.sign ?? 0) > 0) top = c;
  const k = valueKey(top.value);
  const overridden: FieldResolution['overridden'] = [];
  let unresolved = false;
  for (const c of claims) {
    if (valueKey(c.value) === k) continue;
    const d = decidingRule(rules, top, c);
    if (d === null) unresolved = true;
    else overridden.push({ profileId: c.profileId, value: c.value, rule: d.rule });
  }
  if (unresolved) return { path, status: 'conflict', owners: [], overridden: [], claims: [...claims] };
  return {
    path,
    status: 'resolved',
    value: top.value,
    owners: ownersOf(top.value),
    overridden,
    claims: [...claims],
  };
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  const s = [...a].sort();
  return s.every((x, i) => x === b[i]);
}
