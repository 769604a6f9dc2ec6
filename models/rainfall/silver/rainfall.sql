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
WITH batch AS (
  -- Only the rows of the file being loaded (or of the backfill range).
  SELECT * FROM @ref(bronze.rainfall) WHERE @batch(bronze.rainfall)
),
ranked AS (
  SELECT
    *,
    ROW_NUMBER() OVER (
      PARTITION BY station_id, date
      ORDER BY _ingested_at DESC, _source_generation DESC, measured_at DESC, rain_mm DESC
    ) AS _rn
  FROM batch
)
SELECT @star_except(_rn)
FROM ranked
WHERE _rn = 1
