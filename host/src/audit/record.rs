//! One audit record: its canonical JSON form, its hash and its Ed25519
//! signature.
//!
//! # Canonical JSON
//!
//! [`canonical_json`] writes a JSON value in the form of RFC 8785 (the JSON
//! Canonicalization Scheme, JCS): no whitespace, the keys of every object
//! sorted by their UTF-16 code units, recursively, strings escaped as
//! ECMAScript's `JSON.stringify` escapes them, and numbers written as
//! ECMAScript writes an IEEE 754 double (`1` not `1.0`, `1e+21`, `1e-7`,
//! shortest round-trip digits). Any JCS implementation in another language
//! therefore gives the same bytes for the same record.
//!
//! One step more than JCS: a number is written in the form that reads back
//! as itself through the JSON parser the verifier uses (serde_json's default
//! parser is not correctly rounded for every 17-digit float; such a value
//! is replaced by the nearest one that is, at most a few units in the last
//! place away). So re-canonicalising stored bytes always gives the same
//! bytes: every record the daemon writes verifies.
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
//! `file:/path`; a file must not be readable by group or others). A public
//! key file holds one or more 32-byte public keys in the same two encodings,
//! one a line ([`AuditKey::public_key_hex`] prints one; a [`Keyring`] reads
//! several). `key_id` is the hex of the first 8 bytes of SHA-256(public
//! key). A key is replaced by a [`KIND_KEY_ROTATION`] record signed by the
//! old key that names the new one.

use std::fmt;

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

/// The `kind` of a checkpoint: written at start-up and on a fixed cadence
/// even without verdicts, so that a log whose newest records were removed
/// shows a stale newest checkpoint (`vantage audit verify --max-age`). Its
/// subject is `{"head_seq": N, "head_hash": "<hash of record N>",
/// "reason": "startup"|"interval"|"shutdown", "every_seconds": S}`; it has
/// no verdict.
pub const KIND_CHECKPOINT: &str = "checkpoint";

/// The `kind` of a key rotation: signed by the old key, its subject names
/// the new one (`{"old_key_id", "new_key_id", "new_public_key"}`); every
/// later record is signed by the new key. It has no verdict.
pub const KIND_KEY_ROTATION: &str = "key-rotation";

pub use crate::result::Verdict;

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
    /// The outcome; None for records that state none (checkpoints, key
    /// rotations), and then absent from the JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    /// The Vantage version that wrote the record.
    pub vantage_version: String,
    /// When the record was written, RFC 3339 UTC.
    pub recorded_at: String,
    /// Hex of the first 8 bytes of SHA-256 of the signing public key.
    pub key_id: String,
    /// Hex Ed25519 signature of [`AuditRecord::signed_bytes`].
    pub signature: String,
}

/// Write `value` as canonical JSON (RFC 8785, see the module docs).
pub fn canonical_json(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            // RFC 8785 3.2.3: by UTF-16 code units.
            entries.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
            out.push(b'{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(k, out);
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
        Value::String(s) => write_string(s, out),
        Value::Number(n) => out.extend_from_slice(canonical_number(n).as_bytes()),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Null => out.extend_from_slice(b"null"),
    }
}

/// A JSON string as RFC 8785 3.2.2.2 writes it: `"` and `\\` escaped, the
/// control characters as `\b \t \n \f \r` or `\u00xx` (lowercase hex),
/// everything else as is (UTF-8).
fn write_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\t' => out.extend_from_slice(b"\\t"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            '\r' => out.extend_from_slice(b"\\r"),
            c if (c as u32) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

/// The canonical text of a number: its ECMAScript form, made a fixed point
/// of "parse with serde_json, then write" (see the module docs).
pub fn canonical_number(n: &serde_json::Number) -> String {
    let mut text = es_number(n);
    // serde_json's parser is off by at most a few units in the last place;
    // two rounds reach the fixed point in practice, a few more are cheap.
    for _ in 0..8 {
        let Ok(parsed) = serde_json::from_str::<serde_json::Number>(&text) else {
            break;
        };
        let again = es_number(&parsed);
        if again == text {
            break;
        }
        text = again;
    }
    text
}

/// 2^53: integers up to this magnitude are exact as doubles.
const MAX_EXACT: u64 = 1 << 53;

/// A number as ECMAScript's `Number.prototype.toString` writes the double
/// it denotes (RFC 8785 3.2.2.3).
fn es_number(n: &serde_json::Number) -> String {
    if let Some(u) = n.as_u64()
        && u <= MAX_EXACT
    {
        return u.to_string();
    }
    if let Some(i) = n.as_i64()
        && i.unsigned_abs() <= MAX_EXACT
    {
        return i.to_string();
    }
    es_double(n.as_f64().unwrap_or(0.0))
}

/// ECMAScript's `Number::toString(x)` (ECMA-262 6.1.6.1.20) on ryu's
/// shortest round-trip digits.
pub fn es_double(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        // -0 is "0"; JSON has no NaN or infinities (serde_json writes null
        // for them and never parses them).
        return "0".into();
    }
    let mut buf = ryu::Buffer::new();
    let text = buf.format_finite(x.abs());
    let (mantissa, exp) = match text.split_once('e') {
        Some((m, e)) => (m, e.parse::<i32>().unwrap_or(0)),
        None => (text, 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    // x = 0.DIGITS * 10^n
    let mut digits = format!("{int_part}{frac_part}");
    let mut n = int_part.len() as i32 + exp;
    let leading = digits.len() - digits.trim_start_matches('0').len();
    digits.drain(..leading);
    n -= leading as i32;
    let kept = digits.trim_end_matches('0').len();
    digits.truncate(kept);
    let k = digits.len() as i32;
    let mut out = String::with_capacity(k as usize + 8);
    if x < 0.0 {
        out.push('-');
    }
    if k <= n && n <= 21 {
        out.push_str(&digits);
        out.extend(std::iter::repeat_n('0', (n - k) as usize));
    } else if 0 < n && n <= 21 {
        out.push_str(&digits[..n as usize]);
        out.push('.');
        out.push_str(&digits[n as usize..]);
    } else if -6 < n && n <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-n) as usize));
        out.push_str(&digits);
    } else {
        out.push_str(&digits[..1]);
        if k > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let e = n - 1;
        out.push('e');
        out.push(if e >= 0 { '+' } else { '-' });
        out.push_str(&e.unsigned_abs().to_string());
    }
    out
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
    /// The record names a key that is neither in the keyring nor introduced
    /// by a valid key-rotation record.
    #[error("signed by key {found}, which is not in the keyring ({known})")]
    UnknownKey {
        /// The key id the record names.
        found: String,
        /// The key ids known, comma-separated.
        known: String,
    },
    /// The record is signed by a key that a key-rotation record retired.
    #[error(
        "signed by key {found}, retired by the key rotation in record {rotated_at} (the active key is {active})"
    )]
    RetiredKey {
        /// The key id the record names.
        found: String,
        /// The sequence number of the rotation record.
        rotated_at: u64,
        /// The key that should have signed.
        active: String,
    },
}

/// A set of public keys that may sign records (`vantage audit verify
/// --public-key`, repeatable, each file one key a line).
#[derive(Debug, Clone, Default)]
pub struct Keyring {
    keys: std::collections::BTreeMap<String, VerifyingKey>,
}

impl Keyring {
    /// An empty keyring.
    pub fn new() -> Self {
        Self::default()
    }

    /// A keyring with these keys.
    pub fn of(keys: impl IntoIterator<Item = VerifyingKey>) -> Self {
        let mut ring = Self::new();
        for k in keys {
            ring.insert(k);
        }
        ring
    }

    /// Add a key.
    pub fn insert(&mut self, key: VerifyingKey) {
        self.keys.insert(key_id(&key), key);
    }

    /// The key with this id.
    pub fn get(&self, id: &str) -> Option<&VerifyingKey> {
        self.keys.get(id)
    }

    /// Whether the keyring has no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key ids, sorted.
    pub fn ids(&self) -> Vec<String> {
        self.keys.keys().cloned().collect()
    }

    /// Add every key of a public key file's text: one key a line (hex or
    /// base64), blank lines and `#` comments ignored.
    pub fn add_text(&mut self, text: &str) -> anyhow::Result<usize> {
        let mut added = 0;
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let key = parse_public_key(line).with_context(|| format!("line {}", i + 1))?;
            self.insert(key);
            added += 1;
        }
        if added == 0 {
            bail!("no public key in it");
        }
        Ok(added)
    }

    /// Check `record`'s signature with the key it names.
    pub fn verify(&self, record: &AuditRecord) -> Result<(), SignatureError> {
        match self.get(&record.key_id) {
            Some(key) => verify(record, key),
            None => Err(SignatureError::UnknownKey {
                found: record.key_id.clone(),
                known: self.ids().join(", "),
            }),
        }
    }
}

/// The subject of a key-rotation record from `old` to `new`.
pub fn rotation_subject(old: &AuditKey, new: &AuditKey) -> Value {
    serde_json::json!({
        "old_key_id": old.key_id(),
        "new_key_id": new.key_id(),
        "new_public_key": new.public_key_hex(),
    })
}

/// The new key a key-rotation record introduces, checked against the key
/// id it states.
pub fn rotation_new_key(record: &AuditRecord) -> anyhow::Result<VerifyingKey> {
    let text = record
        .subject
        .get("new_public_key")
        .and_then(Value::as_str)
        .context("the key rotation has no new_public_key")?;
    let key = parse_public_key(text)?;
    let stated = record.subject.get("new_key_id").and_then(Value::as_str);
    if stated != Some(key_id(&key).as_str()) {
        bail!("the key rotation's new_key_id does not match its new_public_key");
    }
    Ok(key)
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

/// Refuse a key file readable or writable by group or others. Symbolic
/// links are followed (a Kubernetes Secret volume's files are links into
/// `..data/`), so the mode checked is the file's own.
pub fn check_key_file_mode(path: &std::path::Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path)
            .with_context(|| format!("reading the audit signing key file {}", path.display()))?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            bail!(
                "the audit signing key file {} has mode {mode:04o}: it must not be readable by \
                 group or others (chmod 0400 or 0600; on a Kubernetes Secret volume set \
                 defaultMode: 0400, since the default is 0644)",
                path.display()
            );
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
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
            SecretSource::File(path) => {
                check_key_file_mode(path)?;
                std::fs::read_to_string(path).with_context(|| {
                    format!("reading the audit signing key from {}", path.display())
                })?
            }
            held @ SecretSource::Held(_) => held.read().map_err(anyhow::Error::msg)?,
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
            verdict: Some(Verdict::Pass),
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
            |r| r.verdict = Some(Verdict::Fail),
            |r| r.verdict = None,
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
