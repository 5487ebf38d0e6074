//! Vantage's OCI registry client: `oci://` references, the CNCF
//! TAG-Runtime Wasm artifact layout, push and pull by digest (checked
//! against it, capped in size), credentials from the Docker config, and a
//! content-addressed on-disk cache of what was pulled.
//!
//! It knows nothing of checks beyond the [`ComponentInfo`] its caller fills
//! in; the `vantage` binary uses it for `push`, `pull`, `inspect oci://`,
//! `run oci://` and `component = "oci://…"` in the daemon.

#![warn(missing_docs)]

mod auth;
pub mod cache;
mod client;
mod error;
pub mod layout;
pub mod reference;
pub mod signature;

pub use cache::BlobCache;
pub use client::{Inspected, Progress, Pulled, Registry, RegistryOptions, Signed};
pub use error::RegistryError;
pub use layout::ComponentInfo;
pub use reference::OciRef;
pub use signature::{PublicKey, SigningKey, Verified, VerifyPolicy};
