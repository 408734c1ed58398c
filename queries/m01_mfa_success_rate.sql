-- name: mfa_success_rate
-- title: M1 2FA success rate
-- definition: share of completed second-factor verification attempts that succeed, attack traffic left out
-- numerator: mfa_verify events with outcome success, not excluded attack traffic
-- denominator: mfa_verify events with outcome success, failure, denied, timeout or error, not excluded attack traffic; denied and timed-out pushes count as failures (the user did not get in); bypass codes (action bypass) and enrollment events are not verifications, so abandoned enrollments never enter the ratio
-- gotchas: every retry is an attempt (three wrong codes then a right one is 1/4); challenges that were never answered in the log are not attempts — the push timeout record is what counts them; outcome unknown is excluded; attack_attempts are the attempts of attack campaigns (push fatigue, OTP brute force, spray by default), left out of the rate unless `--attack-exclusion off`
SELECT
  date_bin(INTERVAL '${bucket}', time) AS bucket ${group_cols},
  COUNT(*) FILTER (WHERE outcome = 'success' AND NOT attack_excluded) AS successes,
  COUNT(*) FILTER (WHERE NOT attack_excluded) AS attempts,
  CAST(COUNT(*) FILTER (WHERE outcome = 'success' AND NOT attack_excluded) AS DOUBLE)
    / NULLIF(COUNT(*) FILTER (WHERE NOT attack_excluded), 0) AS success_rate,
  COUNT(*) FILTER (WHERE attack) AS attack_attempts
FROM events_marked
WHERE action = 'mfa_verify' AND outcome IN ('success', 'failure', 'denied', 'timeout', 'error')
GROUP BY 1 ${group_cols}
ORDER BY 1 ${group_cols}
