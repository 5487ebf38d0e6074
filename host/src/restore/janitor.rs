//! The janitor: deletes what runs that crashed (or were cancelled, or
//! timed out while Velero was still restoring) left behind, once it has
//! expired.
//!
//! Everything a run creates carries `app.kubernetes.io/managed-by=vantage`,
//! `vantage.dev/run-id` and the annotation `vantage.dev/expires-at` (start
//! of the run + the test's `ttl`). [`sweep`] deletes, when that time has
//! passed: volatile namespaces, Restores and modifier ConfigMaps in the
//! Velero namespace, and the PersistentVolumes labelled
//! `velero.io/restore-name=<each expired Restore>`. Objects without a
//! parseable expiry are left alone. Run it at start-up and periodically,
//! once per (cluster, Velero namespace).
//!
//! # Velero still restoring
//!
//! A namespace is never deleted while a managed Restore mapping into it is
//! not terminal: Velero would re-create it from the source namespace's
//! labels, without isolation (`restoreContext.restoreItem` →
//! `getNamespace`, pkg/restore/restore.go). Such a Restore and its
//! namespace wait (listed in [`JanitorReport::waiting`]); Velero ends every
//! restore, and marks those a restart interrupted `Failed`
//! (`markInProgressCRsFailed`, pkg/cmd/server/server.go). A Restore Velero
//! has not started (`New` or no phase) is deleted first, so it never
//! starts. An expired Restore's mapping targets are deleted even without
//! Vantage's labels (a namespace Velero re-created after the run deleted
//! it), but only those a run named: the volatile namespace of each source
//! namespace that [`crate::restore::mapping`] computes from the Restore's
//! prefix annotation, included namespaces and run id (or, for a Restore of
//! an older version, the Restore's own name). A labelled Restore mapping
//! into another namespace (written by someone else) never makes the janitor
//! delete that namespace.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, PersistentVolume};
use kube::api::{Api, DeleteParams, ListParams};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::mapping::{PREFIX_ANNOTATION, is_run_target};
use super::namespace::{EXPIRES_AT_ANNOTATION, RUN_ID_LABEL, managed_selector};
use super::velero::{RESTORE_NAME_LABEL, Restore, RestorePhase};
use super::{delete_noted, describe_kube_error};

/// What one sweep deleted and what failed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JanitorReport {
    /// Expired volatile namespaces deleted.
    pub namespaces_deleted: Vec<String>,
    /// Expired Restores deleted.
    pub restores_deleted: Vec<String>,
    /// Expired modifier ConfigMaps deleted.
    pub configmaps_deleted: Vec<String>,
    /// PersistentVolumes of expired Restores deleted.
    pub volumes_deleted: Vec<String>,
    /// Each listing or deletion that failed.
    pub errors: Vec<String>,
    /// Expired objects kept because Velero is still restoring
    /// (`restore/NAME: phase P`, `namespace/NAME: restore R is P`).
    #[serde(default)]
    pub waiting: Vec<String>,
}

/// Delete every expired object a restore test created (see the module
/// docs). Never fails: errors are collected in the report.
pub async fn sweep(
    client: &kube::Client,
    velero_namespace: &str,
    now: DateTime<Utc>,
) -> JanitorReport {
    let mut sweep = Sweep {
        namespaces: Api::all(client.clone()),
        restores: Api::namespaced(client.clone(), velero_namespace),
        configmaps: Api::namespaced(client.clone(), velero_namespace),
        volumes: Api::all(client.clone()),
        now,
        report: JanitorReport::default(),
    };
    // Unknown managed Restores (the list failed): no namespace is deleted
    // this time.
    if let Some(managed) = sweep.managed_restores().await {
        sweep.expired_namespaces(&still_restoring(&managed)).await;
        for restore in managed.iter().filter(|r| is_expired(r.meta(), now)) {
            sweep.expired_restore(restore).await;
        }
    }
    sweep.expired_configmaps().await;
    sweep.report
}

/// One sweep of one (cluster, Velero namespace): the APIs it deletes
/// through and what it has done so far.
struct Sweep {
    namespaces: Api<Namespace>,
    restores: Api<Restore>,
    configmaps: Api<ConfigMap>,
    volumes: Api<PersistentVolume>,
    now: DateTime<Utc>,
    report: JanitorReport,
}

/// Which namespaces Velero may still be restoring into, with why: the
/// mapping targets of every managed Restore that is not terminal.
fn still_restoring(managed: &[Restore]) -> BTreeMap<String, String> {
    let mut running = BTreeMap::new();
    for r in managed {
        let phase = phase_of(r);
        if !phase.is_terminal() {
            for target in r.spec.namespace_mapping.values() {
                running.insert(
                    target.clone(),
                    format!("restore {} is {phase}", r.name_any()),
                );
            }
        }
    }
    running
}

impl Sweep {
    /// The Restores Vantage made (of any age), or `None` when they cannot
    /// be listed (noted in the report).
    async fn managed_restores(&mut self) -> Option<Vec<Restore>> {
        let listed = self
            .restores
            .list(&ListParams::default().labels(&managed_selector()))
            .await;
        match listed {
            Ok(list) => Some(list.items),
            Err(e) => {
                self.report
                    .errors
                    .push(format!("listing restores: {}", describe_kube_error(&e)));
                None
            }
        }
    }

    /// Delete the expired volatile namespaces, except those in `running`
    /// (they wait).
    async fn expired_namespaces(&mut self, running: &BTreeMap<String, String>) {
        for name in expired(&self.namespaces, self.now, &mut self.report.errors).await {
            if let Some(why) = running.get(&name) {
                self.report.waiting.push(format!("namespace/{name}: {why}"));
                continue;
            }
            if delete_noted(
                &self.namespaces,
                "namespace",
                &name,
                &mut self.report.errors,
            )
            .await
            {
                self.report.namespaces_deleted.push(name);
            }
        }
    }

    /// Clean up after one expired Restore: not started, it goes first
    /// (so Velero never starts it), then its namespaces; terminal, its
    /// namespaces and volumes go, then the Restore once its namespaces are
    /// gone; still restoring, it waits.
    async fn expired_restore(&mut self, restore: &Restore) {
        let name = restore.name_any();
        let phase = phase_of(restore);
        let not_started = matches!(phase, RestorePhase::Unset | RestorePhase::New);
        if !phase.is_terminal() && !not_started {
            self.report
                .waiting
                .push(format!("restore/{name}: phase {phase}"));
            return;
        }
        // Delete it before its namespace, so Velero never starts it.
        if not_started && !self.delete_restore(&name).await {
            return;
        }
        let targets_gone = self.delete_targets(restore, &name).await;
        if not_started {
            return;
        }
        self.delete_volumes(&name).await;
        // The Restore is the record of its namespace: kept until that is
        // gone, so the next sweep retries.
        if targets_gone {
            self.delete_restore(&name).await;
        }
    }

    /// Delete the Restore `name`; whether it is gone.
    async fn delete_restore(&mut self, name: &str) -> bool {
        let deleted = delete_noted(&self.restores, "restore", name, &mut self.report.errors).await;
        if deleted {
            self.report.restores_deleted.push(name.to_string());
        }
        deleted
    }

    /// Delete the namespaces a run named as `restore`'s mapping targets,
    /// labelled or (re-created by Velero) not; whether they are all gone.
    async fn delete_targets(&mut self, restore: &Restore, name: &str) -> bool {
        let mut targets_gone = true;
        for (source, target) in &restore.spec.namespace_mapping {
            if !named_by_run(restore, source, target)
                || self.report.namespaces_deleted.contains(target)
            {
                continue;
            }
            match delete_existing(&self.namespaces, target).await {
                Ok(true) => self.report.namespaces_deleted.push(target.clone()),
                Ok(false) => {}
                Err(e) => {
                    targets_gone = false;
                    self.report.errors.push(format!(
                        "deleting namespace {target} (mapping target of restore {name}): {}",
                        describe_kube_error(&e)
                    ));
                }
            }
        }
        targets_gone
    }

    /// Delete the PersistentVolumes labelled with the Restore `name`.
    async fn delete_volumes(&mut self, name: &str) {
        let selector = format!("{RESTORE_NAME_LABEL}={name}");
        let list = match self
            .volumes
            .list(&ListParams::default().labels(&selector))
            .await
        {
            Ok(list) => list,
            Err(e) => {
                self.report.errors.push(format!(
                    "listing persistentvolumes of restore {name}: {}",
                    describe_kube_error(&e)
                ));
                return;
            }
        };
        for pv in list.items {
            let pv_name = pv.name_any();
            let errors = &mut self.report.errors;
            if delete_noted(&self.volumes, "persistentvolume", &pv_name, errors).await {
                self.report.volumes_deleted.push(pv_name);
            }
        }
    }

    /// Delete the expired modifier ConfigMaps.
    async fn expired_configmaps(&mut self) {
        for name in expired(&self.configmaps, self.now, &mut self.report.errors).await {
            if delete_noted(
                &self.configmaps,
                "configmap",
                &name,
                &mut self.report.errors,
            )
            .await
            {
                self.report.configmaps_deleted.push(name);
            }
        }
    }
}

/// Whether `target`, the mapping target of `source` in `restore`, is a
/// volatile namespace the run that made `restore` named (module docs).
fn named_by_run(restore: &Restore, source: &str, target: &str) -> bool {
    let meta = restore.meta();
    // Before one namespace per source: the namespace was the Restore's name.
    if meta.name.as_deref() == Some(target) {
        return true;
    }
    let prefix = meta
        .annotations
        .as_ref()
        .and_then(|a| a.get(PREFIX_ANNOTATION));
    let run_id = meta.labels.as_ref().and_then(|l| l.get(RUN_ID_LABEL));
    match (prefix, run_id) {
        (Some(prefix), Some(run_id)) => is_run_target(
            prefix,
            &restore.spec.included_namespaces,
            run_id,
            source,
            target,
        ),
        _ => false,
    }
}

/// A Restore's phase.
fn phase_of(restore: &Restore) -> RestorePhase {
    RestorePhase::parse(restore.status.as_ref().and_then(|s| s.phase.as_deref()))
}

/// Whether `meta`'s expiry annotation is before `now`.
fn is_expired(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    now: DateTime<Utc>,
) -> bool {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(EXPIRES_AT_ANNOTATION))
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .is_some_and(|t| t < now)
}

/// Delete `name`: Ok(true) if it existed, Ok(false) if already absent.
async fn delete_existing<K>(api: &Api<K>, name: &str) -> Result<bool, kube::Error>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(false),
        Err(e) => Err(e),
    }
}

/// Names of the managed objects of `api` whose expiry is before `now`.
async fn expired<K>(api: &Api<K>, now: DateTime<Utc>, errors: &mut Vec<String>) -> Vec<String>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
{
    let list = match api
        .list(&ListParams::default().labels(&managed_selector()))
        .await
    {
        Ok(list) => list,
        Err(e) => {
            errors.push(format!(
                "listing {}: {}",
                K::plural(&()),
                describe_kube_error(&e)
            ));
            return Vec::new();
        }
    };
    list.items
        .iter()
        .filter(|o| is_expired(o.meta(), now))
        .filter_map(|o| o.meta().name.clone())
        .collect()
}
