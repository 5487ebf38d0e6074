//! What can go wrong between Vantage and a registry, each in words that say
//! what to do about it.

use std::path::PathBuf;

/// A registry, layout, digest or cache error.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The text is not an `oci://` reference.
    #[error("invalid registry reference {reference:?}: {reason}")]
    InvalidReference {
        /// The text as written.
        reference: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The artifact is not a single-layer Wasm component artifact.
    #[error("not a Wasm component artifact: {0}")]
    Layout(String),
    /// Bytes that do not hash to the digest that names them.
    #[error("{what} does not match its digest: expected {expected}, got {actual}")]
    DigestMismatch {
        /// What was checked (`the manifest`, `the component layer`).
        what: String,
        /// The digest that names it.
        expected: String,
        /// The digest of the bytes received.
        actual: String,
    },
    /// Larger than allowed, refused before (or while) pulling.
    #[error("{what} is {size} bytes, larger than the limit of {cap} bytes")]
    TooLarge {
        /// What is too large.
        what: String,
        /// Its size, as claimed or as read so far.
        size: u64,
        /// The limit.
        cap: u64,
    },
    /// The registry refused the credentials (or asked for some).
    #[error(
        "registry {registry} refused access to {repository} (401/403): {looked}; log in with \
         `docker login {registry}` or set REGISTRY_AUTH_FILE"
    )]
    Unauthorized {
        /// `host[:port]`.
        registry: String,
        /// The repository.
        repository: String,
        /// Where credentials were looked for, and what was found.
        looked: String,
    },
    /// The reference is not in the registry.
    #[error("{reference} is not in the registry: {detail}")]
    NotFound {
        /// The reference.
        reference: String,
        /// The registry's words.
        detail: String,
    },
    /// The registry could not be reached or answered with an error.
    #[error("registry {registry}: {detail}")]
    Registry {
        /// `host[:port]`.
        registry: String,
        /// What happened.
        detail: String,
    },
    /// The signature policy refuses the component.
    #[error("{reference} is refused: {detail}")]
    Signature {
        /// The pinned reference.
        reference: String,
        /// Why (unsigned, signed by another key, no key configured).
        detail: String,
    },
    /// The on-disk cache could not be written.
    #[error("registry cache {}: {source}", path.display())]
    Cache {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}
