-- name: rate_limit_rejections
-- title: M10 rate-limit rejection rate
-- definition: share of authentication attempts rejected by a rate limit
-- numerator: rate_limited events
-- denominator: primary_auth, mfa_verify and rate_limited events (every attempt, rejected or not), not excluded attack traffic
-- gotchas: vendors log throttling differently (Okta org rate limits are not per user); a spike usually means an attack or a misbehaving client, not a capacity problem
SELECT
  date_bin(INTERVAL '${bucket}', time) AS bucket ${group_cols},
  COUNT(*) FILTER (WHERE action = 'rate_limited' AND NOT attack_excluded) AS rejected,
  COUNT(*) FILTER (WHERE NOT attack_excluded) AS attempts,
  CAST(COUNT(*) FILTER (WHERE action = 'rate_limited' AND NOT attack_excluded) AS DOUBLE)
    / NULLIF(COUNT(*) FILTER (WHERE NOT attack_excluded), 0) AS rejection_rate,
  COUNT(*) FILTER (WHERE attack) AS attack_attempts
FROM events_marked
WHERE action IN ('primary_auth', 'mfa_verify', 'rate_limited')
GROUP BY 1 ${group_cols}
ORDER BY 1 ${group_cols}
