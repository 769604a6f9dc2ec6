-- model: gold.ecommerce_daily_active_users
-- kind: incremental_by_time_range
-- description: Daily active users, sessions and events.
-- time_column: event_date
-- unique_key: event_date
WITH activity AS (
  SELECT *
  FROM @ref(silver.user_activity)
  WHERE event_date >= @start_date AND event_date < @end_date
)
SELECT
  event_date,
  COUNT(DISTINCT user_id) AS active_users,
  COUNT(DISTINCT session_id) AS sessions,
  COUNT(*) AS events,
  @safe_divide(COUNT(*), COUNT(DISTINCT user_id)) AS events_per_user
FROM activity
GROUP BY event_date
