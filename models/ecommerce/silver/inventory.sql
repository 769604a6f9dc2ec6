-- model: silver.inventory
-- kind: incremental_by_time_range
-- description: Stock level changes, one row per event (duplicates from redelivery removed).
-- time_column: event_date
-- unique_key: event_id
-- cluster_by: product_id, warehouse_id
-- watermark: event_time
-- audit: not_null(product_id, warehouse_id, quantity_after, event_time)
-- audit: accepted_values(change_type, 'restock', 'sale', 'adjustment', 'return')
-- audit: expression(quantity_after >= 0)
WITH events AS (
  SELECT *
  FROM @ref(events.inventory)
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
  product_id,
  warehouse_id,
  change_type,
  quantity_change,
  quantity_after,
  reason,
  reference_id
FROM deduped
WHERE _copy = 1
