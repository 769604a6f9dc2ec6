-- model: gold.rainfall_region_monthly
-- kind: incremental_by_time_range
-- description: Monthly precipitation per region: station-days, total and average per station, rainy
--   station-days and the wettest station-day.
-- time_column: month
-- grain: month
-- unique_key: region, month
-- cluster_by: region
WITH days AS (
  SELECT *
  FROM @ref(silver.rainfall)
  WHERE date >= @start_date AND date < @end_date
),
per_station AS (
  SELECT
    @date_trunc(date, month) AS month,
    region,
    station_id,
    SUM(@cast(rain_mm, numeric)) AS station_rain_mm,
    COUNTIF(rain_mm >= 1.0) AS rainy_days,
    MAX(rain_mm) AS max_rain_mm,
    COUNT(*) AS days_observed
  FROM days
  GROUP BY 1, region, station_id
)
SELECT
  month,
  region,
  COUNT(*) AS stations,
  SUM(days_observed) AS station_days,
  SUM(station_rain_mm) AS total_rain_mm,
  AVG(station_rain_mm) AS avg_station_rain_mm,
  SUM(rainy_days) AS rainy_station_days,
  MAX(max_rain_mm) AS max_daily_rain_mm
FROM per_station
GROUP BY month, region
