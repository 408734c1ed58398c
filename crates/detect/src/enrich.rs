//! Per-user history for "new for the user" facts (the mfascope extension to Sigma, documented
//! in docs/detection.md): the IPs, countries and devices each user recently authenticated
//! successfully from. State is bounded: at most `max_users` users (the least recently seen are
//! evicted in bulk) and `per_user` values of each kind per user (the least recently seen value
//! is displaced); users idle longer than the TTL expire. Every eviction is counted. Travel
//! speed between successive successful MFA logins uses country centroids from `keshvar`.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::{Xxh3Builder, xxh3_64};

use super::row::{BatchView, Derived, opt_str};
use mfascope_core::event::{Action, Outcome};

/// Bounds of the per-user history.
#[derive(Clone, Copy, Debug)]
pub struct HistoryConfig {
    /// Users kept at most.
    pub max_users: usize,
    /// Values of each kind (IP, country, device) kept per user.
    pub per_user: usize,
    /// A user idle longer than this (ms of event time) is forgotten.
    pub ttl_ms: i64,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        HistoryConfig {
            max_users: super::DEFAULT_RULE_STATE,
            per_user: 8,
            ttl_ms: 30 * 86_400_000,
        }
    }
}

/// Counters of the history state.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct HistoryCounters {
    /// Users currently remembered.
    pub users: usize,
    /// Users dropped because `max_users` was reached.
    pub evicted_capacity: u64,
    /// Users dropped after the TTL.
    pub expired: u64,
    /// Values displaced from a full per-user list.
    pub displaced_values: u64,
}

/// Kinds of remembered values, kept in the low bits of each packed value.
#[derive(Clone, Copy)]
enum Kind {
    Ip = 0,
    Country = 1,
    Device = 2,
}

/// A remembered value: 30 bits of its hash, tagged with its kind. Two of a user's (at
/// most `per_user` per kind) values collide with odds of about one in 10^8 per lookup.
fn packed(hash: u64, kind: Kind) -> u32 {
    ((hash >> 32) as u32 & !0b11) | kind as u32
}

/// One user's history: 64 bytes, 4 per remembered value and the last MFA login's event id.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct UserHistory {
    #[serde(rename = "t")]
    last_seen: i64,
    /// Packed values of all kinds, least recently seen first (rows come in event-time order).
    #[serde(rename = "v")]
    values: Vec<u32>,
    /// The last successful MFA login.
    #[serde(rename = "m", default, skip_serializing_if = "Option::is_none")]
    last_mfa: Option<LastMfa>,
}

impl UserHistory {
    fn knows(&self, kind: Kind) -> bool {
        self.values.iter().any(|&v| v & 0b11 == kind as u32)
    }

    fn contains(&self, value: u32) -> bool {
        self.values.contains(&value)
    }

    /// Remember `value` as the most recent of its kind; true when the least recent value of
    /// that kind was displaced (`cap` of the kind kept).
    fn touch(&mut self, value: u32, cap: usize) -> bool {
        if let Some(k) = self.values.iter().position(|&v| v == value) {
            self.values.remove(k);
            self.values.push(value);
            return false;
        }
        let kind = value & 0b11;
        let of_kind = self.values.iter().filter(|&&v| v & 0b11 == kind).count();
        let full = of_kind >= cap;
        if full && let Some(oldest) = self.values.iter().position(|&v| v & 0b11 == kind) {
            self.values.remove(oldest);
        }
        self.values.push(value);
        full
    }
}

/// Where and when a user last passed MFA.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct LastMfa {
    time: i64,
    country: [u8; 2],
    event_id: Box<str>,
}

/// Centroid (latitude, longitude) of an ISO 3166-1 alpha-2 country.
fn centroid(code: &str) -> Option<(f64, f64)> {
    let alpha2 = keshvar::Alpha2::try_from(code.to_ascii_uppercase().as_str()).ok()?;
    let geo = alpha2.to_country().geo();
    Some((geo.latitude(), geo.longitude()))
}

/// Great-circle distance in km (haversine, mean Earth radius).
fn distance_km((lat1, lon1): (f64, f64), (lat2, lon2): (f64, f64)) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * 6_371.0 * a.sqrt().asin()
}

/// Two-letter code as bytes (`None` for anything else).
fn code2(s: &str) -> Option<[u8; 2]> {
    let b = s.as_bytes();
    (b.len() == 2).then(|| [b[0].to_ascii_uppercase(), b[1].to_ascii_uppercase()])
}

/// Derives [`Derived`] facts per event and learns from successful authentications.
#[derive(Debug)]
pub struct Enricher {
    config: HistoryConfig,
    /// Keyed by user hash; a fixed-seed hasher keeps iteration (and so eviction) order
    /// deterministic, so streaming and history runs evict the same users.
    users: HashMap<u64, UserHistory, Xxh3Builder>,
    counters: HistoryCounters,
    last_sweep: i64,
    centroids: HashMap<[u8; 2], Option<(f64, f64)>>,
}

/// Whether a successful event of this action proves the user was where the event says.
fn learns(action: Option<Action>) -> bool {
    matches!(
        action,
        Some(Action::MfaVerify | Action::PrimaryAuth | Action::SessionStart)
    )
}

impl Enricher {
    /// An empty history.
    pub fn new(config: HistoryConfig) -> Enricher {
        Enricher {
            config: HistoryConfig {
                per_user: config.per_user.max(1),
                max_users: config.max_users.max(1),
                ..config
            },
            users: HashMap::with_hasher(Xxh3Builder::new()),
            counters: HistoryCounters::default(),
            last_sweep: i64::MIN,
            centroids: HashMap::new(),
        }
    }

    /// Facts about row `i` against the history so far (only when `derive`: rows no rule can
    /// match skip them), then learn from the row when it is a successful authentication. Rows
    /// must come in event-time order.
    pub fn observe(&mut self, v: &BatchView, i: usize, derive: bool) -> Derived {
        let t = v.time.value(i);
        self.sweep(t);
        let success = v.outcome[i] == Some(Outcome::Success);
        let learn = success && learns(v.action[i]);
        if !derive && !learn {
            return Derived::default();
        }
        let mfa_here = if success && v.action[i] == Some(Action::MfaVerify) {
            opt_str(&v.country, i)
                .and_then(code2)
                .and_then(|code| self.centroid(code).map(|c| (code, c)))
        } else {
            None
        };
        let key = xxh3_64(v.user.value(i).as_bytes());
        // Where the user last passed MFA, looked up (not only cached: a restored history
        // names countries this process has not seen yet).
        let last_country = match (derive, mfa_here) {
            (true, Some(_)) => self
                .users
                .get(&key)
                .and_then(|h| h.last_mfa.as_ref())
                .map(|l| l.country),
            _ => None,
        };
        let there = last_country.and_then(|c| self.centroid(c));
        let value = |a, kind| opt_str(a, i).map(|s| packed(xxh3_64(s.as_bytes()), kind));
        let (ip, country, device) = (
            value(&v.src_ip, Kind::Ip),
            value(&v.country, Kind::Country),
            value(&v.device_id, Kind::Device),
        );
        let known = if derive { self.users.get(&key) } else { None };
        let novelty = |value: Option<u32>, kind: Kind| {
            let known = known.filter(|h| h.knows(kind))?;
            Some(!known.contains(value?))
        };
        let mut derived = Derived {
            user_seen_before: known.is_some(),
            src_ip_new: novelty(ip, Kind::Ip),
            country_new: novelty(country, Kind::Country),
            device_new: novelty(device, Kind::Device),
            travel_km: None,
            travel_kmh: None,
            travel_from: None,
            suppressed: 0,
        };
        if let (Some((code, here)), Some(last)) =
            (mfa_here, known.and_then(|h| h.last_mfa.as_ref()))
            && code != last.country
            && let Some(there) = there
        {
            let km = distance_km(there, here);
            let hours = ((t - last.time).max(60_000)) as f64 / 3_600_000.0;
            derived.travel_km = Some(km.round());
            derived.travel_kmh = Some((km / hours).round());
            derived.travel_from = Some(last.event_id.as_ref().into());
        }
        if learn {
            let cap = self.config.per_user;
            let h = self.users.entry(key).or_default();
            h.last_seen = h.last_seen.max(t);
            let displaced = [ip, country, device]
                .into_iter()
                .flatten()
                .filter(|&value| h.touch(value, cap))
                .count() as u64;
            if let Some((code, _)) = mfa_here {
                h.last_mfa = Some(LastMfa {
                    time: t,
                    country: code,
                    event_id: v.event_id.value(i).into(),
                });
            }
            self.counters.displaced_values += displaced;
            if self.users.len() > self.config.max_users {
                self.evict_least_recent();
            }
        }
        derived
    }

    /// Centroid of a country code (looked up once per code).
    fn centroid(&mut self, code: [u8; 2]) -> Option<(f64, f64)> {
        *self
            .centroids
            .entry(code)
            .or_insert_with(|| centroid(std::str::from_utf8(&code).unwrap_or("")))
    }

    /// Drop users idle past the TTL (at most once per event-time hour).
    fn sweep(&mut self, now: i64) {
        if now < self.last_sweep.saturating_add(3_600_000) {
            return;
        }
        self.last_sweep = now;
        let cutoff = now.saturating_sub(self.config.ttl_ms);
        let before = self.users.len();
        self.users.retain(|_, h| h.last_seen >= cutoff);
        self.counters.expired += (before - self.users.len()) as u64;
    }

    /// Over capacity: drop the least recently seen 10 % in one go (amortised O(1) per event).
    fn evict_least_recent(&mut self) {
        let target = self.config.max_users - self.config.max_users / 10;
        let drop = self.users.len().saturating_sub(target).max(1);
        let mut seen: Vec<i64> = self.users.values().map(|h| h.last_seen).collect();
        let (_, &mut cutoff, _) = seen.select_nth_unstable(drop - 1);
        let mut dropped = 0;
        self.users.retain(|_, h| {
            if dropped < drop && h.last_seen <= cutoff {
                dropped += 1;
                false
            } else {
                true
            }
        });
        self.counters.evicted_capacity += dropped as u64;
    }

    /// Current counters.
    pub fn counters(&self) -> HistoryCounters {
        HistoryCounters {
            users: self.users.len(),
            ..self.counters
        }
    }

    /// The history as it can be saved (users sorted by key, so equal histories save equally),
    /// borrowed: a save copies no user's history, only serializes it.
    pub(crate) fn save(&self) -> SavedHistory<&UserHistory> {
        let mut users: Vec<(u64, &UserHistory)> = self.users.iter().map(|(k, h)| (*k, h)).collect();
        users.sort_unstable_by_key(|(k, _)| *k);
        SavedHistory {
            users,
            counters: self.counters,
            last_sweep: self.last_sweep,
        }
    }

    /// Replace the history with a saved one (the bounds stay this enricher's: a smaller
    /// `max_users` evicts at the next new user).
    pub(crate) fn restore(&mut self, saved: SavedHistory) {
        self.users.clear();
        self.users.extend(saved.users);
        self.counters = saved.counters;
        self.last_sweep = saved.last_sweep;
    }
}

/// The per-user history in its saved form (see [`crate::snapshot`]): borrowed from the
/// enricher when saved (`U = &UserHistory`), owned when read back.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct SavedHistory<U = UserHistory> {
    users: Vec<(u64, U)>,
    counters: HistoryCounters,
    last_sweep: i64,
}

impl<U> Default for SavedHistory<U> {
    fn default() -> Self {
        SavedHistory {
            users: Vec::new(),
            counters: HistoryCounters::default(),
            last_sweep: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mfascope_core::event::{Event, EventBatchBuilder, Factor, Source};

    fn view(rows: &[(i64, &str, &str, &str, Action, Outcome)]) -> BatchView {
        let mut b = EventBatchBuilder::default();
        for (k, (t, user, ip, country, action, outcome)) in rows.iter().enumerate() {
            let mut e = Event::new(
                Source::Canonical,
                format!("e{k}"),
                *t,
                *user,
                "t",
                (*action, Factor::Push, *outcome),
            );
            e.src_ip = Some((*ip).into());
            e.country = Some((*country).into());
            b.append(&e);
        }
        BatchView::of(&b.finish_canonical())
    }

    #[test]
    fn novelty_is_known_only_after_a_success_and_travel_uses_centroids() {
        let min = 60_000;
        let v = view(&[
            (
                0,
                "a",
                "10.0.0.1",
                "DE",
                Action::MfaVerify,
                Outcome::Success,
            ),
            (
                min,
                "a",
                "185.1.1.1",
                "NG",
                Action::MfaVerify,
                Outcome::Failure,
            ),
            (
                2 * min,
                "a",
                "185.1.1.1",
                "NG",
                Action::RecoveryRequest,
                Outcome::Success,
            ),
            (
                20 * min,
                "a",
                "185.1.1.1",
                "NG",
                Action::MfaVerify,
                Outcome::Success,
            ),
            (
                21 * min,
                "a",
                "185.1.1.1",
                "NG",
                Action::MfaVerify,
                Outcome::Success,
            ),
            (
                22 * min,
                "b",
                "10.0.0.1",
                "DE",
                Action::MfaVerify,
                Outcome::Success,
            ),
        ]);
        let mut e = Enricher::new(HistoryConfig::default());
        let d: Vec<Derived> = (0..v.len()).map(|i| e.observe(&v, i, true)).collect();
        // No history yet: unknown, not new.
        assert_eq!((d[0].user_seen_before, d[0].src_ip_new), (false, None));
        // A failed attempt and an account change do not teach the history.
        assert_eq!(d[1].src_ip_new, Some(true));
        assert_eq!(d[2].country_new, Some(true));
        // Berlin → Lagos (~4,800 km) in 20 minutes.
        let km = d[3].travel_km.unwrap();
        assert!((4_000.0..5_500.0).contains(&km), "{km}");
        assert!(d[3].travel_kmh.unwrap() > 10_000.0);
        // Learned after that success; another user's history is separate.
        assert_eq!((d[4].src_ip_new, d[4].travel_km), (Some(false), None));
        assert!(!d[5].user_seen_before);
    }

    #[test]
    fn values_are_displaced_least_recent_first_and_per_kind() {
        let (a, b, d) = (
            packed(xxh3_64(b"10.0.0.1"), Kind::Ip),
            packed(xxh3_64(b"10.0.0.2"), Kind::Ip),
            packed(xxh3_64(b"10.0.0.3"), Kind::Ip),
        );
        let c = packed(xxh3_64(b"DE"), Kind::Country);
        let mut h = UserHistory::default();
        assert!(!h.knows(Kind::Ip));
        let displaced: Vec<bool> = [a, b, c, a, d].iter().map(|&v| h.touch(v, 2)).collect();
        // Two IPs fit; `a` was seen again after `b`, so `d` displaces `b`; the country is
        // another kind and stays.
        assert_eq!(displaced, [false, false, false, false, true]);
        assert!(h.contains(a) && h.contains(c) && h.contains(d) && !h.contains(b));
        assert!(h.knows(Kind::Country) && !h.knows(Kind::Device));
        assert_ne!(packed(7, Kind::Ip), packed(7, Kind::Device));
    }

    #[test]
    fn state_stays_within_its_bounds_and_evictions_are_counted() {
        let rows: Vec<(i64, String)> = (0..1_000)
            .map(|i| (i as i64 * 1000, format!("u{i}")))
            .collect();
        let data: Vec<(i64, &str, &str, &str, Action, Outcome)> = rows
            .iter()
            .map(|(t, u)| {
                (
                    *t,
                    u.as_str(),
                    "10.0.0.1",
                    "DE",
                    Action::PrimaryAuth,
                    Outcome::Success,
                )
            })
            .collect();
        let v = view(&data);
        let mut e = Enricher::new(HistoryConfig {
            max_users: 100,
            ..HistoryConfig::default()
        });
        for i in 0..v.len() {
            e.observe(&v, i, true);
        }
        let c = e.counters();
        assert!(c.users <= 100, "{c:?}");
        assert_eq!(c.users as u64 + c.evicted_capacity, 1_000);
    }
}
