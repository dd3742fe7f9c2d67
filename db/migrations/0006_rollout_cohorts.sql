CREATE TABLE "rollout_cohort_devices" (
	"rollout_id" text NOT NULL,
	"device_id" text NOT NULL,
	"model" text NOT NULL,
	"hardware_version" text NOT NULL,
	"firmware" text NOT NULL,
	"region" text,
	"bng" text,
	"olt" text,
	"pon_port" text,
	"time_zone" text,
	"dual_bank" boolean DEFAULT false NOT NULL,
	"frozen_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "rollout_cohort_devices_rollout_id_device_id_pk" PRIMARY KEY("rollout_id","device_id")
);
--> statement-breakpoint
CREATE INDEX "rollout_cohort_devices_device_idx" ON "rollout_cohort_devices" USING btree ("device_id");