//! Where results go: Prometheus metrics, alerts, history, and the HTTP API
//! with the status page. Each sink takes [`RunRecord`]s and never blocks the
//! scheduler.
//!
//! - [`metrics`]: `/metrics`, blackbox_exporter-compatible names.
//! - [`alerts`]: Alertmanager and JSON webhooks.
//! - [`history`]: every run in SQLite.
//! - [`web`]: the HTTP API and the status page.
//! - [`remote_write`]: every run's series pushed to Prometheus-compatible
//!   receivers.

pub mod alerts;
pub mod audit_metrics;
pub mod board;
pub mod history;
pub mod identity;
pub mod metrics;
pub mod remote_write;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod web;

use std::sync::Arc;

use crate::result::RunRecord;
use crate::sinks::board::Board;

/// Every sink, as the scheduler sees them.
#[derive(Clone)]
pub struct Sinks {
    /// The live view of every check (API, status page, metrics gauges).
    pub board: Board,
    /// Prometheus metrics.
    pub metrics: Arc<metrics::Metrics>,
    /// The run history.
    pub history: history::History,
    /// The alert sender.
    pub alerts: alerts::Alerts,
    /// Remote-write receivers (none unless configured).
    pub remote_write: remote_write::RemoteWrite,
    /// Every published record, for consumers above the sinks (the status
    /// of Kubernetes resources).
    pub tap: Tap,
}

/// Every published record, to whoever subscribed; a slow subscriber misses
/// records (it is told how many), never holds up a run.
#[derive(Clone)]
pub struct Tap(tokio::sync::broadcast::Sender<Arc<RunRecord>>);

impl Default for Tap {
    fn default() -> Self {
        Tap(tokio::sync::broadcast::channel(1024).0)
    }
}

impl Tap {
    /// Receive every record published from now on.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Arc<RunRecord>> {
        self.0.subscribe()
    }
}

impl Sinks {
    /// Hand a finished run to every sink. Never blocks: history and alerts
    /// queue the record for their own tasks.
    pub fn publish(&self, record: Arc<RunRecord>) {
        self.metrics.observe(&record);
        self.remote_write.observe(&record);
        self.history.record(record.clone());
        if self.tap.0.receiver_count() > 0 {
            let _ = self.tap.0.send(record.clone());
        }
        self.alerts.observe(record);
    }

    /// Forget a check removed by a reload: its live view, its metrics, and
    /// its alert (resolved). Its history is kept.
    ///
    /// The board entry goes first: the scheduler publishes a run under the
    /// board's lock and only while the check is on the board, so a run that
    /// was in flight either reached every sink before this (and is forgotten
    /// with the rest) or reaches only the history.
    pub fn forget(&self, check: &str) {
        self.board.remove(check);
        self.metrics.forget(check);
        self.alerts.forget(check);
    }

    /// Let go of a check another replica now runs (sharing by Leases): as
    /// [`Sinks::forget`], but a firing alert is not resolved (the new owner
    /// carries on with it).
    pub fn hand_over(&self, check: &str) {
        self.board.remove(check);
        self.metrics.forget(check);
        self.alerts.release(check);
    }
}
