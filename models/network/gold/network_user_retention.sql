-- model: gold.network_user_retention
-- kind: view
-- description: Weekly user retention: share of each cohort measuring again N weeks later.
SELECT
  c.cohort_week,
  c.week_number,
  c.activity_week,
  c.active_users,
  s.active_users AS cohort_size,
  @safe_divide(c.active_users, s.active_users) AS retention
FROM @ref(gold.network_retention_cells) AS c
JOIN @ref(gold.network_retention_cells) AS s
  ON s.cohort_week = c.cohort_week AND s.week_number = 0
