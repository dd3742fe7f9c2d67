import { sql } from 'drizzle-orm';
import { z } from 'zod';
import { deviceParameters } from '../db/schema/fleet.js';
import { chunks, type DbOrTx } from './db.js';
import { DeviceId } from './devices.js';
import { versionKey } from './version-key.js';
import { PrimitiveType } from '../datamodel/types.js';

/** TR-106 primitive types a stored value can have (the datamodel's PrimitiveType). */
export const ParamType = PrimitiveType;
export type ParamType = z.infer<typeof ParamType>;

export const NUMERIC_TYPES: ReadonlySet<ParamType> = new Set([
  'unsignedInt',
  'int',
  'unsignedLong',
  'long',
  'decimal',
]);

export const ParameterValue = z.object({
  deviceId: DeviceId,
  /** Concrete instance path, e.g. "Device.WiFi.Radio.1.Channel". */
  path: z
    .string()
    .min(1)
    .max(512)
    .regex(
      /^[A-Za-z][A-Za-z0-9_-]*(\.([A-Za-z0-9_-]+))*$/,
      'a parameter path such as Device.WiFi.Radio.1.Channel',
    ),
  /** Type from the device's TR-181 schema; "string" when unknown. */
  type: ParamType.default('string'),
  /** The value as the device reported it (wire format). */
  value: z.string().max(65_536),
  at: z.date().optional(),
});
export type ParameterValue = z.input<typeof ParameterValue>;

const NUMBER_RE = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

/** Typed columns for a wire value; a value that does not parse for its type keeps only its text. */
export function typedColumns(type: ParamType, value: string) {
  const v = value.trim();
  return {
    valueNum: NUMERIC_TYPES.has(type) && NUMBER_RE.test(v) ? v : null,
    valueBool:
      type === 'boolean'
        ? v === 'true' || v === '1'
          ? true
          : v === 'false' || v === '0'
            ? false
            : null
        : null,
    valueTime: type === 'dateTime' && !Number.isNaN(Date.parse(v)) ? new Date(v) : null,
    versionKey: type === 'string' ? versionKey(v) : null,
  };
}

const ROWS_PER_INSERT = 1_000;

/**
 * Records last known parameter values (from GetParameterValues responses, value-change informs or USP
 * notifications). Within one call the last entry for (device, path) wins. Devices must exist.
 */
export async function updateLastValues(db: DbOrTx, values: readonly ParameterValue[]): Promise<number> {
  const byKey = new Map<string, z.output<typeof ParameterValue>>();
  values.forEach((v, i) => {
    const parsed = ParameterValue.safeParse(v);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new Error(
        `parameter value ${i}: ${issue?.path.join('.') || 'value'}: ${issue?.message ?? 'invalid'}`,
      );
    }
    byKey.set(`${parsed.data.deviceId}\n${parsed.data.path}`, parsed.data);
  });
  const now = new Date();
  const rows = [...byKey.values()].map((v) => ({
    deviceId: v.deviceId,
    path: v.path,
    type: v.type,
    value: v.value,
    ...typedColumns(v.type, v.value),
    updatedAt: v.at ?? now,
  }));
  for (const batch of chunks(rows, ROWS_PER_INSERT)) {
    await db
      .insert(deviceParameters)
      .values(batch)
      .onConflictDoUpdate({
        target: [deviceParameters.deviceId, deviceParameters.path],
        set: {
          type: sql.raw('excluded."type"'),
          value: sql.raw('excluded."value"'),
          valueNum: sql.raw('excluded."value_num"'),
          valueBool: sql.raw('excluded."value_bool"'),
          valueTime: sql.raw('excluded."value_time"'),
          versionKey: sql.raw('excluded."version_key"'),
          updatedAt: sql.raw('excluded."updated_at"'),
        },
        // An older report (retried delivery) must not overwrite a newer value.
        setWhere: sql.raw('excluded."updated_at" >= "device_parameters"."updated_at"'),
      });
  }
  return rows.length;
}
