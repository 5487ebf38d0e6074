//! The audit log as the daemon runs it: records are appended to the fsync'd
//! spool at once (so nothing is lost while S3 is down), and a background
//! shipper sends them to S3 in sequence order: at start-up (replay), after
//! every append, and every [`RETRY_EVERY`] while any are pending. Each
//! spooled record is verified before it is shipped (a record edited on disk
//! stops the shipper with an error naming it).
//!
//! At start-up, a spool without `state.json` (new, or lost) takes the chain
//! head from S3 ([`S3Sink::head`]) instead of starting a second chain; a
//! chain head signed by the previous key gets a key-rotation record. A
//! checkpoint record ([`KIND_CHECKPOINT`]) is written at start-up (once the
//! chain has a record), every `checkpoint_every`, and at shutdown, so that
//! `vantage audit verify --max-age` can tell a log whose newest records were
//! removed from a quiet one.
//!
//! A stalled shipper (S3 down, a second writer making every put fail with
//! 412, a spooled record that does not verify) shows in
//! `vantage_audit_spool_records`, `vantage_audit_last_shipped_timestamp_seconds`
//! and an error log line repeated at most every [`STALL_LOG_EVERY`].

use crate::pace::LogLimiter;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde_json::json;
use tokio::sync::{Notify, watch};
use tracing::{error, info, warn};

use super::record::{AuditKey, AuditRecord, KIND_CHECKPOINT, hash_bytes};
use super::s3::{S3Config, S3Sink};
use super::spool::{Entry, Spool};
use crate::config::AuditConfig;
use crate::sinks::audit_metrics::AuditGauges;

/// How often the shipper retries while records are pending.
pub const RETRY_EVERY: Duration = Duration::from_secs(15);

/// How often a stalled shipper repeats its error log line.
pub const STALL_LOG_EVERY: Duration = Duration::from_secs(600);

pub use crate::config::s3::DEFAULT_CHECKPOINT_EVERY;

/// An open audit log: the spool, its shipper and its checkpoints.
pub struct AuditLog {
    spool: Arc<Mutex<Spool>>,
    wake: Arc<Notify>,
    stop: watch::Sender<bool>,
    shipper: tokio::task::JoinHandle<()>,
    checkpointer: tokio::task::JoinHandle<()>,
    status: Arc<Mutex<ShipStatus>>,
    location: String,
    every: Duration,
}

/// What the shipper last saw, for metrics and logs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ShipStatus {
    /// Records in the spool, not yet in S3.
    pub pending: usize,
    /// Records shipped since start-up.
    pub shipped: u64,
    /// The sequence number of the last record S3 acknowledged.
    pub last_shipped_seq: u64,
    /// The last shipping error, cleared by a successful pass.
    pub last_error: Option<String>,
}

impl AuditLog {
    /// Open the spool (in `config.spool_dir`, else `{data_dir}/audit-spool`)
    /// with the signing key from its secret, connect to S3, recover the
    /// chain head from S3 when the spool has no state, rotate keys when the
    /// head was signed by `previous_signing_key`, write a start-up
    /// checkpoint and start the shipper, which first replays whatever an
    /// earlier run left spooled.
    pub async fn open(
        config: &AuditConfig,
        data_dir: &Path,
        location: &str,
        gauges: AuditGauges,
    ) -> anyhow::Result<Self> {
        let mut s3 = S3Config::new(&config.bucket);
        s3.prefix = config.prefix.clone();
        s3.endpoint = config.endpoint.clone();
        s3.region = config.region.clone();
        s3.path_style = config.path_style;
        s3.retention = config.retention;
        s3.sse = config.sse.clone();
        let sink = S3Sink::new(s3)
            .await
            .context("cannot set up the S3 client")?;
        Self::open_with(config, sink, data_dir, location, gauges).await
    }

    /// [`AuditLog::open`] with an S3 client already set up (its bucket,
    /// prefix and retention are used, not `config`'s).
    pub async fn open_with(
        config: &AuditConfig,
        sink: S3Sink,
        data_dir: &Path,
        location: &str,
        gauges: AuditGauges,
    ) -> anyhow::Result<Self> {
        let key = AuditKey::from_secret(&config.signing_key)
            .context("cannot read the audit signing key ([audit] signing_key)")?;
        let previous = match &config.previous_signing_key {
            Some(source) => Some(
                AuditKey::from_secret(source)
                    .context("cannot read [audit] previous_signing_key")?,
            ),
            None => None,
        };
        let dir = config
            .spool_dir
            .clone()
            .unwrap_or_else(|| data_dir.join("audit-spool"));
        let mut spool = Spool::open_with(&dir, key, previous)
            .with_context(|| format!("cannot open the audit spool {}", dir.display()))?;
        if spool.is_fresh() {
            recover_head(&sink, &mut spool, &dir).await?;
        } else {
            tokio::spawn(compare_head(sink.clone(), spool.state().clone()));
        }
        if let Some(rotation) = spool.rotate_if_needed(location)? {
            info!(seq = rotation.seq, key_id = %rotation.subject["new_key_id"], "audit signing key rotated");
        }
        if spool.state().last_seq > 0 {
            spool.append(checkpoint(
                &spool,
                location,
                "startup",
                config.checkpoint_every,
            ))?;
        }
        gauges
            .spool_records
            .set(spool.pending().map(|p| p.len()).unwrap_or(0) as i64);
        gauges
            .last_shipped_seq
            .set(spool.state().shipped_seq.min(i64::MAX as u64) as i64);
        let spool = Arc::new(Mutex::new(spool));
        let wake = Arc::new(Notify::new());
        let status = Arc::new(Mutex::new(ShipStatus::default()));
        let (stop, stopped) = watch::channel(false);
        let bucket = sink.config().bucket.clone();
        let shipper = tokio::spawn(ship_loop(
            sink,
            spool.clone(),
            wake.clone(),
            status.clone(),
            gauges,
            stopped.clone(),
        ));
        let checkpointer = tokio::spawn(checkpoint_loop(
            spool.clone(),
            wake.clone(),
            location.to_string(),
            config.checkpoint_every,
            stopped,
        ));
        info!(spool = %dir.display(), %bucket, "audit log open");
        Ok(AuditLog {
            spool,
            wake,
            stop,
            shipper,
            checkpointer,
            status,
            location: location.to_string(),
            every: config.checkpoint_every,
        })
    }

    /// Append a record (signed, chained, fsync'd) and wake the shipper.
    pub fn append(&self, entry: Entry) -> anyhow::Result<AuditRecord> {
        let record = self
            .spool
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .append(entry)?;
        self.wake.notify_one();
        Ok(record)
    }

    /// What the shipper last saw.
    pub fn status(&self) -> ShipStatus {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Write a shutdown checkpoint, try to ship what is pending for up to
    /// `grace`, then stop the shipper. Records not shipped stay spooled for
    /// the next start.
    pub async fn shutdown(self, grace: Duration) {
        self.checkpointer.abort();
        {
            let mut spool = self.spool.lock().unwrap_or_else(|e| e.into_inner());
            if spool.state().last_seq > 0 {
                let entry = checkpoint(&spool, &self.location, "shutdown", self.every);
                if let Err(e) = spool.append(entry) {
                    warn!("cannot write the shutdown checkpoint to the audit spool: {e:#}");
                }
            }
        }
        self.wake.notify_one();
        let _ = self.stop.send(true);
        let abort = self.shipper.abort_handle();
        if tokio::time::timeout(grace, self.shipper).await.is_err() {
            warn!("audit shipper still busy after the grace period; records stay spooled");
            abort.abort();
        }
    }
}

/// Take the chain head from S3 for a spool without state, refusing a head
/// that none of the configured keys signed.
async fn recover_head(sink: &S3Sink, spool: &mut Spool, dir: &Path) -> anyhow::Result<()> {
    let head = sink.head().await.with_context(|| {
        format!(
            "the audit spool {} has no state.json (new, or lost), and the chain head could not \
             be read from S3: refusing to start a second chain that would fork the log",
            dir.display()
        )
    })?;
    let Some((record, record_hash)) = head else {
        return Ok(());
    };
    if let Err(e) = spool.keyring().verify(&record) {
        bail!(
            "the newest audit record in S3 (record {}) does not verify with the configured \
             key(s): {e}; refusing to continue the chain from it (another writer on the same \
             bucket and prefix, or a key that is not configured)",
            record.seq
        );
    }
    spool.set_head(&record, &record_hash)?;
    warn!(
        seq = record.seq,
        "audit spool had no state: chain head recovered from S3, the chain continues after record {}",
        record.seq
    );
    Ok(())
}

/// At start-up, in the background: say loudly when S3's newest record is
/// older than what this spool shipped (records were removed from the end of
/// the log) or newer than what it wrote (another writer).
async fn compare_head(sink: S3Sink, state: super::spool::SpoolState) {
    match sink.head().await {
        Ok(Some((head, _))) if head.seq < state.shipped_seq => error!(
            "the audit log in S3 ends at record {} but this daemon shipped up to record {}: \
             records were removed from the end of the log",
            head.seq, state.shipped_seq
        ),
        Ok(None) if state.shipped_seq > 0 => error!(
            "the audit log in S3 is empty but this daemon shipped up to record {}: \
             the log was removed",
            state.shipped_seq
        ),
        Ok(Some((head, _))) if head.seq > state.last_seq => error!(
            "the audit log in S3 has record {} but this daemon's spool is at record {}: \
             another writer uses the same bucket and prefix; shipping will stall",
            head.seq, state.last_seq
        ),
        Ok(_) => {}
        Err(e) => warn!("cannot read the audit chain head from S3 at start-up: {e:#}"),
    }
}

/// A checkpoint entry naming the spool's current head.
fn checkpoint(spool: &Spool, location: &str, reason: &str, every: Duration) -> Entry {
    let state = spool.state();
    Entry {
        run_id: format!("checkpoint-{}", state.last_seq + 1),
        location: location.to_string(),
        kind: KIND_CHECKPOINT.to_string(),
        subject: json!({
            "head_seq": state.last_seq,
            "head_hash": state.last_hash,
            "reason": reason,
            "every_seconds": every.as_secs(),
        }),
        verdict: None,
    }
}

async fn checkpoint_loop(
    spool: Arc<Mutex<Spool>>,
    wake: Arc<Notify>,
    location: String,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let appended = {
            let mut spool = spool.lock().unwrap_or_else(|e| e.into_inner());
            let entry = checkpoint(&spool, &location, "interval", every);
            spool.append(entry)
        };
        match appended {
            Ok(_) => wake.notify_one(),
            Err(e) => error!("cannot write an audit checkpoint to the spool: {e:#}"),
        }
    }
}

async fn ship_loop(
    sink: S3Sink,
    spool: Arc<Mutex<Spool>>,
    wake: Arc<Notify>,
    status: Arc<Mutex<ShipStatus>>,
    gauges: AuditGauges,
    mut stop: watch::Receiver<bool>,
) {
    let stalled = LogLimiter::new(STALL_LOG_EVERY);
    loop {
        // Read before the pass: a shutdown appends its checkpoint before it
        // signals stop, so a pass that starts after the signal sees it.
        let stopping = *stop.borrow();
        let outcome = ship_once(&sink, &spool).await;
        let pending = {
            let mut s = status.lock().unwrap_or_else(|e| e.into_inner());
            let pass = match outcome {
                Ok(pass) => {
                    if stalled.reset() {
                        info!("audit shipping recovered");
                    }
                    if pass.shipped > 0 {
                        info!(shipped = pass.shipped, "audit records shipped to S3");
                    }
                    s.last_error = None;
                    pass
                }
                Err((message, pass)) => {
                    gauges.ship_failures.inc();
                    if let Some(suppressed) = stalled.check(&message) {
                        error!(
                            pending = pass.pending,
                            suppressed, "audit shipping stalled, records stay spooled: {message}"
                        );
                    }
                    s.last_error = Some(message);
                    pass
                }
            };
            s.shipped += pass.shipped as u64;
            s.pending = pass.pending;
            gauges.spool_records.set(pass.pending as i64);
            if let Some(seq) = pass.last_seq {
                s.last_shipped_seq = seq;
                gauges.last_shipped_seq.set(seq.min(i64::MAX as u64) as i64);
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs_f64())
                    .unwrap_or(0.0);
                gauges.last_shipped_timestamp.set(now);
            }
            pass.pending
        };
        if stopping {
            return;
        }
        let wait = if pending > 0 {
            RETRY_EVERY
        } else {
            Duration::from_secs(3600)
        };
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
            _ = stop.wait_for(|s| *s) => {}
        }
    }
}

/// What one shipping pass did.
#[derive(Debug, Clone, Copy, Default)]
struct Pass {
    shipped: usize,
    pending: usize,
    last_seq: Option<u64>,
}

/// Ship everything pending, each record verified first. Err: (why, what
/// was done before).
async fn ship_once(sink: &S3Sink, spool: &Mutex<Spool>) -> Result<Pass, (String, Pass)> {
    // The spool is read and trimmed under its lock for each record, never
    // across an S3 call: appends are not held up by a slow S3.
    let mut pass = Pass::default();
    loop {
        let next = {
            let spool = spool.lock().unwrap_or_else(|e| e.into_inner());
            let pending = spool.pending().map_err(|e| (format!("{e:#}"), pass))?;
            pass.pending = pending.len();
            match pending.first() {
                None => return Ok(pass),
                Some((seq, _)) => {
                    let bytes = spool
                        .read_bytes(*seq)
                        .map_err(|e| (format!("{e:#}"), pass))?;
                    (*seq, bytes, spool.known_prev_hash(*seq))
                }
            }
        };
        let (seq, bytes, prev) = next;
        let prev = match prev {
            Some(p) => p,
            None => sink
                .hash_of(seq - 1)
                .await
                .map_err(|e| (format!("{e:#}"), pass))?,
        };
        spool
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .check(seq, &bytes, Some(&prev))
            .map_err(|e| (format!("{e:#}"), pass))?;
        if let Err(e) = sink.put_record(seq, &bytes).await {
            return Err((format!("{e}"), pass));
        }
        spool
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .mark_shipped(seq, &hash_bytes(&bytes))
            .map_err(|e| (format!("{e:#}"), pass))?;
        pass.shipped += 1;
        pass.pending = pass.pending.saturating_sub(1);
        pass.last_seq = Some(seq);
    }
}
