import { compareVersions, versionKey } from '../fleet/version-key.js';

/**
 * Entity resolution for fleet questions, in code: place names to regions or sites of the topology,
 * model names to product classes, "firmware 3.1" to a version prefix, named windows ("this week")
 * to seconds in the operator's time zone. Anything unknown or ambiguous becomes a clarifying question.
 */

export interface Gazetteer {
  regions: string[];
  sites: string[];
  productClasses: string[];
  modelNames: string[];
  softwareVersions: string[];
  /** Extra place names (e.g. "Lyon" → region "ara-lyon"), lower-case keys. */
  placeAliases?: Record<string, { field: 'region' | 'site'; value: string }>;
}

export class NeedsClarification extends Error {
  constructor(readonly question: string) {
    super(question);
    this.name = 'NeedsClarification';
  }
}

/** Lower case, accents removed, separators unified: "Saint-Étienne" → "saint etienne". */
export function fold(s: string): string {
  return s
    .normalize('NFKD')
    .replace(/\p{M}/gu, '')
    .toLowerCase()
    .replace(/[\s_\-./]+/g, ' ')
    .trim();
}

const list = (xs: string[]) =>
  xs
    .slice(0, 8)
    .map((x) => JSON.stringify(x))
    .join(', ');

export function resolvePlace(name: string, g: Gazetteer): { field: 'region' | 'site'; value: string } {
  const f = fold(name);
  const alias = g.placeAliases?.[f];
  if (alias) return alias;
  const regions = g.regions.filter((r) => fold(r) === f);
  const sites = g.sites.filter((s) => fold(s) === f);
  if (regions.length === 1 && sites.length === 0) return { field: 'region', value: regions[0] as string };
  if (sites.length === 1 && regions.length === 0) return { field: 'site', value: sites[0] as string };
  if (regions.length + sites.length > 1)
    throw new NeedsClarification(`"${name}" is both a region and a site: which one do you mean?`);
  const partial = [
    ...g.regions
      .filter((r) => ` ${fold(r)} `.includes(` ${f} `))
      .map((value) => ({ field: 'region' as const, value })),
    ...g.sites
      .filter((s) => ` ${fold(s)} `.includes(` ${f} `))
      .map((value) => ({ field: 'site' as const, value })),
  ];
  if (partial.length === 1) return partial[0] as { field: 'region' | 'site'; value: string };
  if (partial.length > 1)
    throw new NeedsClarification(
      `"${name}" matches several places (${list(partial.map((p) => p.value))}): which one?`,
    );
  throw new NeedsClarification(`I do not know a place called "${name}". Known regions: ${list(g.regions)}.`);
}

export function resolveModel(
  name: string,
  g: Gazetteer,
): { field: 'productClass' | 'modelName'; value: string } {
  const f = fold(name);
  const pcs = g.productClasses.filter((p) => fold(p) === f);
  if (pcs.length === 1) return { field: 'productClass', value: pcs[0] as string };
  const mns = g.modelNames.filter((m) => fold(m) === f);
  if (mns.length === 1) return { field: 'modelName', value: mns[0] as string };
  throw new NeedsClarification(
    `I do not know a device model "${name}". Known models: ${list(g.productClasses)}.`,
  );
}

/**
 * "3.1" → every 3.1.x (and 3.1 itself) as a selector; an exact version in use stays exact. A version
 * no device runs and no prefix matches asks back.
 */
export function resolveFirmware(v: string, g: Gazetteer) {
  const t = v.trim().replace(/^v/i, '');
  if (g.softwareVersions.includes(t)) return { field: 'softwareVersion', op: 'eq', value: t } as const;
  const parts = t.split('.');
  if (versionKey(t) === null) throw new NeedsClarification(`"${v}" is not a firmware version I can compare.`);
  const matching = g.softwareVersions.filter(
    (s) => s === t || s.startsWith(`${t}.`) || s.startsWith(`${t}-`),
  );
  if (parts.length < 3 && matching.length > 0) {
    return {
      or: [
        { field: 'softwareVersion', op: 'eq', value: t },
        { field: 'softwareVersion', op: 'prefix', value: `${t}.` },
        { field: 'softwareVersion', op: 'prefix', value: `${t}-` },
      ],
    } as const;
  }
  const known = [...g.softwareVersions].sort(compareVersions);
  throw new NeedsClarification(`No device runs firmware "${v}". Versions in use: ${list(known)}.`);
}

export const WINDOWS = [
  'last_hour',
  'last_24_hours',
  'today',
  'this_week',
  'last_7_days',
  'last_30_days',
  'this_month',
] as const;
export type WindowName = (typeof WINDOWS)[number];

/** Wall-clock parts of `at` in `tz`. */
function parts(at: Date, tz: string) {
  const f = new Intl.DateTimeFormat('en-GB', {
    timeZone: tz,
    hourCycle: 'h23',
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    weekday: 'short',
  });
  const p = Object.fromEntries(f.formatToParts(at).map((x) => [x.type, x.value]));
  return {
    day: Number(p.day),
    hour: Number(p.hour),
    minute: Number(p.minute),
    second: Number(p.second),
    weekday: ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'].indexOf(String(p.weekday)),
  };
}

/**
 * Seconds from the start of a named window to `now`, with "today", "this week" (from Monday 00:00)
 * and "this month" in the operator's time zone. Daylight-saving shifts inside the window are ignored
 * to within the hour they move (a window's start is computed from local wall-clock time elapsed).
 */
export function windowSeconds(name: WindowName, now: Date, tz: string): number {
  const p = parts(now, tz);
  const sinceMidnight = p.hour * 3600 + p.minute * 60 + p.second;
  switch (name) {
    case 'last_hour':
      return 3600;
    case 'last_24_hours':
      return 86_400;
    case 'last_7_days':
      return 7 * 86_400;
    case 'last_30_days':
      return 30 * 86_400;
    case 'today':
      return Math.max(1, sinceMidnight);
    case 'this_week':
      return Math.max(1, p.weekday * 86_400 + sinceMidnight);
    case 'this_month':
      return Math.max(1, (p.day - 1) * 86_400 + sinceMidnight);
  }
}
