CREATE TABLE "change_request_devices" (
	"change_id" text NOT NULL,
	"device_id" text NOT NULL,
	"protocol" text NOT NULL,
	"batch" integer NOT NULL,
	"snapshot" jsonb,
	"added" jsonb,
	"apply" text DEFAULT 'pending' NOT NULL,
	"verify" text DEFAULT 'pending' NOT NULL,
	"compensation" text DEFAULT 'none' NOT NULL,
	"detail" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "change_request_devices_change_id_device_id_pk" PRIMARY KEY("change_id","device_id")
);
--> statement-breakpoint
CREATE TABLE "change_requests" (
	"id" text PRIMARY KEY NOT NULL,
	"source" text NOT NULL,
	"intent" text NOT NULL,
	"requested_by" text NOT NULL,
	"requested_by_name" text NOT NULL,
	"proposer_id" text NOT NULL,
	"proposal" jsonb NOT NULL,
	"device_ids" jsonb NOT NULL,
	"check" jsonb NOT NULL,
	"execution" jsonb NOT NULL,
	"planner_rounds" jsonb,
	"plan_hash" text NOT NULL,
	"risk_class" text,
	"required_approvals" integer NOT NULL,
	"status" text NOT NULL,
	"progress" jsonb,
	"reasons" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"version" integer DEFAULT 0 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "change_requests_status_ck" CHECK ("change_requests"."status" in ('denied', 'planner_failed', 'awaiting_approval', 'rejected', 'expired', 'applying', 'compensating', 'completed', 'compensated', 'cancelled', 'failed'))
);
--> statement-breakpoint
ALTER TABLE "change_request_devices" ADD CONSTRAINT "change_request_devices_change_id_change_requests_id_fk" FOREIGN KEY ("change_id") REFERENCES "public"."change_requests"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "change_request_devices_batch_idx" ON "change_request_devices" USING btree ("change_id","batch");--> statement-breakpoint
CREATE INDEX "change_requests_status_idx" ON "change_requests" USING btree ("status","created_at");