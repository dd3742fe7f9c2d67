import { CORE_SCHEMAS, type CoreSchemaName, loadCoreSchema } from '../datamodel/compiled.js';
import { toSchemaPath } from '../datamodel/paths.js';
import { NUMERIC_TYPES, type ParamType } from './parameters.js';

/**
 * What the selector needs to know about parameter paths: whether a path exists in any known TR-181
 * schema and its value type. Injected so that the selector does not load schemas itself; build one from
 * compiled datamodel schemas with `catalogFromSchemas`.
 */
export interface ParameterCatalog {
  /** The primitive type of a concrete (instance-numbered) path, or undefined when no schema knows it. */
  typeOf(path: string): ParamType | undefined;
}

/** The structural part of a compiled datamodel schema this module reads. */
export interface SchemaLike {
  params: Record<string, { t: { base: string } }>;
}

/**
 * A catalog over several schemas (one per vendor/model/firmware). When schemas disagree on a path's type,
 * numeric types merge to "decimal" and anything else falls back to "string", which keeps every operator
 * the stored text supports.
 */
export function catalogFromSchemas(schemas: readonly SchemaLike[]): ParameterCatalog {
  const types = new Map<string, ParamType>();
  for (const s of schemas) {
    for (const [p, def] of Object.entries(s.params)) {
      const t = def.t.base as ParamType;
      const prev = types.get(p);
      if (prev === undefined || prev === t) types.set(p, t);
      else types.set(p, NUMERIC_TYPES.has(prev) && NUMERIC_TYPES.has(t) ? 'decimal' : 'string');
    }
  }
  return {
    typeOf(path) {
      // Alias and search forms ([cpe-1], [Enable==true]) address instances only USP can resolve; a
      // stored last value is keyed by its instance number, so those are not selector paths.
      if (path.includes('[') || path.includes('*')) return undefined;
      const sp = toSchemaPath(path);
      return sp === null ? undefined : types.get(sp);
    },
  };
}

/** A catalog from an explicit map of schema paths to types (tests, fixtures). */
export function catalogFromTypes(types: Record<string, ParamType>): ParameterCatalog {
  return catalogFromSchemas([
    { params: Object.fromEntries(Object.entries(types).map(([p, t]) => [p, { t: { base: t } }])) },
  ]);
}

let core: ParameterCatalog | undefined;

/** The catalog of the shipped core TR-181 schemas (CWMP and USP), loaded once. */
export function coreCatalog(): ParameterCatalog {
  core ??= catalogFromSchemas(Object.keys(CORE_SCHEMAS).map((n) => loadCoreSchema(n as CoreSchemaName)));
  return core;
}
