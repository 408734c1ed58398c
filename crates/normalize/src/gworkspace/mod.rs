//! Google Workspace Reports API activities: `login` (sign-ins and 2-Step Verification
//! challenges), `user_accounts` (2SV enrolled or disabled, recovery phone/email changed) and the
//! `admin` console's 2SV enforcement (`ENFORCE_STRONG_AUTHENTICATION`). `events` arrives as a list
//! (API) or a single object (some exporters); the first event is mapped. The 2-Step Verification
//! method comes from the `login_challenge_method` parameter (value or multiValue); the country
//! from `networkInfo.regionCode`.

use std::borrow::Cow;

use serde::Deserialize;

use super::fields::{Ctx, OneOrMany, Scalar, nonempty};
use super::{LogFormat, MapResult, event, ignored, parse};
use mfascope_core::event::{Action, Event, Factor, Outcome, Source};
use mfascope_core::time::parse_rfc3339;

use crate::detect::Markers;
use crate::vendor::{Limit, Logsource, Vendor};
mod render;

/// The Google Workspace login activities (Reports API) in the vendor registry.
pub(crate) static VENDOR: Vendor = Vendor {
    format: LogFormat::Gworkspace,
    source: Source::Gworkspace,
    title: "Google Workspace login activities (Reports API)",
    map,
    detect,
    render,
    logsources: &[
        Logsource {
            product: "google_workspace",
            service: "login",
        },
        Logsource {
            product: "google_workspace",
            service: "user_accounts",
        },
        Logsource {
            product: "google_workspace",
            service: "admin",
        },
    ],
    logsource_of,
    sample: "gworkspace-login.ndjson.gz",
    limits: &[
        Limit {
            scenario: "bypass_used",
            reason: "a sign-in with backup codes is `login_challenge_method: backup_code` whether the user printed them or an administrator generated them for the user, so it is read as a recovery code, not a bypass",
            doc: "https://developers.google.com/admin-sdk/reports/v1/appendix/activity/login",
        },
        Limit {
            scenario: "fraud_reported",
            reason: "a declined Google prompt is a failed `login_verification` like an expired one; the login audit has no event for a user reporting a prompt or sign-in (only Google's own `suspicious_login` verdicts)",
            doc: "https://developers.google.com/admin-sdk/reports/v1/appendix/activity/login",
        },
        Limit {
            scenario: "otp_replay",
            reason: "a reused code is a failed `login_verification` like any wrong code; no parameter says the code was already used",
            doc: "https://developers.google.com/admin-sdk/reports/v1/appendix/activity/login",
        },
        Limit {
            scenario: "recovery_abuse",
            reason: "the login and user_accounts activities record password and recovery-info changes but no account-recovery request, so there is no recovery to start from",
            doc: "https://developers.google.com/admin-sdk/reports/v1/appendix/activity/user-accounts",
        },
        Limit {
            scenario: "rogue_device_registration",
            reason: "device registrations are in the `mobile` application's audit, and the rule needs the account recovery Google does not log (see recovery_abuse)",
            doc: "https://developers.google.com/admin-sdk/reports/v1/appendix/activity/login",
        },
    ],
};

/// The Reports API applications mapped: sign-ins, account (2SV, recovery info) changes, and the
/// admin console's 2-Step Verification policy; other applications are ignored.
const APPLICATIONS: &[&str] = &["login", "user_accounts", "admin"];

/// The logsource of an event, from the application its `vendor_event_type` starts with.
fn logsource_of(vendor_event_type: &str) -> usize {
    let app = vendor_event_type.split('.').next().unwrap_or_default();
    APPLICATIONS.iter().position(|a| *a == app).unwrap_or(0)
}

fn detect(m: &Markers<'_>) -> bool {
    m.value("kind") == Some("admin#reports#activity")
        || (m.has("events") && m.value("kind").is_some())
}

fn render(e: &Event<'_>, out: &mut String) -> bool {
    // Google logs its own verdicts, but no event for a user's report.
    let report = e.action == Action::RiskSignal && e.reason.as_deref() != Some("threat_detected");
    !report && crate::vendor::push_json(out, &render::render(e))
}

super::record_type!(RawRecord => Raw);

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct Raw<'a> {
    #[serde(borrow)]
    id: Id<'a>,
    #[serde(borrow, default)]
    actor: Option<Actor<'a>>,
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    ipAddress: Option<Cow<'a, str>>,
    #[serde(borrow)]
    events: OneOrMany<GEvent<'a>>,
    #[serde(borrow, default)]
    networkInfo: Option<NetworkInfo<'a>>,
}

/// Where the Reports API places the actor's IP (`networkInfo`, since 2023).
#[derive(Deserialize, Default)]
#[allow(non_snake_case)]
struct NetworkInfo<'a> {
    /// ISO 3166-1 alpha-2.
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    regionCode: Option<Cow<'a, str>>,
    /// ISO 3166-2 (`US-CA`).
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    subdivisionCode: Option<Cow<'a, str>>,
    #[serde(default)]
    ipAsn: Option<Vec<u32>>,
}

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct Id<'a> {
    #[serde(borrow)]
    time: Cow<'a, str>,
    #[serde(borrow, default)]
    uniqueQualifier: Option<Scalar<'a>>,
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    applicationName: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    customerId: Option<Scalar<'a>>,
}

#[derive(Deserialize)]
struct Actor<'a> {
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    email: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct GEvent<'a> {
    #[serde(
        borrow,
        default,
        rename = "type",
        deserialize_with = "mfascope_core::event::cow::opt"
    )]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow, default)]
    parameters: Option<Vec<Param<'a>>>,
}

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct Param<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    value: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    multiValue: Option<Vec<Cow<'a, str>>>,
    #[serde(default)]
    boolValue: Option<bool>,
}

impl<'a> GEvent<'a> {
    fn param(&self, name: &str) -> Option<&Param<'a>> {
        self.parameters.iter().flatten().find(|p| p.name == name)
    }
    fn values(&self, name: &str) -> Vec<&str> {
        match self.param(name) {
            Some(p) => p
                .value
                .iter()
                .map(std::convert::AsRef::as_ref)
                .chain(
                    p.multiValue
                        .iter()
                        .flatten()
                        .map(std::convert::AsRef::as_ref),
                )
                .collect(),
            None => vec![],
        }
    }
}

fn factor_for(method: &str) -> Factor {
    match method {
        "password" => Factor::Password,
        "google_authenticator" | "totp" => Factor::Totp,
        "backup_code" => Factor::RecoveryCode,
        "idv_any_phone" | "idv_preregistered_phone" | "sms" | "phone" => Factor::Sms,
        "internal_two_factor" | "google_prompt" => Factor::Push,
        "security_key" | "passkey" => Factor::Webauthn,
        "email" | "idv_email" => Factor::Email,
        "login_location" | "none" | "" => Factor::None,
        _ => Factor::Unknown,
    }
}

/// The strongest second-step method listed, or the first method.
fn pick_factor(methods: &[&str]) -> Option<Factor> {
    let factors: Vec<Factor> = methods.iter().map(|m| factor_for(m)).collect();
    factors
        .iter()
        .copied()
        .find(|f| !matches!(f, Factor::Password | Factor::None))
        .or_else(|| factors.first().copied())
}

/// Map one Google Workspace login activity.
pub(super) fn map<'a>(raw: &[u8], ctx: &'a mut Ctx) -> MapResult<'a> {
    let Ctx { json, geo, .. } = ctx;
    let r = parse::<RawRecord>(LogFormat::Gworkspace, raw, json)?;
    let app = r.id.applicationName.as_deref().unwrap_or("login");
    if !APPLICATIONS.contains(&app) {
        return ignored(LogFormat::Gworkspace, app);
    }
    let ev = r
        .events
        .as_slice()
        .first()
        .ok_or("gworkspace: events: empty")?;
    let name = ev.name.as_ref();
    let methods = ev.values("login_challenge_method");
    let factor = pick_factor(&methods);
    let second_factor = ev.param("is_second_factor").and_then(|p| p.boolValue);
    let status = ev
        .values("login_challenge_status")
        .first()
        .map(|s| s.to_ascii_lowercase());
    let passed = status.as_deref().map(|s| s.contains("passed"));
    let failure_type = ev
        .values("login_failure_type")
        .first()
        .map(std::string::ToString::to_string);

    use Action::*;
    let (action, factor, outcome, reason): (Action, Factor, Outcome, Option<Cow<'a, str>>) =
        match name {
            "login_success" => match factor {
                Some(f) if !matches!(f, Factor::Password | Factor::None) => {
                    (MfaVerify, f, Outcome::Success, None)
                }
                _ => (PrimaryAuth, Factor::Password, Outcome::Success, None),
            },
            "login_failure" => {
                let reason = failure_type
                    .clone()
                    .map(|t| t.trim_start_matches("login_failure_").to_string());
                match (failure_type.as_deref(), factor) {
                    (Some("login_failure_invalid_second_factor"), f) => (
                        MfaVerify,
                        f.unwrap_or(Factor::Unknown),
                        Outcome::Failure,
                        Some("invalid_code".into()),
                    ),
                    (_, Some(f)) if !matches!(f, Factor::Password | Factor::None) => {
                        (MfaVerify, f, Outcome::Failure, reason.map(Cow::Owned))
                    }
                    (Some("login_failure_invalid_password"), _) => (
                        PrimaryAuth,
                        Factor::Password,
                        Outcome::Failure,
                        Some("invalid_credentials".into()),
                    ),
                    _ => (
                        PrimaryAuth,
                        Factor::Password,
                        Outcome::Failure,
                        reason.map(Cow::Owned),
                    ),
                }
            }
            "login_challenge" | "login_verification" => {
                let factor = factor.unwrap_or(Factor::Unknown);
                // A Google prompt has no code to get wrong: failing it is declining it or
                // letting it expire, which the log does not tell apart.
                let (outcome, reason) = match passed {
                    Some(true) => (Outcome::Success, None),
                    Some(false) if factor == Factor::Push => {
                        (Outcome::Denied, Some(Cow::Borrowed("prompt_not_approved")))
                    }
                    Some(false) => (Outcome::Failure, Some(Cow::Borrowed("challenge_failed"))),
                    None => (Outcome::Challenge, None),
                };
                let action = if second_factor == Some(false) && name == "login_challenge" {
                    MfaChallenge
                } else {
                    MfaVerify
                };
                let action = if outcome == Outcome::Challenge {
                    MfaChallenge
                } else {
                    action
                };
                (action, factor, outcome, reason)
            }
            "2sv_enroll" => (EnrollComplete, Factor::Unknown, Outcome::Success, None),
            "2sv_disable" => (
                PolicyChange,
                Factor::None,
                Outcome::Success,
                Some("mfa_disabled".into()),
            ),
            "recovery_phone_edit" => (
                EnrollComplete,
                Factor::Sms,
                Outcome::Success,
                Some("recovery_phone_changed".into()),
            ),
            "recovery_email_edit" => (
                EnrollComplete,
                Factor::Email,
                Outcome::Success,
                Some("recovery_email_changed".into()),
            ),
            // Admin console: 2-Step Verification allowed or enforced for an org unit. Turning
            // either off lets the org unit's users sign in with a password alone.
            "ENFORCE_STRONG_AUTHENTICATION" | "ALLOW_STRONG_AUTHENTICATION" => {
                let on = ev
                    .values("NEW_VALUE")
                    .first()
                    .is_some_and(|v| v.eq_ignore_ascii_case("true"));
                let what = if on { "mfa_enabled" } else { "mfa_disabled" };
                (
                    PolicyChange,
                    Factor::None,
                    Outcome::Success,
                    Some(what.into()),
                )
            }
            // Google's own verdicts on a sign-in or a sensitive action.
            "suspicious_login"
            | "suspicious_login_less_secure_app"
            | "suspicious_programmatic_login"
            | "gov_attack_warning"
            | "risky_sensitive_action_allowed" => (
                RiskSignal,
                Factor::None,
                Outcome::Unknown,
                Some("threat_detected".into()),
            ),
            "risky_sensitive_action_blocked" => (
                RiskSignal,
                Factor::None,
                Outcome::Denied,
                Some("threat_detected".into()),
            ),
            "passkey_enrolled" => (EnrollComplete, Factor::Webauthn, Outcome::Success, None),
            "passkey_removed" => (FactorRemove, Factor::Webauthn, Outcome::Success, None),
            "account_disabled_password_leak"
            | "account_disabled_hijacked"
            | "account_disabled_generic"
            | "account_disabled_spamming"
            | "account_disabled_spamming_through_relay" => (
                Lockout,
                Factor::None,
                Outcome::Failure,
                Some(Cow::Owned(name.trim_start_matches("account_").to_string())),
            ),
            _ => {
                let kind = ev.kind.as_deref().unwrap_or("login");
                return ignored(LogFormat::Gworkspace, &format!("{kind}.{name}"));
            }
        };
    let time = parse_rfc3339(&r.id.time).map_err(|e| format!("gworkspace: id.time: {e}"))?;
    let affected = ev
        .values("affected_email_address")
        .first()
        .map(|s| Cow::Owned(s.to_string()));
    let user = r
        .actor
        .and_then(|a| nonempty(a.email))
        .or(affected)
        .ok_or("gworkspace: actor.email: missing")?;
    let qualifier =
        r.id.uniqueQualifier
            .as_ref()
            .map(|q| q.0.as_ref())
            .unwrap_or("");
    let id = format!("gworkspace:{}:{qualifier}:{name}", r.id.time);
    let org_unit = ev
        .values("ORG_UNIT_NAME")
        .first()
        .map(std::string::ToString::to_string);
    let mut e = Event::new(
        Source::Gworkspace,
        id,
        time,
        user,
        Cow::Owned(format!("{app}.{name}")),
        (action, factor, outcome),
    );
    if app == "admin" {
        // The administrator acted on an org unit: the policy's scope is its target.
        e.actor = Some(e.user.clone());
        e.app = org_unit.map(|o| Cow::Owned(format!("org_unit:{o}")));
    }
    e.tenant = r.id.customerId.map(|c| c.0);
    e.reason = reason;
    e.src_ip = nonempty(r.ipAddress);
    let net = r.networkInfo.unwrap_or_default();
    e.country = geo.country(net.regionCode);
    e.region = nonempty(net.subdivisionCode);
    e.asn = net.ipAsn.and_then(|a| a.first().copied());
    event(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Mapped;

    fn ev(json: &str) -> Event<'static> {
        crate::expect_event(map(json.as_bytes(), &mut Ctx::default()))
    }

    #[test]
    fn security_key_verification_is_phishing_resistant() {
        let e = ev(
            r#"{"kind":"admin#reports#activity","id":{"time":"2025-02-27T05:59:58.481Z","uniqueQualifier":"123","applicationName":"login","customerId":"C1"},"actor":{"email":"t@c.com"},"ipAddress":"81.2.69.144","events":[{"type":"login","name":"login_verification","parameters":[{"name":"login_challenge_method","multiValue":["security_key"]},{"name":"login_challenge_status","value":"passed"},{"name":"is_second_factor","boolValue":true}]}]}"#,
        );
        assert_eq!(
            (e.action, e.factor, e.outcome),
            (Action::MfaVerify, Factor::Webauthn, Outcome::Success)
        );
        assert!(e.phishing_resistant);
        assert_eq!(e.tenant.as_deref(), Some("C1"));
    }

    /// Google's suspicious-login verdicts are risk signals about the affected user.
    #[test]
    fn suspicious_login_is_a_risk_signal() {
        let e = ev(
            r#"{"kind":"admin#reports#activity","id":{"time":"2024-05-01T10:00:00Z","uniqueQualifier":"7","applicationName":"login"},"actor":{"email":"u@c.com"},"ipAddress":"203.0.113.5","events":[{"type":"login","name":"suspicious_login","parameters":[{"name":"affected_email_address","value":"u@c.com"}]}]}"#,
        );
        assert_eq!(
            (e.action, e.outcome, e.reason.as_deref()),
            (
                Action::RiskSignal,
                Outcome::Unknown,
                Some("threat_detected")
            )
        );
        assert_eq!(e.vendor_event_type, "login.suspicious_login");
    }

    #[test]
    fn invalid_second_factor_and_2sv_disable() {
        let e = ev(
            r#"{"kind":"admin#reports#activity","id":{"time":"2024-05-01T10:00:00Z","uniqueQualifier":1,"applicationName":"login"},"actor":{"email":"u@c.com"},"events":{"type":"login","name":"login_failure","parameters":[{"name":"login_challenge_method","value":"google_authenticator"},{"name":"login_failure_type","value":"login_failure_invalid_second_factor"}]}}"#,
        );
        assert_eq!(
            (e.action, e.factor, e.outcome, e.reason.as_deref()),
            (
                Action::MfaVerify,
                Factor::Totp,
                Outcome::Failure,
                Some("invalid_code")
            )
        );
        let e = ev(
            r#"{"kind":"admin#reports#activity","id":{"time":"2024-05-01T10:00:00Z","applicationName":"login"},"actor":{"email":"u@c.com"},"events":[{"type":"2sv_change","name":"2sv_disable"}]}"#,
        );
        assert_eq!(e.action, Action::PolicyChange);
    }

    #[test]
    fn admin_2sv_enforcement_off_disables_mfa_for_the_org_unit() {
        let e = ev(
            r#"{"kind":"admin#reports#activity","id":{"time":"2024-05-01T10:00:00Z","uniqueQualifier":"-7","applicationName":"admin","customerId":"C1"},"actor":{"email":"boss@c.com","callerType":"USER"},"ipAddress":"203.0.113.9","events":[{"type":"SECURITY_SETTINGS","name":"ENFORCE_STRONG_AUTHENTICATION","parameters":[{"name":"ORG_UNIT_NAME","value":"Engineering"},{"name":"NEW_VALUE","value":"false"},{"name":"OLD_VALUE","value":"true"}]}]}"#,
        );
        assert_eq!(
            (
                e.action,
                e.reason.as_deref(),
                e.actor.as_deref(),
                e.app.as_deref()
            ),
            (
                Action::PolicyChange,
                Some("mfa_disabled"),
                Some("boss@c.com"),
                Some("org_unit:Engineering")
            )
        );
        assert_eq!(e.vendor_event_type, "admin.ENFORCE_STRONG_AUTHENTICATION");
        assert_eq!(logsource_of(&e.vendor_event_type), 2);
        let on = ev(
            r#"{"kind":"admin#reports#activity","id":{"time":"2024-05-01T10:00:00Z","applicationName":"admin"},"actor":{"email":"boss@c.com"},"events":[{"type":"SECURITY_SETTINGS","name":"ALLOW_STRONG_AUTHENTICATION","parameters":[{"name":"NEW_VALUE","value":"true"}]}]}"#,
        );
        assert_eq!(on.reason.as_deref(), Some("mfa_enabled"));
    }

    #[test]
    fn a_failed_google_prompt_is_a_push_not_approved_and_network_info_gives_the_country() {
        let e = ev(
            r#"{"kind":"admin#reports#activity","id":{"time":"2024-05-01T10:00:00Z","uniqueQualifier":"9","applicationName":"login"},"actor":{"email":"u@c.com"},"ipAddress":"198.51.100.4","networkInfo":{"ipAsn":[64501],"regionCode":"NG","subdivisionCode":"NG-LA"},"events":[{"type":"login","name":"login_verification","parameters":[{"name":"login_challenge_method","multiValue":["internal_two_factor"]},{"name":"login_challenge_status","value":"failed"},{"name":"is_second_factor","boolValue":true}]}]}"#,
        );
        assert_eq!(
            (e.action, e.factor, e.outcome),
            (Action::MfaVerify, Factor::Push, Outcome::Denied)
        );
        assert_eq!(
            (e.country.as_deref(), e.region.as_deref(), e.asn),
            (Some("NG"), Some("NG-LA"), Some(64501))
        );
        let mut ctx = Ctx::default();
        let other = map(
            br#"{"kind":"admin#reports#activity","id":{"time":"2024-05-01T10:00:00Z","applicationName":"drive"},"actor":{"email":"u@c.com"},"events":[{"type":"access","name":"view"}]}"#,
            &mut ctx,
        );
        assert!(matches!(other, Ok(crate::Mapped::Ignored(k)) if k == "gworkspace:drive"));
    }

    #[test]
    fn logout_is_ignored_and_missing_time_rejected() {
        let mut ctx = crate::fields::Ctx::default();
        let r = map(br#"{"kind":"admin#reports#activity","id":{"time":"2024-05-01T10:00:00Z","applicationName":"login"},"actor":{"email":"u@c.com"},"events":[{"type":"login","name":"logout"}]}"#, &mut ctx);
        assert!(matches!(r, Ok(Mapped::Ignored(k)) if k == "gworkspace:login.logout"));
        let err = map(
            br#"{"kind":"admin#reports#activity","id":{"applicationName":"login"},"events":[]}"#,
            &mut Ctx::default(),
        )
        .unwrap_err();
        assert!(err.contains("id.time") || err.contains("time"), "{err}");
    }
}
