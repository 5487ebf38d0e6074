//! On-disk cache of compiled components, keyed by the component's sha256 and
//! the engine's compatibility hash, so a restart does not recompile.

use std::hash::{Hash, Hasher};
use std::io::Read as _;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

pub use crate::config::DEFAULT_MAX_COMPONENT_SIZE;

/// The largest compiled component read from the cache: 1 GiB. Compiled code
/// is larger than the component; a bigger cache file is ignored (and the
/// component compiled again).
pub const MAX_CACHED_SIZE: u64 = 1 << 30;

/// Why a component file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file could not be opened or read.
    #[error("cannot read component {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file has more bytes than the cap; only the cap (plus one byte)
    /// was read.
    #[error(
        "component {} is larger than the limit of {} (max_component_size): refused \
         without reading further; raise the limit if the component is really this large",
        path.display(),
        format_size(*limit)
    )]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The cap, in bytes.
        limit: u64,
    },
}

/// Read a component file, at most `max` bytes: a larger file (or a device
/// such as `/dev/zero`, whose size metadata says nothing) is refused once
/// `max + 1` bytes have been read, so memory use is bounded by the cap.
pub fn read_component(path: &Path, max: u64) -> Result<Vec<u8>, ReadError> {
    let io = |source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let bytes = read_bounded(file, max).map_err(io)?;
    bytes.ok_or_else(|| ReadError::TooLarge {
        path: path.to_path_buf(),
        limit: max,
    })
}

/// Read all of `reader` if it holds at most `max` bytes; `None` if it holds
/// more (then `max + 1` bytes were read).
fn read_bounded(reader: impl std::io::Read, max: u64) -> std::io::Result<Option<Vec<u8>>> {
    let mut bytes = Vec::new();
    reader.take(max.saturating_add(1)).read_to_end(&mut bytes)?;
    Ok((bytes.len() as u64 <= max).then_some(bytes))
}

/// Whether `bytes` start like a WebAssembly component (magic `\0asm`,
/// component layer), with the reason when not: a core module or not
/// WebAssembly at all. Checks the header only; compiling checks the rest.
pub fn check_component_header(bytes: &[u8]) -> Result<(), String> {
    let is_component = bytes.len() >= 8 && bytes[0..4] == *b"\0asm" && bytes[6..8] == [1, 0];
    if is_component {
        return Ok(());
    }
    let what = if bytes.starts_with(b"\0asm") {
        "it is a core WebAssembly module (wrap it with `wasm-tools component new`)"
    } else {
        "the file is not WebAssembly at all"
    };
    Err(format!(
        "not a WebAssembly component: {what}; build checks for wasm32-wasip2"
    ))
}

/// `64MiB`, `512KiB`, or `1000 bytes`: sizes in the unit they are written in.
pub fn format_size(bytes: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    UNITS
        .iter()
        .find(|(unit, _)| bytes >= *unit && bytes.is_multiple_of(*unit))
        .map(|(unit, name)| format!("{}{name}", bytes / unit))
        .unwrap_or_else(|| format!("{bytes} bytes"))
}

/// The default bound of the compiled-component cache: 2 GiB (a Python or
/// JavaScript component compiles to ~60–100 MB, a Rust one to ~1 MB).
pub const DEFAULT_COMPILED_CACHE_BYTES: u64 = 2 << 30;

/// A directory of `<sha256>-<engine>.cwasm` files, bounded in size: past
/// the bound, the least recently used files are removed after a store (a
/// hit marks a file used).
#[derive(Debug, Clone)]
pub struct ComponentCache {
    dir: Option<PathBuf>,
    max_bytes: u64,
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
        ComponentCache {
            dir,
            max_bytes: DEFAULT_COMPILED_CACHE_BYTES,
        }
    }

    /// The same cache, bounded to `max_bytes` of compiled files.
    pub fn with_max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = max_bytes;
        self
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
        let cached = std::fs::File::open(&path).and_then(|f| read_bounded(f, MAX_CACHED_SIZE));
        if let Ok(Some(compiled)) = cached {
            // SAFETY: the bytes were written by `Component::serialize` of an
            // engine with the same compatibility hash, into a directory this
            // process owns; foreign or corrupt bytes fail the header checks
            // and we recompile.
            match unsafe { Component::deserialize(engine, &compiled) } {
                Ok(c) => {
                    // Used now: the last to be evicted.
                    let _ = std::fs::File::options()
                        .append(true)
                        .open(&path)
                        .and_then(|f| f.set_modified(std::time::SystemTime::now()));
                    return Ok((c, CacheOutcome::Hit, digest));
                }
                Err(e) => tracing::warn!(
                    path = %path.display(),
                    error = %e,
                    "ignoring unusable cached component"
                ),
            }
        }
        let component = Component::new(engine, bytes)?;
        match store(dir, &path, &component) {
            Ok(()) => evict(dir, self.max_bytes, &path),
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot write component cache")
            }
        }
        Ok((component, CacheOutcome::Compiled, digest))
    }
}

/// Remove the least recently used `.cwasm` files of `dir` until the rest
/// fit in `max_bytes`; `keep` (just stored) stays whatever its size.
fn evict(dir: &Path, max_bytes: u64, keep: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut files: Vec<(std::time::SystemTime, u64, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "cwasm"))
        .filter_map(|e| {
            let meta = e.metadata().ok()?;
            Some((meta.modified().ok()?, meta.len(), e.path()))
        })
        .collect();
    let mut total: u64 = files.iter().map(|(_, len, _)| len).sum();
    files.sort();
    for (_, len, path) in files {
        if total <= max_bytes {
            break;
        }
        if path == keep {
            continue;
        }
        match std::fs::remove_file(&path) {
            Ok(()) => {
                total -= len;
                tracing::info!(path = %path.display(), bytes = len, "compiled-component cache: evicted");
            }
            Err(e) => tracing::warn!(path = %path.display(), error = %e, "cannot evict"),
        }
    }
}

fn store(dir: &Path, path: &Path, component: &Component) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, component.serialize()?)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_compiled_cache_evicts_the_least_recently_used_beyond_its_bound() {
        let dir = tempfile::tempdir().unwrap();
        let now = std::time::SystemTime::now();
        let file = |name: &str, age_s: u64| {
            let path = dir.path().join(name);
            std::fs::write(&path, vec![0u8; 1000]).unwrap();
            std::fs::File::options()
                .append(true)
                .open(&path)
                .unwrap()
                .set_modified(now - std::time::Duration::from_secs(age_s))
                .unwrap();
            path
        };
        let oldest = file("a.cwasm", 300);
        let used = file("b.cwasm", 200);
        let newest = file("c.cwasm", 0);
        let other = file("notes.txt", 400);
        evict(dir.path(), 2000, &newest);
        assert!(!oldest.exists(), "the least recently used goes first");
        assert!(used.exists() && newest.exists() && other.exists());
        // The file just stored stays even when it alone is over the bound.
        evict(dir.path(), 500, &newest);
        assert!(!used.exists() && newest.exists());
    }

    #[test]
    fn component_reads_stop_at_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.wasm");
        std::fs::write(&path, vec![7u8; 1000]).unwrap();
        assert_eq!(read_component(&path, 1000).unwrap().len(), 1000);
        let e = read_component(&path, 999).unwrap_err();
        assert!(matches!(e, ReadError::TooLarge { limit: 999, .. }), "{e}");
        assert!(
            e.to_string().contains("larger than the limit of 999 bytes"),
            "{e}"
        );
        // A device without a size: read only up to the cap.
        let e = read_component(Path::new("/dev/zero"), 1 << 20).unwrap_err();
        assert!(
            e.to_string().contains("larger than the limit of 1MiB"),
            "{e}"
        );
        let e = read_component(&dir.path().join("missing.wasm"), 10).unwrap_err();
        assert!(e.to_string().starts_with("cannot read component"), "{e}");
    }

    #[test]
    fn component_headers() {
        assert!(check_component_header(b"\0asm\x0d\0\x01\0rest").is_ok());
        let core = check_component_header(b"\0asm\x01\0\0\0").unwrap_err();
        assert!(core.contains("core WebAssembly module"), "{core}");
        let text = check_component_header(b"#!/bin/sh\necho hi").unwrap_err();
        assert!(text.contains("not WebAssembly at all"), "{text}");
        assert!(check_component_header(b"").is_err());
    }

    #[test]
    fn sizes_are_shown_in_their_unit() {
        assert_eq!(format_size(64 << 20), "64MiB");
        assert_eq!(format_size(512 << 10), "512KiB");
        assert_eq!(format_size(2 << 30), "2GiB");
        assert_eq!(format_size(1000), "1000 bytes");
    }
}
