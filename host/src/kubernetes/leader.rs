//! Leader election for restore tests (`vantage daemon --leader-elect`): one
//! `coordination.k8s.io/v1` Lease, taken and renewed by replacing it with
//! its `resourceVersion`, so that of two replicas writing at once the API
//! server accepts one and answers the other 409 Conflict.
//!
//! The leader counts itself leader only until its last successful renewal
//! plus the lease duration minus a margin, measured on its own monotonic
//! clock from *before* the request was sent, so it stops before any other
//! replica may take over, even when the API server hangs. A replica that
//! cannot renew re-contends; [`Leader::healthy`] turns false when it has
//! not reached the API server for a whole duration.
//!
//! Not `kube-lease-manager` (0.13): its watch loop logs a failed renewal
//! and keeps the leader flag set, which is the failure the issue forbids.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Client;
use kube::api::{Api, PostParams};
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{info, warn};

use crate::pace::AbortOnDrop;

/// What a replica may do with the Lease it just read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// It holds it: renew.
    Renew,
    /// Nobody holds it, or the holder let it expire: take it.
    Take,
    /// Another replica holds it: wait.
    Wait,
}

/// What `me` may do with a Lease held by `holder`, renewed at `renewed`
/// (unix seconds, fractional), valid for `duration`, at `now`.
pub fn step(
    me: &str,
    holder: Option<&str>,
    renewed: Option<f64>,
    duration: Duration,
    now: f64,
) -> Step {
    match (holder, renewed) {
        (Some(h), _) if h == me => Step::Renew,
        (None, _) | (Some(""), _) | (_, None) => Step::Take,
        (Some(_), Some(at)) if at + duration.as_secs_f64() < now => Step::Take,
        _ => Step::Wait,
    }
}

/// Until when the leader may act after a renewal sent at `sent`: the
/// duration less a margin of a third, so it stops before anyone may take
/// over.
pub fn acting_until(sent: Instant, duration: Duration) -> Instant {
    sent + duration - duration / 3
}

/// A replica's part in the election.
pub struct Leader {
    /// Whether this replica is the leader, on every change.
    pub is_leader: watch::Receiver<bool>,
    name: String,
    healthy: Arc<AtomicBool>,
    _task: AbortOnDrop<()>,
}

impl Leader {
    /// Contend for Lease `name` in `namespace` as `identity`.
    pub fn start(
        client: Client,
        namespace: &str,
        name: &str,
        identity: &str,
        duration: Duration,
    ) -> Leader {
        let api: Api<Lease> = Api::namespaced(client, namespace);
        let (tx, rx) = watch::channel(false);
        let healthy = Arc::new(AtomicBool::new(true));
        let task = {
            let (name, identity, healthy) =
                (name.to_string(), identity.to_string(), healthy.clone());
            tokio::spawn(
                async move { contend(api, &name, &identity, duration, tx, &healthy).await },
            )
        };
        Leader {
            is_leader: rx,
            name: name.to_string(),
            healthy,
            _task: AbortOnDrop(task),
        }
    }

    /// The Lease's name.
    pub fn lease_name(&self) -> &str {
        &self.name
    }

    /// False once the API server has not been reached for a whole duration.
    pub fn healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// A handle that reads [`Leader::healthy`].
    pub fn healthy_flag(&self) -> Arc<AtomicBool> {
        self.healthy.clone()
    }
}

/// The election loop: try every third of `duration`; lead until
/// [`acting_until`] of the last success.
async fn contend(
    api: Api<Lease>,
    name: &str,
    identity: &str,
    duration: Duration,
    tx: watch::Sender<bool>,
    healthy: &AtomicBool,
) {
    let period = duration / 3;
    let mut until: Option<Instant> = None;
    let mut reached = Instant::now();
    loop {
        let sent = Instant::now();
        let attempt = tokio::time::timeout(period, attempt(&api, name, identity, duration)).await;
        match attempt {
            Ok(Ok(leads)) => {
                reached = Instant::now();
                until = leads.then(|| acting_until(sent, duration));
            }
            Ok(Err(e)) => warn!(lease = name, "leader election: {e}"),
            Err(_) => warn!(lease = name, "leader election: no answer within {period:?}"),
        }
        healthy.store(reached.elapsed() < duration, Ordering::Relaxed);
        // Lead until `until`; re-check at the next attempt or when it passes.
        let next = sent + period;
        let leads = until.is_some_and(|u| u > Instant::now());
        set(&tx, leads, name, identity);
        match until {
            Some(u) if u > Instant::now() && u < next => {
                tokio::time::sleep_until(u).await;
                set(&tx, false, name, identity);
                tokio::time::sleep_until(next).await;
            }
            _ => tokio::time::sleep_until(next).await,
        }
    }
}

fn set(tx: &watch::Sender<bool>, leads: bool, name: &str, identity: &str) {
    if *tx.borrow() != leads {
        if leads {
            info!(
                lease = name,
                identity, "leader election: this replica leads"
            );
        } else {
            warn!(
                lease = name,
                identity, "leader election: this replica no longer leads"
            );
        }
        let _ = tx.send(leads);
    }
}

/// One read and, if allowed, one write; whether this replica holds the
/// Lease afterwards.
async fn attempt(
    api: &Api<Lease>,
    name: &str,
    identity: &str,
    duration: Duration,
) -> Result<bool, String> {
    let now = k8s_openapi::jiff::Timestamp::now();
    let now_secs = now.as_microsecond() as f64 / 1e6;
    let micro = MicroTime(now);
    let current = api
        .get_opt(name)
        .await
        .map_err(|e| format!("reading Lease {name}: {e}"))?;
    let Some(mut lease) = current else {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(identity.to_string()),
                lease_duration_seconds: Some(duration.as_secs().max(1) as i32),
                acquire_time: Some(micro.clone()),
                renew_time: Some(micro),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            }),
        };
        return match api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(format!("creating Lease {name}: {e}")),
        };
    };
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    let renewed = spec
        .renew_time
        .as_ref()
        .map(|t| t.0.as_microsecond() as f64 / 1e6);
    let held = spec
        .lease_duration_seconds
        .map_or(duration, |s| Duration::from_secs(s.max(0) as u64));
    match step(
        identity,
        spec.holder_identity.as_deref(),
        renewed,
        held,
        now_secs,
    ) {
        Step::Wait => return Ok(false),
        Step::Take => {
            spec.holder_identity = Some(identity.to_string());
            spec.acquire_time = Some(micro.clone());
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        Step::Renew => {}
    }
    spec.renew_time = Some(micro);
    spec.lease_duration_seconds = Some(duration.as_secs().max(1) as i32);
    // The resourceVersion read above makes this a compare-and-swap.
    match api.replace(name, &PostParams::default(), &lease).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
        Err(e) => Err(format!("writing Lease {name}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: Duration = Duration::from_secs(15);

    #[test]
    fn a_replica_takes_a_free_or_expired_lease_and_waits_for_a_held_one() {
        assert_eq!(step("a", None, None, D, 100.0), Step::Take);
        assert_eq!(step("a", Some("a"), Some(90.0), D, 100.0), Step::Renew);
        // Held by b, renewed 10 s ago: wait; at 15 s exactly still b's.
        assert_eq!(step("a", Some("b"), Some(90.0), D, 100.0), Step::Wait);
        assert_eq!(step("a", Some("b"), Some(85.0), D, 100.0), Step::Wait);
        assert_eq!(step("a", Some("b"), Some(84.9), D, 100.0), Step::Take);
        assert_eq!(step("a", Some(""), Some(99.0), D, 100.0), Step::Take);
    }

    #[tokio::test(start_paused = true)]
    async fn a_leader_stops_acting_before_anyone_may_take_over() {
        let sent = Instant::now();
        let until = acting_until(sent, D);
        // Others may take over D after the renewal they saw, which was
        // written after `sent`: the leader stops a third of D earlier.
        assert_eq!(until - sent, Duration::from_secs(10));
        tokio::time::advance(Duration::from_secs(10)).await;
        assert!(until <= Instant::now());
    }
}
