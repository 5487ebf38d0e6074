//! The local spool: records are written here, durably, before anything is
//! sent to S3, and stay until S3 has them.
//!
//! Layout of the spool directory:
//!
//! - `pending/<seq, 20 digits>.json`: a record not yet shipped, its
//!   canonical bytes (exactly the S3 object's body).
//! - `state.json`: `{"last_seq": N, "last_hash": "<hex>"}`, the sequence
//!   number and chain hash of the last record appended, so both survive
//!   restarts even when every record has been shipped and removed.
//!
//! Every file is written to a temporary name, fsync'd, renamed into place,
//! and the directory fsync'd. A crash between writing a record and updating
//! `state.json` is repaired on [`Spool::open`]: a pending record newer than
//! the state wins. One process at a time owns a spool directory.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::record::{AuditKey, AuditRecord, GENESIS_HASH, Verdict, hash, sign};

/// The chain position after the last appended record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpoolState {
    /// The last sequence number used (0: none yet).
    pub last_seq: u64,
    /// The hash of the last record ([`GENESIS_HASH`] when none).
    pub last_hash: String,
}

/// What a new record says; [`Spool::append`] adds the rest.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The id of the run.
    pub run_id: String,
    /// Where the run happened.
    pub location: String,
    /// What was run, e.g. [`super::record::KIND_RESTORE_TEST`].
    pub kind: String,
    /// What the run found.
    pub subject: Value,
    /// The outcome.
    pub verdict: Verdict,
}

/// A spool directory, opened.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    key: AuditKey,
    state: SpoolState,
}

/// The file name of record `seq`: 20 digits, then `.json`.
pub fn file_name(seq: u64) -> String {
    format!("{seq:020}.json")
}

impl Spool {
    /// Open (creating if needed) the spool in `dir`, signing with `key`.
    pub fn open(dir: impl Into<PathBuf>, key: AuditKey) -> anyhow::Result<Self> {
        let dir = dir.into();
        fs::create_dir_all(dir.join("pending"))
            .with_context(|| format!("creating the audit spool {}", dir.display()))?;
        let state_path = dir.join("state.json");
        let mut state = match fs::read(&state_path) {
            Ok(bytes) => serde_json::from_slice::<SpoolState>(&bytes)
                .with_context(|| format!("reading {}", state_path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => SpoolState {
                last_seq: 0,
                last_hash: GENESIS_HASH.into(),
            },
            Err(e) => return Err(e).context(format!("reading {}", state_path.display())),
        };
        let mut spool = Spool {
            dir,
            key,
            state: state.clone(),
        };
        // Repair a crash between a record write and the state update.
        if let Some(&(seq, _)) = spool.pending()?.last()
            && seq > state.last_seq
        {
            let record = spool.read(seq)?;
            state = SpoolState {
                last_seq: seq,
                last_hash: hash(&record),
            };
            spool.state = state;
            spool.write_state()?;
        }
        Ok(spool)
    }

    /// The spool directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The chain position after the last appended record.
    pub fn state(&self) -> &SpoolState {
        &self.state
    }

    /// Assign the next sequence number and the previous hash to `entry`,
    /// sign it, and write it durably to the spool. Returns the record; it is
    /// shipped later by [`super::s3::S3Sink::ship_pending`].
    pub fn append(&mut self, entry: Entry) -> anyhow::Result<AuditRecord> {
        let mut record = AuditRecord {
            seq: self.state.last_seq + 1,
            prev_hash: self.state.last_hash.clone(),
            run_id: entry.run_id,
            location: entry.location,
            kind: entry.kind,
            subject: entry.subject,
            verdict: entry.verdict,
            vantage_version: env!("CARGO_PKG_VERSION").to_string(),
            recorded_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            key_id: String::new(),
            signature: String::new(),
        };
        sign(&mut record, &self.key);
        let bytes = record.canonical_bytes();
        write_durably(&self.pending_dir(), &file_name(record.seq), &bytes)?;
        self.state = SpoolState {
            last_seq: record.seq,
            last_hash: super::record::hash_bytes(&bytes),
        };
        self.write_state()?;
        Ok(record)
    }

    /// The records waiting to be shipped, `(seq, path)`, in sequence order.
    pub fn pending(&self) -> anyhow::Result<Vec<(u64, PathBuf)>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(self.pending_dir())
            .with_context(|| format!("listing {}", self.pending_dir().display()))?
        {
            let path = entry?.path();
            let Some(seq) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".json"))
                .filter(|n| n.len() == 20)
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue; // temporary files, strays
            };
            out.push((seq, path));
        }
        out.sort();
        Ok(out)
    }

    /// The stored bytes of pending record `seq`.
    pub fn read_bytes(&self, seq: u64) -> anyhow::Result<Vec<u8>> {
        let path = self.pending_dir().join(file_name(seq));
        fs::read(&path).with_context(|| format!("reading {}", path.display()))
    }

    /// Pending record `seq`, parsed.
    pub fn read(&self, seq: u64) -> anyhow::Result<AuditRecord> {
        let bytes = self.read_bytes(seq)?;
        AuditRecord::from_canonical_bytes(&bytes)
            .with_context(|| format!("spooled audit record {seq}"))
    }

    /// Remove pending record `seq` (after S3 has it).
    pub fn remove(&self, seq: u64) -> anyhow::Result<()> {
        let path = self.pending_dir().join(file_name(seq));
        fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        sync_dir(&self.pending_dir())
    }

    fn pending_dir(&self) -> PathBuf {
        self.dir.join("pending")
    }

    fn write_state(&self) -> anyhow::Result<()> {
        let bytes = serde_json::to_vec(&self.state)?;
        write_durably(&self.dir, "state.json", &bytes)
    }
}

/// Write `bytes` to `dir/name` atomically and durably: temporary file,
/// fsync, rename, fsync of the directory.
fn write_durably(dir: &Path, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
    if name.starts_with('.') {
        bail!("invalid spool file name {name:?}");
    }
    let tmp = dir.join(format!(".{name}.tmp"));
    let target = dir.join(name);
    let mut file = fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    drop(file);
    fs::rename(&tmp, &target).with_context(|| format!("renaming to {}", target.display()))?;
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing directory {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::record::{KIND_RESTORE_TEST, verify};
    use serde_json::json;

    fn entry(n: u32) -> Entry {
        Entry {
            run_id: format!("run-{n}"),
            location: "test".into(),
            kind: KIND_RESTORE_TEST.into(),
            subject: json!({"n": n}),
            verdict: Verdict::Pass,
        }
    }

    #[test]
    fn append_chains_signs_and_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let key = AuditKey::from_seed([3; 32]);
        let mut spool = Spool::open(dir.path(), key.clone()).unwrap();
        let r1 = spool.append(entry(1)).unwrap();
        let r2 = spool.append(entry(2)).unwrap();
        assert_eq!((r1.seq, r2.seq), (1, 2));
        assert_eq!(r1.prev_hash, GENESIS_HASH);
        assert_eq!(r2.prev_hash, hash(&r1));
        verify(&r2, &key.public_key()).unwrap();
        assert_eq!(spool.read(2).unwrap(), r2);
        assert_eq!(spool.read_bytes(2).unwrap(), r2.canonical_bytes());
        // Ship (remove) everything, then "restart": the chain continues.
        spool.remove(1).unwrap();
        spool.remove(2).unwrap();
        drop(spool);
        let mut spool = Spool::open(dir.path(), key.clone()).unwrap();
        assert_eq!(spool.state().last_seq, 2);
        let r3 = spool.append(entry(3)).unwrap();
        assert_eq!(r3.seq, 3);
        assert_eq!(r3.prev_hash, hash(&r2));
        assert_eq!(
            spool
                .pending()
                .unwrap()
                .iter()
                .map(|p| p.0)
                .collect::<Vec<_>>(),
            vec![3]
        );
    }

    #[test]
    fn a_crash_before_the_state_update_is_repaired_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let key = AuditKey::from_seed([3; 32]);
        let mut spool = Spool::open(dir.path(), key.clone()).unwrap();
        spool.append(entry(1)).unwrap();
        let r2 = spool.append(entry(2)).unwrap();
        drop(spool);
        // Simulate the crash: the state still says record 1.
        let stale = SpoolState {
            last_seq: 1,
            last_hash: "ab".repeat(32),
        };
        fs::write(
            dir.path().join("state.json"),
            serde_json::to_vec(&stale).unwrap(),
        )
        .unwrap();
        // And a leftover temporary file is ignored.
        fs::write(
            dir.path().join("pending/.00000000000000000003.json.tmp"),
            b"{",
        )
        .unwrap();
        let mut spool = Spool::open(dir.path(), key).unwrap();
        assert_eq!(spool.state().last_seq, 2);
        assert_eq!(spool.state().last_hash, hash(&r2));
        let r3 = spool.append(entry(3)).unwrap();
        assert_eq!((r3.seq, r3.prev_hash.clone()), (3, hash(&r2)));
        assert_eq!(spool.pending().unwrap().len(), 3);
    }

    #[test]
    fn file_names_sort_by_sequence() {
        assert_eq!(file_name(42), "00000000000000000042.json");
        assert!(file_name(9) < file_name(10));
    }
}
