-- model: gold.store_customers
-- kind: full
-- description: The customer dimension with its age group. Rebuilt whole, only when a users export
--   arrives (it is the export: a few thousand rows). No personal data in clear: names and email are
--   masked columns of Silver, so Gold keeps only the keyed hash of the email (email_key) for joins.
-- unique_key: user_id
-- audit: unique(user_id)
SELECT
  user_id,
  email_key,
  age,
  CASE
    WHEN age IS NULL THEN 'unknown'
    WHEN age < 18 THEN 'under 18'
    WHEN age < 25 THEN '18-24'
    WHEN age < 35 THEN '25-34'
    WHEN age < 45 THEN '35-44'
    WHEN age < 55 THEN '45-54'
    WHEN age < 65 THEN '55-64'
    ELSE '65+'
  END AS age_group,
  COALESCE(gender, 'unknown') AS gender,
  city,
  country
FROM @ref(silver.store_users)
