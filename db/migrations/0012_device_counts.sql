CREATE TABLE "device_counts" (
	"grain" text NOT NULL,
	"manufacturer" text,
	"product_class" text,
	"model_name" text,
	"hardware_version" text,
	"software_version" text,
	"software_version_key" text COLLATE "C",
	"protocol" text,
	"region" text,
	"service_tier" text,
	"olt" text,
	"pon_port" text,
	"bng" text,
	"n" bigint NOT NULL,
	CONSTRAINT "device_counts_grain_ck" CHECK ("device_counts"."grain" in ('device', 'pon'))
);
--> statement-breakpoint
DROP INDEX "devices_region_idx";--> statement-breakpoint
DROP INDEX "devices_interval_contact_idx";--> statement-breakpoint
CREATE INDEX "device_events_transfer_failed_idx" ON "device_events" USING btree ("at","device_id") WHERE "device_events"."kind" = 'transfer_complete' and "device_events"."payload"->>'faultCode' <> '0';--> statement-breakpoint
CREATE INDEX "devices_region_idx" ON "devices" USING btree ("region","id","product_class");--> statement-breakpoint
CREATE INDEX "devices_interval_contact_idx" ON "devices" USING btree ("periodic_inform_interval_s","last_contact_at","id","product_class","region","olt","pon_port");--> statement-breakpoint
-- Custom: the triggers that keep device_counts exact, and its backfill. Statement-level triggers with
-- transition tables: one grouped delta per statement (not per row), only combinations whose count
-- changed, appended as new rows (no upsert: concurrent writers never lock each other's rows).
CREATE FUNCTION "device_counts_apply"() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  cols constant text := 'manufacturer, product_class, model_name, hardware_version, software_version, '
    'software_version_key, protocol, region, service_tier, olt, pon_port, bng';
  delta text;
BEGIN
  IF TG_OP = 'TRUNCATE' THEN
    DELETE FROM device_counts;
    RETURN NULL;
  END IF;
  -- +1 per new row, -1 per old row; an UPDATE that keeps every counted column nets to nothing.
  delta := CASE TG_OP
    WHEN 'INSERT' THEN format('SELECT %s, 1 AS s FROM new_rows', cols)
    WHEN 'DELETE' THEN format('SELECT %s, -1 AS s FROM old_rows', cols)
    ELSE format('SELECT %s, 1 AS s FROM new_rows UNION ALL SELECT %s, -1 FROM old_rows', cols, cols)
  END;
  EXECUTE format($q$
    INSERT INTO device_counts (grain, %s, n)
    SELECT * FROM (
      SELECT 'device', manufacturer, product_class, model_name, hardware_version, software_version,
        software_version_key, protocol, region, service_tier, NULL, NULL, NULL, sum(s)
      FROM (%s) d
      GROUP BY manufacturer, product_class, model_name, hardware_version, software_version,
        software_version_key, protocol, region, service_tier
      HAVING sum(s) <> 0
      UNION ALL
      SELECT 'pon', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, olt, pon_port, bng, sum(s)
      FROM (%s) d GROUP BY olt, pon_port, bng HAVING sum(s) <> 0
    ) x
  $q$, cols, delta, delta);
  RETURN NULL;
END
$$;--> statement-breakpoint
CREATE TRIGGER "device_counts_insert" AFTER INSERT ON "devices" REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION "device_counts_apply"();--> statement-breakpoint
CREATE TRIGGER "device_counts_update" AFTER UPDATE ON "devices" REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION "device_counts_apply"();--> statement-breakpoint
CREATE TRIGGER "device_counts_delete" AFTER DELETE ON "devices" REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION "device_counts_apply"();--> statement-breakpoint
CREATE TRIGGER "device_counts_truncate" AFTER TRUNCATE ON "devices"
  FOR EACH STATEMENT EXECUTE FUNCTION "device_counts_apply"();--> statement-breakpoint
INSERT INTO "device_counts" ("grain", "manufacturer", "product_class", "model_name", "hardware_version",
    "software_version", "software_version_key", "protocol", "region", "service_tier", "n")
  SELECT 'device', manufacturer, product_class, model_name, hardware_version, software_version,
    software_version_key, protocol, region, service_tier, count(*)
  FROM "devices" GROUP BY 2, 3, 4, 5, 6, 7, 8, 9, 10;--> statement-breakpoint
INSERT INTO "device_counts" ("grain", "olt", "pon_port", "bng", "n")
  SELECT 'pon', olt, pon_port, bng, count(*) FROM "devices" GROUP BY 2, 3, 4;--> statement-breakpoint
ANALYZE "device_counts";
