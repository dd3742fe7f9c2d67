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

/**
 * A schema prepared for validation: one map keyed by `{i}` schema path, one precompiled checker
 * closure per parameter. Built once per schema; each validate call computes every result afresh.
 */
export class SchemaValidator {
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
        check: compileChecker(d.t),
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
