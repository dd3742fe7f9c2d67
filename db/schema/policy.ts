import { sql } from 'drizzle-orm';
import {
  bigint,
  boolean,
  check,
  doublePrecision,
  index,
  integer,
  jsonb,
  pgTable,
  text,
  timestamp,
  uuid,
} from 'drizzle-orm/pg-core';

/** Firmware catalogue: the only images a campaign may install, and on which (model, from-version) pairs. */
export const firmwareImages = pgTable(
  'firmware_images',
  {
    version: text('version').primaryKey(),
    models: text('models').array().notNull(),
    allowedFromVersions: text('allowed_from_versions').array().notNull(),
    url: text('url').notNull(),
    size: bigint('size', { mode: 'number' }).notNull(),
    checksum: text('checksum').notNull(),
    status: text('status').notNull().default('draft'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    check('firmware_images_status_ck', sql`${t.status} in ('draft', 'approved', 'deprecated', 'revoked')`),
    check('firmware_images_size_ck', sql`${t.size} >= 0`),
  ],
);

/** Maintenance windows in devices' local time; a window may cross midnight (start > end). */
export const maintenanceWindows = pgTable(
  'maintenance_windows',
  {
    name: text('name').primaryKey(),
    days: text('days').array().notNull(),
    startMinute: integer('start_minute').notNull(),
    endMinute: integer('end_minute').notNull(),
  },
  (t) => [
    check('maintenance_windows_start_ck', sql`${t.startMinute} between 0 and 1439`),
    check('maintenance_windows_end_ck', sql`${t.endMinute} between 0 and 1440`),
  ],
);

/** Blast-radius caps, approvals and rollout bounds per risk class. */
export const policyRiskCaps = pgTable(
  'policy_risk_caps',
  {
    riskClass: text('risk_class').primaryKey(),
    maxCohortSize: integer('max_cohort_size').notNull(),
    maxFleetShare: doublePrecision('max_fleet_share').notNull(),
    maxTopologyShare: doublePrecision('max_topology_share').notNull(),
    approvals: integer('approvals').notNull(),
    maxFirstWaveSize: integer('max_first_wave_size').notNull(),
    minWaves: integer('min_waves').notNull(),
    brickRateMin: doublePrecision('brick_rate_min').notNull(),
    brickRateMax: doublePrecision('brick_rate_max').notNull(),
    maintenanceWindowRequired: boolean('maintenance_window_required').notNull(),
  },
  (t) => [check('policy_risk_caps_class_ck', sql`${t.riskClass} in ('low', 'medium', 'high', 'critical')`)],
);

/** Every policy decision, with what it was decided on (input hash, bundle hash) and how long it took. */
export const policyDecisions = pgTable(
  'policy_decisions',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    /** What the decision is about: change_request, rollout, profile, dry_run… */
    subjectKind: text('subject_kind').notNull(),
    subjectId: text('subject_id'),
    action: text('action').notNull(),
    actorId: text('actor_id').notNull(),
    engine: text('engine').notNull(),
    inputHash: text('input_hash').notNull(),
    bundleHash: text('bundle_hash').notNull(),
    policyHash: text('policy_hash').notNull(),
    dataHash: text('data_hash').notNull(),
    allow: boolean('allow').notNull(),
    riskClass: text('risk_class').notNull(),
    requireApprovals: integer('require_approvals').notNull(),
    result: jsonb('result').$type<Record<string, unknown>>().notNull(),
    input: jsonb('input').$type<Record<string, unknown>>(),
    latencyMs: doublePrecision('latency_ms').notNull(),
    decidedAt: timestamp('decided_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    index('policy_decisions_subject_idx').on(t.subjectKind, t.subjectId, t.decidedAt),
    index('policy_decisions_input_hash_idx').on(t.inputHash),
  ],
);
