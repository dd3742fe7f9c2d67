import { PrimitiveType, type Range, type Size, type TypeSpec } from './types.js';
import type { XmlElement } from './xml.js';

const PRIMITIVES = new Set<string>(PrimitiveType.options);

export function isPrimitive(tag: string): tag is PrimitiveType {
  return PRIMITIVES.has(tag);
}

function num(v: string | undefined): number | undefined {
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  return Number.isFinite(n) ? n : undefined;
}

/** Facets written directly inside `el` (a primitive element, a dataType definition or reference). */
export interface Facets {
  ranges?: Range[];
  sizes?: Size[];
  enums?: string[];
  enumsReadOnly?: string[];
  patterns?: string[];
  units?: string;
  pathRef?: TypeSpec['pathRef'];
  enumRef?: TypeSpec['enumRef'];
}

export function readFacets(el: XmlElement): Facets {
  const f: Facets = {};
  for (const c of el.children) {
    const a = c.attrs;
    switch (c.tag) {
      case 'range': {
        const r: Range = {};
        const min = num(a.minInclusive);
        const max = num(a.maxInclusive);
        const step = num(a.step);
        if (min !== undefined) r.min = min;
        if (max !== undefined) r.max = max;
        if (step !== undefined && step !== 1) r.step = step;
        f.ranges = [...(f.ranges ?? []), r];
        break;
      }
      case 'size': {
        const s: Size = {};
        const min = num(a.minLength);
        const max = num(a.maxLength);
        if (min !== undefined) s.min = min;
        if (max !== undefined) s.max = max;
        f.sizes = [...(f.sizes ?? []), s];
        break;
      }
      case 'enumeration':
        if (a.value !== undefined) f.enums = [...(f.enums ?? []), a.value];
        if (a.value !== undefined && a.access === 'readOnly')
          f.enumsReadOnly = [...(f.enumsReadOnly ?? []), a.value];
        break;
      case 'pattern':
        if (a.value !== undefined) f.patterns = [...(f.patterns ?? []), a.value];
        break;
      case 'units':
        if (a.value !== undefined) f.units = a.value;
        break;
      case 'pathRef': {
        const p: NonNullable<TypeSpec['pathRef']> = {};
        if (a.targetParent) p.targetParent = a.targetParent;
        if (a.refType) p.refType = a.refType;
        if (a.targetType) p.targetType = a.targetType;
        f.pathRef = p;
        break;
      }
      case 'enumerationRef':
        if (a.targetParam) {
          f.enumRef = { targetParam: a.targetParam };
          if (a.nullValue !== undefined) f.enumRef.nullValue = a.nullValue;
        }
        break;
      default:
        break;
    }
  }
  return f;
}

/** Derived facets restrict the base: a facet kind given again replaces the inherited one. */
export function applyFacets(t: TypeSpec, f: Facets): TypeSpec {
  const out: TypeSpec = { ...t };
  if (f.ranges) out.ranges = f.ranges;
  if (f.sizes) out.sizes = f.sizes;
  if (f.enums) {
    out.enums = f.enums;
    if (f.enumsReadOnly) out.enumsReadOnly = f.enumsReadOnly;
    else delete out.enumsReadOnly;
  }
  if (f.patterns) out.patterns = f.patterns;
  if (f.units !== undefined) out.units = f.units;
  if (f.pathRef) out.pathRef = f.pathRef;
  if (f.enumRef) out.enumRef = f.enumRef;
  return out;
}

/** A `parameter base=` modification: enumerations and patterns are added, other facets replace. */
export function mergeModification(old: TypeSpec, next: TypeSpec): TypeSpec {
  if (old.base !== next.base || (next.named?.[0] ?? '') !== (old.named?.[0] ?? '')) return next;
  const out: TypeSpec = { ...old, ...next };
  if (old.enums && next.enums) out.enums = [...new Set([...old.enums, ...next.enums])];
  if (old.enumsReadOnly || next.enumsReadOnly) {
    out.enumsReadOnly = [...new Set([...(old.enumsReadOnly ?? []), ...(next.enumsReadOnly ?? [])])];
  }
  if (old.patterns && next.patterns) out.patterns = [...new Set([...old.patterns, ...next.patterns])];
  if (old.list && next.list) out.list = { ...old.list, ...next.list };
  return out;
}
