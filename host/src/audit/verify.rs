//! Verifying the audit log as S3 holds it: every version of every object
//! under the prefix (`ListObjectVersions`), so an overwrite or a delete
//! cannot hide behind the current version.
//!
//! Checked, and reported as [`Issue`]s:
//! - that there is a log at all (an empty or wholly deleted log fails);
//! - sequence continuity from 1 to the highest sequence number (gaps);
//! - more than one version of a key (an edit) and delete markers (a
//!   deletion);
//! - each version's bytes: canonical JSON of a record whose `seq` matches
//!   its key, with a valid signature by a key of the [`Keyring`] or a key
//!   introduced by a valid key-rotation record (after which the old key may
//!   sign nothing more);
//! - the hash chain: record N's `prev_hash` is the hash of record N-1's
//!   bytes (the zero hash for record 1);
//! - Object Lock retention on every version (unless not required);
//! - with a maximum age: that the newest checkpoint record is not older.
//!
//! The chain is checked on the *oldest* version of each key: the one written
//! by Vantage and protected by Object Lock.
//!
//! What the chain alone cannot show: records removed from the *end* of the
//! log (by someone allowed to delete object versions: a GOVERNANCE bypass,
//! or after retention expired). The daemon writes a checkpoint record at
//! least every `checkpoint_every`, so a newest checkpoint older than that
//! (plus slack) means records were removed or the daemon stopped writing;
//! [`VerifyOptions::max_age`] turns that into a failure, and the report
//! always states what it could not check.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::Duration;

use super::record::{
    AuditRecord, GENESIS_HASH, KIND_CHECKPOINT, KIND_KEY_ROTATION, Keyring, SignatureError,
    hash_bytes, rotation_new_key,
};
use super::s3::{ObjectVersion, S3Sink};

/// One problem found in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Issue {
    /// No record at all: the log is empty, or was deleted entirely.
    Empty,
    /// Sequence numbers `from..=to` have no object at all.
    Gap {
        /// First missing sequence number.
        from: u64,
        /// Last missing sequence number.
        to: u64,
    },
    /// The key has more than one version: it was overwritten.
    Edited {
        /// The sequence number.
        seq: u64,
        /// How many versions (delete markers excluded).
        versions: usize,
        /// Whether the later versions differ from the first in content.
        changed: bool,
    },
    /// The key has a delete marker: it was deleted (the original version is
    /// still there, or the chain shows a gap).
    Deleted {
        /// The sequence number.
        seq: u64,
    },
    /// A version is not a record Vantage wrote (invalid or non-canonical
    /// JSON, or its `seq` does not match its key).
    Invalid {
        /// The object key.
        key: String,
        /// The version id.
        version_id: String,
        /// What is wrong.
        reason: String,
    },
    /// A version's signature does not verify.
    BadSignature {
        /// The sequence number.
        seq: u64,
        /// The version id.
        version_id: String,
        /// Why.
        reason: SignatureError,
    },
    /// Record `seq`'s `prev_hash` is not the hash of record `seq - 1`.
    ChainBreak {
        /// The sequence number.
        seq: u64,
        /// The hash of the previous record (or the zero hash).
        expected: String,
        /// The record's `prev_hash`.
        found: String,
    },
    /// An object under the prefix whose name is not `<20 digits>.json`.
    UnexpectedObject {
        /// The object key.
        key: String,
    },
    /// A version carries no Object Lock retention: it could be deleted.
    NoRetention {
        /// The sequence number.
        seq: u64,
        /// The version id.
        version_id: String,
    },
    /// A maximum age was asked for and the log has no checkpoint record.
    NoCheckpoint,
    /// The newest checkpoint is older than the maximum age: the newest
    /// records may have been removed (or the daemon stopped writing).
    Stale {
        /// The newest checkpoint's sequence number.
        seq: u64,
        /// Its `recorded_at`.
        at: String,
        /// Its age, seconds.
        age_seconds: u64,
        /// The maximum age, seconds.
        max_age_seconds: u64,
    },
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Issue::Empty => write!(
                f,
                "empty: there is no audit record under the prefix (never written, or the whole log was deleted)"
            ),
            Issue::Gap { from, to } if from == to => write!(f, "gap: record {from} is missing"),
            Issue::Gap { from, to } => write!(f, "gap: records {from} to {to} are missing"),
            Issue::Edited {
                seq,
                versions,
                changed,
            } => write!(
                f,
                "edit: record {seq} has {versions} versions{}",
                if *changed {
                    " with different contents"
                } else {
                    " (same contents rewritten)"
                }
            ),
            Issue::Deleted { seq } => write!(f, "deletion: record {seq} has a delete marker"),
            Issue::Invalid {
                key,
                version_id,
                reason,
            } => write!(f, "invalid: {key} (version {version_id}): {reason}"),
            Issue::BadSignature {
                seq,
                version_id,
                reason,
            } => write!(
                f,
                "bad signature: record {seq} (version {version_id}): {reason}"
            ),
            Issue::ChainBreak {
                seq,
                expected,
                found,
            } => write!(
                f,
                "chain break: record {seq}'s prev_hash is {found}, the previous record hashes to {expected}"
            ),
            Issue::UnexpectedObject { key } => {
                write!(f, "unexpected object {key} under the audit prefix")
            }
            Issue::NoRetention { seq, version_id } => write!(
                f,
                "no retention: record {seq} (version {version_id}) has no Object Lock retention and could be deleted"
            ),
            Issue::NoCheckpoint => write!(
                f,
                "no checkpoint: the log has no checkpoint record, so its age is unknown"
            ),
            Issue::Stale {
                seq,
                at,
                age_seconds,
                max_age_seconds,
            } => write!(
                f,
                "stale: the newest checkpoint (record {seq}, {at}) is {} old, more than --max-age {}: \
                 the newest records may have been removed, or the daemon stopped writing",
                humantime::format_duration(Duration::from_secs(*age_seconds)),
                humantime::format_duration(Duration::from_secs(*max_age_seconds)),
            ),
        }
    }
}

/// How [`verify_log`] verifies.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// The keys that may sign (None: signatures are not checked).
    pub keyring: Option<Keyring>,
    /// Fail when the newest checkpoint is older than this.
    pub max_age: Option<Duration>,
    /// Require Object Lock retention on every version.
    pub require_retention: bool,
}

impl VerifyOptions {
    /// Check signatures with `keyring` and require retention; no maximum
    /// age.
    pub fn new(keyring: Keyring) -> Self {
        VerifyOptions {
            keyring: Some(keyring),
            max_age: None,
            require_retention: true,
        }
    }
}

/// The newest checkpoint of a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Its sequence number.
    pub seq: u64,
    /// When it was written (RFC 3339).
    pub at: String,
    /// Its age when verified, seconds (None: `recorded_at` unreadable).
    pub age_seconds: Option<u64>,
}

/// What [`verify_log`] found.
#[derive(Debug, Clone)]
pub struct VerifyReport {
    /// `s3://bucket/prefix`.
    pub location: String,
    /// The records of the chain (the oldest valid version of each key), by
    /// sequence number.
    pub records: Vec<AuditRecord>,
    /// How many object versions and delete markers were listed.
    pub versions_listed: usize,
    /// The key ids signatures were checked against, keys introduced by
    /// rotation records included (empty: not checked).
    pub key_ids: Vec<String>,
    /// The newest checkpoint record, if any.
    pub newest_checkpoint: Option<Checkpoint>,
    /// The maximum age asked for.
    pub max_age: Option<Duration>,
    /// Whether Object Lock retention was required on every version.
    pub retention_checked: bool,
    /// The problems found, in sequence order.
    pub issues: Vec<Issue>,
}

impl VerifyReport {
    /// Whether the log verifies: no issue at all.
    pub fn is_ok(&self) -> bool {
        self.issues.is_empty()
    }

    /// The highest sequence number present.
    pub fn last_seq(&self) -> Option<u64> {
        self.records.last().map(|r| r.seq)
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let range = match (self.records.first(), self.records.last()) {
            (Some(a), Some(b)) => format!(", seq {} to {}", a.seq, b.seq),
            _ => String::new(),
        };
        writeln!(
            f,
            "audit log {}: {} records{range}, {} object versions listed",
            self.location,
            self.records.len(),
            self.versions_listed
        )?;
        let signatures = if self.key_ids.is_empty() {
            "signatures NOT checked (no public key)".to_string()
        } else {
            format!("signatures checked with key {}", self.key_ids.join(", "))
        };
        let retention = if self.retention_checked {
            "Object Lock retention on every version"
        } else {
            "Object Lock retention NOT checked"
        };
        if self.is_ok() {
            writeln!(
                f,
                "OK: records 1 to {} verify: hashes chained, no gaps, edits or deletions; {signatures}; {retention}",
                self.last_seq().unwrap_or(0)
            )?;
        } else {
            writeln!(
                f,
                "FAILED: {} problem{}; {signatures}; {retention}",
                self.issues.len(),
                if self.issues.len() == 1 { "" } else { "s" }
            )?;
            for issue in &self.issues {
                writeln!(f, "  - {issue}")?;
            }
        }
        match &self.newest_checkpoint {
            Some(c) => writeln!(
                f,
                "newest checkpoint: record {} at {}{}",
                c.seq,
                c.at,
                c.age_seconds
                    .map(|a| format!(
                        " ({} ago)",
                        humantime::format_duration(Duration::from_secs(a))
                    ))
                    .unwrap_or_default()
            )?,
            None => writeln!(f, "newest checkpoint: none")?,
        }
        match (self.max_age, &self.newest_checkpoint) {
            (None, _) => writeln!(
                f,
                "NOT CHECKED: whether records newer than record {} were removed from the end of \
                 the log; pass --max-age (longer than [audit] checkpoint_every) to check",
                self.last_seq().unwrap_or(0)
            ),
            (Some(max), Some(c)) if c.age_seconds.is_some_and(|a| a <= max.as_secs()) => writeln!(
                f,
                "truncation: the newest checkpoint is within --max-age {}; records written after it \
                 (at most that long ago) cannot be proven present",
                humantime::format_duration(max)
            ),
            (Some(_), _) => Ok(()),
        }
    }
}

/// Read every version under the sink's prefix and verify the log (see the
/// module docs).
pub async fn verify_log(sink: &S3Sink, options: &VerifyOptions) -> anyhow::Result<VerifyReport> {
    let mut issues = Vec::new();
    let Read {
        chain,
        others,
        versions_listed,
    } = read_versions(sink, options, &mut issues).await?;
    if chain.is_empty() {
        issues.push(Issue::Empty);
    }
    let trusted = check_chain(sink, &chain, &others, options.keyring.clone(), &mut issues);
    let newest_checkpoint = newest_checkpoint(&chain, options.max_age, &mut issues);
    issues.sort_by_key(issue_seq);
    Ok(VerifyReport {
        location: format!("s3://{}/{}", sink.config().bucket, sink.config().prefix),
        records: chain.into_values().map(|(r, _, _)| r).collect(),
        versions_listed,
        key_ids: trusted.map(|r| r.ids()).unwrap_or_default(),
        newest_checkpoint,
        max_age: options.max_age,
        retention_checked: options.require_retention,
        issues,
    })
}

/// seq -> (record, hash of its bytes, version id): the chain as read.
type Chain = BTreeMap<u64, (AuditRecord, String, String)>;

/// What [`read_versions`] read.
struct Read {
    /// The first readable version of each record.
    chain: Chain,
    /// Later versions of a key: (seq, version id, record).
    others: Vec<(u64, String, AuditRecord)>,
    /// How many object versions the listing returned.
    versions_listed: usize,
}

/// Read every version of every object under the prefix: records that do not
/// parse, sit under the wrong key, lack retention, were deleted or edited
/// are issues.
async fn read_versions(
    sink: &S3Sink,
    options: &VerifyOptions,
    issues: &mut Vec<Issue>,
) -> anyhow::Result<Read> {
    let listed = sink.list_versions().await?;
    let versions_listed = listed.len();
    let mut by_key: BTreeMap<String, Vec<ObjectVersion>> = BTreeMap::new();
    for v in listed {
        by_key.entry(v.key.clone()).or_default().push(v);
    }
    let mut chain = Chain::new();
    // Later versions of a key: (seq, version id, record), checked once the
    // keys are known.
    let mut others: Vec<(u64, String, AuditRecord)> = Vec::new();
    for (key, versions) in by_key {
        let Some(seq) = sink.seq_of_key(&key) else {
            issues.push(Issue::UnexpectedObject { key });
            continue;
        };
        if versions.iter().any(|v| v.delete_marker) {
            issues.push(Issue::Deleted { seq });
        }
        let mut bodies: Vec<Vec<u8>> = Vec::new();
        for v in versions.iter().filter(|v| !v.delete_marker) {
            let bytes = sink.get(&key, Some(&v.version_id)).await?;
            if options.require_retention && sink.retention_of(&key, &v.version_id).await?.is_none()
            {
                issues.push(Issue::NoRetention {
                    seq,
                    version_id: v.version_id.clone(),
                });
            }
            let invalid = |reason: String| Issue::Invalid {
                key: key.clone(),
                version_id: v.version_id.clone(),
                reason,
            };
            match AuditRecord::from_canonical_bytes(&bytes) {
                Err(e) => issues.push(invalid(format!("{e:#}"))),
                Ok(record) if record.seq != seq => {
                    issues.push(invalid(format!("its seq is {}", record.seq)))
                }
                Ok(record) => {
                    if let std::collections::btree_map::Entry::Vacant(slot) = chain.entry(seq) {
                        slot.insert((record, hash_bytes(&bytes), v.version_id.clone()));
                    } else {
                        others.push((seq, v.version_id.clone(), record));
                    }
                }
            }
            bodies.push(bytes);
        }
        if bodies.len() > 1 {
            issues.push(Issue::Edited {
                seq,
                versions: bodies.len(),
                changed: bodies.iter().any(|b| *b != bodies[0]),
            });
        }
    }
    Ok(Read {
        chain,
        others,
        versions_listed,
    })
}

/// Gaps, the hash chain, signatures and key rotations, in order; then the
/// signatures of later versions. Returns the keyring as rotations left it.
fn check_chain(
    sink: &S3Sink,
    chain: &Chain,
    others: &[(u64, String, AuditRecord)],
    mut trusted: Option<Keyring>,
    issues: &mut Vec<Issue>,
) -> Option<Keyring> {
    let mut retired: HashMap<String, (u64, String)> = HashMap::new();
    let mut expected_next = 1;
    let mut prev_hash: Option<String> = Some(GENESIS_HASH.to_string());
    for (&seq, (record, record_hash, version_id)) in chain {
        if seq > expected_next {
            issues.push(Issue::Gap {
                from: expected_next,
                to: seq - 1,
            });
            prev_hash = None; // the previous record is unknown
        }
        if let Some(expected) = &prev_hash
            && *expected != record.prev_hash
        {
            issues.push(Issue::ChainBreak {
                seq,
                expected: expected.clone(),
                found: record.prev_hash.clone(),
            });
        }
        prev_hash = Some(record_hash.clone());
        expected_next = seq + 1;
        if let Some(ring) = &mut trusted {
            let checked = match retired.get(&record.key_id) {
                Some((rotated_at, active)) => Err(SignatureError::RetiredKey {
                    found: record.key_id.clone(),
                    rotated_at: *rotated_at,
                    active: active.clone(),
                }),
                None => ring.verify(record),
            };
            match checked {
                Err(reason) => issues.push(Issue::BadSignature {
                    seq,
                    version_id: version_id.clone(),
                    reason,
                }),
                Ok(()) if record.kind == KIND_KEY_ROTATION => match rotation_new_key(record) {
                    Ok(new_key) => {
                        let new_id = super::record::key_id(&new_key);
                        retired.insert(record.key_id.clone(), (seq, new_id));
                        ring.insert(new_key);
                    }
                    Err(e) => issues.push(Issue::Invalid {
                        key: sink.key(seq),
                        version_id: version_id.clone(),
                        reason: format!("{e:#}"),
                    }),
                },
                Ok(()) => {}
            }
        }
    }
    if let Some(ring) = &trusted {
        for (seq, version_id, record) in others {
            if let Err(reason) = ring.verify(record) {
                issues.push(Issue::BadSignature {
                    seq: *seq,
                    version_id: version_id.clone(),
                    reason,
                });
            }
        }
    }
    trusted
}

/// The newest checkpoint and its age; with `max_age`, a missing or older
/// checkpoint is an issue.
fn newest_checkpoint(
    chain: &Chain,
    max_age: Option<Duration>,
    issues: &mut Vec<Issue>,
) -> Option<Checkpoint> {
    let now = chrono::Utc::now();
    let newest_checkpoint = chain
        .values()
        .rev()
        .find(|(r, _, _)| r.kind == KIND_CHECKPOINT)
        .map(|(r, _, _)| Checkpoint {
            seq: r.seq,
            at: r.recorded_at.clone(),
            age_seconds: chrono::DateTime::parse_from_rfc3339(&r.recorded_at)
                .ok()
                .map(|t| (now - t.with_timezone(&chrono::Utc)).num_seconds().max(0) as u64),
        });
    if let Some(max_age) = max_age {
        match &newest_checkpoint {
            None => issues.push(Issue::NoCheckpoint),
            Some(c) => {
                let age = c.age_seconds.unwrap_or(u64::MAX);
                if age > max_age.as_secs() {
                    issues.push(Issue::Stale {
                        seq: c.seq,
                        at: c.at.clone(),
                        age_seconds: age,
                        max_age_seconds: max_age.as_secs(),
                    });
                }
            }
        }
    }
    newest_checkpoint
}

fn issue_seq(issue: &Issue) -> u64 {
    match issue {
        Issue::Gap { from: seq, .. }
        | Issue::Edited { seq, .. }
        | Issue::Deleted { seq }
        | Issue::BadSignature { seq, .. }
        | Issue::NoRetention { seq, .. }
        | Issue::Stale { seq, .. }
        | Issue::ChainBreak { seq, .. } => *seq,
        Issue::Empty => 0,
        Issue::Invalid { .. } | Issue::UnexpectedObject { .. } | Issue::NoCheckpoint => u64::MAX,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_rendering() {
        let mut report = VerifyReport {
            location: "s3://b/audit/".into(),
            records: vec![],
            versions_listed: 0,
            key_ids: vec!["0011223344556677".into()],
            newest_checkpoint: None,
            max_age: None,
            retention_checked: true,
            issues: vec![],
        };
        assert!(report.is_ok());
        let text = report.to_string();
        assert!(text.contains("OK: records 1 to 0 verify"), "{text}");
        assert!(!text.contains("chain intact"), "{text}");
        assert!(
            text.contains("NOT CHECKED: whether records newer"),
            "{text}"
        );
        report.issues = vec![
            Issue::Gap { from: 3, to: 3 },
            Issue::Edited {
                seq: 2,
                versions: 2,
                changed: true,
            },
            Issue::Deleted { seq: 4 },
        ];
        let text = report.to_string();
        assert!(!report.is_ok());
        assert!(text.contains("FAILED: 3 problems"), "{text}");
        assert!(text.contains("gap: record 3 is missing"), "{text}");
        assert!(
            text.contains("edit: record 2 has 2 versions with different contents"),
            "{text}"
        );
        assert!(text.contains("deletion: record 4"), "{text}");
    }
}
