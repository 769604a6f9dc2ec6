-- audit: speeds_plausible
-- model: silver.network_measurements
-- description: Consumer lines top out around 10 Gbps and no round trip takes a minute: anything
--   beyond is a unit error (kbps, µs) upstream.
SELECT measurement_id, download_mbps, upload_mbps, latency_ms
FROM @this
WHERE download_mbps > 10000 OR upload_mbps > 10000 OR latency_ms > 60000
