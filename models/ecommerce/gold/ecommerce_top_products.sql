-- model: gold.ecommerce_top_products
-- kind: view
-- description: Products ranked by revenue over all time (a view over the daily product table: never
--   rebuilt).
SELECT
  product_id,
  SUM(orders) AS orders,
  SUM(units) AS units,
  SUM(revenue) AS revenue,
  RANK() OVER (ORDER BY SUM(revenue) DESC) AS revenue_rank
FROM @ref(gold.ecommerce_product_daily)
GROUP BY product_id
