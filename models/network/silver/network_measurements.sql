-- model: silver.network_measurements
-- kind: merge
-- description: Speed tests, deduplicated by measurement id (the latest ingested copy wins). The
--   measurement day is part of the key so a merge only reads its own days.
-- unique_key: measured_date, measurement_id
-- version: _ingested_at, _source_generation
-- time_column: measured_date
-- cluster_by: region, isp
-- audit: not_null(user_id, measured_at, region, isp, download_mbps, upload_mbps, latency_ms)
-- audit: expression(download_mbps >= 0 AND upload_mbps >= 0 AND latency_ms >= 0)
-- audit: row_count_balance(bronze.network_measurements)
WITH batch AS (
  SELECT * FROM @ref(bronze.network_measurements) WHERE @batch(bronze.network_measurements)
),
ranked AS (
  SELECT
    *,
    -- Rows of one file share _ingested_at and the generation, and Bronze does not keep source order:
    -- content columns break those ties so a re-run picks the same row.
    ROW_NUMBER() OVER (
      PARTITION BY measurement_id
      ORDER BY _ingested_at DESC, _source_generation DESC, measured_at DESC, download_mbps DESC, upload_mbps DESC, latency_ms DESC
    ) AS _rn
  FROM batch
)
SELECT @to_date(measured_at) AS measured_date, @star_except(_rn)
FROM ranked
WHERE _rn = 1
