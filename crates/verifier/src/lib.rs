//! The reference 2FA verifier: [`engine`] — enrollment, the login flow, push, sessions,
//! replay protection and lockout, each step a canonical event; its building blocks: [`otp`] — HOTP/TOTP exact to RFC 4226 and
//! RFC 6238, with verification windows, replay-safe step tracking and provisioning URIs;
//! [`password`] — argon2id hashes, with equal-time checks for unknown users; [`seal`] — OTP
//! secrets sealed at rest under a key file; [`store`] — users, factors and lockouts in memory,
//! journalled to disk so used codes and lockouts survive restarts.

pub mod engine;
pub mod expiring;
pub mod http;
pub mod journal;
pub mod otp;
pub mod password;
pub mod push;
pub mod seal;
pub mod sessions;
pub mod store;
pub mod token;
