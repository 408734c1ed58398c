-- name: blocked_attempts
-- title: M8 blocked unauthorized attempts
-- definition: authentication attempts the identity provider stopped on purpose
-- numerator: events denied by policy, reported as fraud, flagged as anomalous pushes or blocked on the identity provider's own threat verdict, plus lockouts and rate-limit rejections
-- denominator: none (a count); `denied_by_user` shows pushes the user rejected, the usual signal of MFA fatigue attacks
-- gotchas: a single attack can produce many blocked events; read together with the detection findings, which group them
SELECT
  date_bin(INTERVAL '${bucket}', time) AS bucket ${group_cols},
  COUNT(*) FILTER (WHERE reason IN ('blocked_by_policy', 'policy_denied')) AS denied_by_policy,
  COUNT(*) FILTER (WHERE reason IN ('fraud_reported', 'anomalous_push', 'threat_detected')) AS fraud_or_anomalous,
  COUNT(*) FILTER (WHERE action = 'lockout') AS lockouts,
  COUNT(*) FILTER (WHERE action = 'rate_limited') AS rate_limited,
  COUNT(*) FILTER (WHERE reason = 'user_denied') AS denied_by_user,
  COUNT(*) FILTER (WHERE reason IN ('blocked_by_policy', 'policy_denied', 'fraud_reported', 'anomalous_push', 'threat_detected')
                      OR action IN ('lockout', 'rate_limited')) AS blocked
FROM events
WHERE outcome IN ('denied', 'failure') OR action IN ('lockout', 'rate_limited')
GROUP BY 1 ${group_cols}
ORDER BY 1 ${group_cols}
