import { isIP, isIPv6 } from 'node:net';
import type { Range, Size, TypeSpec, ValidationCode } from './types.js';

/** A failed check: the code and a message naming the constraint (never the value itself). */
export interface CheckFailure {
  code: ValidationCode;
  message: string;
}

/** Returns null when the value is valid. Precompiled once per parameter of a schema. */
export type Checker = (value: string) => CheckFailure | null;

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
  // callers pass digits only; drop leading zeros but keep the last digit
  let z = 0;
  while (z < a.length - 1 && a.charCodeAt(z) === 48) z++;
  const n = a.length - z;
  if (n !== b.length) return n < b.length;
  return (z === 0 ? a : a.slice(z)) <= b;
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
export function compilePatterns(patterns: string[]): RegExp | undefined {
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

function genericItemChecker(t: TypeSpec): Checker {
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

/** A failure whose message does not depend on the value: built once per parameter, never mutated. */
function fixed(code: ValidationCode, message: string): CheckFailure {
  return Object.freeze({ code, message });
}

/**
 * ASCII digits from `from` to the end → their value, or -1 when there are none, more than
 * `maxDigits`, or a non-digit (callers still compare the value with their type's bounds).
 */
function parseDigits(v: string, from: number, maxDigits: number): number {
  const len = v.length;
  if (from >= len || len - from > maxDigits) return -1;
  let n = 0;
  for (let i = from; i < len; i++) {
    const d = v.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}

function inRanges(ranges: readonly Range[], n: number): boolean {
  for (let i = 0; i < ranges.length; i++) {
    const r = ranges[i] as Range;
    if ((r.min === undefined || n >= r.min) && (r.max === undefined || n <= r.max)) {
      if (r.step === undefined || (n - (r.min ?? 0)) % r.step === 0) return true;
    }
  }
  return false;
}

/**
 * Per-shape checkers for the common parameter types (plain strings with a size, enumerations,
 * booleans, int/unsignedInt with ranges): one small closure each, failure objects prebuilt where the
 * message is fixed. Same codes and messages as the generic checker (validator.equivalence.test.ts
 * compares them); any other shape gets the generic one.
 */
function specialisedItemChecker(t: TypeSpec): Checker | undefined {
  if (namedCheck(t) !== undefined) return undefined;
  if (t.patterns && t.patterns.length > 0) return undefined;
  const enums = t.enums && t.enums.length > 0 ? t.enums : undefined;
  const readOnlyEnums = t.enumsReadOnly && t.enumsReadOnly.length > 0 ? new Set(t.enumsReadOnly) : undefined;
  const sizes = t.sizes && t.sizes.length > 0 ? t.sizes : undefined;
  const typeName = t.named?.[0] ?? t.base;
  const forType = typeName !== t.base ? ` for ${typeName}` : '';
  const roFail = fixed('enumeration', 'value is a readOnly enumeration value: only the device reports it');
  switch (t.base) {
    case 'string': {
      if (enums) {
        if (sizes) return undefined;
        const set = new Set(enums);
        const enumFail = fixed(
          'enumeration',
          `value not in enumeration: expected one of ${[...set].slice(0, 12).join(', ')}${set.size > 12 ? ', ...' : ''}`,
        );
        if (readOnlyEnums) return (v) => (!set.has(v) ? enumFail : readOnlyEnums.has(v) ? roFail : null);
        return (v) => (set.has(v) ? null : enumFail);
      }
      if (readOnlyEnums) return undefined;
      if (!sizes) return () => null;
      if (sizes.length !== 1) return undefined;
      const lo = (sizes[0] as Size).min ?? 0;
      const hi = (sizes[0] as Size).max ?? Number.POSITIVE_INFINITY;
      const text = ` outside size ${sizeText(sizes[0] as Size)} characters`;
      return (v) => {
        const len = v.length;
        return len >= lo && len <= hi ? null : { code: 'size', message: `length ${len}${text}` };
      };
    }
    case 'boolean': {
      if (enums || readOnlyEnums || sizes) return undefined;
      const typeFail = fixed('wrong_type', `expected boolean (true, false, 1 or 0)${forType}`);
      return (v) => (v === 'true' || v === 'false' || v === '1' || v === '0' ? null : typeFail);
    }
    case 'unsignedInt':
    case 'int': {
      if (enums || readOnlyEnums || sizes) return undefined;
      const signed = t.base === 'int';
      const typeFail = fixed(
        'wrong_type',
        `${signed ? 'expected int (-2147483648..2147483647)' : 'expected unsignedInt (0..4294967295)'}${forType}`,
      );
      const ranges = t.ranges && t.ranges.length > 0 ? t.ranges : undefined;
      const rangeFail = ranges
        ? fixed('range', `value outside range ${ranges.map(rangeText).join(' or ')}`)
        : undefined;
      // one range without step: two compares (absent bounds become infinities)
      const one =
        ranges?.length === 1 && (ranges[0] as Range).step === undefined ? (ranges[0] as Range) : undefined;
      const lo = one?.min ?? Number.NEGATIVE_INFINITY;
      const hi = one?.max ?? Number.POSITIVE_INFINITY;
      if (!signed) {
        return (v) => {
          const n = parseDigits(v, 0, 10);
          if (n < 0 || n > U32_MAX) return typeFail;
          if (ranges === undefined) return null;
          if (one !== undefined) return n >= lo && n <= hi ? null : (rangeFail as CheckFailure);
          return inRanges(ranges, n) ? null : (rangeFail as CheckFailure);
        };
      }
      return (v) => {
        const neg = v.charCodeAt(0) === 45;
        // the generic check allows 11 characters in all, so 11 digits (leading zeros) without a sign
        const m = neg ? parseDigits(v, 1, 10) : parseDigits(v, 0, 11);
        if (m < 0) return typeFail;
        const n = neg ? -m : m;
        if (n < I32_MIN || n > I32_MAX) return typeFail;
        if (ranges === undefined) return null;
        if (one !== undefined) return n >= lo && n <= hi ? null : (rangeFail as CheckFailure);
        return inRanges(ranges, n) ? null : (rangeFail as CheckFailure);
      };
    }
    default:
      return undefined;
  }
}

function itemChecker(t: TypeSpec): Checker {
  return specialisedItemChecker(t) ?? genericItemChecker(t);
}

/** Builds the checker for a parameter type; lists check their own size and item count, then each item. */
export function compileChecker(t: TypeSpec): Checker {
  if (!t.list) return itemChecker(t);
  const item = itemChecker(t);
  const { minItems, maxItems, sizes } = t.list;
  const lo = minItems ?? 0;
  const hi = maxItems ?? Number.POSITIVE_INFINITY;
  const itemsText = `expected ${minItems ?? 0}..${maxItems ?? 'unbounded'}`;
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
    // count items before splitting: an over-long list fails without building the array
    let count = 0;
    if (v !== '') {
      count = 1;
      for (let at = v.indexOf(','); at >= 0; at = v.indexOf(',', at + 1)) count++;
    }
    if (count < lo || count > hi)
      return { code: 'list_items', message: `list has ${count} items, ${itemsText}` };
    if (count === 0) return null;
    const items = v.split(',');
    for (let i = 0; i < items.length; i++) {
      const f = item((items[i] as string).trim());
      if (f) return { code: f.code, message: `list item ${i + 1}: ${f.message}` };
    }
    return null;
  };
}
