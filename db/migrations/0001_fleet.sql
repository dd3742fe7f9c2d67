CREATE TABLE "approval_requests" (
	"id" text PRIMARY KEY NOT NULL,
	"workflow_id" text NOT NULL,
	"gate" text NOT NULL,
	"subject_kind" text NOT NULL,
	"subject_id" text NOT NULL,
	"title" text NOT NULL,
	"proposer_id" text NOT NULL,
	"proposer_name" text NOT NULL,
	"plan_hash" text NOT NULL,
	"plan_revision" integer NOT NULL,
	"required_approvals" integer NOT NULL,
	"approvals" integer NOT NULL,
	"status" text NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"version" integer NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "approval_requests_status_ck" CHECK ("approval_requests"."status" in ('pending', 'approved', 'rejected', 'expired'))
);
--> statement-breakpoint
CREATE TABLE "approval_votes" (
	"approval_id" text PRIMARY KEY NOT NULL,
	"request_id" text NOT NULL,
	"approver_id" text NOT NULL,
	"approver_name" text NOT NULL,
	"decision" text NOT NULL,
	"plan_hash" text NOT NULL,
	"comment" text,
	"voided" boolean DEFAULT false NOT NULL,
	"at" timestamp with time zone NOT NULL,
	CONSTRAINT "approval_votes_decision_ck" CHECK ("approval_votes"."decision" in ('approve', 'reject'))
);
--> statement-breakpoint
CREATE TABLE "audit_log" (
	"seq" bigint PRIMARY KEY NOT NULL,
	"at" timestamp with time zone NOT NULL,
	"actor_id" text NOT NULL,
	"actor_kind" text NOT NULL,
	"action" text NOT NULL,
	"subject_kind" text NOT NULL,
	"subject_id" text NOT NULL,
	"data" jsonb NOT NULL,
	"idempotency_key" text,
	"prev_hash" text NOT NULL,
	"hash" text NOT NULL,
	CONSTRAINT "audit_log_seq_ck" CHECK ("audit_log"."seq" > 0),
	CONSTRAINT "audit_log_actor_kind_ck" CHECK ("audit_log"."actor_kind" in ('user', 'service', 'system'))
);
--> statement-breakpoint
CREATE TABLE "executor_endpoints" (
	"device_id" text PRIMARY KEY NOT NULL,
	"protocol" text DEFAULT 'cwmp' NOT NULL,
	"username" text,
	"password_enc" text,
	"cr_username" text,
	"cr_password_enc" text,
	"connection_request_url" text,
	"udp_connection_request_address" text,
	"cwmp_version" text,
	"parameter_key" text,
	"periodic_inform_interval" integer,
	"last_inform_at" timestamp with time zone,
	"last_connection_request_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "executor_leases" (
	"device_id" text PRIMARY KEY NOT NULL,
	"owner" text NOT NULL,
	"acquired_at" timestamp with time zone DEFAULT now() NOT NULL,
	"expires_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "executor_tasks" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"key" text NOT NULL,
	"scope" text NOT NULL,
	"step" text NOT NULL,
	"device_id" text NOT NULL,
	"kind" text NOT NULL,
	"operation" jsonb NOT NULL,
	"command_key" text NOT NULL,
	"owner" text NOT NULL,
	"state" text DEFAULT 'queued' NOT NULL,
	"path" text,
	"trail" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"max_attempts" integer DEFAULT 5 NOT NULL,
	"not_before" timestamp with time zone DEFAULT now() NOT NULL,
	"deadline" timestamp with time zone NOT NULL,
	"session_id" text,
	"result" jsonb,
	"fault" jsonb,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "executor_tasks_key_unique" UNIQUE("key"),
	CONSTRAINT "executor_tasks_state_ck" CHECK ("executor_tasks"."state" in ('queued', 'triggered', 'in_session', 'done', 'failed', 'expired')),
	CONSTRAINT "executor_tasks_path_ck" CHECK ("executor_tasks"."path" is null or "executor_tasks"."path" in ('connection_request', 'udp', 'next_inform', 'usp_message'))
);
--> statement-breakpoint
CREATE TABLE "device_events" (
	"id" bigserial NOT NULL,
	"device_id" text COLLATE "C" NOT NULL,
	"at" timestamp with time zone NOT NULL,
	"kind" text NOT NULL,
	"payload" jsonb DEFAULT '{}'::jsonb NOT NULL,
	CONSTRAINT "device_events_at_id_pk" PRIMARY KEY("at","id")
);
--> statement-breakpoint
CREATE TABLE "device_parameters" (
	"device_id" text COLLATE "C" NOT NULL,
	"path" text COLLATE "C" NOT NULL,
	"type" text NOT NULL,
	"value" text COLLATE "C" NOT NULL,
	"value_num" numeric,
	"value_bool" boolean,
	"value_time" timestamp with time zone,
	"version_key" text COLLATE "C",
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "device_parameters_device_id_path_pk" PRIMARY KEY("device_id","path")
);
--> statement-breakpoint
CREATE TABLE "devices" (
	"id" text COLLATE "C" PRIMARY KEY NOT NULL,
	"oui" text NOT NULL,
	"manufacturer" text,
	"product_class" text,
	"model_name" text,
	"serial_number" text NOT NULL,
	"hardware_version" text,
	"software_version" text,
	"software_version_key" text COLLATE "C",
	"protocol" text NOT NULL,
	"data_model_root" text DEFAULT 'Device.' NOT NULL,
	"last_contact_at" timestamp with time zone,
	"periodic_inform_interval_s" integer,
	"connection_request_url" text,
	"tags" text[] DEFAULT '{}'::text[] NOT NULL,
	"region" text,
	"site" text,
	"olt" text,
	"pon_port" text,
	"bng" text,
	"service_tier" text,
	"time_zone" text,
	"topology_updated_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "devices_protocol_ck" CHECK ("devices"."protocol" in ('cwmp', 'usp')),
	CONSTRAINT "devices_inform_interval_ck" CHECK ("devices"."periodic_inform_interval_s" is null or "devices"."periodic_inform_interval_s" > 0)
);
--> statement-breakpoint
CREATE TABLE "fleet_settings" (
	"id" boolean PRIMARY KEY DEFAULT true NOT NULL,
	"event_retention_days" integer DEFAULT 90 NOT NULL,
	"event_partitions_ahead" integer DEFAULT 7 NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "fleet_settings_single_row_ck" CHECK ("fleet_settings"."id"),
	CONSTRAINT "fleet_settings_retention_ck" CHECK ("fleet_settings"."event_retention_days" >= 1),
	CONSTRAINT "fleet_settings_ahead_ck" CHECK ("fleet_settings"."event_partitions_ahead" between 1 and 60)
);
--> statement-breakpoint
CREATE TABLE "api_tokens" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"identity_id" uuid NOT NULL,
	"name" text NOT NULL,
	"token_hash" text NOT NULL,
	"prefix" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"expires_at" timestamp with time zone,
	"last_used_at" timestamp with time zone,
	"revoked_at" timestamp with time zone,
	CONSTRAINT "api_tokens_token_hash_unique" UNIQUE("token_hash")
);
--> statement-breakpoint
CREATE TABLE "identities" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"name" text NOT NULL,
	"kind" text NOT NULL,
	"roles" text[] DEFAULT '{}'::text[] NOT NULL,
	"display_name" text,
	"oidc_subject" text,
	"disabled" boolean DEFAULT false NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "identities_name_unique" UNIQUE("name"),
	CONSTRAINT "identities_oidc_subject_unique" UNIQUE("oidc_subject"),
	CONSTRAINT "identities_kind_ck" CHECK ("identities"."kind" in ('user', 'service')),
	CONSTRAINT "identities_roles_ck" CHECK ("identities"."roles" <@ array['viewer', 'operator', 'approver', 'admin']::text[]),
	CONSTRAINT "identities_service_roles_ck" CHECK ("identities"."kind" = 'user' or not ("identities"."roles" && array['approver', 'admin']::text[]))
);
--> statement-breakpoint
CREATE TABLE "firmware_images" (
	"version" text PRIMARY KEY NOT NULL,
	"models" text[] NOT NULL,
	"allowed_from_versions" text[] NOT NULL,
	"url" text NOT NULL,
	"size" bigint NOT NULL,
	"checksum" text NOT NULL,
	"status" text DEFAULT 'draft' NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "firmware_images_status_ck" CHECK ("firmware_images"."status" in ('draft', 'approved', 'deprecated', 'revoked')),
	CONSTRAINT "firmware_images_size_ck" CHECK ("firmware_images"."size" >= 0)
);
--> statement-breakpoint
CREATE TABLE "maintenance_windows" (
	"name" text PRIMARY KEY NOT NULL,
	"days" text[] NOT NULL,
	"start_minute" integer NOT NULL,
	"end_minute" integer NOT NULL,
	CONSTRAINT "maintenance_windows_start_ck" CHECK ("maintenance_windows"."start_minute" between 0 and 1439),
	CONSTRAINT "maintenance_windows_end_ck" CHECK ("maintenance_windows"."end_minute" between 0 and 1440)
);
--> statement-breakpoint
CREATE TABLE "policy_decisions" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"subject_kind" text NOT NULL,
	"subject_id" text,
	"action" text NOT NULL,
	"actor_id" text NOT NULL,
	"engine" text NOT NULL,
	"input_hash" text NOT NULL,
	"bundle_hash" text NOT NULL,
	"policy_hash" text NOT NULL,
	"data_hash" text NOT NULL,
	"allow" boolean NOT NULL,
	"risk_class" text NOT NULL,
	"require_approvals" integer NOT NULL,
	"result" jsonb NOT NULL,
	"input" jsonb,
	"latency_ms" double precision NOT NULL,
	"decided_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "policy_risk_caps" (
	"risk_class" text PRIMARY KEY NOT NULL,
	"max_cohort_size" integer NOT NULL,
	"max_fleet_share" double precision NOT NULL,
	"max_topology_share" double precision NOT NULL,
	"approvals" integer NOT NULL,
	"max_first_wave_size" integer NOT NULL,
	"min_waves" integer NOT NULL,
	"brick_rate_min" double precision NOT NULL,
	"brick_rate_max" double precision NOT NULL,
	"maintenance_window_required" boolean NOT NULL,
	CONSTRAINT "policy_risk_caps_class_ck" CHECK ("policy_risk_caps"."risk_class" in ('low', 'medium', 'high', 'critical'))
);
--> statement-breakpoint
ALTER TABLE "approval_votes" ADD CONSTRAINT "approval_votes_request_id_approval_requests_id_fk" FOREIGN KEY ("request_id") REFERENCES "public"."approval_requests"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "device_parameters" ADD CONSTRAINT "device_parameters_device_id_devices_id_fk" FOREIGN KEY ("device_id") REFERENCES "public"."devices"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "api_tokens" ADD CONSTRAINT "api_tokens_identity_id_identities_id_fk" FOREIGN KEY ("identity_id") REFERENCES "public"."identities"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "approval_requests_workflow_gate_uq" ON "approval_requests" USING btree ("workflow_id","gate");--> statement-breakpoint
CREATE INDEX "approval_requests_status_idx" ON "approval_requests" USING btree ("status","expires_at");--> statement-breakpoint
CREATE INDEX "approval_votes_request_idx" ON "approval_votes" USING btree ("request_id");--> statement-breakpoint
CREATE UNIQUE INDEX "audit_log_hash_uq" ON "audit_log" USING btree ("hash");--> statement-breakpoint
CREATE UNIQUE INDEX "audit_log_prev_hash_uq" ON "audit_log" USING btree ("prev_hash");--> statement-breakpoint
CREATE UNIQUE INDEX "audit_log_idempotency_key_uq" ON "audit_log" USING btree ("idempotency_key");--> statement-breakpoint
CREATE INDEX "audit_log_subject_idx" ON "audit_log" USING btree ("subject_kind","subject_id","seq");--> statement-breakpoint
CREATE INDEX "executor_leases_owner_idx" ON "executor_leases" USING btree ("owner");--> statement-breakpoint
CREATE INDEX "executor_tasks_device_idx" ON "executor_tasks" USING btree ("device_id","id");--> statement-breakpoint
CREATE INDEX "executor_tasks_scope_idx" ON "executor_tasks" USING btree ("scope","step");--> statement-breakpoint
CREATE INDEX "executor_tasks_open_idx" ON "executor_tasks" USING btree ("deadline") WHERE "executor_tasks"."state" in ('queued', 'triggered', 'in_session');--> statement-breakpoint
CREATE INDEX "device_events_device_at_idx" ON "device_events" USING btree ("device_id","at");--> statement-breakpoint
CREATE INDEX "device_events_kind_at_idx" ON "device_events" USING btree ("kind","at");--> statement-breakpoint
CREATE INDEX "device_parameters_path_value_idx" ON "device_parameters" USING btree ("path",left("value", 256));--> statement-breakpoint
CREATE INDEX "device_parameters_path_num_idx" ON "device_parameters" USING btree ("path","value_num");--> statement-breakpoint
CREATE INDEX "device_parameters_path_time_idx" ON "device_parameters" USING btree ("path","value_time");--> statement-breakpoint
CREATE INDEX "device_parameters_path_version_idx" ON "device_parameters" USING btree ("path","version_key");--> statement-breakpoint
CREATE INDEX "devices_product_class_version_idx" ON "devices" USING btree ("product_class","software_version_key");--> statement-breakpoint
CREATE INDEX "devices_model_name_idx" ON "devices" USING btree ("model_name");--> statement-breakpoint
CREATE INDEX "devices_software_version_idx" ON "devices" USING btree ("software_version");--> statement-breakpoint
CREATE INDEX "devices_software_version_key_idx" ON "devices" USING btree ("software_version_key");--> statement-breakpoint
CREATE INDEX "devices_manufacturer_idx" ON "devices" USING btree ("manufacturer");--> statement-breakpoint
CREATE INDEX "devices_oui_idx" ON "devices" USING btree ("oui");--> statement-breakpoint
CREATE INDEX "devices_protocol_idx" ON "devices" USING btree ("protocol");--> statement-breakpoint
CREATE INDEX "devices_region_idx" ON "devices" USING btree ("region");--> statement-breakpoint
CREATE INDEX "devices_site_idx" ON "devices" USING btree ("site");--> statement-breakpoint
CREATE INDEX "devices_olt_pon_idx" ON "devices" USING btree ("olt","pon_port");--> statement-breakpoint
CREATE INDEX "devices_bng_idx" ON "devices" USING btree ("bng");--> statement-breakpoint
CREATE INDEX "devices_service_tier_idx" ON "devices" USING btree ("service_tier");--> statement-breakpoint
CREATE INDEX "devices_last_contact_idx" ON "devices" USING btree ("last_contact_at");--> statement-breakpoint
CREATE INDEX "devices_interval_contact_idx" ON "devices" USING btree ("periodic_inform_interval_s","last_contact_at");--> statement-breakpoint
CREATE INDEX "devices_tags_idx" ON "devices" USING gin ("tags");--> statement-breakpoint
CREATE INDEX "api_tokens_identity_idx" ON "api_tokens" USING btree ("identity_id");--> statement-breakpoint
CREATE INDEX "policy_decisions_subject_idx" ON "policy_decisions" USING btree ("subject_kind","subject_id","decided_at");--> statement-breakpoint
CREATE INDEX "policy_decisions_input_hash_idx" ON "policy_decisions" USING btree ("input_hash");