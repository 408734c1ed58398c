//! The verifier's durable state: users (argon2id password hashes), their factors (sealed OTP
//! secrets with the last used TOTP step or next HOTP counter, hashed single-use recovery codes,
//! push devices) and lockouts. Kept in memory; every change is appended to a journal
//! (`STATE/journal.ndjson`, one JSON operation per line, written before the change is answered)
//! and replayed at start, then compacted into `STATE/state.json`. So a used code stays used
//! and a lockout holds across restarts. No secret is in clear in either file.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::journal::{Journal, Ticket};
use super::otp::Params;

/// Why the state cannot be loaded or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A state file cannot be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A state file holds something else than this version writes.
    #[error(
        "{path}:{line}: {reason} (restore the file from a backup, or move the state directory away to start empty)"
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Line (1-based; 0 for state.json).
        line: usize,
        /// What is wrong, in words that say what to fix.
        reason: String,
    },
}

/// One factor of a user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Factor {
    /// TOTP (RFC 6238).
    Totp {
        /// The seed, sealed ([`super::seal`]).
        sealed: String,
        /// Algorithm, digits, period.
        params: Params,
        /// The last time step accepted (replay protection).
        last_step: Option<u64>,
    },
    /// HOTP (RFC 4226).
    Hotp {
        /// The seed, sealed.
        sealed: String,
        /// Algorithm and digits.
        params: Params,
        /// The next counter expected.
        next: u64,
    },
    /// Single-use recovery codes: SHA-256 (hex) of each, `None` once used.
    Recovery {
        /// The codes' hashes.
        hashes: Vec<Option<String>>,
    },
    /// A push device (simulated in the reference verifier).
    Push {
        /// SHA-256 (hex) of the device's token.
        device: String,
    },
}

impl Factor {
    /// The factor's kind as the canonical schema names it.
    pub fn kind(&self) -> mfascope_core::event::Factor {
        match self {
            Factor::Totp { .. } => mfascope_core::event::Factor::Totp,
            Factor::Hotp { .. } => mfascope_core::event::Factor::Hotp,
            Factor::Recovery { .. } => mfascope_core::event::Factor::RecoveryCode,
            Factor::Push { .. } => mfascope_core::event::Factor::Push,
        }
    }
}

/// One user.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// argon2id PHC string.
    pub password: String,
    /// Factors by id.
    pub factors: BTreeMap<String, Factor>,
    /// Failed second-factor attempts since the last success.
    pub failures: u32,
    /// Locked until this time (epoch ms).
    pub locked_until: Option<i64>,
}

/// The whole state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// Users by name.
    pub users: HashMap<String, User>,
}

/// A change, as journalled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// A new user, or a new password.
    SetPassword {
        /// The user the request named.
        user: String,
        /// argon2id PHC string.
        password: String,
    },
    /// A user deleted, with every factor.
    RemoveUser {
        /// The user the request named.
        user: String,
    },
    /// A factor enrolled (replacing one of the same id).
    AddFactor {
        /// The user the request named.
        user: String,
        /// Factor id.
        id: String,
        /// The factor.
        factor: Factor,
    },
    /// A factor revoked.
    RemoveFactor {
        /// The user the request named.
        user: String,
        /// Factor id.
        id: String,
    },
    /// A TOTP step accepted.
    TotpUsed {
        /// The user the request named.
        user: String,
        /// Factor id.
        id: String,
        /// The step.
        step: u64,
    },
    /// An HOTP counter accepted (the next expected is `next`).
    HotpUsed {
        /// The user the request named.
        user: String,
        /// Factor id.
        id: String,
        /// Next expected counter.
        next: u64,
    },
    /// A recovery code used.
    RecoveryUsed {
        /// The user the request named.
        user: String,
        /// Factor id.
        id: String,
        /// Index of the code.
        index: usize,
    },
    /// A failed second-factor attempt, and the lockout it caused, if any.
    Failed {
        /// The user the request named.
        user: String,
        /// Locked until (epoch ms).
        locked_until: Option<i64>,
    },
    /// A successful second factor: the failure count is reset.
    Succeeded {
        /// The user the request named.
        user: String,
    },
}

impl State {
    /// Apply one change (operations on unknown users or factors change nothing).
    pub fn apply(&mut self, op: &Op) {
        match op {
            Op::SetPassword { user, password } => {
                self.users.entry(user.clone()).or_default().password = password.clone();
            }
            Op::RemoveUser { user } => {
                self.users.remove(user);
            }
            Op::AddFactor { user, id, factor } => {
                if let Some(u) = self.users.get_mut(user) {
                    u.factors.insert(id.clone(), factor.clone());
                }
            }
            Op::RemoveFactor { user, id } => {
                if let Some(u) = self.users.get_mut(user) {
                    u.factors.remove(id);
                }
            }
            Op::TotpUsed { user, id, step } => {
                if let Some(Factor::Totp { last_step, .. }) = self.factor_mut(user, id) {
                    *last_step = Some(last_step.map_or(*step, |s| s.max(*step)));
                }
            }
            Op::HotpUsed { user, id, next } => {
                if let Some(Factor::Hotp { next: n, .. }) = self.factor_mut(user, id) {
                    *n = (*n).max(*next);
                }
            }
            Op::RecoveryUsed { user, id, index } => {
                if let Some(Factor::Recovery { hashes }) = self.factor_mut(user, id)
                    && let Some(h) = hashes.get_mut(*index)
                {
                    *h = None;
                }
            }
            Op::Failed { user, locked_until } => {
                if let Some(u) = self.users.get_mut(user) {
                    u.failures += 1;
                    if locked_until.is_some() {
                        u.locked_until = *locked_until;
                    }
                }
            }
            Op::Succeeded { user } => {
                if let Some(u) = self.users.get_mut(user) {
                    u.failures = 0;
                    u.locked_until = None;
                }
            }
        }
    }

    fn factor_mut(&mut self, user: &str, id: &str) -> Option<&mut Factor> {
        self.users.get_mut(user)?.factors.get_mut(id)
    }
}

/// The state and its journal on disk.
pub struct Store {
    /// The current state.
    pub state: State,
    journal: Arc<Journal>,
}

impl Store {
    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
        move |source| StoreError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// Load `dir` (created when missing): `state.json`, then every journalled change, then
    /// compact both into a fresh `state.json` and an empty journal.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir).map_err(Self::io(dir))?;
        let snapshot = dir.join("state.json");
        let mut state: State = match std::fs::read(&snapshot) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
                path: snapshot.clone(),
                line: 0,
                reason: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => State::default(),
            Err(e) => return Err(Self::io(&snapshot)(e)),
        };
        let journal = dir.join("journal.ndjson");
        match File::open(&journal) {
            Ok(f) => {
                let lines = std::io::BufReader::new(f).lines();
                for (i, line) in lines.enumerate() {
                    let line = line.map_err(Self::io(&journal))?;
                    if line.trim().is_empty() {
                        continue;
                    }
                    match serde_json::from_str::<Op>(&line) {
                        Ok(op) => state.apply(&op),
                        // A torn last line (crash mid-write) was never answered: drop it.
                        Err(e) if e.is_eof() => break,
                        Err(e) => {
                            return Err(StoreError::Corrupt {
                                path: journal.clone(),
                                line: i + 1,
                                reason: e.to_string(),
                            });
                        }
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Self::io(&journal)(e)),
        }
        // Compact: the new snapshot replaces the old one atomically, then the journal empties.
        let tmp = dir.join("state.json.tmp");
        let bytes = serde_json::to_vec(&state).expect("the state serializes");
        let mut f = File::create(&tmp).map_err(Self::io(&tmp))?;
        f.write_all(&bytes).map_err(Self::io(&tmp))?;
        f.sync_all().map_err(Self::io(&tmp))?;
        std::fs::rename(&tmp, &snapshot).map_err(Self::io(&snapshot))?;
        let file = File::create(&journal).map_err(Self::io(&journal))?;
        Ok(Store {
            state,
            journal: Arc::new(Journal::new(journal, file)),
        })
    }

    /// Apply `ops` and queue them for the journal; the caller syncs the ticket (see
    /// [`Store::sync`]) before answering — after releasing its lock on the store, so that
    /// concurrent requests share one write.
    pub fn commit_deferred(&mut self, ops: &[Op]) -> Ticket {
        let mut last = None;
        for op in ops {
            let line = serde_json::to_vec(op).expect("ops serialize");
            last = Some(self.journal.append(&line));
            self.state.apply(op);
        }
        last.unwrap_or(Ticket::NONE)
    }

    /// Apply and journal `ops` now.
    pub fn commit(&mut self, ops: &[Op]) -> Result<(), StoreError> {
        let ticket = self.commit_deferred(ops);
        self.sync(ticket)
    }

    /// Wait until the change of `ticket` is written (callable without the store lock through
    /// [`Store::journal`]).
    pub fn sync(&self, ticket: Ticket) -> Result<(), StoreError> {
        sync(&self.journal, ticket)
    }

    /// The journal, to sync outside the store lock.
    pub fn journal(&self) -> Arc<Journal> {
        self.journal.clone()
    }
}

/// Wait until `ticket` is written to `journal`.
pub fn sync(journal: &Journal, ticket: Ticket) -> Result<(), StoreError> {
    journal.sync(ticket).map_err(|source| StoreError::Io {
        path: journal.path().to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn totp(sealed: &str) -> Factor {
        Factor::Totp {
            sealed: sealed.into(),
            params: Params::default(),
            last_step: None,
        }
    }

    #[test]
    fn changes_survive_a_restart_and_a_torn_last_line() {
        let dir = tempfile::tempdir().unwrap();
        let user = || "alice".to_string();
        {
            let mut s = Store::open(dir.path()).unwrap();
            s.commit(&[
                Op::SetPassword {
                    user: user(),
                    password: "$argon2id$x".into(),
                },
                Op::AddFactor {
                    user: user(),
                    id: "t1".into(),
                    factor: totp("sealed"),
                },
                Op::TotpUsed {
                    user: user(),
                    id: "t1".into(),
                    step: 42,
                },
                Op::Failed {
                    user: user(),
                    locked_until: Some(1_000),
                },
            ])
            .unwrap();
        }
        // A crash mid-write leaves half a line behind.
        let journal = dir.path().join("journal.ndjson");
        let mut text = std::fs::read_to_string(&journal).unwrap();
        text.push_str(r#"{"op":"succeeded","us"#);
        std::fs::write(&journal, text).unwrap();
        let s = Store::open(dir.path()).unwrap();
        let alice = &s.state.users["alice"];
        assert_eq!(alice.locked_until, Some(1_000), "the lockout held");
        assert_eq!(alice.failures, 1);
        assert!(matches!(
            alice.factors["t1"],
            Factor::Totp {
                last_step: Some(42),
                ..
            }
        ));
        assert_eq!(
            std::fs::read_to_string(&journal).unwrap(),
            "",
            "compacted into state.json"
        );
        drop(s);
        let again = Store::open(dir.path()).unwrap();
        assert_eq!(again.state.users["alice"].locked_until, Some(1_000));
    }

    #[test]
    fn a_corrupt_journal_line_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("journal.ndjson"),
            "{\"op\":\"succeeded\",\"user\":\"a\"}\n{\"op\":\"nonsense\"}\n{}\n",
        )
        .unwrap();
        let err = Store::open(dir.path()).err().unwrap().to_string();
        assert!(err.contains("journal.ndjson:2"), "{err}");
    }

    #[test]
    fn steps_and_counters_only_move_forward_and_codes_stay_used() {
        let mut st = State::default();
        st.apply(&Op::SetPassword {
            user: "u".into(),
            password: "p".into(),
        });
        st.apply(&Op::AddFactor {
            user: "u".into(),
            id: "t".into(),
            factor: totp("s"),
        });
        for step in [10, 8] {
            st.apply(&Op::TotpUsed {
                user: "u".into(),
                id: "t".into(),
                step,
            });
        }
        assert!(matches!(
            st.users["u"].factors["t"],
            Factor::Totp {
                last_step: Some(10),
                ..
            }
        ));
        st.apply(&Op::AddFactor {
            user: "u".into(),
            id: "r".into(),
            factor: Factor::Recovery {
                hashes: vec![Some("h0".into()), Some("h1".into())],
            },
        });
        st.apply(&Op::RecoveryUsed {
            user: "u".into(),
            id: "r".into(),
            index: 1,
        });
        assert_eq!(
            st.users["u"].factors["r"],
            Factor::Recovery {
                hashes: vec![Some("h0".into()), None]
            }
        );
        st.apply(&Op::Succeeded { user: "u".into() });
        assert_eq!(st.users["u"].failures, 0);
    }
}
