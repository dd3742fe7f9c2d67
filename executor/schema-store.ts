import { createHash } from 'node:crypto';
import { and, eq, ne } from 'drizzle-orm';
import { parseCompiledSchema, serializeSchema } from '../datamodel/compiled.js';
import {
  type DeviceKey,
  RegistryEntry,
  type SchemaStore,
  SchemaRegistry,
  type RegistryOptions,
  schemaId as schemaIdOf,
} from '../datamodel/registry.js';
import type { CompiledSchema } from '../datamodel/types.js';
import type { Db } from '../db/client.js';
import { datamodelEntries, datamodelSchemas } from '../db/schema/datamodel.js';

/**
 * The data-model registry's store in PostgreSQL, shared by every process: a tree the executor
 * discovers is then known to the worker and the API too. Writes are idempotent (same id = same
 * content); reads verify the stored text against its content address before trusting it.
 */
export class PgSchemaStore implements SchemaStore {
  constructor(private readonly db: Db) {}

  async listEntries(): Promise<RegistryEntry[]> {
    const rows = await this.db.select().from(datamodelEntries);
    return rows.map(toEntry);
  }

  async getEntry(key: DeviceKey): Promise<RegistryEntry | undefined> {
    const [row] = await this.db
      .select()
      .from(datamodelEntries)
      .where(
        and(
          eq(datamodelEntries.oui, key.oui),
          eq(datamodelEntries.productClass, key.productClass),
          eq(datamodelEntries.softwareVersion, key.softwareVersion),
        ),
      );
    return row ? toEntry(row) : undefined;
  }

  async putEntry(entry: RegistryEntry): Promise<void> {
    const e = RegistryEntry.parse(entry);
    const row = {
      oui: e.key.oui,
      productClass: e.key.productClass,
      softwareVersion: e.key.softwareVersion,
      schemaId: e.schemaId,
      origin: e.origin,
      registeredAt: new Date(e.registeredAt),
    };
    // Same firmware, same schema: nothing changes. A re-discovered, different tree replaces the
    // entry, as it does in the registering process's memory.
    await this.db
      .insert(datamodelEntries)
      .values(row)
      .onConflictDoUpdate({
        target: [datamodelEntries.oui, datamodelEntries.productClass, datamodelEntries.softwareVersion],
        set: { schemaId: row.schemaId, origin: row.origin, registeredAt: row.registeredAt },
        setWhere: ne(datamodelEntries.schemaId, row.schemaId),
      });
  }

  async getSchema(schemaId: string): Promise<CompiledSchema | undefined> {
    const [row] = await this.db
      .select({ body: datamodelSchemas.body })
      .from(datamodelSchemas)
      .where(eq(datamodelSchemas.schemaId, schemaId));
    if (!row) return undefined;
    // The id is the hash of the exact serialized text (zod's parse may reorder keys, so hash the text).
    const actual = `sha256:${createHash('sha256').update(row.body).digest('hex').slice(0, 32)}`;
    if (actual !== schemaId) {
      throw new Error(`stored data model ${schemaId} does not match its content (hashes to ${actual})`);
    }
    let schema: CompiledSchema;
    try {
      schema = parseCompiledSchema(row.body, { verify: true });
    } catch (err) {
      throw new Error(`stored data model ${schemaId} is not a valid compiled schema: ${brief(err)}`);
    }
    return schema;
  }

  async putSchema(schemaId: string, schema: CompiledSchema): Promise<void> {
    const body = serializeSchema(schema);
    const actual = schemaIdOf(schema);
    if (actual !== schemaId) throw new Error(`schema id ${schemaId} does not match its content (${actual})`);
    // Content-addressed: an existing row with this id holds the same text.
    await this.db
      .insert(datamodelSchemas)
      .values({ schemaId, body, bytes: Buffer.byteLength(body) })
      .onConflictDoNothing({ target: datamodelSchemas.schemaId });
  }
}

/** A registry over the shared PostgreSQL store, loaded; lookups that miss re-read the store (throttled). */
export async function openSharedRegistry(db: Db, opts: RegistryOptions = {}): Promise<SchemaRegistry> {
  const registry = new SchemaRegistry(new PgSchemaStore(db), opts);
  await registry.load();
  return registry;
}

/** The usual `onReloadError`: log it; the firmware stays unknown here, so its writes fail closed. */
export function reloadFailed(log: { warn(obj: object, msg: string): void }) {
  return (err: unknown, key: DeviceKey) =>
    log.warn({ err, key }, 'data model not reloaded from the shared registry (writes to it stay refused)');
}

function toEntry(r: typeof datamodelEntries.$inferSelect): RegistryEntry {
  return RegistryEntry.parse({
    key: { oui: r.oui, productClass: r.productClass, softwareVersion: r.softwareVersion },
    schemaId: r.schemaId,
    origin: r.origin,
    registeredAt: r.registeredAt.toISOString(),
  });
}

function brief(err: unknown): string {
  const m = err instanceof Error ? err.message : String(err);
  return m.length > 300 ? `${m.slice(0, 300)}…` : m;
}
