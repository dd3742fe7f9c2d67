import { type Checker, compileChecker } from './checkers.js';
import { toSchemaPath } from './paths.js';
import {
  type ChangeInput,
  type CompiledSchema,
  FAULT_INVALID_NAME,
  FAULT_INVALID_VALUE,
  FAULT_NOT_WRITABLE,
  type ItemResult,
  type ObjectDef,
  type ParamAccess,
  type ValidationCode,
  type ValidationReport,
} from './types.js';

interface ParamEntry {
  schemaPath: string;
  access: ParamAccess;
  secured: boolean;
  deleted: boolean;
  check: Checker;
}

export interface ValidateOptions {
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

export function faultFor(code: ValidationCode): number | null {
  return FAULT[code];
}

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

// Scratch for the path scan: start and end offsets of each instance segment of the path being looked
// up (validate is synchronous, so one module-level buffer serves every validator).
const MAX_SCAN_INSTANCES = 64;
const instStart = new Int32Array(MAX_SCAN_INSTANCES);
const instEnd = new Int32Array(MAX_SCAN_INSTANCES);
let instCount = 0;

// scanPath results below 0
const BAD_PATH = -1;
const TOO_DEEP = -2;
// find results below 0
const FIND_MISS = -1;
const FIND_BAD = -2;

// flags per parameter
const READ_ONLY = 1;
const WRITE_ONCE = 2;
const SECURED = 4;
const DELETED = 8;

function mix(h: number, c: number): number {
  return Math.imul(h ^ c, 16777619);
}
const FNV_OFFSET = 0x811c9dc5 | 0;
const INSTANCE_TOKEN = 0x7b697d; // "{i}"

/**
 * Hash of toSchemaPath(p) computed in place — no normalised string is built — recording where the
 * instance segments (numbers, `[alias]`, a literal `{i}`) are. Returns BAD_PATH exactly when
 * toSchemaPath(p) is null, TOO_DEEP past MAX_SCAN_INSTANCES instance segments, else a hash >= 0.
 * The hash only has to tell candidates apart (a match is always verified char by char), so a
 * literal segment contributes its length and three of its chars: native indexOf jumps from dot to
 * dot and only instance numbers are read char by char.
 */
function scanPath(p: string): number {
  const len = p.length;
  if (len === 0) return BAD_PATH;
  let h = FNV_OFFSET;
  let n = 0;
  let s = 0;
  for (;;) {
    let e = p.indexOf('.', s);
    if (e < 0) e = len;
    const seg = e - s;
    if (seg === 0) return BAD_PATH;
    const f = p.charCodeAt(s);
    if (f >= 48 && f <= 57) {
      if (f === 48 || seg > 10) return BAD_PATH;
      for (let j = s + 1; j < e; j++) {
        const c = p.charCodeAt(j);
        if (c < 48 || c > 57) return BAD_PATH;
      }
      if (seg === 10 && Number(p.slice(s, e)) > 4294967295) return BAD_PATH;
    } else if (f === 91) {
      if (p.charCodeAt(e - 1) !== 93 || seg < 3) return BAD_PATH;
    } else if (seg !== 3 || f !== 123 || p.charCodeAt(s + 1) !== 105 || p.charCodeAt(s + 2) !== 125) {
      // a literal segment (a literal "{i}" stays as it is in the schema path: it counts as an instance)
      h = mix(mix(h, (seg << 16) | f), (p.charCodeAt(e - 1) << 16) | p.charCodeAt(s + (seg >> 1)));
      if (e >= len) break;
      s = e + 1;
      if (s >= len) break;
      continue;
    }
    if (n === MAX_SCAN_INSTANCES) return TOO_DEEP;
    instStart[n] = s;
    instEnd[n++] = e;
    h = mix(h, INSTANCE_TOKEN);
    if (e >= len) break;
    s = e + 1;
    if (s >= len) break;
  }
  instCount = n;
  // "A.B" and "A.B." have the same segments
  return mix(h, p.charCodeAt(len - 1) === 46 ? 1 : 2) & 0x3fffffff;
}

/**
 * Is the last scanned path p, with each recorded instance segment read as "{i}", exactly the schema
 * path sp? One char loop over both (startsWith with a position is a slow builtin call here).
 */
function scannedMatches(p: string, sp: string): boolean {
  const n = instCount;
  let a = 0;
  let b = 0;
  for (let k = 0; k < n; k++) {
    const s = instStart[k] as number;
    if (b + (s - a) + 3 > sp.length) return false;
    for (; a < s; a++, b++) if (p.charCodeAt(a) !== sp.charCodeAt(b)) return false;
    if (sp.charCodeAt(b) !== 123 || sp.charCodeAt(b + 1) !== 105 || sp.charCodeAt(b + 2) !== 125)
      return false;
    b += 3;
    a = instEnd[k] as number;
  }
  if (p.length - a !== sp.length - b) return false;
  for (; a < p.length; a++, b++) if (p.charCodeAt(a) !== sp.charCodeAt(b)) return false;
  return true;
}

/**
 * A schema prepared for validation: one precompiled checker per parameter, and an open-addressing
 * table keyed by the hash of the `{i}` schema path. A concrete path is hashed as if normalised and
 * checked piece by piece against the candidate, so no string is built per item. Built once per schema;
 * each validate call computes every result afresh (nothing is kept between calls).
 */
export class SchemaValidator {
  private readonly params = new Map<string, ParamEntry>();
  private readonly objects = new Map<string, ObjectDef>();
  /** object paths with and without their trailing ".": one lookup answers "is sp an object?" */
  private readonly objectNames = new Set<string>();
  // Per reachable parameter k, in parallel arrays: a probe and a check touch few, compact objects.
  private readonly entries: ParamEntry[] = [];
  private readonly paths: string[] = [];
  private readonly checks: Checker[] = [];
  private readonly flags: Uint8Array;
  /** pairs (hash, k + 1; 0 = empty slot), side by side so a probe touches one cache line */
  private readonly slots: Int32Array;
  private readonly mask: number;

  constructor(readonly schema: CompiledSchema) {
    for (const [p, o] of Object.entries(schema.objects)) {
      this.objects.set(p, o);
      this.objectNames.add(p);
      if (p.endsWith('.')) this.objectNames.add(p.slice(0, -1));
    }
    for (const [p, d] of Object.entries(schema.params)) {
      const e: ParamEntry = {
        schemaPath: p,
        access: d.access,
        secured: d.secured === true,
        deleted:
          d.status === 'deleted' || schema.objects[p.slice(0, p.lastIndexOf('.') + 1)]?.status === 'deleted',
        check: compileChecker(d.t),
      };
      this.params.set(p, e);
      // a key that is not its own normal form can never be the normal form of a concrete path
      if (toSchemaPath(p) === p) this.entries.push(e);
    }
    const count = this.entries.length;
    this.flags = new Uint8Array(count);
    let size = 16;
    while (size < count * 4) size *= 2;
    this.mask = size - 1;
    this.slots = new Int32Array(size * 2);
    for (let k = 0; k < count; k++) {
      const e = this.entries[k] as ParamEntry;
      this.paths.push(e.schemaPath);
      this.checks.push(e.check);
      this.flags[k] =
        (e.access === 'readOnly' ? READ_ONLY : e.access === 'writeOnceReadOnly' ? WRITE_ONCE : 0) |
        (e.secured ? SECURED : 0) |
        (e.deleted ? DELETED : 0);
      const h = scanPath(e.schemaPath);
      let at = h & this.mask;
      while (this.slots[2 * at + 1] !== 0) at = (at + 1) & this.mask;
      this.slots[2 * at] = h;
      this.slots[2 * at + 1] = k + 1;
    }
  }

  /** The parameter whose schema path is toSchemaPath(path): its index k, FIND_MISS or FIND_BAD. */
  private find(path: string): number {
    const h = scanPath(path);
    if (h < 0) return h === BAD_PATH ? FIND_BAD : this.findSlow(path);
    const mask = this.mask;
    const slots = this.slots;
    for (let at = h & mask; ; at = (at + 1) & mask) {
      const k = (slots[2 * at + 1] as number) - 1;
      if (k < 0) return FIND_MISS;
      if (slots[2 * at] === h && scannedMatches(path, this.paths[k] as string)) return k;
    }
  }

  /** More instance segments than the scan records: normalise the plain way. */
  private findSlow(path: string): number {
    const sp = toSchemaPath(path);
    if (sp === null) return FIND_BAD;
    const e = this.params.get(sp);
    return e === undefined ? FIND_MISS : this.entries.indexOf(e);
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
    const k = this.find(path);
    if (k < 0) return k === FIND_BAD ? badPath(index, path) : this.unknown(index, path, false);
    const fl = this.flags[k] as number;
    if ((fl & DELETED) !== 0) return this.unknown(index, path, true);
    const sp = this.paths[k] as string;
    const secured = (fl & SECURED) !== 0;
    if ((fl & READ_ONLY) !== 0) return fail(index, path, 'not_writable', `${sp} is readOnly`, secured, sp);
    if ((fl & WRITE_ONCE) !== 0 && opts.currentValue) {
      const cur = opts.currentValue(path);
      if (cur !== undefined && cur !== '') {
        return fail(index, path, 'write_once', `${sp} is writeOnceReadOnly and already set`, secured, sp);
      }
    }
    const v = item.value;
    const f = (this.checks[k] as Checker)(typeof v === 'string' ? v : String(v));
    if (f !== null) return fail(index, path, f.code, `${sp}: ${f.message}`, secured, sp);
    return { index, path, ok: true, code: 'ok', fault: null, message: 'ok', secured, schemaPath: sp };
  }

  /** Unknown or deleted parameter: the rare case, so the normalised string is built here. */
  private unknown(index: number, path: string, deleted: boolean): ItemResult {
    const sp = toSchemaPath(path) as string;
    const what = deleted
      ? 'is deleted in this data model'
      : this.objectNames.has(sp)
        ? 'is an object, not a parameter'
        : 'is not in the data model';
    return fail(index, path, 'unknown_path', `${sp} ${what}`, false);
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

const prepared = new WeakMap<CompiledSchema, SchemaValidator>();

/** Prepares (once per schema object) the validator for a schema. */
export function validatorFor(schema: CompiledSchema): SchemaValidator {
  let v = prepared.get(schema);
  if (!v) {
    v = new SchemaValidator(schema);
    prepared.set(schema, v);
  }
  return v;
}

/** Validates change items against one schema (no registry involved: schemaMatch "direct"). */
export function validate(
  schema: CompiledSchema,
  items: readonly ChangeInput[],
  opts?: ValidateOptions,
): ValidationReport {
  return validatorFor(schema).validate(items, opts);
}
