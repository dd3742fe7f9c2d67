import { z } from 'zod';
import { toSchemaPath } from './paths.js';
import {
  type CommandDef,
  type CompiledSchema,
  type EventDef,
  type ObjectDef,
  type ParamDef,
  type PrimitiveType,
  SCHEMA_FORMAT,
} from './types.js';

/** One row of a CWMP GetParameterNamesResponse (ParameterInfoStruct). */
export const ParameterInfo = z.object({ name: z.string().min(1), writable: z.boolean() });
export type ParameterInfo = z.infer<typeof ParameterInfo>;

function parentOf(p: string): string {
  const q = p.endsWith('.') ? p.slice(0, -1) : p;
  return q.slice(0, q.lastIndexOf('.') + 1);
}

function rootOf(paths: string[]): string {
  const first = paths[0] ?? '';
  return first.slice(0, first.indexOf('.') + 1);
}

/**
 * Builds a schema from a GetParameterNames result (NextLevel=false over the root). Instance numbers
 * become `{i}`; a writable table means AddObject/DeleteObject are allowed. Types come from `reference`
 * (e.g. the standard model) where it has the path; elsewhere the type is an unconstrained string marked
 * `inferred`, so values are still checked for path and writability.
 */
export function schemaFromParameterNames(
  rows: readonly ParameterInfo[],
  opts: { model?: string; reference?: CompiledSchema } = {},
): CompiledSchema {
  const objects: Record<string, ObjectDef> = {};
  const params: Record<string, ParamDef> = {};
  const bad: string[] = [];
  for (const row of rows) {
    const sp = toSchemaPath(row.name);
    if (sp === null) {
      bad.push(row.name);
      continue;
    }
    if (sp.endsWith('.')) {
      // "Device.NAT.PortMapping.3." instance rows carry the table's writability; "Device.NAT.PortMapping." the table's own
      const table = sp.endsWith('{i}.');
      const ref = opts.reference?.objects[sp];
      const prev = objects[sp];
      const access = row.writable || prev?.access === 'readWrite' ? 'readWrite' : 'readOnly';
      objects[sp] = ref
        ? { ...ref, access: table ? access : ref.access }
        : { access, table, minEntries: table ? 0 : 1, maxEntries: table ? null : 1 };
    } else {
      const ref = opts.reference?.params[sp];
      const access = row.writable
        ? ref?.access === 'writeOnceReadOnly'
          ? 'writeOnceReadOnly'
          : 'readWrite'
        : 'readOnly';
      params[sp] = ref ? { ...ref, access } : { t: { base: 'string' }, access, inferred: true };
      const parent = parentOf(sp);
      if (!objects[parent]) {
        const t = parent.endsWith('{i}.');
        objects[parent] = opts.reference?.objects[parent] ?? {
          access: 'readOnly',
          table: t,
          minEntries: t ? 0 : 1,
          maxEntries: t ? null : 1,
        };
      }
    }
  }
  if (bad.length > 0)
    throw new Error(`GetParameterNames result has malformed paths: ${bad.slice(0, 5).join(', ')}`);
  const root = rootOf(Object.keys(objects).sort((a, b) => a.length - b.length));
  return {
    format: SCHEMA_FORMAT,
    model: opts.model ?? opts.reference?.model ?? `${root.slice(0, -1)}:discovered`,
    root,
    protocol: 'cwmp',
    sources: ['gpn'],
    objects: sortKeys(objects),
    params: sortKeys(params),
    commands: {},
    events: {},
  };
}

function sortKeys<T>(r: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.entries(r).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** USP GetSupportedDMResp, as JSON (field names of the protobuf message, enums as their names). */
export const SupportedParam = z.object({
  param_name: z.string(),
  access: z.enum(['PARAM_READ_ONLY', 'PARAM_READ_WRITE', 'PARAM_WRITE_ONLY']),
  value_type: z
    .enum([
      'PARAM_UNKNOWN',
      'PARAM_BASE_64',
      'PARAM_BOOLEAN',
      'PARAM_DATE_TIME',
      'PARAM_DECIMAL',
      'PARAM_HEX_BINARY',
      'PARAM_INT',
      'PARAM_LONG',
      'PARAM_STRING',
      'PARAM_UNSIGNED_INT',
      'PARAM_UNSIGNED_LONG',
    ])
    .default('PARAM_UNKNOWN'),
});
export const SupportedCommand = z.object({
  command_name: z.string(),
  input_arg_names: z.array(z.string()).default([]),
  output_arg_names: z.array(z.string()).default([]),
  command_type: z.enum(['CMD_UNKNOWN', 'CMD_SYNC', 'CMD_ASYNC']).default('CMD_UNKNOWN'),
});
export const SupportedEvent = z.object({
  event_name: z.string(),
  arg_names: z.array(z.string()).default([]),
});
export const SupportedObject = z.object({
  supported_obj_path: z.string(),
  access: z.enum(['OBJ_READ_ONLY', 'OBJ_ADD_DELETE', 'OBJ_ADD_ONLY', 'OBJ_DELETE_ONLY']),
  is_multi_instance: z.boolean(),
  supported_params: z.array(SupportedParam).default([]),
  supported_commands: z.array(SupportedCommand).default([]),
  supported_events: z.array(SupportedEvent).default([]),
});
export const GetSupportedDMResult = z.object({
  data_model_inst_uri: z.string().optional(),
  supported_objs: z.array(SupportedObject),
});
export type GetSupportedDMResult = z.input<typeof GetSupportedDMResult>;

const USP_TYPES: Record<string, PrimitiveType> = {
  PARAM_BASE_64: 'base64',
  PARAM_BOOLEAN: 'boolean',
  PARAM_DATE_TIME: 'dateTime',
  PARAM_DECIMAL: 'decimal',
  PARAM_HEX_BINARY: 'hexBinary',
  PARAM_INT: 'int',
  PARAM_LONG: 'long',
  PARAM_STRING: 'string',
  PARAM_UNSIGNED_INT: 'unsignedInt',
  PARAM_UNSIGNED_LONG: 'unsignedLong',
};

/**
 * Builds a schema from a USP GetSupportedDM result: object access and multi-instance flags, parameter
 * access and primitive types as reported; facets (enumerations, ranges, ...) from `reference` when it
 * has the same path with the same primitive type.
 */
export function schemaFromSupportedDM(
  input: GetSupportedDMResult,
  opts: { model?: string; reference?: CompiledSchema } = {},
): CompiledSchema {
  const dm = GetSupportedDMResult.parse(input);
  const objects: Record<string, ObjectDef> = {};
  const params: Record<string, ParamDef> = {};
  const commands: Record<string, CommandDef> = {};
  const events: Record<string, EventDef> = {};
  for (const o of dm.supported_objs) {
    const op = o.supported_obj_path;
    const ref = opts.reference?.objects[op];
    const canAdd = o.access !== 'OBJ_READ_ONLY';
    objects[op] = {
      ...(ref ?? { minEntries: o.is_multi_instance ? 0 : 1, maxEntries: o.is_multi_instance ? null : 1 }),
      access: canAdd ? 'readWrite' : 'readOnly',
      table: o.is_multi_instance,
    };
    for (const p of o.supported_params) {
      const path = op + p.param_name;
      const base = USP_TYPES[p.value_type];
      const refP = opts.reference?.params[path];
      const access = p.access === 'PARAM_READ_ONLY' ? 'readOnly' : 'readWrite';
      if (refP && (base === undefined || refP.t.base === base)) params[path] = { ...refP, access };
      else params[path] = base ? { t: { base }, access } : { t: { base: 'string' }, access, inferred: true };
    }
    for (const c of o.supported_commands) {
      const refC = opts.reference?.commands[op + c.command_name];
      const args = (names: string[], refArgs?: CommandDef['input']) => ({
        objects: {},
        params: Object.fromEntries(
          names.map((n) => [
            n,
            refArgs?.params[n] ?? ({ t: { base: 'string' }, access: 'readOnly', inferred: true } as ParamDef),
          ]),
        ),
      });
      commands[op + c.command_name] = {
        async: c.command_type === 'CMD_ASYNC',
        input: args(c.input_arg_names, refC?.input),
        output: args(c.output_arg_names, refC?.output),
      };
    }
    for (const e of o.supported_events) {
      const refE = opts.reference?.events[op + e.event_name];
      events[op + e.event_name] = {
        args: {
          objects: {},
          params: Object.fromEntries(
            e.arg_names.map((n) => [
              n,
              refE?.args.params[n] ??
                ({ t: { base: 'string' }, access: 'readOnly', inferred: true } as ParamDef),
            ]),
          ),
        },
      };
    }
  }
  const root = rootOf(Object.keys(objects).sort((a, b) => a.length - b.length));
  return {
    format: SCHEMA_FORMAT,
    model: opts.model ?? opts.reference?.model ?? `${root.slice(0, -1)}:discovered`,
    root,
    protocol: 'usp',
    sources: ['gsdm'],
    objects,
    params,
    commands,
    events,
  };
}
