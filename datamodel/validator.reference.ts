/**
 * The validator as it was before the fast path (checkers, path normalisation and validator, verbatim
 * apart from names). Test-only: validator.equivalence.test.ts compares the fast validator against it
 * on randomized corpora, so any change in results (codes, messages, flags) shows up as a failure.
 */
import { isIP, isIPv6 } from 'node:net';
import {
  type ChangeInput,
  type CompiledSchema,
  FAULT_INVALID_NAME,
  FAULT_INVALID_VALUE,
  FAULT_NOT_WRITABLE,
  type ItemResult,
  type ObjectDef,
  type ParamAccess,
  type Range,
  type Size,
  type TypeSpec,
  type ValidationCode,
  type ValidationReport,
} from './types.js';

const MAX_INSTANCE = 4294967295;

/**
 * Concrete (or alias) path → `{i}` schema path, in one pass without regexes. Returns null when an
 * instance position is malformed (leading zero, 0, too large, unterminated alias) or a segment is empty.
 */
function toSchemaPath(p: string): string | null {
  // indexOf jumps segment to segment natively; only instance segments are scanned char by char.
  const len = p.length;
  if (len === 0) return null;
  let s = 0;
  let out = '';
  let copied = 0;
  while (s < len) {
    let e = p.indexOf('.', s);
    if (e < 0) e = len;
    if (e === s) return null;
    const f = p.charCodeAt(s);
    if (f >= 48 && f <= 57) {
      if (f === 48 || e - s > 10) return null;
      for (let k = s + 1; k < e; k++) {
        const c = p.charCodeAt(k);
        if (c < 48 || c > 57) return null;
      }
      if (e - s === 10 && Number(p.slice(s, e)) > MAX_INSTANCE) return null;
      out += `${p.slice(copied, s)}{i}`;
      copied = e;
    } else if (f === 91) {
      if (p.charCodeAt(e - 1) !== 93 || e - s < 3) return null;
      out += `${p.slice(copied, s)}{i}`;
      copied = e;
    }
    s = e + 1;
  }
  return copied === 0 ? p : out + p.slice(copied);
}

/** A failed check: the code and a message naming the constraint (never the value itself). */
interface CheckFailure {
  code: ValidationCode;
  message: string;
}

/** Returns null when the value is valid. Precompiled once per parameter of a schema. */
type Checker = (value: string) => CheckFailure | null;

const U32_MAX = 4294967295;
const I32_MIN = -2147483648;
const I32_MAX = 2147483647;

function allDigits(v: string, from: number): boolean {
  if (from >= v.length) return false;
  for (let i = from; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

/** Compare two digit strings without leading sign as numbers (no BigInt on the hot path). */
function digitsLE(a: string, b: string): boolean {
  const x = a.replace(/^0+(?=\d)/, '');
  if (x.length !== b.length) return x.length < b.length;
  return x <= b;
}

const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})?$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const DECIMAL = /^[+-]?(\d+(\.\d*)?|\.\d+)$/;

/** The primitive's lexical check; returns a message naming the type, or null. */
function primitiveCheck(t: TypeSpec): (v: string) => string | null {
  switch (t.base) {
    case 'string':
      return () => null;
    case 'unsignedInt':
      return (v) =>
        allDigits(v, 0) && v.length <= 10 && Number(v) <= U32_MAX
          ? null
          : 'expected unsignedInt (0..4294967295)';
    case 'int':
      return (v) => {
        const from = v.charCodeAt(0) === 45 ? 1 : 0;
        if (!allDigits(v, from) || v.length > 11) return 'expected int (-2147483648..2147483647)';
        const n = Number(v);
        return n >= I32_MIN && n <= I32_MAX ? null : 'expected int (-2147483648..2147483647)';
      };
    case 'unsignedLong':
      return (v) =>
        allDigits(v, 0) && digitsLE(v, '18446744073709551615')
          ? null
          : 'expected unsignedLong (0..18446744073709551615)';
    case 'long':
      return (v) => {
        const neg = v.charCodeAt(0) === 45;
        const ok =
          allDigits(v, neg ? 1 : 0) &&
          digitsLE(neg ? v.slice(1) : v, neg ? '9223372036854775808' : '9223372036854775807');
        return ok ? null : 'expected long (-9223372036854775808..9223372036854775807)';
      };
    case 'boolean':
      return (v) =>
        v === 'true' || v === 'false' || v === '1' || v === '0'
          ? null
          : 'expected boolean (true, false, 1 or 0)';
    case 'decimal':
      return (v) => (DECIMAL.test(v) ? null : 'expected decimal');
    case 'dateTime':
      return (v) => {
        const m = DATE_TIME.exec(v);
        if (!m) return 'expected dateTime (ISO 8601, e.g. 2024-01-31T12:00:00Z)';
        const mo = Number(m[2]);
        const d = Number(m[3]);
        if (
          mo < 1 ||
          mo > 12 ||
          d < 1 ||
          d > 31 ||
          Number(m[4]) > 23 ||
          Number(m[5]) > 59 ||
          Number(m[6]) > 60
        ) {
          return 'expected dateTime with valid month, day and time fields';
        }
        return null;
      };
    case 'base64':
      return (v) => (v.length % 4 === 0 && BASE64.test(v) ? null : 'expected base64');
    case 'hexBinary':
      return (v) => {
        if (v.length % 2 !== 0) return 'expected hexBinary (even number of hex digits)';
        for (let i = 0; i < v.length; i++) {
          const c = v.charCodeAt(i) | 32;
          if (!((c >= 48 && c <= 57) || (c >= 97 && c <= 102))) return 'expected hexBinary (hex digits only)';
        }
        return null;
      };
  }
}

/** Semantic checks for named TR-106 types whose XML carries no pattern (IPv6 and mixed IP addresses). */
function namedCheck(t: TypeSpec): ((v: string) => string | null) | undefined {
  const names = t.named ?? [];
  if (t.patterns && t.patterns.length > 0) return undefined;
  if (names.includes('IPv6Address')) return (v) => (v === '' || isIPv6(v) ? null : 'expected IPv6Address');
  if (names.includes('IPv6Prefix')) {
    return (v) => {
      if (v === '') return null;
      const slash = v.indexOf('/');
      const len = Number(v.slice(slash + 1));
      return slash > 0 && isIPv6(v.slice(0, slash)) && Number.isInteger(len) && len >= 0 && len <= 128
        ? null
        : 'expected IPv6Prefix (address/length)';
    };
  }
  if (names.includes('IPAddress'))
    return (v) => (v === '' || isIP(v) !== 0 ? null : 'expected IPAddress (IPv4 or IPv6)');
  return undefined;
}

function rangeText(r: Range): string {
  const lo = r.min ?? '-inf';
  const hi = r.max ?? '+inf';
  return `[${lo}..${hi}]${r.step ? ` step ${r.step}` : ''}`;
}
function sizeText(s: Size): string {
  return `[${s.min ?? 0}..${s.max ?? 'unbounded'}]`;
}

function byteLength(t: TypeSpec, v: string): number {
  if (t.base === 'hexBinary') return v.length / 2;
  if (t.base === 'base64') {
    const pad = v.endsWith('==') ? 2 : v.endsWith('=') ? 1 : 0;
    return (v.length / 4) * 3 - pad;
  }
  return v.length;
}

/** Patterns are XML Schema regexes; a few constructs JS lacks are rewritten, uncompilable ones dropped. */
function compilePatterns(patterns: string[]): RegExp | undefined {
  const ok: string[] = [];
  for (const p of patterns) {
    const src = p.replace(/\\i/g, '[A-Za-z_:]').replace(/\\c/g, '[-.0-9A-Za-z_:]');
    try {
      new RegExp(src, 'u');
      ok.push(src);
    } catch {
      try {
        new RegExp(src);
        ok.push(src);
      } catch {
        // unparseable in JS: skipping it can only make validation more lenient, never reject a valid value
        return undefined;
      }
    }
  }
  if (ok.length === 0) return undefined;
  return new RegExp(`^(?:${ok.map((s) => `(?:${s})`).join('|')})$`);
}

function itemChecker(t: TypeSpec): Checker {
  const prim = primitiveCheck(t);
  const named = namedCheck(t);
  const enums = t.enums && t.enums.length > 0 ? new Set(t.enums) : undefined;
  const enumText = enums
    ? `one of ${[...enums].slice(0, 12).join(', ')}${enums.size > 12 ? ', ...' : ''}`
    : '';
  const readOnlyEnums = t.enumsReadOnly && t.enumsReadOnly.length > 0 ? new Set(t.enumsReadOnly) : undefined;
  const pattern = t.patterns && t.patterns.length > 0 ? compilePatterns(t.patterns) : undefined;
  const patternText = t.patterns?.map((p) => (p === '' ? '<empty>' : p)).join(' | ') ?? '';
  const numeric =
    t.base !== 'string' &&
    t.base !== 'boolean' &&
    t.base !== 'dateTime' &&
    t.base !== 'base64' &&
    t.base !== 'hexBinary';
  const ranges = numeric && t.ranges && t.ranges.length > 0 ? t.ranges : undefined;
  const sizes = t.sizes && t.sizes.length > 0 ? t.sizes : undefined;
  const typeName = t.named?.[0] ?? t.base;
  return (v) => {
    const p = prim(v);
    if (p !== null)
      return { code: 'wrong_type', message: `${p}${typeName !== t.base ? ` for ${typeName}` : ''}` };
    if (named) {
      const n = named(v);
      if (n !== null) return { code: 'wrong_type', message: n };
    }
    if (enums && !enums.has(v))
      return { code: 'enumeration', message: `value not in enumeration: expected ${enumText}` };
    if (readOnlyEnums?.has(v)) {
      return {
        code: 'enumeration',
        message: 'value is a readOnly enumeration value: only the device reports it',
      };
    }
    if (pattern && !pattern.test(v))
      return { code: 'pattern', message: `value does not match pattern ${patternText}` };
    if (ranges) {
      const n = Number(v);
      let inside = false;
      for (const r of ranges) {
        if ((r.min === undefined || n >= r.min) && (r.max === undefined || n <= r.max)) {
          if (r.step === undefined || (n - (r.min ?? 0)) % r.step === 0) {
            inside = true;
            break;
          }
        }
      }
      if (!inside)
        return { code: 'range', message: `value outside range ${ranges.map(rangeText).join(' or ')}` };
    }
    if (sizes) {
      const len = byteLength(t, v);
      let inside = false;
      for (const s of sizes) {
        if ((s.min === undefined || len >= s.min) && (s.max === undefined || len <= s.max)) {
          inside = true;
          break;
        }
      }
      if (!inside) {
        const unit = t.base === 'hexBinary' || t.base === 'base64' ? 'bytes' : 'characters';
        return {
          code: 'size',
          message: `length ${len} outside size ${sizes.map(sizeText).join(' or ')} ${unit}`,
        };
      }
    }
    return null;
  };
}

/** Builds the checker for a parameter type; lists check their own size and item count, then each item. */
export function referenceChecker(t: TypeSpec): Checker {
  if (!t.list) return itemChecker(t);
  const item = itemChecker(t);
  const { minItems, maxItems, sizes } = t.list;
  return (v) => {
    if (sizes) {
      let inside = false;
      for (const s of sizes)
        if ((s.min === undefined || v.length >= s.min) && (s.max === undefined || v.length <= s.max))
          inside = true;
      if (!inside)
        return {
          code: 'size',
          message: `list length ${v.length} outside size ${sizes.map(sizeText).join(' or ')} characters`,
        };
    }
    const items = v === '' ? [] : v.split(',');
    if (
      (minItems !== undefined && items.length < minItems) ||
      (maxItems !== undefined && items.length > maxItems)
    ) {
      return {
        code: 'list_items',
        message: `list has ${items.length} items, expected ${minItems ?? 0}..${maxItems ?? 'unbounded'}`,
      };
    }
    for (let i = 0; i < items.length; i++) {
      const f = item((items[i] as string).trim());
      if (f) return { code: f.code, message: `list item ${i + 1}: ${f.message}` };
    }
    return null;
  };
}

interface ParamEntry {
  schemaPath: string;
  access: ParamAccess;
  secured: boolean;
  deleted: boolean;
  check: Checker;
}

interface ValidateOptions {
  /** Current value on the device, for writeOnceReadOnly parameters (already set ⇒ not writable). */
  currentValue?: (path: string) => string | undefined;
}

const FAULT: Record<ValidationCode, number | null> = {
  ok: null,
  unknown_path: FAULT_INVALID_NAME,
  bad_instance_number: FAULT_INVALID_NAME,
  not_a_table: FAULT_INVALID_NAME,
  not_writable: FAULT_NOT_WRITABLE,
  write_once: FAULT_NOT_WRITABLE,
  wrong_type: FAULT_INVALID_VALUE,
  range: FAULT_INVALID_VALUE,
  size: FAULT_INVALID_VALUE,
  list_items: FAULT_INVALID_VALUE,
  enumeration: FAULT_INVALID_VALUE,
  pattern: FAULT_INVALID_VALUE,
  no_schema: null,
  fallback_schema: null,
};

function badPath(index: number, path: string): ItemResult {
  return fail(
    index,
    path,
    'bad_instance_number',
    'bad path: instance numbers are 1..4294967295 without leading zeros, and no segment may be empty',
    false,
  );
}

function fail(
  index: number,
  path: string,
  code: ValidationCode,
  message: string,
  secured: boolean,
  schemaPath?: string,
): ItemResult {
  return { index, path, ok: false, code, fault: FAULT[code], message, secured, schemaPath };
}

/**
 * A schema prepared for validation: one map keyed by `{i}` schema path, one precompiled checker
 * closure per parameter. Built once per schema; each validate call computes every result afresh.
 */
export class ReferenceValidator {
  private readonly params = new Map<string, ParamEntry>();
  private readonly objects = new Map<string, ObjectDef>();

  constructor(readonly schema: CompiledSchema) {
    for (const [p, o] of Object.entries(schema.objects)) this.objects.set(p, o);
    for (const [p, d] of Object.entries(schema.params)) {
      this.params.set(p, {
        schemaPath: p,
        access: d.access,
        secured: d.secured === true,
        deleted:
          d.status === 'deleted' || schema.objects[p.slice(0, p.lastIndexOf('.') + 1)]?.status === 'deleted',
        check: referenceChecker(d.t),
      });
    }
  }

  /** Is a (concrete or schema) parameter path secured? Unknown paths are not. */
  isSecured(path: string): boolean {
    const sp = toSchemaPath(path);
    return sp !== null && this.params.get(sp)?.secured === true;
  }

  validate(items: readonly ChangeInput[], opts: ValidateOptions = {}): ValidationReport {
    const results: ItemResult[] = new Array(items.length);
    let invalid = 0;
    for (let i = 0; i < items.length; i++) {
      const r = this.one(items[i] as ChangeInput, i, opts);
      if (!r.ok) invalid++;
      results[i] = r;
    }
    return { ok: invalid === 0, schemaMatch: 'direct', results, invalid };
  }

  private one(item: ChangeInput, index: number, opts: ValidateOptions): ItemResult {
    const path = item.path;
    if (item.op === 'add' || item.op === 'delete') return this.objectOp(item.op, path, index);
    const sp0 = toSchemaPath(path);
    if (sp0 === null) return badPath(index, path);
    const e = this.params.get(sp0);
    if (e === undefined || e.deleted) {
      const sp = sp0;
      const what =
        this.objects.has(sp) || this.objects.has(`${sp}.`)
          ? 'is an object, not a parameter'
          : 'is not in the data model';
      return fail(
        index,
        path,
        'unknown_path',
        `${sp} ${e?.deleted ? 'is deleted in this data model' : what}`,
        false,
      );
    }
    const sp = e.schemaPath;
    if (e.access === 'readOnly') return fail(index, path, 'not_writable', `${sp} is readOnly`, e.secured, sp);
    if (e.access === 'writeOnceReadOnly' && opts.currentValue) {
      const cur = opts.currentValue(path);
      if (cur !== undefined && cur !== '') {
        return fail(index, path, 'write_once', `${sp} is writeOnceReadOnly and already set`, e.secured, sp);
      }
    }
    const v = item.value;
    const f = e.check(typeof v === 'string' ? v : String(v));
    if (f !== null) return fail(index, path, f.code, `${sp}: ${f.message}`, e.secured, sp);
    return {
      index,
      path,
      ok: true,
      code: 'ok',
      fault: null,
      message: 'ok',
      secured: e.secured,
      schemaPath: sp,
    };
  }

  private objectOp(op: 'add' | 'delete', path: string, index: number): ItemResult {
    const sp = toSchemaPath(path);
    if (sp === null) return badPath(index, path);
    if (!path.endsWith('.'))
      return fail(index, path, 'unknown_path', `${op} needs an object path ending in "."`, false);
    // AddObject names the table ("X.Table."), DeleteObject an instance ("X.Table.3.").
    const table = op === 'add' ? `${sp}{i}.` : sp;
    const o = this.objects.get(table);
    if (o === undefined) {
      if (op === 'delete' && this.objects.has(`${sp}{i}.`)) {
        return fail(
          index,
          path,
          'not_a_table',
          `delete names an instance (${sp}<n>.), not the table`,
          false,
          `${sp}{i}.`,
        );
      }
      const known = this.objects.has(sp);
      return fail(
        index,
        path,
        known ? 'not_a_table' : 'unknown_path',
        known ? `${sp} is not a multi-instance table` : `${table} is not in the data model`,
        false,
      );
    }
    if (!o.table || (op === 'delete' && !sp.endsWith('{i}.'))) {
      return fail(
        index,
        path,
        'not_a_table',
        `${table} is not a multi-instance table instance`,
        false,
        table,
      );
    }
    if (o.access !== 'readWrite') {
      return fail(
        index,
        path,
        'not_writable',
        `${table} is readOnly: instances cannot be added or deleted`,
        false,
        table,
      );
    }
    return {
      index,
      path,
      ok: true,
      code: 'ok',
      fault: null,
      message: 'ok',
      secured: false,
      schemaPath: table,
    };
  }
}
