-- model: gold.store_category_daily
-- kind: incremental_by_time_range
-- description: Units and revenue per product category and day, from the carts' product lines.
-- time_column: cart_date
-- unique_key: cart_date, category
-- cluster_by: category
WITH carts AS (
  SELECT *
  FROM @ref(silver.store_carts)
  WHERE cart_date >= @start_date AND cart_date < @end_date
),
lines AS (
  SELECT c.cart_date, c.cart_id, line.product_id, line.quantity, line.total
  FROM carts AS c
  CROSS JOIN @unnest(c.products, line)
)
SELECT
  l.cart_date,
  COALESCE(p.category, 'unknown') AS category,
  COUNT(DISTINCT l.cart_id) AS carts,
  SUM(l.quantity) AS units,
  SUM(@cast(l.total, numeric)) AS revenue
FROM lines AS l
LEFT JOIN @ref(silver.store_products) AS p ON p.product_id = l.product_id
GROUP BY l.cart_date, 2
