//! Vantage proves, from the outside, that services work and that backups
//! restore, by running checks written as WebAssembly components in a sandbox.
//!
//! Data flows one way:
//! [`config`] → schedule → [`runtime`] (sandboxed, with [`capabilities`] under
//! the outbound [`policy`]) → [`result`] → sinks.
//!
//! - [`config`]: `vantage.toml`, parsed and validated.
//! - [`policy`]: the outbound allow list every capability enforces.
//! - [`runtime`]: the wasmtime engine, component cache, limits and runs.
//! - [`capabilities`]: one module per WIT interface the host provides.
//! - [`result`]: [`result::CheckResult`], the one result type.
//! - [`daemon`]: the scheduler that runs checks forever.
//! - [`sinks`]: metrics, alerts, history, HTTP API and status page.
//! - [`cli`]: the `vantage` command's subcommands.
//! - [`audit`]: the tamper-evident audit log (signed, chained records on S3).

#![warn(missing_docs)]

pub mod audit;
pub mod capabilities;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod policy;
pub mod restore;
pub mod result;
pub mod runtime;
pub mod sinks;
pub mod units;
