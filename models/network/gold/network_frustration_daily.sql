-- model: gold.network_frustration_daily
-- kind: incremental_by_time_range
-- description: The frustration index per day, region and ISP: the share of sessions whose average
--   download speed is below 10 Mbps (the speed under which video calls and HD streaming degrade).
--   A session is counted on each day it has measurements, in the region/ISP of its first one.
-- time_column: measured_date
-- unique_key: measured_date, region, isp
-- cluster_by: region, isp
-- inputs: silver.network_measurements
WITH m AS (
  SELECT *
  FROM @ref(silver.network_measurements)
  WHERE measured_date >= @start_date AND measured_date < @end_date
),
sessions AS (
  SELECT
    measured_date,
    session_id,
    MIN_BY(region, measured_at) AS region,
    MIN_BY(isp, measured_at) AS isp,
    AVG(@cast(download_mbps, numeric)) AS avg_download_mbps
  FROM m
  GROUP BY measured_date, session_id
)
SELECT
  measured_date,
  region,
  isp,
  COUNT(*) AS sessions,
  COUNTIF(avg_download_mbps < 10) AS frustrated_sessions,
  @safe_divide(COUNTIF(avg_download_mbps < 10), COUNT(*)) AS frustration_index
FROM sessions
GROUP BY measured_date, region, isp
