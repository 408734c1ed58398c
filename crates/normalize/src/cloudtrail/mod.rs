//! AWS CloudTrail: `ConsoleLogin` (with `additionalEventData.MFAUsed`) and the IAM MFA device
//! lifecycle (`EnableMFADevice`, `DeactivateMFADevice`, …). Other API calls are ignored.

use std::borrow::Cow;

use serde::Deserialize;

use super::fields::nonempty;
use super::{LogFormat, MapResult, event, ignored, parse};
use mfascope_core::event::{Action, Event, Factor, Outcome, Source};
use mfascope_core::time::parse_rfc3339;

use crate::detect::Markers;
use crate::vendor::{Limit, Logsource, Vendor};
mod render;

/// The AWS CloudTrail (`Records[]` files and single events) in the vendor registry.
pub(crate) static VENDOR: Vendor = Vendor {
    format: LogFormat::Cloudtrail,
    source: Source::Cloudtrail,
    title: "AWS CloudTrail (`Records[]` files and single events)",
    map,
    detect,
    render,
    logsources: &[Logsource {
        product: "aws",
        service: "cloudtrail",
    }],
    logsource_of: crate::vendor::first_logsource,
    sample: "cloudtrail-console.json.gz",
    limits: &[
        Limit {
            scenario: "bypass_used",
            reason: "IAM has no bypass or break-glass codes for MFA",
            doc: "https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_mfa.html",
        },
        Limit {
            scenario: "fraud_reported",
            reason: "IAM MFA has no push prompts to report and no way for a user to report a sign-in as fraud",
            doc: "https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_mfa.html",
        },
        Limit {
            scenario: "impossible_travel",
            reason: "sign-in events carry `sourceIPAddress` but no geolocation, and mfascope bundles no GeoIP database",
            doc: "https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-aws-console-sign-in-events.html",
        },
        Limit {
            scenario: "otp_replay",
            reason: "a reused code is a `ConsoleLogin` failure with `MFAUsed: Yes` like any wrong code",
            doc: "https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-aws-console-sign-in-events.html",
        },
        Limit {
            scenario: "push_bombing",
            reason: "IAM MFA devices are virtual (TOTP), hardware and FIDO keys; there are no push prompts",
            doc: "https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_mfa.html",
        },
        Limit {
            scenario: "push_fatigue",
            reason: "IAM MFA has no push prompts (see push_bombing)",
            doc: "https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_mfa.html",
        },
        Limit {
            scenario: "recovery_abuse",
            reason: "IAM users have no self-service recovery (an administrator's `UpdateLoginProfile` resets them); only the root user recovers its own password (`PasswordRecoveryRequested`/`Completed`), which mfascope maps",
            doc: "https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-aws-console-sign-in-events.html",
        },
        Limit {
            scenario: "rogue_device_registration",
            reason: "AWS has no device registration besides MFA devices, and the rule needs a self-service recovery IAM users do not have",
            doc: "https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_mfa.html",
        },
        Limit {
            scenario: "sim_swap",
            reason: "IAM no longer offers SMS MFA; there is no phone factor to port",
            doc: "https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_mfa.html",
        },
    ],
};

fn detect(m: &Markers<'_>) -> bool {
    m.has("eventSource") && m.has("eventName") && m.has("eventTime")
}

fn render(e: &Event<'_>, out: &mut String) -> bool {
    // CloudTrail carries no verdicts (GuardDuty findings are another log).
    e.action != Action::RiskSignal && crate::vendor::push_json(out, &render::render(e))
}

super::record_type!(RawRecord => Raw);

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct Raw<'a> {
    #[serde(borrow)]
    eventTime: Cow<'a, str>,
    #[serde(borrow)]
    eventName: Cow<'a, str>,
    #[serde(borrow)]
    eventSource: Cow<'a, str>,
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    eventID: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    sourceIPAddress: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    userAgent: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    recipientAccountId: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    errorMessage: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    userIdentity: Option<Identity<'a>>,
    #[serde(borrow, default)]
    additionalEventData: Option<Additional<'a>>,
    #[serde(borrow, default)]
    responseElements: Option<Response<'a>>,
    #[serde(borrow, default)]
    requestParameters: Option<Request<'a>>,
}

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct Identity<'a> {
    #[serde(
        borrow,
        default,
        rename = "type",
        deserialize_with = "mfascope_core::event::cow::opt"
    )]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    userName: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    arn: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    accountId: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct Additional<'a> {
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    MFAUsed: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    MFAIdentifier: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    LoginTo: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct Response<'a> {
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    ConsoleLogin: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct Request<'a> {
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    userName: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    serialNumber: Option<Cow<'a, str>>,
}

/// Factor from an MFA device ARN / serial: `…:u2f/…` is a security key, `…:mfa/…` a virtual
/// (TOTP) device, a bare serial a hardware token.
fn mfa_factor(identifier: Option<&str>) -> Factor {
    match identifier {
        Some(id) if id.contains(":u2f/") => Factor::U2f,
        Some(id) if id.contains(":mfa/") => Factor::Totp,
        Some(id) if !id.is_empty() => Factor::HardwareOtp,
        _ => Factor::Unknown,
    }
}

/// Map one CloudTrail record.
pub(super) fn map<'a>(raw: &[u8], ctx: &'a mut super::fields::Ctx) -> MapResult<'a> {
    let super::fields::Ctx { json, .. } = ctx;
    let r = parse::<RawRecord>(LogFormat::Cloudtrail, raw, json)?;
    let name = r.eventName.as_ref();
    let extra = r.additionalEventData.as_ref();
    let mfa_id = extra.and_then(|a| a.MFAIdentifier.as_deref());
    let serial = r
        .requestParameters
        .as_ref()
        .and_then(|p| p.serialNumber.as_deref());
    let failed = r.errorMessage.is_some();
    use Action::*;
    let (action, factor, outcome, reason): (Action, Factor, Outcome, Option<&'static str>) =
        match name {
            "ConsoleLogin" => {
                let success = r
                    .responseElements
                    .as_ref()
                    .and_then(|e| e.ConsoleLogin.as_deref())
                    .map(|s| s.eq_ignore_ascii_case("success"))
                    .unwrap_or(!failed);
                let mfa = extra
                    .and_then(|a| a.MFAUsed.as_deref())
                    .is_some_and(|m| m.eq_ignore_ascii_case("yes"));
                let outcome = if success {
                    Outcome::Success
                } else {
                    Outcome::Failure
                };
                let reason = (!success).then_some("invalid_credentials");
                if mfa {
                    (
                        MfaVerify,
                        mfa_factor(mfa_id),
                        outcome,
                        reason.map(|_| "mfa_failed"),
                    )
                } else {
                    (PrimaryAuth, Factor::Password, outcome, reason)
                }
            }
            "CheckMfa" => (
                MfaVerify,
                mfa_factor(mfa_id),
                if failed {
                    Outcome::Failure
                } else {
                    Outcome::Success
                },
                None,
            ),
            "CreateVirtualMFADevice" => (EnrollStart, Factor::Totp, ok(failed), None),
            "EnableMFADevice" => (EnrollComplete, mfa_factor(serial), ok(failed), None),
            "DeactivateMFADevice" | "DeleteVirtualMFADevice" => {
                (FactorRemove, mfa_factor(serial), ok(failed), None)
            }
            "ResyncMFADevice" => (Other, mfa_factor(serial), ok(failed), Some("resync")),
            "PasswordRecoveryRequested" => (RecoveryRequest, Factor::Password, ok(failed), None),
            "PasswordRecoveryCompleted" => (RecoveryComplete, Factor::Password, ok(failed), None),
            _ => return ignored(LogFormat::Cloudtrail, &format!("{}:{name}", r.eventSource)),
        };
    let time = parse_rfc3339(&r.eventTime).map_err(|e| format!("cloudtrail: eventTime: {e}"))?;
    let ident = r.userIdentity.as_ref();
    let root = ident.and_then(|i| i.kind.as_deref()) == Some("Root");
    let principal = ident
        .and_then(|i| nonempty(i.userName.clone()))
        .or_else(|| {
            ident
                .and_then(|i| i.arn.as_deref())
                .and_then(|a| a.rsplit('/').next())
                .map(|s| Cow::Owned(s.to_string()))
        })
        .or_else(|| root.then_some(Cow::Borrowed("root")));
    let target = r
        .requestParameters
        .as_ref()
        .and_then(|p| nonempty(p.userName.clone()));
    let (user, actor) = match (target, principal) {
        (Some(t), Some(p)) if t != p => (t, Some(p)),
        (Some(t), _) => (t, None),
        (None, Some(p)) => (p, None),
        (None, None) => {
            return Err("cloudtrail: userIdentity: no userName or arn; no subject".into());
        }
    };
    let id = match r.eventID {
        Some(id) => id,
        None => Cow::Owned(super::fields::hashed_id(Source::Cloudtrail, raw)),
    };
    let mut e = Event::new(
        Source::Cloudtrail,
        id,
        time,
        user,
        r.eventName.clone(),
        (action, factor, outcome),
    );
    // Another principal deactivating a user's MFA device takes that user's second factor away.
    let reason = match (action, &actor) {
        (FactorRemove, Some(_)) if name == "DeactivateMFADevice" => Some("mfa_disabled"),
        _ => reason,
    };
    e.actor = actor;
    e.tenant = nonempty(r.recipientAccountId)
        .or_else(|| ident.and_then(|i| nonempty(i.accountId.clone())));
    e.app = extra.and_then(|a| nonempty(a.LoginTo.clone()));
    e.src_ip = nonempty(r.sourceIPAddress);
    e.user_agent = nonempty(r.userAgent);
    e.reason = reason.map(Cow::Borrowed);
    e.device_id = mfa_id.or(serial).map(|s| Cow::Owned(s.to_string()));
    e.privileged = root.then_some(true);
    event(e)
}

fn ok(failed: bool) -> Outcome {
    if failed {
        Outcome::Failure
    } else {
        Outcome::Success
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Mapped;

    fn ev(json: &str) -> Event<'static> {
        crate::expect_event(map(json.as_bytes(), &mut Default::default()))
    }

    #[test]
    fn console_login_with_and_without_mfa() {
        let e = ev(
            r#"{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/alice","accountId":"111122223333","userName":"alice"},"eventTime":"2024-05-01T10:00:00Z","eventSource":"signin.amazonaws.com","eventName":"ConsoleLogin","sourceIPAddress":"198.51.100.2","userAgent":"Mozilla/5.0","responseElements":{"ConsoleLogin":"Success"},"additionalEventData":{"MFAUsed":"Yes","MFAIdentifier":"arn:aws:iam::111122223333:u2f/user/alice/key-1","LoginTo":"https://console.aws.amazon.com"},"eventID":"e1"}"#,
        );
        assert_eq!(
            (e.action, e.factor, e.outcome),
            (Action::MfaVerify, Factor::U2f, Outcome::Success)
        );
        assert!(e.phishing_resistant);
        let e = ev(
            r#"{"userIdentity":{"type":"Root","arn":"arn:aws:iam::111122223333:root","accountId":"111122223333"},"eventTime":"2024-05-01T10:00:00Z","eventSource":"signin.amazonaws.com","eventName":"ConsoleLogin","errorMessage":"Failed authentication","responseElements":{"ConsoleLogin":"Failure"},"additionalEventData":{"MFAUsed":"No"},"eventID":"e2"}"#,
        );
        assert_eq!(
            (e.action, e.outcome, e.privileged),
            (Action::PrimaryAuth, Outcome::Failure, Some(true))
        );
    }

    #[test]
    fn mfa_device_deactivation_by_admin_and_other_calls_ignored() {
        let e = ev(
            r#"{"userIdentity":{"type":"IAMUser","userName":"admin"},"eventTime":"2024-05-01T10:00:00Z","eventSource":"iam.amazonaws.com","eventName":"DeactivateMFADevice","requestParameters":{"userName":"bob","serialNumber":"arn:aws:iam::1:mfa/bob"},"eventID":"e3"}"#,
        );
        assert_eq!(
            (e.action, e.factor, e.user.as_ref(), e.actor.as_deref()),
            (Action::FactorRemove, Factor::Totp, "bob", Some("admin"))
        );
        let mut ctx = crate::fields::Ctx::default();
        let r = map(br#"{"eventTime":"2024-05-01T10:00:00Z","eventSource":"s3.amazonaws.com","eventName":"GetObject"}"#, &mut ctx);
        assert!(
            matches!(r, Ok(Mapped::Ignored(k)) if k == "cloudtrail:s3.amazonaws.com:GetObject")
        );
    }

    #[test]
    fn an_administrator_deactivating_anothers_mfa_device_disables_mfa() {
        let e = ev(
            r#"{"eventVersion":"1.09","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/admin","accountId":"111122223333","userName":"admin"},"eventTime":"2024-05-01T10:00:00Z","eventSource":"iam.amazonaws.com","eventName":"DeactivateMFADevice","sourceIPAddress":"198.51.100.2","requestParameters":{"userName":"alice","serialNumber":"arn:aws:iam::111122223333:mfa/alice"},"responseElements":null,"eventID":"d1"}"#,
        );
        assert_eq!(
            (
                e.user.as_ref(),
                e.actor.as_deref(),
                e.action,
                e.factor,
                e.reason.as_deref()
            ),
            (
                "alice",
                Some("admin"),
                Action::FactorRemove,
                Factor::Totp,
                Some("mfa_disabled")
            )
        );
        let own = ev(
            r#"{"userIdentity":{"type":"IAMUser","userName":"alice"},"eventTime":"2024-05-01T10:00:00Z","eventSource":"iam.amazonaws.com","eventName":"DeactivateMFADevice","requestParameters":{"userName":"alice","serialNumber":"arn:aws:iam::111122223333:mfa/alice"},"eventID":"d2"}"#,
        );
        assert_eq!(
            (own.action, own.reason.as_deref()),
            (Action::FactorRemove, None)
        );
    }
}
