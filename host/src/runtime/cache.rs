//! On-disk cache of compiled components, keyed by the component's sha256 and
//! the engine's compatibility hash, so a restart does not recompile.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// A directory of `<sha256>-<engine>.cwasm` files.
#[derive(Debug, Clone)]
pub struct ComponentCache {
    dir: Option<PathBuf>,
}

/// How a component was obtained, for logs and benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Loaded precompiled from the cache.
    Hit,
    /// Compiled now (and stored, if the cache is writable).
    Compiled,
}

impl ComponentCache {
    /// A cache in `dir` (created on first store). `None` disables caching.
    pub fn new(dir: Option<PathBuf>) -> Self {
        ComponentCache { dir }
    }

    /// The cache directory, if enabled.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Load `bytes` as a component, from the cache when possible.
    pub fn load(
        &self,
        engine: &Engine,
        bytes: &[u8],
    ) -> anyhow::Result<(Component, CacheOutcome, String)> {
        let digest = hex::encode(Sha256::digest(bytes));
        let Some(dir) = &self.dir else {
            return Ok((
                Component::new(engine, bytes)?,
                CacheOutcome::Compiled,
                digest,
            ));
        };
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let path = dir.join(format!("{digest}-{:016x}.cwasm", hasher.finish()));
        // Read into memory rather than mmap the file: a cache file replaced or
        // truncated while mapped would crash the process (SIGBUS).
        if let Ok(compiled) = std::fs::read(&path) {
            // SAFETY: the bytes were written by `Component::serialize` of an
            // engine with the same compatibility hash, into a directory this
            // process owns; foreign or corrupt bytes fail the header checks
            // and we recompile.
            match unsafe { Component::deserialize(engine, &compiled) } {
                Ok(c) => return Ok((c, CacheOutcome::Hit, digest)),
                Err(e) => tracing::warn!(
                    path = %path.display(),
                    error = %e,
                    "ignoring unusable cached component"
                ),
            }
        }
        let component = Component::new(engine, bytes)?;
        if let Err(e) = store(dir, &path, &component) {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot write component cache");
        }
        Ok((component, CacheOutcome::Compiled, digest))
    }
}

fn store(dir: &Path, path: &Path, component: &Component) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, component.serialize()?)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}
