-- model: gold.ecommerce_daily_revenue
-- kind: incremental_by_time_range
-- description: Orders and revenue per order day, current status, shipping country and currency.
--   A status change moves an order between status rows of its order day.
-- time_column: order_date
-- unique_key: order_date, status, country, currency
-- cluster_by: status, country
WITH orders AS (
  SELECT *
  FROM @ref(silver.orders)
  WHERE order_date >= @start_date AND order_date < @end_date
)
SELECT
  order_date,
  status,
  country,
  currency,
  COUNT(*) AS orders,
  COUNT(DISTINCT customer_id) AS customers,
  SUM(total_amount) AS revenue
FROM orders
GROUP BY order_date, status, country, currency
