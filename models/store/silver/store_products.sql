-- model: silver.store_products
-- kind: merge
-- description: The product catalogue from the API export; the latest export of a product wins.
-- unique_key: product_id
-- version: _ingested_at, _source_generation
-- cluster_by: category
-- audit: not_null(product_id, title, price)
-- audit: expression(price >= 0)
-- audit: row_count_balance(bronze.store_products)
WITH batch AS (
  SELECT * FROM @ref(bronze.store_products) WHERE @batch(bronze.store_products)
),
ranked AS (
  SELECT
    *,
    -- Rows of one file share _ingested_at and the generation, and Bronze does not keep source order:
    -- content columns break those ties so a re-run picks the same row.
    ROW_NUMBER() OVER (
      PARTITION BY product_id
      ORDER BY _ingested_at DESC, _source_generation DESC, price DESC, stock DESC, rating DESC, title DESC
    ) AS _rn
  FROM batch
)
SELECT @star_except(_rn)
FROM ranked
WHERE _rn = 1
