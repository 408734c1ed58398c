//! Passwords: argon2id hashes in PHC string form. Unknown users are checked against a fixed
//! dummy hash of the same cost, so a login for a user that does not exist takes as long as a
//! wrong password (no user enumeration by timing).

use std::sync::OnceLock;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

/// Argon2id cost: memory (KiB), iterations, lanes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Cost {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// argon2id passes over memory (t cost).
    pub iterations: u32,
    /// argon2id parallelism (p cost).
    pub lanes: u32,
}

impl Default for Cost {
    /// OWASP's argon2id baseline: 19 MiB, 2 iterations, 1 lane.
    fn default() -> Self {
        Cost {
            memory_kib: 19 * 1024,
            iterations: 2,
            lanes: 1,
        }
    }
}

fn argon2(cost: Cost) -> Argon2<'static> {
    let params = Params::new(cost.memory_kib, cost.iterations, cost.lanes, None)
        .expect("argon2 parameters within the library's bounds");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// The PHC string of `password` (random salt).
pub fn hash(password: &str, cost: Cost) -> String {
    let salt = SaltString::generate(&mut OsRng);
    argon2(cost)
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 hashes any password")
        .to_string()
}

/// Whether `password` matches `phc` (the cost is read from the hash).
pub fn verify(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Spend the time of one verification at `cost` and fail (the user does not exist).
pub fn verify_unknown(password: &str, cost: Cost) -> bool {
    static DUMMY: OnceLock<(Cost, String)> = OnceLock::new();
    let (dummy_cost, phc) = DUMMY.get_or_init(|| (cost, hash("unknown user", cost)));
    let phc = if *dummy_cost == cost {
        phc.clone()
    } else {
        hash("unknown user", cost)
    };
    let _ = verify(password, &phc);
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHEAP: Cost = Cost {
        memory_kib: 64,
        iterations: 1,
        lanes: 1,
    };

    #[test]
    fn hashes_verify_and_carry_their_cost() {
        let h = hash("correct horse", CHEAP);
        assert!(h.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{h}");
        assert!(verify("correct horse", &h));
        assert!(!verify("correct hors", &h));
        assert!(!verify("correct horse", "not a hash"));
        assert_ne!(h, hash("correct horse", CHEAP), "random salt");
        assert!(!verify_unknown("anything", CHEAP));
    }
}
