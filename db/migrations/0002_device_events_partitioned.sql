-- Custom migration (drizzle-kit cannot express declarative partitioning).
-- device_events is append-only and grows with every inform; partitioning by time lets retention drop
-- whole daily partitions (no bulk DELETE, no vacuum debt) and keeps time-window reads on few
-- partitions. The plain table generated from db/schema/fleet.ts is replaced by a partitioned parent
-- with the same columns. Daily partitions are created and dropped by fleet/partitions.ts; the default
-- partition catches rows outside every daily partition so an insert is never refused.
DROP TABLE IF EXISTS "device_events";--> statement-breakpoint
CREATE SEQUENCE IF NOT EXISTS "device_events_id_seq" AS bigint;--> statement-breakpoint
CREATE TABLE "device_events" (
	"id" bigint DEFAULT nextval('device_events_id_seq') NOT NULL,
	"device_id" text COLLATE "C" NOT NULL,
	"at" timestamp with time zone NOT NULL,
	"kind" text NOT NULL,
	"payload" jsonb DEFAULT '{}'::jsonb NOT NULL,
	CONSTRAINT "device_events_at_id_pk" PRIMARY KEY("at","id")
) PARTITION BY RANGE ("at");--> statement-breakpoint
ALTER SEQUENCE "device_events_id_seq" OWNED BY "device_events"."id";--> statement-breakpoint
CREATE INDEX "device_events_device_at_idx" ON "device_events" USING btree ("device_id","at");--> statement-breakpoint
CREATE INDEX "device_events_kind_at_idx" ON "device_events" USING btree ("kind","at");--> statement-breakpoint
CREATE TABLE "device_events_default" PARTITION OF "device_events" DEFAULT;--> statement-breakpoint
INSERT INTO "fleet_settings" ("id") VALUES (true) ON CONFLICT DO NOTHING;
