import { Change, DeviceGroup, PolicyInput, PolicyInputPerDecision } from './schema.js';

/**
 * A validated policy input in canonical JSON (keys in PolicyInput's order, as JSON.stringify of
 * zod's output gives them), split the way decisions repeat: the plan (change, cohort, devices) is
 * shared by every decision about it (propose, each approval, each wave), the rest is per decision.
 */
export interface PreparedInput {
  /** The canonical text of the whole input: what the input hash names. */
  json: string;
  /** The per-decision members (action, actor, proposer, validation, requested class, waivers, times). */
  decisionJson: string;
  plan: PreparedPlan;
}

/**
 * The plan members. The engine evaluates them with facts derived from them added (change.derived,
 * cohort.topology_peak and cohort.strata_in_cohort); those are not part of the input's text.
 */
export interface PreparedPlan {
  changeJson: string;
  /** change.derived: see deriveChangeFacts. */
  derivedJson: string;
  devicesJson: string;
  /** The cohort, canonical. */
  cohortJson: string;
  /**
   * The topology element with the highest share as `{"count":c,"total":t}` (see higherShare). The
   * engine adds it as cohort.topology_peak; it is not part of `json`, so the input hash is the
   * caller's input.
   */
  topologyPeakJson: string;
  /** How many strata have devices in the cohort. */
  strataInCohort: number;
}

/** The cohort as the engine evaluates it: with the derived topology_peak and strata_in_cohort. */
export function engineCohortJson(p: PreparedPlan): string {
  return `${p.cohortJson.slice(0, -1)},"topology_peak":${p.topologyPeakJson},"strata_in_cohort":${p.strataInCohort}}`;
}

/** The change as the engine evaluates it: with the derived facts. */
export function engineChangeJson(p: PreparedPlan): string {
  return `${p.changeJson.slice(0, -1)},"derived":${p.derivedJson}}`;
}

/** A JSON object used as a set (`set[x]` is a lookup in Rego). */
type JsonSet = Record<string, true>;

/**
 * Facts about a change's paths that the policy would otherwise compute per path on every
 * decision; the engine derives them once per plan. They only let the policy skip per-path checks
 * that cannot match (and group paths by object); the rules that decide stay in the .rego files,
 * which compute the same without them (the engine tests compare both on every fixture).
 *
 * - paths_by_object: each path (parameters, added and deleted objects) under the name after
 *   "Device." (split on dots), or under "" when it does not start with "Device.";
 * - chars: every character that occurs in a path;
 * - keys / key_prefixes: each path lowered with a trailing dot (its key, as the policy's path_keys),
 *   and every dot-ended prefix of a key, the key included;
 * - parameter_names: the last name of each parameter's key.
 *
 * The lowered facts are left out when a path is not printable ASCII: JavaScript and OPA lower some
 * other characters differently, and the policy then lowers the paths itself.
 */
export function deriveChangeFacts(change: {
  parameters?: Array<{ path: string }>;
  add_objects?: string[];
  delete_objects?: string[];
}): Record<string, unknown> {
  const params = (change.parameters ?? []).map((p) => p.path);
  const all = [...new Set([...params, ...(change.add_objects ?? []), ...(change.delete_objects ?? [])])];
  const byObject: Record<string, string[]> = {};
  const seen = new Set<string>();
  for (const p of all) {
    const parts = p.split('.');
    const o = parts[0] === 'Device' && parts.length > 1 ? (parts[1] as string) : '';
    if (!Object.hasOwn(byObject, o)) byObject[o] = [];
    byObject[o]?.push(p);
    for (const ch of p) seen.add(ch);
  }
  const chars: JsonSet = {};
  for (const ch of seen) chars[ch] = true;
  const facts: Record<string, unknown> = { paths_by_object: byObject, chars };
  // Printable ASCII: lowering is the same in JavaScript and OPA.
  if (!all.every((p) => /^[\x20-\x7e]*$/.test(p))) return facts;
  const key = (p: string) => {
    const l = p.toLowerCase();
    return l.endsWith('.') ? l : `${l}.`;
  };
  const keys: JsonSet = {};
  const prefixes: JsonSet = {};
  for (const p of all) {
    const k = key(p);
    keys[k] = true;
    for (let i = k.indexOf('.'); i >= 0; i = k.indexOf('.', i + 1)) prefixes[k.slice(0, i + 1)] = true;
  }
  const names: JsonSet = {};
  for (const p of params) {
    const parts = key(p).split('.');
    names[parts[parts.length - 2] as string] = true;
  }
  return { ...facts, keys, key_prefixes: prefixes, parameter_names: names };
}

/** The whole input as the engine evaluates it. */
export function engineInputJson(p: PreparedInput): string {
  const { plan } = p;
  return `${p.decisionJson.slice(0, -1)},"change":${engineChangeJson(plan)},"cohort":${engineCohortJson(plan)},"devices":${plan.devicesJson}}`;
}

export type PrepareResult =
  | { ok: true; input: PreparedInput }
  | { ok: false; issue: { path: string; message: string }; json?: undefined };

const isCount = (n: unknown): n is number => Number.isInteger(n) && (n as number) >= 0;

function isPlain(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** Own keys exactly `keys` (a strict object), in any order. */
function hasExactly(o: Record<string, unknown>, keys: readonly string[]): boolean {
  // isPlain objects inherit nothing enumerable, so own enumerable keys are all the keys zod sees.
  if (Object.keys(o).length !== keys.length) return false;
  for (let i = 0; i < keys.length; i++) if (!Object.hasOwn(o, keys[i] as string)) return false;
  return true;
}

// Strings JSON.stringify leaves as they are: no controls, quote, backslash or surrogate halves
// (strings with surrogate pairs simply take the JSON.stringify path).
const PLAIN = /^[ !#-[\]-\ud7ff\ue000-\uffff]*$/;

/** JSON string literal; the plain case (ids, keys) without a JSON.stringify call. */
function str(v: string): string {
  return PLAIN.test(v) ? `"${v}"` : JSON.stringify(v);
}

const STRATUM_KEYS = ['key', 'count'] as const;
const TOPOLOGY_KEYS = ['kind', 'id', 'count', 'total'] as const;
const COHORT_KEYS = ['size', 'fleet_size', 'strata', 'topology'] as const;

/**
 * The cohort checked and serialised in one pass, accepting only what the zod Cohort schema accepts
 * (a subset is fine: anything refused here goes through zod, which names the problem). zod's
 * per-element strict objects cost more than the policy evaluation itself at 250 elements.
 */
export function fastCohort(c: unknown): { json: string; peak: string; strata: number } | undefined {
  if (!isPlain(c) || !hasExactly(c, COHORT_KEYS)) return undefined;
  const { size, fleet_size, strata, topology } = c;
  if (!isCount(size) || !isCount(fleet_size) || fleet_size === 0 || size > fleet_size) return undefined;
  if (!Array.isArray(strata) || !Array.isArray(topology)) return undefined;
  let strataJson = '';
  let nonEmpty = 0;
  for (let i = 0; i < strata.length; i++) {
    const s = strata[i];
    if (!isPlain(s) || !hasExactly(s, STRATUM_KEYS)) return undefined;
    if (typeof s.key !== 'string' || !isCount(s.count)) return undefined;
    if (s.count > 0) nonEmpty++;
    strataJson += `${i ? ',' : ''}{"key":${str(s.key)},"count":${s.count}}`;
  }
  let topologyJson = '';
  let peak: { count: number; total: number } = { count: 0, total: 0 };
  for (let i = 0; i < topology.length; i++) {
    const t = topology[i];
    if (!isPlain(t) || !hasExactly(t, TOPOLOGY_KEYS)) return undefined;
    const { kind, id, count, total } = t;
    if (typeof kind !== 'string' || typeof id !== 'string' || !isCount(count) || !isCount(total)) {
      return undefined;
    }
    if (count > total) return undefined;
    if (count > 0 && higherShare(count, total, peak)) peak = { count, total };
    topologyJson += `${i ? ',' : ''}{"kind":${str(kind)},"id":${str(id)},"count":${count},"total":${total}}`;
  }
  return {
    json: `{"size":${size},"fleet_size":${fleet_size},"strata":[${strataJson}],"topology":[${topologyJson}]}`,
    peak: `{"count":${peak.count},"total":${peak.total}}`,
    strata: nonEmpty,
  };
}

/**
 * count/total > peak.count/peak.total, exactly: cross-multiplied in integers (BigInt when the
 * products could pass 2^53), so the peak is the true maximum share and no float rounding picks
 * a smaller one. An empty peak (0/0) is beaten by any non-zero count.
 */
export function higherShare(count: number, total: number, peak: { count: number; total: number }): boolean {
  if (peak.count === 0) return true;
  const a = count * peak.total;
  const b = peak.count * total;
  if (a <= Number.MAX_SAFE_INTEGER && b <= Number.MAX_SAFE_INTEGER) return a > b;
  return BigInt(count) * BigInt(peak.total) > BigInt(peak.count) * BigInt(total);
}

/** The element with the highest share, as the policy's topology rule reads it (tests and tools). */
export function topologyPeak(topology: Array<{ count: number; total: number }>): {
  count: number;
  total: number;
} {
  let peak = { count: 0, total: 0 };
  for (const t of topology)
    if (t.count > 0 && higherShare(t.count, t.total, peak)) peak = { count: t.count, total: t.total };
  return peak;
}

/**
 * `v` is the same JSON document as `snapshot` (a JSON.parse result): plain objects with exactly
 * the snapshot's keys, arrays of the same length, equal primitives. zod, reading only these keys and
 * values, then accepts `v` exactly as it accepted the snapshot and emits the same output.
 */
export function sameJson(v: unknown, snapshot: unknown): boolean {
  if (snapshot === null || typeof snapshot !== 'object') return v === snapshot;
  if (Array.isArray(snapshot)) {
    if (!Array.isArray(v) || v.length !== snapshot.length) return false;
    for (let i = 0; i < snapshot.length; i++) if (!sameJson(v[i], snapshot[i])) return false;
    return true;
  }
  if (!isPlain(v)) return false;
  const s = snapshot as Record<string, unknown>;
  let n = 0;
  for (const k in s) {
    if (!Object.hasOwn(v, k) || !sameJson(v[k], s[k])) return false;
    n++;
  }
  return Object.keys(v).length === n;
}

/** Own enumerable keys exactly `keys`, in that order (another order is simply not a match). */
function keysAre(o: object, keys: readonly string[]): boolean {
  let i = 0;
  for (const k in o) {
    if (k !== keys[i]) return false;
    i++;
  }
  return i === keys.length;
}

interface CohortSnapshot {
  size: number;
  fleet_size: number;
  strata: Array<{ key: string; count: number }>;
  topology: Array<{ kind: string; id: string; count: number; total: number }>;
}

/**
 * sameJson for a cohort, unrolled: its 250 elements are most of a plan, and the generic walk costs
 * three times this. Keys must also be in the schema's order, which is how the engine's callers
 * build them; any other order is compared as different and validated afresh.
 */
export function sameCohort(c: unknown, s: CohortSnapshot): boolean {
  if (!isPlain(c) || !keysAre(c, COHORT_KEYS) || c.size !== s.size || c.fleet_size !== s.fleet_size)
    return false;
  const { strata, topology } = c;
  if (!Array.isArray(strata) || strata.length !== s.strata.length) return false;
  if (!Array.isArray(topology) || topology.length !== s.topology.length) return false;
  for (let i = 0; i < strata.length; i++) {
    const a = strata[i];
    const b = s.strata[i] as CohortSnapshot['strata'][number];
    if (!isPlain(a) || a.key !== b.key || a.count !== b.count || !keysAre(a, STRATUM_KEYS)) return false;
  }
  for (let i = 0; i < topology.length; i++) {
    const a = topology[i];
    const b = s.topology[i] as CohortSnapshot['topology'][number];
    if (
      !isPlain(a) ||
      a.count !== b.count ||
      a.total !== b.total ||
      a.id !== b.id ||
      a.kind !== b.kind ||
      !keysAre(a, TOPOLOGY_KEYS)
    ) {
      return false;
    }
  }
  return true;
}

/**
 * The last plan's members validated, kept so the next decisions check each member by comparison
 * instead of parsing it again: a plan's decisions share all three, its waves the change and the
 * devices. Only an exact match is reused, so a changed or mutated member is validated afresh.
 */
export class PlanMemo {
  change: { snapshot: unknown; json: string; derivedJson: string } | undefined;
  devices: { snapshot: unknown; json: string } | undefined;
  cohort: { snapshot: CohortSnapshot; json: string; peak: string; strata: number } | undefined;
}

function prepareChange(change: unknown, memo: PlanMemo | undefined): PlanMemo['change'] {
  if (memo?.change && sameJson(change, memo.change.snapshot)) return memo.change;
  const ch = Change.safeParse(change);
  if (!ch.success) return undefined;
  const json = JSON.stringify(ch.data);
  const part = { snapshot: JSON.parse(json), json, derivedJson: JSON.stringify(deriveChangeFacts(ch.data)) };
  if (memo) memo.change = part;
  return part;
}

function prepareDevices(devices: unknown, memo: PlanMemo | undefined): PlanMemo['devices'] {
  if (memo?.devices && sameJson(devices, memo.devices.snapshot)) return memo.devices;
  const dv = DeviceGroup.array().safeParse(devices);
  if (!dv.success) return undefined;
  const json = JSON.stringify(dv.data);
  const part = { snapshot: JSON.parse(json), json };
  if (memo) memo.devices = part;
  return part;
}

function prepareCohort(cohort: unknown, memo: PlanMemo | undefined): PlanMemo['cohort'] {
  if (memo?.cohort && sameCohort(cohort, memo.cohort.snapshot)) return memo.cohort;
  const c = fastCohort(cohort);
  if (!c) return undefined;
  // fastCohort accepted it, so it has the checked shape; copied, so later edits to it are seen.
  const { size, fleet_size, strata, topology } = cohort as CohortSnapshot;
  const snapshot = {
    size,
    fleet_size,
    strata: strata.map((s) => ({ key: s.key, count: s.count })),
    topology: topology.map((t) => ({ kind: t.kind, id: t.id, count: t.count, total: t.total })),
  };
  const part = { snapshot, json: c.json, peak: c.peak, strata: c.strata };
  if (memo) memo.cohort = part;
  return part;
}

/** The plan's members validated and serialised; undefined when any is invalid (zod then names it). */
function preparePlan(
  change: unknown,
  cohort: unknown,
  devices: unknown,
  memo: PlanMemo | undefined,
): { plan: PreparedPlan; inner: string } | undefined {
  const co = prepareCohort(cohort, memo);
  if (!co) return undefined;
  const ch = prepareChange(change, memo);
  if (!ch) return undefined;
  const dv = prepareDevices(devices, memo);
  if (!dv) return undefined;
  const plan = {
    changeJson: ch.json,
    derivedJson: ch.derivedJson,
    devicesJson: dv.json,
    cohortJson: co.json,
    topologyPeakJson: co.peak,
    strataInCohort: co.strata,
  };
  return { plan, inner: `"change":${ch.json},"cohort":${co.json},"devices":${dv.json}` };
}

/**
 * The canonical text of the whole input from its validated parts, in PolicyInput's key order
 * (action, actor, proposer, change, cohort, devices, validation, requested_risk_class, waivers,
 * times): the per-decision text with the plan's members inserted before "validation".
 */
function canonical(d: PolicyInputPerDecision, planInner: string): string {
  const j = JSON.stringify;
  let s = `{"action":${j(d.action)},"actor":${j(d.actor)},"proposer":${j(d.proposer)},${planInner},"validation":${j(d.validation)}`;
  if (d.requested_risk_class !== undefined) s += `,"requested_risk_class":${j(d.requested_risk_class)}`;
  if (d.waivers !== undefined) s += `,"waivers":${j(d.waivers)}`;
  return `${s},"times":${j(d.times)}}`;
}

/**
 * Validates a policy input and serialises it canonically. Same acceptance and same error as
 * PolicyInput.safeParse: the per-decision members go through zod, the plan's members are compared
 * with the memo's last plan or else validated (the cohort by a hand-written check-and-serialise
 * pass); whatever that does not accept is handed to zod whole, which then names the first problem.
 */
export function prepareInput(input: unknown, memo?: PlanMemo): PrepareResult {
  if (
    isPlain(input) &&
    Object.hasOwn(input, 'change') &&
    Object.hasOwn(input, 'cohort') &&
    Object.hasOwn(input, 'devices')
  ) {
    const { change, cohort, devices, ...rest } = input;
    const parsed = PolicyInputPerDecision.safeParse(rest);
    if (parsed.success) {
      const planned = preparePlan(change, cohort, devices, memo);
      if (planned) {
        return {
          ok: true,
          input: {
            json: canonical(parsed.data, planned.inner),
            decisionJson: JSON.stringify(parsed.data),
            plan: planned.plan,
          },
        };
      }
    }
  }
  const parsed = PolicyInput.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return {
      ok: false,
      issue: { path: issue?.path.join('.') || '(root)', message: issue?.message ?? 'invalid' },
    };
  }
  // Valid, but not in the shape the fast pass takes (e.g. a class instance): serialise zod's output.
  const { change, cohort, devices, ...rest } = parsed.data;
  return {
    ok: true,
    input: {
      json: JSON.stringify(parsed.data),
      decisionJson: JSON.stringify(rest),
      plan: {
        changeJson: JSON.stringify(change),
        derivedJson: JSON.stringify(deriveChangeFacts(change)),
        devicesJson: JSON.stringify(devices),
        cohortJson: JSON.stringify(cohort),
        topologyPeakJson: JSON.stringify(topologyPeak(cohort.topology)),
        strataInCohort: cohort.strata.filter((s) => s.count > 0).length,
      },
    },
  };
}
