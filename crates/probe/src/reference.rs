//! Probing the reference verifier: every iteration provisions throw-away users through the
//! admin API (a TOTP + recovery-code user, a push user, a user to lock out), runs the checks
//! against the public API exactly as a client would, and deletes the users again.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use super::client::{Answer, Body, Http};
use super::config::{Check, ProbeConfig};
use super::otp_util::{totp_at, unix_now, wrong_code};
use super::{ProbeError, Recorder, expect};
use mfascope_core::event::{Action, Factor, Outcome};
use mfascope_verifier::otp::{self, Params};
use mfascope_verifier::token::token;

/// A throw-away user and what the probe knows of its factors.
#[derive(Default)]
struct ProbeUser {
    name: String,
    password: Zeroizing<String>,
    totp: Option<(String, Zeroizing<Vec<u8>>)>,
    recovery: Option<(String, Vec<Zeroizing<String>>)>,
    push: Option<(String, Zeroizing<String>)>,
}

/// The reference verifier as a probe target.
pub struct Reference {
    http: Http,
    admin: Zeroizing<String>,
    lockout_after: u32,
    params: Params,
    users: Vec<ProbeUser>,
    /// The code `totp_success` got accepted (for `replay`).
    accepted: Option<Zeroizing<String>>,
}

const MAIN: usize = 0;
const PUSH: usize = 1;
const LOCK: usize = 2;

/// The canonical outcome and reason of a verify answer (`None` while a push is pending).
fn verify_outcome(a: &Answer) -> Option<(Outcome, Option<&'static str>)> {
    Some(match (a.status, a.str("error")) {
        (200, _) => (Outcome::Success, None),
        (202, _) => return None,
        (403, _) => (Outcome::Denied, Some("push_denied")),
        (_, Some("push_timeout")) => (Outcome::Timeout, Some("push_timeout")),
        (_, Some("replayed")) => (Outcome::Failure, Some("replay")),
        (_, Some("wrong_code")) => (Outcome::Failure, Some("wrong_code")),
        (_, Some("locked")) => (Outcome::Failure, Some("locked")),
        (_, Some("rate_limited")) => (Outcome::Failure, Some("rate_limited")),
        _ => (Outcome::Error, Some("unexpected_answer")),
    })
}

impl Reference {
    /// A target from the `[mfascope]` section.
    pub fn new(http: Http, c: &ProbeConfig) -> Result<Reference, ProbeError> {
        let section = c
            .mfascope
            .as_ref()
            .ok_or_else(|| ProbeError::Config("missing [mfascope]".into()))?;
        Ok(Reference {
            http,
            admin: section
                .admin_token
                .read(&c.base, "[mfascope] admin_token")
                .map_err(ProbeError::Config)?,
            lockout_after: section.lockout_after,
            params: section.totp,
            users: Vec::new(),
            accepted: None,
        })
    }

    fn admin(&self, method: Method, path: &str, body: &Value) -> Result<Answer, String> {
        let body = if body.is_null() {
            Body::Empty
        } else {
            Body::Json(body)
        };
        self.http.call(method, path, Some(&self.admin), body)
    }

    /// Create a user with the factors asked for.
    fn provision(
        &self,
        role: &str,
        totp: bool,
        recovery: bool,
        push: bool,
    ) -> Result<ProbeUser, String> {
        let mut u = ProbeUser {
            name: format!("probe-{role}-{}", token(6)),
            password: Zeroizing::new(token(18)),
            ..ProbeUser::default()
        };
        let a = self.admin(
            Method::POST,
            "/v1/admin/users",
            &json!({"user": u.name, "password": u.password.as_str()}),
        )?;
        expect("create user", &a, 201, None)?;
        let factors = format!("/v1/admin/users/{}/factors", u.name);
        if totp {
            let p = self.params;
            let body = json!({"kind": "totp", "algorithm": p.algorithm, "digits": p.digits, "period": p.period});
            let a = self.admin(Method::POST, &factors, &body)?;
            expect("enroll totp", &a, 201, None)?;
            let uri = a.str("uri").ok_or("enroll totp: no uri")?;
            let id = a.str("factor_id").ok_or("enroll totp: no factor_id")?;
            let key = otp::secret_from_uri(uri).map_err(|e| format!("enroll totp: {e}"))?;
            u.totp = Some((id.into(), Zeroizing::new(key)));
        }
        if recovery {
            let a = self.admin(Method::POST, &factors, &json!({"kind": "recovery"}))?;
            expect("enroll recovery codes", &a, 201, None)?;
            let id = a.str("factor_id").ok_or("enroll recovery: no factor_id")?;
            let codes = a.body["codes"]
                .as_array()
                .map(|c| {
                    c.iter()
                        .filter_map(Value::as_str)
                        .map(|s| Zeroizing::new(s.to_string()))
                        .collect()
                })
                .unwrap_or_default();
            u.recovery = Some((id.into(), codes));
        }
        if push {
            let a = self.admin(Method::POST, &factors, &json!({"kind": "push"}))?;
            expect("enroll push", &a, 201, None)?;
            let id = a.str("factor_id").ok_or("enroll push: no factor_id")?;
            let device = a
                .str("device_token")
                .ok_or("enroll push: no device_token")?;
            u.push = Some((id.into(), Zeroizing::new(device.into())));
        }
        Ok(u)
    }

    fn user(&self, i: usize) -> Result<&ProbeUser, String> {
        self.users
            .get(i)
            .filter(|u| !u.name.is_empty())
            .ok_or_else(|| "the probe user was not provisioned".to_string())
    }

    /// The password step as `step`: the answer, recorded with its event.
    fn password_step(
        &self,
        u: &ProbeUser,
        step: &str,
        rec: &mut Recorder,
    ) -> Result<Answer, String> {
        let a = self.http.call(
            Method::POST,
            "/v1/login",
            None,
            Body::Json(&json!({"user": u.name, "password": u.password.as_str()})),
        )?;
        rec.step(step, a.took);
        let (outcome, reason) = match (a.status, a.str("error")) {
            (200, _) => (Outcome::Success, None),
            (_, Some("locked")) => (Outcome::Failure, Some("locked")),
            _ => (Outcome::Failure, Some("invalid_credentials")),
        };
        rec.event(
            &u.name,
            (Action::PrimaryAuth, Factor::Password, outcome),
            reason,
            a.took,
        );
        Ok(a)
    }

    /// The password step: the challenge id.
    fn login(&self, u: &ProbeUser, rec: &mut Recorder) -> Result<String, String> {
        let a = self.password_step(u, "login", rec)?;
        expect("login", &a, 200, None)?;
        a.str("challenge")
            .map(str::to_string)
            .ok_or_else(|| "login: no challenge".to_string())
    }

    /// The second-factor step.
    fn verify(
        &self,
        u: &ProbeUser,
        challenge: &str,
        factor: (&str, Factor),
        proof: Value,
        rec: &mut Recorder,
    ) -> Result<Answer, String> {
        let mut body = proof;
        body["factor"] = json!(factor.0);
        let a = self.http.call(
            Method::POST,
            &format!("/v1/login/{challenge}/verify"),
            None,
            Body::Json(&body),
        )?;
        rec.step("verify", a.took);
        rec.verify_step(a.took);
        if let Some((outcome, reason)) = verify_outcome(&a) {
            rec.event(
                &u.name,
                (Action::MfaVerify, factor.1, outcome),
                reason,
                a.took,
            );
        }
        Ok(a)
    }

    /// Log in and answer the challenge with TOTP `code`.
    fn totp_attempt(
        &self,
        u: &ProbeUser,
        id: &str,
        code: &str,
        rec: &mut Recorder,
    ) -> Result<Answer, String> {
        let challenge = self.login(u, rec)?;
        let proof = json!({ "code": code });
        self.verify(u, &challenge, (id, Factor::Totp), proof, rec)
    }

    fn totp_code(&self, u: &ProbeUser) -> Result<(String, Zeroizing<String>), String> {
        let (id, key) = u.totp.as_ref().ok_or("the probe user has no TOTP factor")?;
        let code = totp_at(key, &self.params, unix_now())?;
        Ok((id.clone(), Zeroizing::new(code)))
    }

    fn totp_success(&mut self, rec: &mut Recorder) -> Result<(), String> {
        let u = self.user(MAIN)?;
        let (id, code) = self.totp_code(u)?;
        let a = self.totp_attempt(u, &id, &code, rec)?;
        expect("verify totp", &a, 200, None)?;
        let session = Zeroizing::new(
            a.str("token")
                .ok_or("verify: no session token")?
                .to_string(),
        );
        let i = self
            .http
            .call(Method::GET, "/v1/session", Some(&session), Body::Empty)?;
        rec.step("introspect", i.took);
        expect("introspect", &i, 200, None)?;
        if i.str("user") != Some(u.name.as_str()) {
            return Err("introspect: the session belongs to someone else".into());
        }
        let r = self
            .http
            .call(Method::DELETE, "/v1/session", Some(&session), Body::Empty)?;
        rec.step("revoke session", r.took);
        expect("revoke session", &r, 200, None)?;
        let gone = self
            .http
            .call(Method::GET, "/v1/session", Some(&session), Body::Empty)?;
        rec.step("introspect revoked", gone.took);
        expect("introspect after revoke", &gone, 401, None)?;
        self.accepted = Some(code);
        Ok(())
    }

    fn wrong_code(&mut self, rec: &mut Recorder) -> Result<(), String> {
        let u = self.user(MAIN)?;
        let (id, key) = u.totp.as_ref().ok_or("the probe user has no TOTP factor")?;
        let bad = wrong_code(key, &self.params, unix_now(), 3)?;
        let a = self.totp_attempt(u, id, &bad, rec)?;
        expect("verify wrong code", &a, 401, Some("wrong_code"))
    }

    fn replay(&mut self, rec: &mut Recorder) -> Result<(), String> {
        if self.accepted.is_none() {
            self.totp_success(rec)?;
        }
        let code = self.accepted.clone().ok_or("no accepted code to replay")?;
        let u = self.user(MAIN)?;
        let id = u
            .totp
            .as_ref()
            .map(|(id, _)| id.clone())
            .unwrap_or_default();
        let a = self.totp_attempt(u, &id, &code, rec)?;
        expect("verify replayed code", &a, 401, Some("replayed"))
    }

    fn recovery(&mut self, rec: &mut Recorder) -> Result<(), String> {
        let u = self.user(MAIN)?;
        let (id, codes) = u
            .recovery
            .as_ref()
            .ok_or("the probe user has no recovery codes")?;
        let code = codes.first().ok_or("no recovery code was issued")?;
        let proof = || json!({"recovery_code": code.as_str()});
        let challenge = self.login(u, rec)?;
        let a = self.verify(u, &challenge, (id, Factor::RecoveryCode), proof(), rec)?;
        expect("first use of a recovery code", &a, 200, None)?;
        let challenge = self.login(u, rec)?;
        let a = self.verify(u, &challenge, (id, Factor::RecoveryCode), proof(), rec)?;
        expect(
            "second use of the recovery code",
            &a,
            401,
            Some("wrong_code"),
        )
    }

    fn lockout(&mut self, rec: &mut Recorder) -> Result<(), String> {
        let u = self.user(LOCK)?;
        let (id, key) = u
            .totp
            .as_ref()
            .ok_or("the lockout user has no TOTP factor")?;
        for attempt in 1..=self.lockout_after {
            let bad = wrong_code(key, &self.params, unix_now(), 3)?;
            let a = self.totp_attempt(u, id, &bad, rec)?;
            expect(
                &format!("wrong code #{attempt}"),
                &a,
                401,
                Some("wrong_code"),
            )?;
        }
        let a = self.password_step(u, "login while locked", rec)?;
        expect(
            &format!("login after {} wrong codes", self.lockout_after),
            &a,
            429,
            Some("locked"),
        )?;
        match a.retry_after {
            Some(s) if s > 0 => Ok(()),
            _ => Err("locked answer without a Retry-After".into()),
        }
    }

    /// Start a push; its id and expiry (epoch ms).
    fn start_push(
        &self,
        u: &ProbeUser,
        challenge: &str,
        rec: &mut Recorder,
    ) -> Result<(String, i64), String> {
        let (id, _) = u.push.as_ref().ok_or("the probe user has no push device")?;
        let a = self.http.call(
            Method::POST,
            &format!("/v1/login/{challenge}/push"),
            None,
            Body::Json(&json!({"factor": id})),
        )?;
        rec.step("start push", a.took);
        expect("start push", &a, 202, None)?;
        let push = a
            .str("push_id")
            .ok_or("start push: no push_id")?
            .to_string();
        let expires = a.body["expires_at"]
            .as_i64()
            .ok_or("start push: no expires_at")?;
        Ok((push, expires))
    }

    /// The device sees the push and answers it.
    fn device_answers(
        &self,
        u: &ProbeUser,
        push: &str,
        approve: bool,
        rec: &mut Recorder,
    ) -> Result<(), String> {
        let (_, device) = u.push.as_ref().ok_or("the probe user has no push device")?;
        let a = self
            .http
            .call(Method::GET, "/v1/device/pushes", Some(device), Body::Empty)?;
        rec.step("device polls", a.took);
        expect("device polls", &a, 200, None)?;
        let listed = a.body["pushes"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p.as_str() == Some(push)));
        if !listed {
            return Err("device polls: the push is not pending for the device".into());
        }
        let a = self.http.call(
            Method::POST,
            &format!("/v1/device/pushes/{push}"),
            Some(device),
            Body::Json(&json!({"approve": approve})),
        )?;
        rec.step(
            if approve {
                "device approves"
            } else {
                "device denies"
            },
            a.took,
        );
        expect("device answers", &a, 200, None)
    }

    fn push(&mut self, check: Check, rec: &mut Recorder) -> Result<(), String> {
        let u = self.user(PUSH)?;
        let id = u
            .push
            .as_ref()
            .map(|(id, _)| id.clone())
            .unwrap_or_default();
        let challenge = self.login(u, rec)?;
        let (push, expires_at) = self.start_push(u, &challenge, rec)?;
        let proof = || json!({"push": true});
        match check {
            Check::PushApprove | Check::PushDeny => {
                let approve = check == Check::PushApprove;
                self.device_answers(u, &push, approve, rec)?;
                let a = self.verify(u, &challenge, (&id, Factor::Push), proof(), rec)?;
                if approve {
                    expect("verify approved push", &a, 200, None)
                } else {
                    expect("verify denied push", &a, 403, Some("push_denied"))
                }
            }
            _ => {
                // Wait out the timeout (by the server's clock, plus a margin), then verify.
                let wait_ms = expires_at - chrono::Utc::now().timestamp_millis() + 250;
                std::thread::sleep(Duration::from_millis(wait_ms.clamp(0, 600_000) as u64));
                let mut a = self.verify(u, &challenge, (&id, Factor::Push), proof(), rec)?;
                for _ in 0..20 {
                    if a.status != 202 {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(250));
                    a = self.verify(u, &challenge, (&id, Factor::Push), proof(), rec)?;
                }
                expect("verify unanswered push", &a, 401, Some("push_timeout"))
            }
        }
    }
}

impl super::Target for Reference {
    fn begin(&mut self, checks: &[Check], _rec: &mut Recorder) -> Result<(), String> {
        self.accepted = None;
        let any = |set: &[Check]| checks.iter().any(|c| set.contains(c));
        let main = any(&[
            Check::TotpSuccess,
            Check::WrongCode,
            Check::Replay,
            Check::RecoveryCodeSingleUse,
        ]);
        let push = any(&[Check::PushApprove, Check::PushDeny, Check::PushTimeout]);
        let lock = any(&[Check::Lockout]);
        let mut users = vec![
            ProbeUser::default(),
            ProbeUser::default(),
            ProbeUser::default(),
        ];
        let result = (|| {
            if main {
                users[MAIN] = self.provision("main", true, true, false)?;
            }
            if push {
                users[PUSH] = self.provision("push", false, false, true)?;
            }
            if lock {
                users[LOCK] = self.provision("lockout", true, false, false)?;
            }
            Ok(())
        })();
        self.users = users;
        result
    }

    fn run(&mut self, check: Check, rec: &mut Recorder) -> Result<(), String> {
        match check {
            Check::TotpSuccess => self.totp_success(rec),
            Check::WrongCode => self.wrong_code(rec),
            Check::Replay => self.replay(rec),
            Check::RecoveryCodeSingleUse => self.recovery(rec),
            Check::Lockout => self.lockout(rec),
            Check::PushApprove | Check::PushDeny | Check::PushTimeout => self.push(check, rec),
        }
    }

    fn end(&mut self, _rec: &mut Recorder) {
        for u in std::mem::take(&mut self.users) {
            if u.name.is_empty() {
                continue;
            }
            let path = format!("/v1/admin/users/{}", u.name);
            if let Err(e) = self.admin(Method::DELETE, &path, &Value::Null) {
                tracing::warn!(user = %u.name, error = %e, "could not delete a probe user");
            }
        }
    }
}
