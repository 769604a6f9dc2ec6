-- model: gold.network_frustration_staircase
-- kind: incremental_by_time_range
-- description: The frustration staircase per day, region and ISP: the share of sessions
--   (silver.network_sessions, by their average download speed) on each step of five ordered speed
--   tiers — 1 "< 2 Mbps" (unusable), 2 "2-10 Mbps" (frustrating: video calls and HD streaming
--   degrade), 3 "10-30 Mbps", 4 "30-100 Mbps", 5 ">= 100 Mbps". A tier includes its lower bound
--   (min_mbps) and excludes its upper one (max_mbps, NULL for the top tier). Every day/region/ISP with
--   sessions has all five steps (0 sessions on an empty one): shares add up to 1, and
--   cumulative_share is the share of sessions on this step or a slower one.
-- time_column: session_date
-- unique_key: session_date, region, isp, tier
-- cluster_by: region, isp
-- audit: not_null(region, isp, tier_label, sessions, total_sessions, share, cumulative_share)
-- audit: expression(tier BETWEEN 1 AND 5)
-- audit: expression(share >= 0 AND share <= 1 AND sessions <= total_sessions)
WITH tiers AS (
  SELECT 1 AS tier, '< 2 Mbps' AS tier_label, 0 AS min_mbps, 2 AS max_mbps
  UNION ALL SELECT 2, '2-10 Mbps', 2, 10
  UNION ALL SELECT 3, '10-30 Mbps', 10, 30
  UNION ALL SELECT 4, '30-100 Mbps', 30, 100
  UNION ALL SELECT 5, '>= 100 Mbps', 100, NULL
),
sessions AS (
  SELECT session_date, region, isp, avg_download_mbps
  FROM @ref(silver.network_sessions)
  WHERE session_date >= @start_date AND session_date < @end_date
),
groups AS (
  SELECT session_date, region, isp, COUNT(*) AS total_sessions
  FROM sessions
  GROUP BY session_date, region, isp
),
counts AS (
  SELECT s.session_date, s.region, s.isp, t.tier, COUNT(*) AS sessions
  FROM sessions AS s
  JOIN tiers AS t
    ON s.avg_download_mbps >= t.min_mbps AND (t.max_mbps IS NULL OR s.avg_download_mbps < t.max_mbps)
  GROUP BY s.session_date, s.region, s.isp, t.tier
),
steps AS (
  SELECT
    g.session_date,
    g.region,
    g.isp,
    t.tier,
    t.tier_label,
    t.min_mbps,
    t.max_mbps,
    COALESCE(c.sessions, 0) AS sessions,
    g.total_sessions
  FROM groups AS g
  CROSS JOIN tiers AS t
  LEFT JOIN counts AS c
    ON c.session_date = g.session_date AND c.region = g.region AND c.isp = g.isp AND c.tier = t.tier
)
SELECT
  session_date,
  region,
  isp,
  tier,
  tier_label,
  min_mbps,
  max_mbps,
  sessions,
  total_sessions,
  @safe_divide(sessions, total_sessions) AS share,
  @safe_divide(
    SUM(sessions) OVER (
      PARTITION BY session_date, region, isp
      ORDER BY tier
      ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
    ),
    total_sessions
  ) AS cumulative_share
FROM steps
