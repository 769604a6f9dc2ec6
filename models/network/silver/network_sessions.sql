-- model: silver.network_sessions
-- kind: incremental_by_time_range
-- description: Measuring sessions derived from the speed tests. A session is one user's run of tests
--   on one UTC day in which consecutive tests are at most 30 minutes apart: a longer gap, or
--   midnight, starts a new session. It belongs to its day (session_date), and to the region, ISP and
--   connection type of its first test; its speed is the average download speed of its tests.
--   session_id is <user_id>/<session_date>/<n>, n numbering the user's sessions of that day from 1 in
--   time order (ties broken by measurement id). A source's own session ids are not used: they are
--   optional and not comparable across sources. A day's sessions depend only on that day's tests, so
--   a day is recomputed alone.
-- time_column: session_date
-- unique_key: session_date, session_id
-- cluster_by: region, isp
-- audit: not_null(user_id, region, isp, started_at, ended_at, measurements, avg_download_mbps)
-- audit: expression(measurements >= 1 AND ended_at >= started_at AND avg_download_mbps >= 0)
WITH m AS (
  SELECT measured_date, measurement_id, user_id, measured_at, region, isp, connection_type, download_mbps, upload_mbps, latency_ms
  FROM @ref(silver.network_measurements)
  WHERE measured_date >= @start_date AND measured_date < @end_date
),
gaps AS (
  SELECT
    *,
    LAG(measured_at) OVER (PARTITION BY user_id, measured_date ORDER BY measured_at, measurement_id) AS previous_at
  FROM m
),
starts AS (
  SELECT
    *,
    CASE WHEN previous_at IS NULL OR measured_at > previous_at + INTERVAL 30 MINUTE THEN 1 ELSE 0 END AS starts_session
  FROM gaps
),
numbered AS (
  SELECT
    *,
    SUM(starts_session) OVER (
      PARTITION BY user_id, measured_date
      ORDER BY measured_at, measurement_id
      ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
    ) AS session_no
  FROM starts
)
SELECT
  measured_date AS session_date,
  user_id || '/' || @cast(measured_date, string) || '/' || @cast(session_no, string) AS session_id,
  user_id,
  -- Exactly one test starts each session: its attributes are the session's.
  MAX(CASE WHEN starts_session = 1 THEN region END) AS region,
  MAX(CASE WHEN starts_session = 1 THEN isp END) AS isp,
  MAX(CASE WHEN starts_session = 1 THEN connection_type END) AS connection_type,
  MIN(measured_at) AS started_at,
  MAX(measured_at) AS ended_at,
  COUNT(*) AS measurements,
  AVG(@cast(download_mbps, numeric)) AS avg_download_mbps,
  AVG(@cast(upload_mbps, numeric)) AS avg_upload_mbps,
  AVG(@cast(latency_ms, numeric)) AS avg_latency_ms,
  MIN(download_mbps) AS min_download_mbps
FROM numbered
GROUP BY measured_date, user_id, session_no
