-- Custom: the rollup triggers of 0012 and 0013 with static SQL. Built with EXECUTE format(...), their
-- statements were parsed and planned again on every firing, a fixed cost of a few milliseconds in
-- every write transaction (an inform batch fires five of them). PL/pgSQL keeps the plan of a static
-- statement for the session; a transition table can only be named where it exists, hence one
-- statement per operation. Same rows appended as before.
CREATE OR REPLACE FUNCTION "device_counts_apply"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'TRUNCATE' THEN
    DELETE FROM device_counts;
  ELSIF TG_OP = 'INSERT' THEN
    INSERT INTO device_counts (grain, manufacturer, product_class, model_name, hardware_version,
        software_version, software_version_key, protocol, region, service_tier, olt, pon_port, bng, n)
      SELECT 'device', manufacturer, product_class, model_name, hardware_version, software_version,
        software_version_key, protocol, region, service_tier, NULL, NULL, NULL, count(*)
      FROM new_rows GROUP BY 2, 3, 4, 5, 6, 7, 8, 9, 10
      UNION ALL
      SELECT 'pon', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, olt, pon_port, bng, count(*)
      FROM new_rows GROUP BY 11, 12, 13;
  ELSIF TG_OP = 'DELETE' THEN
    INSERT INTO device_counts (grain, manufacturer, product_class, model_name, hardware_version,
        software_version, software_version_key, protocol, region, service_tier, olt, pon_port, bng, n)
      SELECT 'device', manufacturer, product_class, model_name, hardware_version, software_version,
        software_version_key, protocol, region, service_tier, NULL, NULL, NULL, -count(*)
      FROM old_rows GROUP BY 2, 3, 4, 5, 6, 7, 8, 9, 10
      UNION ALL
      SELECT 'pon', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, olt, pon_port, bng, -count(*)
      FROM old_rows GROUP BY 11, 12, 13;
  ELSE
    -- +1 per new row, -1 per old row, of the rows whose counted columns changed (an inform batch moves
    -- only last_contact_at: it joins its rows and appends nothing).
    INSERT INTO device_counts (grain, manufacturer, product_class, model_name, hardware_version,
        software_version, software_version_key, protocol, region, service_tier, olt, pon_port, bng, n)
      WITH moved AS (
        SELECT o.* FROM old_rows o JOIN new_rows n ON n.id = o.id
        WHERE (o.manufacturer, o.product_class, o.model_name, o.hardware_version, o.software_version,
            o.software_version_key, o.protocol, o.region, o.service_tier, o.olt, o.pon_port, o.bng)
          IS DISTINCT FROM (n.manufacturer, n.product_class, n.model_name, n.hardware_version,
            n.software_version, n.software_version_key, n.protocol, n.region, n.service_tier, n.olt,
            n.pon_port, n.bng)
      ), d AS (
        SELECT n.*, 1 AS s FROM new_rows n JOIN moved m ON m.id = n.id
        UNION ALL
        SELECT m.*, -1 FROM moved m
      )
      SELECT 'device', manufacturer, product_class, model_name, hardware_version, software_version,
        software_version_key, protocol, region, service_tier, NULL, NULL, NULL, sum(s)
      FROM d GROUP BY 2, 3, 4, 5, 6, 7, 8, 9, 10 HAVING sum(s) <> 0
      UNION ALL
      SELECT 'pon', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, olt, pon_port, bng, sum(s)
      FROM d GROUP BY 11, 12, 13 HAVING sum(s) <> 0;
  END IF;
  RETURN NULL;
END
$$;--> statement-breakpoint
CREATE OR REPLACE FUNCTION "parameter_sums_apply"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'TRUNCATE' THEN
    DELETE FROM parameter_sums;
  ELSIF TG_OP = 'INSERT' THEN
    INSERT INTO parameter_sums (path, manufacturer, product_class, model_name, hardware_version,
        software_version, software_version_key, protocol, region, service_tier, n, s)
      WITH delta AS (
        SELECT device_id, path, count(*) AS c, sum(value_num) AS v FROM new_rows
        WHERE value_num IS NOT NULL GROUP BY 1, 2
      ), locked AS (
        SELECT id, manufacturer, product_class, model_name, hardware_version, software_version,
          software_version_key, protocol, region, service_tier
        FROM devices WHERE id IN (SELECT device_id FROM delta) ORDER BY id FOR SHARE
      )
      SELECT x.path, d.manufacturer, d.product_class, d.model_name, d.hardware_version, d.software_version,
        d.software_version_key, d.protocol, d.region, d.service_tier, sum(x.c), sum(x.v)
      FROM delta x JOIN locked d ON d.id = x.device_id
      GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10;
  ELSIF TG_OP = 'DELETE' THEN
    -- A device's own deletion has already taken its values off (parameter_sums_forget); its row is gone
    -- by the time its values cascade, so the join drops them.
    INSERT INTO parameter_sums (path, manufacturer, product_class, model_name, hardware_version,
        software_version, software_version_key, protocol, region, service_tier, n, s)
      WITH delta AS (
        SELECT device_id, path, -count(*) AS c, -sum(value_num) AS v FROM old_rows
        WHERE value_num IS NOT NULL GROUP BY 1, 2
      ), locked AS (
        SELECT id, manufacturer, product_class, model_name, hardware_version, software_version,
          software_version_key, protocol, region, service_tier
        FROM devices WHERE id IN (SELECT device_id FROM delta) ORDER BY id FOR SHARE
      )
      SELECT x.path, d.manufacturer, d.product_class, d.model_name, d.hardware_version, d.software_version,
        d.software_version_key, d.protocol, d.region, d.service_tier, sum(x.c), sum(x.v)
      FROM delta x JOIN locked d ON d.id = x.device_id
      GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10;
  ELSE
    -- Values whose net change is zero (an inform rewriting what was there) cost a grouping and no more.
    INSERT INTO parameter_sums (path, manufacturer, product_class, model_name, hardware_version,
        software_version, software_version_key, protocol, region, service_tier, n, s)
      WITH delta AS (
        SELECT device_id, path, sum(c) AS c, sum(v) AS v FROM (
          SELECT device_id, path, 1 AS c, value_num AS v FROM new_rows WHERE value_num IS NOT NULL
          UNION ALL
          SELECT device_id, path, -1, -value_num FROM old_rows WHERE value_num IS NOT NULL
        ) u GROUP BY 1, 2 HAVING sum(c) <> 0 OR sum(v) <> 0
      ), locked AS (
        SELECT id, manufacturer, product_class, model_name, hardware_version, software_version,
          software_version_key, protocol, region, service_tier
        FROM devices WHERE id IN (SELECT device_id FROM delta) ORDER BY id FOR SHARE
      )
      SELECT x.path, d.manufacturer, d.product_class, d.model_name, d.hardware_version, d.software_version,
        d.software_version_key, d.protocol, d.region, d.service_tier, sum(x.c), sum(x.v)
      FROM delta x JOIN locked d ON d.id = x.device_id
      GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10
      HAVING sum(x.c) <> 0 OR sum(x.v) <> 0;
  END IF;
  RETURN NULL;
END
$$;
