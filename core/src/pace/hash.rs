//! FNV-1a, 64 bits: a hash stable across processes, machines and versions
//! (std's `DefaultHasher` is none of these), for anything replicas or
//! restarts must agree on: which shard owns a check, which remote-write
//! shard carries a series.

use std::hash::Hasher;

/// FNV-1a as a [`Hasher`].
#[derive(Debug, Clone, Copy)]
pub struct StableHasher(u64);

impl Default for StableHasher {
    fn default() -> Self {
        StableHasher(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for StableHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
    }
}

/// FNV-1a of `text`'s bytes.
pub fn stable_hash(text: &str) -> u64 {
    let mut h = StableHasher::default();
    h.write(text.as_bytes());
    h.finish()
}
