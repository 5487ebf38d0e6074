//! Where a check's component comes from: a file, or an OCI registry
//! (`oci://host/repository:tag` or `@sha256:…`). Every command and the
//! daemon fetch components here, so a file and a registry reference behave
//! the same everywhere: read up to `max_component_size`, then compiled by
//! the runtime.
//!
//! A registry reference is resolved once to a manifest digest; what runs,
//! and its `source` in results and logs, is the pinned reference
//! (`oci://…:tag@sha256:…`). Pulled blobs are kept in a content-addressed
//! cache (`<data_dir>/oci`, or the user's cache directory), so a daemon
//! starts from its cache when the registry is down.

use std::path::{Path, PathBuf};

use vantage_registry::{BlobCache, ComponentInfo, OciRef, Pulled, Registry, RegistryOptions};

use crate::config::{ComponentRef, Config, DEFAULT_REGISTRY_CACHE_SIZE, RegistryConfig};
use crate::runtime::LoadedCheck;

/// A component's bytes and where they came from.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The bytes.
    pub bytes: Vec<u8>,
    /// The file path, or the registry reference pinned to its digest.
    pub source: String,
}

/// Fetches components from files and registries.
pub struct Components {
    registry: Registry,
    max_size: u64,
}

impl Components {
    /// Components read up to `max_size` bytes, registries reached as
    /// `registry` says, pulled blobs cached in `cache_dir` (none: no cache).
    pub fn new(registry: &RegistryConfig, max_size: u64, cache_dir: Option<PathBuf>) -> Self {
        let options = RegistryOptions {
            insecure: registry.insecure.clone(),
            max_component_size: max_size,
        };
        let cache = cache_dir.map(|dir| BlobCache::new(dir, registry.cache_size));
        Components {
            registry: Registry::new(options, cache),
            max_size,
        }
    }

    /// As a configuration says: its `[registry]`, `max_component_size`,
    /// and the cache in `<data_dir>/oci` (else the user's cache
    /// directory).
    pub fn for_config(config: &Config) -> Self {
        let dir = config
            .global
            .data_dir
            .as_ref()
            .map(|d| d.join("oci"))
            .or_else(default_cache_dir);
        Self::new(&config.registry, config.global.max_component_size, dir)
    }

    /// For one-shot commands: plain-HTTP `insecure` registries (loopback
    /// ones always are), the user's cache directory unless `no_cache`.
    pub fn for_command(insecure: Vec<String>, max_size: u64, no_cache: bool) -> Self {
        let registry = RegistryConfig {
            insecure,
            cache_size: DEFAULT_REGISTRY_CACHE_SIZE,
        };
        let dir = if no_cache { None } else { default_cache_dir() };
        Self::new(&registry, max_size, dir)
    }

    /// The registry client (for `push` and `inspect`).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The bytes of `component`, read from its file or pulled.
    pub async fn fetch(&self, component: &ComponentRef) -> Result<Fetched, String> {
        match component {
            ComponentRef::Path(path) => self.read(path),
            ComponentRef::Oci(text) => {
                let pulled = self.pull(text).await?;
                Ok(Fetched {
                    source: pulled.reference.to_string(),
                    bytes: pulled.wasm,
                })
            }
        }
    }

    /// Pull a registry reference (`oci://…`).
    pub async fn pull(&self, text: &str) -> Result<Pulled, String> {
        let reference = OciRef::parse(text).map_err(|e| e.to_string())?;
        self.registry
            .pull(&reference)
            .await
            .map_err(|e| format!("cannot pull {reference}: {e}"))
    }

    fn read(&self, path: &Path) -> Result<Fetched, String> {
        let bytes = crate::runtime::cache::read_component(path, self.max_size)
            .map_err(|e| e.to_string())?;
        Ok(Fetched {
            bytes,
            source: path.display().to_string(),
        })
    }
}

/// `component` as a command line gives it: `oci://…` is a registry
/// reference, anything else a file.
pub fn parse_component_arg(text: &str) -> ComponentRef {
    if text.starts_with("oci://") {
        ComponentRef::Oci(text.to_string())
    } else {
        ComponentRef::Path(PathBuf::from(text))
    }
}

/// What a loaded check says about itself, for the artifact's config and
/// annotations.
pub fn component_info(check: &LoadedCheck, title: &str, source: Option<String>) -> ComponentInfo {
    let m = &check.metadata;
    ComponentInfo {
        title: title.to_string(),
        name: m.name.clone(),
        version: m.version.clone(),
        description: m.description.clone(),
        world: check.world().name().to_string(),
        outbound: m.outbound.clone(),
        secrets: m.secrets.clone(),
        config: m
            .config
            .iter()
            .filter_map(|k| serde_json::to_value(k).ok())
            .collect(),
        modes: m.modes.clone(),
        source,
        imports: check.imports.clone(),
        exports: check.exports.clone(),
    }
}

/// `<user cache dir>/oci`.
fn default_cache_dir() -> Option<PathBuf> {
    directories::ProjectDirs::from("dev", "vantage", "vantage").map(|d| d.cache_dir().join("oci"))
}
