//! `[registry]`: how checks are pulled from OCI registries (`component =
//! "oci://…"`): which registries may be reached over plain HTTP, which CA
//! certificates a registry's TLS chains to, how large the on-disk cache of
//! pulled components may grow, and (`[registry.verify]`) which keys must
//! have signed what runs.

use std::collections::BTreeMap;
use std::path::PathBuf;

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
    /// Extra CA certificates (a PEM file) per registry (`host[:port]`),
    /// trusted beside the system's roots. A loopback registry with a CA
    /// bundle is reached over HTTPS.
    pub ca: BTreeMap<String, PathBuf>,
    /// `[registry.verify]`: the signature policy.
    pub verify: VerifyConfig,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            insecure: Vec::new(),
            cache_size: DEFAULT_REGISTRY_CACHE_SIZE,
            ca: BTreeMap::new(),
            verify: VerifyConfig::default(),
        }
    }
}

/// `[registry.verify]`, validated: which public keys (PEM files) are
/// trusted to have signed which components. A component is accepted when
/// any one of the keys for its reference signed its manifest digest.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VerifyConfig {
    /// Refuse components that no trusted key signed (otherwise they run
    /// with a warning).
    pub require: bool,
    /// The keys for every reference no rule matches.
    pub keys: Vec<PathBuf>,
    /// `[[registry.verify.rule]]`: per reference prefix
    /// (`registry.example.com/vantage/`), the keys for it; the longest
    /// matching prefix wins.
    pub rules: Vec<VerifyRule>,
}

/// One `[[registry.verify.rule]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifyRule {
    /// `host[:port]/repository-prefix`, without `oci://`.
    pub prefix: String,
    /// The public keys (PEM files).
    pub keys: Vec<PathBuf>,
}

/// `[registry]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRegistry {
    /// `insecure = ["127.0.0.1:5000"]`.
    pub insecure: Option<SpannedList>,
    /// `cache_size = "1GiB"`.
    pub cache_size: Option<Spanned<toml::Value>>,
    /// `ca = { "registry.example.com" = "ca.pem" }`.
    pub ca: Option<Spanned<BTreeMap<String, Spanned<String>>>>,
    /// `[registry.verify]`.
    pub verify: Option<Spanned<RawVerify>>,
}

/// `[registry.verify]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawVerify {
    /// `require = true`.
    pub require: Option<Spanned<bool>>,
    /// `keys = ["keys/team.pub"]`.
    pub keys: Option<SpannedList>,
    /// `[[registry.verify.rule]]`.
    pub rule: Option<Vec<Spanned<RawVerifyRule>>>,
}

/// `[[registry.verify.rule]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawVerifyRule {
    /// `prefix = "registry.example.com/vantage/"`.
    pub prefix: Option<Spanned<String>>,
    /// `keys = ["keys/vantage-release.pub"]`.
    pub keys: Option<SpannedList>,
}
