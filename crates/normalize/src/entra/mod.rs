//! Microsoft Entra ID: sign-in logs (Graph `signIn` objects and Azure Event Hubs records with
//! `category: *SignInLogs` and the sign-in under `properties`) and audit logs (Graph
//! `directoryAudit` or `category: AuditLogs`) and Identity Protection risk detections (Graph
//! `riskDetection` or `category: UserRiskEvents`), which become `risk_signal` events.
//!
//! Sign-ins: `status.errorCode` 0 is success; 500121 is a failed strong authentication (with
//! "declined" → push denied, "did not respond" → timeout, "fraud" → fraud reported);
//! 50074/50076/50158 mean MFA was demanded (a challenge); 50072/50079 mean the user must enrol.
//! The MFA step in `authenticationDetails[]` gives the factor and the latency.

use std::borrow::Cow;

use serde::Deserialize;

use super::fields::{Countries, Ctx, Scalar, contains_ci, nonempty};
use super::{LogFormat, MapResult, event, ignored, parse};
use mfascope_core::event::{Action, Event, Factor, Outcome, Source};
use mfascope_core::time::parse_rfc3339;

use crate::detect::Markers;
use crate::vendor::{Limit, Logsource, Vendor};
mod render;

/// The Microsoft Entra ID sign-in and audit logs (Event Hubs `records[]`, Graph, diagnostic archives) in the vendor registry.
pub(crate) static VENDOR: Vendor = Vendor {
    format: LogFormat::Entra,
    source: Source::Entra,
    title: "Microsoft Entra ID sign-in and audit logs (Event Hubs `records[]`, Graph, diagnostic archives)",
    map,
    detect,
    render,
    logsources: &[
        Logsource {
            product: "azure",
            service: "signinlogs",
        },
        Logsource {
            product: "azure",
            service: "auditlogs",
        },
        Logsource {
            product: "azure",
            service: "riskdetection",
        },
    ],
    logsource_of,
    sample: "entra-eventhubs.json.gz",
    limits: &[Limit {
        scenario: "otp_replay",
        reason: "a reused OATH or text-message code fails as 500121 like any wrong code; no error code or step result detail says the code was already used",
        doc: "https://learn.microsoft.com/en-us/entra/identity-platform/reference-error-codes",
    }],
};

fn detect(m: &Markers<'_>) -> bool {
    let category = m
        .value("category")
        .is_some_and(|c| c.ends_with("SignInLogs") || c == "AuditLogs" || c == "UserRiskEvents");
    (category && m.has("properties"))
        || (m.has("riskEventType") && m.has("userPrincipalName"))
        || (m.has("createdDateTime") && m.has("userPrincipalName"))
        || (m.has("activityDisplayName") && m.has("activityDateTime"))
}

fn render(e: &Event<'_>, out: &mut String) -> bool {
    crate::vendor::push_json(out, &render::render(e))
}

/// Audit records (`vendor_event_type` `audit:…`) are the `auditlogs` logsource, risk
/// detections (`risk:…`) `riskdetection`; the rest are sign-ins.
fn logsource_of(vendor_event_type: &str) -> usize {
    if vendor_event_type.starts_with("audit:") {
        1
    } else if vendor_event_type.starts_with("risk:") {
        2
    } else {
        0
    }
}

super::record_type!(EntraRecord => Body);

/// The union of the sign-in and audit fields we read (Graph names), plus the Azure Event Hubs
/// envelope fields (`category`, `time`, `properties` holding the Graph object).
#[derive(Deserialize, Default)]
#[allow(non_snake_case)]
struct Body<'a> {
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    category: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    time: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    properties: Option<Box<Body<'a>>>,
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    createdDateTime: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    userPrincipalName: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    appDisplayName: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    correlationId: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    sessionId: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    ipAddress: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    userAgent: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    tenantId: Option<Cow<'a, str>>,
    /// An object in Graph records; the envelope's `location` is a bare country code.
    #[serde(borrow, default)]
    location: Option<LocationField<'a>>,
    #[serde(borrow, default)]
    deviceDetail: Option<DeviceDetail<'a>>,
    #[serde(borrow, default)]
    status: Option<Status<'a>>,
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    authenticationRequirement: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    authenticationDetails: Option<Vec<AuthDetail<'a>>>,
    #[serde(default)]
    isInteractive: Option<bool>,
    #[serde(borrow, default)]
    autonomousSystemNumber: Option<Scalar<'a>>,
    // audit
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    activityDisplayName: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    activityDateTime: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    result: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    resultReason: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    initiatedBy: Option<InitiatedBy<'a>>,
    #[serde(borrow, default)]
    targetResources: Option<Vec<TargetResource<'a>>>,
    #[serde(borrow, default)]
    additionalDetails: Option<Vec<KeyValue<'a>>>,
    // risk detection (Identity Protection)
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    riskEventType: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    requestId: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum LocationField<'a> {
    #[serde(borrow)]
    Object(Location<'a>),
    #[serde(borrow)]
    #[allow(dead_code)]
    Code(Cow<'a, str>),
}

impl<'a> LocationField<'a> {
    /// The location object (a bare country code has no city or region to read).
    fn into_location(self) -> Location<'a> {
        match self {
            LocationField::Object(l) => l,
            LocationField::Code(_) => Location::default(),
        }
    }
}

#[derive(Deserialize, Default)]
#[allow(non_snake_case)]
struct Location<'a> {
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    city: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    state: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    countryOrRegion: Option<Cow<'a, str>>,
}

#[derive(Deserialize, Default)]
#[allow(non_snake_case)]
struct DeviceDetail<'a> {
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    deviceId: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    browser: Option<Cow<'a, str>>,
}

#[derive(Deserialize, Default)]
#[allow(non_snake_case)]
struct Status<'a> {
    #[serde(default)]
    errorCode: Option<i64>,
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    failureReason: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    additionalDetails: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct AuthDetail<'a> {
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    authenticationStepDateTime: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    authenticationMethod: Option<Cow<'a, str>>,
    #[serde(default)]
    succeeded: Option<bool>,
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    authenticationStepResultDetail: Option<Cow<'a, str>>,
}

#[derive(Deserialize, Default)]
struct InitiatedBy<'a> {
    #[serde(borrow, default)]
    user: Option<Principal<'a>>,
    #[serde(borrow, default)]
    app: Option<Principal<'a>>,
}

#[derive(Deserialize, Default)]
#[allow(non_snake_case)]
struct Principal<'a> {
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    userPrincipalName: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    displayName: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    ipAddress: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct TargetResource<'a> {
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    userPrincipalName: Option<Cow<'a, str>>,
    #[serde(
        borrow,
        default,
        rename = "type",
        deserialize_with = "mfascope_core::event::cow::opt"
    )]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    displayName: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct KeyValue<'a> {
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    key: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "mfascope_core::event::cow::opt")]
    value: Option<Cow<'a, str>>,
}

/// Factor for an Entra `authenticationMethod` / registered method name.
fn factor_for(method: &str) -> Factor {
    let m = method.to_ascii_lowercase();
    if m.contains("fido") || m.contains("passkey") || m.contains("security key") {
        Factor::Webauthn
    } else if m.contains("windows hello") || m.contains("platform credential") {
        Factor::Biometric
    } else if m.contains("notification")
        || m.contains("authenticator app")
        || m.contains("microsoft authenticator")
        || m.contains("push")
    {
        Factor::Push
    } else if m.contains("oath") || m.contains("verification code") || m.contains("software token")
    {
        Factor::Totp
    } else if m.contains("hardware") {
        Factor::HardwareOtp
    } else if m.contains("text message") || m.contains("sms") {
        Factor::Sms
    } else if m.contains("phone call") || m.contains("voice") {
        Factor::Voice
    } else if m.contains("email") {
        Factor::Email
    } else if m.contains("temporary access pass") {
        Factor::BypassCode
    } else if m.contains("password") {
        Factor::Password
    } else if m.contains("previously satisfied") || m.contains("claim") {
        Factor::None
    } else {
        Factor::Unknown
    }
}

fn is_mfa_step(method: &str) -> bool {
    !matches!(factor_for(method), Factor::Password | Factor::None)
}

/// Map one Entra record.
pub(super) fn map<'a>(raw: &[u8], ctx: &'a mut Ctx) -> MapResult<'a> {
    let Ctx { json, geo, .. } = ctx;
    // Event Hubs records wrap the Graph object in `properties`; Graph records are the object.
    let mut rec = parse::<EntraRecord>(LogFormat::Entra, raw, json)?;
    let category = rec.category.take();
    let envelope_time = rec.time.take();
    let envelope_tenant = rec.tenantId.take();
    let body = match rec.properties.take() {
        Some(b) => *b,
        None => rec,
    };
    let tenant = nonempty(envelope_tenant).or_else(|| nonempty(body.tenantId.clone()));
    if category.as_deref() == Some("UserRiskEvents") || body.riskEventType.is_some() {
        return map_risk(body, tenant, envelope_time, geo);
    }
    let audit = category.as_deref() == Some("AuditLogs") || body.activityDisplayName.is_some();
    if audit {
        return map_audit(body, tenant, envelope_time, raw);
    }
    if let Some(
        kind @ ("ServicePrincipalSignInLogs"
        | "ManagedIdentitySignInLogs"
        | "MicrosoftServicePrincipalSignInLogs"),
    ) = category.as_deref()
    {
        return ignored(LogFormat::Entra, kind);
    }
    map_signin(body, tenant, envelope_time, category, geo)
}

fn map_signin<'a>(
    b: Body<'a>,
    tenant: Option<Cow<'a, str>>,
    envelope_time: Option<Cow<'a, str>>,
    category: Option<Cow<'a, str>>,
    geo: &mut Countries,
) -> MapResult<'a> {
    let time_text = b
        .createdDateTime
        .clone()
        .or(envelope_time)
        .ok_or("entra: createdDateTime: missing")?;
    let time = parse_rfc3339(&time_text).map_err(|e| format!("entra: createdDateTime: {e}"))?;
    let user = nonempty(b.userPrincipalName.clone()).ok_or("entra: userPrincipalName: missing")?;
    let id = nonempty(b.id.clone()).ok_or("entra: id: missing")?;
    let status = b.status.unwrap_or_default();
    let code = status.errorCode.unwrap_or(0);
    let detail_text = [
        status.failureReason.as_deref(),
        status.additionalDetails.as_deref(),
    ]
    .into_iter()
    .flatten()
    .chain(
        b.authenticationDetails
            .iter()
            .flatten()
            .filter_map(|d| d.authenticationStepResultDetail.as_deref()),
    )
    .collect::<Vec<_>>()
    .join(" ")
    .to_ascii_lowercase();

    let steps = b.authenticationDetails.as_deref().unwrap_or_default();
    let mfa_step = steps
        .iter()
        .rev()
        .find(|s| s.authenticationMethod.as_deref().is_some_and(is_mfa_step));
    let factor_from_step = mfa_step
        .and_then(|s| s.authenticationMethod.as_deref())
        .map(factor_for)
        .unwrap_or(Factor::Unknown);
    let mfa_required = b
        .authenticationRequirement
        .as_deref()
        .is_some_and(|r| contains_ci(r, "multifactor"));
    let non_interactive = category.as_deref() == Some("NonInteractiveUserSignInLogs")
        || b.isInteractive == Some(false);

    use Action::*;
    let (action, factor, outcome, reason): (Action, Factor, Outcome, Option<Cow<'a, str>>) =
        match code {
            0 if mfa_step.is_some() => (MfaVerify, factor_from_step, Outcome::Success, None),
            0 if non_interactive => (SessionStart, Factor::None, Outcome::Success, None),
            0 if mfa_required => (
                SessionStart,
                Factor::None,
                Outcome::Success,
                Some("mfa_previously_satisfied".into()),
            ),
            0 => (PrimaryAuth, Factor::Password, Outcome::Success, None),
            500121 => {
                // Most specific first: every 500121 detail starts "MFA denied;", so the words
                // after it decide (fraud, a wrong code, no answer, then a plain decline).
                let (o, r) = if detail_text.contains("fraud") {
                    (Outcome::Denied, "fraud_reported")
                } else if detail_text.contains("invalid")
                    || detail_text.contains("incorrect")
                    || detail_text.contains("wrong")
                {
                    (Outcome::Failure, "invalid_code")
                } else if detail_text.contains("did not respond")
                    || detail_text.contains("timed out")
                    || detail_text.contains("timeout")
                {
                    (Outcome::Timeout, "no_response")
                } else if detail_text.contains("declined") || detail_text.contains("denied") {
                    (Outcome::Denied, "user_denied")
                } else {
                    (Outcome::Failure, "mfa_failed")
                };
                (MfaVerify, factor_from_step, o, Some(r.into()))
            }
            50074 | 50076 => (
                MfaChallenge,
                factor_from_step,
                Outcome::Challenge,
                Some("mfa_required".into()),
            ),
            50158 => (
                MfaChallenge,
                Factor::Unknown,
                Outcome::Challenge,
                Some("external_challenge".into()),
            ),
            50072 | 50079 => (
                EnrollStart,
                Factor::Unknown,
                Outcome::Challenge,
                Some("enrollment_required".into()),
            ),
            50053 => (
                Lockout,
                Factor::Password,
                Outcome::Failure,
                Some("locked_out".into()),
            ),
            50126 | 50034 | 50055 | 50056 => (
                PrimaryAuth,
                Factor::Password,
                Outcome::Failure,
                Some("invalid_credentials".into()),
            ),
            53003 | 530002 | 53000 | 53001 => (
                PrimaryAuth,
                Factor::None,
                Outcome::Denied,
                Some("blocked_by_policy".into()),
            ),
            50196 | 90033 | 50199 => (
                Other,
                Factor::None,
                Outcome::Challenge,
                Some(format!("entra_{code}").into()),
            ),
            50140 => (
                Other,
                Factor::None,
                Outcome::Challenge,
                Some("kmsi_interrupt".into()),
            ),
            // Known MFA throttling code: too many verification attempts.
            500183 | 50211 | 500133 => (
                RateLimited,
                factor_from_step,
                Outcome::Failure,
                Some("rate_limited".into()),
            ),
            c => (
                PrimaryAuth,
                Factor::Password,
                Outcome::Failure,
                Some(format!("entra_{c}").into()),
            ),
        };

    let latency_ms = latency_from_steps(steps);
    let loc = b
        .location
        .map(LocationField::into_location)
        .unwrap_or_default();
    let dev = b.deviceDetail.unwrap_or_default();
    let mut e = Event::new(
        Source::Entra,
        id,
        time,
        user,
        "signin",
        (action, factor, outcome),
    );
    if code != 0 {
        e.vendor_event_type = Cow::Owned(format!("signin:{code}"));
    }
    e.tenant = tenant;
    e.app = nonempty(b.appDisplayName);
    e.reason = reason;
    e.transaction_id = nonempty(b.correlationId);
    e.session_id = nonempty(b.sessionId);
    e.src_ip = nonempty(b.ipAddress);
    e.user_agent = nonempty(b.userAgent).or_else(|| nonempty(dev.browser.clone()));
    e.device_id = nonempty(dev.deviceId);
    e.country = geo.country(loc.countryOrRegion);
    e.region = nonempty(loc.state);
    e.city = nonempty(loc.city);
    e.asn = b.autonomousSystemNumber.and_then(|a| a.0.parse().ok());
    e.latency_ms = if matches!(action, MfaVerify) {
        latency_ms
    } else {
        None
    };
    event(e)
}

/// Time from the first authentication step to the MFA step, when both carry timestamps.
fn latency_from_steps(steps: &[AuthDetail<'_>]) -> Option<u32> {
    let times = |s: &AuthDetail| {
        s.authenticationStepDateTime
            .as_deref()
            .and_then(|t| parse_rfc3339(t).ok())
    };
    let first = steps.iter().find_map(times)?;
    let mfa = steps
        .iter()
        .rev()
        .filter(|s| {
            s.authenticationMethod.as_deref().is_some_and(is_mfa_step) && s.succeeded.is_some()
        })
        .find_map(times)?;
    u32::try_from(mfa - first).ok().filter(|&ms| ms > 0)
}

/// An Identity Protection risk detection (Graph `riskDetection`, Event Hubs `UserRiskEvents`):
/// Entra's verdict on a sign-in or user, or the user's own report
/// (`userReportedSuspiciousActivity`, from "report suspicious activity" on an MFA prompt).
fn map_risk<'a>(
    b: Body<'a>,
    tenant: Option<Cow<'a, str>>,
    envelope_time: Option<Cow<'a, str>>,
    geo: &mut Countries,
) -> MapResult<'a> {
    let kind = nonempty(b.riskEventType).ok_or("entra: riskEventType: missing")?;
    let time_text = b
        .activityDateTime
        .or(envelope_time)
        .ok_or("entra: activityDateTime: missing")?;
    let time = parse_rfc3339(&time_text).map_err(|e| format!("entra: activityDateTime: {e}"))?;
    let user = nonempty(b.userPrincipalName).ok_or("entra: userPrincipalName: missing")?;
    let id = nonempty(b.id).ok_or("entra: id: missing")?;
    let reason = if kind.eq_ignore_ascii_case("userReportedSuspiciousActivity") {
        "fraud_reported"
    } else {
        "threat_detected"
    };
    let loc = b
        .location
        .map(LocationField::into_location)
        .unwrap_or_default();
    let mut e = Event::new(
        Source::Entra,
        id,
        time,
        user,
        Cow::Owned(format!("risk:{kind}")),
        (Action::RiskSignal, Factor::None, Outcome::Unknown),
    );
    e.tenant = tenant;
    e.reason = Some(Cow::Borrowed(reason));
    // The sign-in the detection is about: its `correlationId`, else its request (sign-in) id.
    e.transaction_id = nonempty(b.correlationId).or_else(|| nonempty(b.requestId));
    e.src_ip = nonempty(b.ipAddress);
    e.country = geo.country(loc.countryOrRegion);
    e.region = nonempty(loc.state);
    e.city = nonempty(loc.city);
    event(e)
}

fn map_audit<'a>(
    b: Body<'a>,
    tenant: Option<Cow<'a, str>>,
    envelope_time: Option<Cow<'a, str>>,
    raw: &[u8],
) -> MapResult<'a> {
    let activity = b.activityDisplayName.clone().unwrap_or_default();
    let a = activity.to_ascii_lowercase();
    use Action::*;
    let (action, reason): (Action, Option<&'static str>) = if a.contains("registered security info")
        || a.contains("registered all required security info")
    {
        (EnrollComplete, None)
    } else if a.contains("started security info registration") {
        (EnrollStart, None)
    } else if a.contains("deleted security info")
        || a.contains("delete authentication method")
        || a.contains("deleted authentication method")
    {
        (FactorRemove, None)
    } else if a.contains("disable strong authentication") {
        (PolicyChange, Some("mfa_disabled"))
    } else if a.contains("enable strong authentication") {
        (PolicyChange, Some("mfa_enabled"))
    } else if a.contains("authentication methods policy") || a.contains("conditional access policy")
    {
        (PolicyChange, None)
    } else if a.contains("self-service password reset")
        || a.contains("reset password (self-service)") && a.contains("progress")
    {
        (RecoveryRequest, None)
    } else if a.contains("reset password") || a.contains("reset user password") {
        (RecoveryComplete, None)
    } else if a == "register device"
        || a.contains("add registered owner to device")
        || a.contains("add device")
    {
        (DeviceRegister, None)
    } else if a == "delete device" || a == "disable device" {
        (DeviceRevoke, None)
    } else if a.contains("invalidate all refresh tokens")
        || a.contains("revoke") && a.contains("session")
    {
        (SessionRevoke, None)
    } else {
        return ignored(LogFormat::Entra, &format!("audit:{activity}"));
    };
    let time_text = b
        .activityDateTime
        .clone()
        .or(envelope_time)
        .ok_or("entra: activityDateTime: missing")?;
    let time = parse_rfc3339(&time_text).map_err(|e| format!("entra: activityDateTime: {e}"))?;
    let initiated = b.initiatedBy.unwrap_or_default();
    let initiator = initiated
        .user
        .as_ref()
        .and_then(|u| nonempty(u.userPrincipalName.clone()))
        .or_else(|| {
            initiated
                .app
                .as_ref()
                .and_then(|a| nonempty(a.displayName.clone()))
        });
    let target = b
        .targetResources
        .iter()
        .flatten()
        .find(|t| {
            t.kind
                .as_deref()
                .is_none_or(|k| k.eq_ignore_ascii_case("user"))
                && t.userPrincipalName.is_some()
        })
        .and_then(|t| nonempty(t.userPrincipalName.clone()));
    let device_name = b
        .targetResources
        .iter()
        .flatten()
        .find(|t| {
            t.kind
                .as_deref()
                .is_some_and(|k| k.eq_ignore_ascii_case("device"))
        })
        .and_then(|t| nonempty(t.displayName.clone()));
    let (user, actor) = match (target, initiator) {
        (Some(t), Some(i)) if t != i => (t, Some(i)),
        (Some(t), _) => (t, None),
        (None, Some(i)) => (i, None),
        (None, None) => {
            return Err("entra: targetResources[].userPrincipalName: missing; no subject".into());
        }
    };
    let method = b
        .additionalDetails
        .iter()
        .flatten()
        .find(|kv| {
            kv.key.as_deref().is_some_and(|k| {
                k.eq_ignore_ascii_case("method") || k.eq_ignore_ascii_case("methodType")
            })
        })
        .and_then(|kv| kv.value.as_deref())
        .map(factor_for);
    let factor = match action {
        PolicyChange | SessionRevoke | DeviceRegister | DeviceRevoke => Factor::None,
        RecoveryRequest | RecoveryComplete => Factor::Password,
        _ => method.unwrap_or(Factor::Unknown),
    };
    let outcome = match b.result.as_deref().map(str::to_ascii_lowercase).as_deref() {
        Some("success") => Outcome::Success,
        Some("failure") => Outcome::Failure,
        Some("timeout") => Outcome::Timeout,
        _ => Outcome::Unknown,
    };
    let id = nonempty(b.id.clone()).map(Ok).unwrap_or_else(|| {
        Ok::<_, String>(Cow::Owned(super::fields::hashed_id(Source::Entra, raw)))
    })?;
    let mut e = Event::new(
        Source::Entra,
        id,
        time,
        user,
        Cow::Owned(format!("audit:{activity}")),
        (action, factor, outcome),
    );
    e.tenant = tenant;
    e.actor = actor;
    e.reason = reason
        .map(Cow::Borrowed)
        .or_else(|| nonempty(b.resultReason).filter(|_| outcome != Outcome::Success));
    e.transaction_id = nonempty(b.correlationId);
    e.src_ip = initiated.user.and_then(|u| nonempty(u.ipAddress));
    e.device_id = device_name;
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
    fn a_wrong_code_is_a_failure_even_when_the_detail_says_denied_and_a_tap_is_a_bypass() {
        let e = ev(
            r#"{"id":"s2","createdDateTime":"2024-05-01T10:00:05Z","userPrincipalName":"a@x.com","status":{"errorCode":500121,"additionalDetails":"MFA denied; invalid verification code entered"},"authenticationDetails":[{"authenticationStepDateTime":"2024-05-01T10:00:05Z","authenticationMethod":"OATH verification code","succeeded":false,"authenticationStepResultDetail":"MFA denied; invalid verification code entered"}]}"#,
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
            r#"{"id":"s3","createdDateTime":"2024-05-01T10:00:05Z","userPrincipalName":"a@x.com","status":{"errorCode":500121,"additionalDetails":"MFA denied; user declined the authentication and reported fraud"},"authenticationDetails":[{"authenticationMethod":"Mobile app notification","succeeded":false}]}"#,
        );
        assert_eq!(e.reason.as_deref(), Some("fraud_reported"));
        let e = ev(
            r#"{"id":"s4","createdDateTime":"2024-05-01T10:00:05Z","userPrincipalName":"a@x.com","status":{"errorCode":0},"authenticationDetails":[{"authenticationMethod":"Temporary Access Pass","succeeded":true}]}"#,
        );
        assert_eq!(
            (e.action, e.factor, e.outcome),
            (Action::MfaVerify, Factor::BypassCode, Outcome::Success)
        );
    }

    /// Identity Protection detections, from Graph and from Event Hubs, are risk signals; the
    /// user's own report is `fraud_reported`.
    #[test]
    fn risk_detections_are_risk_signals() {
        let graph = ev(
            r#"{"id":"r1","requestId":"s1","correlationId":"c1","riskEventType":"unlikelyTravel","riskState":"atRisk","riskLevel":"medium","ipAddress":"198.51.100.7","location":{"city":"Lagos","state":"Lagos","countryOrRegion":"NG"},"activityDateTime":"2024-05-01T10:00:05Z","detectedDateTime":"2024-05-01T10:05:00Z","userPrincipalName":"a@x.com"}"#,
        );
        assert_eq!(
            (graph.action, graph.factor, graph.outcome),
            (Action::RiskSignal, Factor::None, Outcome::Unknown)
        );
        assert_eq!(graph.reason.as_deref(), Some("threat_detected"));
        assert_eq!(graph.vendor_event_type, "risk:unlikelyTravel");
        assert_eq!(
            (graph.transaction_id.as_deref(), graph.country.as_deref()),
            (Some("c1"), Some("NG"))
        );
        let hub = ev(
            r#"{"time":"2024-05-01T10:06:00Z","category":"UserRiskEvents","operationName":"User Risk Detection","properties":{"id":"r2","riskEventType":"userReportedSuspiciousActivity","activityDateTime":"2024-05-01T10:01:00Z","userPrincipalName":"a@x.com"}}"#,
        );
        assert_eq!(hub.action, Action::RiskSignal);
        assert_eq!(hub.reason.as_deref(), Some("fraud_reported"));
        assert_eq!(logsource_of(&hub.vendor_event_type), 2);
    }

    #[test]
    fn declined_push_is_denied() {
        let e = ev(
            r#"{"id":"s1","createdDateTime":"2024-05-01T10:00:05Z","userPrincipalName":"a@x.com","status":{"errorCode":500121,"failureReason":"Authentication failed during strong authentication request.","additionalDetails":"MFA denied; user declined the authentication"},"authenticationRequirement":"multiFactorAuthentication","authenticationDetails":[{"authenticationStepDateTime":"2024-05-01T10:00:00Z","authenticationMethod":"Password","succeeded":true},{"authenticationStepDateTime":"2024-05-01T10:00:05Z","authenticationMethod":"Mobile app notification","succeeded":false,"authenticationStepResultDetail":"MFA denied; user declined the authentication"}],"location":{"countryOrRegion":"FR","city":"Paris"}}"#,
        );
        assert_eq!(
            (e.action, e.factor, e.outcome),
            (Action::MfaVerify, Factor::Push, Outcome::Denied)
        );
        assert_eq!(e.reason.as_deref(), Some("user_denied"));
        assert_eq!(e.latency_ms, Some(5000));
        assert_eq!(e.vendor_event_type, "signin:500121");
    }

    #[test]
    fn event_hubs_record_with_fido_success() {
        let e = ev(
            r#"{"category":"SignInLogs","tenantId":"t1","time":"2024-05-01T10:00:00Z","properties":{"id":"s2","createdDateTime":"2024-05-01T10:00:00Z","userPrincipalName":"b@x.com","status":{"errorCode":0},"authenticationDetails":[{"authenticationMethod":"FIDO2 security key","succeeded":true}]}}"#,
        );
        assert_eq!(
            (e.action, e.factor, e.outcome),
            (Action::MfaVerify, Factor::Webauthn, Outcome::Success)
        );
        assert!(e.phishing_resistant);
        assert_eq!(e.tenant.as_deref(), Some("t1"));
    }

    #[test]
    fn strong_auth_required_is_a_challenge_and_enrollment_codes_start_enrollment() {
        let e = ev(
            r#"{"id":"s3","createdDateTime":"2024-05-01T10:00:00Z","userPrincipalName":"a@x.com","status":{"errorCode":50074}}"#,
        );
        assert_eq!(
            (e.action, e.outcome),
            (Action::MfaChallenge, Outcome::Challenge)
        );
        let e = ev(
            r#"{"id":"s4","createdDateTime":"2024-05-01T10:00:00Z","userPrincipalName":"a@x.com","status":{"errorCode":50079}}"#,
        );
        assert_eq!(e.action, Action::EnrollStart);
    }

    #[test]
    fn audit_registration_and_disable_mfa() {
        let e = ev(
            r#"{"id":"a1","activityDateTime":"2024-05-01T10:00:00Z","activityDisplayName":"User registered security info","result":"success","initiatedBy":{"user":{"userPrincipalName":"a@x.com","ipAddress":"198.51.100.1"}},"targetResources":[{"userPrincipalName":"a@x.com","type":"User"}],"additionalDetails":[{"key":"Method","value":"Authenticator App"}]}"#,
        );
        assert_eq!((e.action, e.factor), (Action::EnrollComplete, Factor::Push));
        assert_eq!(e.actor, None);
        let e = ev(
            r#"{"id":"a2","activityDateTime":"2024-05-01T10:00:00Z","activityDisplayName":"Disable Strong Authentication","result":"success","initiatedBy":{"user":{"userPrincipalName":"admin@x.com"}},"targetResources":[{"userPrincipalName":"a@x.com","type":"User"}]}"#,
        );
        assert_eq!(
            (e.action, e.reason.as_deref()),
            (Action::PolicyChange, Some("mfa_disabled"))
        );
        assert_eq!(e.actor.as_deref(), Some("admin@x.com"));
    }

    #[test]
    fn service_principal_sign_ins_are_ignored_and_missing_user_rejected() {
        let mut ctx = crate::fields::Ctx::default();
        let r = map(
            br#"{"category":"ServicePrincipalSignInLogs","properties":{"id":"x"}}"#,
            &mut ctx,
        );
        assert!(matches!(r, Ok(Mapped::Ignored(_))));
        let err = map(
            br#"{"id":"s","createdDateTime":"2024-05-01T10:00:00Z","status":{"errorCode":0}}"#,
            &mut Ctx::default(),
        )
        .unwrap_err();
        assert!(err.contains("userPrincipalName"), "{err}");
    }
}
