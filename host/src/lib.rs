//! Vantage proves, from the outside, that services work and that backups
//! restore, by running checks written as WebAssembly components in a sandbox.
//!
//! Data flows one way:
//! [`config`] → schedule ([`daemon`]) → [`runtime`] (sandboxed, with
//! [`capabilities`] under the outbound [`policy`]) → [`result`] → [`sinks`].
//! Modules form layers, each importing only lower ones (ARCHITECTURE.md;
//! a test enforces it):
//!
//! - bottom: [`units`], [`pace`] (clock, backoff, log limiter), [`bindings`]
//!   (the WIT world), [`policy`], [`result`] (plain result and report data);
//! - [`config`]: `vantage.toml`, parsed and validated;
//! - [`capabilities`]: one module per WIT interface the host provides;
//! - [`runtime`]: the wasmtime engine, component cache, limits and runs;
//! - [`sinks`]: board, metrics, alerts, history, HTTP API and status page;
//! - `audit` and `restore` (cargo feature `restore`, on by default): the
//!   tamper-evident audit log and restore tests of Velero backups;
//! - [`components`]: a check's component from its file or an OCI registry
//!   (`oci://…`, the `vantage-registry` crate);
//! - [`daemon`]: the scheduler that runs checks and restore tests forever;
//! - [`cli`]: the `vantage` command's subcommands.

#![warn(missing_docs)]

#[cfg(feature = "restore")]
pub mod audit;
pub mod cli;
pub mod components;
pub mod daemon;
#[cfg(feature = "kubernetes")]
pub mod kubernetes;
#[cfg(feature = "restore")]
pub mod restore;

pub use vantage_core::{config, pace, policy, result, schema, units};
pub use vantage_runtime::{bindings, capabilities, runtime};
pub use vantage_sinks::sinks;
