-- model: gold.rainfall_daily
-- kind: view
-- description: Precipitation per station and day, with the rainy-day flag (≥ 1 mm, the WMO convention).
--   A view: it is Silver row for row (same grain, partitioning and clustering), so a table would store
--   and rewrite a second copy of every Silver row on each load for nothing a query gains.
SELECT
  date,
  station_id,
  station_name,
  region,
  latitude,
  longitude,
  rain_mm,
  rain_mm >= 1.0 AS is_rainy_day
FROM @ref(silver.rainfall)
