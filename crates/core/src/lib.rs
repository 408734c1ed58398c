//! The bottom layer of mfascope: the canonical 2FA event ([`event`]: vocabulary, row type, Arrow
//! schema and builder), event time ([`time`]), the contract every consumer of canonical batches
//! implements ([`observe`]), the canonical support ticket ([`ticket`]), attack traffic as the
//! SLO path sees it ([`attack`]), poison-tolerant locking ([`sync`]) and the allocator's release
//! hook ([`memory`]).
//!
//! Every other crate depends on this one; it depends on none of them, and holds no I/O, no
//! threads and no engine: only the shapes the layers above agree on.

pub mod attack;
pub mod event;
pub mod finding;
pub mod memory;
pub mod observe;
pub mod secret;
pub mod sync;
pub mod ticket;
pub mod time;
