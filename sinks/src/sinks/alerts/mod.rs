//! The alerts sink: turns [`RunRecord`]s into Prometheus Alertmanager alerts
//! and generic JSON webhook notifications.
//!
//! [`Alerts::start`] spawns the sink; [`Alerts::observe`] hands it each run
//! record without ever blocking (a bounded queue; a record that does not fit
//! is dropped, counted in [`AlertStats::dropped`] and logged).
//!
//! # When alerts fire and resolve
//!
//! An alert is one check at one location (the daemon's location label). It
//! follows the check's [`CheckState`](crate::result::CheckState),
//! which already applies the failure and success thresholds:
//!
//! - **Down**: the alert fires. It is sent when the check goes down and then
//!   every [`AlertConfig::resend`] while it stays down, with the latest run's
//!   annotations (Alertmanager's recommended behaviour: clients resend active
//!   alerts periodically). Its `startsAt` is the start of the run that went
//!   down and stays the same across resends.
//! - **Up**: a firing alert is resolved (sent once more with `endsAt` = now).
//! - **Pending**: nothing is sent.
//! - [`Alerts::forget`] (the check was removed by a config reload) resolves
//!   the check's alerts.
//!
//! Since every record carries the check's state, a dropped record is caught
//! up by the next one.
//!
//! ## Restarts
//!
//! The daemon reads each check's state back from the history when it starts
//! (see `vantage::daemon::state::resume`) and hands the alerts of checks
//! that were down to [`Alerts::resume`]. The first run after the restart
//! then carries the episode on instead of starting a new one: still down,
//! the alert keeps its `startsAt` (when the check went down before the
//! restart), is resent to Alertmanager at once and is **not** announced to
//! webhooks again; up, it is resolved (its annotations then describe the
//! run that recovered: the failing runs from before the restart are in the
//! history only). An alert a maintenance window had suppressed stays
//! suppressed.
//!
//! ## Maintenance windows
//!
//! While a record's `maintenance` names a window, no firing alert is sent:
//! the sink logs once, at info, that the alert is suppressed and by which
//! window. If the check is still down when the window ends, the alert fires
//! then, with `startsAt` = when the check went down.
//!
//! An alert that was **already firing** when a window started is kept as it
//! is: it is not resolved and not resent. Alertmanager therefore keeps it
//! until its `endsAt` (4 × `resend` after the last send) passes and then
//! considers it resolved; when the window ends with the check still down, it
//! is resent at once with its original `startsAt`, which makes it active
//! again. This keeps a planned intervention from paging anew while not
//! pretending the failure was fixed. Resolutions are always sent, inside a
//! window too: they are good news and clear stale alerts.
//!
//! # Alertmanager (API v2)
//!
//! For each base URL in [`AlertConfig::alertmanagers`] (a path prefix is
//! kept; `user:password@` is sent as basic auth), `POST {base}/api/v2/alerts`
//! with a JSON array of every alert waiting for that Alertmanager:
//!
//! ```json
//! [{
//!   "labels": {
//!     "alertname": "VantageCheckFailing",
//!     "check": "web-home",
//!     "location": "eu-1",
//!     "severity": "critical"
//!   },
//!   "annotations": {
//!     "summary": "503 Service Unavailable in 12 ms",
//!     "description": "status in 200: got 503",
//!     "failing_assertions": "status in 200: got 503\njson /status == \"ok\"",
//!     "run_id": "…"
//!   },
//!   "startsAt": "2025-01-02T03:04:05.678Z",
//!   "endsAt": "2025-01-02T03:08:05.900Z",
//!   "generatorURL": "http://127.0.0.1:9470/#check-web-home"
//! }]
//! ```
//!
//! The check's own result labels are not copied: they may be
//! high-cardinality. `description` is the run's reason (its error message,
//! else its failing assertions, else its summary); `failing_assertions` has
//! one `name: detail` line per failing assertion. A **firing** alert's
//! `endsAt` is now + 4 × `resend`: Alertmanager resolves it by itself if the
//! daemon dies or stops resending. A **resolved** alert's `endsAt` is the
//! time of resolution, and its annotations describe the last failing run.
//!
//! # Webhooks (schema version 1)
//!
//! Each URL in [`AlertConfig::webhooks`] gets one `POST` per notification,
//! with `Content-Type: application/json`:
//!
//! ```json
//! {
//!   "version": "1",
//!   "status": "firing",
//!   "check": "web-home",
//!   "location": "eu-1",
//!   "severity": "critical",
//!   "summary": "503 Service Unavailable in 12 ms",
//!   "reason": "status in 200: got 503",
//!   "failing_assertions": ["status in 200: got 503"],
//!   "run_id": "…",
//!   "started_at": "2025-01-02T03:04:05.678Z",
//!   "ended_at": "2025-01-02T03:09:00.000Z",
//!   "generator_url": "http://127.0.0.1:9470/#check-web-home"
//! }
//! ```
//!
//! - `status`: `firing` or `resolved`; `ended_at` is present only when
//!   resolved. `(check, location, started_at)` identifies an episode.
//! - `reason`, `summary`, `failing_assertions`, `run_id`: from the latest
//!   failing run (for `resolved`, the last failing run).
//! - Timestamps are RFC 3339 in UTC with milliseconds.
//! - Webhooks get **changes only**: one `firing` when the alert starts (or
//!   when a maintenance window that suppressed it ends) and one `resolved`;
//!   they are not resent every `resend`, which suits chat and ticket hooks.
//!   Fields may be added within version 1; a breaking change bumps
//!   `version`.
//!
//! # Delivery
//!
//! Every receiver has its own worker and queue, holding only the latest
//! state of each alert: a newer state (a resend, a resolution) replaces an
//! undelivered older one, so nothing piles up while a receiver is down. A
//! failed delivery (transport error, timeout or non-2xx status) is retried
//! after [`AlertConfig::backoff_initial`], doubling up to
//! [`AlertConfig::backoff_max`], minus up to 10% jitter; other receivers and
//! the scheduler are not held up. [`Alerts::shutdown`] flushes what is
//! pending within its grace period; firing alerts are not resolved on
//! shutdown (the check did not recover), they expire in Alertmanager after
//! their `endsAt` unless a restarted daemon resends them.

mod decide;
mod deliver;
mod payload;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use crate::result::RunRecord;
use decide::{Action, Phase, Tracked};
use deliver::{Counters, Outbox, Receiver, Settings};
use payload::{AlertKey, Notification};

/// How many records [`Alerts::observe`] can queue before dropping.
pub const QUEUE_CAPACITY: usize = 1024;

/// "Dropped a run record" lines: at most one a minute per reason, with the
/// count suppressed.
static DROP_LOG: crate::pace::LogLimiter =
    crate::pace::LogLimiter::new(std::time::Duration::from_secs(60));

/// Where and how to send alerts.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertConfig {
    /// Alertmanager base URLs (e.g. `http://127.0.0.1:9093`); alerts are
    /// posted to `{base}/api/v2/alerts`. Each gets every alert.
    pub alertmanagers: Vec<url::Url>,
    /// Generic webhook URLs; each gets the JSON document described in the
    /// [module docs](self).
    pub webhooks: Vec<url::Url>,
    /// How often a firing alert is resent to Alertmanager (default 1 min;
    /// at least 50 ms). Firing alerts carry `endsAt` = now + 4 × `resend`.
    pub resend: Duration,
    /// Base URL of the daemon's status page, e.g. `http://127.0.0.1:9470`;
    /// alerts link to `{base}/#check-{name}`.
    pub generator_base: String,
    /// Timeout of one delivery request (default 10 s).
    pub timeout: Duration,
    /// First retry delay after a failed delivery (default 1 s; at least
    /// 10 ms).
    pub backoff_initial: Duration,
    /// Longest retry delay (default 60 s; at least `backoff_initial`).
    pub backoff_max: Duration,
}

impl Default for AlertConfig {
    fn default() -> Self {
        AlertConfig {
            alertmanagers: Vec::new(),
            webhooks: Vec::new(),
            resend: Duration::from_secs(60),
            generator_base: "http://127.0.0.1:9470".to_string(),
            timeout: Duration::from_secs(10),
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
        }
    }
}

/// Delivery counters, for metrics. All only grow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AlertStats {
    /// Notifications delivered, counted once per receiver (an Alertmanager
    /// batch of 3 alerts counts 3).
    pub sent: u64,
    /// Delivery attempts that failed (each is retried with backoff).
    pub failed: u64,
    /// Records (or forget requests) dropped because the queue was full or
    /// the sink had stopped.
    pub dropped: u64,
}

/// An alert that was firing (or suppressed) when the daemon last stopped,
/// read back from the history at start-up.
#[derive(Debug, Clone, PartialEq)]
pub struct ResumedAlert {
    /// The check's name.
    pub check: String,
    /// This daemon's location label.
    pub location: String,
    /// When the check went down: the alert's `startsAt`.
    pub since: DateTime<Utc>,
    /// Whether it was sent; false if a maintenance window suppressed it.
    pub sent: bool,
    /// Whether the check's last run was in a maintenance window.
    pub in_maintenance: bool,
}

/// What [`Alerts`] hands its task.
#[derive(Debug)]
enum Msg {
    Record(Arc<RunRecord>),
    /// A check removed; `true`: resolve its firing alerts, `false`: it
    /// moved to another replica, which carries on.
    Forget(String, bool),
    Resume(Vec<ResumedAlert>),
}

/// The running alerts sink. Cheap to clone; every clone talks to the same
/// task.
#[derive(Debug, Clone)]
pub struct Alerts {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    inbox: mpsc::Sender<Msg>,
    counters: Arc<Counters>,
    stop: Mutex<Option<oneshot::Sender<Duration>>>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Alerts {
    /// Start the sink: one task that tracks alerts, and under it one
    /// delivery worker per receiver.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime, or if no HTTP client can be built (the TLS
    /// backend failed to initialise).
    pub fn start(config: AlertConfig) -> Alerts {
        Self::start_with_capacity(config, QUEUE_CAPACITY)
    }

    fn start_with_capacity(config: AlertConfig, capacity: usize) -> Alerts {
        let (inbox, rx) = mpsc::channel(capacity);
        let (stop, stop_rx) = oneshot::channel();
        let counters = Arc::new(Counters::default());
        let engine = Engine::new(&config, counters.clone());
        let task = tokio::spawn(engine.run(rx, stop_rx));
        Alerts {
            shared: Arc::new(Shared {
                inbox,
                counters,
                stop: Mutex::new(Some(stop)),
                task: Mutex::new(Some(task)),
            }),
        }
    }

    /// Hand the sink a finished run. Never blocks or waits: if the queue is
    /// full the record is dropped, counted and logged.
    pub fn observe(&self, record: Arc<RunRecord>) {
        if let Err(e) = self.shared.inbox.try_send(Msg::Record(record)) {
            let (why, msg) = match e {
                mpsc::error::TrySendError::Full(msg) => ("queue full", msg),
                mpsc::error::TrySendError::Closed(msg) => ("sink stopped", msg),
            };
            Counters::add(&self.shared.counters.dropped, 1);
            if let Msg::Record(r) = msg
                && let Some(suppressed) = DROP_LOG.check(why)
            {
                tracing::warn!(
                    check = %r.check(),
                    location = %r.location(),
                    why,
                    suppressed,
                    "alerts sink dropped a run record"
                );
            }
        }
    }

    /// The check was removed (config reload): resolve its alerts. Never
    /// blocks; if the queue is full the request waits in a spawned task.
    pub fn forget(&self, check: &str) {
        self.drop_check(check, true);
    }

    /// The check moved to another replica (sharing by Leases): drop its
    /// alerts here without resolving them; the new owner fires the same
    /// alert again while the check fails, and Alertmanager resolves it by
    /// its `endsAt` otherwise. A "resolved" from here would be false.
    pub fn release(&self, check: &str) {
        self.drop_check(check, false);
    }

    fn drop_check(&self, check: &str, resolve: bool) {
        match self
            .shared
            .inbox
            .try_send(Msg::Forget(check.to_string(), resolve))
        {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(msg)) => {
                match tokio::runtime::Handle::try_current() {
                    Ok(runtime) => {
                        let inbox = self.shared.inbox.clone();
                        runtime.spawn(async move {
                            let _ = inbox.send(msg).await;
                        });
                    }
                    Err(_) => {
                        Counters::add(&self.shared.counters.dropped, 1);
                        tracing::warn!(check, "alerts queue full: removed check not resolved");
                    }
                }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                Counters::add(&self.shared.counters.dropped, 1);
                tracing::warn!(check, "alerts sink stopped: removed check not resolved");
            }
        }
    }

    /// Carry on alerts from before a restart (see the [module
    /// docs](self#restarts)): each is taken up by the first record of its
    /// check. Call it before the first record; waits only if the queue is
    /// full.
    pub async fn resume(&self, alerts: Vec<ResumedAlert>) {
        if alerts.is_empty() {
            return;
        }
        if self.shared.inbox.send(Msg::Resume(alerts)).await.is_err() {
            Counters::add(&self.shared.counters.dropped, 1);
            tracing::warn!("alerts sink stopped: alerts from before the restart not resumed");
        }
    }

    /// Stop the sink: process the records already queued, then deliver what
    /// is pending, retrying until `grace` has passed. Firing alerts are not
    /// resolved (see the [module docs](self)). Calling it from a second clone
    /// does nothing.
    pub async fn shutdown(self, grace: Duration) {
        let stop = lock(&self.shared.stop).take();
        let task = lock(&self.shared.task).take();
        if let Some(stop) = stop {
            let _ = stop.send(grace);
        }
        if let Some(mut task) = task
            && tokio::time::timeout(grace + Duration::from_millis(250), &mut task)
                .await
                .is_err()
        {
            task.abort();
            tracing::warn!("alerts sink did not stop within its grace period");
        }
    }

    /// Delivery counters.
    pub fn stats(&self) -> AlertStats {
        let c = &self.shared.counters;
        AlertStats {
            sent: c.sent.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The task behind [`Alerts`]: tracks every alert, decides what to send,
/// resends firing alerts, and feeds the receivers' outboxes.
struct Engine {
    settings: Arc<Settings>,
    counters: Arc<Counters>,
    client: reqwest::Client,
    receivers: Vec<(Receiver, Arc<Outbox>)>,
    alerts: HashMap<AlertKey, Tracked>,
    /// Alerts from before a restart, waiting for their check's first record.
    resumed: HashMap<AlertKey, ResumedAlert>,
}

impl Engine {
    fn new(config: &AlertConfig, counters: Arc<Counters>) -> Engine {
        let backoff_initial = config.backoff_initial.max(Duration::from_millis(10));
        let settings = Arc::new(Settings {
            resend: config.resend.max(Duration::from_millis(50)),
            generator_base: config.generator_base.clone(),
            backoff_initial,
            backoff_max: config.backoff_max.max(backoff_initial),
        });
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .user_agent(concat!("vantage/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("building the HTTP client for alert delivery");
        let receivers = config
            .alertmanagers
            .iter()
            .map(Receiver::alertmanager)
            .chain(config.webhooks.iter().map(Receiver::webhook))
            .map(|r| (r, Arc::new(Outbox::default())))
            .collect();
        Engine {
            settings,
            counters,
            client,
            receivers,
            alerts: HashMap::new(),
            resumed: HashMap::new(),
        }
    }

    async fn run(mut self, mut inbox: mpsc::Receiver<Msg>, mut stop: oneshot::Receiver<Duration>) {
        let (deadline_tx, deadline_rx) = watch::channel(None);
        let mut workers = JoinSet::new();
        for (receiver, outbox) in &self.receivers {
            workers.spawn(deliver::run(
                receiver.clone(),
                outbox.clone(),
                self.client.clone(),
                self.settings.clone(),
                self.counters.clone(),
                deadline_rx.clone(),
            ));
        }
        tracing::info!(
            alertmanagers = self.count(deliver::Kind::Alertmanager),
            webhooks = self.count(deliver::Kind::Webhook),
            resend = %humantime::format_duration(self.settings.resend),
            "alerts sink started"
        );
        let grace = loop {
            let next_resend = self.alerts.values().filter_map(|t| t.next_resend).min();
            tokio::select! {
                biased;
                grace = &mut stop => break grace.unwrap_or(Duration::ZERO),
                msg = inbox.recv() => match msg {
                    Some(msg) => self.handle(msg),
                    None => break Duration::ZERO,
                },
                _ = tokio::time::sleep_until(next_resend.unwrap_or_else(Instant::now)),
                    if next_resend.is_some() => self.resend_due(),
            }
        };
        // Records observed before the shutdown still count.
        inbox.close();
        while let Ok(msg) = inbox.try_recv() {
            self.handle(msg);
        }
        let deadline = Instant::now() + grace;
        let _ = deadline_tx.send(Some(deadline));
        let flushed = tokio::time::timeout_at(deadline, async {
            while workers.join_next().await.is_some() {}
        })
        .await;
        if flushed.is_err() {
            workers.abort_all();
        }
        tracing::info!(
            firing = self
                .alerts
                .values()
                .filter(|t| t.phase == Phase::Firing)
                .count(),
            "alerts sink stopped"
        );
    }

    fn count(&self, kind: deliver::Kind) -> usize {
        self.receivers
            .iter()
            .filter(|(r, _)| r.kind == kind)
            .count()
    }

    fn handle(&mut self, msg: Msg) {
        match msg {
            Msg::Record(record) => self.observe(record),
            Msg::Forget(check, resolve) => self.forget(&check, resolve),
            Msg::Resume(alerts) => {
                for a in alerts {
                    let key = AlertKey {
                        check: a.check.clone(),
                        location: a.location.clone(),
                    };
                    self.resumed.insert(key, a);
                }
            }
        }
    }

    /// Take up the alert resumed for `key`, if any, with the check's first
    /// record after the restart: tracked as it was before the restart, and
    /// due for a resend to Alertmanager now if it was firing.
    fn take_resumed(&mut self, key: &AlertKey, record: &Arc<RunRecord>) {
        if self.resumed.is_empty() || self.alerts.contains_key(key) {
            return;
        }
        let Some(r) = self.resumed.remove(key) else {
            return;
        };
        let phase = if r.sent {
            Phase::Firing
        } else {
            Phase::Suppressed
        };
        tracing::info!(
            check = %key.check, location = %key.location, since = %payload::rfc3339(r.since),
            sent = r.sent, "alert carried on from before the restart"
        );
        self.alerts.insert(
            key.clone(),
            Tracked {
                phase,
                since: r.since,
                record: record.clone(),
                in_maintenance: r.in_maintenance,
                next_resend: (r.sent && !r.in_maintenance).then(Instant::now),
            },
        );
    }

    fn observe(&mut self, record: Arc<RunRecord>) {
        let key = AlertKey::of(&record);
        self.take_resumed(&key, &record);
        let prev = self.alerts.get(&key);
        let action = decide::decide(prev, &record);
        let (check, location) = (&key.check, &key.location);
        match action {
            Action::Ignore => {}
            Action::Fire { since, announce } => {
                if announce {
                    tracing::info!(%check, %location, severity = %record.severity, reason = %record.reason(), "alert firing");
                } else {
                    tracing::info!(%check, %location, "maintenance window over, check still down: alert resent");
                }
                let tracked = Tracked {
                    phase: Phase::Firing,
                    since,
                    record,
                    in_maintenance: false,
                    next_resend: Some(Instant::now() + self.settings.resend),
                };
                self.send(&key, &tracked, None, announce);
                self.alerts.insert(key, tracked);
            }
            Action::Refresh => {
                if let Some(t) = self.alerts.get_mut(&key) {
                    t.record = record;
                }
            }
            Action::Hold { window, entering } => {
                if entering {
                    tracing::info!(
                        %check, %location, %window,
                        "maintenance window started while the alert was firing: kept as is, not resent"
                    );
                }
                if let Some(t) = self.alerts.get_mut(&key) {
                    t.record = record;
                    t.in_maintenance = true;
                    t.next_resend = None;
                }
            }
            Action::Suppress {
                since,
                window,
                announce,
            } => {
                if announce {
                    tracing::info!(
                        %check, %location, %window, reason = %record.reason(),
                        "alert suppressed: check is down during a maintenance window"
                    );
                }
                self.alerts.insert(
                    key,
                    Tracked {
                        phase: Phase::Suppressed,
                        since,
                        record,
                        in_maintenance: true,
                        next_resend: None,
                    },
                );
            }
            Action::Resolve => {
                tracing::info!(%check, %location, "alert resolved");
                if let Some(t) = self.alerts.remove(&key) {
                    self.send(&key, &t, Some(Utc::now()), true);
                }
            }
            Action::Clear => {
                tracing::info!(
                    %check, %location,
                    "check recovered during a maintenance window: its suppressed alert was never sent"
                );
                self.alerts.remove(&key);
            }
        }
    }

    fn forget(&mut self, check: &str, resolve: bool) {
        self.resumed.retain(|k, _| k.check != check);
        let keys: Vec<AlertKey> = self
            .alerts
            .keys()
            .filter(|k| k.check == check)
            .cloned()
            .collect();
        for key in keys {
            let Some(t) = self.alerts.remove(&key) else {
                continue;
            };
            if t.phase == Phase::Firing && resolve {
                tracing::info!(check = %key.check, location = %key.location, "check removed: alert resolved");
                self.send(&key, &t, Some(Utc::now()), true);
            } else if t.phase == Phase::Firing {
                tracing::info!(check = %key.check, location = %key.location, "check moved to another replica: its firing alert is left to it");
            }
        }
    }

    /// Resend every firing alert whose time has come (Alertmanager only).
    fn resend_due(&mut self) {
        let now = Instant::now();
        let due: Vec<AlertKey> = self
            .alerts
            .iter()
            .filter(|(_, t)| t.next_resend.is_some_and(|at| at <= now))
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            if let Some(t) = self.alerts.get_mut(&key) {
                t.next_resend = Some(now + self.settings.resend);
            }
            if let Some(t) = self.alerts.get(&key) {
                tracing::debug!(check = %key.check, location = %key.location, "alert resent");
                self.send(&key, t, None, false);
            }
        }
    }

    /// Queue one state of an alert for the receivers: Alertmanagers always,
    /// webhooks only when `announce` (a change).
    fn send(
        &self,
        key: &AlertKey,
        t: &Tracked,
        ends_at: Option<chrono::DateTime<Utc>>,
        announce: bool,
    ) {
        let n = Arc::new(Notification {
            key: key.clone(),
            record: t.record.clone(),
            starts_at: t.since,
            ends_at,
        });
        for (receiver, outbox) in &self.receivers {
            if announce || receiver.kind == deliver::Kind::Alertmanager {
                outbox.push(n.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use payload::tests::down;

    #[tokio::test]
    async fn observe_never_waits_and_counts_drops() {
        let alerts = Alerts::start_with_capacity(AlertConfig::default(), 2);
        // The sink's task cannot run before this test yields: the queue fills.
        for i in 0..5 {
            alerts.observe(Arc::new(down("c", "l", i)));
        }
        assert_eq!(alerts.stats().dropped, 3);
        alerts.clone().shutdown(Duration::from_millis(100)).await;
        alerts.observe(Arc::new(down("c", "l", 9)));
        assert_eq!(
            alerts.stats(),
            AlertStats {
                sent: 0,
                failed: 0,
                dropped: 4
            }
        );
        // a second shutdown is a no-op
        alerts.shutdown(Duration::from_millis(100)).await;
    }
}
