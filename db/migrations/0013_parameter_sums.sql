CREATE TABLE "parameter_sums" (
	"path" text COLLATE "C" NOT NULL,
	"manufacturer" text,
	"product_class" text,
	"model_name" text,
	"hardware_version" text,
	"software_version" text,
	"software_version_key" text COLLATE "C",
	"protocol" text,
	"region" text,
	"service_tier" text,
	"n" bigint NOT NULL,
	"s" numeric NOT NULL
);
--> statement-breakpoint
CREATE INDEX "parameter_sums_path_idx" ON "parameter_sums" USING btree ("path");--> statement-breakpoint
-- Custom: the triggers that keep parameter_sums exact, and its backfill. As device_counts (0012):
-- statement-level, one grouped delta per statement, appended rows, numeric values only. Values whose
-- net change is zero (an inform rewriting what was there) cost a grouping of the statement's rows and
-- nothing else. The others' device columns are read from the device rows locked FOR SHARE: a
-- concurrent change of those columns either commits first and is what the lock returns, or waits for
-- this transaction and then moves this value with the rest (parameter_sums_move), so every value ends
-- up counted under its device's final columns.
CREATE FUNCTION "parameter_sums_apply"() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  delta text;
BEGIN
  IF TG_OP = 'TRUNCATE' THEN
    DELETE FROM parameter_sums;
    RETURN NULL;
  END IF;
  delta := CASE TG_OP
    WHEN 'INSERT' THEN 'SELECT device_id, path, 1 AS c, value_num AS v FROM new_rows WHERE value_num IS NOT NULL'
    -- A device's own deletion has already taken its values off (parameter_sums_forget); its row is gone
    -- by the time its values cascade, so the join drops them.
    WHEN 'DELETE' THEN 'SELECT device_id, path, -1 AS c, -value_num AS v FROM old_rows WHERE value_num IS NOT NULL'
    ELSE 'SELECT device_id, path, 1 AS c, value_num AS v FROM new_rows WHERE value_num IS NOT NULL
      UNION ALL SELECT device_id, path, -1, -value_num FROM old_rows WHERE value_num IS NOT NULL'
  END;
  EXECUTE format($q$
    WITH delta AS (
      SELECT device_id, path, sum(c) AS c, sum(v) AS v FROM (%s) x
      GROUP BY 1, 2 HAVING sum(c) <> 0 OR sum(v) <> 0
    ), locked AS (
      SELECT id, manufacturer, product_class, model_name, hardware_version, software_version,
        software_version_key, protocol, region, service_tier
      FROM devices WHERE id IN (SELECT device_id FROM delta) ORDER BY id FOR SHARE
    )
    INSERT INTO parameter_sums (path, manufacturer, product_class, model_name, hardware_version,
        software_version, software_version_key, protocol, region, service_tier, n, s)
    SELECT x.path, d.manufacturer, d.product_class, d.model_name, d.hardware_version, d.software_version,
      d.software_version_key, d.protocol, d.region, d.service_tier, sum(x.c), sum(x.v)
    FROM delta x JOIN locked d ON d.id = x.device_id
    GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10
    HAVING sum(x.c) <> 0 OR sum(x.v) <> 0
  $q$, delta);
  RETURN NULL;
END
$$;--> statement-breakpoint
CREATE TRIGGER "parameter_sums_insert" AFTER INSERT ON "device_parameters" REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION "parameter_sums_apply"();--> statement-breakpoint
CREATE TRIGGER "parameter_sums_update" AFTER UPDATE ON "device_parameters" REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION "parameter_sums_apply"();--> statement-breakpoint
CREATE TRIGGER "parameter_sums_delete" AFTER DELETE ON "device_parameters" REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION "parameter_sums_apply"();--> statement-breakpoint
CREATE TRIGGER "parameter_sums_truncate" AFTER TRUNCATE ON "device_parameters"
  FOR EACH STATEMENT EXECUTE FUNCTION "parameter_sums_apply"();--> statement-breakpoint
-- A device whose counted columns change (a firmware upgrade, a move to another region) takes its
-- numeric values from the old combination to the new one. Reads the values after its own row update,
-- so a parameter write waiting on the row lock (FOR SHARE above) applies on top of this move.
CREATE FUNCTION "parameter_sums_move"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  -- An inform batch moves only last_contact_at: no device is moved and this reads no parameter.
  INSERT INTO parameter_sums (path, manufacturer, product_class, model_name, hardware_version,
      software_version, software_version_key, protocol, region, service_tier, n, s)
    WITH moved AS (
      SELECT o.id, o.manufacturer AS om, o.product_class AS opc, o.model_name AS omn,
        o.hardware_version AS ohv, o.software_version AS osv, o.software_version_key AS osk,
        o.protocol AS opr, o.region AS ore, o.service_tier AS ost,
        n.manufacturer, n.product_class, n.model_name, n.hardware_version, n.software_version,
        n.software_version_key, n.protocol, n.region, n.service_tier
      FROM old_rows o JOIN new_rows n ON n.id = o.id
      WHERE (o.manufacturer, o.product_class, o.model_name, o.hardware_version, o.software_version,
          o.software_version_key, o.protocol, o.region, o.service_tier)
        IS DISTINCT FROM (n.manufacturer, n.product_class, n.model_name, n.hardware_version,
          n.software_version, n.software_version_key, n.protocol, n.region, n.service_tier)
    )
    SELECT x.path, x.manufacturer, x.product_class, x.model_name, x.hardware_version, x.software_version,
      x.software_version_key, x.protocol, x.region, x.service_tier, sum(x.c), sum(x.v)
    FROM (
      SELECT p.path, m.om AS manufacturer, m.opc AS product_class, m.omn AS model_name,
        m.ohv AS hardware_version, m.osv AS software_version, m.osk AS software_version_key,
        m.opr AS protocol, m.ore AS region, m.ost AS service_tier, -1 AS c, -p.value_num AS v
      FROM moved m JOIN device_parameters p ON p.device_id = m.id AND p.value_num IS NOT NULL
      UNION ALL
      SELECT p.path, m.manufacturer, m.product_class, m.model_name, m.hardware_version, m.software_version,
        m.software_version_key, m.protocol, m.region, m.service_tier, 1, p.value_num
      FROM moved m JOIN device_parameters p ON p.device_id = m.id AND p.value_num IS NOT NULL
    ) x
    GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10
    HAVING sum(x.c) <> 0 OR sum(x.v) <> 0;
  RETURN NULL;
END
$$;--> statement-breakpoint
CREATE TRIGGER "parameter_sums_move" AFTER UPDATE ON "devices" REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION "parameter_sums_move"();--> statement-breakpoint
-- Row level and BEFORE: once the row is deleted its parameters cascade away, and a statement trigger
-- could no longer read the values it has to take off.
CREATE FUNCTION "parameter_sums_forget"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO parameter_sums (path, manufacturer, product_class, model_name, hardware_version,
      software_version, software_version_key, protocol, region, service_tier, n, s)
    SELECT p.path, OLD.manufacturer, OLD.product_class, OLD.model_name, OLD.hardware_version,
      OLD.software_version, OLD.software_version_key, OLD.protocol, OLD.region, OLD.service_tier,
      -count(*), -sum(p.value_num)
    FROM device_parameters p WHERE p.device_id = OLD.id AND p.value_num IS NOT NULL
    GROUP BY p.path;
  RETURN OLD;
END
$$;--> statement-breakpoint
CREATE TRIGGER "parameter_sums_forget" BEFORE DELETE ON "devices"
  FOR EACH ROW EXECUTE FUNCTION "parameter_sums_forget"();--> statement-breakpoint
INSERT INTO "parameter_sums" ("path", "manufacturer", "product_class", "model_name", "hardware_version",
    "software_version", "software_version_key", "protocol", "region", "service_tier", "n", "s")
  SELECT p.path, d.manufacturer, d.product_class, d.model_name, d.hardware_version, d.software_version,
    d.software_version_key, d.protocol, d.region, d.service_tier, count(*), sum(p.value_num)
  FROM "device_parameters" p JOIN "devices" d ON d.id = p.device_id
  WHERE p.value_num IS NOT NULL
  GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10;--> statement-breakpoint
ANALYZE "parameter_sums";
