-- name: mfa_success_rate
-- title: M1 2FA success rate
-- definition: share of completed second-factor verification attempts that succeed
-- numerator: mfa_verify events with outcome success
-- denominator: mfa_verify events with outcome success, failure, denied, timeout or error; denied and timed-out pushes count as failures (the user did not get in); bypass codes (action bypass) and enrollment events are not verifications, so abandoned enrollments never enter the ratio
-- gotchas: every retry is an attempt (three wrong codes then a right one is 1/4); challenges that were never answered in the log are not attempts — the push timeout record is what counts them; outcome unknown is excluded
SELECT
  date_bin(INTERVAL '${bucket}', time) AS bucket ${group_cols},
  COUNT(*) FILTER (WHERE outcome = 'success') AS successes,
  COUNT(*) AS attempts,
  CAST(COUNT(*) FILTER (WHERE outcome = 'success') AS DOUBLE) / COUNT(*) AS success_rate
FROM events
WHERE action = 'mfa_verify' AND outcome IN ('success', 'failure', 'denied', 'timeout', 'error')
GROUP BY 1 ${group_cols}
ORDER BY 1 ${group_cols}
