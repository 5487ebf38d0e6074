//! `[[remote_write]]`: where the daemon pushes every run's series with the
//! Prometheus remote-write 1.0 protocol (a central Prometheus, Mimir,
//! Cortex, Thanos Receive, VictoriaMetrics), and how its on-disk queue and
//! its senders behave while a receiver is away.
//!
//! ```toml
//! [[remote_write]]
//! url = "https://prometheus.example.com/api/v1/write"
//! headers = { "X-Scope-OrgID" = "team-a" }
//! basic_auth = { username = "edge", password = "env:REMOTE_WRITE_PASSWORD" }
//! ca = "ca.pem"
//! [remote_write.queue]
//! max_bytes = "256MiB"
//! max_age = "2h"
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use serde_spanned::Spanned;

use super::SecretSource;

/// `[central]`, validated: this daemon shows the fleet's view, one row per
/// check and one column per location, read from the Prometheus the edges
/// push to.
#[derive(Debug, Clone, PartialEq)]
pub struct CentralConfig {
    /// The Prometheus HTTP API base URL, e.g. `http://prometheus:9090`.
    pub prometheus: url::Url,
    /// A location whose heartbeat is older than this shows as silent.
    pub silent_after: Duration,
}

/// `[central]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCentral {
    pub prometheus: Option<Spanned<String>>,
    pub silent_after: Option<Spanned<toml::Value>>,
}

/// One `[[remote_write]]`, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteWriteConfig {
    /// The name in metrics and logs (`remote="…"`): `name`, or the URL's
    /// `host:port`.
    pub name: String,
    /// The receiver's endpoint, e.g. `http://prometheus:9090/api/v1/write`.
    pub url: url::Url,
    /// Extra headers sent with every request (`X-Scope-OrgID`).
    pub headers: Vec<(String, String)>,
    /// How the daemon authenticates, if it does.
    pub auth: Option<RemoteWriteAuth>,
    /// A CA bundle (PEM) the receiver's certificate chains to, trusted
    /// beside the system's roots.
    pub ca: Option<PathBuf>,
    /// Time allowed for one request.
    pub timeout: Duration,
    /// `[remote_write.queue]`.
    pub queue: QueueConfig,
}

/// Credentials for a receiver, read from secret sources when sending (a
/// rotated file is picked up without a reload).
#[derive(Debug, Clone, PartialEq)]
pub enum RemoteWriteAuth {
    /// `basic_auth = { username, password = "env:…" }`.
    Basic {
        /// The user name.
        username: String,
        /// Where the password is read.
        password: SecretSource,
    },
    /// `bearer_token = "file:…"`: `Authorization: Bearer …`.
    Bearer(SecretSource),
}

/// How samples wait for a receiver and how they are sent, after
/// Prometheus's queue manager.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueConfig {
    /// The most bytes the on-disk queue holds; beyond it, the oldest
    /// samples are dropped (and counted).
    pub max_bytes: u64,
    /// Samples older than this are dropped (and counted) rather than sent:
    /// a receiver refuses samples far in the past anyway.
    pub max_age: Duration,
    /// Most samples in one request.
    pub max_samples_per_send: u32,
    /// How long a shard waits to fill a request before sending what it has.
    pub batch_send_deadline: Duration,
    /// Parallel senders; a series always goes through the same one, so its
    /// samples arrive in order.
    pub shards: u32,
    /// First wait after a failed request (5xx, 429, no answer).
    pub min_backoff: Duration,
    /// Longest wait between retries.
    pub max_backoff: Duration,
}

/// The default bound of a remote-write queue on disk: 256 MiB.
pub const DEFAULT_QUEUE_BYTES: u64 = 256 << 20;

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            max_bytes: DEFAULT_QUEUE_BYTES,
            max_age: Duration::from_secs(2 * 3600),
            max_samples_per_send: 2000,
            batch_send_deadline: Duration::from_secs(5),
            shards: 1,
            min_backoff: Duration::from_millis(30),
            max_backoff: Duration::from_secs(5),
        }
    }
}

/// `[[remote_write]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRemoteWrite {
    pub name: Option<Spanned<String>>,
    pub url: Option<Spanned<String>>,
    pub headers: Option<Spanned<BTreeMap<String, Spanned<String>>>>,
    pub basic_auth: Option<Spanned<RawBasicAuth>>,
    pub bearer_token: Option<Spanned<String>>,
    pub ca: Option<Spanned<String>>,
    pub timeout: Option<Spanned<toml::Value>>,
    pub queue: Option<Spanned<RawQueue>>,
}

/// `basic_auth = { … }` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBasicAuth {
    pub username: Option<Spanned<String>>,
    pub password: Option<Spanned<String>>,
}

/// `[remote_write.queue]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawQueue {
    pub max_bytes: Option<Spanned<toml::Value>>,
    pub max_age: Option<Spanned<toml::Value>>,
    pub max_samples_per_send: Option<Spanned<u64>>,
    pub batch_send_deadline: Option<Spanned<toml::Value>>,
    pub shards: Option<Spanned<u64>>,
    pub min_backoff: Option<Spanned<toml::Value>>,
    pub max_backoff: Option<Spanned<toml::Value>>,
}
