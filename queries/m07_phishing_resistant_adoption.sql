-- name: phishing_resistant_adoption
-- title: M7 phishing-resistant MFA adoption
-- definition: share of users with a successful second-factor verification in the bucket whose successful verifications include a phishing-resistant factor (WebAuthn/FIDO2, U2F, or a vendor signal such as Okta FastPass), overall and among privileged users
-- numerator: distinct users with a successful mfa_verify where phishing_resistant is true
-- denominator: distinct users with a successful mfa_verify
-- gotchas: privileged is only known where the source says so (AWS root, Duo admin groups, canonical input), so the privileged share covers those users only; a user who used a security key once in the bucket counts as adopted
SELECT
  date_bin(INTERVAL '${bucket}', time) AS bucket ${group_cols},
  COUNT(DISTINCT "user") FILTER (WHERE phishing_resistant) AS pr_users,
  COUNT(DISTINCT "user") AS active_users,
  CAST(COUNT(DISTINCT "user") FILTER (WHERE phishing_resistant) AS DOUBLE) / COUNT(DISTINCT "user") AS adoption,
  COUNT(DISTINCT "user") FILTER (WHERE phishing_resistant AND privileged) AS pr_privileged_users,
  COUNT(DISTINCT "user") FILTER (WHERE privileged) AS active_privileged_users
FROM events
WHERE action = 'mfa_verify' AND outcome = 'success'
GROUP BY 1 ${group_cols}
ORDER BY 1 ${group_cols}
