//! Verifying the audit log as S3 holds it: every version of every object
//! under the prefix (`ListObjectVersions`), so an overwrite or a delete
//! cannot hide behind the current version.
//!
//! Checked, and reported as [`Issue`]s:
//! - sequence continuity from 1 to the highest sequence number (gaps);
//! - more than one version of a key (an edit) and delete markers (a
//!   deletion);
//! - each version's bytes: canonical JSON of a record whose `seq` matches
//!   its key, with a valid signature by the given public key;
//! - the hash chain: record N's `prev_hash` is the hash of record N-1's
//!   bytes (the zero hash for record 1).
//!
//! The chain is checked on the *oldest* version of each key: the one written
//! by Vantage and protected by Object Lock. What this cannot see: records
//! removed from the end of the log by someone allowed to delete object
//! versions (a GOVERNANCE bypass, or after retention expired) — use
//! COMPLIANCE retention, and compare the last sequence number with the
//! spool's `state.json` or the daemon's metrics.

use std::collections::BTreeMap;
use std::fmt;

use ed25519_dalek::VerifyingKey;

use super::record::{AuditRecord, GENESIS_HASH, SignatureError, hash_bytes, key_id, verify};
use super::s3::{ObjectVersion, S3Sink};

/// One problem found in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Issue {
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
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
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
        }
    }
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
    /// The key id signatures were checked against (None: not checked).
    pub key_id: Option<String>,
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
        let signatures = match &self.key_id {
            Some(id) => format!("signatures checked with key {id}"),
            None => "signatures NOT checked (no public key)".to_string(),
        };
        if self.is_ok() {
            writeln!(
                f,
                "OK: chain intact, no gaps, edits or deletions; {signatures}"
            )
        } else {
            writeln!(
                f,
                "FAILED: {} problem{}; {signatures}",
                self.issues.len(),
                if self.issues.len() == 1 { "" } else { "s" }
            )?;
            for issue in &self.issues {
                writeln!(f, "  - {issue}")?;
            }
            Ok(())
        }
    }
}

/// Read every version under the sink's prefix and verify the chain (and the
/// signatures, when `public_key` is given).
pub async fn verify_log(
    sink: &S3Sink,
    public_key: Option<&VerifyingKey>,
) -> anyhow::Result<VerifyReport> {
    let listed = sink.list_versions().await?;
    let versions_listed = listed.len();
    let mut by_key: BTreeMap<String, Vec<ObjectVersion>> = BTreeMap::new();
    for v in listed {
        by_key.entry(v.key.clone()).or_default().push(v);
    }
    let mut issues = Vec::new();
    // seq -> (record, hash of its bytes) of the chain.
    let mut chain: BTreeMap<u64, (AuditRecord, String)> = BTreeMap::new();
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
                    if let Some(pk) = public_key
                        && let Err(reason) = verify(&record, pk)
                    {
                        issues.push(Issue::BadSignature {
                            seq,
                            version_id: v.version_id.clone(),
                            reason,
                        });
                    }
                    chain
                        .entry(seq)
                        .or_insert_with(|| (record, hash_bytes(&bytes)));
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
    // Gaps and the hash chain.
    let mut expected_next = 1;
    let mut prev_hash: Option<String> = Some(GENESIS_HASH.to_string());
    for (&seq, (record, record_hash)) in &chain {
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
    }
    issues.sort_by_key(issue_seq);
    Ok(VerifyReport {
        location: format!("s3://{}/{}", sink.config().bucket, sink.config().prefix),
        records: chain.into_values().map(|(r, _)| r).collect(),
        versions_listed,
        key_id: public_key.map(key_id),
        issues,
    })
}

fn issue_seq(issue: &Issue) -> u64 {
    match issue {
        Issue::Gap { from: seq, .. }
        | Issue::Edited { seq, .. }
        | Issue::Deleted { seq }
        | Issue::BadSignature { seq, .. }
        | Issue::ChainBreak { seq, .. } => *seq,
        Issue::Invalid { .. } | Issue::UnexpectedObject { .. } => u64::MAX,
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
            key_id: Some("0011223344556677".into()),
            issues: vec![],
        };
        assert!(report.is_ok());
        assert!(report.to_string().contains("OK: chain intact"));
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
