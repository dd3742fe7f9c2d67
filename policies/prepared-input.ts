import { PolicyInput, PolicyInputWithoutCohort } from './schema.js';

/**
 * A validated policy input in canonical JSON, with the cohort (the large, plan-stable part: 50
 * strata, 200 topology elements) as its own text so an engine can keep it parsed between decisions.
 */
export interface PreparedInput {
  /** The canonical text of the whole input, as JSON.stringify(PolicyInput.parse(input)) gives it. */
  json: string;
  /** The input without its cohort, canonical. */
  restJson: string;
  /** The cohort, canonical. */
  cohortJson: string;
  /**
   * The topology element with the highest share as `{"count":c,"total":t}` (see higherShare). The
   * engine adds it as cohort.topology_peak; it is not part of `json`, so the input hash is the
   * caller's input.
   */
  topologyPeakJson: string;
}

/** The cohort as the engine evaluates it: with the derived topology_peak. */
export function engineCohortJson(p: PreparedInput): string {
  return `${p.cohortJson.slice(0, -1)},"topology_peak":${p.topologyPeakJson}}`;
}

/** The whole input as the engine evaluates it. */
export function engineInputJson(p: PreparedInput): string {
  return `${p.restJson.slice(0, -1)},"cohort":${engineCohortJson(p)}}`;
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
export function fastCohort(c: unknown): { json: string; peak: string } | undefined {
  if (!isPlain(c) || !hasExactly(c, COHORT_KEYS)) return undefined;
  const { size, fleet_size, strata, topology } = c;
  if (!isCount(size) || !isCount(fleet_size) || fleet_size === 0 || size > fleet_size) return undefined;
  if (!Array.isArray(strata) || !Array.isArray(topology)) return undefined;
  let strataJson = '';
  for (let i = 0; i < strata.length; i++) {
    const s = strata[i];
    if (!isPlain(s) || !hasExactly(s, STRATUM_KEYS)) return undefined;
    if (typeof s.key !== 'string' || !isCount(s.count)) return undefined;
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
 * The canonical input: the rest as zod emits it (PolicyInput's key order) with the cohort spliced in
 * where PolicyInput has it, before "devices". No string value can contain `,"devices":` unescaped,
 * and no key before it is named so, so the first occurrence is the top-level key.
 */
function withCohort(restJson: string, cohortJson: string): string {
  const at = restJson.indexOf(',"devices":');
  if (at < 0) throw new Error('policy input without devices passed the schema');
  return `${restJson.slice(0, at)},"cohort":${cohortJson}${restJson.slice(at)}`;
}

/**
 * Validates a policy input and serialises it canonically. Same acceptance and same error as
 * PolicyInput.safeParse: the cohort takes a hand-written check-and-serialise pass, and whatever
 * that pass does not accept is handed to zod whole, which then names the first problem.
 */
export function prepareInput(input: unknown): PrepareResult {
  if (isPlain(input) && Object.hasOwn(input, 'cohort')) {
    const cohort = fastCohort(input.cohort);
    if (cohort) {
      const { cohort: _, ...rest } = input;
      const parsed = PolicyInputWithoutCohort.safeParse(rest);
      if (parsed.success) {
        const restJson = JSON.stringify(parsed.data);
        return {
          ok: true,
          input: {
            json: withCohort(restJson, cohort.json),
            restJson,
            cohortJson: cohort.json,
            topologyPeakJson: cohort.peak,
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
  const { cohort, ...rest } = parsed.data;
  return {
    ok: true,
    input: {
      json: JSON.stringify(parsed.data),
      restJson: JSON.stringify(rest),
      cohortJson: JSON.stringify(cohort),
      topologyPeakJson: JSON.stringify(topologyPeak(cohort.topology)),
    },
  };
}
