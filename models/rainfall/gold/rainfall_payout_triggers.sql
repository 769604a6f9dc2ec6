-- model: gold.rainfall_payout_triggers
-- kind: incremental_by_time_range
-- description: Station-days whose rain exceeds a parametric-insurance threshold, with the highest tier
--   reached and its payout ratio (share of the insured sum). Days below every threshold have no row.
-- time_column: date
-- unique_key: station_id, date
-- cluster_by: region, station_id
-- audit: accepted_values(tier, 'heavy', 'severe', 'extreme')
WITH thresholds AS (
  SELECT 'heavy' AS tier, 50.0 AS threshold_mm, 0.25 AS payout_ratio
  UNION ALL SELECT 'severe', 80.0, 0.5
  UNION ALL SELECT 'extreme', 120.0, 1.0
),
days AS (
  SELECT date, station_id, region, rain_mm
  FROM @ref(silver.rainfall)
  WHERE date >= @start_date AND date < @end_date
),
exceedances AS (
  SELECT
    d.date,
    d.station_id,
    d.region,
    d.rain_mm,
    t.tier,
    t.threshold_mm,
    t.payout_ratio,
    ROW_NUMBER() OVER (PARTITION BY d.station_id, d.date ORDER BY t.threshold_mm DESC) AS _rn
  FROM days AS d
  JOIN thresholds AS t ON d.rain_mm >= t.threshold_mm
)
SELECT date, station_id, region, rain_mm, tier, threshold_mm, payout_ratio, rain_mm - threshold_mm AS excess_mm
FROM exceedances
WHERE _rn = 1
