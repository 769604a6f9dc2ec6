-- model: silver.store_carts
-- kind: merge
-- description: Purchases (carts) from the API export with their product lines, one row per cart and
--   purchase day. The purchase day is part of the key, so each merge only touches its own days.
-- unique_key: cart_date, cart_id
-- version: _ingested_at, _source_generation
-- time_column: cart_date
-- cluster_by: user_id
-- inputs: bronze.store_carts
-- audit: not_null(user_id, created_at, total)
-- audit: expression(total >= 0)
-- audit: row_count_balance(bronze.store_carts)
WITH batch AS (
  SELECT * FROM @ref(bronze.store_carts) WHERE @batch(bronze.store_carts)
),
ranked AS (
  SELECT
    *,
    -- Rows of one file share _ingested_at and the generation, and Bronze does not keep source order:
    -- content columns break those ties so a re-run picks the same row.
    ROW_NUMBER() OVER (
      PARTITION BY cart_id
      ORDER BY _ingested_at DESC, _source_generation DESC, created_at DESC, total DESC, total_quantity DESC, user_id DESC
    ) AS _rn
  FROM batch
)
SELECT @to_date(created_at) AS cart_date, @star_except(_rn)
FROM ranked
WHERE _rn = 1
