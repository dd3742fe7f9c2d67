import { boolean, index, jsonb, pgTable, text, timestamp } from 'drizzle-orm/pg-core';

/** Fleet health rows: written every few seconds by the executor; a stale row reads as unhealthy. */
export const fleetHealth = pgTable(
  'fleet_health',
  {
    component: text('component').primaryKey(),
    at: timestamp('at', { withTimezone: true }).notNull(),
    healthy: boolean('healthy').notNull(),
    details: jsonb('details').$type<Record<string, unknown>>().notNull().default({}),
  },
  (t) => [index('fleet_health_at_idx').on(t.at)],
);
