-- model: silver.store_carts
-- kind: merge
-- description: Purchases (carts) from the store API with their product lines, one row per cart. The
--   API gives carts no date, so a pulled cart carries its pull's time (the contract's fallback) and is
--   pulled again by every run: a cart's created_at (and cart_date) is the earliest time it was seen and
--   only ever moves earlier, while its other columns come from the latest load.
-- unique_key: cart_id
-- version: _ingested_at, _source_generation
-- merge_update: created_at = LEAST(t.created_at, s.created_at)
-- merge_update: cart_date = LEAST(t.cart_date, s.cart_date)
-- time_column: cart_date
-- cluster_by: user_id
-- audit: not_null(user_id, created_at, total)
-- audit: expression(total >= 0)
-- audit: row_count_balance(bronze.store_carts)
WITH batch AS (
  SELECT * FROM @ref(bronze.store_carts) WHERE @batch(bronze.store_carts)
),
ranked AS (
  SELECT
    -- The earliest time of a cart within the batch is kept, whichever row wins.
    * REPLACE (MIN(created_at) OVER (PARTITION BY cart_id) AS created_at),
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
