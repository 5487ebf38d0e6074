//! The daemon in a Kubernetes cluster (feature `kubernetes`): the `Check`
//! and `RestoreTest` resources it runs beside `vantage.toml`
//! (`--kubernetes`), the share of them it runs among its replicas
//! (`--membership leases`), whether it runs restore tests
//! (`--leader-elect`), and the status it writes back.
//!
//! The daemon's loop asks [`Cluster::changed`](crate::daemon::cluster::Cluster::changed) what changed: the resources
//! (compose the configuration again) or the owners (apply the same
//! configuration with another share).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tracing::{info, warn};

use super::shard::dynamic::Dynamic;
use crate::config::{self, Config, ConfigError};
use crate::kubernetes::leader::Leader;
use crate::kubernetes::membership::Membership;
use crate::kubernetes::render::{self, Fragment, ResourceId};
use crate::kubernetes::status::StatusWriter;
use crate::kubernetes::watch::{Scope, Watch};
use crate::pace::AbortOnDrop;
use crate::sinks::Sinks;
use crate::sinks::web::Health;

/// The resources' validation verdicts from [`compose`].
pub type Verdicts = Vec<(ResourceId, Result<(), String>)>;

/// The configuration file's text; with `--kubernetes`, a missing file is
/// an empty one (the resources are the configuration).
pub fn read_base(path: &Path, options: &ClusterOptions) -> Result<String, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && options.watches() => {
            Ok(String::new())
        }
        Err(source) => Err(ConfigError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// The whole configuration: the file `text` (read from `path`) and, when
/// watching, the resources in scope, each validated alone beside it.
pub fn compose(
    text: &str,
    path: &Path,
    cluster: Option<&Cluster>,
) -> Result<(Config, Verdicts), ConfigError> {
    match cluster.and_then(Cluster::fragments) {
        Some(fragments) => render::compose(text, path, fragments).map(|c| (c.config, c.verdicts)),
        None => config::from_str(text, path).map(|c| (c, Vec::new())),
    }
}

/// How the daemon takes part in a cluster (all off by default).
#[derive(Debug, Clone, Default)]
pub struct ClusterOptions {
    /// Watch `Check` and `RestoreTest` resources in this scope
    /// (`--kubernetes`; `None` in the scope list means the daemon's own
    /// namespace).
    pub watch: Option<Scope>,
    /// Share checks with the group's other replicas by Leases.
    pub membership: bool,
    /// Run restore tests only while holding the restore leader Lease.
    pub leader_elect: bool,
    /// The group's name (Lease labels and the leader Lease's name).
    pub group: String,
    /// How long a Lease is valid after its renewal.
    pub lease_duration: Duration,
    /// This replica's identity (`POD_NAME`, else the host name).
    pub identity: Option<String>,
    /// The namespace of the Leases (`POD_NAMESPACE`, else the kubeconfig's).
    pub namespace: Option<String>,
}

impl ClusterOptions {
    /// Whether the daemon talks to a cluster at all.
    pub fn enabled(&self) -> bool {
        self.watch.is_some() || self.membership || self.leader_elect
    }

    /// Whether replicas share the checks by Leases (heartbeats cannot be
    /// shared: their pings reach one replica).
    pub fn shares_checks(&self) -> bool {
        self.membership
    }

    /// Whether resources may stand in for a missing configuration file.
    pub fn watches(&self) -> bool {
        self.watch.is_some()
    }
}

/// What [`Cluster::changed`] saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The resources in scope changed.
    Resources,
    /// The share of the checks this replica runs changed.
    Owners,
}

/// The daemon's cluster side, running.
pub struct Cluster {
    watch: Option<Watch>,
    membership: Option<Membership>,
    dynamic: Option<Dynamic>,
    leader: Option<Leader>,
    status: Option<StatusWriter>,
    _status_task: Option<AbortOnDrop<()>>,
    /// The latest resources in scope.
    fragments: Option<Arc<Vec<Fragment>>>,
    /// Every check and restore test name of the composed configuration.
    names: Vec<String>,
    leading: bool,
    /// The membership or leader task ended (it cannot, short of a panic):
    /// run nothing rather than what was last decided.
    lost: bool,
    /// The task writing the latest verdicts (a newer one replaces it).
    verdict_task: Option<AbortOnDrop<()>>,
    /// The latest verdicts, written again when the share changes (the new
    /// owner of a resource writes its condition).
    last_verdicts: Verdicts,
    client: kube::Client,
    namespace: String,
    identity: String,
    /// `--lease-duration`, when Leases decide who runs what.
    lease_duration: Option<Duration>,
}

/// How long the daemon waits for the first list of resources at start.
const FIRST_LIST: Duration = Duration::from_secs(30);

impl Cluster {
    /// Connect and start what `options` asks for; `None` when it asks for
    /// nothing.
    pub async fn start(
        options: &ClusterOptions,
        data_dir: &Path,
        sinks: &Sinks,
        health: &Health,
    ) -> anyhow::Result<Option<Cluster>> {
        if !options.enabled() {
            return Ok(None);
        }
        let client = kube::Client::try_default()
            .await
            .context("connecting to the Kubernetes API server (in-cluster, or $KUBECONFIG)")?;
        let namespace = options
            .namespace
            .clone()
            .unwrap_or_else(|| client.default_namespace().to_string());
        let identity = options.identity.clone().unwrap_or_else(|| {
            std::env::var("HOSTNAME").unwrap_or_else(|_| format!("vantage-{}", std::process::id()))
        });
        let mut watch = None;
        let mut status = None;
        let mut status_task = None;
        let mut fragments = None;
        if let Some(scope) = &options.watch {
            let scope = match scope {
                Scope::Namespaces(list) if list.is_empty() => {
                    Scope::Namespaces(vec![namespace.clone()])
                }
                other => other.clone(),
            };
            info!(
                ?scope,
                "kubernetes: watching Check and RestoreTest resources"
            );
            let mut w = Watch::start(
                client.clone(),
                scope,
                data_dir.join("kubernetes/components"),
            );
            let first = tokio::time::timeout(FIRST_LIST, w.fragments.wait_for(Option::is_some))
                .await
                .ok()
                .and_then(|r| r.ok().map(|f| f.clone()));
            match first {
                Some(f) => fragments = f,
                None => warn!(
                    "kubernetes: no list of resources within {FIRST_LIST:?}: starting with vantage.toml alone"
                ),
            }
            let (writer, task) = StatusWriter::start(
                client.clone(),
                identity.clone(),
                sinks.board.clone(),
                sinks.tap.subscribe(),
            );
            status = Some(writer);
            status_task = Some(task);
            watch = Some(w);
        }
        let mut membership = None;
        let mut dynamic = None;
        if options.membership {
            info!(%identity, group = %options.group, %namespace, "membership: joining by Lease");
            let m = Membership::start(
                client.clone(),
                &namespace,
                &options.group,
                &identity,
                options.lease_duration,
            );
            let renewing = m.renewing_flag();
            health.add(Arc::new(move || {
                (!renewing.load(Ordering::Relaxed)).then(|| {
                    "this replica's membership Lease is not current: it runs no check".to_string()
                })
            }));
            membership = Some(m);
            // A check handed over by a live member starts a renewal period
            // later: by then its previous owner has seen the change.
            // A replica owns nothing until it has renewed for a third of a
            // lease (the others renew every quarter, so by then each side
            // has seen the other twice).
            let third = options.lease_duration / 3;
            dynamic = Some(Dynamic::new(&identity, third, third));
        }
        let mut leader = None;
        if options.leader_elect {
            let name = format!("{}-restore-leader", options.group);
            info!(lease = %name, %identity, "leader election: contending for the restore tests");
            let l = Leader::start(
                client.clone(),
                &namespace,
                &name,
                &identity,
                options.lease_duration,
            );
            let healthy = l.healthy_flag();
            health.add(Arc::new(move || {
                (!healthy.load(Ordering::Relaxed)).then(|| {
                    "leader election: the API server has not been reached for a lease duration"
                        .to_string()
                })
            }));
            leader = Some(l);
        }
        Ok(Some(Cluster {
            watch,
            membership,
            dynamic,
            leader,
            status,
            _status_task: status_task,
            fragments,
            names: Vec::new(),
            leading: false,
            lost: false,
            verdict_task: None,
            last_verdicts: Vec::new(),
            client,
            namespace,
            identity,
            lease_duration: (options.membership || options.leader_elect)
                .then_some(options.lease_duration),
        }))
    }

    /// The resources in scope (`None`: not watching).
    pub fn fragments(&self) -> Option<&[Fragment]> {
        self.fragments.as_deref().map(Vec::as_slice)
    }

    /// Wait until something the daemon acts on changes.
    pub async fn changed(&mut self) -> Change {
        loop {
            let resources = async {
                match &mut self.watch {
                    Some(w) => w.fragments.changed().await.is_ok(),
                    None => std::future::pending().await,
                }
            };
            let lost = self.lost;
            let leases = async {
                match &mut self.membership {
                    Some(m) if !lost => m.renewals.changed().await.is_ok(),
                    _ => std::future::pending().await,
                }
            };
            let leader = async {
                match &mut self.leader {
                    Some(l) if !lost => l.is_leader.changed().await.is_ok(),
                    _ => std::future::pending().await,
                }
            };
            tokio::select! {
                ok = resources => {
                    if !ok { self.watch = None; continue; }
                    let w = self.watch.as_mut().expect("watching");
                    self.fragments = w.fragments.borrow_and_update().clone();
                    return Change::Resources;
                }
                ok = leases => {
                    if !ok {
                        self.fail_closed("membership");
                        self.reassign();
                        return Change::Owners;
                    }
                    if self.reassign() {
                        return Change::Owners;
                    }
                }
                ok = leader => {
                    if !ok {
                        self.fail_closed("leader election");
                        return Change::Owners;
                    }
                    let l = self.leader.as_mut().expect("electing");
                    let now = *l.is_leader.borrow_and_update();
                    if now != self.leading {
                        self.leading = now;
                        return Change::Owners;
                    }
                }
            }
        }
    }

    /// A cluster task ended: run no shared check and no restore test.
    fn fail_closed(&mut self, what: &str) {
        tracing::error!("{what} stopped: this replica runs no shared check and no restore test");
        self.lost = true;
        self.leading = false;
    }

    /// The composed configuration's names; whether this replica's share
    /// changed.
    pub fn set_names(&mut self, names: Vec<String>) -> bool {
        self.names = names;
        self.reassign()
    }

    /// Run the membership rules over the latest Leases.
    fn reassign(&mut self) -> bool {
        let (Some(m), Some(d)) = (&self.membership, &mut self.dynamic) else {
            return false;
        };
        let renewals = m.renewals.borrow().clone();
        let renewing = m.renewing() && !self.lost;
        d.observe(&renewals, renewing, &self.names, Instant::now())
    }

    /// Whether this replica runs check `name`.
    pub fn runs_check(&self, name: &str) -> bool {
        self.dynamic.as_ref().is_none_or(|d| d.runs(name))
    }

    /// Whether this replica runs restore test `name`: only while leading
    /// with `--leader-elect`, else as any check.
    pub fn runs_restore(&self, name: &str) -> bool {
        match &self.leader {
            Some(_) => self.leading && !self.lost,
            None => self.runs_check(name),
        }
    }

    /// The live members, with `--membership leases`.
    pub fn members(&self) -> Option<usize> {
        self.dynamic.as_ref().map(|d| d.members().len())
    }

    /// How long a restore run cancelled here (its test moved, or this
    /// replica stopped leading) may spend on evidence and cleanup: a
    /// quarter of a lease, so it stops acting on the cluster before the
    /// next runner may start (which adopts what is left). None without
    /// Leases.
    pub fn cancelled_cleanup_within(&self) -> Option<Duration> {
        self.lease_duration.map(|d| d / 4)
    }

    /// Whether this replica leads, with `--leader-elect`.
    pub fn leading(&self) -> Option<bool> {
        self.leader.as_ref().map(|_| self.leading)
    }

    /// Write the resources' validation verdicts (those this replica runs)
    /// in the background; a newer call replaces a write still under way.
    /// Call it after the share is applied; `None`: the last ones again
    /// (after the share changed; what was written already is not).
    pub fn verdicts(&mut self, verdicts: Option<Verdicts>) {
        let Some(status) = self.status.clone() else {
            return;
        };
        let verdicts = match verdicts {
            Some(v) => {
                self.last_verdicts = v.clone();
                v
            }
            None => self.last_verdicts.clone(),
        };
        let runs: std::collections::BTreeSet<String> = verdicts
            .iter()
            .filter(|(id, _)| match id.kind {
                crate::kubernetes::render::Kind::Check => self.runs_check(&id.name),
                crate::kubernetes::render::Kind::RestoreTest => self.runs_restore(&id.name),
            })
            .map(|(id, _)| id.name.clone())
            .collect();
        // An invalid resource is run by nobody: its owner by name writes it.
        let owner = self.dynamic.as_ref().map(|d| {
            let members = d.members().to_vec();
            let me = d.me().to_string();
            move |name: &str| super::shard::rendezvous::owner(name, &members) == Some(me.as_str())
        });
        self.verdict_task = Some(AbortOnDrop(tokio::spawn(async move {
            let decide = |name: &str| match &owner {
                Some(owns) => runs.contains(name) || owns(name),
                None => true,
            };
            status.verdicts(&verdicts, &decide).await;
        })));
    }

    /// On shutdown: give up this replica's Leases (its member Lease, and the
    /// leader Lease if it holds it), so the others take over at once
    /// instead of a lease duration later.
    pub async fn leave(self) {
        use k8s_openapi::api::coordination::v1::Lease;
        let api: kube::Api<Lease> = kube::Api::namespaced(self.client.clone(), &self.namespace);
        if let Some(leader) = self.leader {
            let name = leader.lease_name().to_string();
            drop(leader);
            if self.leading {
                let released = tokio::time::timeout(Duration::from_secs(3), async {
                    let lease = api.get_opt(&name).await?;
                    let mine = lease
                        .as_ref()
                        .and_then(|l| l.spec.as_ref()?.holder_identity.as_deref())
                        == Some(self.identity.as_str());
                    if mine {
                        let rv = lease.and_then(|l| l.metadata.resource_version);
                        let params = kube::api::DeleteParams {
                            preconditions: Some(kube::api::Preconditions {
                                resource_version: rv,
                                uid: None,
                            }),
                            ..Default::default()
                        };
                        api.delete(&name, &params).await?;
                    }
                    Ok::<_, kube::Error>(())
                })
                .await;
                match released {
                    Ok(Ok(())) => info!(lease = %name, "leader election: released on the way out"),
                    _ => {
                        warn!(lease = %name, "leader election: could not release the Lease on the way out")
                    }
                }
            }
        }
        if self.membership.is_some() {
            let name = crate::kubernetes::membership::lease_name(&self.identity);
            drop(self.membership);
            let deleted = tokio::time::timeout(
                Duration::from_secs(3),
                api.delete(&name, &Default::default()),
            )
            .await;
            if !matches!(deleted, Ok(Ok(_))) {
                warn!(lease = %name, "membership: could not delete this replica's Lease on the way out");
            }
        }
    }
}
