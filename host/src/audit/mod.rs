//! The tamper-evident audit log of restore tests (and any other run worth
//! proving later).
//!
//! One signed record per run, chained by hash, written first to a local
//! fsync'd spool and then shipped to S3 with conditional writes and Object
//! Lock; `vantage audit verify` walks every object version to find gaps,
//! edits, deletions and bad signatures.
//!
//! - [`record`]: [`AuditRecord`], canonical JSON, hashing, Ed25519 signing.
//! - [`spool`]: the local spool; [`Spool::append`] assigns sequence numbers.
//! - [`s3`]: shipping to S3 ([`S3Sink::ship_pending`]).
//! - [`verify`]: [`verify_log`] and its [`VerifyReport`].
//! - [`log`]: the daemon's audit log: spool, shipper, checkpoints.
//! - the shipper's metrics live with the other metrics, in
//!   [`crate::sinks::audit_metrics`].
//!
//! Typical use: `Spool::open(dir, key)` and `S3Sink::new(config)` at
//! start-up, then `sink.ship_pending(&spool)` (replay); after each run
//! `spool.append(entry)` then `sink.ship_pending(&spool)` — a failed ship
//! leaves the records spooled for the next call.

pub mod log;
pub mod record;
pub mod s3;
pub mod spool;
pub mod verify;

#[cfg(test)]
mod canonical_tests;
#[cfg(test)]
mod spool_tests;

pub use record::{AuditKey, AuditRecord, Keyring, Verdict};
pub use s3::{S3Config, S3Sink};
pub use spool::{Entry, Spool};
pub use verify::{Issue, VerifyReport, verify_log};
