import { sql } from 'drizzle-orm';
import { z } from 'zod';
import { devices } from '../db/schema/fleet.js';
import { chunks, type DbOrTx } from './db.js';
import { versionKey } from './version-key.js';

/** Longest device id; the device-set sample relies on it (fleet/resolve.ts). */
export const DEVICE_ID_MAX_CHARS = 256;

/** Printable ASCII without spaces: ids are sorted byte-wise for the device-set hash and shown in UIs. */
export const DeviceId = z
  .string()
  .min(1)
  .max(DEVICE_ID_MAX_CHARS)
  .regex(/^[\x21-\x7e]+$/, 'printable ASCII without spaces');

/**
 * What an inform (or a USP endpoint registration) tells about a device. Fields left out keep their
 * stored value; topology is never set here (it comes from the OSS import).
 */
export const DeviceUpsert = z.object({
  id: DeviceId,
  oui: z.string().min(1).max(64),
  serialNumber: z.string().min(1).max(128),
  protocol: z.enum(['cwmp', 'usp']),
  manufacturer: z.string().max(256).optional(),
  productClass: z.string().max(128).optional(),
  modelName: z.string().max(128).optional(),
  hardwareVersion: z.string().max(128).optional(),
  softwareVersion: z.string().max(128).optional(),
  dataModelRoot: z.enum(['Device.', 'InternetGatewayDevice.']).optional(),
  lastContactAt: z.date().optional(),
  periodicInformIntervalS: z.number().int().positive().optional(),
  connectionRequestUrl: z.string().max(1024).optional(),
  tags: z.array(z.string().min(1).max(64)).optional(),
});
export type DeviceUpsert = z.input<typeof DeviceUpsert>;

const ROWS_PER_INSERT = 1_000;

/** `excluded.col` when the batch row carried a value, else the stored value. */
const keep = (col: string) => sql.raw(`coalesce(excluded."${col}", "devices"."${col}")`);

/**
 * Inserts or updates devices in multi-row statements. Within one call the last entry for an id wins.
 * `lastContactAt` only moves forward, so a late-arriving inform cannot make a device look older.
 */
export async function upsertDevices(db: DbOrTx, input: readonly DeviceUpsert[]): Promise<number> {
  const byId = new Map<string, z.output<typeof DeviceUpsert>>();
  input.forEach((d, i) => {
    const parsed = DeviceUpsert.safeParse(d);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new Error(`device ${i}: ${issue?.path.join('.') || 'device'}: ${issue?.message ?? 'invalid'}`);
    }
    byId.set(parsed.data.id, parsed.data);
  });
  const now = new Date();
  // In key order: the order every writer of devices locks its rows in (db/schema/fleet.ts).
  const rows = [...byId.values()]
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .map((d) => ({
      ...d,
      softwareVersionKey: d.softwareVersion === undefined ? undefined : versionKey(d.softwareVersion),
      updatedAt: now,
    }));
  // Columns with a default cannot signal "not given" through excluded.*, so rows are grouped by which
  // of them they carry and each group updates only those.
  const groups = new Map<string, typeof rows>();
  for (const r of rows) {
    const key = `${r.tags !== undefined}/${r.dataModelRoot !== undefined}`;
    const g = groups.get(key);
    if (g) g.push(r);
    else groups.set(key, [r]);
  }
  for (const group of groups.values()) {
    const first = group[0];
    if (!first) continue;
    const extra = {
      ...(first.tags !== undefined ? { tags: sql.raw('excluded."tags"') } : {}),
      ...(first.dataModelRoot !== undefined ? { dataModelRoot: sql.raw('excluded."data_model_root"') } : {}),
    };
    for (const batch of chunks(group, ROWS_PER_INSERT)) {
      await db
        .insert(devices)
        .values(batch)
        .onConflictDoUpdate({
          target: devices.id,
          set: {
            oui: sql.raw('excluded."oui"'),
            serialNumber: sql.raw('excluded."serial_number"'),
            protocol: sql.raw('excluded."protocol"'),
            manufacturer: keep('manufacturer'),
            productClass: keep('product_class'),
            modelName: keep('model_name'),
            hardwareVersion: keep('hardware_version'),
            softwareVersion: keep('software_version'),
            softwareVersionKey: sql.raw(
              'case when excluded."software_version" is null then "devices"."software_version_key" else excluded."software_version_key" end',
            ),
            lastContactAt: sql.raw('greatest(excluded."last_contact_at", "devices"."last_contact_at")'),
            periodicInformIntervalS: keep('periodic_inform_interval_s'),
            connectionRequestUrl: keep('connection_request_url'),
            updatedAt: sql.raw('excluded."updated_at"'),
            ...extra,
          },
        });
    }
  }
  return rows.length;
}
