-- model: gold.rainfall_monthly
-- kind: incremental_by_time_range
-- description: Monthly precipitation per station: total, rainy days (≥ 1 mm) and the wettest day.
--   The region is the station's region on its latest day of the month.
-- time_column: month
-- grain: month
-- unique_key: station_id, month
-- cluster_by: region, station_id
WITH days AS (
  SELECT *
  FROM @ref(silver.rainfall)
  WHERE date >= @start_date AND date < @end_date
)
SELECT
  @date_trunc(date, month) AS month,
  station_id,
  MAX_BY(region, date) AS region,
  COUNT(*) AS days_observed,
  SUM(@cast(rain_mm, numeric)) AS total_rain_mm,
  COUNTIF(rain_mm >= 1.0) AS rainy_days,
  MAX(rain_mm) AS max_daily_rain_mm
FROM days
GROUP BY 1, station_id
