//! Vantage's bottom layer: what every other part stands on, with no
//! runtime in it.
//!
//! - [`config`]: `vantage.toml`, parsed and validated into plain data;
//! - [`result`]: check results, run records, restore reports, verdicts;
//! - [`policy`]: the outbound allow list and `{target}` expansion;
//! - [`schema`]: the typed configuration keys a check declares;
//! - [`pace`]: the clock, backoff with jitter, the log limiter;
//! - [`units`]: human-readable quantities.
//!
//! The `vantage` crate re-exports every module under the same name, so
//! `vantage::config` is this crate's [`config`].

#![warn(missing_docs)]

pub mod config;
pub mod pace;
pub mod policy;
pub mod result;
pub mod schema;
pub mod units;
