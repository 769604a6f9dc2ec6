-- model: gold.ecommerce_funnel_daily
-- kind: incremental_by_time_range
-- description: The activity funnel per day: sessions with a page view, of those with an add to
--   cart, of those with a purchase (steps reached within the session-day).
-- time_column: event_date
-- unique_key: event_date
WITH activity AS (
  SELECT *
  FROM @ref(silver.user_activity)
  WHERE event_date >= @start_date AND event_date < @end_date
),
sessions AS (
  SELECT
    event_date,
    session_id,
    MAX(CASE WHEN activity_type = 'page_view' THEN 1 ELSE 0 END) AS viewed,
    MAX(CASE WHEN activity_type = 'add_to_cart' THEN 1 ELSE 0 END) AS carted,
    MAX(CASE WHEN activity_type = 'purchase' THEN 1 ELSE 0 END) AS purchased
  FROM activity
  GROUP BY event_date, session_id
)
SELECT
  event_date,
  COUNT(*) AS sessions,
  SUM(viewed) AS page_view_sessions,
  SUM(viewed * carted) AS add_to_cart_sessions,
  SUM(viewed * carted * purchased) AS purchase_sessions,
  @safe_divide(SUM(viewed * carted), SUM(viewed)) AS view_to_cart_rate,
  @safe_divide(SUM(viewed * carted * purchased), SUM(viewed * carted)) AS cart_to_purchase_rate
FROM sessions
GROUP BY event_date
