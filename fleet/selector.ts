import { z } from 'zod';
import type { ParameterCatalog } from './catalog.js';
import { DeviceEventKind } from './events.js';
import { FIELDS, type FieldKind, type FieldName, isFieldName } from './fields.js';
import { NUMERIC_TYPES, type ParamType } from './parameters.js';
import { versionKey } from './version-key.js';

/**
 * The fleet selector language: one JSON shape for a rollout's cohort, a profile's selector, a change
 * request's targets and a translated fleet question. A selector is a tree of nodes; each node is an
 * object with exactly one of the keys below.
 *
 *   { "all": true }                                    every device
 *   { "and": [s, ...] } / { "or": [s, ...] } / { "not": s }
 *   { "field": "productClass", "op": "eq", "value": "HG8245" }         inventory and topology fields
 *   { "param": "Device.WiFi.Radio.1.Channel", "op": "in", "values": [1, 6, 11] }  last known values
 *   { "lastContact": { "notSeenForIntervals": 3 } }
 *   { "events": { "kind": "boot", "withinSeconds": 86400, "op": "gte", "count": 3 } }
 *
 * New node kinds (issue 12's aggregations wrap a selector rather than change it) are added as new keys;
 * the parser dispatches on the key, so existing selectors keep their meaning.
 */

export const COMPARE_OPS = ['eq', 'ne', 'lt', 'lte', 'gt', 'gte'] as const;
export const Op = z.enum([
  'eq',
  'ne',
  'in',
  'notIn',
  'prefix',
  'lt',
  'lte',
  'gt',
  'gte',
  'between',
  'versionLt',
  'versionLte',
  'versionGt',
  'versionGte',
  'versionBetween',
  'has',
  'hasAny',
  'hasAll',
  'exists',
]);
export type Op = z.infer<typeof Op>;

const MAX_STRING = 1024;
// NUL cannot be stored in PostgreSQL text; rejecting it here keeps the error a selector error.
const Text = z
  .string()
  .max(MAX_STRING)
  .refine((v) => !v.includes('\u0000'), 'NUL characters are not allowed');
const Scalar = z.union([Text, z.number(), z.boolean()]);
export type Scalar = z.infer<typeof Scalar>;

const operands = {
  value: Scalar.optional(),
  values: z.array(Scalar).min(1).max(1000).optional(),
  from: Scalar.optional(),
  to: Scalar.optional(),
};

export const FieldCondition = z.strictObject({ field: z.string().max(64), op: Op, ...operands });
export type FieldCondition = Omit<z.infer<typeof FieldCondition>, 'field'> & { field: FieldName };

export const ParamCondition = z.strictObject({ param: z.string().min(1).max(512), op: Op, ...operands });
export type ParamCondition = z.infer<typeof ParamCondition>;

const positiveInt = z.number().int().positive().max(10_000_000);

export const LastContactCondition = z.strictObject({
  lastContact: z.union([
    /** last contact older than N periodic inform intervals (each device's own interval), or never seen */
    z.strictObject({ notSeenForIntervals: z.number().positive().max(100_000) }),
    /** last contact older than S seconds, or never seen */
    z.strictObject({ notSeenForSeconds: positiveInt }),
    z.strictObject({ seenWithinSeconds: positiveInt }),
  ]),
});
export type LastContactCondition = z.infer<typeof LastContactCondition>;

export const EventCountCondition = z.strictObject({
  events: z.strictObject({
    kind: DeviceEventKind,
    withinSeconds: positiveInt,
    op: z.enum(COMPARE_OPS),
    count: z.number().int().nonnegative().max(1_000_000),
    /** inform only: count informs carrying this event code, e.g. "1 BOOT" */
    eventCode: Text.pipe(z.string().min(1).max(64)).optional(),
    /** transfer_complete only: true counts failed transfers (fault code ≠ 0), false successful ones */
    failed: z.boolean().optional(),
  }),
});
export type EventCountCondition = z.infer<typeof EventCountCondition>;

export type Selector =
  | { all: true }
  | { and: Selector[] }
  | { or: Selector[] }
  | { not: Selector }
  | FieldCondition
  | ParamCondition
  | LastContactCondition
  | EventCountCondition;

/** A selector that failed validation; `path` names the offending part (e.g. "and[1].value"). */
export class SelectorError extends Error {
  constructor(
    readonly path: string,
    readonly reason: string,
  ) {
    super(`${path || 'selector'}: ${reason}`);
    this.name = 'SelectorError';
  }
}

const NODE_KEYS = ['all', 'and', 'or', 'not', 'field', 'param', 'lastContact', 'events'] as const;
const MAX_DEPTH = 32;
const MAX_NODES = 500;

export interface ParseOptions {
  /** Parameter paths and their types; without one, any parameter condition is rejected. */
  catalog?: ParameterCatalog;
}

const OPS_BY_KIND: Record<FieldKind | ParamKind, readonly Op[]> = {
  string: ['eq', 'ne', 'in', 'notIn', 'prefix', 'exists'],
  version: [
    'eq',
    'ne',
    'in',
    'notIn',
    'prefix',
    'versionLt',
    'versionLte',
    'versionGt',
    'versionGte',
    'versionBetween',
    'exists',
  ],
  enum: ['eq', 'ne', 'in', 'notIn', 'exists'],
  integer: ['eq', 'ne', 'in', 'notIn', 'lt', 'lte', 'gt', 'gte', 'between', 'exists'],
  number: ['eq', 'ne', 'in', 'notIn', 'lt', 'lte', 'gt', 'gte', 'between', 'exists'],
  time: ['lt', 'lte', 'gt', 'gte', 'between', 'exists'],
  tags: ['has', 'hasAny', 'hasAll'],
  boolean: ['eq', 'ne', 'exists'],
  binary: ['eq', 'ne', 'in', 'notIn', 'exists'],
};

/** How a parameter's TR-181 type is compared. String parameters also allow version comparisons. */
export type ParamKind = 'version' | 'number' | 'integer' | 'boolean' | 'time' | 'binary';

export function paramKind(t: ParamType): ParamKind {
  if (t === 'boolean') return 'boolean';
  if (t === 'dateTime') return 'time';
  if (t === 'base64' || t === 'hexBinary') return 'binary';
  if (t === 'decimal') return 'number';
  if (NUMERIC_TYPES.has(t)) return 'integer';
  return 'version';
}

/** Joins a node path and a key: "" + "op" → "op", "and[1]" + "op" → "and[1].op". */
const join = (where: string, key: string) => (where ? `${where}.${key}` : key);

function describeType(v: unknown): string {
  return Array.isArray(v) ? 'array' : v === null ? 'null' : typeof v;
}

const SINGLE: readonly Op[] = [
  'eq',
  'ne',
  'prefix',
  'lt',
  'lte',
  'gt',
  'gte',
  'versionLt',
  'versionLte',
  'versionGt',
  'versionGte',
  'has',
  'exists',
];
const MULTI: readonly Op[] = ['in', 'notIn', 'hasAny', 'hasAll'];
const RANGE: readonly Op[] = ['between', 'versionBetween'];

/** Checks one operand against what the operator and the field's kind accept. */
function checkOperand(
  where: string,
  kind: FieldKind | ParamKind,
  op: Op,
  v: Scalar,
  subject: string,
  allowed?: readonly string[],
  paramType?: ParamType,
): void {
  const fail = (expected: string) => {
    throw new SelectorError(
      where,
      `${subject} expects ${expected}, got ${describeType(v)} ${JSON.stringify(v)}`,
    );
  };
  if (op === 'exists') {
    if (typeof v !== 'boolean') fail('true or false');
    return;
  }
  if (op.startsWith('version')) {
    if (typeof v !== 'string' || versionKey(v) === null)
      fail('a semantic version such as "3.0" or "3.0.1-rc1"');
    return;
  }
  switch (kind) {
    case 'string':
    case 'version':
    case 'tags':
      if (typeof v !== 'string') fail('a string');
      if (op === 'prefix' && v === '') fail('a non-empty prefix');
      return;
    case 'binary':
      if (typeof v !== 'string') fail('a string');
      if (paramType === 'hexBinary' && !/^[0-9A-Fa-f]*$/.test(String(v))) fail('a hexBinary string');
      return;
    case 'enum':
      if (typeof v !== 'string' || !allowed?.includes(v))
        fail(`one of ${allowed?.map((a) => JSON.stringify(a)).join(', ')}`);
      return;
    case 'integer': {
      if (typeof v !== 'number' || !Number.isInteger(v)) fail('an integer');
      const n = v as number;
      if ((paramType === 'unsignedInt' || paramType === 'unsignedLong') && n < 0)
        fail('a non-negative integer');
      if (!Number.isSafeInteger(n)) fail('an integer within ±2^53');
      return;
    }
    case 'number':
      if (typeof v !== 'number' || !Number.isFinite(v)) fail('a number');
      return;
    case 'boolean':
      if (typeof v !== 'boolean') fail('true or false');
      return;
    case 'time':
      if (typeof v !== 'string' || !/^\d{4}-\d{2}-\d{2}T/.test(v) || Number.isNaN(Date.parse(v))) {
        fail('an ISO 8601 date-time such as "2026-01-31T12:00:00Z"');
      }
      return;
  }
}

function checkCondition(
  where: string,
  c: { op: Op; value?: Scalar; values?: Scalar[]; from?: Scalar; to?: Scalar },
  kind: FieldKind | ParamKind,
  subject: string,
  allowed?: readonly string[],
  paramType?: ParamType,
): void {
  if (!OPS_BY_KIND[kind].includes(c.op)) {
    throw new SelectorError(
      join(where, 'op'),
      `${subject} does not support "${c.op}" (use ${OPS_BY_KIND[kind].join(', ')})`,
    );
  }
  const given = (['value', 'values', 'from', 'to'] as const).filter((k) => c[k] !== undefined);
  const need: readonly string[] = SINGLE.includes(c.op)
    ? ['value']
    : MULTI.includes(c.op)
      ? ['values']
      : ['from', 'to'];
  for (const k of need) {
    if (!given.includes(k as (typeof given)[number]))
      throw new SelectorError(join(where, k), `"${c.op}" needs "${k}"`);
  }
  for (const k of given) {
    if (!need.includes(k)) throw new SelectorError(join(where, k), `"${c.op}" does not take "${k}"`);
  }
  if (c.value !== undefined)
    checkOperand(join(where, 'value'), kind, c.op, c.value, subject, allowed, paramType);
  c.values?.forEach((v, i) => {
    checkOperand(`${join(where, 'values')}[${i}]`, kind, c.op, v, subject, allowed, paramType);
  });
  if (RANGE.includes(c.op)) {
    checkOperand(join(where, 'from'), kind, c.op, c.from as Scalar, subject, allowed, paramType);
    checkOperand(join(where, 'to'), kind, c.op, c.to as Scalar, subject, allowed, paramType);
  }
}

function zodFail(where: string, err: z.ZodError): never {
  const issue = err.issues[0];
  const sub = (issue?.path ?? [])
    .map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`))
    .join('')
    .replace(/^\./, where ? '.' : '');
  throw new SelectorError(`${where}${sub}`, issue?.message ?? 'invalid');
}

/**
 * Validates a selector (typically parsed JSON) and returns it typed. Unknown node keys, unknown fields,
 * parameter paths no schema knows, operators a type does not support and operands of the wrong type
 * are rejected with the offending part named, before any SQL exists.
 */
export function parseSelector(input: unknown, opts: ParseOptions = {}): Selector {
  let nodes = 0;
  const walk = (node: unknown, where: string, depth: number): Selector => {
    if (++nodes > MAX_NODES) throw new SelectorError(where, `selector has more than ${MAX_NODES} nodes`);
    if (depth > MAX_DEPTH) throw new SelectorError(where, `selector is nested deeper than ${MAX_DEPTH}`);
    if (typeof node !== 'object' || node === null || Array.isArray(node)) {
      throw new SelectorError(where, `expected a selector object, got ${describeType(node)}`);
    }
    const keys = NODE_KEYS.filter((k) => Object.hasOwn(node, k));
    if (keys.length !== 1) {
      const unknown = Object.keys(node).filter((k) => !(NODE_KEYS as readonly string[]).includes(k));
      const reason =
        keys.length === 0
          ? unknown.length
            ? `unknown selector key "${unknown[0]}" (expected one of ${NODE_KEYS.join(', ')})`
            : `empty selector (expected one of ${NODE_KEYS.join(', ')})`
          : `a selector node has exactly one of ${keys.join(', ')}`;
      throw new SelectorError(where, reason);
    }
    const n = node as Record<string, unknown>;
    const at = (k: string) => join(where, k);
    switch (keys[0]) {
      case 'all': {
        const r = z.strictObject({ all: z.literal(true) }).safeParse(n);
        if (!r.success) zodFail(where, r.error);
        return { all: true };
      }
      case 'and':
      case 'or': {
        const k = keys[0];
        const r = z.strictObject({ [k]: z.array(z.unknown()).min(1).max(MAX_NODES) }).safeParse(n);
        if (!r.success) zodFail(where, r.error);
        const list = (n[k] as unknown[]).map((c, i) => walk(c, `${at(k)}[${i}]`, depth + 1));
        return k === 'and' ? { and: list } : { or: list };
      }
      case 'not': {
        const extra = Object.keys(n).filter((k) => k !== 'not');
        if (extra.length) throw new SelectorError(at(extra[0] ?? ''), 'unexpected key next to "not"');
        return { not: walk(n.not, at('not'), depth + 1) };
      }
      case 'field': {
        const r = FieldCondition.safeParse(n);
        if (!r.success) zodFail(where, r.error);
        const c = r.data;
        if (!isFieldName(c.field)) {
          throw new SelectorError(
            at('field'),
            `unknown field "${c.field}" (known: ${Object.keys(FIELDS).join(', ')})`,
          );
        }
        const def = FIELDS[c.field];
        checkCondition(where, c, def.kind, `field ${c.field}`, 'values' in def ? def.values : undefined);
        return { ...c, field: c.field };
      }
      case 'param': {
        const r = ParamCondition.safeParse(n);
        if (!r.success) zodFail(where, r.error);
        const c = r.data;
        const type = opts.catalog?.typeOf(c.param);
        if (type === undefined) {
          throw new SelectorError(
            at('param'),
            opts.catalog
              ? `parameter path "${c.param}" is not in any known TR-181 schema`
              : 'parameter conditions need a data-model catalog',
          );
        }
        checkCondition(where, c, paramKind(type), `parameter ${c.param} (${type})`, undefined, type);
        return c;
      }
      case 'lastContact': {
        const r = LastContactCondition.safeParse(n);
        if (!r.success) zodFail(where, r.error);
        return r.data;
      }
      case 'events': {
        const r = EventCountCondition.safeParse(n);
        if (!r.success) zodFail(where, r.error);
        const e = r.data.events;
        if (e.eventCode !== undefined && e.kind !== 'inform') {
          throw new SelectorError(at('events.eventCode'), 'eventCode applies to kind "inform" only');
        }
        if (e.failed !== undefined && e.kind !== 'transfer_complete') {
          throw new SelectorError(at('events.failed'), 'failed applies to kind "transfer_complete" only');
        }
        return r.data;
      }
      default:
        throw new SelectorError(where, 'unreachable');
    }
  };
  return walk(input, '', 0);
}

/** A zod schema for API and CLI boundaries: validates with `parseSelector` and reports its path. */
export function selectorSchema(opts: ParseOptions = {}) {
  return z
    .unknown()
    .transform((v, ctx) => {
      try {
        return parseSelector(v, opts);
      } catch (err) {
        if (!(err instanceof SelectorError)) throw err;
        ctx.addIssue({
          code: 'custom',
          message: err.message,
          path: err.path ? err.path.split(/[.[\]]+/).filter(Boolean) : [],
        });
        return z.NEVER;
      }
    })
    .meta({
      description:
        'Fleet selector: an object with one of all | and | or | not | field | param | lastContact | events. ' +
        'See fleet/selector.ts for the grammar.',
      examples: [
        {
          and: [
            { field: 'productClass', op: 'eq', value: 'HG8245' },
            { field: 'region', op: 'eq', value: 'north' },
            { field: 'softwareVersion', op: 'versionLt', value: '3.0' },
          ],
        },
      ],
    });
}
