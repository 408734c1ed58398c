//! The verifier's logic, free of HTTP: enrollment (TOTP, HOTP, recovery codes, push devices),
//! the login flow (password → challenge listing the user's factors → second factor → session),
//! push approvals, session introspection and revocation, replay protection and lockout. Every
//! step of the flow is reported as a canonical event (source `verifier`, with its latency), so
//! the pipeline computes SLIs on the verifier like on any IdP. Secrets never leave this module
//! except once, in the enrollment answer (provisioning URI, recovery codes).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use subtle::ConstantTimeEq;

use super::expiring::Sharded;
use super::otp::{self, Kind, Params};
use super::password::{self, Cost};
use super::push::{PushState, Pushes};
use super::seal::{SealError, Sealer};
use super::sessions::Sessions;
pub use super::sessions::{NewSession, SessionInfo};
use super::store::{Factor, Op, Store, StoreError};
use super::token::{event_id, random, sha256_hex, token};
use mfascope_core::event::{Action, Event, Factor as EventFactor, Outcome, Source};
use mfascope_core::sync::lock;

/// Verifier settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// TOTP steps accepted either side of now.
    pub skew: u64,
    /// HOTP counters accepted after the next expected one.
    pub hotp_look_ahead: u64,
    /// HOTP counters searched when resynchronising from two consecutive codes.
    pub hotp_resync_window: u64,
    /// Failed second factors in a row that lock the user.
    pub lockout_after: u32,
    /// How long a lockout lasts.
    pub lockout: Duration,
    /// How long a challenge (after the password) stays open.
    pub challenge_ttl: Duration,
    /// Session lifetime.
    pub session_ttl: Duration,
    /// How long a push waits for the device.
    pub push_timeout: Duration,
    /// argon2id cost of new password hashes.
    pub password_cost: Cost,
    /// Issuer in provisioning URIs.
    pub issuer: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            skew: 1,
            hotp_look_ahead: 10,
            hotp_resync_window: 1000,
            lockout_after: 5,
            lockout: Duration::from_secs(15 * 60),
            challenge_ttl: Duration::from_secs(5 * 60),
            session_ttl: Duration::from_secs(3600),
            push_timeout: Duration::from_secs(60),
            password_cost: Cost::default(),
            issuer: "mfascope".into(),
        }
    }
}

/// Why a request is refused. The messages are safe to show a client: they never say whether
/// a user exists.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// Unknown user or wrong password (deliberately one answer).
    #[error("invalid credentials")]
    InvalidCredentials,
    /// Enrolling a user that exists.
    #[error("user exists")]
    UserExists,
    /// Administering a user that does not exist.
    #[error("no such user")]
    NoSuchUser,
    /// The challenge is unknown or expired: log in again.
    #[error("no such challenge (expired or already used): start with the password again")]
    NoSuchChallenge,
    /// The factor is not one of the user's.
    #[error("no such factor")]
    NoSuchFactor,
    /// The second factor does not match.
    #[error("the code does not match")]
    WrongCode,
    /// The code was already used.
    #[error("the code was already used")]
    Replayed,
    /// Too many failures.
    #[error("locked; retry after {retry_after_s} s")]
    Locked {
        /// Seconds until the lockout ends.
        retry_after_s: u64,
    },
    /// The push has no answer yet.
    #[error("the push is waiting for the device")]
    PushPending,
    /// The device denied the push.
    #[error("the push was denied")]
    PushDenied,
    /// The device did not answer in time.
    #[error("the push timed out")]
    PushTimedOut,
    /// Bad OTP parameters.
    #[error(transparent)]
    Otp(#[from] otp::OtpError),
    /// The state cannot be written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A sealed secret does not open.
    #[error(transparent)]
    Seal(#[from] SealError),
}

/// What a second factor is proved with.
#[derive(Clone, Debug)]
pub enum Proof {
    /// A TOTP or HOTP code.
    Code(String),
    /// A recovery code.
    RecoveryCode(String),
    /// The outcome of the push started for this challenge.
    Push,
}

/// The answer to a correct password: the challenge and the factors to answer it with.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Challenge {
    /// Challenge id (opaque).
    pub id: String,
    /// `(factor id, kind)` of each factor.
    pub factors: Vec<(String, EventFactor)>,
}

/// A new factor: its id, and the one-time view of its secret.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Enrollment {
    /// Factor id.
    pub factor_id: String,
    /// `otpauth://` URI (TOTP/HOTP).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// Recovery codes (shown once).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub codes: Vec<String>,
    /// The push device's token (shown once): the simulated device polls and answers with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_token: Option<String>,
}

/// A push on its way to the device.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PushStarted {
    /// Push id.
    pub push_id: String,
    /// When the push times out (epoch ms).
    pub expires_at: i64,
}

struct OpenChallenge {
    user: String,
    created: i64,
    push: Option<String>,
}

/// Who asks (for events).
#[derive(Clone, Debug, Default)]
pub struct Client {
    /// Client IP.
    pub ip: Option<String>,
    /// User agent.
    pub user_agent: Option<String>,
}

/// Receives the verifier's events.
pub type Emit = Box<dyn Fn(Event<'static>) + Send + Sync>;

/// The verifier.
pub struct Engine {
    config: Config,
    sealer: Sealer,
    store: Mutex<Store>,
    challenges: Sharded<OpenChallenge>,
    pushes: Pushes,
    sessions: Sessions,
    emit: Emit,
}

/// A recovery code as typed: case, spaces and dashes do not matter.
fn normalize_recovery(code: &str) -> String {
    code.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

impl Engine {
    /// A verifier over `store`, sealing secrets with `sealer`, reporting events to `emit`.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    ///
    /// use mfascope_core::event::{Action, Outcome};
    /// use mfascope_verifier::engine::{Client, Config, Emit, Engine, Proof};
    /// use mfascope_verifier::otp::{self, Params};
    /// use mfascope_verifier::password::Cost;
    /// use mfascope_verifier::seal::Sealer;
    /// use mfascope_verifier::store::Store;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let store = Store::open(&dir.path().join("state"))?;
    /// let sealer = Sealer::from_key_file(&dir.path().join("secret.key"))?;
    /// let events = Arc::new(Mutex::new(Vec::new()));
    /// let sink = events.clone();
    /// let emit: Emit = Box::new(move |e| sink.lock().unwrap().push(e));
    /// // A cheap password hash for the example; the default is argon2id at 19 MiB.
    /// let cost = Cost { memory_kib: 64, iterations: 1, lanes: 1 };
    /// let engine = Engine::new(Config { password_cost: cost, ..Config::default() }, store, sealer, emit);
    ///
    /// let now = 1_700_000_000_000;
    /// engine.create_user("alice", "correct horse battery staple")?;
    /// let totp = engine.enroll_otp("alice", Params::default(), None, now)?;
    /// let secret = otp::secret_from_uri(totp.uri.as_deref().unwrap())?;
    /// let challenge = engine.login("alice", "correct horse battery staple", &Client::default(), now)?;
    /// let code = otp::totp(&secret, now / 1000, &Params::default())?;
    /// let proof = Proof::Code(code);
    /// let session = engine.verify(&challenge.id, &totp.factor_id, &proof, &Client::default(), now + 1500)?;
    /// assert_eq!(engine.introspect(&session.token, now + 2000).unwrap().user, "alice");
    /// // Every step is a canonical event; the code itself is in none of them.
    /// let events = events.lock().unwrap();
    /// let verify = events.iter().find(|e| e.action == Action::MfaVerify).unwrap();
    /// assert_eq!((verify.outcome, verify.latency_ms), (Outcome::Success, Some(1500)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(config: Config, store: Store, sealer: Sealer, emit: Emit) -> Engine {
        Engine {
            pushes: Pushes::new(config.push_timeout),
            sessions: Sessions::new(config.session_ttl),
            config,
            sealer,
            store: Mutex::new(store),
            challenges: Sharded::default(),
            emit,
        }
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    #[allow(clippy::too_many_arguments)]
    fn event(
        &self,
        now: i64,
        user: &str,
        (action, factor, outcome): (Action, EventFactor, Outcome),
        reason: Option<&str>,
        latency: Option<Duration>,
        client: &Client,
        session_id: Option<&str>,
    ) {
        let mut e = Event::new(
            Source::Verifier,
            event_id(),
            now,
            user.to_string(),
            format!("verifier.{}", action.as_str()),
            (action, factor, outcome),
        );
        e.reason = reason.map(|r| r.to_string().into());
        e.latency_ms = latency.map(|l| l.as_millis().min(u32::MAX as u128) as u32);
        e.src_ip = client.ip.clone().map(Into::into);
        e.user_agent = client.user_agent.clone().map(Into::into);
        e.session_id = session_id.map(|s| s.to_string().into());
        tracing::debug!(
            user = %e.user,
            action = e.action.as_str(),
            factor = e.factor.as_str(),
            outcome = e.outcome.as_str(),
            reason = e.reason.as_deref(),
            "verifier step"
        );
        (self.emit)(e);
    }

    /// Create `user` with `password`.
    pub fn create_user(&self, user: &str, password: &str) -> Result<(), VerifyError> {
        let mut store = lock(&self.store);
        if store.state.users.contains_key(user) {
            return Err(VerifyError::UserExists);
        }
        let password = password::hash(password, self.config.password_cost);
        store.commit(&[Op::SetPassword {
            user: user.into(),
            password,
        }])?;
        Ok(())
    }

    /// Delete `user` with its factors and sessions.
    pub fn delete_user(&self, user: &str) -> Result<(), VerifyError> {
        let mut store = lock(&self.store);
        if !store.state.users.contains_key(user) {
            return Err(VerifyError::NoSuchUser);
        }
        store.commit(&[Op::RemoveUser { user: user.into() }])?;
        drop(store);
        self.challenges.retain(|c| c.user != user);
        self.sessions.revoke_user(user);
        Ok(())
    }

    /// A new factor id of `kind` (also the slot its secret is sealed for).
    fn factor_id(kind: EventFactor) -> String {
        format!("{}-{}", kind.as_str(), token(6))
    }

    fn add_factor(
        &self,
        user: &str,
        id: String,
        factor: Factor,
        now: i64,
    ) -> Result<String, VerifyError> {
        let kind = factor.kind();
        let mut store = lock(&self.store);
        if !store.state.users.contains_key(user) {
            return Err(VerifyError::NoSuchUser);
        }
        store.commit(&[Op::AddFactor {
            user: user.into(),
            id: id.clone(),
            factor,
        }])?;
        drop(store);
        let what = (Action::EnrollComplete, kind, Outcome::Success);
        self.event(now, user, what, None, None, &Client::default(), None);
        Ok(id)
    }

    /// Enroll a TOTP (`counter` None) or HOTP credential with a fresh 160-bit secret; the
    /// provisioning URI is the only time the secret is shown.
    pub fn enroll_otp(
        &self,
        user: &str,
        params: Params,
        counter: Option<u64>,
        now: i64,
    ) -> Result<Enrollment, VerifyError> {
        let secret = zeroize::Zeroizing::new(random(20));
        let kind = counter.map_or(Kind::Totp, Kind::Hotp);
        let uri = otp::uri(kind, &secret, &params, &self.config.issuer, user)?;
        let id = Self::factor_id(match counter {
            None => EventFactor::Totp,
            Some(_) => EventFactor::Hotp,
        });
        let sealed = self.sealer.seal(&slot(user, &id), &secret);
        let factor = match counter {
            None => Factor::Totp {
                sealed,
                params,
                last_step: None,
            },
            Some(next) => Factor::Hotp {
                sealed,
                params,
                next,
            },
        };
        let id = self.add_factor(user, id, factor, now)?;
        Ok(Enrollment {
            factor_id: id,
            uri: Some(uri),
            codes: Vec::new(),
            device_token: None,
        })
    }

    /// Ten fresh single-use recovery codes (80 bits each), replacing earlier ones; shown once,
    /// stored as SHA-256.
    pub fn enroll_recovery_codes(&self, user: &str, now: i64) -> Result<Enrollment, VerifyError> {
        let codes: Vec<String> = (0..10)
            .map(|_| {
                let raw = data_encoding::BASE32_NOPAD.encode(&random(10));
                raw.as_bytes()
                    .chunks(4)
                    .map(|c| String::from_utf8_lossy(c).into_owned())
                    .collect::<Vec<_>>()
                    .join("-")
            })
            .collect();
        let hashes = codes
            .iter()
            .map(|c| Some(sha256_hex(&normalize_recovery(c))))
            .collect();
        let old: Vec<String> = lock(&self.store)
            .state
            .users
            .get(user)
            .map(|u| {
                u.factors
                    .iter()
                    .filter(|(_, f)| matches!(f, Factor::Recovery { .. }))
                    .map(|(id, _)| id.clone())
                    .collect()
            })
            .unwrap_or_default();
        let id = Self::factor_id(EventFactor::RecoveryCode);
        let id = self.add_factor(user, id, Factor::Recovery { hashes }, now)?;
        let removals: Vec<Op> = old
            .into_iter()
            .map(|id| Op::RemoveFactor {
                user: user.into(),
                id,
            })
            .collect();
        lock(&self.store).commit(&removals)?;
        Ok(Enrollment {
            factor_id: id,
            uri: None,
            codes,
            device_token: None,
        })
    }

    /// Register a (simulated) push device; its token is shown once, only its hash is kept.
    pub fn enroll_push(&self, user: &str, now: i64) -> Result<Enrollment, VerifyError> {
        let device_token = token(24);
        let factor = Factor::Push {
            device: sha256_hex(&device_token),
        };
        let id = self.add_factor(user, Self::factor_id(EventFactor::Push), factor, now)?;
        Ok(Enrollment {
            factor_id: id,
            uri: None,
            codes: Vec::new(),
            device_token: Some(device_token),
        })
    }

    /// Resynchronise an HOTP factor (RFC 4226 §7.4) whose token ran beyond the look-ahead:
    /// two consecutive codes it shows, found within the resync window; the next expected
    /// counter afterwards.
    pub fn resync_hotp(
        &self,
        user: &str,
        id: &str,
        first: &str,
        second: &str,
    ) -> Result<u64, VerifyError> {
        let mut store = lock(&self.store);
        let factor = store.state.users.get(user).and_then(|u| u.factors.get(id));
        let Some(Factor::Hotp {
            sealed,
            params,
            next,
        }) = factor
        else {
            return Err(VerifyError::NoSuchFactor);
        };
        let key = self.sealer.open(&slot(user, id), sealed)?;
        let window = self.config.hotp_resync_window;
        let found = otp::resync_hotp(&key, params, *next, window, first, second)
            .ok_or(VerifyError::WrongCode)?;
        let next = found + 1;
        store.commit(&[Op::HotpUsed {
            user: user.into(),
            id: id.into(),
            next,
        }])?;
        Ok(next)
    }

    /// Revoke a factor.
    pub fn revoke_factor(&self, user: &str, id: &str, now: i64) -> Result<(), VerifyError> {
        let mut store = lock(&self.store);
        let kind = store
            .state
            .users
            .get(user)
            .and_then(|u| u.factors.get(id))
            .map(Factor::kind)
            .ok_or(VerifyError::NoSuchFactor)?;
        store.commit(&[Op::RemoveFactor {
            user: user.into(),
            id: id.into(),
        }])?;
        drop(store);
        let what = (Action::FactorRemove, kind, Outcome::Success);
        self.event(now, user, what, None, None, &Client::default(), None);
        Ok(())
    }

    /// The password step. Unknown users and wrong passwords get the same answer after the
    /// same work; a locked user learns it only with the right password.
    pub fn login(
        &self,
        user: &str,
        password: &str,
        client: &Client,
        now: i64,
    ) -> Result<Challenge, VerifyError> {
        let started = Instant::now();
        let record = lock(&self.store).state.users.get(user).cloned();
        let ok = match &record {
            Some(u) => password::verify(password, &u.password),
            None => password::verify_unknown(password, self.config.password_cost),
        };
        let outcome = if ok {
            Outcome::Success
        } else {
            Outcome::Failure
        };
        let what = (Action::PrimaryAuth, EventFactor::Password, outcome);
        let reason = (!ok).then_some("invalid_credentials");
        self.event(
            now,
            user,
            what,
            reason,
            Some(started.elapsed()),
            client,
            None,
        );
        let Some(u) = record.filter(|_| ok) else {
            return Err(VerifyError::InvalidCredentials);
        };
        unlocked(&u, now)?;
        let id = token(18);
        let open = OpenChallenge {
            user: user.into(),
            created: now,
            push: None,
        };
        let expires_at = now + self.config.challenge_ttl.as_millis() as i64;
        self.challenges
            .with(&id, |m| m.insert(id.clone(), expires_at, open, now));
        Ok(Challenge {
            id,
            factors: u
                .factors
                .iter()
                .map(|(id, f)| (id.clone(), f.kind()))
                .collect(),
        })
    }

    /// The user a live challenge belongs to (for per-user rate limits).
    pub fn challenge_user(&self, id: &str, now: i64) -> Option<String> {
        self.open_challenge(id, now).ok().map(|(user, _)| user)
    }

    fn open_challenge(&self, id: &str, now: i64) -> Result<(String, i64), VerifyError> {
        self.challenges
            .with(id, |m| m.get(id, now).map(|c| (c.user.clone(), c.created)))
            .ok_or(VerifyError::NoSuchChallenge)
    }

    /// The factor `id` of `user` and the user's failures in a row, unless the user is locked.
    fn verifiable<'s>(
        store: &'s Store,
        user: &str,
        id: &str,
        now: i64,
    ) -> Result<(&'s Factor, u32), VerifyError> {
        let record = store
            .state
            .users
            .get(user)
            .ok_or(VerifyError::NoSuchChallenge)?;
        unlocked(record, now)?;
        let f = record.factors.get(id).ok_or(VerifyError::NoSuchFactor)?;
        Ok((f, record.failures))
    }

    /// Send a push to the device of `factor` for this challenge.
    pub fn start_push(
        &self,
        challenge: &str,
        factor: &str,
        client: &Client,
        now: i64,
    ) -> Result<PushStarted, VerifyError> {
        let (user, _) = self.open_challenge(challenge, now)?;
        let device_hash = match lock(&self.store)
            .state
            .users
            .get(&user)
            .and_then(|u| u.factors.get(factor))
        {
            Some(Factor::Push { device }) => device.clone(),
            _ => return Err(VerifyError::NoSuchFactor),
        };
        let (push_id, expires_at) = self.pushes.start(&device_hash, now);
        self.challenges.with(challenge, |m| {
            if let Some(c) = m.get_mut(challenge, now) {
                c.push = Some(push_id.clone());
            }
        });
        let what = (Action::MfaChallenge, EventFactor::Push, Outcome::Challenge);
        self.event(now, &user, what, None, None, client, None);
        Ok(PushStarted {
            push_id,
            expires_at,
        })
    }

    /// Pushes waiting for the device with `device_token`.
    pub fn pending_pushes(&self, device_token: &str, now: i64) -> Vec<String> {
        self.pushes.pending(device_token, now)
    }

    /// The device's answer to a push (`false` when unknown, not this device's, answered or
    /// expired).
    pub fn answer_push(&self, push: &str, device_token: &str, approve: bool, now: i64) -> bool {
        self.pushes.answer(push, device_token, approve, now)
    }

    /// The second-factor step: a session when `proof` holds for `factor`.
    pub fn verify(
        &self,
        challenge: &str,
        factor: &str,
        proof: &Proof,
        client: &Client,
        now: i64,
    ) -> Result<NewSession, VerifyError> {
        let (user, created) = self.open_challenge(challenge, now)?;
        let latency = Duration::from_millis((now - created).max(0) as u64);
        // The proof is checked without the store lock (unsealing and HMACs are the costly
        // part) against a copy of the factor, and committed only if the factor is still that
        // copy; otherwise a concurrent verification or a revocation changed it: check again.
        let (mut store, kind, ops, outcome) = loop {
            let f = {
                let store = lock(&self.store);
                Self::verifiable(&store, &user, factor, now)?.0.clone()
            };
            let checked = self.check(&user, factor, &f, proof, challenge, now)?;
            let store = lock(&self.store);
            let (current, failures) = Self::verifiable(&store, &user, factor, now)?;
            if *current != f {
                continue;
            }
            let (ops, outcome) = match checked {
                Check::Pending => return Err(VerifyError::PushPending),
                Check::Accepted(op) => {
                    let mut ops: Vec<Op> = op.into_iter().collect();
                    ops.push(Op::Succeeded { user: user.clone() });
                    (ops, Ok(()))
                }
                Check::Rejected(e) => {
                    let failures = failures + 1;
                    let locked_until = (failures >= self.config.lockout_after)
                        .then(|| now + self.config.lockout.as_millis() as i64);
                    let op = Op::Failed {
                        user: user.clone(),
                        locked_until,
                    };
                    (vec![op], Err(e))
                }
            };
            break (store, f.kind(), ops, outcome);
        };
        let ticket = store.commit_deferred(&ops);
        let journal = store.journal();
        drop(store);
        // Written before answering; concurrent verifications share the write.
        super::store::sync(&journal, ticket)?;
        if let Err(e) = outcome {
            let (o, reason) = match &e {
                VerifyError::PushDenied => (Outcome::Denied, "push_denied"),
                VerifyError::PushTimedOut => (Outcome::Timeout, "push_timeout"),
                VerifyError::Replayed => (Outcome::Failure, "replay"),
                _ => (Outcome::Failure, "wrong_code"),
            };
            let what = (Action::MfaVerify, kind, o);
            self.event(now, &user, what, Some(reason), Some(latency), client, None);
            if matches!(
                ops.first(),
                Some(Op::Failed {
                    locked_until: Some(_),
                    ..
                })
            ) {
                let what = (Action::Lockout, kind, Outcome::Success);
                let reason = Some("too_many_failures");
                self.event(now, &user, what, reason, None, client, None);
            }
            return Err(e);
        }
        self.challenges
            .with(challenge, |m| m.remove(challenge, now));
        let session = self.sessions.start(&user, now);
        let sid = Some(session.session_id.as_str());
        let what = (Action::MfaVerify, kind, Outcome::Success);
        self.event(now, &user, what, None, Some(latency), client, sid);
        let what = (Action::SessionStart, kind, Outcome::Success);
        self.event(now, &user, what, None, None, client, sid);
        Ok(session)
    }

    /// Check `proof` against `f` (a copy: the store is not locked).
    fn check(
        &self,
        user: &str,
        id: &str,
        f: &Factor,
        proof: &Proof,
        challenge: &str,
        now: i64,
    ) -> Result<Check, VerifyError> {
        let slot = slot(user, id);
        Ok(match (f, proof) {
            (
                Factor::Totp {
                    sealed,
                    params,
                    last_step,
                },
                Proof::Code(code),
            ) => {
                let key = self.sealer.open(&slot, sealed)?;
                let unix = now.div_euclid(1000);
                match otp::verify_totp(&key, params, unix, self.config.skew, *last_step, code)? {
                    Some(step) => Check::Accepted(Some(Op::TotpUsed {
                        user: user.into(),
                        id: id.into(),
                        step,
                    })),
                    None if otp::verify_totp(&key, params, unix, self.config.skew, None, code)?
                        .is_some() =>
                    {
                        Check::Rejected(VerifyError::Replayed)
                    }
                    None => Check::Rejected(VerifyError::WrongCode),
                }
            }
            (
                Factor::Hotp {
                    sealed,
                    params,
                    next,
                },
                Proof::Code(code),
            ) => {
                let key = self.sealer.open(&slot, sealed)?;
                match otp::verify_hotp(&key, params, *next, self.config.hotp_look_ahead, code) {
                    Some(c) => Check::Accepted(Some(Op::HotpUsed {
                        user: user.into(),
                        id: id.into(),
                        next: c + 1,
                    })),
                    None => {
                        let back = next.saturating_sub(self.config.hotp_look_ahead);
                        let used = otp::find(&key, back, next.saturating_sub(1), params, code);
                        Check::Rejected(if *next > 0 && used.is_some() {
                            VerifyError::Replayed
                        } else {
                            VerifyError::WrongCode
                        })
                    }
                }
            }
            (Factor::Recovery { hashes }, Proof::RecoveryCode(code)) => {
                let h = sha256_hex(&normalize_recovery(code));
                // Compare with every code (constant time each; no early exit).
                let mut found = None;
                for (i, stored) in hashes.iter().enumerate() {
                    if let Some(s) = stored
                        && bool::from(s.as_bytes().ct_eq(h.as_bytes()))
                        && found.is_none()
                    {
                        found = Some(i);
                    }
                }
                match found {
                    Some(index) => Check::Accepted(Some(Op::RecoveryUsed {
                        user: user.into(),
                        id: id.into(),
                        index,
                    })),
                    None => Check::Rejected(VerifyError::WrongCode),
                }
            }
            (Factor::Push { .. }, Proof::Push) => {
                let push = self
                    .challenges
                    .with(challenge, |m| {
                        m.get(challenge, now).and_then(|c| c.push.clone())
                    })
                    .ok_or(VerifyError::NoSuchFactor)?;
                match self.pushes.state(&push, now) {
                    Some(PushState::Approved) => Check::Accepted(None),
                    Some(PushState::Denied) => Check::Rejected(VerifyError::PushDenied),
                    Some(PushState::TimedOut) | None => Check::Rejected(VerifyError::PushTimedOut),
                    Some(PushState::Pending) => Check::Pending,
                }
            }
            _ => Check::Rejected(VerifyError::WrongCode),
        })
    }

    /// The live session of `token`, if any.
    pub fn introspect(&self, token: &str, now: i64) -> Option<SessionInfo> {
        self.sessions.introspect(token, now)
    }

    /// End the session of `token`; whether there was one.
    pub fn revoke_session(&self, token: &str, client: &Client, now: i64) -> bool {
        let Some(s) = self.sessions.revoke(token, now) else {
            return false;
        };
        let what = (Action::SessionRevoke, EventFactor::None, Outcome::Success);
        self.event(now, &s.user, what, None, None, client, Some(&s.session_id));
        true
    }
}

/// The slot a factor's secret is sealed for: its user and factor id.
fn slot(user: &str, id: &str) -> String {
    format!("{user}/{id}")
}

/// `Locked` with the seconds left while `user` is locked out.
fn unlocked(user: &super::store::User, now: i64) -> Result<(), VerifyError> {
    match user.locked_until.filter(|t| *t > now) {
        Some(until) => Err(VerifyError::Locked {
            retry_after_s: ((until - now) as u64).div_ceil(1000),
        }),
        None => Ok(()),
    }
}

enum Check {
    Accepted(Option<Op>),
    Rejected(VerifyError),
    Pending,
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_700_000_000_000;

    struct Fixture {
        engine: Engine,
        events: std::sync::Arc<Mutex<Vec<Event<'static>>>>,
        _dir: tempfile::TempDir,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state")).unwrap();
        let sealer = Sealer::from_key_file(&dir.path().join("key")).unwrap();
        let events = std::sync::Arc::new(Mutex::new(Vec::new()));
        let sink = events.clone();
        let config = Config {
            password_cost: Cost {
                memory_kib: 64,
                iterations: 1,
                lanes: 1,
            },
            lockout_after: 3,
            ..Config::default()
        };
        let emit: Emit = Box::new(move |e| sink.lock().unwrap().push(e));
        Fixture {
            engine: Engine::new(config, store, sealer, emit),
            events,
            _dir: dir,
        }
    }

    fn secret_of(uri: &str) -> Vec<u8> {
        otp::secret_from_uri(uri).unwrap()
    }

    #[test]
    fn totp_login_succeeds_once_and_a_replay_is_refused() {
        const SECRET_PW: &str = "correct horse battery staple";
        let f = fixture();
        let e = &f.engine;
        e.create_user("alice", SECRET_PW).unwrap();
        let en = e.enroll_otp("alice", Params::default(), None, T).unwrap();
        let key = secret_of(en.uri.as_deref().unwrap());
        let code = otp::totp(&key, T / 1000, &Params::default()).unwrap();
        let c = e.login("alice", SECRET_PW, &Client::default(), T).unwrap();
        assert_eq!(c.factors, vec![(en.factor_id.clone(), EventFactor::Totp)]);
        let s = e
            .verify(
                &c.id,
                &en.factor_id,
                &Proof::Code(code.clone()),
                &Client::default(),
                T + 1500,
            )
            .unwrap();
        assert_eq!(e.introspect(&s.token, T + 2000).unwrap().user, "alice");
        let c2 = e
            .login("alice", SECRET_PW, &Client::default(), T + 3000)
            .unwrap();
        let again = e.verify(
            &c2.id,
            &en.factor_id,
            &Proof::Code(code),
            &Client::default(),
            T + 3000,
        );
        assert!(matches!(again, Err(VerifyError::Replayed)), "{again:?}");
        assert!(e.revoke_session(&s.token, &Client::default(), T + 4000));
        assert!(e.introspect(&s.token, T + 4000).is_none());
        let events = f.events.lock().unwrap();
        let verify: Vec<_> = events
            .iter()
            .filter(|e| e.action == Action::MfaVerify)
            .map(|e| {
                (
                    e.outcome,
                    e.reason.as_deref().map(str::to_string),
                    e.latency_ms,
                )
            })
            .collect();
        assert_eq!(
            verify,
            vec![
                (Outcome::Success, None, Some(1500)),
                (Outcome::Failure, Some("replay".into()), Some(0)),
            ]
        );
        for e in events.iter() {
            let json = serde_json::to_string(e).unwrap();
            assert!(!json.contains(&s.token), "a session token in an event");
            assert!(!json.contains(SECRET_PW), "a password in an event");
        }
    }

    #[test]
    fn concurrent_verifications_of_one_code_let_exactly_one_through() {
        // The proof is checked outside the store lock: the commit must still see the race.
        let f = fixture();
        let e = &f.engine;
        e.create_user("alice", "pw").unwrap();
        let en = e.enroll_otp("alice", Params::default(), None, T).unwrap();
        let key = secret_of(en.uri.as_deref().unwrap());
        let code = otp::totp(&key, T / 1000, &Params::default()).unwrap();
        let challenges: Vec<_> = (0..8)
            .map(|_| e.login("alice", "pw", &Client::default(), T).unwrap().id)
            .collect();
        let results: Vec<_> = std::thread::scope(|scope| {
            let handles: Vec<_> = challenges
                .iter()
                .map(|c| {
                    let (factor, code) = (&en.factor_id, Proof::Code(code.clone()));
                    scope.spawn(move || e.verify(c, factor, &code, &Client::default(), T + 10))
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let won = results.iter().filter(|r| r.is_ok()).count();
        // The losers are replays, and after 3 of them (the fixture's lockout) lockouts.
        let refused = results
            .iter()
            .filter(|r| matches!(r, Err(VerifyError::Replayed | VerifyError::Locked { .. })))
            .count();
        assert_eq!((won, refused), (1, 7), "{results:?}");
    }

    #[test]
    fn unknown_users_and_wrong_passwords_get_the_same_answer() {
        let f = fixture();
        f.engine.create_user("bob", "right").unwrap();
        let wrong = f.engine.login("bob", "wrong", &Client::default(), T);
        let unknown = f.engine.login("nobody", "wrong", &Client::default(), T);
        assert_eq!(
            wrong.unwrap_err().to_string(),
            unknown.unwrap_err().to_string()
        );
    }

    #[test]
    fn failures_lock_the_user_until_the_lockout_ends() {
        let f = fixture();
        let e = &f.engine;
        e.create_user("carol", "pw").unwrap();
        let en = e.enroll_otp("carol", Params::default(), None, T).unwrap();
        for i in 0..3 {
            let c = e.login("carol", "pw", &Client::default(), T + i).unwrap();
            let r = e.verify(
                &c.id,
                &en.factor_id,
                &Proof::Code("000000".into()),
                &Client::default(),
                T + i,
            );
            assert!(matches!(r, Err(VerifyError::WrongCode)), "{r:?}");
        }
        let locked = e.login("carol", "pw", &Client::default(), T + 10);
        assert!(
            matches!(locked, Err(VerifyError::Locked { retry_after_s: 900 })),
            "{locked:?}"
        );
        assert!(
            e.login("carol", "pw", &Client::default(), T + 901_000)
                .is_ok()
        );
        assert!(
            f.events
                .lock()
                .unwrap()
                .iter()
                .any(|e| e.action == Action::Lockout),
            "the lockout is an event"
        );
    }

    #[test]
    fn recovery_codes_are_single_use_and_push_can_be_denied_or_time_out() {
        let f = fixture();
        let e = &f.engine;
        e.create_user("dave", "pw").unwrap();
        let rc = e.enroll_recovery_codes("dave", T).unwrap();
        assert_eq!(rc.codes.len(), 10);
        let code = rc.codes[3].to_lowercase().replace('-', " ");
        let c = e.login("dave", "pw", &Client::default(), T).unwrap();
        e.verify(
            &c.id,
            &rc.factor_id,
            &Proof::RecoveryCode(code.clone()),
            &Client::default(),
            T,
        )
        .unwrap();
        let c = e.login("dave", "pw", &Client::default(), T).unwrap();
        let reuse = e.verify(
            &c.id,
            &rc.factor_id,
            &Proof::RecoveryCode(code),
            &Client::default(),
            T,
        );
        assert!(matches!(reuse, Err(VerifyError::WrongCode)), "single use");

        let push = e.enroll_push("dave", T).unwrap();
        let phone = push.device_token.clone().unwrap();
        let c = e.login("dave", "pw", &Client::default(), T).unwrap();
        let p = e
            .start_push(&c.id, &push.factor_id, &Client::default(), T)
            .unwrap()
            .push_id;
        let pending = e.verify(&c.id, &push.factor_id, &Proof::Push, &Client::default(), T);
        assert!(matches!(pending, Err(VerifyError::PushPending)));
        assert_eq!(e.pending_pushes(&phone, T), vec![p.clone()]);
        assert!(e.pending_pushes("another-device", T).is_empty());
        assert!(!e.answer_push(&p, "another-device", true, T + 5));
        assert!(e.answer_push(&p, &phone, false, T + 10));
        let denied = e.verify(
            &c.id,
            &push.factor_id,
            &Proof::Push,
            &Client::default(),
            T + 20,
        );
        assert!(matches!(denied, Err(VerifyError::PushDenied)));

        let c = e.login("dave", "pw", &Client::default(), T).unwrap();
        let p = e
            .start_push(&c.id, &push.factor_id, &Client::default(), T)
            .unwrap()
            .push_id;
        assert!(e.answer_push(&p, &phone, true, T + 5));
        assert!(
            e.verify(
                &c.id,
                &push.factor_id,
                &Proof::Push,
                &Client::default(),
                T + 9
            )
            .is_ok()
        );

        let c = e.login("dave", "pw", &Client::default(), T).unwrap();
        let p = e
            .start_push(&c.id, &push.factor_id, &Client::default(), T)
            .unwrap()
            .push_id;
        let late = T + 61_000;
        assert!(!e.answer_push(&p, &phone, true, late), "too late to answer");
        let timeout = e.verify(
            &c.id,
            &push.factor_id,
            &Proof::Push,
            &Client::default(),
            late,
        );
        assert!(
            matches!(timeout, Err(VerifyError::PushTimedOut)),
            "{timeout:?}"
        );

        e.revoke_factor("dave", &push.factor_id, T).unwrap();
        let c = e.login("dave", "pw", &Client::default(), T).unwrap();
        assert!(c.factors.iter().all(|(id, _)| *id != push.factor_id));
    }

    #[test]
    fn hotp_accepts_look_ahead_and_refuses_a_used_counter() {
        let f = fixture();
        let e = &f.engine;
        e.create_user("erin", "pw").unwrap();
        let en = e.enroll_otp("erin", Params::default(), Some(0), T).unwrap();
        let key = secret_of(en.uri.as_deref().unwrap());
        let third = otp::code(&key, 2, &Params::default());
        let c = e.login("erin", "pw", &Client::default(), T).unwrap();
        e.verify(
            &c.id,
            &en.factor_id,
            &Proof::Code(third.clone()),
            &Client::default(),
            T,
        )
        .unwrap();
        let c = e.login("erin", "pw", &Client::default(), T).unwrap();
        let r = e.verify(
            &c.id,
            &en.factor_id,
            &Proof::Code(third),
            &Client::default(),
            T,
        );
        assert!(matches!(r, Err(VerifyError::Replayed)), "{r:?}");
    }
}
