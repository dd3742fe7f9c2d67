import { sql } from 'drizzle-orm';
import {
  bigint,
  bigserial,
  boolean,
  check,
  customType,
  index,
  integer,
  jsonb,
  numeric,
  pgTable,
  primaryKey,
  text,
  timestamp,
} from 'drizzle-orm/pg-core';

/**
 * Text compared byte-wise. Version keys and prefix ranges rely on C ordering; declaring the collation
 * on the column keeps btree range scans correct on clusters initialised with another locale.
 */
export const textC = customType<{ data: string }>({
  dataType: () => 'text COLLATE "C"',
});

/**
 * Inventory: one row per CPE. Topology (from the operator's OSS) lives on the same row because nearly
 * every selector mixes inventory and topology; a join over a million rows per selector would cost more
 * than the few nullable columns.
 * Every writer locks the rows it changes in key order (id), as the rollup triggers' FOR SHARE does:
 * writers that lock in another order can deadlock with an inform batch.
 */
export const devices = pgTable(
  'devices',
  {
    /** TR-069 DeviceId "OUI-ProductClass-SerialNumber", or the USP endpoint id. */
    id: textC('id').primaryKey(),
    oui: text('oui').notNull(),
    manufacturer: text('manufacturer'),
    productClass: text('product_class'),
    modelName: text('model_name'),
    serialNumber: text('serial_number').notNull(),
    hardwareVersion: text('hardware_version'),
    softwareVersion: text('software_version'),
    /** Sortable semantic-version key of software_version (fleet/version-key.ts), computed at write time. */
    softwareVersionKey: textC('software_version_key'),
    protocol: text('protocol').notNull(),
    /** "Device." (TR-181) or "InternetGatewayDevice." (TR-098). */
    dataModelRoot: text('data_model_root').notNull().default('Device.'),
    lastContactAt: timestamp('last_contact_at', { withTimezone: true }),
    periodicInformIntervalS: integer('periodic_inform_interval_s'),
    connectionRequestUrl: text('connection_request_url'),
    tags: text('tags').array().notNull().default(sql`'{}'::text[]`),
    region: text('region'),
    site: text('site'),
    olt: text('olt'),
    ponPort: text('pon_port'),
    bng: text('bng'),
    serviceTier: text('service_tier'),
    timeZone: text('time_zone'),
    topologyUpdatedAt: timestamp('topology_updated_at', { withTimezone: true }),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  // Selector indexes end in the device id so that selections (which need only ids) are index-only scans.
  (t) => [
    check('devices_protocol_ck', sql`${t.protocol} in ('cwmp', 'usp')`),
    check(
      'devices_inform_interval_ck',
      sql`${t.periodicInformIntervalS} is null or ${t.periodicInformIntervalS} > 0`,
    ),
    // (column, id) indexes give one value's devices in id order: the device-set hash needs id order,
    // and a range is read as a merge of such index ranges (fleet/compile.ts compileOrderedIds).
    index('devices_product_class_id_idx').on(t.productClass, t.id),
    index('devices_product_class_version_idx').on(t.productClass, t.softwareVersionKey, t.id),
    index('devices_product_class_sw_idx').on(t.productClass, t.softwareVersion, t.id),
    index('devices_model_name_idx').on(t.modelName),
    index('devices_software_version_idx').on(t.softwareVersion, t.id),
    index('devices_software_version_key_idx').on(t.softwareVersionKey, t.id),
    index('devices_manufacturer_idx').on(t.manufacturer),
    index('devices_oui_idx').on(t.oui),
    index('devices_protocol_idx').on(t.protocol, t.id),
    // product_class after the id keeps one region's devices in id order and answers "by model in a
    // region" from the index alone.
    index('devices_region_idx').on(t.region, t.id, t.productClass),
    index('devices_site_idx').on(t.site),
    index('devices_olt_pon_idx').on(t.olt, t.ponPort, t.id),
    index('devices_bng_idx').on(t.bng),
    index('devices_service_tier_idx').on(t.serviceTier),
    index('devices_last_contact_idx').on(t.lastContactAt, t.id),
    // "Not seen for N intervals": a loose index scan over the few distinct intervals, then a range per interval.
    // The trailing columns let grouped questions over silent devices ("offline share per OLT", "not
    // seen by model") read them from the index alone (fleet/query-compile.ts offlineRows).
    index('devices_interval_contact_idx').on(
      t.periodicInformIntervalS,
      t.lastContactAt,
      t.id,
      t.productClass,
      t.region,
      t.olt,
      t.ponPort,
    ),
    index('devices_tags_idx').using('gin', t.tags),
  ],
);

/** The `device` grain's columns (the devices columns of the same names), fresh builders per table. */
const deviceGrainColumns = () => ({
  manufacturer: text('manufacturer'),
  productClass: text('product_class'),
  modelName: text('model_name'),
  hardwareVersion: text('hardware_version'),
  softwareVersion: text('software_version'),
  softwareVersionKey: textC('software_version_key'),
  protocol: text('protocol'),
  region: text('region'),
  serviceTier: text('service_tier'),
});

/**
 * Device counts per combination of low-cardinality device columns, kept exact by statement-level
 * triggers on `devices` (migration 0012): every insert, update, delete and truncate appends its net
 * change per combination in the same transaction, and a statement that changes no counted column (an
 * inform batch moving last_contact_at) appends nothing. Rows are deltas, never updated in place, so
 * concurrent writers never wait on each other here; a combination's count is the sum of its rows, and
 * compactRollups (fleet/rollup.ts) folds them. Fleet questions that count devices by these columns
 * read a few thousand rows instead of a million (fleet/rollup.ts). Two grains: `device` (model,
 * firmware, hardware, protocol, region, tier) and `pon` (OLT, PON port, BNG); a grain's other columns
 * are NULL.
 */
export const deviceCounts = pgTable(
  'device_counts',
  {
    grain: text('grain').notNull(),
    ...deviceGrainColumns(),
    olt: text('olt'),
    ponPort: text('pon_port'),
    bng: text('bng'),
    n: bigint('n', { mode: 'number' }).notNull(),
  },
  (t) => [check('device_counts_grain_ck', sql`${t.grain} in ('device', 'pon')`)],
);

/**
 * Count and exact sum of numeric last-known parameter values per (path, combination of the `device`
 * grain's columns of device_counts), kept by statement-level triggers on `device_parameters` and
 * `devices` (migration 0013) the same way: appended deltas, folded by compactRollups. An average
 * of a numeric parameter grouped and filtered by those columns sums a few thousand rows instead of
 * joining every device to its parameter row (fleet/rollup.ts).
 */
export const parameterSums = pgTable(
  'parameter_sums',
  {
    path: textC('path').notNull(),
    ...deviceGrainColumns(),
    n: bigint('n', { mode: 'number' }).notNull(),
    s: numeric('s').notNull(),
  },
  (t) => [index('parameter_sums_path_idx').on(t.path)],
);

/** Characters of a parameter value covered by the value index. */
export const VALUE_INDEX_CHARS = 256;

/**
 * Last known parameter values, typed per the TR-181 schema of the device's firmware. Exactly one of the
 * typed columns is set according to `type`; `value` always keeps the wire string.
 */
export const deviceParameters = pgTable(
  'device_parameters',
  {
    deviceId: textC('device_id')
      .notNull()
      .references(() => devices.id, { onDelete: 'cascade' }),
    /** Instance path, e.g. "Device.WiFi.Radio.1.Channel". */
    path: textC('path').notNull(),
    /** TR-181 primitive type (string, unsignedInt, int, unsignedLong, long, boolean, dateTime, ...). */
    type: text('type').notNull(),
    value: textC('value').notNull(),
    valueNum: numeric('value_num'),
    valueBool: boolean('value_bool'),
    valueTime: timestamp('value_time', { withTimezone: true }),
    /** Sortable version key when the string parses as a version (fleet/version-key.ts). */
    versionKey: textC('version_key'),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.deviceId, t.path] }),
    // Values can be long (a btree entry is capped near 2.7 kB), so only a bounded prefix is indexed;
    // the selector compiler compares that prefix first and the full value after (fleet/compile.ts).
    index('device_parameters_path_value_idx').on(
      t.path,
      sql`left(${t.value}, ${sql.raw(String(VALUE_INDEX_CHARS))})`,
      t.deviceId,
    ),
    // The typed columns are null for most rows (a value is a number, a time or a version, rarely all),
    // and every comparison the compilers emit on them excludes null: their indexes hold only the rows
    // that have one, so an Inform writes about half the index entries it did.
    index('device_parameters_path_num_idx')
      .on(t.path, t.valueNum, t.deviceId)
      .where(sql`${t.valueNum} is not null`),
    index('device_parameters_path_time_idx')
      .on(t.path, t.valueTime, t.deviceId)
      .where(sql`${t.valueTime} is not null`),
    index('device_parameters_path_version_idx')
      .on(t.path, t.versionKey, t.deviceId)
      .where(sql`${t.versionKey} is not null`),
  ],
);

/**
 * Append-only log of what devices said. The real table is partitioned by range on `at` (daily
 * partitions plus a default partition) — drizzle-kit cannot express partitioning, so the migration
 * `device_events_partitioned` drops the plain table drizzle-kit generates and creates the partitioned
 * parent; fleet/partitions.ts creates and drops partitions. This declaration gives typed queries only.
 * No foreign key to devices: informs from a storm must be written without a lookup per row.
 */
export const deviceEvents = pgTable(
  'device_events',
  {
    id: bigserial('id', { mode: 'number' }).notNull(),
    deviceId: textC('device_id').notNull(),
    at: timestamp('at', { withTimezone: true }).notNull(),
    kind: text('kind').notNull(),
    payload: jsonb('payload').$type<Record<string, unknown>>().notNull().default({}),
  },
  (t) => [
    primaryKey({ columns: [t.at, t.id] }),
    index('device_events_device_at_idx').on(t.deviceId, t.at),
    // Ends in the device id so that event-window counts per device ("more than 3 reboots in 7 days")
    // are index-only scans instead of one heap page per event.
    index('device_events_kind_at_device_idx').on(t.kind, t.at, t.deviceId),
    // Failed transfers are few among many transfer results: questions about them ("transfer failures by
    // fault code") read only these rows. A text test, so that no payload can make an insert fail.
    index('device_events_transfer_failed_idx')
      .on(t.at, t.deviceId)
      .where(sql`${t.kind} = 'transfer_complete' and ${t.payload}->>'faultCode' <> '0'`),
  ],
);

/** Single-row fleet settings (the row with id = true). */
export const fleetSettings = pgTable(
  'fleet_settings',
  {
    id: boolean('id').primaryKey().default(true),
    /** Device-event partitions wholly older than this are dropped by fleet/partitions.ts. */
    eventRetentionDays: integer('event_retention_days').notNull().default(90),
    /** How many daily partitions to keep created ahead of today. */
    eventPartitionsAhead: integer('event_partitions_ahead').notNull().default(7),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    check('fleet_settings_single_row_ck', sql`${t.id}`),
    check('fleet_settings_retention_ck', sql`${t.eventRetentionDays} >= 1`),
    check('fleet_settings_ahead_ck', sql`${t.eventPartitionsAhead} between 1 and 60`),
  ],
);
