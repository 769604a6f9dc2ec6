-- model: gold.rainfall_region_daily
-- kind: incremental_by_time_range
-- description: Precipitation per region and day across its stations.
-- time_column: date
-- unique_key: region, date
-- cluster_by: region
WITH days AS (
  SELECT *
  FROM @ref(silver.rainfall)
  WHERE date >= @start_date AND date < @end_date
)
SELECT
  date,
  region,
  COUNT(*) AS stations,
  SUM(@cast(rain_mm, numeric)) AS total_rain_mm,
  AVG(@cast(rain_mm, numeric)) AS avg_rain_mm,
  MAX(rain_mm) AS max_rain_mm,
  COUNTIF(rain_mm >= 1.0) AS rainy_stations
FROM days
GROUP BY date, region
