-- model: gold.ecommerce_retention_cells
-- kind: incremental_by_time_range
-- description: Weekly cohort cells: users of the cohort (ISO week of their first activity) active in
--   each later week. Recomputed per activity week; cohort sizes are the week-0 cells.
-- time_column: activity_week
-- grain: week
-- unique_key: activity_week, cohort_week
WITH active AS (
  SELECT DISTINCT user_id, @date_trunc(event_date, week) AS activity_week
  FROM @ref(silver.user_activity)
  WHERE event_date >= @start_date AND event_date < @end_date
),
cohorts AS (
  SELECT user_id, @date_trunc(MIN(event_date), week) AS cohort_week
  FROM @ref(silver.user_activity)
  WHERE user_id IN (SELECT user_id FROM active)
  GROUP BY user_id
)
SELECT
  a.activity_week,
  c.cohort_week,
  @date_diff(a.activity_week, c.cohort_week, week) AS week_number,
  COUNT(*) AS active_users
FROM active AS a
JOIN cohorts AS c ON c.user_id = a.user_id
GROUP BY a.activity_week, c.cohort_week
