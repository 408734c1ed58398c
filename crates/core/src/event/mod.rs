//! The canonical 2FA event: typed enums for action/factor/outcome/source, the row type that
//! normalizers produce, its Arrow schema and the builder that turns rows into record batches.

mod batch;
mod builder;
pub mod columns;
pub mod cow;
mod schema;

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use strum::{EnumString, IntoStaticStr, VariantNames};

pub use batch::{BatchError, CanonicalBatch, enums_in_vocabulary};
pub use builder::EventBatchBuilder;
pub use schema::{SCHEMA_VERSION, col, event_schema};

/// Defines a closed vocabulary stored as an Arrow dictionary whose values are the variant names
/// in declaration order, so the dictionary is identical in every file.
macro_rules! vocabulary {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
                 EnumString, IntoStaticStr, VariantNames, strum::EnumIter)]
        #[serde(rename_all = "snake_case")]
        #[strum(serialize_all = "snake_case")]
        #[repr(i8)]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            /// The stable lower-case name stored in Parquet and printed in reports.
            pub fn as_str(self) -> &'static str { self.into() }
            /// The dictionary key of this value (its position in `VARIANTS`).
            pub fn key(self) -> i8 { self as i8 }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

vocabulary! {
    /// What happened in the authentication flow.
    Action {
        PrimaryAuth, MfaChallenge, MfaVerify, EnrollStart, EnrollComplete, FactorRemove,
        DeviceRegister, DeviceRevoke, RecoveryRequest, RecoveryComplete, Bypass, Lockout,
        RateLimited, SessionStart, SessionRevoke, PolicyChange, Other,
        /// A verdict on the user's activity rather than a step of it: the user reported a
        /// prompt or sign-in as fraud (`reason` `fraud_reported`) or the vendor's risk engine
        /// flagged it (`threat_detected`). Appended last: the dictionary keys of older files
        /// keep their meaning.
        RiskSignal,
    }
}

vocabulary! {
    /// The authentication factor involved.
    Factor {
        Password, Totp, Hotp, Sms, Voice, Email, Push, Webauthn, U2f, HardwareOtp, RecoveryCode,
        BypassCode, Biometric, None, Unknown,
    }
}

vocabulary! {
    /// How the step ended.
    Outcome { Success, Failure, Denied, Timeout, Challenge, Error, Unknown }
}

vocabulary! {
    /// Which system emitted the record.
    Source { Okta, Entra, Duo, Keycloak, Cloudtrail, Gworkspace, Verifier, Probe, Canonical }
}

impl Factor {
    /// Factors that resist phishing by binding the credential to the origin.
    pub fn is_phishing_resistant(self) -> bool {
        matches!(self, Factor::Webauthn | Factor::U2f)
    }
}

/// One canonical event. Strings borrow from the raw record where possible so the hot path
/// allocates little; [`Event::into_owned`] detaches it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event<'a> {
    /// Vendor uuid, or a stable hash of source and raw bytes.
    #[serde(borrow)]
    pub event_id: Cow<'a, str>,
    /// Event time, milliseconds since the Unix epoch (UTC).
    #[serde(with = "time_serde")]
    pub time: i64,
    /// Emitting system.
    pub source: Source,
    /// Organisation, realm or account.
    #[serde(borrow, default, deserialize_with = "crate::event::cow::opt")]
    pub tenant: Option<Cow<'a, str>>,
    /// Target application or client.
    #[serde(borrow, default, deserialize_with = "crate::event::cow::opt")]
    pub app: Option<Cow<'a, str>>,
    /// Subject of the authentication.
    #[serde(borrow)]
    pub user: Cow<'a, str>,
    /// Who acted when not the user (admin, support, system).
    #[serde(borrow, default, deserialize_with = "crate::event::cow::opt")]
    pub actor: Option<Cow<'a, str>>,
    /// Session correlation key.
    #[serde(borrow, default, deserialize_with = "crate::event::cow::opt")]
    pub session_id: Option<Cow<'a, str>>,
    /// Transaction / login-flow correlation key.
    #[serde(borrow, default, deserialize_with = "crate::event::cow::opt")]
    pub transaction_id: Option<Cow<'a, str>>,
    /// What happened.
    pub action: Action,
    /// Factor involved.
    pub factor: Factor,
    /// How it ended.
    pub outcome: Outcome,
    /// Normalized reason (`invalid_code`, `user_denied`, …).
    #[serde(borrow, default, deserialize_with = "crate::event::cow::opt")]
    pub reason: Option<Cow<'a, str>>,
    /// Challenge → verification time in milliseconds.
    #[serde(default)]
    pub latency_ms: Option<u32>,
    /// Client IP address.
    #[serde(borrow, default, deserialize_with = "crate::event::cow::opt")]
    pub src_ip: Option<Cow<'a, str>>,
    /// ISO 3166-1 alpha-2 country code (vendor value kept when it cannot be mapped).
    #[serde(borrow, default, deserialize_with = "crate::event::cow::opt")]
    pub country: Option<Cow<'a, str>>,
    /// Region / state.
    #[serde(borrow, default, deserialize_with = "crate::event::cow::opt")]
    pub region: Option<Cow<'a, str>>,
    /// City, as the vendor names it.
    #[serde(borrow, default, deserialize_with = "crate::event::cow::opt")]
    pub city: Option<Cow<'a, str>>,
    /// Autonomous system number.
    #[serde(default)]
    pub asn: Option<u32>,
    /// Client user agent.
    #[serde(borrow, default, deserialize_with = "crate::event::cow::opt")]
    pub user_agent: Option<Cow<'a, str>>,
    /// Device identifier (authenticator or client device).
    #[serde(borrow, default, deserialize_with = "crate::event::cow::opt")]
    pub device_id: Option<Cow<'a, str>>,
    /// Factor is phishing resistant (WebAuthn/U2F or a vendor signal such as FastPass).
    #[serde(default)]
    pub phishing_resistant: bool,
    /// Subject holds an admin/privileged role, when the source says so.
    #[serde(default)]
    pub privileged: Option<bool>,
    /// The vendor's own event type, for traceability.
    #[serde(borrow)]
    pub vendor_event_type: Cow<'a, str>,
    /// The vendor record this event came from, redacted (vendor formats only; never read from
    /// canonical input).
    #[serde(skip)]
    pub raw: Option<Cow<'a, str>>,
}

impl<'a> Event<'a> {
    /// A new event with the required fields; everything optional is empty.
    pub fn new(
        source: Source,
        event_id: impl Into<Cow<'a, str>>,
        time: i64,
        user: impl Into<Cow<'a, str>>,
        vendor_event_type: impl Into<Cow<'a, str>>,
        (action, factor, outcome): (Action, Factor, Outcome),
    ) -> Self {
        Event {
            event_id: event_id.into(),
            time,
            source,
            tenant: None,
            app: None,
            user: user.into(),
            actor: None,
            session_id: None,
            transaction_id: None,
            action,
            factor,
            outcome,
            reason: None,
            latency_ms: None,
            src_ip: None,
            country: None,
            region: None,
            city: None,
            asn: None,
            user_agent: None,
            device_id: None,
            phishing_resistant: factor.is_phishing_resistant(),
            privileged: None,
            vendor_event_type: vendor_event_type.into(),
            raw: None,
        }
    }

    /// Detach from the buffer the event borrows from.
    pub fn into_owned(self) -> Event<'static> {
        fn o(c: Option<Cow<'_, str>>) -> Option<Cow<'static, str>> {
            c.map(|c| Cow::Owned(c.into_owned()))
        }
        Event {
            event_id: Cow::Owned(self.event_id.into_owned()),
            time: self.time,
            source: self.source,
            tenant: o(self.tenant),
            app: o(self.app),
            user: Cow::Owned(self.user.into_owned()),
            actor: o(self.actor),
            session_id: o(self.session_id),
            transaction_id: o(self.transaction_id),
            action: self.action,
            factor: self.factor,
            outcome: self.outcome,
            reason: o(self.reason),
            latency_ms: self.latency_ms,
            src_ip: o(self.src_ip),
            country: o(self.country),
            region: o(self.region),
            city: o(self.city),
            asn: self.asn,
            user_agent: o(self.user_agent),
            device_id: o(self.device_id),
            phishing_resistant: self.phishing_resistant,
            privileged: self.privileged,
            vendor_event_type: Cow::Owned(self.vendor_event_type.into_owned()),
            raw: o(self.raw),
        }
    }
}

/// Canonical NDJSON carries `time` as RFC 3339 (written) and accepts RFC 3339 or epoch
/// milliseconds (read).
pub mod time_serde {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::time::format_rfc3339(*ms))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum T<'a> {
            Ms(i64),
            #[serde(borrow)]
            Text(std::borrow::Cow<'a, str>),
        }
        match T::deserialize(d)? {
            T::Ms(ms) => crate::time::check_range(ms).map_err(D::Error::custom),
            T::Text(s) => crate::time::parse_rfc3339(&s).map_err(D::Error::custom),
        }
    }
}
