-- model: gold.store_purchases_daily
-- kind: incremental_by_time_range
-- description: Purchases per day, customer age group and gender: count, customers, items, revenue and
--   average purchase value. A new users export re-attributes every day (users are a dimension).
-- time_column: cart_date
-- unique_key: cart_date, age_group, gender
-- cluster_by: age_group, gender
WITH carts AS (
  SELECT *
  FROM @ref(silver.store_carts)
  WHERE cart_date >= @start_date AND cart_date < @end_date
),
users AS (
  SELECT
    user_id,
    COALESCE(gender, 'unknown') AS gender,
    CASE
      WHEN age IS NULL THEN 'unknown'
      WHEN age < 18 THEN 'under 18'
      WHEN age < 25 THEN '18-24'
      WHEN age < 35 THEN '25-34'
      WHEN age < 45 THEN '35-44'
      WHEN age < 55 THEN '45-54'
      WHEN age < 65 THEN '55-64'
      ELSE '65+'
    END AS age_group
  FROM @ref(silver.store_users)
)
SELECT
  c.cart_date,
  COALESCE(u.age_group, 'unknown') AS age_group,
  COALESCE(u.gender, 'unknown') AS gender,
  COUNT(*) AS purchases,
  COUNT(DISTINCT c.user_id) AS customers,
  SUM(c.total_quantity) AS items,
  SUM(@cast(c.total, numeric)) AS revenue,
  @safe_divide(SUM(@cast(c.total, numeric)), COUNT(*)) AS avg_purchase_value
FROM carts AS c
LEFT JOIN users AS u ON u.user_id = c.user_id
GROUP BY c.cart_date, 2, 3
