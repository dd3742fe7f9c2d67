-- Custom: the rollup triggers of 0012 and 0013 with static SQL. Built with EXECUTE format(...), their
-- statements were parsed and planned again on every firing, a fixed cost of a few milliseconds in
-- every write transaction (an inform batch fires five of them). PL/pgSQL keeps the plan of a static
-- statement for the session. A transition table can only be named where it exists, so each operation
-- hands its changed rows (added, taken off) to one helper that appends the delta. An update passes
-- only the rows whose counted columns or numeric value changed: an inform batch rewriting what was
-- there appends nothing.
CREATE FUNCTION "device_counts_add"(added devices[], removed devices[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO device_counts (grain, manufacturer, product_class, model_name, hardware_version,
      software_version, software_version_key, protocol, region, service_tier, olt, pon_port, bng, n)
    WITH d AS (
      SELECT a.*, 1 AS s FROM unnest(added) a
      UNION ALL
      SELECT r.*, -1 FROM unnest(removed) r
    )
    SELECT 'device', manufacturer, product_class, model_name, hardware_version, software_version,
      software_version_key, protocol, region, service_tier, NULL, NULL, NULL, sum(s)
    FROM d GROUP BY 2, 3, 4, 5, 6, 7, 8, 9, 10 HAVING sum(s) <> 0
    UNION ALL
    SELECT 'pon', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, olt, pon_port, bng, sum(s)
    FROM d GROUP BY 11, 12, 13 HAVING sum(s) <> 0;
END
$$;--> statement-breakpoint
CREATE OR REPLACE FUNCTION "device_counts_apply"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'TRUNCATE' THEN
    DELETE FROM device_counts;
  ELSIF TG_OP = 'INSERT' THEN
    PERFORM device_counts_add((SELECT array_agg(n::devices) FROM new_rows n), NULL);
  ELSIF TG_OP = 'DELETE' THEN
    PERFORM device_counts_add(NULL, (SELECT array_agg(o::devices) FROM old_rows o));
  ELSE
    PERFORM device_counts_add(array_agg(n::devices) FILTER (WHERE n.id IS NOT NULL),
        array_agg(o::devices) FILTER (WHERE o.id IS NOT NULL))
      FROM old_rows o FULL JOIN new_rows n ON n.id = o.id
      WHERE (o.manufacturer, o.product_class, o.model_name, o.hardware_version, o.software_version,
          o.software_version_key, o.protocol, o.region, o.service_tier, o.olt, o.pon_port, o.bng)
        IS DISTINCT FROM (n.manufacturer, n.product_class, n.model_name, n.hardware_version,
          n.software_version, n.software_version_key, n.protocol, n.region, n.service_tier, n.olt,
          n.pon_port, n.bng)
        OR o.id IS NULL OR n.id IS NULL;
  END IF;
  RETURN NULL;
END
$$;--> statement-breakpoint
-- The device columns of the values that moved are read from the device rows locked FOR SHARE (see 0013).
CREATE FUNCTION "parameter_sums_add"(added device_parameters[], removed device_parameters[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO parameter_sums (path, manufacturer, product_class, model_name, hardware_version,
      software_version, software_version_key, protocol, region, service_tier, n, s)
    WITH delta AS (
      SELECT device_id, path, sum(c) AS c, sum(v) AS v FROM (
        SELECT device_id, path, 1 AS c, value_num AS v FROM unnest(added) WHERE value_num IS NOT NULL
        UNION ALL
        SELECT device_id, path, -1, -value_num FROM unnest(removed) WHERE value_num IS NOT NULL
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
END
$$;--> statement-breakpoint
CREATE OR REPLACE FUNCTION "parameter_sums_apply"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'TRUNCATE' THEN
    DELETE FROM parameter_sums;
  ELSIF TG_OP = 'INSERT' THEN
    PERFORM parameter_sums_add((SELECT array_agg(n::device_parameters) FROM new_rows n WHERE n.value_num IS NOT NULL), NULL);
  ELSIF TG_OP = 'DELETE' THEN
    -- A device's own deletion has already taken its values off (parameter_sums_forget); its row is gone
    -- by the time its values cascade, so the helper's join drops them.
    PERFORM parameter_sums_add(NULL, (SELECT array_agg(o::device_parameters) FROM old_rows o WHERE o.value_num IS NOT NULL));
  ELSE
    PERFORM parameter_sums_add(array_agg(n::device_parameters) FILTER (WHERE n.value_num IS NOT NULL),
        array_agg(o::device_parameters) FILTER (WHERE o.value_num IS NOT NULL))
      FROM old_rows o FULL JOIN new_rows n ON n.device_id = o.device_id AND n.path = o.path
      WHERE o.value_num IS DISTINCT FROM n.value_num;
  END IF;
  RETURN NULL;
END
$$;
