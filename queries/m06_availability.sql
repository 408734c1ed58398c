-- name: availability
-- title: M6 availability of the 2FA path (good minutes)
-- definition: share of minutes in which the 2FA path worked: a minute is bad when the reference verifier or a synthetic probe reported an error, or when the 2FA success rate (M1) in that minute is significantly below 98 % (the success SLO)
-- numerator: minutes with MFA traffic that are not bad
-- denominator: minutes with at least one mfa_verify attempt or a verifier/probe error
-- gotchas: minutes without any traffic are neither good nor bad (run synthetic probes to cover quiet hours); "significantly below" is a one-sided binomial test at the 1 % level (`significantly_below(good, total, target)`, the same function the SLO evaluator uses), so one failure among eight attempts does not make a minute bad but an outage does; excluded attack traffic (`--attack-exclusion`, on by default) counts neither way, as in M1; the 98 % threshold matches the shipped availability SLO's timeSliceTarget — edit both if yours differs
WITH minutes AS (
  SELECT
    date_bin(INTERVAL '1 minute', time) AS minute ${group_cols},
    COUNT(*) FILTER (WHERE action = 'mfa_verify' AND outcome IN ('success', 'failure', 'denied', 'timeout', 'error') AND NOT attack_excluded) AS attempts,
    COUNT(*) FILTER (WHERE action = 'mfa_verify' AND outcome = 'success' AND NOT attack_excluded) AS successes,
    COUNT(*) FILTER (WHERE source IN ('verifier', 'probe') AND outcome = 'error') AS path_errors
  FROM events_marked
  WHERE action = 'mfa_verify' OR (source IN ('verifier', 'probe') AND outcome = 'error')
  GROUP BY 1 ${group_cols}
)
SELECT
  date_bin(INTERVAL '${bucket}', minute) AS bucket ${group_cols},
  COUNT(*) FILTER (WHERE path_errors = 0 AND NOT significantly_below(successes, attempts, 0.98)) AS good_minutes,
  COUNT(*) AS minutes,
  CAST(COUNT(*) FILTER (WHERE path_errors = 0 AND NOT significantly_below(successes, attempts, 0.98)) AS DOUBLE) / COUNT(*) AS availability
FROM minutes
WHERE attempts > 0 OR path_errors > 0
GROUP BY 1 ${group_cols}
ORDER BY 1 ${group_cols}
