//! `[registry]`: how checks are pulled from OCI registries (`component =
//! "oci://…"`): which registries may be reached over plain HTTP, and how
//! large the on-disk cache of pulled components may grow.

use serde::Deserialize;
use serde_spanned::Spanned;

use super::raw::SpannedList;

/// The default bound of the pulled-component cache: 1 GiB.
pub const DEFAULT_REGISTRY_CACHE_SIZE: u64 = 1 << 30;

/// `[registry]`, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct RegistryConfig {
    /// Registries (`host[:port]`) reached over plain HTTP. Loopback
    /// registries always are; every other one is HTTPS.
    pub insecure: Vec<String>,
    /// The most bytes the cache of pulled components keeps (least recently
    /// used first out).
    pub cache_size: u64,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            insecure: Vec::new(),
            cache_size: DEFAULT_REGISTRY_CACHE_SIZE,
        }
    }
}

/// `[registry]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRegistry {
    /// `insecure = ["127.0.0.1:5000"]`.
    pub insecure: Option<SpannedList>,
    /// `cache_size = "1GiB"`.
    pub cache_size: Option<Spanned<toml::Value>>,
}
