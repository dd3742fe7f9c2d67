CREATE TABLE "datamodel_entries" (
	"oui" text NOT NULL,
	"product_class" text NOT NULL,
	"software_version" text NOT NULL,
	"schema_id" text NOT NULL,
	"origin" text NOT NULL,
	"registered_at" timestamp with time zone NOT NULL,
	CONSTRAINT "datamodel_entries_oui_product_class_software_version_pk" PRIMARY KEY("oui","product_class","software_version")
);
--> statement-breakpoint
CREATE TABLE "datamodel_schemas" (
	"schema_id" text PRIMARY KEY NOT NULL,
	"body" text NOT NULL,
	"bytes" integer NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "datamodel_entries" ADD CONSTRAINT "datamodel_entries_schema_id_datamodel_schemas_schema_id_fk" FOREIGN KEY ("schema_id") REFERENCES "public"."datamodel_schemas"("schema_id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "datamodel_entries_schema_idx" ON "datamodel_entries" USING btree ("schema_id");