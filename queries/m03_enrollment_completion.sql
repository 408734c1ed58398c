-- name: enrollment_completion
-- title: M3 enrollment completion rate
-- definition: share of factor enrollments that complete
-- numerator: enroll_complete events with outcome success
-- denominator: enroll_start events plus successful enroll_complete events that have no enroll_start for the same user and factor in the 24 hours before (vendors such as Okta only log the completion)
-- gotchas: a start near the end of a bucket may complete in the next one, so short buckets can exceed 1 transiently; failed completions are not counted (their start already is); starts and completions are matched per user and factor with a running maximum, not a join
WITH enroll AS (
  -- one scan: the latest start of the same user and factor up to each row (starts sort before
  -- completions at the same instant)
  SELECT time, action, outcome ${group_cols},
    MAX(CASE WHEN action = 'enroll_start' THEN time END) OVER (
      PARTITION BY "user", factor ORDER BY time, action DESC
      ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS last_start
  FROM events
  WHERE action = 'enroll_start' OR (action = 'enroll_complete' AND outcome = 'success')
),
per_bucket AS (
  SELECT date_bin(INTERVAL '${bucket}', time) AS bucket ${group_cols},
    COUNT(*) FILTER (WHERE action = 'enroll_complete') AS completed,
    COUNT(*) FILTER (WHERE action = 'enroll_start'
      OR last_start IS NULL OR last_start <= time - INTERVAL '24 hours') AS started
  FROM enroll
  GROUP BY 1 ${group_cols}
)
SELECT bucket ${group_cols}, completed, started,
  CAST(completed AS DOUBLE) / started AS completion_rate
FROM per_bucket
WHERE started > 0
ORDER BY 1 ${group_cols}
