//! The content-addressed cache of pulled blobs (manifests, configs,
//! component layers): `<root>/sha256/<hex>`, written atomically (a
//! temporary file renamed into place: an interrupted pull leaves no partial
//! blob), verified by sha256 on every read, bounded in size with the least
//! recently used blobs evicted first. `<root>/refs/` remembers the digest
//! each tag last resolved to, so a daemon starts from its cache when the
//! registry is down.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use sha2::{Digest as _, Sha256};
use tracing::{debug, warn};

use crate::RegistryError;
use crate::layout::sha256_digest;
use crate::reference::OciRef;

/// A blob cache rooted at a directory (e.g. `<data_dir>/oci`).
#[derive(Debug)]
pub struct BlobCache {
    root: PathBuf,
    max_bytes: u64,
}

/// Distinguishes the temporary files of concurrent writers in one process.
static TEMP_SEQ: AtomicU64 = AtomicU64::new(0);

impl BlobCache {
    /// A cache in `root` keeping at most `max_bytes` of blobs.
    pub fn new(root: impl Into<PathBuf>, max_bytes: u64) -> BlobCache {
        BlobCache {
            root: root.into(),
            max_bytes,
        }
    }

    /// The cache's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn blob_path(&self, digest: &str) -> Option<PathBuf> {
        let hex = digest.strip_prefix("sha256:")?;
        (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| self.root.join("sha256").join(hex.to_ascii_lowercase()))
    }

    /// The blob with `digest`, if cached and intact. A blob whose bytes no
    /// longer hash to its name is deleted and reported missing.
    pub fn get(&self, digest: &str) -> Option<Vec<u8>> {
        let path = self.blob_path(digest)?;
        let bytes = fs::read(&path).ok()?;
        if sha256_digest(&bytes) != digest.to_ascii_lowercase() {
            warn!(path = %path.display(), "cached blob does not match its digest: removed");
            let _ = fs::remove_file(&path);
            return None;
        }
        // Most recently used: the eviction order.
        if let Ok(f) = fs::File::options().append(true).open(&path) {
            let _ = f.set_modified(SystemTime::now());
        }
        Some(bytes)
    }

    /// Store `bytes` under `digest` (which they must hash to), atomically,
    /// then evict least recently used blobs beyond the size bound.
    pub fn put(&self, digest: &str, bytes: &[u8]) -> Result<(), RegistryError> {
        let actual = sha256_digest(bytes);
        if actual != digest.to_ascii_lowercase() {
            return Err(RegistryError::DigestMismatch {
                what: "blob".into(),
                expected: digest.to_string(),
                actual,
            });
        }
        let path = self
            .blob_path(digest)
            .ok_or_else(|| RegistryError::Layout(format!("unsupported digest {digest:?}")))?;
        self.write_atomically(&path, bytes)?;
        self.evict(&path);
        Ok(())
    }

    fn write_atomically(&self, path: &Path, bytes: &[u8]) -> Result<(), RegistryError> {
        let cache_err = |source: std::io::Error| RegistryError::Cache {
            path: path.to_path_buf(),
            source,
        };
        let dir = path.parent().unwrap_or(&self.root);
        fs::create_dir_all(dir).map_err(cache_err)?;
        let tmp = dir.join(format!(
            ".tmp-{}-{}",
            std::process::id(),
            TEMP_SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let written = (|| {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
            fs::rename(&tmp, path)
        })();
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        written.map_err(cache_err)
    }

    /// Remove least recently used blobs until the cache fits its bound;
    /// `keep` (just written) stays.
    fn evict(&self, keep: &Path) {
        let Ok(entries) = fs::read_dir(self.root.join("sha256")) else {
            return;
        };
        let mut blobs: Vec<(SystemTime, u64, PathBuf)> = entries
            .flatten()
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .filter_map(|e| {
                let m = e.metadata().ok()?;
                Some((m.modified().ok()?, m.len(), e.path()))
            })
            .collect();
        let mut total: u64 = blobs.iter().map(|(_, len, _)| len).sum();
        blobs.sort();
        for (_, len, path) in blobs {
            if total <= self.max_bytes {
                break;
            }
            if path == keep {
                continue;
            }
            if fs::remove_file(&path).is_ok() {
                debug!(path = %path.display(), "evicted from the registry cache");
                total -= len;
            }
        }
    }

    fn ref_path(&self, reference: &OciRef) -> PathBuf {
        let key = OciRef {
            digest: None,
            ..reference.clone()
        }
        .locator();
        self.root
            .join("refs")
            .join(hex::encode(Sha256::digest(key.as_bytes())))
    }

    /// The manifest digest `reference`'s tag last resolved to, if known.
    pub fn resolved(&self, reference: &OciRef) -> Option<String> {
        let text = fs::read_to_string(self.ref_path(reference)).ok()?;
        let digest = text.trim().to_string();
        self.blob_path(&digest).map(|_| digest)
    }

    /// Remember that `reference`'s tag resolved to `digest`.
    pub fn remember(&self, reference: &OciRef, digest: &str) -> Result<(), RegistryError> {
        self.write_atomically(&self.ref_path(reference), digest.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oci_cache_verifies_and_evicts_least_recently_used() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BlobCache::new(dir.path(), 25);
        let blobs: Vec<Vec<u8>> = (0..3u8).map(|i| vec![i; 10]).collect();
        let digests: Vec<String> = blobs.iter().map(|b| sha256_digest(b)).collect();
        cache.put(&digests[0], &blobs[0]).unwrap();
        cache.put(&digests[1], &blobs[1]).unwrap();
        // Use the first again: the second is now the least recently used.
        let old = SystemTime::now() - std::time::Duration::from_secs(60);
        let second = cache.blob_path(&digests[1]).unwrap();
        fs::File::options()
            .append(true)
            .open(&second)
            .unwrap()
            .set_modified(old)
            .unwrap();
        assert_eq!(cache.get(&digests[0]).unwrap(), blobs[0]);
        cache.put(&digests[2], &blobs[2]).unwrap();
        assert!(cache.get(&digests[1]).is_none(), "LRU blob evicted");
        assert!(cache.get(&digests[0]).is_some());
        assert!(cache.get(&digests[2]).is_some());
        // A corrupted blob is not served, and is removed.
        fs::write(cache.blob_path(&digests[0]).unwrap(), b"tampered").unwrap();
        assert!(cache.get(&digests[0]).is_none());
        assert!(!cache.blob_path(&digests[0]).unwrap().exists());
        // Bytes that do not hash to the name are refused.
        assert!(cache.put(&digests[0], b"other").is_err());
        // No temporary file is left behind.
        let leftovers = fs::read_dir(dir.path().join("sha256"))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp"))
            .count();
        assert_eq!(leftovers, 0);
    }
}
