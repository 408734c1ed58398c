-- name: enrollment_completion
-- title: M3 enrollment completion rate
-- definition: share of factor enrollments that complete
-- numerator: enroll_complete events with outcome success
-- denominator: enroll_start events plus successful enroll_complete events that have no enroll_start for the same user and factor in the 24 hours before (vendors such as Okta only log the completion)
-- gotchas: a start near the end of a bucket may complete in the next one, so short buckets can exceed 1 transiently; failed completions count as started, not completed
WITH starts AS (
  SELECT time, "user" AS enrollee, factor AS enrolled_factor ${group_cols} FROM events WHERE action = 'enroll_start'
),
completes AS (
  SELECT time, "user" AS enrollee, factor AS enrolled_factor ${group_cols} FROM events WHERE action = 'enroll_complete' AND outcome = 'success'
),
unannounced AS (
  SELECT c.* FROM completes c
  WHERE NOT EXISTS (
    SELECT 1 FROM starts s
    WHERE s.enrollee = c.enrollee AND s.enrolled_factor = c.enrolled_factor
      AND s.time <= c.time AND s.time > c.time - INTERVAL '24 hours'
  )
),
started AS (
  SELECT time ${group_cols} FROM starts
  UNION ALL
  SELECT time ${group_cols} FROM unannounced
),
per_bucket_started AS (
  SELECT date_bin(INTERVAL '${bucket}', time) AS bucket ${group_cols}, COUNT(*) AS started
  FROM started GROUP BY 1 ${group_cols}
),
per_bucket_completed AS (
  SELECT date_bin(INTERVAL '${bucket}', time) AS bucket ${group_cols}, COUNT(*) AS completed
  FROM completes GROUP BY 1 ${group_cols}
)
SELECT
  s.bucket ${group_cols_s},
  COALESCE(c.completed, 0) AS completed,
  s.started,
  CAST(COALESCE(c.completed, 0) AS DOUBLE) / s.started AS completion_rate
FROM per_bucket_started s
LEFT JOIN per_bucket_completed c ON s.bucket = c.bucket ${join_cols}
ORDER BY 1 ${group_cols}
