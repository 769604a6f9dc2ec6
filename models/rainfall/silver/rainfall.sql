-- model: silver.rainfall
-- kind: merge
-- description: Daily rain per station, deduplicated. A station-day loaded again (a corrected file)
--   replaces the earlier value: the latest ingested row wins.
-- unique_key: station_id, date
-- version: _ingested_at, _source_generation
-- time_column: date
-- cluster_by: region, station_id
-- audit: not_null(station_id, region, date, rain_mm)
-- audit: expression(rain_mm >= 0)
-- audit: row_count_balance(bronze.rainfall)
-- The rows of the file being loaded (or of the backfill range) are read where needed rather than
-- through one CTE: DuckDB materialises a CTE referenced more than once (a copy of the batch).
-- Station-days the batch holds more than once: most files hold none, and then the batch passes as it
-- is. Otherwise only those rows are ranked and the others pass through a hash anti-join (a window
-- over the whole batch sorted every row).
-- Whether any station-day may repeat is a distinct count of one hash per row, several times cheaper
-- than grouping the keys (which spills on a large file); the keys are grouped only when it says so
-- (a hash collision costs that grouping, never a wrong row).
WITH may_repeat AS (
  SELECT COUNT(*) > COUNT(DISTINCT @key_hash(station_id, date)) AS yes
  FROM @ref(bronze.rainfall)
  WHERE @batch(bronze.rainfall)
),
dup AS (
  SELECT station_id, date
  FROM @ref(bronze.rainfall)
  WHERE @batch(bronze.rainfall) AND (SELECT yes FROM may_repeat)
  GROUP BY station_id, date
  HAVING COUNT(*) > 1
),
ranked AS (
  SELECT
    b.*,
    ROW_NUMBER() OVER (
      PARTITION BY b.station_id, b.date
      ORDER BY b._ingested_at DESC, b._source_generation DESC, b.measured_at DESC, b.rain_mm DESC
    ) AS _rn
  FROM (SELECT * FROM @ref(bronze.rainfall) WHERE @batch(bronze.rainfall)) AS b
  JOIN dup AS d ON d.station_id = b.station_id AND d.date = b.date
)
SELECT *
FROM @ref(bronze.rainfall)
WHERE @batch(bronze.rainfall) AND NOT (SELECT yes FROM may_repeat)
UNION ALL
SELECT b.*
FROM (SELECT * FROM @ref(bronze.rainfall) WHERE @batch(bronze.rainfall)) AS b
LEFT JOIN dup AS d ON d.station_id = b.station_id AND d.date = b.date
WHERE (SELECT yes FROM may_repeat) AND d.station_id IS NULL
UNION ALL
SELECT @star_except(_rn)
FROM ranked
WHERE _rn = 1
