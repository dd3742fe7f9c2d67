import { z } from 'zod';

/** Primitive TR-106 / TR-181 value types. Named dataTypes resolve to one of these plus facets. */
export const PrimitiveType = z.enum([
  'string',
  'unsignedInt',
  'int',
  'unsignedLong',
  'long',
  'boolean',
  'dateTime',
  'base64',
  'hexBinary',
  'decimal',
]);
export type PrimitiveType = z.infer<typeof PrimitiveType>;

export const Range = z.object({
  min: z.number().optional(),
  max: z.number().optional(),
  step: z.number().optional(),
});
export type Range = z.infer<typeof Range>;

export const Size = z.object({ min: z.number().optional(), max: z.number().optional() });
export type Size = z.infer<typeof Size>;

/** A value's type with all facets merged along the dataType chain (descriptions dropped). */
export const TypeSpec = z.object({
  base: PrimitiveType,
  /** Chain of named dataTypes, most derived first (e.g. ["IPv4Address", "IPAddress"]). */
  named: z.array(z.string()).optional(),
  /** OR-ed ranges. */
  ranges: z.array(Range).optional(),
  /** OR-ed sizes (applies to each item of a list, or to the whole string). */
  sizes: z.array(Size).optional(),
  enums: z.array(z.string()).optional(),
  /** Enumeration values only the device may report (enumeration access="readOnly"). */
  enumsReadOnly: z.array(z.string()).optional(),
  /** OR-ed regular expressions (whole-value match). */
  patterns: z.array(z.string()).optional(),
  units: z.string().optional(),
  /** Comma-separated list value. */
  list: z
    .object({
      minItems: z.number().optional(),
      maxItems: z.number().optional(),
      /** size facet of the whole list string */
      sizes: z.array(Size).optional(),
    })
    .optional(),
  pathRef: z
    .object({
      targetParent: z.string().optional(),
      refType: z.string().optional(),
      targetType: z.string().optional(),
    })
    .optional(),
  enumRef: z.object({ targetParam: z.string(), nullValue: z.string().optional() }).optional(),
});
export type TypeSpec = z.infer<typeof TypeSpec>;

export const ParamAccess = z.enum(['readOnly', 'readWrite', 'writeOnceReadOnly']);
export type ParamAccess = z.infer<typeof ParamAccess>;
export const Status = z.enum(['current', 'deprecated', 'obsoleted', 'deleted']);
export type Status = z.infer<typeof Status>;

export const DefaultValue = z.object({
  type: z.enum(['object', 'factory', 'implementation', 'parameter']),
  value: z.string(),
});

export const ParamDef = z.object({
  t: TypeSpec,
  access: ParamAccess,
  secured: z.boolean().optional(),
  hidden: z.boolean().optional(),
  forcedInform: z.boolean().optional(),
  activeNotify: z.string().optional(),
  /** CWMP "write to trigger" parameter (syntax command="true"). */
  command: z.boolean().optional(),
  default: DefaultValue.optional(),
  status: Status.optional(),
  version: z.string().optional(),
  mandatory: z.boolean().optional(),
  /** Type not known from the source (e.g. built from GetParameterNames without a reference model). */
  inferred: z.boolean().optional(),
});
export type ParamDef = z.infer<typeof ParamDef>;

export const UniqueKey = z.object({ functional: z.boolean(), params: z.array(z.string()) });

export const ObjectDef = z.object({
  access: z.enum(['readOnly', 'readWrite']),
  /** Multi-instance ({i}) table. */
  table: z.boolean(),
  minEntries: z.number(),
  /** null = unbounded */
  maxEntries: z.number().nullable(),
  numEntriesParameter: z.string().optional(),
  enableParameter: z.string().optional(),
  uniqueKeys: z.array(UniqueKey).optional(),
  status: Status.optional(),
  version: z.string().optional(),
  mountType: z.string().optional(),
});
export type ObjectDef = z.infer<typeof ObjectDef>;

/** Arguments of a USP command or event: paths relative to the command (e.g. "URL", "TimeWindow.{i}.Start"). */
export const ArgumentSet = z.object({
  objects: z.record(z.string(), ObjectDef),
  params: z.record(z.string(), ParamDef),
});
export type ArgumentSet = z.infer<typeof ArgumentSet>;

export const CommandDef = z.object({
  async: z.boolean(),
  input: ArgumentSet,
  output: ArgumentSet,
  status: Status.optional(),
  version: z.string().optional(),
});
export type CommandDef = z.infer<typeof CommandDef>;

export const EventDef = z.object({
  args: ArgumentSet,
  status: Status.optional(),
  version: z.string().optional(),
});
export type EventDef = z.infer<typeof EventDef>;

export const SCHEMA_FORMAT = 'fleetbrain.tr181/1';

/**
 * A compiled data model: flat maps keyed by `{i}` schema paths (objects end in ".", commands in "()",
 * events in "!"). No description text, so it loads fast.
 */
export const CompiledSchema = z.object({
  format: z.literal(SCHEMA_FORMAT),
  /** e.g. "Device:2.17" or "InternetGatewayDevice:1.14" */
  model: z.string(),
  /** root object, e.g. "Device." */
  root: z.string(),
  protocol: z.enum(['cwmp', 'usp', 'unknown']),
  spec: z.string().optional(),
  /** Where it came from: file names (no directories), or "gpn"/"gsdm" for device-reported trees. */
  sources: z.array(z.string()),
  objects: z.record(z.string(), ObjectDef),
  params: z.record(z.string(), ParamDef),
  commands: z.record(z.string(), CommandDef),
  events: z.record(z.string(), EventDef),
});
export type CompiledSchema = z.infer<typeof CompiledSchema>;

/** Stable validation codes; `fault` is the aligned CWMP fault code where one applies. */
export const ValidationCode = z.enum([
  'ok',
  'unknown_path',
  'bad_instance_number',
  'not_writable',
  'write_once',
  'not_a_table',
  'wrong_type',
  'range',
  'size',
  'list_items',
  'enumeration',
  'pattern',
  'no_schema',
  'fallback_schema',
]);
export type ValidationCode = z.infer<typeof ValidationCode>;

export const FAULT_INVALID_NAME = 9005;
export const FAULT_INVALID_VALUE = 9007;
export const FAULT_NOT_WRITABLE = 9008;

export const ChangeItem = z.discriminatedUnion('op', [
  z.object({ op: z.literal('set'), path: z.string(), value: z.union([z.string(), z.number(), z.boolean()]) }),
  z.object({ op: z.literal('add'), path: z.string() }),
  z.object({ op: z.literal('delete'), path: z.string() }),
]);
export type ChangeItem = z.infer<typeof ChangeItem>;

/** Shorthand accepted by the validator: a bare {path, value} is a set. */
export type ChangeInput = ChangeItem | { path: string; value: string | number | boolean; op?: undefined };

export const ItemResult = z.object({
  index: z.number(),
  path: z.string(),
  ok: z.boolean(),
  code: ValidationCode,
  /** 9005 / 9007 / 9008, or null when no CWMP fault applies (ok, no_schema). */
  fault: z.number().nullable(),
  message: z.string(),
  /** The value must not be logged or shown (syntax secured="true"); for the policy layer. */
  secured: z.boolean(),
  /** The matched `{i}` schema path, when the path is known. */
  schemaPath: z.string().optional(),
  /** For fallback_schema: what the check against the fallback said. */
  fallbackCode: ValidationCode.optional(),
});
export type ItemResult = z.infer<typeof ItemResult>;

export const ValidationReport = z.object({
  ok: z.boolean(),
  /** exact | fallback | none */
  schemaMatch: z.enum(['exact', 'fallback', 'none', 'direct']),
  schemaId: z.string().optional(),
  results: z.array(ItemResult),
  invalid: z.number(),
});
export type ValidationReport = z.infer<typeof ValidationReport>;
