-- audit: purchase_value_matches_lines
-- model: silver.store_carts
-- description: A cart's total is the sum of its product lines (to the cent).
SELECT c.cart_id, c.total, SUM(line.total) AS lines_total
FROM @this AS c
CROSS JOIN @unnest(c.products, line)
GROUP BY c.cart_id, c.total
HAVING ABS(c.total - SUM(line.total)) > 0.01
