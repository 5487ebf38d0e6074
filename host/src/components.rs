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

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use vantage_registry::{
    BlobCache, ComponentInfo, OciRef, PublicKey, Pulled, Registry, RegistryOptions, VerifyPolicy,
};

use crate::config::{ComponentRef, Config, RegistryConfig};
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
    /// The lock file's pins (reference as written → manifest digest), when
    /// the configuration has one: tags are then never resolved. An
    /// unreadable lock file fails every tag with its reason.
    lock: Option<(PathBuf, Result<Pins, String>)>,
    /// Why `[registry]` cannot be used (a key or CA file that does not
    /// parse): every registry reference fails with it, files still load.
    unusable: Option<String>,
    /// Resolve tags the lock does not pin instead of refusing them.
    re_resolve: bool,
}

/// A lock file's pins: each `oci://` reference as written → the manifest
/// digest it runs at.
pub type Pins = BTreeMap<String, String>;

impl Components {
    /// Components read up to `max_size` bytes, registries reached as
    /// `registry` says, pulled blobs cached in `cache_dir` (none: no cache).
    pub fn new(registry: &RegistryConfig, max_size: u64, cache_dir: Option<PathBuf>) -> Self {
        let mut options = RegistryOptions::new(registry.insecure.clone(), max_size);
        let unusable = registry_options(registry, &mut options).err();
        let cache = cache_dir.map(|dir| BlobCache::new(dir, registry.cache_size));
        Components {
            registry: Registry::new(options, cache),
            max_size,
            lock: None,
            unusable,
            re_resolve: false,
        }
    }

    /// With `yes`, a tag the lock file does not pin is resolved (and
    /// logged with its digest) instead of refused as stale.
    pub fn re_resolving(mut self, yes: bool) -> Self {
        self.re_resolve = yes;
        self
    }

    /// Pin registry references by the lock file at `path` (see
    /// [`read_lock`]); a tag it does not pin is then refused as stale.
    pub fn with_lock(mut self, path: PathBuf, pins: BTreeMap<String, String>) -> Self {
        self.lock = Some((path, Ok(pins)));
        self
    }

    /// As a configuration says: its `[registry]`, `max_component_size`,
    /// the cache in `<data_dir>/oci` (else the user's cache directory), and
    /// its lock file when there is one (`vantage.lock` beside
    /// `vantage.toml`).
    pub fn for_config(config: &Config) -> Self {
        let dir = config
            .global
            .data_dir
            .as_ref()
            .map(|d| d.join("oci"))
            .or_else(default_cache_dir);
        let mut components = Self::new(&config.registry, config.global.max_component_size, dir);
        let path = lock_path(&config.source);
        components.lock = match read_lock(&path) {
            Ok(Some(pins)) => Some((path, Ok(pins))),
            Ok(None) => None,
            Err(e) => Some((path, Err(e))),
        };
        components
    }

    /// For one-shot commands: `registry` as the command line gives it, the
    /// user's cache directory unless `no_cache`.
    pub fn for_command(registry: &RegistryConfig, max_size: u64, no_cache: bool) -> Self {
        let dir = if no_cache { None } else { default_cache_dir() };
        Self::new(registry, max_size, dir)
    }

    /// The registry client (for `push` and `inspect`).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Why `[registry]` cannot be used (a key or CA file that does not
    /// parse), if so.
    pub fn unusable(&self) -> Option<&str> {
        self.unusable.as_deref()
    }

    /// Report layer transfers to `progress` (the `push` and `pull` bars).
    pub fn with_progress(
        mut self,
        progress: std::sync::Arc<dyn vantage_registry::Progress>,
    ) -> Self {
        self.registry = self.registry.with_progress(progress);
        self
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

    /// Fetch `component` and load it in `runtime` (compiled, or taken from
    /// the compiled-component cache); the error names the source.
    pub async fn load(
        &self,
        runtime: &crate::runtime::Runtime,
        component: &ComponentRef,
    ) -> Result<LoadedCheck, String> {
        let fetched = self.fetch(component).await?;
        runtime
            .load_bytes(&fetched.source, &fetched.bytes)
            .await
            .map_err(|e| format!("cannot load {}: {e:#}", fetched.source))
    }

    /// Pull a registry reference (`oci://…`); with a lock file, a tag is
    /// taken at the digest it pins.
    pub async fn pull(&self, text: &str) -> Result<Pulled, String> {
        if let Some(why) = &self.unusable {
            return Err(format!("cannot pull {text}: {why}"));
        }
        let mut reference = OciRef::parse(text).map_err(|e| e.to_string())?;
        if reference.digest.is_none()
            && let Some((path, pins)) = &self.lock
        {
            let pins = pins.as_ref().map_err(Clone::clone)?;
            match pins.get(text) {
                Some(digest) => reference = reference.pinned(digest),
                None if self.re_resolve => {
                    let digest = self
                        .registry
                        .resolve(&reference)
                        .await
                        .map_err(|e| format!("cannot resolve {reference}: {e}"))?;
                    tracing::warn!(
                        reference = %text, %digest, lock = %path.display(),
                        "not pinned in the lock file: resolved (--re-resolve); run `vantage lock` to pin it"
                    );
                    reference = reference.pinned(&digest);
                }
                None => {
                    return Err(format!(
                        "{text} is not pinned in {} (the lock is stale): run `vantage lock` to \
                         pin it, or start the daemon with --re-resolve",
                        path.display()
                    ));
                }
            }
        }
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

/// The CA bundles and signature policy `registry` names, read and parsed
/// into `options`; the first file that cannot be used.
fn registry_options(
    registry: &RegistryConfig,
    options: &mut RegistryOptions,
) -> Result<(), String> {
    for (host, path) in &registry.ca {
        let pem = std::fs::read(path)
            .map_err(|e| format!("[registry] ca: cannot read {}: {e}", path.display()))?;
        options.ca_bundles.insert(host.clone(), pem);
    }
    let keys = |paths: &[PathBuf]| -> Result<Vec<PublicKey>, String> {
        paths
            .iter()
            .map(|p| PublicKey::from_file(p).map_err(|e| format!("[registry.verify]: {e}")))
            .collect()
    };
    let verify = &registry.verify;
    options.verify = VerifyPolicy {
        require: verify.require,
        keys: keys(&verify.keys)?,
        rules: verify
            .rules
            .iter()
            .map(|r| Ok((r.prefix.clone(), keys(&r.keys)?)))
            .collect::<Result<_, String>>()?,
    };
    Ok(())
}

/// The lock file of the configuration at `config`: `vantage.lock` beside
/// `vantage.toml` (the same name, extension `lock`).
pub fn lock_path(config: &Path) -> PathBuf {
    config.with_extension("lock")
}

/// The pins of the lock file at `path` (`None` when there is none).
pub fn read_lock(path: &Path) -> Result<Option<BTreeMap<String, String>>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    #[derive(serde::Deserialize)]
    struct LockFile {
        #[serde(default)]
        components: BTreeMap<String, String>,
    }
    let lock: LockFile =
        toml::from_str(&text).map_err(|e| format!("{}: {}", path.display(), e.message()))?;
    for (reference, digest) in &lock.components {
        let ok = digest
            .strip_prefix("sha256:")
            .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
        if !ok {
            return Err(format!(
                "{}: {reference:?} is pinned to {digest:?}, not sha256:<64 hex digits>",
                path.display()
            ));
        }
    }
    Ok(Some(lock.components))
}

/// Write the lock file at `path`, atomically.
pub fn write_lock(path: &Path, pins: &BTreeMap<String, String>) -> std::io::Result<()> {
    let mut text = String::from(
        "# Written by `vantage lock`: every oci:// component of the configuration, pinned to\n\
         # the manifest digest it resolved to. The daemon takes tags at these digests and\n\
         # refuses one that is not here; `vantage lock --update CHECK` moves one.\n\n[components]\n",
    );
    for (reference, digest) in pins {
        text.push_str(&format!("{reference:?} = {digest:?}\n"));
    }
    let tmp = path.with_extension(format!("lock.part-{}", std::process::id()));
    std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, path))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_file_round_trips_and_refuses_a_bad_digest() {
        let dir = tempfile::tempdir().unwrap();
        let path = lock_path(&dir.path().join("vantage.toml"));
        assert_eq!(path, dir.path().join("vantage.lock"));
        assert_eq!(read_lock(&path), Ok(None));
        let pins = BTreeMap::from([(
            "oci://127.0.0.1:5000/vantage/http:1.2.0".to_string(),
            format!("sha256:{}", "ab".repeat(32)),
        )]);
        write_lock(&path, &pins).unwrap();
        assert_eq!(read_lock(&path), Ok(Some(pins)));
        std::fs::write(&path, "[components]\n\"oci://x.io/a:1\" = \"md5:00\"\n").unwrap();
        let e = read_lock(&path).unwrap_err();
        assert!(e.contains("not sha256:<64 hex digits>"), "{e}");
    }
}
