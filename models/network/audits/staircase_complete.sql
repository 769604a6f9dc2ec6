-- audit: staircase_complete
-- model: gold.network_frustration_staircase
-- description: Each day/region/ISP has the five steps once, their sessions add up to the group's
--   sessions, and the top step's cumulative share is 1: no session falls between tiers or into two.
SELECT session_date, region, isp, COUNT(*) AS steps, SUM(sessions) AS sessions, MAX(total_sessions) AS total_sessions
FROM @this
GROUP BY session_date, region, isp
HAVING COUNT(*) <> 5
  OR COUNT(DISTINCT tier) <> 5
  OR SUM(sessions) <> MAX(total_sessions)
  OR MIN(total_sessions) <> MAX(total_sessions)
  OR ABS(MAX(cumulative_share) - 1) > 1e-9
