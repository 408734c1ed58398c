-- name: recovery_rate
-- title: M4 recovery requests per 1k active users, with spikes
-- definition: account-recovery requests per 1,000 users active in the bucket, and a robust z-score of that rate against the trailing 24 buckets of the same group; `spike` flags z >= 3.5
-- numerator: recovery_request events (any outcome: an attacker's failed attempt is still a signal)
-- denominator: distinct users with a primary_auth, mfa_verify or session_start event in the bucket, divided by 1,000
-- gotchas: z = (rate - median) / scale with scale = 1.4826 x MAD of the trailing rates, floored at the rate one single request adds (1000 / active users) so a flat baseline of zeros cannot turn one request into an infinite spike; no spike is flagged until 8 trailing buckets exist; use --bucket 1h or 1d (one-minute buckets are too sparse for a baseline)
-- The hourly rates are computed once into a table; the baseline joins read them twice.
CREATE OR REPLACE TABLE m04_rated AS
WITH active AS (
  -- distinct users per bucket as a grouping (much cheaper than COUNT(DISTINCT … ) FILTER)
  SELECT bucket ${group_cols}, COUNT(*) AS active_users FROM (
    SELECT date_bin(INTERVAL '${bucket}', time) AS bucket ${group_cols}, "user"
    FROM events WHERE action IN ('primary_auth', 'mfa_verify', 'session_start')
    GROUP BY 1 ${group_cols}, "user"
  ) GROUP BY 1 ${group_cols}
),
requests AS (
  SELECT date_bin(INTERVAL '${bucket}', time) AS bucket ${group_cols}, COUNT(*) AS recoveries
  FROM events WHERE action = 'recovery_request'
  GROUP BY 1 ${group_cols}
),
per AS (
  SELECT bucket ${group_cols}, SUM(recoveries) AS recoveries, SUM(active_users) AS active_users
  FROM (
    SELECT bucket ${group_cols}, 0 AS recoveries, active_users FROM active
    UNION ALL
    SELECT bucket ${group_cols}, recoveries, 0 AS active_users FROM requests
  ) GROUP BY 1 ${group_cols}
),
rated AS (
  SELECT *,
    CASE WHEN active_users > 0 THEN 1000.0 * recoveries / active_users END AS per_1k_users,
    ROW_NUMBER() OVER (PARTITION BY 1 ${group_cols} ORDER BY bucket) AS seq
  FROM per
)
SELECT * FROM rated;

WITH baseline AS (
  SELECT s.bucket ${group_cols_s}, median(c.per_1k_users) AS baseline_median, COUNT(c.per_1k_users) AS baseline_buckets
  FROM m04_rated s JOIN m04_rated c
    ON c.seq >= s.seq - 24 AND c.seq < s.seq ${join_cols}
  GROUP BY s.bucket ${group_cols_s}
),
spread AS (
  SELECT s.bucket ${group_cols_s},
    median(CASE WHEN c.per_1k_users >= b.baseline_median THEN c.per_1k_users - b.baseline_median
                ELSE b.baseline_median - c.per_1k_users END) AS baseline_mad
  FROM m04_rated s
  JOIN baseline b ON b.bucket = s.bucket ${join_cols_b}
  JOIN m04_rated c ON c.seq >= s.seq - 24 AND c.seq < s.seq ${join_cols}
  GROUP BY s.bucket ${group_cols_s}
),
scored AS (
  SELECT s.bucket ${group_cols_s}, s.recoveries, s.active_users, s.per_1k_users,
    b.baseline_median, b.baseline_buckets,
    (s.per_1k_users - b.baseline_median)
      / greatest(1.4826 * d.baseline_mad, 1000.0 / s.active_users) AS robust_z
  FROM m04_rated s
  LEFT JOIN baseline b ON b.bucket = s.bucket ${join_cols_b}
  LEFT JOIN spread d ON d.bucket = s.bucket ${join_cols_d}
)
SELECT bucket ${group_cols}, recoveries, active_users, per_1k_users, baseline_median AS baseline_per_1k,
  robust_z, COALESCE(baseline_buckets >= 8 AND robust_z >= 3.5, false) AS spike
FROM scored
ORDER BY 1 ${group_cols}
