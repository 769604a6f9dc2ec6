-- model: silver.user_activity
-- kind: incremental_by_time_range
-- description: User interactions, one row per event, with the metadata struct flattened.
-- time_column: event_date
-- unique_key: event_id
-- cluster_by: user_id, activity_type
-- watermark: event_time
-- audit: not_null(user_id, session_id, activity_type, event_time)
-- audit: accepted_values(activity_type, 'page_view', 'product_view', 'search', 'add_to_cart', 'remove_from_cart', 'checkout', 'purchase', 'login', 'logout')
WITH events AS (
  SELECT *
  FROM @ref(events.user_activity)
  WHERE event_time >= @start AND event_time < @end
),
deduped AS (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY event_id ORDER BY _publish_time, _message_id) AS _copy
  FROM events
)
SELECT
  event_id,
  event_time,
  @to_date(event_time) AS event_date,
  user_id,
  session_id,
  activity_type,
  page,
  product_id,
  search_query,
  metadata.device AS device,
  metadata.browser AS browser,
  metadata.os AS os,
  metadata.country AS country,
  metadata.referrer AS referrer,
  metadata.duration_ms AS duration_ms
FROM deduped
WHERE _copy = 1
