//! The local spool: records are written here, durably, before anything is
//! sent to S3, and stay until S3 has them.
//!
//! Layout of the spool directory:
//!
//! - `pending/<seq, 20 digits>.json`: a record not yet shipped, its
//!   canonical bytes (exactly the S3 object's body).
//! - `state.json`: `{"last_seq": N, "last_hash": "<hex>", "last_key_id":
//!   "<id>", "shipped_seq": M, "shipped_hash": "<hex>"}`: the sequence
//!   number, chain hash and signing key of the last record appended, and the
//!   last record S3 acknowledged, so all survive restarts even when every
//!   record has been shipped and removed. When it is missing (a new or lost
//!   spool) the daemon recovers the head from S3 ([`Spool::set_head`]).
//!
//! Spooled records are checked before they are shipped ([`Spool::check`]):
//! canonical bytes, sequence number, signature by a configured key, and the
//! chain link to the record before. A record edited on disk is refused, not
//! shipped.
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

use super::record::{
    AuditKey, AuditRecord, GENESIS_HASH, KIND_KEY_ROTATION, Keyring, Verdict, hash, hash_bytes,
    rotation_subject, sign,
};

/// The chain position after the last appended record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpoolState {
    /// The last sequence number used (0: none yet).
    pub last_seq: u64,
    /// The hash of the last record ([`GENESIS_HASH`] when none).
    pub last_hash: String,
    /// The key id that signed the last record (None: none yet, or a state
    /// file written before key ids were kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_key_id: Option<String>,
    /// The last record S3 acknowledged (0: none known).
    #[serde(default)]
    pub shipped_seq: u64,
    /// Its hash ([`GENESIS_HASH`] when none).
    #[serde(default = "genesis")]
    pub shipped_hash: String,
}

fn genesis() -> String {
    GENESIS_HASH.to_string()
}

impl SpoolState {
    fn empty() -> Self {
        SpoolState {
            last_seq: 0,
            last_hash: genesis(),
            last_key_id: None,
            shipped_seq: 0,
            shipped_hash: genesis(),
        }
    }
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
    /// The outcome (None for checkpoints and key rotations).
    pub verdict: Option<Verdict>,
}

/// A spool directory, opened.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    key: AuditKey,
    previous_key: Option<AuditKey>,
    keyring: Keyring,
    state: SpoolState,
    /// Whether `state.json` existed when the spool was opened.
    had_state: bool,
}

/// The file name of record `seq`: 20 digits, then `.json`.
pub fn file_name(seq: u64) -> String {
    format!("{seq:020}.json")
}

impl Spool {
    /// Open (creating if needed) the spool in `dir`, signing with `key`.
    pub fn open(dir: impl Into<PathBuf>, key: AuditKey) -> anyhow::Result<Self> {
        Self::open_with(dir, key, None)
    }

    /// Open the spool, signing with `key`; `previous_key` is the key being
    /// rotated away from (it signs the rotation record, see
    /// [`Spool::rotate_if_needed`]). Spooled records must be signed by one of
    /// the two.
    pub fn open_with(
        dir: impl Into<PathBuf>,
        key: AuditKey,
        previous_key: Option<AuditKey>,
    ) -> anyhow::Result<Self> {
        let dir = dir.into();
        fs::create_dir_all(dir.join("pending"))
            .with_context(|| format!("creating the audit spool {}", dir.display()))?;
        let state_path = dir.join("state.json");
        let (mut state, had_state) = match fs::read(&state_path) {
            Ok(bytes) => (
                serde_json::from_slice::<SpoolState>(&bytes)
                    .with_context(|| format!("reading {}", state_path.display()))?,
                true,
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (SpoolState::empty(), false),
            Err(e) => return Err(e).context(format!("reading {}", state_path.display())),
        };
        let keyring = Keyring::of(
            std::iter::once(key.public_key()).chain(previous_key.iter().map(|k| k.public_key())),
        );
        let mut spool = Spool {
            dir,
            key,
            previous_key,
            keyring,
            state: state.clone(),
            had_state,
        };
        // Repair a crash between a record write and the state update; the
        // record must verify before the chain continues from it.
        if let Some(&(seq, _)) = spool.pending()?.last()
            && seq > state.last_seq
        {
            let record = spool.read(seq)?;
            spool.keyring.verify(&record).map_err(|e| {
                anyhow::anyhow!(
                    "spooled audit record {seq} does not verify ({e}): refusing to continue \
                     the chain from it"
                )
            })?;
            state.last_seq = seq;
            state.last_hash = hash(&record);
            state.last_key_id = Some(record.key_id.clone());
            spool.state = state;
            spool.write_state()?;
        }
        Ok(spool)
    }

    /// Whether the spool had no `state.json` when opened and holds no
    /// record: new, or lost. The chain head must then come from S3.
    pub fn is_fresh(&self) -> bool {
        !self.had_state && self.state.last_seq == 0
    }

    /// Continue the chain after `record` (the head recovered from S3, whose
    /// canonical bytes hash to `record_hash`): it counts as appended and
    /// shipped. Refused when records are spooled.
    pub fn set_head(&mut self, record: &AuditRecord, record_hash: &str) -> anyhow::Result<()> {
        if !self.pending()?.is_empty() {
            bail!("cannot set the chain head: records are spooled");
        }
        self.state = SpoolState {
            last_seq: record.seq,
            last_hash: record_hash.to_string(),
            last_key_id: Some(record.key_id.clone()),
            shipped_seq: record.seq,
            shipped_hash: record_hash.to_string(),
        };
        self.had_state = true;
        self.write_state()
    }

    /// The keys spooled records may be signed by.
    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// When the last record was signed by another key than the configured
    /// one: append a key-rotation record signed by the previous key
    /// (`[audit] previous_signing_key`) naming the new one. Refused when the
    /// previous key is not the one that signed the chain head.
    pub fn rotate_if_needed(&mut self, location: &str) -> anyhow::Result<Option<AuditRecord>> {
        let current = self.key.key_id();
        let Some(last) = self.state.last_key_id.clone() else {
            return Ok(None);
        };
        if last == current || self.state.last_seq == 0 {
            return Ok(None);
        }
        let Some(previous) = self.previous_key.clone() else {
            bail!(
                "the audit chain head (record {}) is signed by key {last}, but the configured \
                 signing key is {current}: to rotate keys, set [audit] previous_signing_key to \
                 the secret of key {last} (it signs the rotation record)",
                self.state.last_seq
            );
        };
        if previous.key_id() != last {
            bail!(
                "the audit chain head (record {}) is signed by key {last}, neither the \
                 signing key {current} nor the previous_signing_key {}",
                self.state.last_seq,
                previous.key_id()
            );
        }
        let entry = Entry {
            run_id: format!("key-rotation-{current}"),
            location: location.to_string(),
            kind: KIND_KEY_ROTATION.to_string(),
            subject: rotation_subject(&previous, &self.key),
            verdict: None,
        };
        self.append_signed(entry, &previous).map(Some)
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
        let key = self.key.clone();
        self.append_signed(entry, &key)
    }

    fn append_signed(&mut self, entry: Entry, key: &AuditKey) -> anyhow::Result<AuditRecord> {
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
        sign(&mut record, key);
        let bytes = record.canonical_bytes();
        write_durably(&self.pending_dir(), &file_name(record.seq), &bytes)?;
        self.state.last_seq = record.seq;
        self.state.last_hash = hash_bytes(&bytes);
        self.state.last_key_id = Some(record.key_id.clone());
        self.write_state()?;
        Ok(record)
    }

    /// Check spooled record `seq` before shipping it: canonical bytes, its
    /// `seq`, a signature by a configured key, and `prev_hash` equal to
    /// `prev_hash` (the hash of record `seq - 1`) when known. Errors say what
    /// is wrong; such a record must not be shipped.
    pub fn check(
        &self,
        seq: u64,
        bytes: &[u8],
        prev_hash: Option<&str>,
    ) -> anyhow::Result<AuditRecord> {
        let refuse = |why: String| {
            anyhow::anyhow!(
                "spooled audit record {seq} ({}) fails verification: {why}; refusing to ship it",
                self.pending_dir().join(file_name(seq)).display()
            )
        };
        let record =
            AuditRecord::from_canonical_bytes(bytes).map_err(|e| refuse(format!("{e:#}")))?;
        if record.seq != seq {
            return Err(refuse(format!("it says seq {}", record.seq)));
        }
        self.keyring
            .verify(&record)
            .map_err(|e| refuse(e.to_string()))?;
        if let Some(expected) = prev_hash
            && record.prev_hash != expected
        {
            return Err(refuse(format!(
                "its prev_hash {} is not the hash of record {} ({expected})",
                record.prev_hash,
                seq - 1
            )));
        }
        Ok(record)
    }

    /// The hash of record `seq - 1` when the spool knows it: the last
    /// shipped record, or a spooled one.
    pub fn known_prev_hash(&self, seq: u64) -> Option<String> {
        if seq == 1 {
            return Some(genesis());
        }
        if self.state.shipped_seq == seq - 1 && self.state.shipped_seq > 0 {
            return Some(self.state.shipped_hash.clone());
        }
        self.read_bytes(seq - 1).ok().map(|b| hash_bytes(&b))
    }

    /// Record that S3 has record `seq` (whose bytes hash to `record_hash`)
    /// and remove it from the spool.
    pub fn mark_shipped(&mut self, seq: u64, record_hash: &str) -> anyhow::Result<()> {
        self.state.shipped_seq = seq;
        self.state.shipped_hash = record_hash.to_string();
        self.write_state()?;
        self.remove(seq)
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
            verdict: Some(Verdict::Pass),
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
            ..SpoolState::empty()
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
