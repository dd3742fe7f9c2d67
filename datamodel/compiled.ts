import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CompiledSchema, SCHEMA_FORMAT } from './types.js';

const here = path.dirname(fileURLToPath(import.meta.url));

/** Compiled core schemas shipped with the project (produced by `compile-core.ts` with our importer). */
export const CORE_SCHEMAS = {
  'tr-181-2-19-1-cwmp': path.join(here, 'compiled', 'tr-181-2-19-1-cwmp.json'),
  'tr-181-2-19-1-usp': path.join(here, 'compiled', 'tr-181-2-19-1-usp.json'),
} as const;
export type CoreSchemaName = keyof typeof CORE_SCHEMAS;

/** Compact JSON: no whitespace, no descriptions. */
export function serializeSchema(schema: CompiledSchema): string {
  return JSON.stringify(schema);
}

/**
 * Parses a compiled schema. `verify: true` runs the full zod check (use it for files from outside);
 * our own shipped files only get the cheap format check so that loading stays fast.
 */
export function parseCompiledSchema(text: string, opts: { verify?: boolean } = {}): CompiledSchema {
  const raw: unknown = JSON.parse(text);
  if (opts.verify) return CompiledSchema.parse(raw);
  const s = raw as Partial<CompiledSchema>;
  if (s.format !== SCHEMA_FORMAT || typeof s.params !== 'object' || typeof s.objects !== 'object') {
    throw new Error(`not a compiled schema (expected format ${SCHEMA_FORMAT})`);
  }
  return raw as CompiledSchema;
}

export function loadCompiledSchema(file: string, opts: { verify?: boolean } = {}): CompiledSchema {
  return parseCompiledSchema(readFileSync(file, 'utf8'), opts);
}

export function loadCoreSchema(name: CoreSchemaName): CompiledSchema {
  return loadCompiledSchema(CORE_SCHEMAS[name]);
}

export function saveCompiledSchema(file: string, schema: CompiledSchema): void {
  writeFileSync(file, serializeSchema(schema));
}
