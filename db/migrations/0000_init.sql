CREATE TABLE "fleet_health" (
	"component" text PRIMARY KEY NOT NULL,
	"at" timestamp with time zone NOT NULL,
	"healthy" boolean NOT NULL,
	"details" jsonb DEFAULT '{}'::jsonb NOT NULL
);
--> statement-breakpoint
CREATE INDEX "fleet_health_at_idx" ON "fleet_health" USING btree ("at");