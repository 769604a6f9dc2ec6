-- model: gold.network_frustration_daily
-- kind: incremental_by_time_range
-- description: The single-threshold frustration index per day, region and ISP (kept for the readers
--   of this table): the share of sessions whose average download speed is below 10 Mbps, i.e. the two
--   lowest steps of gold.network_frustration_staircase (sessions as defined by silver.network_sessions).
-- time_column: measured_date
-- unique_key: measured_date, region, isp
-- cluster_by: region, isp
SELECT
  session_date AS measured_date,
  region,
  isp,
  MAX(total_sessions) AS sessions,
  SUM(CASE WHEN max_mbps <= 10 THEN sessions ELSE 0 END) AS frustrated_sessions,
  @safe_divide(SUM(CASE WHEN max_mbps <= 10 THEN sessions ELSE 0 END), MAX(total_sessions)) AS frustration_index
FROM @ref(gold.network_frustration_staircase)
WHERE session_date >= @start_date AND session_date < @end_date
GROUP BY session_date, region, isp
