-- model: silver.orders
-- kind: merge
-- description: One row per order in its latest status. Every status change is an `order` event; the
--   newest event wins (ties broken by event id), whatever order they arrive in. ordered_at is the
--   time of the order's first event and only ever moves earlier (a late "pending" event).
-- unique_key: order_id
-- version: updated_at, last_event_id
-- merge_update: ordered_at = LEAST(t.ordered_at, s.ordered_at)
-- merge_update: order_date = LEAST(t.order_date, s.order_date)
-- time_column: order_date
-- cluster_by: customer_id, status
-- watermark: updated_at
-- audit: not_null(customer_id, status, total_amount, currency, ordered_at)
-- audit: accepted_values(status, 'pending', 'confirmed', 'paid', 'shipped', 'delivered', 'cancelled', 'refunded')
-- audit: row_count_balance(events.orders, event_time)
WITH events AS (
  SELECT *
  FROM @ref(events.orders)
  WHERE event_time >= @start AND event_time < @end
),
deduped AS (
  -- A redelivered message can be stored twice (insert-id dedup is best effort): keep one per event id.
  SELECT *, ROW_NUMBER() OVER (PARTITION BY event_id ORDER BY _publish_time, _message_id) AS _copy
  FROM events
),
ranked AS (
  SELECT
    *,
    ROW_NUMBER() OVER (PARTITION BY order_id ORDER BY event_time DESC, event_id DESC) AS _rn,
    MIN(event_time) OVER (PARTITION BY order_id) AS first_event_time
  FROM deduped
  WHERE _copy = 1
)
SELECT
  order_id,
  customer_id,
  status,
  items,
  shipping_address,
  COALESCE(shipping_address.country, 'ZZ') AS country,
  subtotal,
  tax,
  shipping_cost,
  total_amount,
  currency,
  payment_method,
  first_event_time AS ordered_at,
  @to_date(first_event_time) AS order_date,
  event_time AS updated_at,
  event_id AS last_event_id
FROM ranked
WHERE _rn = 1
