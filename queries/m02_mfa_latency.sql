-- name: mfa_latency
-- title: M2 challenge-to-verification latency (ms)
-- definition: time from the second-factor challenge to its verification, per factor by default
-- numerator: latency_ms of mfa_verify events (vendor-reported or derived by pairing challenge and verification)
-- denominator: mfa_verify events with a known latency
-- gotchas: percentiles are approximate (t-digest); verifications without a paired challenge have no latency and are not counted (see `with_latency` against M1 attempts); timeouts carry the vendor's timeout as latency
SELECT
  date_bin(INTERVAL '${bucket}', time) AS bucket ${group_cols},
  COUNT(latency_ms) AS with_latency,
  approx_percentile_cont(0.50) WITHIN GROUP (ORDER BY latency_ms) AS p50_ms,
  approx_percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms) AS p95_ms,
  approx_percentile_cont(0.99) WITHIN GROUP (ORDER BY latency_ms) AS p99_ms,
  MAX(latency_ms) AS max_ms
FROM events
WHERE action = 'mfa_verify' AND latency_ms IS NOT NULL
GROUP BY 1 ${group_cols}
ORDER BY 1 ${group_cols}
