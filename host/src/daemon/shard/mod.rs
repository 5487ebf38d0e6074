//! Static sharding (`vantage daemon --shard i/n`): N replicas share one
//! configuration, and each runs the checks and restore tests whose name
//! hashes to its index, as Prometheus's `hashmod` does with a
//! StatefulSet's ordinal. Every check has exactly one owner, the same on
//! every replica and across restarts: the hash is FNV-1a, stable across
//! processes and versions (std's `DefaultHasher` is neither).
//!
//! Heartbeats stay on shard 0 (their pings must reach one replica: route
//! `/ping` to the pod with ordinal 0).

/// Dynamic sharding over Leases (feature `kubernetes`).
#[cfg(feature = "kubernetes")]
pub mod dynamic;
pub mod rendezvous;

use std::fmt;
use std::str::FromStr;

/// This replica's share: index `i` of `n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This replica's index, `0..n`.
    pub index: u32,
    /// How many replicas share the configuration.
    pub count: u32,
}

impl FromStr for Shard {
    type Err = String;

    /// `i/n`, e.g. `0/3`; a StatefulSet pod name's ordinal works too when
    /// given as `vantage-2/3`.
    fn from_str(s: &str) -> Result<Self, String> {
        let form = || format!("invalid shard {s:?}: write i/n with 0 <= i < n, e.g. 0/3");
        let (i, n) = s.split_once('/').ok_or_else(form)?;
        let i = match i.rsplit_once('-') {
            Some((pod, ordinal)) if !pod.is_empty() => ordinal,
            Some(_) => return Err(form()),
            None => i,
        };
        let index: u32 = i.trim().parse().map_err(|_| form())?;
        let count: u32 = n.trim().parse().map_err(|_| form())?;
        if count == 0 || index >= count {
            return Err(form());
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// FNV-1a, 64 bits (one implementation, in `pace`, for every layer).
pub use crate::pace::stable_hash;

impl Shard {
    /// Whether this replica runs the check (or restore test) `name`.
    pub fn owns(&self, name: &str) -> bool {
        stable_hash(name) % u64::from(self.count) == u64::from(self.index)
    }

    /// Whether this replica serves the heartbeats (shard 0).
    pub fn serves_heartbeats(&self) -> bool {
        self.index == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_with_clear_errors() {
        assert_eq!("2/3".parse(), Ok(Shard { index: 2, count: 3 }));
        assert_eq!("vantage-1/3".parse(), Ok(Shard { index: 1, count: 3 }));
        for bad in ["3/3", "1/0", "x/2", "1", "-1/2"] {
            let err = bad.parse::<Shard>().unwrap_err();
            assert!(err.contains("write i/n"), "{bad}: {err}");
        }
    }

    #[test]
    fn every_check_has_exactly_one_owner_and_the_shares_are_even() {
        let names: Vec<String> = (0..3000).map(|i| format!("check-{i}")).collect();
        for n in 1..=5u32 {
            let shards: Vec<Shard> = (0..n).map(|index| Shard { index, count: n }).collect();
            let mut per = vec![0usize; n as usize];
            for name in &names {
                let owners: Vec<&Shard> = shards.iter().filter(|s| s.owns(name)).collect();
                assert_eq!(owners.len(), 1, "{name} with {n} shards");
                per[owners[0].index as usize] += 1;
            }
            let even = names.len() / n as usize;
            for share in per {
                assert!(
                    share.abs_diff(even) < even / 10 + 20,
                    "{n} shards: {share} vs {even}"
                );
            }
        }
    }

    #[test]
    fn the_hash_is_stable_across_processes_and_versions() {
        // Fixed values: a change of hash would move every check at upgrade.
        assert_eq!(stable_hash(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(stable_hash("a"), 0xaf63_dc4c_8601_ec8c);
    }
}
