//! Probing privacyIDEA through `POST /validate/check` (form: user, realm, pass = PIN + code)
//! with a pre-enrolled TOTP token: a fresh code is accepted, a wrong one rejected, the same
//! code again rejected. privacyIDEA accepts a time step only once, so each success waits for a
//! step the probe has not used yet.

use reqwest::Method;
use zeroize::Zeroizing;

use super::client::{Answer, Body, Http};
use super::config::{Check, ProbeConfig};
use super::otp_util::{Accepted, unix_now, wrong_code};
use super::{ProbeError, Recorder};
use mfascope_core::event::{Action, Factor, Outcome};
use mfascope_verifier::otp::{self, Params};

/// privacyIDEA as a probe target.
pub struct Privacyidea {
    http: Http,
    user: String,
    realm: Option<String>,
    pin: Zeroizing<String>,
    key: Zeroizing<Vec<u8>>,
    params: Params,
    /// The last time step accepted, and its code.
    accepted: Accepted,
}

impl Privacyidea {
    /// A target from the `[privacyidea]` section.
    pub fn new(http: Http, c: &ProbeConfig) -> Result<Privacyidea, ProbeError> {
        let s = c
            .privacyidea
            .as_ref()
            .ok_or_else(|| ProbeError::Config("missing [privacyidea]".into()))?;
        let secret = s
            .secret
            .read(&c.base, "[privacyidea] secret")
            .map_err(ProbeError::Config)?;
        let key = otp::secret_from_base32(&secret)
            .map_err(|e| ProbeError::Config(format!("[privacyidea] secret: {e}")))?;
        Ok(Privacyidea {
            http,
            user: s.user.clone(),
            realm: s.realm.clone(),
            pin: s
                .pin
                .read(&c.base, "[privacyidea] pin")
                .map_err(ProbeError::Config)?,
            key: Zeroizing::new(key),
            params: s.totp,
            accepted: Accepted::default(),
        })
    }

    /// `/validate/check` with `code`; the answer and whether it was ACCEPT.
    fn check(&self, code: &str, rec: &mut Recorder) -> Result<(Answer, bool), String> {
        let pass = Zeroizing::new(format!("{}{code}", self.pin.as_str()));
        let mut form = vec![("user", self.user.as_str()), ("pass", pass.as_str())];
        if let Some(r) = &self.realm {
            form.push(("realm", r.as_str()));
        }
        let a = self
            .http
            .call(Method::POST, "/validate/check", None, Body::Form(&form))?;
        rec.step("validate/check", a.took);
        rec.verify_step(a.took);
        let accepted = a.body["result"]["authentication"].as_str() == Some("ACCEPT");
        let message = a.body["detail"]["message"].as_str().unwrap_or_default();
        let (outcome, reason) = match (a.status, accepted) {
            (200, true) => (Outcome::Success, None),
            (200, false) if message.contains("previous otp used again") => {
                (Outcome::Failure, Some("replay"))
            }
            (200, false) => (Outcome::Failure, Some("wrong_code")),
            _ => (Outcome::Error, Some("unexpected_answer")),
        };
        rec.event(
            &self.user,
            (Action::MfaVerify, Factor::Totp, outcome),
            reason,
            a.took,
        );
        Ok((a, accepted))
    }

    fn describe(a: &Answer) -> String {
        let auth = a.body["result"]["authentication"].as_str().unwrap_or("?");
        let msg = a.body["detail"]["message"].as_str().unwrap_or("");
        format!("{} {auth} {msg:?}", a.status)
    }

    fn success(&mut self, rec: &mut Recorder) -> Result<(), String> {
        let (step, code) = self.accepted.fresh(&self.key, &self.params)?;
        let (a, ok) = self.check(&code, rec)?;
        if !ok {
            return Err(format!(
                "validate/check with the current code: expected ACCEPT, got {}",
                Self::describe(&a)
            ));
        }
        self.accepted.record(step, code);
        Ok(())
    }
}

impl super::Target for Privacyidea {
    fn run(&mut self, check: Check, rec: &mut Recorder) -> Result<(), String> {
        match check {
            Check::TotpSuccess => self.success(rec),
            Check::WrongCode => {
                let bad = wrong_code(&self.key, &self.params, unix_now(), 8)?;
                let (a, ok) = self.check(&bad, rec)?;
                let msg = a.body["detail"]["message"].as_str().unwrap_or_default();
                if ok || !msg.contains("wrong otp value") {
                    return Err(format!(
                        "validate/check with a wrong code: expected REJECT \"wrong otp value\", got {}",
                        Self::describe(&a)
                    ));
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
                let (a, ok) = self.check(&code, rec)?;
                if ok {
                    return Err(format!(
                        "validate/check with the used code: expected REJECT, got {}",
                        Self::describe(&a)
                    ));
                }
                Ok(())
            }
            other => Err(format!(
                "{} is not supported against privacyIDEA",
                other.as_str()
            )),
        }
    }
}
