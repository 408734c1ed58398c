//! Probing Keycloak through its OIDC token endpoint: the password grant of a confidential
//! client with the user's password and `totp` (Keycloak's "Direct Grant - Conditional OTP"
//! step checks the code for users with OTP configured). Chosen over the browser login form:
//! it is one request per attempt, part of Keycloak's supported API, and independent of the
//! login theme's HTML. Keycloak answers every refusal alike (`401 invalid_grant`, "Invalid user
//! credentials"), so a check passes or fails on accepted versus refused, not on the reason.
//!
//! - `totp_success`: the current code is accepted (the session is then logged out). Keycloak
//!   takes a code once (unless the realm allows reuse), so each success waits for a time step
//!   the probe has not used.
//! - `wrong_code`: a code outside the whole acceptance window is refused.
//! - `replay`: the code just accepted is refused when sent again.
//! - `lockout`: `lockout_after` wrong codes for a second, dedicated user (so the probe user is
//!   never locked), then its right password and code are refused: brute-force detection is on.
//!
//! Keycloak's brute-force detection also locks a user after two failures less than
//! `quickLoginCheckMilliSeconds` apart (1 s by default), so the probe spaces its failures for
//! the probe user by `failure_spacing` (1.1 s).

use std::time::{Duration, Instant};

use reqwest::Method;
use zeroize::Zeroizing;

use super::client::{Answer, Body, Http};
use super::config::{Check, ProbeConfig};
use super::otp_util::{Accepted, totp_at, unix_now, wrong_code};
use super::{ProbeError, Recorder};
use mfascope_core::event::{Action, Factor, Outcome};
use mfascope_verifier::otp::{self, Params};

/// One Keycloak user the probe logs in as.
struct Account {
    user: String,
    password: Zeroizing<String>,
    key: Zeroizing<Vec<u8>>,
}

/// Keycloak as a probe target.
pub struct Keycloak {
    http: Http,
    token_path: String,
    logout_path: String,
    client_id: String,
    client_secret: Zeroizing<String>,
    probe: Account,
    lockout: Option<Account>,
    lockout_after: u32,
    params: Params,
    failure_spacing: Duration,
    /// The last time step accepted, and its code.
    accepted: Accepted,
    /// When the probe user last failed (failures are spaced, see the module documentation).
    last_failure: Option<Instant>,
}

impl Keycloak {
    /// A target from the `[keycloak]` section.
    pub fn new(http: Http, c: &ProbeConfig) -> Result<Keycloak, ProbeError> {
        let s = c
            .keycloak
            .as_ref()
            .ok_or_else(|| ProbeError::Config("missing [keycloak]".into()))?;
        let read = |r: &super::config::SecretRef, what: &str| {
            r.read(&c.base, what).map_err(ProbeError::Config)
        };
        let key = |r: &super::config::SecretRef, what: &str| {
            let secret = read(r, what)?;
            otp::secret_from_base32(&secret)
                .map(Zeroizing::new)
                .map_err(|e| ProbeError::Config(format!("{what}: {e}")))
        };
        let lockout = match &s.lockout {
            Some(l) => Some(Account {
                user: l.user.clone(),
                password: read(&l.password, "[keycloak.lockout] password")?,
                key: key(&l.secret, "[keycloak.lockout] secret")?,
            }),
            None => None,
        };
        let realm = urlencoding(&s.realm);
        Ok(Keycloak {
            http,
            token_path: format!("/realms/{realm}/protocol/openid-connect/token"),
            logout_path: format!("/realms/{realm}/protocol/openid-connect/logout"),
            client_id: s.client_id.clone(),
            client_secret: read(&s.client_secret, "[keycloak] client_secret")?,
            probe: Account {
                user: s.user.clone(),
                password: read(&s.password, "[keycloak] password")?,
                key: key(&s.secret, "[keycloak] secret")?,
            },
            lockout,
            lockout_after: s.lockout_after,
            params: s.totp,
            failure_spacing: s.failure_spacing,
            accepted: Accepted::default(),
            last_failure: None,
        })
    }

    /// The password grant for `account` with `code`; the answer and whether tokens came back.
    fn login(&self, account: &Account, code: &str, rec: &mut Recorder) -> Result<Answer, String> {
        let form = [
            ("grant_type", "password"),
            ("client_id", self.client_id.as_str()),
            ("client_secret", self.client_secret.as_str()),
            ("username", account.user.as_str()),
            ("password", account.password.as_str()),
            ("totp", code),
            ("scope", "openid"),
        ];
        let a = self
            .http
            .call(Method::POST, &self.token_path, None, Body::Form(&form))?;
        rec.step("token", a.took);
        rec.verify_step(a.took);
        let (outcome, reason) = match a.status {
            200 => (Outcome::Success, None),
            400 | 401 => (Outcome::Failure, a.str("error").map(str::to_string)),
            _ => (Outcome::Error, Some("unexpected_answer".to_string())),
        };
        rec.event(
            &account.user,
            (Action::MfaVerify, Factor::Totp, outcome),
            reason.as_deref(),
            a.took,
        );
        if a.status == 200 {
            self.logout(&a, rec);
        }
        Ok(a)
    }

    /// End the session a successful login opened (best effort: a left-over session expires).
    fn logout(&self, a: &Answer, rec: &mut Recorder) {
        let Some(refresh) = a.str("refresh_token") else {
            return;
        };
        let form = [
            ("client_id", self.client_id.as_str()),
            ("client_secret", self.client_secret.as_str()),
            ("refresh_token", refresh),
        ];
        if let Ok(out) = self
            .http
            .call(Method::POST, &self.logout_path, None, Body::Form(&form))
        {
            rec.step("logout", out.took);
        }
    }

    /// A failing attempt for the probe user, spaced from the previous one.
    fn failing_login(&mut self, code: &str, rec: &mut Recorder) -> Result<Answer, String> {
        if let Some(last) = self.last_failure {
            let wait = self.failure_spacing.saturating_sub(last.elapsed());
            std::thread::sleep(wait);
        }
        let a = self.login(&self.probe, code, rec);
        self.last_failure = Some(Instant::now());
        a
    }

    fn success(&mut self, rec: &mut Recorder) -> Result<(), String> {
        let (step, code) = self.accepted.fresh(&self.probe.key, &self.params)?;
        let a = self.login(&self.probe, &code, rec)?;
        if a.status != 200 {
            return Err(format!(
                "token endpoint with the password and the current code: expected 200, got {}",
                a.describe()
            ));
        }
        self.accepted.record(step, code);
        Ok(())
    }

    fn lockout(&mut self, rec: &mut Recorder) -> Result<(), String> {
        let Some(account) = &self.lockout else {
            return Err("lockout needs a [keycloak.lockout] user (never the probe user)".into());
        };
        for k in 1..=self.lockout_after {
            let bad = wrong_code(&account.key, &self.params, unix_now(), 8)?;
            let a = self.login(account, &bad, rec)?;
            if a.status == 200 {
                return Err(format!(
                    "wrong code {k} of {}: accepted",
                    self.lockout_after
                ));
            }
        }
        let code = Zeroizing::new(totp_at(&account.key, &self.params, unix_now())?);
        let a = self.login(account, &code, rec)?;
        if a.status == 200 {
            return Err(format!(
                "after {} wrong codes the right password and code were accepted: brute-force \
                 detection is off or its failure factor is above {}",
                self.lockout_after, self.lockout_after
            ));
        }
        Ok(())
    }
}

/// A realm name as a path segment.
fn urlencoding(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

impl super::Target for Keycloak {
    fn run(&mut self, check: Check, rec: &mut Recorder) -> Result<(), String> {
        match check {
            Check::TotpSuccess => self.success(rec),
            Check::WrongCode => {
                let bad = wrong_code(&self.probe.key, &self.params, unix_now(), 8)?;
                let a = self.failing_login(&bad, rec)?;
                if a.status == 200 {
                    return Err(
                        "token endpoint with a wrong code: expected a refusal, got 200 (is OTP \
                         still required for the probe user?)"
                            .into(),
                    );
                }
                Ok(())
            }
            Check::Replay => {
                let code = match self.accepted.last() {
                    Some(code) => code,
                    None => {
                        self.success(rec)?;
                        self.accepted.last().unwrap_or_default()
                    }
                };
                let a = self.failing_login(&code, rec)?;
                if a.status == 200 {
                    return Err(
                        "token endpoint with the code just used: expected a refusal, got 200 \
                         (the realm lets OTP codes be reused)"
                            .into(),
                    );
                }
                Ok(())
            }
            Check::Lockout => self.lockout(rec),
            other => Err(format!(
                "{} is not supported against Keycloak",
                other.as_str()
            )),
        }
    }
}
