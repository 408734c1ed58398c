//! Request rate limits per client IP and per user (GCRA via `governor`): a refused request
//! learns how long to wait (`Retry-After`). Idle keys are dropped periodically, so the
//! limiters' memory follows the active clients, not every name ever tried.

use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// A rate: `burst` requests at once, refilled at `per_second`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    /// Sustained requests per second (0 disables the limit).
    pub per_second: f64,
    /// Requests allowed at once.
    pub burst: u32,
}

impl Rate {
    fn quota(self) -> Option<Quota> {
        if self.per_second <= 0.0 {
            return None;
        }
        let period = Duration::from_secs_f64(1.0 / self.per_second);
        let burst = NonZeroU32::new(self.burst.max(1)).expect("max(1) is non-zero");
        Some(Quota::with_period(period.max(Duration::from_nanos(1)))?.allow_burst(burst))
    }
}

/// One keyed limiter (absent when disabled).
struct Keyed<K: Hash + Eq + Clone>(Option<DefaultKeyedRateLimiter<K>>);

impl<K: Hash + Eq + Clone> Keyed<K> {
    fn new(rate: Rate) -> Self {
        Keyed(rate.quota().map(RateLimiter::keyed))
    }

    fn check(&self, key: &K) -> Result<(), Duration> {
        match &self.0 {
            Some(l) => l
                .check_key(key)
                .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now())),
            None => Ok(()),
        }
    }

    fn sweep(&self) {
        if let Some(l) = &self.0 {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }

    fn len(&self) -> usize {
        self.0.as_ref().map_or(0, governor::RateLimiter::len)
    }
}

/// What was exceeded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// The client IP's rate.
    Ip,
    /// The user's rate.
    User,
}

impl Scope {
    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Ip => "ip",
            Scope::User => "user",
        }
    }
}

/// The verifier's limiters.
pub struct Limits {
    ip: Keyed<IpAddr>,
    user: Keyed<String>,
}

impl Limits {
    /// Limiters at these rates.
    pub fn new(ip: Rate, user: Rate) -> Limits {
        Limits {
            ip: Keyed::new(ip),
            user: Keyed::new(user),
        }
    }

    /// Admit one request from `ip`, or say how long to wait.
    pub fn ip(&self, ip: IpAddr) -> Result<(), (Scope, Duration)> {
        self.ip.check(&ip).map_err(|d| (Scope::Ip, d))
    }

    /// Admit one attempt for `user` (known or not: the answer must not tell), or say how long
    /// to wait.
    pub fn user(&self, user: &str) -> Result<(), (Scope, Duration)> {
        self.user
            .check(&user.to_string())
            .map_err(|d| (Scope::User, d))
    }

    /// Whether users are limited at all.
    pub fn limits_users(&self) -> bool {
        self.user.0.is_some()
    }

    /// Drop the state of keys that are back to a full burst; keys still tracked.
    pub fn sweep(&self) -> usize {
        self.ip.sweep();
        self.user.sweep();
        self.ip.len() + self.user.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_the_wait_is_told_and_keys_are_independent() {
        let l = Limits::new(
            Rate {
                per_second: 1.0,
                burst: 2,
            },
            Rate {
                per_second: 0.0,
                burst: 1,
            },
        );
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(l.ip(a).is_ok() && l.ip(a).is_ok());
        let (scope, wait) = l.ip(a).unwrap_err();
        assert_eq!(scope, Scope::Ip);
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        assert!(l.ip(b).is_ok(), "another IP has its own budget");
        for _ in 0..100 {
            assert!(l.user("alice").is_ok(), "0/s disables the limit");
        }
    }
}
