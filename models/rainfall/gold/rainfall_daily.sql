-- model: gold.rainfall_daily
-- kind: incremental_by_time_range
-- description: Precipitation per station and day, with the rainy-day flag (≥ 1 mm, the WMO convention).
-- time_column: date
-- unique_key: station_id, date
-- cluster_by: region, station_id
-- audit: not_null(station_id, region, rain_mm)
WITH days AS (
  SELECT *
  FROM @ref(silver.rainfall)
  WHERE date >= @start_date AND date < @end_date
)
SELECT
  date,
  station_id,
  station_name,
  region,
  latitude,
  longitude,
  rain_mm,
  rain_mm >= 1.0 AS is_rainy_day
FROM days
