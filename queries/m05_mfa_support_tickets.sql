-- name: mfa_support_tickets
-- title: M5 MFA-induced support tickets
-- definition: per week (Monday 00:00 UTC to Monday): support tickets that the ticket rules mark MFA-related, per 1,000 active users and as a share of all tickets, the change per 1,000 users from the week before, how many came from requesters no 2FA event names, and how many were opened in the 24 h after an SLO alert episode started
-- numerator: tickets created in the week whose tags, category or subject match rules/mfa-tickets.toml (match_reason says which rule); a ticket exported several times counts once, as its latest version
-- denominator: distinct users with any 2FA event in the week (per 1,000 users); all tickets created in the week (share)
-- gotchas: weekly whatever --bucket says, and --by does not apply (tickets have no factor or app); requesters are matched to event users case-insensitively, so pseudonymize tickets and events with the same key; a week with tickets but no events has no per-1,000 rate; wow_change is null when the week before has no rate; after-alert counts need the SLO episodes, which mfascope sli computes from the same data with the default or ./slos specs
CREATE OR REPLACE TABLE m05_users AS
SELECT date_bin(INTERVAL '7 days', time, TIMESTAMP '2000-01-03T00:00:00Z') AS bucket,
       COUNT(DISTINCT "user") AS active_users
FROM events
GROUP BY 1;

CREATE OR REPLACE TABLE m05_after_alerts AS
SELECT DISTINCT t.system, t.ticket_id
FROM tickets t
JOIN slo_episodes e
  ON t.time >= e.firing_at AND t.time < e.firing_at + INTERVAL '24 hours';

CREATE OR REPLACE TABLE m05_tickets AS
SELECT date_bin(INTERVAL '7 days', t.time, TIMESTAMP '2000-01-03T00:00:00Z') AS bucket,
       COUNT(*) AS tickets,
       COUNT(*) FILTER (WHERE t.mfa_related) AS mfa_tickets,
       COUNT(*) FILTER (WHERE t.mfa_related AND k.u IS NULL) AS mfa_tickets_unmatched,
       COUNT(*) FILTER (WHERE t.mfa_related AND a.ticket_id IS NOT NULL) AS mfa_tickets_after_alerts
FROM tickets t
LEFT JOIN (SELECT DISTINCT lower("user") AS u FROM events) k ON lower(t.requester) = k.u
LEFT JOIN m05_after_alerts a ON a.system = t.system AND a.ticket_id = t.ticket_id
GROUP BY 1;

CREATE OR REPLACE TABLE m05_weeks AS
SELECT COALESCE(t.bucket, u.bucket) AS bucket,
       COALESCE(u.active_users, 0) AS active_users,
       COALESCE(t.tickets, 0) AS tickets,
       COALESCE(t.mfa_tickets, 0) AS mfa_tickets,
       CASE WHEN u.active_users > 0
            THEN 1000.0 * COALESCE(t.mfa_tickets, 0) / u.active_users END AS mfa_tickets_per_1000_users,
       CASE WHEN t.tickets > 0 THEN CAST(t.mfa_tickets AS DOUBLE) / t.tickets END AS mfa_share,
       COALESCE(t.mfa_tickets_unmatched, 0) AS mfa_tickets_unmatched,
       COALESCE(t.mfa_tickets_after_alerts, 0) AS mfa_tickets_after_alerts
FROM m05_tickets t
FULL OUTER JOIN m05_users u ON t.bucket = u.bucket;

SELECT bucket, active_users, tickets, mfa_tickets, mfa_tickets_per_1000_users,
       CASE WHEN LAG(bucket) OVER (ORDER BY bucket) = bucket - INTERVAL '7 days'
            THEN mfa_tickets_per_1000_users - LAG(mfa_tickets_per_1000_users) OVER (ORDER BY bucket)
       END AS wow_change,
       mfa_share, mfa_tickets_unmatched, mfa_tickets_after_alerts
FROM m05_weeks
ORDER BY bucket
