//! `probe.toml`: which target (kind, URL), which checks, and where the probe's credentials
//! come from. Secrets are never inline: they are read from files or environment variables, and
//! relative paths are resolved against the config file's folder.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub use mfascope_core::secret::SecretRef;

use super::ProbeError;
use mfascope_verifier::otp::Params;

/// The kind of 2FA server probed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, strum::AsRefStr)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum TargetKind {
    /// The reference verifier (`mfascope verifier serve`): the probe provisions its own
    /// throw-away users through the admin API.
    Mfascope,
    /// privacyIDEA's `/validate/check` API with a pre-enrolled TOTP token.
    Privacyidea,
    /// Keycloak's token endpoint (password grant with `totp`) for a user with TOTP configured.
    Keycloak,
}

/// One synthetic check.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, strum::IntoStaticStr, strum::EnumIter,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Check {
    /// Password + current TOTP code → session (introspected, then revoked).
    TotpSuccess,
    /// A code outside the window is rejected.
    WrongCode,
    /// The code just accepted is rejected when sent again.
    Replay,
    /// A recovery code works once, then never again.
    RecoveryCodeSingleUse,
    /// N wrong codes lock the user (429 with Retry-After), even for the right password.
    Lockout,
    /// A push approved on the device completes the login.
    PushApprove,
    /// A push denied on the device fails the login.
    PushDeny,
    /// A push left unanswered times out.
    PushTimeout,
}

impl Check {
    /// snake_case name.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Whether `kind` can run this check.
    pub fn supported_by(self, kind: TargetKind) -> bool {
        match kind {
            TargetKind::Mfascope => true,
            TargetKind::Privacyidea => {
                matches!(self, Check::TotpSuccess | Check::WrongCode | Check::Replay)
            }
            TargetKind::Keycloak => matches!(
                self,
                Check::TotpSuccess | Check::WrongCode | Check::Replay | Check::Lockout
            ),
        }
    }
}

/// `[mfascope]`: the reference verifier.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MfascopeTarget {
    /// The admin token (the verifier's `--admin-token-file`).
    pub admin_token: SecretRef,
    /// The verifier's `--lockout-after`: the lockout check expects the lock exactly then.
    #[serde(default = "default_lockout_after")]
    pub lockout_after: u32,
    /// TOTP parameters of the probe users' tokens.
    #[serde(default)]
    pub totp: Params,
}

fn default_lockout_after() -> u32 {
    5
}

/// `[privacyidea]`: a user with a TOTP token enrolled for probing.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivacyideaTarget {
    /// User name.
    pub user: String,
    /// The privacyIDEA realm of the user (its default realm when unset).
    pub realm: Option<String>,
    /// The token PIN (sent before the code, as privacyIDEA expects).
    pub pin: SecretRef,
    /// The token's base32 secret.
    pub secret: SecretRef,
    /// The token's TOTP parameters.
    #[serde(default)]
    pub totp: Params,
}

/// `[keycloak]`: a confidential client allowed the password grant, and a user with TOTP
/// configured.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeycloakTarget {
    /// The realm.
    pub realm: String,
    /// The confidential client (direct access grants enabled).
    pub client_id: String,
    /// Its secret.
    pub client_secret: SecretRef,
    /// The probe user.
    pub user: String,
    /// Its password.
    pub password: SecretRef,
    /// Its TOTP secret, base32 (as an authenticator app is given it).
    pub secret: SecretRef,
    /// TOTP parameters of the realm's OTP policy.
    #[serde(default)]
    pub totp: Params,
    /// The realm's brute-force failure factor: the lockout check expects the lock by then.
    #[serde(default = "default_keycloak_lockout_after")]
    pub lockout_after: u32,
    /// Least time between two failing attempts of the probe user (Keycloak locks a user after
    /// two failures closer than its quick-login check, 1 s by default).
    #[serde(default = "default_failure_spacing", deserialize_with = "duration")]
    pub failure_spacing: Duration,
    /// A second user the lockout check locks (never the probe user).
    pub lockout: Option<KeycloakAccount>,
}

/// `[keycloak.lockout]`: a user with TOTP configured.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeycloakAccount {
    /// User name.
    pub user: String,
    /// Its password.
    pub password: SecretRef,
    /// Its TOTP secret, base32.
    pub secret: SecretRef,
}

fn default_keycloak_lockout_after() -> u32 {
    3
}

fn default_failure_spacing() -> Duration {
    Duration::from_millis(1100)
}

/// The whole file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeConfig {
    /// Target kind.
    pub kind: TargetKind,
    /// Base URL (`--target` overrides).
    pub url: Option<String>,
    /// Per-request timeout.
    #[serde(default = "default_timeout", deserialize_with = "duration")]
    pub timeout: Duration,
    /// Checks to run, in order (default: every check the kind supports).
    pub checks: Option<Vec<Check>>,
    /// Reference verifier settings.
    pub mfascope: Option<MfascopeTarget>,
    /// privacyIDEA settings.
    pub privacyidea: Option<PrivacyideaTarget>,
    /// Keycloak settings.
    pub keycloak: Option<KeycloakTarget>,
    /// Folder of the config file (relative paths start here).
    #[serde(skip)]
    pub base: PathBuf,
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

fn duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    mfascope_core::time::parse_duration(&s).map_err(serde::de::Error::custom)
}

impl ProbeConfig {
    /// Load and check `path`.
    pub fn load(path: &Path) -> Result<ProbeConfig, ProbeError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ProbeError::Config(format!("{}: {e}", path.display())))?;
        let mut c: ProbeConfig = toml::from_str(&text)
            .map_err(|e| ProbeError::Config(format!("{}: {e}", path.display())))?;
        c.base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let section_missing = match c.kind {
            TargetKind::Mfascope => c.mfascope.is_none(),
            TargetKind::Privacyidea => c.privacyidea.is_none(),
            TargetKind::Keycloak => c.keycloak.is_none(),
        };
        if section_missing {
            return Err(ProbeError::Config(format!(
                "{}: kind = \"{}\" needs a [{}] section",
                path.display(),
                c.kind.as_ref(),
                c.kind.as_ref()
            )));
        }
        if let Some(bad) = c.checks.iter().flatten().find(|k| !k.supported_by(c.kind)) {
            return Err(ProbeError::Config(format!(
                "{}: check {} is not supported by kind = \"{}\"",
                path.display(),
                bad.as_str(),
                c.kind.as_ref()
            )));
        }
        Ok(c)
    }

    /// The checks to run.
    pub fn checks(&self) -> Vec<Check> {
        use strum::IntoEnumIterator;
        self.checks.clone().unwrap_or_else(|| {
            Check::iter()
                .filter(|k| k.supported_by(self.kind))
                .collect()
        })
    }
}
