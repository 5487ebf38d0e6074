//! The janitor: deletes what runs that crashed (or were cancelled) left
//! behind, once it has expired.
//!
//! Everything a run creates carries `app.kubernetes.io/managed-by=vantage`,
//! `vantage.dev/run-id` and the annotation `vantage.dev/expires-at` (start
//! of the run + the test's `ttl`). [`sweep`] deletes, when that time has
//! passed: volatile namespaces, Restores and modifier ConfigMaps in the
//! Velero namespace, and the PersistentVolumes labelled
//! `velero.io/restore-name=<each expired Restore>`. Objects without a
//! parseable expiry are left alone. Run it at start-up and periodically,
//! once per (cluster, Velero namespace).

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, PersistentVolume};
use kube::api::{Api, ListParams};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::namespace::{EXPIRES_AT_ANNOTATION, managed_selector};
use super::velero::{RESTORE_NAME_LABEL, Restore};
use super::{delete_ignoring_absent, describe_kube_error};

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
}

/// Delete every expired object a restore test created (see the module
/// docs). Never fails: errors are collected in the report.
pub async fn sweep(
    client: &kube::Client,
    velero_namespace: &str,
    now: DateTime<Utc>,
) -> JanitorReport {
    let mut report = JanitorReport::default();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let restores: Api<Restore> = Api::namespaced(client.clone(), velero_namespace);
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), velero_namespace);
    let volumes: Api<PersistentVolume> = Api::all(client.clone());

    for name in expired(&namespaces, now, &mut report.errors).await {
        match delete_ignoring_absent(&namespaces, &name).await {
            Ok(()) => report.namespaces_deleted.push(name),
            Err(e) => report.errors.push(format!(
                "deleting namespace {name}: {}",
                describe_kube_error(&e)
            )),
        }
    }
    for name in expired(&restores, now, &mut report.errors).await {
        let selector = format!("{RESTORE_NAME_LABEL}={name}");
        match volumes.list(&ListParams::default().labels(&selector)).await {
            Ok(list) => {
                for pv in list.items {
                    let pv_name = pv.name_any();
                    match delete_ignoring_absent(&volumes, &pv_name).await {
                        Ok(()) => report.volumes_deleted.push(pv_name),
                        Err(e) => report.errors.push(format!(
                            "deleting persistentvolume {pv_name}: {}",
                            describe_kube_error(&e)
                        )),
                    }
                }
            }
            Err(e) => report.errors.push(format!(
                "listing persistentvolumes of restore {name}: {}",
                describe_kube_error(&e)
            )),
        }
        match delete_ignoring_absent(&restores, &name).await {
            Ok(()) => report.restores_deleted.push(name),
            Err(e) => report.errors.push(format!(
                "deleting restore {name}: {}",
                describe_kube_error(&e)
            )),
        }
    }
    for name in expired(&configmaps, now, &mut report.errors).await {
        match delete_ignoring_absent(&configmaps, &name).await {
            Ok(()) => report.configmaps_deleted.push(name),
            Err(e) => report.errors.push(format!(
                "deleting configmap {name}: {}",
                describe_kube_error(&e)
            )),
        }
    }
    report
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
        .filter(|o| {
            o.meta()
                .annotations
                .as_ref()
                .and_then(|a| a.get(EXPIRES_AT_ANNOTATION))
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .is_some_and(|t| t < now)
        })
        .filter_map(|o| o.meta().name.clone())
        .collect()
}
