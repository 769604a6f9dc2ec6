-- model: silver.store_users
-- kind: merge
-- description: Store customers from the API export; a later export of the same user replaces it.
-- unique_key: user_id
-- version: _ingested_at, _source_generation
-- cluster_by: user_id
-- audit: not_null(user_id)
-- audit: accepted_values(gender, 'female', 'male', 'other')
-- audit: row_count_balance(bronze.store_users)
WITH batch AS (
  SELECT * FROM @ref(bronze.store_users) WHERE @batch(bronze.store_users)
),
ranked AS (
  SELECT
    *,
    -- Rows of one file share _ingested_at and the generation, and Bronze does not keep source order:
    -- content columns break those ties so a re-run picks the same row.
    ROW_NUMBER() OVER (
      PARTITION BY user_id
      ORDER BY _ingested_at DESC, _source_generation DESC, registered_at DESC, email DESC, age DESC
    ) AS _rn
  FROM batch
)
SELECT @star_except(_rn)
FROM ranked
WHERE _rn = 1
