//! The canonical simulation behind `mfascope generate`.

use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, LogNormal};
use rand_pcg::Pcg64Mcg;

use super::{GenerateOptions, Incident, IncidentKind, Label};
use mfascope_core::event::{Action, Event, Factor, Outcome, Source};
use mfascope_core::time::format_rfc3339;

/// Simulated events (time-ordered) and attack labels.
pub struct Simulation {
    /// Events in time order.
    pub events: Vec<Event<'static>>,
    /// Ground truth.
    pub labels: Vec<Label>,
    /// Who the users are (the 2FA posture's ground truth).
    pub users: Vec<UserLabel>,
}

/// Ground truth for one simulated user.
#[derive(Clone, Debug, serde::Serialize)]
pub struct UserLabel {
    /// The user's name in events.
    pub user: String,
    /// The second factor the user signs in with (`none` for users without one).
    pub factor: Factor,
    /// Marked privileged (an administrator).
    pub privileged: bool,
    /// Signs in with a password only: an app policy that does not ask for a second factor.
    pub no_mfa: bool,
}

struct User {
    name: String,
    factor: Factor,
    country: &'static Place,
    ip: String,
    device: String,
    privileged: bool,
    no_mfa: bool,
    ua: &'static str,
}

/// Events one round of attack scenarios adds.
const ATTACK_EVENTS_PER_ROUND: usize = 71;

/// Country code, region, city, country name.
type Place = (&'static str, &'static str, &'static str, &'static str);

const PLACES: &[Place] = &[
    ("US", "California", "San Francisco", "United States"),
    ("US", "New York", "New York", "United States"),
    ("DE", "Berlin", "Berlin", "Germany"),
    ("FR", "Ile-de-France", "Paris", "France"),
    ("GB", "England", "London", "United Kingdom"),
    ("IN", "Karnataka", "Bengaluru", "India"),
    ("BR", "Sao Paulo", "Sao Paulo", "Brazil"),
    ("JP", "Tokyo", "Tokyo", "Japan"),
];
const FOREIGN: &[Place] = &[
    ("RU", "Moscow", "Moscow", "Russia"),
    ("NG", "Lagos", "Lagos", "Nigeria"),
    ("VN", "Hanoi", "Hanoi", "Vietnam"),
];
const UAS: &[&str] = &[
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.0.0",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
];
const APPS: &[&str] = &[
    "Salesforce",
    "Slack",
    "GitHub Enterprise",
    "Workday",
    "AWS Console",
    "Zoom",
];

struct Sim {
    rng: Pcg64Mcg,
    users: Vec<User>,
    events: Vec<Event<'static>>,
    labels: Vec<Label>,
    next_id: u64,
    seed: u64,
    incidents: Vec<Incident>,
}

impl Sim {
    fn id(&mut self) -> String {
        self.next_id += 1;
        let x = xxhash_rust::xxh3::xxh3_128(
            &[self.seed.to_le_bytes(), self.next_id.to_le_bytes()].concat(),
        );
        uuid::Uuid::from_u128(x).to_string()
    }

    fn base(
        &mut self,
        u: usize,
        t: i64,
        (action, factor, outcome): (Action, Factor, Outcome),
        txn: &str,
    ) -> Event<'static> {
        let id = self.id();
        let user = &self.users[u];
        let mut e = Event::new(
            Source::Canonical,
            id,
            t,
            user.name.clone(),
            "",
            (action, factor, outcome),
        );
        let place = user.country;
        e.country = Some(place.0.into());
        e.region = Some(place.1.into());
        e.city = Some(place.2.into());
        e.src_ip = Some(user.ip.clone().into());
        e.user_agent = Some(user.ua.into());
        e.device_id = Some(user.device.clone().into());
        e.transaction_id = Some(txn.to_string().into());
        e.session_id = Some(format!("102{}", &txn[..txn.len().min(20)]).into());
        e.privileged = Some(user.privileged);
        e.tenant = Some("acme".into());
        e.app = Some(
            APPS[(xxhash_rust::xxh3::xxh3_64(txn.as_bytes()) % APPS.len() as u64) as usize].into(),
        );
        e.asn = Some(64_500 + (u as u32 % 40));
        e
    }

    fn push(&mut self, e: Event<'static>) -> String {
        let id = e.event_id.to_string();
        self.events.push(e);
        id
    }

    fn latency(&mut self, factor: Factor) -> u32 {
        let (median_ms, sigma) = match factor {
            Factor::Push => (4_500.0, 0.6),
            Factor::Totp | Factor::Hotp => (9_000.0, 0.5),
            Factor::Sms => (22_000.0, 0.5),
            Factor::Webauthn | Factor::U2f => (2_200.0, 0.4),
            _ => (6_000.0, 0.6),
        };
        let d = LogNormal::new(f64::ln(median_ms), sigma).expect("valid lognormal");
        d.sample(&mut self.rng).min(110_000.0) as u32
    }

    /// One login flow: password, challenge, verification (with realistic failures).
    fn login(&mut self, u: usize, t: i64) {
        let txn = self.id();
        let factor = self.users[u].factor;
        if self.rng.random_bool(0.03) {
            let mut e = self.base(
                u,
                t,
                (Action::PrimaryAuth, Factor::Password, Outcome::Failure),
                &txn,
            );
            e.reason = Some("invalid_credentials".into());
            self.push(e);
            return;
        }
        let e = self.base(
            u,
            t,
            (Action::PrimaryAuth, Factor::Password, Outcome::Success),
            &txn,
        );
        self.push(e);
        if self.users[u].no_mfa {
            return;
        }
        let t1 = t + self.rng.random_range(200..900);
        if self.rng.random_bool(0.004) {
            let mut e = self.base(u, t1, (Action::RateLimited, factor, Outcome::Failure), &txn);
            e.reason = Some("rate_limited".into());
            self.push(e);
            return;
        }
        if matches!(factor, Factor::Push | Factor::Sms) {
            let e = self.base(
                u,
                t1,
                (Action::MfaChallenge, factor, Outcome::Challenge),
                &txn,
            );
            self.push(e);
        }
        let mut latency = self.latency(factor);
        let roll: f64 = self.rng.random();
        // A healthy baseline sits just inside the shipped 98 % success SLO.
        let (mut outcome, mut reason) = match factor {
            Factor::Push if roll < 0.002 => (Outcome::Denied, Some("user_denied")),
            Factor::Push if roll < 0.004 => (Outcome::Timeout, Some("no_response")),
            Factor::Totp | Factor::Sms if roll < 0.008 => (Outcome::Failure, Some("invalid_code")),
            _ if roll < 0.001 => (Outcome::Failure, Some("mfa_failed")),
            _ => (Outcome::Success, None),
        };
        let verify_at = t1 + latency as i64;
        for incident in self.incidents.iter().filter(|i| i.covers(verify_at)) {
            match incident.kind {
                IncidentKind::PushOutage if factor == Factor::Push => {
                    (outcome, reason) = (Outcome::Timeout, Some("no_response"));
                    latency = 60_000;
                }
                IncidentKind::Degradation if self.rng.random_bool(incident.rate) => {
                    (outcome, reason) = (Outcome::Error, Some("provider_error"));
                }
                _ => {}
            }
        }
        let mut e = self.base(
            u,
            t1 + latency as i64,
            (Action::MfaVerify, factor, outcome),
            &txn,
        );
        e.reason = reason.map(Into::into);
        e.latency_ms = Some(latency);
        self.push(e);
    }

    fn lifecycle(&mut self, u: usize, t: i64) {
        if self.users[u].no_mfa {
            // No second factor to enrol, verify or recover.
            return self.login(u, t);
        }
        let txn = self.id();
        let roll: f64 = self.rng.random();
        let factor = self.users[u].factor;
        let (action, factor, outcome) = if roll < 0.35 {
            (Action::EnrollComplete, factor, Outcome::Success)
        } else if roll < 0.45 {
            (Action::EnrollStart, factor, Outcome::Challenge)
        } else if roll < 0.6 {
            (Action::RecoveryRequest, Factor::Email, Outcome::Success)
        } else if roll < 0.7 {
            (Action::RecoveryComplete, Factor::Password, Outcome::Success)
        } else if roll < 0.8 {
            (Action::FactorRemove, factor, Outcome::Success)
        } else if roll < 0.9 {
            (Action::SessionRevoke, Factor::None, Outcome::Success)
        } else {
            (Action::DeviceRegister, Factor::None, Outcome::Success)
        };
        let e = self.base(u, t, (action, factor, outcome), &txn);
        self.push(e);
    }

    fn label(
        &mut self,
        scenario: &'static str,
        attack: &'static str,
        u: usize,
        ip: Option<String>,
        ids: Vec<String>,
        (start, end): (i64, i64),
    ) {
        self.labels.push(Label {
            scenario,
            attack,
            user: self.users[u].name.clone(),
            src_ip: ip,
            start: format_rfc3339(start),
            end: format_rfc3339(end),
            event_ids: ids,
        });
    }

    fn attacker_ip(&mut self) -> (String, &'static Place) {
        let place = &FOREIGN[self.rng.random_range(0..FOREIGN.len())];
        (
            format!(
                "185.{}.{}.{}",
                self.rng.random_range(0..255),
                self.rng.random_range(0..255),
                self.rng.random_range(1..255)
            ),
            place,
        )
    }

    fn at(&self, e: &mut Event<'static>, ip: &str, place: &Place) {
        e.src_ip = Some(ip.to_string().into());
        e.country = Some(place.0.into());
        e.region = Some(place.1.into());
        e.city = Some(place.2.into());
        e.device_id = Some(format!("dev-{}", ip.replace('.', "")).into());
    }

    /// One synthetic probe login (source `probe`) at `t`: the 2FA path as CI sees it, with
    /// machine latency and no human in the loop. Alternates TOTP and push checks.
    fn probe(&mut self, t: i64, n: usize) {
        let factor = if n.is_multiple_of(2) {
            Factor::Totp
        } else {
            Factor::Push
        };
        let txn = self.id();
        let latency = LogNormal::new(f64::ln(380.0), 0.45)
            .expect("valid lognormal")
            .sample(&mut self.rng)
            .min(10_000.0) as u32;
        let (mut outcome, mut reason, mut latency) = (Outcome::Success, None, latency);
        for incident in self.incidents.iter().filter(|i| i.covers(t)) {
            match incident.kind {
                IncidentKind::PushOutage if factor == Factor::Push => {
                    (outcome, reason, latency) = (Outcome::Error, Some("push_timeout"), 30_000);
                }
                IncidentKind::Degradation if self.rng.random_bool(incident.rate) => {
                    (outcome, reason) = (Outcome::Error, Some("provider_error"));
                }
                _ => {}
            }
        }
        let mut e = Event::new(
            Source::Probe,
            self.id(),
            t,
            "probe@acme.example".to_string(),
            "probe.check",
            (Action::MfaVerify, factor, outcome),
        );
        e.transaction_id = Some(txn.into());
        e.app = Some("mfascope-probe".into());
        e.tenant = Some("acme".into());
        e.reason = reason.map(Into::into);
        e.latency_ms = Some(latency);
        self.push(e);
    }

    /// An attacker's push prompt at `t` from `ip` that ends 30 s later as `ending` (denied,
    /// ignored, reported); returns the ids of the challenge and the verification.
    fn unwanted_push(
        &mut self,
        u: usize,
        t: i64,
        txn: &str,
        (ip, place): (&str, &'static Place),
        (o, r): (Outcome, &'static str),
    ) -> [String; 2] {
        let mut c = self.base(
            u,
            t,
            (Action::MfaChallenge, Factor::Push, Outcome::Challenge),
            txn,
        );
        self.at(&mut c, ip, place);
        let challenge = self.push(c);
        let mut v = self.base(u, t + 30_000, (Action::MfaVerify, Factor::Push, o), txn);
        v.reason = Some(r.into());
        v.latency_ms = Some(30_000);
        self.at(&mut v, ip, place);
        [challenge, self.push(v)]
    }

    /// A victim for an attack at `t0`: a user who authenticated successfully at least an hour
    /// earlier, so "new for the user" is meaningful (falls back to anyone).
    fn victim(&mut self, first_success: &[i64], t0: i64) -> usize {
        for _ in 0..10_000 {
            let u = self.rng.random_range(0..self.users.len());
            if first_success[u] < t0 - 3_600_000 {
                return u;
            }
        }
        self.rng.random_range(0..self.users.len())
    }

    /// Inject every scenario `rounds` times ([`ATTACK_EVENTS_PER_ROUND`] events per round).
    fn attacks(&mut self, start: i64, span: i64, rounds: usize) {
        let index: std::collections::HashMap<&str, usize> = self
            .users
            .iter()
            .enumerate()
            .map(|(i, u)| (u.name.as_str(), i))
            .collect();
        let mut first_success = vec![i64::MAX; self.users.len()];
        for e in &self.events {
            // A completed MFA sign-in, which every vendor logs (some log a password step as a
            // challenge), so each vendor's history knows the victim's devices before the attack.
            if e.outcome == Outcome::Success
                && e.action == Action::MfaVerify
                && let Some(&u) = index.get(e.user.as_ref())
            {
                first_success[u] = first_success[u].min(e.time);
            }
        }
        drop(index);
        for _ in 0..rounds {
            let before = self.events.len();
            let t0 = start + self.rng.random_range(span / 10..span * 9 / 10);
            let u = self.victim(&first_success, t0);
            let (ip, place) = self.attacker_ip();
            // Push fatigue: a burst of pushes the user denies or ignores, then an approval.
            let txn = self.id();
            let mut ids = vec![];
            let mut t = t0;
            for i in 0..8 {
                ids.extend(self.unwanted_push(
                    u,
                    t,
                    &txn,
                    (&ip, place),
                    ignored_or_denied(i % 2 == 0),
                ));
                t += 45_000;
            }
            let mut ok = self.base(
                u,
                t,
                (Action::MfaVerify, Factor::Push, Outcome::Success),
                &txn,
            );
            ok.latency_ms = Some(7_000);
            self.at(&mut ok, &ip, place);
            ids.push(self.push(ok));
            self.label("push_fatigue", "T1621", u, Some(ip.clone()), ids, (t0, t));

            // OTP brute force: many wrong codes.
            let t0 = start + self.rng.random_range(span / 10..span * 9 / 10);
            let u = self.victim(&first_success, t0);
            let (ip, place) = self.attacker_ip();
            let mut ids = vec![];
            for i in 0..14 {
                let txn = self.id();
                let mut v = self.base(
                    u,
                    t0 + i * 20_000,
                    (Action::MfaVerify, Factor::Totp, Outcome::Failure),
                    &txn,
                );
                v.reason = Some("invalid_code".into());
                self.at(&mut v, &ip, place);
                ids.push(self.push(v));
            }
            self.label(
                "otp_brute_force",
                "T1110",
                u,
                Some(ip),
                ids,
                (t0, t0 + 13 * 20_000),
            );

            // Recovery abuse and rogue device: recovery from a new country, factor swap, device.
            let t0 = start + self.rng.random_range(span / 10..span * 9 / 10);
            let u = self.victim(&first_success, t0);
            let (ip, place) = self.attacker_ip();
            let txn = self.id();
            let mut ids = vec![];
            for (dt, action, factor) in [
                (0, Action::RecoveryRequest, Factor::Email),
                (240_000, Action::RecoveryComplete, Factor::Password),
                (600_000, Action::FactorRemove, Factor::Push),
                (900_000, Action::EnrollComplete, Factor::Push),
                (1_200_000, Action::DeviceRegister, Factor::None),
            ] {
                let mut e = self.base(u, t0 + dt, (action, factor, Outcome::Success), &txn);
                self.at(&mut e, &ip, place);
                ids.push(self.push(e));
            }
            self.label(
                "recovery_abuse",
                "T1556.006",
                u,
                Some(ip.clone()),
                ids[..4].to_vec(),
                (t0, t0 + 900_000),
            );
            self.label(
                "rogue_device_registration",
                "T1098.005",
                u,
                Some(ip),
                ids[4..].to_vec(),
                (t0 + 1_200_000, t0 + 1_200_000),
            );

            // SIM swap: SMS factor re-enrolled, then SMS login from a new device.
            let t0 = start + self.rng.random_range(span / 10..span * 8 / 10);
            let u = self.victim(&first_success, t0);
            let (ip, place) = self.attacker_ip();
            let txn = self.id();
            let mut enroll = self.base(
                u,
                t0,
                (Action::EnrollComplete, Factor::Sms, Outcome::Success),
                &txn,
            );
            enroll.reason = Some("factor_updated".into());
            let id1 = self.push(enroll);
            let txn = self.id();
            let mut login = self.base(
                u,
                t0 + 3_600_000,
                (Action::MfaVerify, Factor::Sms, Outcome::Success),
                &txn,
            );
            login.latency_ms = Some(15_000);
            self.at(&mut login, &ip, place);
            let id2 = self.push(login);
            self.label(
                "sim_swap",
                "T1111",
                u,
                Some(ip),
                vec![id1, id2],
                (t0, t0 + 3_600_000),
            );

            // MFA disabled by an admin for a privileged user.
            let t0 = start + self.rng.random_range(span / 10..span * 9 / 10);
            let u = self.victim(&first_success, t0);
            let txn = self.id();
            let mut e = self.base(
                u,
                t0,
                (Action::PolicyChange, Factor::None, Outcome::Success),
                &txn,
            );
            e.reason = Some("mfa_disabled".into());
            e.actor = Some("admin@acme.example".into());
            e.privileged = Some(true);
            let id = self.push(e);
            self.label(
                "mfa_disabled_by_admin",
                "T1556.006",
                u,
                None,
                vec![id],
                (t0, t0),
            );

            // Impossible travel: two successful MFA logins continents apart, 20 minutes apart.
            let t0 = start + self.rng.random_range(span / 10..span * 9 / 10);
            let u = self.victim(&first_success, t0);
            let (ip, place) = self.attacker_ip();
            let factor = self.users[u].factor;
            let txn = self.id();
            let mut a = self.base(u, t0, (Action::MfaVerify, factor, Outcome::Success), &txn);
            a.latency_ms = Some(5_000);
            let id1 = self.push(a);
            let txn = self.id();
            let mut b = self.base(
                u,
                t0 + 1_200_000,
                (Action::MfaVerify, factor, Outcome::Success),
                &txn,
            );
            b.latency_ms = Some(5_000);
            self.at(&mut b, &ip, place);
            let id2 = self.push(b);
            self.label(
                "impossible_travel",
                "T1078",
                u,
                Some(ip),
                vec![id1, id2],
                (t0, t0 + 1_200_000),
            );

            // Push bombing the user never gives in to: six pushes denied or ignored.
            let t0 = start + self.rng.random_range(span / 10..span * 9 / 10);
            let u = self.victim(&first_success, t0);
            let (ip, place) = self.attacker_ip();
            let txn = self.id();
            let mut ids = vec![];
            for i in 0..6 {
                let t = t0 + i * 60_000;
                ids.extend(self.unwanted_push(
                    u,
                    t,
                    &txn,
                    (&ip, place),
                    ignored_or_denied(i % 3 == 0),
                ));
            }
            self.label(
                "push_bombing",
                "T1621",
                u,
                Some(ip),
                ids,
                (t0, t0 + 330_000),
            );

            // MFA spray: one IP fails the second factor for twelve users in 20 minutes.
            let t0 = start + self.rng.random_range(span / 10..span * 9 / 10);
            let (ip, place) = self.attacker_ip();
            let mut ids = vec![];
            let mut first = None;
            let mut victims = std::collections::BTreeSet::new();
            while victims.len() < 12.min(self.users.len()) {
                victims.insert(self.rng.random_range(0..self.users.len()));
            }
            for (i, u) in victims.into_iter().enumerate() {
                let i = i as i64;
                first.get_or_insert(u);
                let txn = self.id();
                let factor = self.users[u].factor;
                let mut v = self.base(
                    u,
                    t0 + i * 100_000,
                    (Action::MfaVerify, factor, Outcome::Failure),
                    &txn,
                );
                v.reason = Some("mfa_failed".into());
                self.at(&mut v, &ip, place);
                ids.push(self.push(v));
            }
            self.label(
                "mfa_spray",
                "T1110.003",
                first.unwrap_or(0),
                Some(ip),
                ids,
                (t0, t0 + 1_100_000),
            );

            // A bypass code lets someone in without the second factor.
            let t0 = start + self.rng.random_range(span / 10..span * 9 / 10);
            let u = self.victim(&first_success, t0);
            let txn = self.id();
            let e = self.base(
                u,
                t0,
                (Action::MfaVerify, Factor::BypassCode, Outcome::Success),
                &txn,
            );
            let id = self.push(e);
            self.label("bypass_used", "T1556.006", u, None, vec![id], (t0, t0));

            // Replayed OTP: a phished code is submitted again from the attacker's IP.
            let t0 = start + self.rng.random_range(span / 10..span * 9 / 10);
            let u = self.victim(&first_success, t0);
            let (ip, place) = self.attacker_ip();
            let txn = self.id();
            let mut ok = self.base(
                u,
                t0,
                (Action::MfaVerify, Factor::Totp, Outcome::Success),
                &txn,
            );
            ok.latency_ms = Some(8_000);
            let id1 = self.push(ok);
            let txn = self.id();
            let mut replay = self.base(
                u,
                t0 + 20_000,
                (Action::MfaVerify, Factor::Totp, Outcome::Failure),
                &txn,
            );
            replay.reason = Some("replay".into());
            self.at(&mut replay, &ip, place);
            let id2 = self.push(replay);
            self.label(
                "otp_replay",
                "T1111",
                u,
                Some(ip),
                vec![id1, id2],
                (t0, t0 + 20_000),
            );

            // Fraud reported: the user denies an attacker's push as fraud and reports it.
            let t0 = start + self.rng.random_range(span / 10..span * 9 / 10);
            let u = self.victim(&first_success, t0);
            let (ip, place) = self.attacker_ip();
            let txn = self.id();
            let reported = (Outcome::Denied, "fraud_reported");
            let [challenge, verify] = self.unwanted_push(u, t0, &txn, (&ip, place), reported);
            let mut report = self.base(
                u,
                t0 + 50_000,
                (Action::RiskSignal, Factor::None, Outcome::Unknown),
                &txn,
            );
            report.reason = Some("fraud_reported".into());
            self.at(&mut report, &ip, place);
            let id = self.push(report);
            self.label(
                "fraud_reported",
                "T1621",
                u,
                Some(ip),
                vec![challenge, verify, id],
                (t0, t0 + 50_000),
            );
            debug_assert_eq!(self.events.len() - before, ATTACK_EVENTS_PER_ROUND);
        }
    }
}

/// How an unwanted push ends: denied by the user, or left to time out.
fn ignored_or_denied(denied: bool) -> (Outcome, &'static str) {
    if denied {
        (Outcome::Denied, "user_denied")
    } else {
        (Outcome::Timeout, "no_response")
    }
}

/// Diurnal weight in [0.15, 1]: quiet nights, a morning peak and an afternoon plateau (UTC).
fn diurnal(ms: i64) -> f64 {
    let hour = (ms.rem_euclid(86_400_000)) as f64 / 3_600_000.0;
    let peak =
        (-((hour - 9.5) / 2.5f64).powi(2)).exp() + 0.8 * (-((hour - 15.0) / 3.0f64).powi(2)).exp();
    (0.15 + peak).min(1.0)
}

/// Run the simulation.
pub fn simulate(opts: &GenerateOptions) -> Simulation {
    let rng = Pcg64Mcg::seed_from_u64(opts.seed);
    let n_users = (opts.events / 40).clamp(20, 200_000);
    // One organisation seen through every IdP: user i has the same home, IP, device and factor
    // whatever the seed, format or volume, so files generated separately (one per vendor) agree
    // about who is where.
    let users = (0..n_users)
        .map(|i| {
            let mut rng = Pcg64Mcg::seed_from_u64(xxhash_rust::xxh3::xxh3_64(
                format!("acme.example user {i}").as_bytes(),
            ));
            let roll: f64 = rng.random();
            let factor = match roll {
                r if r < 0.55 => Factor::Push,
                r if r < 0.80 => Factor::Totp,
                r if r < 0.90 => Factor::Sms,
                r if r < 0.97 => Factor::Webauthn,
                _ => Factor::U2f,
            };
            User {
                name: format!("user{i:05}@acme.example"),
                factor,
                country: &PLACES[rng.random_range(0..PLACES.len())],
                ip: format!(
                    "{}.{}.{}.{}",
                    rng.random_range(11..99),
                    rng.random_range(0..255),
                    rng.random_range(0..255),
                    rng.random_range(1..255)
                ),
                device: format!("guo{:016x}", rng.random::<u64>()),
                privileged: rng.random_bool(0.03),
                ua: UAS[rng.random_range(0..UAS.len())],
                // Drawn last, from the user's own generator: the rest of the traffic is the
                // same whatever the share.
                no_mfa: rng.random_bool(opts.no_mfa_share.clamp(0.0, 1.0)),
            }
        })
        .collect();
    let mut sim = Sim {
        rng,
        users,
        events: Vec::with_capacity(opts.events + 64),
        labels: vec![],
        next_id: 0,
        seed: opts.seed,
        incidents: opts.incidents.clone(),
    };
    let span = (opts.days * 86_400_000.0) as i64;
    // Flows at diurnally weighted random times (rejection sampling), then time-ordered.
    let attack_events = if opts.attacks {
        (opts.events / 20_000).max(1) * ATTACK_EVENTS_PER_ROUND
    } else {
        0
    };
    let minutes = (span / 60_000).max(1) as usize;
    let probes = if opts.probes {
        minutes.min(opts.events.saturating_sub(attack_events))
    } else {
        0
    };
    for n in 0..probes {
        let t = opts.start_ms + (n as i64 * span.max(1)) / probes as i64 + 17_000;
        sim.probe(t, n);
    }
    let target = opts.events.saturating_sub(attack_events);
    while sim.events.len() < target {
        let t = opts.start_ms + sim.rng.random_range(0..span.max(1));
        if sim.rng.random::<f64>() > diurnal(t) {
            continue;
        }
        let u = sim.rng.random_range(0..sim.users.len());
        if sim.rng.random_bool(0.04) {
            sim.lifecycle(u, t);
        } else {
            sim.login(u, t);
        }
    }
    sim.events.truncate(target);
    if opts.attacks {
        sim.attacks(opts.start_ms, span.max(1), (opts.events / 20_000).max(1));
    }
    while sim.events.len() < opts.events {
        let t = opts.start_ms + sim.rng.random_range(0..span.max(1));
        let u = sim.rng.random_range(0..sim.users.len());
        sim.lifecycle(u, t);
    }
    sim.events.truncate(opts.events);
    sim.events.sort_by_key(|e| e.time);
    let kept: std::collections::HashSet<&str> =
        sim.events.iter().map(|e| e.event_id.as_ref()).collect();
    let mut labels = sim.labels;
    labels.retain(|l| l.event_ids.iter().all(|id| kept.contains(id.as_str())));
    let users = sim
        .users
        .iter()
        .map(|u| UserLabel {
            user: u.name.clone(),
            factor: if u.no_mfa { Factor::None } else { u.factor },
            privileged: u.privileged,
            no_mfa: u.no_mfa,
        })
        .collect();
    Simulation {
        events: sim.events,
        labels,
        users,
    }
}
