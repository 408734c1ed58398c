-- name: time_to_revoke
-- title: M9 time to revoke (exposure after a revocation)
-- definition: for each session or device revocation, how long the revoked credential kept working: the last successful use of the same session (session_revoke) or device (device_revoke) after the revocation, minus the revocation time; 0 when it was never used again
-- numerator: exposure_p95_ms and exposure_max_ms over revocations in the bucket; `exposed` counts revocations followed by any accepted use, `within_5m` those whose exposure stayed under 5 minutes (the shipped SLO)
-- denominator: session_revoke and device_revoke events with outcome success and a session_id / device_id to match
-- gotchas: only uses within 24 hours after the revocation are considered (a later reuse of the same id is treated as a new credential); revocations without an id cannot be followed and are not counted; the bucket is the revocation's, so a late use can change an already reported bucket
WITH revokes AS (
  SELECT event_id, time, action,
    CASE WHEN action = 'session_revoke' THEN session_id ELSE device_id END AS credential ${group_cols}
  FROM events
  WHERE action IN ('session_revoke', 'device_revoke') AND outcome = 'success'
    AND (CASE WHEN action = 'session_revoke' THEN session_id ELSE device_id END) IS NOT NULL
),
accepted AS (
  SELECT time, session_id, device_id FROM events_all
  WHERE outcome = 'success'
    AND action NOT IN ('session_revoke', 'device_revoke', 'factor_remove', 'policy_change')
),
uses AS (
  SELECT time, 'session_revoke' AS kind, session_id AS credential FROM accepted WHERE session_id IS NOT NULL
  UNION ALL
  SELECT time, 'device_revoke' AS kind, device_id AS credential FROM accepted WHERE device_id IS NOT NULL
),
exposure AS (
  SELECT r.event_id, r.time ${group_cols_r},
    COALESCE(MAX(CAST(u.time AS BIGINT) - CAST(r.time AS BIGINT)), 0) AS exposure_ms
  FROM revokes r
  LEFT JOIN uses u
    ON u.kind = CAST(r.action AS VARCHAR) AND u.credential = r.credential
   AND u.time > r.time AND u.time <= r.time + INTERVAL '24 hours'
  GROUP BY r.event_id, r.time ${group_cols_r}
)
SELECT
  date_bin(INTERVAL '${bucket}', time) AS bucket ${group_cols},
  COUNT(*) AS revocations,
  COUNT(*) FILTER (WHERE exposure_ms > 0) AS exposed,
  COUNT(*) FILTER (WHERE exposure_ms < 300000) AS within_5m,
  approx_percentile_cont(0.95) WITHIN GROUP (ORDER BY exposure_ms) AS exposure_p95_ms,
  MAX(exposure_ms) AS exposure_max_ms
FROM exposure
GROUP BY 1 ${group_cols}
ORDER BY 1 ${group_cols}
