//! Membership by Leases (`vantage daemon --membership leases`): each
//! replica renews its own `coordination.k8s.io/v1` Lease,
//! `vantage-member-<identity>`, labelled with its group, every third of the
//! lease duration, and watches the group's Leases. It reports what it sees
//! as [`Renewal`]s; the daemon's shard rules (`daemon::shard`) decide who is
//! live and who owns what.
//!
//! A replica whose renewals fail knows it: [`Membership::renewing`] turns
//! false once its own Lease has gone a whole duration without a successful
//! renewal, the moment the others stop counting it.

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

/// Renew `identity`'s Lease every third of `duration`, forever; `renewing`
/// says whether the last success is less than `duration` old.
async fn renew(
    api: Api<Lease>,
    group: &str,
    identity: &str,
    duration: Duration,
    renewing: &AtomicBool,
) {
    let name = lease_name(identity);
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let mut last_ok: Option<tokio::time::Instant> = None;
    let mut ticks = tokio::time::interval(duration / 3);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
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
        match api.patch(&name, &params, &Patch::Apply(&lease)).await {
            Ok(l) => {
                if last_ok.is_none() {
                    info!(lease = %l.name_any(), "membership: joined");
                }
                last_ok = Some(tokio::time::Instant::now());
            }
            Err(e) => warn!(lease = %name, "membership: cannot renew: {e}"),
        }
        let current = last_ok.is_some_and(|t| t.elapsed() < duration);
        if renewing.swap(current, Ordering::Relaxed) && !current {
            warn!("membership: this replica's Lease has expired: it runs nothing until it renews");
        }
    }
}
