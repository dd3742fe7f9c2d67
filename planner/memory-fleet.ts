import type { CompiledSchema } from '../datamodel/types.js';
import type { FIELDS } from '../fleet/fields.js';
import type { FieldCondition, Scalar, Selector } from '../fleet/selector.js';
import { compareVersions } from '../fleet/version-key.js';
import type { CheckPorts, TargetDevice } from './check.js';

/**
 * An in-memory fleet for planner tests and eval fixture fleets: selectors over inventory and topology
 * fields are evaluated in code (parameter, last-contact and event conditions need PostgreSQL and are
 * refused here rather than approximated).
 */
export type MemoryDevice = TargetDevice & Partial<Record<keyof typeof FIELDS, string>>;

function fieldValue(d: MemoryDevice, field: keyof typeof FIELDS): string | undefined {
  return (d as unknown as Record<string, string | undefined>)[field];
}

function matchField(d: MemoryDevice, c: FieldCondition): boolean {
  const v = fieldValue(d, c.field);
  const s = (x: Scalar | undefined) => String(x);
  if (c.op === 'exists') return (v !== undefined) === c.value;
  if (v === undefined) return false;
  switch (c.op) {
    case 'eq':
      return v === s(c.value);
    case 'ne':
      return v !== s(c.value);
    case 'in':
      return (c.values ?? []).map(s).includes(v);
    case 'notIn':
      return !(c.values ?? []).map(s).includes(v);
    case 'prefix':
      return v.startsWith(s(c.value));
    case 'versionLt':
      return compareVersions(v, s(c.value)) < 0;
    case 'versionLte':
      return compareVersions(v, s(c.value)) <= 0;
    case 'versionGt':
      return compareVersions(v, s(c.value)) > 0;
    case 'versionGte':
      return compareVersions(v, s(c.value)) >= 0;
    case 'versionBetween':
      return compareVersions(v, s(c.from)) >= 0 && compareVersions(v, s(c.to)) <= 0;
    default:
      throw new Error(`the in-memory fleet does not evaluate "${c.op}"`);
  }
}

export function matches(d: MemoryDevice, s: Selector): boolean {
  if ('all' in s) return true;
  if ('and' in s) return s.and.every((x) => matches(d, x));
  if ('or' in s) return s.or.some((x) => matches(d, x));
  if ('not' in s) return !matches(d, s.not);
  if ('field' in s) return matchField(d, s);
  throw new Error('the in-memory fleet evaluates inventory and topology fields only');
}

export function memoryPorts(opts: {
  devices: readonly MemoryDevice[];
  schemaFor: CheckPorts['schemaFor'];
  decide: CheckPorts['decide'];
  now?: () => Date;
}): CheckPorts {
  const regionTotals: Record<string, number> = {};
  for (const d of opts.devices) if (d.region) regionTotals[d.region] = (regionTotals[d.region] ?? 0) + 1;
  return {
    resolve: async (sel) => ({
      devices: opts.devices.filter((d) => matches(d, sel)),
      fleetSize: opts.devices.length,
      regionTotals,
    }),
    schemaFor: opts.schemaFor,
    decide: opts.decide,
    ...(opts.now ? { now: opts.now } : {}),
  };
}

/** A schema lookup that returns `schema` for the listed product classes and nothing otherwise. */
export function schemaByProductClass(map: Record<string, CompiledSchema>): CheckPorts['schemaFor'] {
  return (k) => map[k.productClass];
}
