-- model: gold.network_regional_daily
-- kind: incremental_by_time_range
-- description: Connection quality per day, region and ISP: tests, users, average and worst speeds and
--   latency.
-- time_column: measured_date
-- unique_key: measured_date, region, isp
-- cluster_by: region, isp
WITH m AS (
  SELECT *
  FROM @ref(silver.network_measurements)
  WHERE measured_date >= @start_date AND measured_date < @end_date
)
SELECT
  measured_date,
  region,
  isp,
  COUNT(*) AS measurements,
  COUNT(DISTINCT user_id) AS users,
  AVG(@cast(download_mbps, numeric)) AS avg_download_mbps,
  AVG(@cast(upload_mbps, numeric)) AS avg_upload_mbps,
  AVG(@cast(latency_ms, numeric)) AS avg_latency_ms,
  MIN(download_mbps) AS min_download_mbps,
  MAX(latency_ms) AS max_latency_ms
FROM m
GROUP BY measured_date, region, isp
