-- model: gold.store_purchases_by_segment
-- kind: view
-- description: Purchases by age group and gender over all days, with the average purchase value.
SELECT
  age_group,
  gender,
  SUM(purchases) AS purchases,
  SUM(items) AS items,
  SUM(revenue) AS revenue,
  @safe_divide(SUM(revenue), SUM(purchases)) AS avg_purchase_value
FROM @ref(gold.store_purchases_daily)
GROUP BY age_group, gender
