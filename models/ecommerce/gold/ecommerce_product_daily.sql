-- model: gold.ecommerce_product_daily
-- kind: incremental_by_time_range
-- description: Units and revenue per product and order day, from the order lines of orders that are
--   not cancelled or refunded.
-- time_column: order_date
-- unique_key: order_date, product_id
-- cluster_by: product_id
WITH orders AS (
  SELECT *
  FROM @ref(silver.orders)
  WHERE order_date >= @start_date AND order_date < @end_date
    AND status NOT IN ('cancelled', 'refunded')
),
lines AS (
  SELECT o.order_date, o.order_id, item.product_id, item.quantity, item.unit_price
  FROM orders AS o
  CROSS JOIN @unnest(o.items, item)
)
SELECT
  order_date,
  product_id,
  COUNT(DISTINCT order_id) AS orders,
  SUM(quantity) AS units,
  SUM(quantity * unit_price) AS revenue
FROM lines
GROUP BY order_date, product_id
