//! 2FA coverage posture over the stored events (the guide's day-1 inventory and monthly audit):
//! who signs in without a second factor, who relies on SMS/voice/email only, which privileged
//! users lack a phishing-resistant factor, the factor inventory, new registrations, break-glass
//! use and the SMS bill. SQL over `events` only; it prints nothing.

use std::collections::BTreeSet;
use std::path::Path;

use arrow::array::RecordBatch;
use serde::{Deserialize, Serialize};

use super::{Engine, SliError};

/// Factors the guide calls weak when they are a user's only ones.
pub const WEAK_FACTORS: &[&str] = &["sms", "voice", "email"];

/// Privileged and break-glass accounts (`--privileged FILE`, TOML).
///
/// ```
/// let p: mfascope_sli::posture::Privileged =
///     toml::from_str("users = [\"root@acme.example\"]\nbreak_glass = [\"bg@acme.example\"]").unwrap();
/// assert_eq!(p.all(), vec!["bg@acme.example", "root@acme.example"]);
/// ```
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Privileged {
    /// Privileged users (administrators), as events name them.
    #[serde(default)]
    pub users: Vec<String>,
    /// Break-glass (emergency) accounts: privileged, and every use is listed.
    #[serde(default)]
    pub break_glass: Vec<String>,
}

impl Privileged {
    /// Read a privileged-accounts file; errors name the file and the key.
    pub fn load(path: &Path) -> Result<Privileged, SliError> {
        let bad = |reason: String| SliError::BadParam(format!("{}: {reason}", path.display()));
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        toml::from_str(&text).map_err(|e| bad(e.to_string().trim().to_string()))
    }

    /// Every listed account, lower-cased, sorted, once.
    pub fn all(&self) -> Vec<String> {
        let set: BTreeSet<String> = self
            .users
            .iter()
            .chain(&self.break_glass)
            .map(|u| u.trim().to_lowercase())
            .filter(|u| !u.is_empty())
            .collect();
        set.into_iter().collect()
    }
}

/// Apps where users signed in without any second factor.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AppWithoutMfa {
    /// The app (`(none)` when the source names none).
    pub app: String,
    /// Users who signed in to it and never used a second factor in the period.
    pub users: u64,
    /// Their successful sign-ins to it.
    pub sign_ins: u64,
}

/// A user whose only second factors are SMS, voice or email.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct WeakUser {
    /// The user.
    pub user: String,
    /// The factors they verified with (comma-separated).
    pub factors: String,
}

/// A privileged user without a phishing-resistant verification in the period.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PrivilegedGap {
    /// The user.
    pub user: String,
    /// The factors they verified with (empty: none at all).
    pub factors: Option<String>,
    /// `file`, `events` (flagged privileged by the source) or `file+events`.
    pub known_from: String,
}

/// One factor's footprint.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FactorRow {
    /// The factor.
    pub factor: String,
    /// Users with a successful verification with it.
    pub users: u64,
    /// Completed enrolments in the period.
    pub enrolled: u64,
    /// Removals in the period.
    pub removed: u64,
}

/// A new factor or device registration.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Registration {
    /// When (RFC 3339).
    pub time: String,
    /// Who.
    pub user: String,
    /// `enroll_complete` or `device_register`.
    pub action: String,
    /// Which factor.
    pub factor: String,
    /// The device, when logged.
    pub device_id: Option<String>,
    /// From where.
    pub country: Option<String>,
}

/// One event of a break-glass account.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct BreakGlassUse {
    /// When (RFC 3339).
    pub time: String,
    /// The account.
    pub user: String,
    /// What happened.
    pub action: String,
    /// With which factor.
    pub factor: String,
    /// How it ended.
    pub outcome: String,
    /// Into which app.
    pub app: Option<String>,
    /// From which address.
    pub src_ip: Option<String>,
}

/// SMS one-time codes sent and what they cost.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct SmsCost {
    /// Messages counted.
    pub messages: u64,
    /// `challenges` (SMS sends logged) or `verifications` (sources that log no send, e.g. Duo).
    pub counted_from: String,
    /// Price per message (`--sms-price`).
    pub price_per_message: f64,
    /// `messages × price`.
    pub cost: f64,
}

/// The posture report.
#[derive(Clone, Debug, Serialize)]
pub struct Posture {
    /// Users with any successful sign-in or verification.
    pub active_users: u64,
    /// Users who signed in but never used a second factor.
    pub users_without_mfa: u64,
    /// …by app.
    pub without_mfa_by_app: Vec<AppWithoutMfa>,
    /// Users whose only second factors are SMS, voice or email.
    pub weak_only_users: Vec<WeakUser>,
    /// Privileged users (file or source flag) seen in the period.
    pub privileged_users: u64,
    /// …of which without a phishing-resistant verification.
    pub privileged_without_phishing_resistant: Vec<PrivilegedGap>,
    /// Factor inventory.
    pub factors: Vec<FactorRow>,
    /// New factor and device registrations, oldest first.
    pub registrations: Vec<Registration>,
    /// Every event of a break-glass account, oldest first.
    pub break_glass_use: Vec<BreakGlassUse>,
    /// SMS volume and cost.
    pub sms: SmsCost,
}

fn rows<T: for<'de> Deserialize<'de>>(batches: &[RecordBatch]) -> Result<Vec<T>, SliError> {
    let mut writer = arrow::json::ArrayWriter::new(Vec::new());
    for b in batches {
        writer
            .write(b)
            .map_err(|e| SliError::BadParam(format!("posture: {e}")))?;
    }
    writer
        .finish()
        .map_err(|e| SliError::BadParam(format!("posture: {e}")))?;
    let bytes = writer.into_inner();
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    serde_json::from_slice(&bytes).map_err(|e| SliError::BadParam(format!("posture: {e}")))
}

fn quote_list(users: &[String]) -> String {
    if users.is_empty() {
        return "NULL".into();
    }
    users
        .iter()
        .map(|u| format!("'{}'", u.replace('\'', "''")))
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(Deserialize)]
struct Count {
    n: u64,
}

/// The SQL of each figure (`${privileged}` / `${break_glass}`: quoted lower-case user lists).
pub mod sql {
    /// Users with a successful sign-in who never attempted a second factor, by app.
    pub const WITHOUT_MFA: &str = "
        WITH mfa AS (SELECT DISTINCT \"user\" FROM events WHERE action = 'mfa_verify'),
             signin AS (SELECT \"user\", COALESCE(app, '(none)') AS app FROM events
                        WHERE action IN ('primary_auth', 'session_start') AND outcome = 'success')
        SELECT s.app, COUNT(DISTINCT s.\"user\") AS users, COUNT(*) AS sign_ins
        FROM signin s LEFT JOIN mfa m ON s.\"user\" = m.\"user\"
        WHERE m.\"user\" IS NULL GROUP BY s.app ORDER BY users DESC, s.app";
    /// How many distinct users that is.
    pub const WITHOUT_MFA_USERS: &str = "
        SELECT COUNT(DISTINCT \"user\") AS n FROM events
        WHERE action IN ('primary_auth', 'session_start') AND outcome = 'success'
          AND \"user\" NOT IN (SELECT DISTINCT \"user\" FROM events WHERE action = 'mfa_verify')";
    /// Users with any success.
    pub const ACTIVE: &str =
        "SELECT COUNT(DISTINCT \"user\") AS n FROM events WHERE outcome = 'success'";
    /// Users whose successful verifications all used SMS, voice or email.
    pub const WEAK_ONLY: &str = "
        SELECT \"user\", string_agg(f, ',' ORDER BY f) AS factors
        FROM (SELECT DISTINCT \"user\", CAST(factor AS VARCHAR) AS f FROM events
              WHERE action = 'mfa_verify' AND outcome = 'success')
        GROUP BY \"user\"
        HAVING bool_and(f IN ('sms', 'voice', 'email'))
        ORDER BY \"user\"";
    /// Privileged users (listed or flagged) and their verification factors.
    pub const PRIVILEGED: &str = "
        WITH listed AS (SELECT DISTINCT \"user\" FROM events WHERE lower(\"user\") IN (${privileged})),
             flagged AS (SELECT DISTINCT \"user\" FROM events WHERE privileged),
             priv AS (SELECT \"user\" FROM listed UNION SELECT \"user\" FROM flagged),
             verified AS (SELECT \"user\", bool_or(pr) AS pr, string_agg(f, ',' ORDER BY f) AS factors
                          FROM (SELECT \"user\", CAST(factor AS VARCHAR) AS f,
                                       bool_or(phishing_resistant) AS pr
                                FROM events WHERE action = 'mfa_verify' AND outcome = 'success'
                                GROUP BY 1, 2)
                          GROUP BY \"user\")
        SELECT p.\"user\", v.factors,
               CASE WHEN l.\"user\" IS NOT NULL AND f.\"user\" IS NOT NULL THEN 'file+events'
                    WHEN l.\"user\" IS NOT NULL THEN 'file' ELSE 'events' END AS known_from,
               COALESCE(v.pr, false) AS pr
        FROM priv p
        LEFT JOIN verified v ON v.\"user\" = p.\"user\"
        LEFT JOIN listed l ON l.\"user\" = p.\"user\"
        LEFT JOIN flagged f ON f.\"user\" = p.\"user\"
        ORDER BY p.\"user\"";
    /// Users, enrolments and removals per factor.
    pub const FACTORS: &str = "
        SELECT factor,
               COUNT(DISTINCT \"user\") FILTER (WHERE action = 'mfa_verify' AND outcome = 'success') AS users,
               COUNT(*) FILTER (WHERE action = 'enroll_complete' AND outcome = 'success') AS enrolled,
               COUNT(*) FILTER (WHERE action = 'factor_remove' AND outcome = 'success') AS removed
        FROM events WHERE factor NOT IN ('password', 'none', 'unknown')
        GROUP BY factor HAVING COUNT(*) FILTER (WHERE action IN ('mfa_verify', 'enroll_complete', 'factor_remove')) > 0
        ORDER BY users DESC, factor";
    /// New registrations.
    pub const REGISTRATIONS: &str = "
        SELECT to_char(t, '%Y-%m-%dT%H:%M:%S%.3fZ') AS time, \"user\", action, factor, device_id, country
        FROM (SELECT time AS t, * FROM events
              WHERE action IN ('enroll_complete', 'device_register') AND outcome = 'success')
        ORDER BY t, \"user\"";
    /// Break-glass events.
    pub const BREAK_GLASS: &str = "
        SELECT to_char(t, '%Y-%m-%dT%H:%M:%S%.3fZ') AS time, \"user\", action, factor, outcome, app, src_ip
        FROM (SELECT time AS t, * FROM events WHERE lower(\"user\") IN (${break_glass}))
        ORDER BY t, event_id";
    /// SMS sends, and SMS verifications for sources that log no send.
    pub const SMS: &str = "
        SELECT COUNT(*) FILTER (WHERE action = 'mfa_challenge') AS challenges,
               COUNT(*) FILTER (WHERE action = 'mfa_verify') AS verifications
        FROM events WHERE factor = 'sms'";
}

#[derive(Deserialize)]
struct PrivRow {
    user: String,
    factors: Option<String>,
    known_from: String,
    pr: bool,
}

#[derive(Deserialize)]
struct SmsRow {
    challenges: u64,
    verifications: u64,
}

impl Engine {
    /// The posture of the events in the engine's range.
    pub async fn posture(
        &self,
        privileged: &Privileged,
        sms_price: f64,
    ) -> Result<Posture, SliError> {
        let listed = quote_list(&privileged.all());
        let glass: Vec<String> = privileged
            .break_glass
            .iter()
            .map(|u| u.trim().to_lowercase())
            .collect();
        let glass = quote_list(&glass);
        let count = |rows: Vec<Count>| rows.first().map_or(0, |c| c.n);
        let priv_rows: Vec<PrivRow> = rows(
            &self
                .run(
                    "posture",
                    &sql::PRIVILEGED.replace("${privileged}", &listed),
                )
                .await?,
        )?;
        let sms: Vec<SmsRow> = rows(&self.run("posture", sql::SMS).await?)?;
        let sms = sms
            .first()
            .map_or((0, 0), |r| (r.challenges, r.verifications));
        let (messages, counted_from) = if sms.0 > 0 {
            (sms.0, "challenges")
        } else {
            (sms.1, "verifications")
        };
        Ok(Posture {
            active_users: count(rows(&self.run("posture", sql::ACTIVE).await?)?),
            users_without_mfa: count(rows(&self.run("posture", sql::WITHOUT_MFA_USERS).await?)?),
            without_mfa_by_app: rows(&self.run("posture", sql::WITHOUT_MFA).await?)?,
            weak_only_users: rows(&self.run("posture", sql::WEAK_ONLY).await?)?,
            privileged_users: priv_rows.len() as u64,
            privileged_without_phishing_resistant: priv_rows
                .into_iter()
                .filter(|r| !r.pr)
                .map(|r| PrivilegedGap {
                    user: r.user,
                    factors: r.factors,
                    known_from: r.known_from,
                })
                .collect(),
            factors: rows(&self.run("posture", sql::FACTORS).await?)?,
            registrations: rows(&self.run("posture", sql::REGISTRATIONS).await?)?,
            break_glass_use: rows(
                &self
                    .run(
                        "posture",
                        &sql::BREAK_GLASS.replace("${break_glass}", &glass),
                    )
                    .await?,
            )?,
            sms: SmsCost {
                messages,
                counted_from: counted_from.into(),
                price_per_message: sms_price,
                cost: messages as f64 * sms_price,
            },
        })
    }
}
