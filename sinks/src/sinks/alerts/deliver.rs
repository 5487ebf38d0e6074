//! Delivery: one worker per receiver, each with its own outbox (the latest
//! notification per alert) and its own exponential backoff, so a receiver
//! that is down delays nobody else.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use serde::Serialize;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use vantage_core::units::error_chain;

use super::payload::{self, AlertKey, Notification};

/// Counters behind [`AlertStats`](super::AlertStats).
#[derive(Debug, Default)]
pub(super) struct Counters {
    pub sent: AtomicU64,
    pub failed: AtomicU64,
    pub dropped: AtomicU64,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// Settings every worker shares.
#[derive(Debug)]
pub(super) struct Settings {
    pub resend: Duration,
    pub generator_base: String,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
}

/// What kind of receiver, and so which payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// Alertmanager v2: all pending alerts in one `POST /api/v2/alerts`.
    Alertmanager,
    /// Generic webhook: one `POST` per notification.
    Webhook,
}

/// One receiver: where to post, and how to name it in logs.
#[derive(Debug, Clone)]
pub(super) struct Receiver {
    pub kind: Kind,
    /// The URL to post to.
    pub url: url::Url,
    /// The URL without its password, for logs.
    pub name: String,
}

impl Receiver {
    pub fn alertmanager(base: &url::Url) -> Receiver {
        Receiver {
            kind: Kind::Alertmanager,
            url: payload::alertmanager_endpoint(base),
            name: redacted(base),
        }
    }

    pub fn webhook(url: &url::Url) -> Receiver {
        Receiver {
            kind: Kind::Webhook,
            url: url.clone(),
            name: redacted(url),
        }
    }
}

/// A URL as logs may show it: any password replaced.
fn redacted(url: &url::Url) -> String {
    let mut url = url.clone();
    if url.password().is_some() {
        let _ = url.set_password(Some("redacted"));
    }
    url.to_string()
}

/// The notifications a receiver still has to get: the latest per alert.
#[derive(Debug, Default)]
pub(super) struct Outbox {
    pending: Mutex<HashMap<AlertKey, Arc<Notification>>>,
    wake: Notify,
}

impl Outbox {
    /// Queue `n`, superseding any undelivered notification of the same alert.
    pub fn push(&self, n: Arc<Notification>) {
        self.lock().insert(n.key.clone(), n);
        self.wake.notify_one();
    }

    /// Take everything pending, oldest alert first (by key, for stable
    /// batches).
    fn take(&self) -> Vec<Arc<Notification>> {
        let mut batch: Vec<_> = self.lock().drain().map(|(_, n)| n).collect();
        batch.sort_by(|a, b| a.key.cmp(&b.key));
        batch
    }

    /// Put back what failed, unless a newer notification of the same alert
    /// arrived meanwhile.
    fn requeue(&self, undelivered: Vec<Arc<Notification>>) {
        let mut pending = self.lock();
        for n in undelivered {
            pending.entry(n.key.clone()).or_insert(n);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<AlertKey, Arc<Notification>>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A failed delivery: why, and which notifications did not get through.
struct Failure {
    error: String,
    undelivered: Vec<Arc<Notification>>,
}

/// The worker of one receiver. Runs until `stop` carries a deadline and the
/// outbox is empty, or the deadline passes.
pub(super) async fn run(
    receiver: Receiver,
    outbox: Arc<Outbox>,
    client: reqwest::Client,
    settings: Arc<Settings>,
    counters: Arc<Counters>,
    mut stop: watch::Receiver<Option<Instant>>,
) {
    let mut failures = 0u32;
    loop {
        let batch = outbox.take();
        if batch.is_empty() {
            if stop.borrow().is_some() {
                return;
            }
            tokio::select! {
                _ = outbox.wake.notified() => {}
                changed = stop.changed() => if changed.is_err() { return },
            }
            continue;
        }
        let deadline = *stop.borrow();
        let attempt = send(&receiver, &client, &settings, &counters, batch);
        let result = match deadline {
            Some(deadline) => match tokio::time::timeout_at(deadline, attempt).await {
                Ok(result) => result,
                Err(_) => {
                    tracing::warn!(receiver = %receiver.name, "shutdown grace elapsed during alert delivery");
                    return;
                }
            },
            None => attempt.await,
        };
        let Err(failure) = result else {
            if failures > 0 {
                tracing::info!(receiver = %receiver.name, "alert delivery recovered");
            }
            failures = 0;
            continue;
        };
        Counters::add(&counters.failed, 1);
        failures = failures.saturating_add(1);
        // Up to 10% lower at random: daemons that failed together do not
        // retry in lockstep.
        let delay = crate::pace::backoff(
            failures,
            settings.backoff_initial,
            settings.backoff_max,
            0.1,
        );
        let undelivered = failure.undelivered.len();
        outbox.requeue(failure.undelivered);
        let retry_at = Instant::now() + delay;
        // Sleep until the retry, or until the shutdown deadline if sooner.
        loop {
            let deadline = *stop.borrow();
            if deadline.is_some_and(|d| d <= retry_at) {
                tracing::warn!(
                    receiver = %receiver.name,
                    error = %failure.error,
                    undelivered,
                    "alert delivery failed; shutting down, not retrying"
                );
                return;
            }
            if deadline.is_none() {
                tracing::warn!(
                    receiver = %receiver.name,
                    error = %failure.error,
                    undelivered,
                    retry_in = %humantime::format_duration(round_ms(delay)),
                    "alert delivery failed; will retry"
                );
            }
            tokio::select! {
                _ = tokio::time::sleep_until(retry_at) => break,
                changed = stop.changed() => if changed.is_err() { return },
            }
        }
    }
}

fn round_ms(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis() as u64)
}

/// Post `batch` to `receiver`.
async fn send(
    receiver: &Receiver,
    client: &reqwest::Client,
    settings: &Settings,
    counters: &Counters,
    batch: Vec<Arc<Notification>>,
) -> Result<(), Failure> {
    match receiver.kind {
        Kind::Alertmanager => {
            let now = Utc::now();
            let alerts: Vec<_> = batch
                .iter()
                .map(|n| {
                    payload::alertmanager_alert(n, now, settings.resend, &settings.generator_base)
                })
                .collect();
            match post(client, &receiver.url, &alerts).await {
                Ok(()) => {
                    for n in &batch {
                        log_delivered(&receiver.name, n, "Alertmanager");
                    }
                    Counters::add(&counters.sent, batch.len() as u64);
                    Ok(())
                }
                Err(error) => Err(Failure {
                    error,
                    undelivered: batch,
                }),
            }
        }
        Kind::Webhook => {
            for (i, n) in batch.iter().enumerate() {
                let doc = payload::webhook_payload(n, &settings.generator_base);
                if let Err(error) = post(client, &receiver.url, &doc).await {
                    tracing::debug!(
                        receiver = %receiver.name,
                        check = %n.key.check,
                        location = %n.key.location,
                        %error,
                        "webhook delivery failed"
                    );
                    return Err(Failure {
                        error,
                        undelivered: batch[i..].to_vec(),
                    });
                }
                log_delivered(&receiver.name, n, "webhook");
                Counters::add(&counters.sent, 1);
            }
            Ok(())
        }
    }
}

/// Log at debug level that `n` reached `receiver` (its kind named `to`).
fn log_delivered(receiver: &str, n: &Notification, to: &str) {
    tracing::debug!(
        receiver = %receiver,
        check = %n.key.check,
        location = %n.key.location,
        status = n.status(),
        "alert delivered to {to}"
    );
}

/// `POST` `body` as JSON; any transport error or non-2xx status is an error.
async fn post<T: Serialize + ?Sized>(
    client: &reqwest::Client,
    url: &url::Url,
    body: &T,
) -> Result<(), String> {
    let response = client
        .post(url.clone())
        .json(body)
        .send()
        .await
        .map_err(|e| error_chain(&e.without_url()))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let text = response.text().await.unwrap_or_default();
    let text: String = text.trim().chars().take(200).collect();
    Err(if text.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {text}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::alerts::payload::tests::down;
    use chrono::DateTime;

    fn notification(check: &str, resolved: bool) -> Arc<Notification> {
        let record = Arc::new(down(check, "l", 0));
        Arc::new(Notification {
            key: AlertKey::of(&record),
            record,
            starts_at: DateTime::from_timestamp_millis(0).unwrap(),
            ends_at: resolved.then(Utc::now),
        })
    }

    #[test]
    fn the_latest_state_supersedes_an_undelivered_one() {
        let outbox = Outbox::default();
        outbox.push(notification("a", false));
        outbox.push(notification("b", false));
        outbox.push(notification("a", true));
        let batch = outbox.take();
        assert_eq!(batch.len(), 2);
        assert_eq!(batch[0].key.check, "a");
        assert_eq!(batch[0].status(), "resolved");
        // a failed delivery of an older state does not overwrite a newer one
        outbox.push(notification("b", true));
        outbox.requeue(batch);
        let batch = outbox.take();
        assert_eq!(batch.len(), 2);
        assert!(batch.iter().all(|n| n.status() == "resolved"));
        assert!(outbox.take().is_empty());
    }

    #[test]
    fn passwords_are_not_logged() {
        let url = url::Url::parse("https://user:s3cret@am.example:9093/").unwrap();
        let r = Receiver::alertmanager(&url);
        assert!(!r.name.contains("s3cret"), "{}", r.name);
        assert_eq!(r.url.password(), Some("s3cret"));
    }
}
