-- audit: revenue_consistent
-- model: gold.ecommerce_daily_revenue
-- description: Revenue is never negative and there is at least one order behind every row.
SELECT *
FROM @this
WHERE revenue < 0 OR orders < 1
