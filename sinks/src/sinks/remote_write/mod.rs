//! Remote write: every run's series pushed to Prometheus-compatible
//! receivers (`[[remote_write]]`) with the remote-write 1.0 protocol, so
//! that edges behind NAT report home without being scraped.
//!
//! After each run, the last-run gauges `/metrics` shows for the check
//! ([`metrics::last_run_series`](super::metrics::last_run_series): the same
//! names and labels, `location` included) become samples stamped with the
//! run's end. Each receiver has an on-disk [`queue`] in the data directory
//! and `shards` senders, after Prometheus's queue manager: a series always
//! goes through the same shard, so its samples arrive in order; a shard
//! sends up to `max_samples_per_send` samples per request, or what it has
//! once `batch_send_deadline` passed. A 5xx, a 429 or no answer is retried
//! with backoff (`min_backoff` doubling to `max_backoff`), the samples
//! staying queued, on disk, while the receiver is away; any other 4xx is
//! final: logged with the receiver's message (`out of order sample`) and
//! counted as failed.
//!
//! Every 15 s the daemon's own series ([`identity`](super::identity):
//! build, configuration hash, clock offset, heartbeat) are pushed too, so
//! that a location gone silent shows as a heartbeat that stopped. The
//! clock offset is measured from the `Date` of the receiver's answers.
//!
//! Metrics, per receiver (`remote`): `vantage_remote_write_pending_samples`,
//! `vantage_remote_write_sent_samples_total`,
//! `vantage_remote_write_failed_samples_total`,
//! `vantage_remote_write_dropped_samples_total{reason="size"|"age"}`,
//! `vantage_remote_write_retries_total`,
//! `vantage_remote_write_last_success_timestamp_seconds`.

pub mod proto;
pub mod queue;

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::sync::{Notify, mpsc};

use self::proto::{Label, Sample, TimeSeries, WriteRequest};
use self::queue::{Dropped, Queue};
use crate::config::{RemoteWriteAuth, RemoteWriteConfig};
use crate::pace::AbortOnDrop;
use crate::result::RunRecord;
use crate::sinks::board::CheckView;
use crate::sinks::identity::Identity;

/// The remote-write receivers of a daemon (none when unconfigured).
#[derive(Clone, Default)]
pub struct RemoteWrite {
    remotes: Vec<Arc<Remote>>,
    tx: Option<mpsc::UnboundedSender<Arc<RunRecord>>>,
    location: String,
    _tasks: Option<Arc<Vec<AbortOnDrop<()>>>>,
}

/// One receiver: its settings, queue, senders' wake-ups and metrics.
struct Remote {
    config: RemoteWriteConfig,
    queue: Queue,
    wake: Vec<Notify>,
    client: reqwest::Client,
    metrics: RemoteMetrics,
    /// Where the receiver's clock offset goes.
    identity: Identity,
}

type L = Vec<(String, String)>;

/// The sink's metric families (one series per receiver).
#[derive(Clone, Default)]
struct Families {
    pending: Family<L, Gauge>,
    sent: Family<L, Counter>,
    failed: Family<L, Counter>,
    dropped: Family<L, Counter>,
    retries: Family<L, Counter>,
    last_success: Family<L, Gauge<f64, AtomicU64>>,
}

/// One receiver's metrics.
struct RemoteMetrics {
    families: Families,
    remote: String,
}

impl RemoteMetrics {
    fn labels(&self) -> L {
        vec![("remote".to_string(), self.remote.clone())]
    }

    fn dropped(&self, why: Dropped, samples: u64) {
        let reason = match why {
            Dropped::Size => "size",
            Dropped::Age => "age",
        };
        let mut labels = self.labels();
        labels.push(("reason".into(), reason.into()));
        self.families.dropped.get_or_create(&labels).inc_by(samples);
        tracing::warn!(
            remote = %self.remote,
            samples,
            reason,
            "remote write: samples dropped from the queue"
        );
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl RemoteWrite {
    /// Open each receiver's queue in `data_dir`, register the metrics and
    /// start the senders. Runs reported at `location` (a label every series
    /// already carries).
    pub fn start(
        configs: &[RemoteWriteConfig],
        data_dir: &Path,
        identity: &Identity,
        registry: &mut Registry,
    ) -> anyhow::Result<Self> {
        let location = identity.location();
        if configs.is_empty() {
            return Ok(RemoteWrite::default());
        }
        let families = Families::default();
        registry.register(
            "vantage_remote_write_pending_samples",
            "Samples queued for a remote-write receiver",
            families.pending.clone(),
        );
        registry.register(
            "vantage_remote_write_sent_samples",
            "Samples a remote-write receiver accepted",
            families.sent.clone(),
        );
        registry.register(
            "vantage_remote_write_failed_samples",
            "Samples a remote-write receiver refused for good (a 4xx other than 429)",
            families.failed.clone(),
        );
        registry.register(
            "vantage_remote_write_dropped_samples",
            "Samples dropped from the queue before they could be sent, by reason (size, age)",
            families.dropped.clone(),
        );
        registry.register(
            "vantage_remote_write_retries",
            "Requests retried after a 5xx, a 429 or no answer",
            families.retries.clone(),
        );
        registry.register(
            "vantage_remote_write_last_success_timestamp_seconds",
            "When a remote-write receiver last accepted a request, unix seconds",
            families.last_success.clone(),
        );
        std::fs::create_dir_all(data_dir)?;
        let mut remotes = Vec::new();
        for config in configs {
            let file = data_dir.join(format!("remote-write-{}.sqlite", file_name(&config.name)));
            let queue =
                Queue::open(&file, config.queue.max_bytes, config.queue.max_age).map_err(|e| {
                    anyhow::anyhow!("remote write {}: {}: {e}", config.name, file.display())
                })?;
            let mut client = reqwest::Client::builder()
                .timeout(config.timeout)
                .user_agent(concat!("vantage/", env!("CARGO_PKG_VERSION")));
            if let Some(ca) = &config.ca {
                let pem = std::fs::read(ca).map_err(|e| {
                    anyhow::anyhow!("remote write {}: {}: {e}", config.name, ca.display())
                })?;
                let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                    anyhow::anyhow!("remote write {}: {}: {e}", config.name, ca.display())
                })?;
                client = client.tls_certs_merge(certs);
            }
            let metrics = RemoteMetrics {
                families: families.clone(),
                remote: config.name.clone(),
            };
            metrics
                .families
                .pending
                .get_or_create(&metrics.labels())
                .set(queue.pending() as i64);
            remotes.push(Arc::new(Remote {
                config: config.clone(),
                queue,
                wake: (0..config.queue.shards).map(|_| Notify::new()).collect(),
                client: client.build()?,
                metrics,
                identity: identity.clone(),
            }));
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let mut tasks = vec![
            AbortOnDrop(tokio::spawn(enqueue(
                remotes.clone(),
                rx,
                location.to_string(),
            ))),
            AbortOnDrop(tokio::spawn(heartbeat(remotes.clone(), identity.clone()))),
        ];
        for remote in &remotes {
            for shard in 0..remote.config.queue.shards {
                tasks.push(AbortOnDrop(tokio::spawn(send_loop(remote.clone(), shard))));
            }
        }
        Ok(RemoteWrite {
            remotes,
            tx: Some(tx),
            location: location.to_string(),
            _tasks: Some(Arc::new(tasks)),
        })
    }

    /// Queue a finished run's series for every receiver. Never blocks.
    pub fn observe(&self, record: &Arc<RunRecord>) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(record.clone());
        }
    }

    /// Samples waiting for the receiver called `name`.
    pub fn pending(&self, name: &str) -> Option<u64> {
        self.remotes
            .iter()
            .find(|r| r.config.name == name)
            .map(|r| r.queue.pending())
    }

    /// The location the series are reported at.
    pub fn location(&self) -> &str {
        &self.location
    }
}

/// A receiver's name as a file name.
fn file_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A run's series as remote-write time series (labels sorted, `__name__`
/// first by order), all stamped with the run's end.
pub fn run_series(record: &RunRecord, location: &str) -> Vec<TimeSeries> {
    let r = &record.result;
    let ended = (r.started_unix_ms as f64 + r.duration_ms).round() as i64;
    let view = CheckView {
        name: r.check.clone(),
        state: record.state,
        maintenance: record.maintenance.clone(),
        last: Some(Arc::new(record.clone())),
        ..CheckView::default()
    };
    super::metrics::last_run_series(&view, location)
        .into_iter()
        .map(|s| time_series(s, ended))
        .collect()
}

/// One sample of a gauge as a remote-write series at `timestamp` (ms):
/// labels sorted, `__name__` among them.
fn time_series((name, labels, value): super::metrics::Series, timestamp: i64) -> TimeSeries {
    let mut labels: Vec<Label> = labels
        .into_iter()
        .map(|(name, value)| Label { name, value })
        .chain(std::iter::once(Label {
            name: "__name__".into(),
            value: name.into(),
        }))
        .collect();
    labels.sort();
    TimeSeries {
        labels,
        samples: vec![Sample { value, timestamp }],
    }
}

/// The shard of a series: a stable hash of its labels.
fn shard_of(series: &TimeSeries, shards: u32) -> u32 {
    // Stable across processes and versions (std's hasher is not).
    let mut h = crate::pace::StableHasher::default();
    series.labels.hash(&mut h);
    (h.finish() % u64::from(shards.max(1))) as u32
}

/// How often the daemon's own series are pushed.
pub const HEARTBEAT: Duration = Duration::from_secs(15);

/// Push the daemon's own series every [`HEARTBEAT`].
async fn heartbeat(remotes: Vec<Arc<Remote>>, identity: Identity) {
    let mut tick = tokio::time::interval(HEARTBEAT);
    loop {
        tick.tick().await;
        let now = now_ms();
        let series = identity
            .series(now as f64 / 1000.0)
            .into_iter()
            .map(|s| time_series(s, now))
            .collect();
        queue_series(&remotes, series, now).await;
    }
}

/// Turn published runs into queued rows, one per receiver and shard.
async fn enqueue(
    remotes: Vec<Arc<Remote>>,
    mut rx: mpsc::UnboundedReceiver<Arc<RunRecord>>,
    location: String,
) {
    while let Some(record) = rx.recv().await {
        let series = run_series(&record, &location);
        let taken = series
            .first()
            .and_then(|s| s.samples.first())
            .map(|s| s.timestamp)
            .unwrap_or_else(now_ms);
        queue_series(&remotes, series, taken).await;
    }
}

/// Queue `series` (taken at `taken` ms) for every receiver, each series in
/// its shard.
async fn queue_series(remotes: &[Arc<Remote>], series: Vec<TimeSeries>, taken: i64) {
    {
        for remote in remotes {
            let shards = remote.config.queue.shards;
            let mut by_shard: HashMap<u32, WriteRequest> = HashMap::new();
            for s in &series {
                by_shard
                    .entry(shard_of(s, shards))
                    .or_default()
                    .timeseries
                    .push(s.clone());
            }
            let remote = remote.clone();
            let pushed = tokio::task::spawn_blocking(move || {
                let mut drops = Vec::new();
                for (shard, request) in &by_shard {
                    match remote.queue.push(*shard, taken, now_ms(), request) {
                        Ok(d) => drops.extend(d),
                        Err(e) => tracing::error!(
                            remote = %remote.config.name,
                            error = %e,
                            "remote write: cannot queue samples"
                        ),
                    }
                }
                for (why, n) in drops {
                    remote.metrics.dropped(why, n);
                }
                remote
                    .metrics
                    .families
                    .pending
                    .get_or_create(&remote.metrics.labels())
                    .set(remote.queue.pending() as i64);
                for shard in by_shard.keys() {
                    remote.wake[*shard as usize].notify_one();
                }
            })
            .await;
            if let Err(e) = pushed {
                tracing::error!(error = %e, "remote write: the queueing task failed");
            }
        }
    }
}

/// How one request ended.
enum Outcome {
    /// Accepted.
    Sent,
    /// Refused for good (4xx other than 429): the message.
    Refused(u16, String),
    /// Worth retrying (5xx, 429, no answer): why, and how long the receiver
    /// asked to wait.
    Retry(String, Option<Duration>),
}

/// One shard's sender: read the queue in order, send, retry, acknowledge.
async fn send_loop(remote: Arc<Remote>, shard: u32) {
    let q = &remote.config.queue;
    let labels = remote.metrics.labels();
    loop {
        let r = remote.clone();
        let expired = tokio::task::spawn_blocking(move || r.queue.expire(now_ms()))
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        for (why, n) in expired {
            remote.metrics.dropped(why, n);
        }
        let r = remote.clone();
        let max = u64::from(q.max_samples_per_send);
        let batch = match tokio::task::spawn_blocking(move || r.queue.peek(shard, max)).await {
            Ok(Ok(b)) => b,
            Ok(Err(e)) => {
                tracing::error!(remote = %remote.config.name, error = %e, "remote write: cannot read the queue");
                tokio::time::sleep(q.max_backoff).await;
                continue;
            }
            Err(_) => return,
        };
        if batch.requests.is_empty() {
            remote.wake[shard as usize].notified().await;
            continue;
        }
        // Fill the request up to max_samples_per_send, or send what there
        // is once the oldest row waited batch_send_deadline.
        let waited = Duration::from_millis((now_ms() - batch.oldest_queued_ms).max(0) as u64);
        if batch.samples < max && waited < q.batch_send_deadline {
            let rest = q.batch_send_deadline - waited;
            tokio::select! {
                _ = remote.wake[shard as usize].notified() => {}
                _ = tokio::time::sleep(rest) => {}
            }
            if batch.samples < max
                && now_ms() - batch.oldest_queued_ms < q.batch_send_deadline.as_millis() as i64
            {
                continue;
            }
        }
        let samples = batch.samples;
        let body = merge(batch.requests).body();
        let mut attempt = 0u32;
        loop {
            match send_once(&remote, &body).await {
                Outcome::Sent => {
                    remote
                        .metrics
                        .families
                        .sent
                        .get_or_create(&labels)
                        .inc_by(samples);
                    remote
                        .metrics
                        .families
                        .last_success
                        .get_or_create(&labels)
                        .set(now_ms() as f64 / 1000.0);
                    break;
                }
                Outcome::Refused(status, message) => {
                    tracing::error!(
                        remote = %remote.config.name,
                        status,
                        samples,
                        message = %message.trim(),
                        "remote write: the receiver refused the samples (not retried)"
                    );
                    remote
                        .metrics
                        .families
                        .failed
                        .get_or_create(&labels)
                        .inc_by(samples);
                    break;
                }
                Outcome::Retry(why, after) => {
                    attempt += 1;
                    remote.metrics.families.retries.get_or_create(&labels).inc();
                    let wait = after
                        .unwrap_or_else(|| {
                            crate::pace::backoff(attempt, q.min_backoff, q.max_backoff, 0.2)
                        })
                        .min(q.max_backoff.max(Duration::from_secs(1)) * 12);
                    if attempt == 1 || attempt.is_power_of_two() {
                        tracing::warn!(
                            remote = %remote.config.name,
                            attempt,
                            error = %why,
                            retry_in = ?wait,
                            "remote write: the receiver is not taking samples; they stay queued"
                        );
                    }
                    tokio::time::sleep(wait).await;
                }
            }
        }
        let r = remote.clone();
        let last = batch.last_id;
        let _ = tokio::task::spawn_blocking(move || {
            let _ = r.queue.ack(shard, last);
            r.metrics
                .families
                .pending
                .get_or_create(&r.metrics.labels())
                .set(r.queue.pending() as i64);
        })
        .await;
    }
}

/// Several rows' requests as one: each series once, its samples in order.
fn merge(requests: Vec<WriteRequest>) -> WriteRequest {
    let mut index: HashMap<Vec<Label>, usize> = HashMap::new();
    let mut out = WriteRequest::default();
    for request in requests {
        for series in request.timeseries {
            match index.get(&series.labels) {
                Some(&i) => out.timeseries[i].samples.extend(series.samples),
                None => {
                    index.insert(series.labels.clone(), out.timeseries.len());
                    out.timeseries.push(series);
                }
            }
        }
    }
    out
}

/// POST one request body.
async fn send_once(remote: &Remote, body: &[u8]) -> Outcome {
    let config = &remote.config;
    let mut request = remote
        .client
        .post(config.url.clone())
        .header("Content-Encoding", "snappy")
        .header("Content-Type", "application/x-protobuf")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .body(body.to_vec());
    for (name, value) in &config.headers {
        request = request.header(name, value);
    }
    match &config.auth {
        Some(RemoteWriteAuth::Basic { username, password }) => match password.read() {
            Ok(p) => request = request.basic_auth(username, Some(p)),
            Err(e) => return Outcome::Retry(format!("basic_auth password: {e}"), None),
        },
        Some(RemoteWriteAuth::Bearer(source)) => match source.read() {
            Ok(t) => request = request.bearer_auth(t),
            Err(e) => return Outcome::Retry(format!("bearer_token: {e}"), None),
        },
        None => {}
    }
    let sent_at = now_ms();
    let response = match request.send().await {
        Ok(r) => r,
        Err(e) => return Outcome::Retry(without_url(&e), None),
    };
    // The receiver's clock against ours: its Date (whole seconds, so +0.5 s
    // on average) against the middle of the exchange.
    if let Some(date) = response
        .headers()
        .get("date")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| chrono::DateTime::parse_from_rfc2822(v).ok())
    {
        let theirs = date.timestamp() as f64 + 0.5;
        let ours = (sent_at + now_ms()) as f64 / 2000.0;
        remote
            .identity
            .set_clock_offset(((theirs - ours) * 10.0).round() / 10.0);
    }
    let status = response.status();
    if status.is_success() {
        return Outcome::Sent;
    }
    let after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let mut message = response.text().await.unwrap_or_default();
    message.truncate(512);
    if status.as_u16() == 429 || status.is_server_error() {
        Outcome::Retry(format!("{status}: {}", message.trim()), after)
    } else {
        Outcome::Refused(status.as_u16(), message)
    }
}

/// A request error without the URL (which may carry credentials).
fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(url.as_str(), "the receiver");
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
