-- Custom: parameter_sums_add (0014) reads and locks the rows of the devices whose values moved with
-- `id IN (SELECT ...)`. PL/pgSQL keeps one generic plan for it, made when the function first ran in
-- the session: planned while devices was small (a fresh fleet, a storm of new CPEs), that plan is a
-- hash join over a sequential scan of devices, and every later inform batch of the session read the
-- whole table (46 000 rows for a batch of 500 values, 17 ms of its 19). Each device is now looked up
-- by its key in a lateral subquery: a locking subquery is never flattened into a join, so it stays an
-- index probe per device whatever the statistics. Devices are visited in key order, as ORDER BY id
-- did, so concurrent batches take their row locks in the same order.
CREATE OR REPLACE FUNCTION "parameter_sums_add"(added device_parameters[], removed device_parameters[]) RETURNS void
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
      SELECT d.* FROM (SELECT DISTINCT device_id FROM delta ORDER BY device_id) k,
        LATERAL (
          SELECT id, manufacturer, product_class, model_name, hardware_version, software_version,
            software_version_key, protocol, region, service_tier
          FROM devices WHERE id = k.device_id FOR SHARE
        ) d
    )
    SELECT x.path, d.manufacturer, d.product_class, d.model_name, d.hardware_version, d.software_version,
      d.software_version_key, d.protocol, d.region, d.service_tier, sum(x.c), sum(x.v)
    FROM delta x JOIN locked d ON d.id = x.device_id
    GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10
    HAVING sum(x.c) <> 0 OR sum(x.v) <> 0;
END
$$;
