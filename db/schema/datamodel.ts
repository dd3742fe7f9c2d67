import { index, integer, pgTable, primaryKey, text, timestamp } from 'drizzle-orm/pg-core';

/**
 * Shared data-model registry: every process (executor, USP controller, worker, API) reads the schemas
 * any of them registered. Schemas are content-addressed (`sha256:…` of the serialized schema).
 * `body` is the exact serialized text, not jsonb: jsonb reorders keys, and readers re-hash the text
 * to check it against `schema_id` before trusting it.
 */
export const datamodelSchemas = pgTable('datamodel_schemas', {
  schemaId: text('schema_id').primaryKey(),
  body: text('body').notNull(),
  bytes: integer('bytes').notNull(),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
});

/** (OUI, product class, software version) → schema: one row per firmware. */
export const datamodelEntries = pgTable(
  'datamodel_entries',
  {
    oui: text('oui').notNull(),
    productClass: text('product_class').notNull(),
    softwareVersion: text('software_version').notNull(),
    schemaId: text('schema_id')
      .notNull()
      .references(() => datamodelSchemas.schemaId),
    origin: text('origin').notNull(),
    registeredAt: timestamp('registered_at', { withTimezone: true }).notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.oui, t.productClass, t.softwareVersion] }),
    index('datamodel_entries_schema_idx').on(t.schemaId),
  ],
);
