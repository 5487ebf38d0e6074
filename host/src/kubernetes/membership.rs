//! Membership by Leases (`vantage daemon --membership leases`): each
//! replica renews its own `coordination.k8s.io/v1` Lease,
//! `vantage-member-<identity>`, labelled with its group, every quarter of the
//! lease duration, and watches the group's Leases. It reports what it sees
//! as [`Renewal`]s; the daemon's shard rules (`daemon::shard`) decide who is
//! live and who owns what.
//!
//! A replica whose renewals fail knows it: [`Membership::renewing`] turns
//! false three quarters of a duration after its last successful renewal,
//! before the others stop counting it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::api::coordination::v1::Lease;
use kube::Client;
use kube::api::{Api, Patch, PatchParams, ResourceExt};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt as _, watcher};
use serde_json::json;
use tokio::sync::{Notify, watch};
use tracing::{info, warn};

use crate::pace::AbortOnDrop;

/// The label naming a member Lease's group.
pub const GROUP_LABEL: &str = "vantage.dev/shard-group";
/// How often the members are reported even without a change, so that an
/// expiry is noticed within this.
const TICK: std::time::Duration = std::time::Duration::from_millis(250);
/// The field manager of member Leases.
const FIELD_MANAGER: &str = "vantage-membership";

/// One member's last renewal, as its Lease says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Renewal {
    /// The member (its holder identity).
    pub member: String,
    /// `spec.renewTime`, as written (changes on every renewal).
    pub renew_time: String,
    /// `spec.leaseDurationSeconds`.
    pub duration: Duration,
}

/// This replica's membership.
pub struct Membership {
    /// The group's Leases, on every change.
    pub renewals: watch::Receiver<Vec<Renewal>>,
    renewing: Arc<AtomicBool>,
    _tasks: Vec<AbortOnDrop<()>>,
}

impl Membership {
    /// Join `group` in `namespace` as `identity`, with Leases of `duration`.
    pub fn start(
        client: Client,
        namespace: &str,
        group: &str,
        identity: &str,
        duration: Duration,
    ) -> Membership {
        let api: Api<Lease> = Api::namespaced(client, namespace);
        let renewing = Arc::new(AtomicBool::new(false));
        let renew = {
            let (api, renewing) = (api.clone(), renewing.clone());
            let (group, identity) = (group.to_string(), identity.to_string());
            tokio::spawn(async move { renew(api, &group, &identity, duration, &renewing).await })
        };
        let (tx, rx) = watch::channel(Vec::new());
        let notify = Arc::new(Notify::new());
        let (reader, writer) = reflector::store();
        let config = watcher::Config::default().labels(&format!("{GROUP_LABEL}={group}"));
        let stream = reflector::reflector(writer, watcher(api, config).default_backoff());
        let drive = {
            let notify = notify.clone();
            tokio::spawn(async move {
                let mut stream = std::pin::pin!(stream);
                while let Some(event) = stream.next().await {
                    match event {
                        Ok(_) => notify.notify_one(),
                        Err(e) => warn!("membership: watching the Leases: {e} (retrying)"),
                    }
                }
            })
        };
        let publish = tokio::spawn(async move {
            loop {
                let _ = tx.send(renewals(&reader));
                // A tick too: the daemon re-evaluates expiry on each value.
                let _ = tokio::time::timeout(TICK.min(duration / 4), notify.notified()).await;
            }
        });
        Membership {
            renewals: rx,
            renewing,
            _tasks: vec![AbortOnDrop(renew), AbortOnDrop(drive), AbortOnDrop(publish)],
        }
    }

    /// Whether this replica's own Lease is current (renewed within its
    /// duration).
    pub fn renewing(&self) -> bool {
        self.renewing.load(Ordering::Relaxed)
    }

    /// A handle that reads [`Membership::renewing`].
    pub fn renewing_flag(&self) -> Arc<AtomicBool> {
        self.renewing.clone()
    }
}

/// The name of `identity`'s member Lease.
pub fn lease_name(identity: &str) -> String {
    format!("vantage-member-{identity}")
}

/// What the Leases in `store` say.
fn renewals(store: &Store<Lease>) -> Vec<Renewal> {
    let mut out: Vec<Renewal> = store
        .state()
        .iter()
        .filter_map(|lease| {
            let spec = lease.spec.as_ref()?;
            Some(Renewal {
                member: spec.holder_identity.clone()?,
                renew_time: spec.renew_time.as_ref()?.0.to_string(),
                duration: Duration::from_secs(u64::try_from(spec.lease_duration_seconds?).ok()?),
            })
        })
        .collect();
    out.sort_by(|a, b| a.member.cmp(&b.member));
    out
}

/// Renew `identity`'s Lease every quarter of `duration`, forever.
/// `renewing` stays true until three quarters of `duration` after the last
/// renewal that succeeded (counted from when it was sent), so a replica
/// stops running checks before the others may count its Lease expired, and
/// one failed renewal is forgiven. Each attempt is cut off after a quarter
/// (kube's client retries a 503 for minutes).
async fn renew(
    api: Api<Lease>,
    group: &str,
    identity: &str,
    duration: Duration,
    renewing: &AtomicBool,
) {
    let name = lease_name(identity);
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let period = duration / 4;
    let mut current_until: Option<tokio::time::Instant> = None;
    let mut joined = false;
    loop {
        let sent = tokio::time::Instant::now();
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let lease = json!({
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": name, "labels": {GROUP_LABEL: group}},
            "spec": {
                "holderIdentity": identity,
                "leaseDurationSeconds": duration.as_secs().max(1),
                "renewTime": now,
            },
        });
        let apply = Patch::Apply(&lease);
        let patch = api.patch(&name, &params, &apply);
        match tokio::time::timeout(period, patch).await {
            Ok(Ok(l)) => {
                if !joined {
                    info!(lease = %l.name_any(), "membership: joined");
                    joined = true;
                }
                current_until = Some(sent + duration - period);
            }
            Ok(Err(e)) => warn!(lease = %name, "membership: cannot renew: {e}"),
            Err(_) => warn!(lease = %name, "membership: cannot renew: no answer within {period:?}"),
        }
        // Until the next attempt, watch the deadline.
        let next = sent + period;
        loop {
            let current = current_until.is_some_and(|u| u > tokio::time::Instant::now());
            if renewing.swap(current, Ordering::Relaxed) && !current {
                warn!(
                    "membership: this replica's Lease is about to expire: it runs nothing until it renews"
                );
            }
            match current_until {
                Some(u) if current && u < next => tokio::time::sleep_until(u).await,
                _ => {
                    tokio::time::sleep_until(next).await;
                    break;
                }
            }
        }
    }
}
