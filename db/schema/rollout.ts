import { boolean, index, pgTable, primaryKey, text, timestamp } from 'drizzle-orm/pg-core';

/**
 * A rollout's cohort, frozen when the rollout starts: the devices, their stratum fields as they were
 * then (model, hardware, from-firmware) and what rollback planning needs. Later activities re-plan
 * from this snapshot, never from the live selector, whose answer changes as devices upgrade.
 */
export const rolloutCohortDevices = pgTable(
  'rollout_cohort_devices',
  {
    rolloutId: text('rollout_id').notNull(),
    deviceId: text('device_id').notNull(),
    model: text('model').notNull(),
    hardwareVersion: text('hardware_version').notNull(),
    firmware: text('firmware').notNull(),
    region: text('region'),
    bng: text('bng'),
    olt: text('olt'),
    ponPort: text('pon_port'),
    timeZone: text('time_zone'),
    dualBank: boolean('dual_bank').notNull().default(false),
    frozenAt: timestamp('frozen_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.rolloutId, t.deviceId] }),
    index('rollout_cohort_devices_device_idx').on(t.deviceId),
  ],
);
