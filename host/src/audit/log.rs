//! The audit log as the daemon runs it: records are appended to the fsync'd
//! spool at once (so nothing is lost while S3 is down), and a background
//! shipper sends them to S3 in sequence order: at start-up (replay), after
//! every append, and every [`RETRY_EVERY`] while any are pending.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::{Notify, watch};
use tracing::{info, warn};

use super::record::{AuditKey, AuditRecord};
use super::s3::{S3Config, S3Sink};
use super::spool::{Entry, Spool};
use crate::config::AuditConfig;

/// How often the shipper retries while records are pending.
pub const RETRY_EVERY: Duration = Duration::from_secs(15);

/// An open audit log: the spool and its shipper.
pub struct AuditLog {
    spool: Arc<Mutex<Spool>>,
    wake: Arc<Notify>,
    stop: watch::Sender<bool>,
    shipper: tokio::task::JoinHandle<()>,
    status: Arc<Mutex<ShipStatus>>,
}

/// What the shipper last saw, for metrics and logs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShipStatus {
    /// Records in the spool, not yet in S3.
    pub pending: usize,
    /// Records shipped since start-up.
    pub shipped: u64,
    /// The last shipping error, cleared by a successful pass.
    pub last_error: Option<String>,
}

impl AuditLog {
    /// Open the spool (in `config.spool_dir`, else `{data_dir}/audit-spool`)
    /// with the signing key from its secret, connect to S3 and start the
    /// shipper, which first replays whatever an earlier run left spooled.
    pub async fn open(config: &AuditConfig, data_dir: &Path) -> anyhow::Result<Self> {
        let key = AuditKey::from_secret(&config.signing_key)
            .context("cannot read the audit signing key ([audit] signing_key)")?;
        let dir = config
            .spool_dir
            .clone()
            .unwrap_or_else(|| data_dir.join("audit-spool"));
        let spool = Spool::open(&dir, key)
            .with_context(|| format!("cannot open the audit spool {}", dir.display()))?;
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
        let spool = Arc::new(Mutex::new(spool));
        let wake = Arc::new(Notify::new());
        let status = Arc::new(Mutex::new(ShipStatus::default()));
        let (stop, stopped) = watch::channel(false);
        let shipper = tokio::spawn(ship_loop(
            sink,
            spool.clone(),
            wake.clone(),
            status.clone(),
            stopped,
        ));
        info!(spool = %dir.display(), bucket = %config.bucket, "audit log open");
        Ok(AuditLog {
            spool,
            wake,
            stop,
            shipper,
            status,
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

    /// Try to ship what is pending for up to `grace`, then stop the shipper.
    /// Records not shipped stay spooled for the next start.
    pub async fn shutdown(self, grace: Duration) {
        self.wake.notify_one();
        let _ = self.stop.send(true);
        let abort = self.shipper.abort_handle();
        if tokio::time::timeout(grace, self.shipper).await.is_err() {
            warn!("audit shipper still busy after the grace period; records stay spooled");
            abort.abort();
        }
    }
}

async fn ship_loop(
    sink: S3Sink,
    spool: Arc<Mutex<Spool>>,
    wake: Arc<Notify>,
    status: Arc<Mutex<ShipStatus>>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let outcome = ship_once(&sink, &spool).await;
        let stopping = *stop.borrow();
        {
            let mut s = status.lock().unwrap_or_else(|e| e.into_inner());
            match &outcome {
                Ok((shipped, pending)) => {
                    s.shipped += *shipped as u64;
                    s.pending = *pending;
                    s.last_error = None;
                    if *shipped > 0 {
                        info!(shipped, "audit records shipped to S3");
                    }
                }
                Err((message, pending)) => {
                    s.pending = *pending;
                    if s.last_error.as_deref() != Some(message.as_str()) {
                        warn!(pending, "audit records stay spooled: {message}");
                    }
                    s.last_error = Some(message.clone());
                }
            }
        }
        if stopping {
            return;
        }
        let pending = matches!(outcome, Ok((_, p)) | Err((_, p)) if p > 0);
        let wait = if pending {
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

/// Ship everything pending. Ok: (shipped, still pending); Err: (why,
/// pending).
async fn ship_once(sink: &S3Sink, spool: &Mutex<Spool>) -> Result<(usize, usize), (String, usize)> {
    // The spool is read and trimmed under its lock for each record, never
    // across an S3 call: appends are not held up by a slow S3.
    let mut shipped = 0;
    loop {
        let next = {
            let spool = spool.lock().unwrap_or_else(|e| e.into_inner());
            let pending = spool.pending().map_err(|e| (format!("{e:#}"), 0))?;
            match pending.first() {
                None => return Ok((shipped, 0)),
                Some((seq, _)) => {
                    let bytes = spool
                        .read_bytes(*seq)
                        .map_err(|e| (format!("{e:#}"), pending.len()))?;
                    (*seq, bytes, pending.len())
                }
            }
        };
        let (seq, bytes, pending) = next;
        if let Err(e) = sink.put_record(seq, &bytes).await {
            return Err((format!("{e}"), pending));
        }
        spool
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(seq)
            .map_err(|e| (format!("{e:#}"), pending))?;
        shipped += 1;
    }
}
