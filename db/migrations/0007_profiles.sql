CREATE TABLE "profile_decisions" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"path" text NOT NULL,
	"profiles" text[] NOT NULL,
	"winner" text NOT NULL,
	"decided_by" text NOT NULL,
	"proposed_by" text NOT NULL,
	"proposer_kind" text NOT NULL,
	"rationale" text,
	"approval_request_id" text,
	"at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "profile_reconcile_runs" (
	"id" text PRIMARY KEY NOT NULL,
	"status" text NOT NULL,
	"trigger" text NOT NULL,
	"event_cursor" timestamp with time zone,
	"counts" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"started_at" timestamp with time zone DEFAULT now() NOT NULL,
	"finished_at" timestamp with time zone,
	CONSTRAINT "profile_reconcile_runs_status_ck" CHECK ("profile_reconcile_runs"."status" in ('running', 'completed', 'failed'))
);
--> statement-breakpoint
CREATE TABLE "profile_settings" (
	"id" boolean PRIMARY KEY DEFAULT true NOT NULL,
	"rules" text[] DEFAULT '{priority,specificity,newest}'::text[] NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "profile_settings_single_row_ck" CHECK ("profile_settings"."id")
);
--> statement-breakpoint
CREATE TABLE "profile_versions" (
	"profile_id" text NOT NULL,
	"version" integer NOT NULL,
	"action" text NOT NULL,
	"spec" jsonb NOT NULL,
	"actor" text NOT NULL,
	"at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "profile_versions_profile_id_version_pk" PRIMARY KEY("profile_id","version"),
	CONSTRAINT "profile_versions_action_ck" CHECK ("profile_versions"."action" in ('created', 'updated', 'deleted'))
);
--> statement-breakpoint
CREATE TABLE "profiles" (
	"id" text PRIMARY KEY NOT NULL,
	"description" text,
	"selector" jsonb NOT NULL,
	"parameters" jsonb NOT NULL,
	"priority" integer DEFAULT 0 NOT NULL,
	"owner" text NOT NULL,
	"valid_from" timestamp with time zone,
	"valid_until" timestamp with time zone,
	"kind" text DEFAULT 'profile' NOT NULL,
	"change_request_id" text,
	"version" integer NOT NULL,
	"updated_by" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "profiles_kind_ck" CHECK ("profiles"."kind" in ('profile', 'override')),
	CONSTRAINT "profiles_override_ck" CHECK ("profiles"."kind" = 'profile' or ("profiles"."valid_until" is not null and "profiles"."change_request_id" is not null)),
	CONSTRAINT "profiles_window_ck" CHECK ("profiles"."valid_from" is null or "profiles"."valid_until" is null or "profiles"."valid_from" < "profiles"."valid_until")
);
--> statement-breakpoint
CREATE UNIQUE INDEX "profile_decisions_field_uq" ON "profile_decisions" USING btree ("path","profiles");--> statement-breakpoint
CREATE INDEX "profile_reconcile_runs_started_idx" ON "profile_reconcile_runs" USING btree ("started_at");--> statement-breakpoint
CREATE INDEX "profiles_valid_until_idx" ON "profiles" USING btree ("valid_until");