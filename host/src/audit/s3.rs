//! Shipping audit records to S3 (or any S3-compatible server).
//!
//! Each record is one object, `<prefix><seq, 20 digits>.json` (by default
//! `audit/00000000000000000001.json`), whose body is the record's canonical
//! JSON, written with:
//!
//! - `If-None-Match: *`: S3 refuses (412) to overwrite an existing key. On a
//!   412 the existing object is read back: the same bytes mean the record was
//!   already shipped (a replay after a crash), other bytes are a conflict
//!   ([`ShipError::Conflict`]) — someone else wrote that sequence number.
//! - an explicit SHA-256 checksum (`x-amz-checksum-sha256`, with
//!   `x-amz-sdk-checksum-algorithm: SHA256`), checked by S3;
//! - Object Lock retention (`GOVERNANCE` or `COMPLIANCE` until now + N
//!   days) when configured; the bucket must have Object Lock (and so
//!   versioning) enabled;
//! - server-side encryption when configured (`AES256` or `aws:kms` with a
//!   key id).
//!
//! The endpoint must use TLS unless it is a loopback address.

use std::time::Duration;

use anyhow::{Context, bail};
use aws_sdk_s3::Client;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::{ChecksumAlgorithm, ObjectLockMode, ServerSideEncryption};
use base64::Engine;
use sha2::{Digest, Sha256};

use super::record::AuditRecord;
use super::spool::{Spool, file_name};
pub use crate::config::s3::{DEFAULT_PREFIX, LockMode, Retention, Sse, check_endpoint};

/// Static credentials.
#[derive(Clone)]
pub struct StaticCredentials {
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
    /// Session token, for temporary credentials.
    pub session_token: Option<String>,
}

impl std::fmt::Debug for StaticCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticCredentials")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// Where and how records are shipped.
#[derive(Debug, Clone)]
pub struct S3Config {
    /// The bucket (Object Lock enabled for retention to apply).
    pub bucket: String,
    /// Key prefix, [`DEFAULT_PREFIX`] by default.
    pub prefix: String,
    /// Endpoint URL of an S3-compatible server; None: AWS.
    pub endpoint: Option<String>,
    /// Region (`us-east-1` when None and none configured in the environment).
    pub region: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`), for most S3-compatible
    /// servers.
    pub path_style: bool,
    /// Explicit credentials; None: `AWS_ACCESS_KEY_ID` /
    /// `AWS_SECRET_ACCESS_KEY` (/ `AWS_SESSION_TOKEN`), else the AWS default
    /// chain (profiles, web identity, instance metadata).
    pub credentials: Option<StaticCredentials>,
    /// Object Lock retention of written records.
    pub retention: Option<Retention>,
    /// Server-side encryption of written records.
    pub sse: Option<Sse>,
    /// Attempts per request (network errors, 5xx, throttling), at least 1.
    pub max_attempts: u32,
}

impl S3Config {
    /// A configuration for `bucket` with defaults: prefix `audit/`, AWS
    /// endpoint, credentials from the environment, no retention, no SSE,
    /// 3 attempts.
    pub fn new(bucket: impl Into<String>) -> Self {
        S3Config {
            bucket: bucket.into(),
            prefix: DEFAULT_PREFIX.into(),
            endpoint: None,
            region: None,
            path_style: false,
            credentials: None,
            retention: None,
            sse: None,
            max_attempts: 3,
        }
    }
}

/// Why a record could not be shipped.
#[derive(Debug, thiserror::Error)]
pub enum ShipError {
    /// The key exists with other contents: a conflicting writer or tampering.
    #[error(
        "audit object {key} already exists with different contents \
         (another writer, or tampering): refusing to continue the chain"
    )]
    Conflict {
        /// The object key.
        key: String,
    },
    /// S3 could not be reached or refused the request.
    #[error("shipping audit object {key}: {message}")]
    S3 {
        /// The object key.
        key: String,
        /// What went wrong.
        message: String,
    },
}

/// What a put did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    /// The object was written.
    Written,
    /// The object existed with the same bytes (a replay).
    AlreadyPresent,
}

/// One version (or delete marker) of an audit object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectVersion {
    /// The object key.
    pub key: String,
    /// The version id (`null` on an unversioned bucket).
    pub version_id: String,
    /// Whether this is a delete marker.
    pub delete_marker: bool,
    /// Whether this is the current version.
    pub is_latest: bool,
    /// Last modified, as S3 reports it (RFC 3339).
    pub last_modified: Option<String>,
}

/// A client for the audit bucket.
#[derive(Debug, Clone)]
pub struct S3Sink {
    client: Client,
    config: S3Config,
}

/// Render an SDK error with its cause chain (the SDK's Display is terse).
fn sdk_message<E: std::error::Error + 'static, R: std::fmt::Debug + 'static>(
    err: &SdkError<E, R>,
) -> String {
    crate::units::error_chain(err)
}

impl S3Sink {
    /// Build the client (checks the endpoint; loads credentials lazily).
    pub async fn new(config: S3Config) -> anyhow::Result<Self> {
        if let Some(endpoint) = &config.endpoint {
            check_endpoint(endpoint)?;
        }
        let credentials = config.credentials.clone().or_else(|| {
            let access_key_id = std::env::var("AWS_ACCESS_KEY_ID").ok()?;
            let secret_access_key = std::env::var("AWS_SECRET_ACCESS_KEY").ok()?;
            Some(StaticCredentials {
                access_key_id,
                secret_access_key,
                session_token: std::env::var("AWS_SESSION_TOKEN").ok(),
            })
        });
        let mut has_region = false;
        let mut builder = match &credentials {
            Some(c) => aws_sdk_s3::config::Builder::new()
                .behavior_version(BehaviorVersion::latest())
                .credentials_provider(Credentials::new(
                    &c.access_key_id,
                    &c.secret_access_key,
                    c.session_token.clone(),
                    None,
                    "vantage",
                )),
            None => {
                let shared = aws_config::defaults(BehaviorVersion::latest()).load().await;
                has_region = shared.region().is_some();
                aws_sdk_s3::config::Builder::from(&shared)
            }
        };
        let region = config
            .region
            .clone()
            .or_else(|| std::env::var("AWS_REGION").ok())
            .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok());
        if let Some(region) = region {
            builder = builder.region(Region::new(region));
        } else if !has_region {
            builder = builder.region(Region::new("us-east-1"));
        }
        if let Some(endpoint) = &config.endpoint {
            builder = builder.endpoint_url(endpoint);
        }
        builder = builder
            .force_path_style(config.path_style)
            // We send our own SHA-256 checksum; no trailing aws-chunked ones.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenSupported)
            .retry_config(
                aws_sdk_s3::config::retry::RetryConfig::standard()
                    .with_max_attempts(config.max_attempts.max(1))
                    .with_initial_backoff(Duration::from_millis(200)),
            )
            .timeout_config(
                aws_sdk_s3::config::timeout::TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .operation_attempt_timeout(Duration::from_secs(30))
                    .build(),
            );
        Ok(S3Sink {
            client: Client::from_conf(builder.build()),
            config,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &S3Config {
        &self.config
    }

    /// The underlying SDK client (tests use it to play the attacker).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The object key of record `seq`.
    pub fn key(&self, seq: u64) -> String {
        format!("{}{}", self.config.prefix, file_name(seq))
    }

    /// The sequence number of an object key under the prefix, if it is one.
    pub fn seq_of_key(&self, key: &str) -> Option<u64> {
        let name = key
            .strip_prefix(&self.config.prefix)?
            .strip_suffix(".json")?;
        (name.len() == 20 && name.bytes().all(|b| b.is_ascii_digit()))
            .then(|| name.parse().ok())
            .flatten()
    }

    /// Write record `seq`'s bytes, refusing to overwrite (see the module
    /// docs).
    pub async fn put_record(&self, seq: u64, bytes: &[u8]) -> Result<PutOutcome, ShipError> {
        let key = self.key(seq);
        let checksum = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(bytes));
        let mut put = self
            .client
            .put_object()
            .bucket(&self.config.bucket)
            .key(&key)
            .body(ByteStream::from(bytes.to_vec()))
            .content_type("application/json")
            .if_none_match("*")
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .checksum_sha256(checksum);
        if let Some(retention) = self.config.retention {
            let until = chrono::Utc::now() + chrono::Duration::days(i64::from(retention.days));
            put = put
                .object_lock_mode(match retention.mode {
                    LockMode::Governance => ObjectLockMode::Governance,
                    LockMode::Compliance => ObjectLockMode::Compliance,
                })
                .object_lock_retain_until_date(DateTime::from_secs(until.timestamp()));
        }
        match &self.config.sse {
            None => {}
            Some(Sse::S3) => put = put.server_side_encryption(ServerSideEncryption::Aes256),
            Some(Sse::Kms(key_id)) => {
                put = put.server_side_encryption(ServerSideEncryption::AwsKms);
                if let Some(key_id) = key_id {
                    put = put.ssekms_key_id(key_id);
                }
            }
        }
        match put.send().await {
            Ok(_) => Ok(PutOutcome::Written),
            Err(err) if err.raw_response().map(|r| r.status().as_u16()) == Some(412) => {
                let existing = self.get(&key, None).await.map_err(|e| ShipError::S3 {
                    key: key.clone(),
                    message: format!("exists (412) but could not be read back: {e:#}"),
                })?;
                if existing == bytes {
                    Ok(PutOutcome::AlreadyPresent)
                } else {
                    Err(ShipError::Conflict { key })
                }
            }
            Err(err) => Err(ShipError::S3 {
                message: sdk_message(&err),
                key,
            }),
        }
    }

    /// Ship every spooled record, in sequence order, each checked first
    /// ([`Spool::check`]: a record edited in the spool is refused, not
    /// shipped) and removed from the spool once S3 has it. Stops at the
    /// first failure (the rest stay spooled, in order, for the next call).
    /// Returns how many were shipped (written or found already present).
    pub async fn ship_pending(&self, spool: &mut Spool) -> anyhow::Result<usize> {
        let mut shipped = 0;
        for (seq, _) in spool.pending()? {
            let bytes = spool.read_bytes(seq)?;
            let prev = match spool.known_prev_hash(seq) {
                Some(h) => h,
                None => self.hash_of(seq - 1).await?,
            };
            spool.check(seq, &bytes, Some(&prev))?;
            let outcome = self.put_record(seq, &bytes).await?;
            tracing::debug!(seq, ?outcome, "audit record shipped");
            spool.mark_shipped(seq, &super::record::hash_bytes(&bytes))?;
            shipped += 1;
        }
        Ok(shipped)
    }

    /// The chain hash of record `seq` as S3 holds it (its current version).
    pub async fn hash_of(&self, seq: u64) -> anyhow::Result<String> {
        let bytes = self
            .get(&self.key(seq), None)
            .await
            .with_context(|| format!("reading audit record {seq} to check the chain link"))?;
        Ok(super::record::hash_bytes(&bytes))
    }

    /// The newest record in the bucket (the highest sequence number under
    /// the prefix) and its hash, None when there is none: how a daemon whose
    /// spool was lost continues the chain instead of forking it.
    pub async fn head(&self) -> anyhow::Result<Option<(AuditRecord, String)>> {
        let mut newest: Option<u64> = None;
        let mut token = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.config.bucket)
                .prefix(&self.config.prefix)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| {
                    anyhow::anyhow!(
                        "listing s3://{}/{}: {}",
                        self.config.bucket,
                        self.config.prefix,
                        sdk_message(&e)
                    )
                })?;
            for object in page.contents() {
                if let Some(seq) = object.key().and_then(|k| self.seq_of_key(k)) {
                    newest = newest.max(Some(seq));
                }
            }
            match page.next_continuation_token() {
                Some(t) if page.is_truncated() == Some(true) => token = Some(t.to_string()),
                _ => break,
            }
        }
        let Some(seq) = newest else {
            return Ok(None);
        };
        let bytes = self.get(&self.key(seq), None).await?;
        let record = AuditRecord::from_canonical_bytes(&bytes)
            .with_context(|| format!("the newest audit object {}", self.key(seq)))?;
        if record.seq != seq {
            bail!(
                "the newest audit object {} says seq {}",
                self.key(seq),
                record.seq
            );
        }
        Ok(Some((record, super::record::hash_bytes(&bytes))))
    }

    /// The Object Lock retention of one object version (from HeadObject),
    /// None when it has none.
    pub async fn retention_of(
        &self,
        key: &str,
        version_id: &str,
    ) -> anyhow::Result<Option<(String, i64)>> {
        let head = self
            .client
            .head_object()
            .bucket(&self.config.bucket)
            .key(key)
            .version_id(version_id)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("reading the retention of {key}: {}", sdk_message(&e)))?;
        Ok(
            match (
                head.object_lock_mode(),
                head.object_lock_retain_until_date(),
            ) {
                (Some(mode), Some(until)) => Some((mode.as_str().to_lowercase(), until.secs())),
                _ => None,
            },
        )
    }

    /// Read an object (a given version, or the current one).
    pub async fn get(&self, key: &str, version_id: Option<&str>) -> anyhow::Result<Vec<u8>> {
        let out = self
            .client
            .get_object()
            .bucket(&self.config.bucket)
            .key(key)
            .set_version_id(version_id.map(str::to_string))
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("reading {key}: {}", sdk_message(&e)))?;
        let body = out
            .body
            .collect()
            .await
            .with_context(|| format!("reading {key}"))?;
        Ok(body.into_bytes().to_vec())
    }

    /// Every version and delete marker under the prefix, by key then oldest
    /// first.
    pub async fn list_versions(&self) -> anyhow::Result<Vec<ObjectVersion>> {
        let mut all = Vec::new();
        let mut key_marker = None;
        let mut version_marker = None;
        loop {
            let page = self
                .client
                .list_object_versions()
                .bucket(&self.config.bucket)
                .prefix(&self.config.prefix)
                .set_key_marker(key_marker.take())
                .set_version_id_marker(version_marker.take())
                .send()
                .await
                .map_err(|e| {
                    anyhow::anyhow!(
                        "listing object versions of s3://{}/{}: {}",
                        self.config.bucket,
                        self.config.prefix,
                        sdk_message(&e)
                    )
                })?;
            for v in page.versions() {
                all.push(ObjectVersion {
                    key: v.key().unwrap_or_default().to_string(),
                    version_id: v.version_id().unwrap_or("null").to_string(),
                    delete_marker: false,
                    is_latest: v.is_latest().unwrap_or(false),
                    last_modified: v.last_modified().map(|d| d.to_string()),
                });
            }
            for m in page.delete_markers() {
                all.push(ObjectVersion {
                    key: m.key().unwrap_or_default().to_string(),
                    version_id: m.version_id().unwrap_or("null").to_string(),
                    delete_marker: true,
                    is_latest: m.is_latest().unwrap_or(false),
                    last_modified: m.last_modified().map(|d| d.to_string()),
                });
            }
            if page.is_truncated() == Some(true) {
                key_marker = page.next_key_marker().map(str::to_string);
                version_marker = page.next_version_id_marker().map(str::to_string);
                if key_marker.is_none() {
                    break;
                }
            } else {
                break;
            }
        }
        // Oldest first within a key; last_modified is second-granular, so
        // the latest version sorts last on ties.
        all.sort_by(|a, b| {
            (a.key.as_str(), a.last_modified.as_deref(), a.is_latest).cmp(&(
                b.key.as_str(),
                b.last_modified.as_deref(),
                b.is_latest,
            ))
        });
        Ok(all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_to_loopback() {
        for ok in [
            "https://s3.eu-west-1.amazonaws.com",
            "https://minio.internal:9000",
            "http://127.0.0.1:5000",
            "http://127.8.9.1",
            "http://localhost:9000",
            "http://[::1]:9000",
        ] {
            check_endpoint(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in [
            "http://10.0.0.1:9000",
            "http://s3.example.com",
            "ftp://127.0.0.1",
        ] {
            assert!(check_endpoint(bad).is_err(), "{bad} accepted");
        }
    }

    #[tokio::test]
    async fn keys_are_zero_padded_and_parse_back() {
        let mut config = S3Config::new("b");
        config.endpoint = Some("http://127.0.0.1:1".into());
        config.credentials = Some(StaticCredentials {
            access_key_id: "a".into(),
            secret_access_key: "b".into(),
            session_token: None,
        });
        let sink = S3Sink::new(config).await.unwrap();
        assert_eq!(sink.key(7), "audit/00000000000000000007.json");
        assert_eq!(sink.seq_of_key("audit/00000000000000000007.json"), Some(7));
        assert_eq!(sink.seq_of_key("audit/7.json"), None);
        assert_eq!(sink.seq_of_key("other/00000000000000000007.json"), None);
    }
}
