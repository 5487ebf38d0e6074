//! Where Vantage's results go: the live board, Prometheus metrics, the run
//! history (SQLite), alerts (Alertmanager, webhooks), and the HTTP API and
//! status page.
//!
//! Sinks consume `RunRecord`s (see [`sinks::Sinks::publish`]) and never
//! call back up: they stand on `vantage-core` alone. The `vantage` crate
//! re-exports [`sinks`] under the same name.

#![warn(missing_docs)]

// The core's modules, reachable as `crate::config` and so on, as in the
// `vantage` crate.
use vantage_core::{config, pace, result};

pub mod sinks;
