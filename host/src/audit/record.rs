//! One audit record: its canonical JSON form, its hash and its Ed25519
//! signature.
//!
//! # Canonical JSON
//!
//! [`canonical_json`] writes a JSON value with the keys of every object
//! sorted (by their UTF-8 bytes, i.e. by code point), recursively, and no
//! whitespace; strings and numbers are written as `serde_json` writes them.
//! The same record therefore always gives the same bytes, whatever the order
//! its fields were built in.
//!
//! # Hash and signature
//!
//! - The *signed bytes* of a record are the canonical JSON of the record
//!   without its `signature` field (`key_id` is signed).
//! - `signature` is the Ed25519 signature of the signed bytes, lowercase hex.
//! - [`hash`] is the lowercase hex SHA-256 of the canonical JSON of the
//!   whole record, signature included: exactly the bytes stored in S3. The
//!   next record's `prev_hash` is that hash; record 1's is 64 zeros.
//!
//! # Keys
//!
//! The signing key is an Ed25519 secret seed of 32 bytes, written as 64 hex
//! digits or as standard base64 (44 characters with padding), surrounding
//! whitespace ignored, read from a secret (`env:VARIABLE` or
//! `file:/path`). A public key file holds the 32-byte public key in the same
//! two encodings ([`AuditKey::public_key_hex`] prints it). `key_id` is the
//! hex of the first 8 bytes of SHA-256(public key).

use std::fmt;
use std::str::FromStr;

use anyhow::{Context, bail};
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::config::SecretSource;

/// The `prev_hash` of record 1: 64 zeros.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The `kind` of a restore-test record.
pub const KIND_RESTORE_TEST: &str = "restore-test";

/// The outcome a record states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Everything the run was to prove was proven.
    Pass,
    /// The run completed and something failed.
    Fail,
    /// The run could not complete.
    Error,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Error => "error",
        })
    }
}

impl FromStr for Verdict {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<Self> {
        match s {
            "pass" => Ok(Verdict::Pass),
            "fail" => Ok(Verdict::Fail),
            "error" => Ok(Verdict::Error),
            _ => bail!("invalid verdict {s:?}: expected pass, fail or error"),
        }
    }
}

/// One audit record, as stored (canonical JSON) in the spool and in S3.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditRecord {
    /// Sequence number, from 1, with no gaps.
    pub seq: u64,
    /// [`hash`] of the previous record; [`GENESIS_HASH`] for record 1.
    pub prev_hash: String,
    /// The id of the run the record is about.
    pub run_id: String,
    /// Where the run happened (the daemon's location label).
    pub location: String,
    /// What was run, e.g. [`KIND_RESTORE_TEST`].
    pub kind: String,
    /// What the run found: for restore tests the backup, the Restore,
    /// timings and RTO, every check's result.
    pub subject: Value,
    /// The outcome.
    pub verdict: Verdict,
    /// The Vantage version that wrote the record.
    pub vantage_version: String,
    /// When the record was written, RFC 3339 UTC.
    pub recorded_at: String,
    /// Hex of the first 8 bytes of SHA-256 of the signing public key.
    pub key_id: String,
    /// Hex Ed25519 signature of [`AuditRecord::signed_bytes`].
    pub signature: String,
}

/// Write `value` as canonical JSON: object keys sorted recursively, no
/// whitespace.
pub fn canonical_json(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                // Writing a string to a Vec cannot fail.
                serde_json::to_writer(&mut *out, k).expect("writing JSON to memory");
                out.push(b':');
                write_canonical(v, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(v, out);
            }
            out.push(b']');
        }
        scalar => serde_json::to_writer(&mut *out, scalar).expect("writing JSON to memory"),
    }
}

impl AuditRecord {
    fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("an audit record is always valid JSON")
    }

    /// The canonical JSON of the whole record: the bytes stored in the spool
    /// and in S3.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        canonical_json(&self.to_value())
    }

    /// The canonical JSON of the record without `signature`: what is signed.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut value = self.to_value();
        if let Value::Object(map) = &mut value {
            map.remove("signature");
        }
        canonical_json(&value)
    }

    /// Parse stored bytes, requiring them to be exactly the record's
    /// canonical JSON (anything else was not written by Vantage).
    pub fn from_canonical_bytes(bytes: &[u8]) -> anyhow::Result<Self> {
        let record: AuditRecord =
            serde_json::from_slice(bytes).context("not an audit record (invalid JSON)")?;
        if record.canonical_bytes() != bytes {
            bail!("the record is valid JSON but not in canonical form (edited by hand?)");
        }
        Ok(record)
    }
}

/// The chain hash of a record: hex SHA-256 of its canonical bytes.
pub fn hash(record: &AuditRecord) -> String {
    hash_bytes(&record.canonical_bytes())
}

/// Hex SHA-256 of `bytes`.
pub fn hash_bytes(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Set `record.key_id` to the key's id and `record.signature` to the
/// signature of the record's signed bytes.
pub fn sign(record: &mut AuditRecord, key: &AuditKey) {
    record.key_id = key.key_id();
    let signature = key.signing.sign(&record.signed_bytes());
    record.signature = hex::encode(signature.to_bytes());
}

/// Why a record's signature does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The record names another key.
    #[error("signed by key {found}, expected key {expected}")]
    WrongKey {
        /// The key id the record names.
        found: String,
        /// The id of the key verified against.
        expected: String,
    },
    /// The signature field is not 64 bytes of hex.
    #[error("the signature is not 128 hex digits")]
    Malformed,
    /// The signature does not match the record's contents.
    #[error("the signature does not match the record (contents changed, or another key)")]
    Mismatch,
}

/// Check `record`'s signature against `public_key`.
pub fn verify(record: &AuditRecord, public_key: &VerifyingKey) -> Result<(), SignatureError> {
    let expected = key_id(public_key);
    if record.key_id != expected {
        return Err(SignatureError::WrongKey {
            found: record.key_id.clone(),
            expected,
        });
    }
    let bytes: [u8; 64] = hex::decode(&record.signature)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or(SignatureError::Malformed)?;
    public_key
        .verify(&record.signed_bytes(), &Signature::from_bytes(&bytes))
        .map_err(|_| SignatureError::Mismatch)
}

/// The key id of a public key: hex of the first 8 bytes of its SHA-256.
pub fn key_id(public_key: &VerifyingKey) -> String {
    hex::encode(&Sha256::digest(public_key.as_bytes())[..8])
}

/// Decode 32 bytes written as 64 hex digits or standard base64.
fn decode_32(text: &str, what: &str) -> anyhow::Result<[u8; 32]> {
    let text = text.trim();
    let bytes = if text.len() == 64 && text.chars().all(|c| c.is_ascii_hexdigit()) {
        hex::decode(text).expect("checked hex")
    } else {
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|_| anyhow::anyhow!("{what} is neither 64 hex digits nor base64"))?
    };
    bytes
        .try_into()
        .map_err(|b: Vec<u8>| anyhow::anyhow!("{what} is {} bytes, expected 32", b.len()))
}

/// Parse a public key written as 64 hex digits or base64 of 32 bytes.
pub fn parse_public_key(text: &str) -> anyhow::Result<VerifyingKey> {
    let bytes = decode_32(text, "the public key")?;
    VerifyingKey::from_bytes(&bytes).context("not a valid Ed25519 public key")
}

/// The Ed25519 key that signs audit records.
#[derive(Clone)]
pub struct AuditKey {
    signing: SigningKey,
}

impl fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the seed.
        f.debug_struct("AuditKey")
            .field("key_id", &self.key_id())
            .finish()
    }
}

impl AuditKey {
    /// The key of a 32-byte secret seed.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        AuditKey {
            signing: SigningKey::from_bytes(&seed),
        }
    }

    /// Parse a seed written as 64 hex digits or base64 of 32 bytes. Errors
    /// never contain the text.
    pub fn parse_seed(text: &str) -> anyhow::Result<Self> {
        Ok(Self::from_seed(decode_32(text, "the audit signing key")?))
    }

    /// Read the seed from a secret (`env:VARIABLE` or `file:/path`).
    pub fn from_secret(source: &SecretSource) -> anyhow::Result<Self> {
        let text = match source {
            SecretSource::Env(var) => std::env::var(var)
                .with_context(|| format!("reading the audit signing key from env:{var}"))?,
            SecretSource::File(path) => std::fs::read_to_string(path).with_context(|| {
                format!("reading the audit signing key from {}", path.display())
            })?,
        };
        Self::parse_seed(&text).with_context(|| format!("the audit signing key ({source})"))
    }

    /// The public key that verifies this key's signatures.
    pub fn public_key(&self) -> VerifyingKey {
        self.signing.verifying_key()
    }

    /// The public key as 64 hex digits (the format of a public key file).
    pub fn public_key_hex(&self) -> String {
        hex::encode(self.public_key().as_bytes())
    }

    /// This key's id (see [`key_id`]).
    pub fn key_id(&self) -> String {
        key_id(&self.public_key())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn sample(key: &AuditKey) -> AuditRecord {
        let mut r = AuditRecord {
            seq: 1,
            prev_hash: GENESIS_HASH.into(),
            run_id: "run-1".into(),
            location: "eu-west".into(),
            kind: KIND_RESTORE_TEST.into(),
            subject: json!({"backup": {"name": "daily-1", "age_s": 3600}, "rto_s": 12.5}),
            verdict: Verdict::Pass,
            vantage_version: "0.1.0".into(),
            recorded_at: "2025-01-02T03:04:05Z".into(),
            key_id: String::new(),
            signature: String::new(),
        };
        sign(&mut r, key);
        r
    }

    fn key(n: u8) -> AuditKey {
        AuditKey::from_seed([n; 32])
    }

    #[test]
    fn canonical_json_is_key_order_independent_and_compact() {
        let a: Value =
            serde_json::from_str(r#"{"b":1,"a":{"y":[1,{"d":2,"c":3}],"x":"s"}}"#).unwrap();
        let b: Value =
            serde_json::from_str(r#"{ "a": {"x": "s", "y": [1, {"c": 3, "d": 2}]}, "b": 1 }"#)
                .unwrap();
        let expected = br#"{"a":{"x":"s","y":[1,{"c":3,"d":2}]},"b":1}"#;
        assert_eq!(canonical_json(&a), expected);
        assert_eq!(canonical_json(&b), expected);
        // Stable: re-parsing the output gives the same bytes.
        let again: Value = serde_json::from_slice(expected).unwrap();
        assert_eq!(canonical_json(&again), expected);
        // Strings are escaped as JSON, non-ASCII kept.
        assert_eq!(
            canonical_json(&json!({"é": "a\"b\n", "Z": 1.5})),
            "{\"Z\":1.5,\"é\":\"a\\\"b\\n\"}".as_bytes()
        );
    }

    #[test]
    fn record_bytes_are_canonical_and_round_trip() {
        let r = sample(&key(1));
        let bytes = r.canonical_bytes();
        assert!(
            bytes.starts_with(b"{\"key_id\":"),
            "{}",
            String::from_utf8_lossy(&bytes)
        );
        assert_eq!(AuditRecord::from_canonical_bytes(&bytes).unwrap(), r);
        assert_eq!(hash(&r), hash_bytes(&bytes));
        // Pretty-printed JSON of the same record is refused.
        let pretty = serde_json::to_vec_pretty(&r).unwrap();
        assert!(AuditRecord::from_canonical_bytes(&pretty).is_err());
        // The signed bytes are the record without its signature.
        assert!(
            !String::from_utf8(r.signed_bytes())
                .unwrap()
                .contains("signature")
        );
    }

    #[test]
    fn sign_and_verify() {
        let k = key(1);
        let r = sample(&k);
        assert_eq!(r.key_id.len(), 16);
        assert_eq!(r.signature.len(), 128);
        verify(&r, &k.public_key()).unwrap();
        // Another key's public key: the key id differs.
        assert!(matches!(
            verify(&r, &key(2).public_key()),
            Err(SignatureError::WrongKey { .. })
        ));
        // A record signed by another key but claiming our key id.
        let mut forged = sample(&key(2));
        forged.key_id = k.key_id();
        assert_eq!(
            verify(&forged, &k.public_key()),
            Err(SignatureError::Mismatch)
        );
        let mut bad = r.clone();
        bad.signature = "zz".into();
        assert_eq!(
            verify(&bad, &k.public_key()),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn tampering_with_any_field_is_detected() {
        let k = key(1);
        let r = sample(&k);
        let h = hash(&r);
        let edits: Vec<fn(&mut AuditRecord)> = vec![
            |r| r.seq = 2,
            |r| r.prev_hash = "1".repeat(64),
            |r| r.run_id.push('x'),
            |r| r.location = "elsewhere".into(),
            |r| r.kind = "other".into(),
            |r| r.subject["rto_s"] = json!(1.0),
            |r| r.subject["backup"]["extra"] = json!(true),
            |r| r.verdict = Verdict::Fail,
            |r| r.vantage_version = "9.9.9".into(),
            |r| r.recorded_at = "2025-01-02T03:04:06Z".into(),
        ];
        for (i, edit) in edits.iter().enumerate() {
            let mut t = r.clone();
            edit(&mut t);
            assert_eq!(
                verify(&t, &k.public_key()),
                Err(SignatureError::Mismatch),
                "edit {i} not detected"
            );
            assert_ne!(hash(&t), h, "edit {i} kept the hash");
        }
    }

    #[test]
    fn seeds_and_public_keys_parse_from_hex_and_base64() {
        let seed = [7u8; 32];
        let hex_seed = hex::encode(seed);
        let b64_seed = base64::engine::general_purpose::STANDARD.encode(seed);
        let a = AuditKey::parse_seed(&format!("{hex_seed}\n")).unwrap();
        let b = AuditKey::parse_seed(&b64_seed).unwrap();
        assert_eq!(a.key_id(), b.key_id());
        let public = parse_public_key(&a.public_key_hex()).unwrap();
        assert_eq!(public, a.public_key());
        let public_b64 =
            base64::engine::general_purpose::STANDARD.encode(a.public_key().as_bytes());
        assert_eq!(parse_public_key(&public_b64).unwrap(), a.public_key());
        let err = AuditKey::parse_seed("abcd").unwrap_err().to_string();
        assert!(!err.contains("abcd"), "{err}");
        assert!(AuditKey::parse_seed(&hex::encode([1u8; 16])).is_err());
        assert!(!format!("{a:?}").contains(&hex_seed));
    }
}
