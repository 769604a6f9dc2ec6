-- model: gold.ecommerce_inventory_current
-- kind: merge
-- description: Current stock per product and warehouse: the level after the latest change, flagged
--   when at or below the low-stock threshold (10 units). An older change arriving late never
--   overwrites a newer level.
-- unique_key: product_id, warehouse_id
-- version: updated_at, last_event_id
-- cluster_by: product_id, warehouse_id
WITH changes AS (
  SELECT *
  FROM @ref(silver.inventory)
  WHERE event_date >= @start_date AND event_date < @end_date
),
latest AS (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY product_id, warehouse_id ORDER BY event_time DESC, event_id DESC) AS _rn
  FROM changes
)
SELECT
  product_id,
  warehouse_id,
  quantity_after AS quantity_on_hand,
  quantity_after <= 10 AS low_stock,
  change_type AS last_change_type,
  event_time AS updated_at,
  event_id AS last_event_id
FROM latest
WHERE _rn = 1
