//! Step 3: the Velero `Restore` (and its resource-modifier ConfigMap), and
//! waiting for it to finish.
//!
//! The Restore restores the source namespaces of the backup into the
//! volatile namespace: `namespaceMapping {source: volatile}`,
//! `includeClusterResources` unset (Velero's "auto": only the volumes the
//! restored claims bring along), persistent volumes restored, node ports not
//! preserved (they would clash with production), Ingresses excluded unless
//! their hosts are rewritten.
//!
//! # Resource modifiers
//!
//! When CronJobs are suspended or Ingress hosts rewritten, a ConfigMap
//! `<restore>-modifiers` in the Velero namespace holds Velero resource
//! modifier rules (JSON, which is valid YAML; one data key, as Velero
//! requires):
//!
//! - `cronjobs.batch` of the source namespaces: `add /spec/suspend "true"`
//!   (`add` replaces an existing member, so it works whether or not the
//!   field was set);
//! - `ingresses.networking.k8s.io` of the source namespaces:
//!   `replace /spec/rules/0/host` with `<volatile namespace>.<suffix>`.
//!   Only the first rule's host is rewritten (a JSON patch cannot address
//!   "every element"); an Ingress without rules makes Velero record an
//!   error (the restore ends `PartiallyFailed`, so the run fails rather than
//!   exposing production hosts). Use `Exclude` for multi-host Ingresses.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::Api;
use serde_json::json;

use super::report::RestoreInfo;
use super::velero::{
    API_VERSION, Restore, RestorePhase, RestoreSpec as VeleroRestoreSpec, TypedLocalObjectReference,
};
use super::{Pacing, RestoreError, Step};
use crate::config::{IngressPolicy, RestoreSpec};

/// The resource Velero names Ingresses by.
pub const INGRESSES: &str = "ingresses.networking.k8s.io";
/// The ConfigMap data key holding the modifier rules.
pub const MODIFIERS_KEY: &str = "modifiers.yaml";
/// Consecutive failed polls tolerated before the run stops with an error.
pub const MAX_POLL_ERRORS: u32 = 3;

/// The Restore's name: the volatile namespace's (unique per run, ≤ 63
/// characters, so usable as the `velero.io/restore-name` label value).
pub fn restore_name(volatile_namespace: &str) -> String {
    volatile_namespace.to_string()
}

/// The modifier ConfigMap's name.
pub fn modifiers_name(restore: &str) -> String {
    format!("{restore}-modifiers")
}

/// The Velero resource-modifier rules for `spec`, or None when there is
/// nothing to modify.
pub fn modifier_rules(spec: &RestoreSpec, volatile_namespace: &str) -> Option<serde_json::Value> {
    let mut rules = Vec::new();
    if spec.isolation.suspend_cronjobs {
        rules.push(json!({
            "conditions": {
                "groupResource": "cronjobs.batch",
                "namespaces": spec.source_namespaces,
            },
            "patches": [{"operation": "add", "path": "/spec/suspend", "value": "true"}],
        }));
    }
    if let IngressPolicy::RewriteHost { suffix } = &spec.isolation.ingresses {
        rules.push(json!({
            "conditions": {
                "groupResource": INGRESSES,
                "namespaces": spec.source_namespaces,
            },
            "patches": [{
                "operation": "replace",
                "path": "/spec/rules/0/host",
                "value": format!("{volatile_namespace}.{suffix}"),
            }],
        }));
    }
    (!rules.is_empty()).then(|| json!({"version": "v1", "resourceModifierRules": rules}))
}

/// The modifier ConfigMap, or None when there is nothing to modify.
pub fn build_modifiers(
    spec: &RestoreSpec,
    restore: &str,
    volatile_namespace: &str,
    labels: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
) -> Option<ConfigMap> {
    let rules = modifier_rules(spec, volatile_namespace)?;
    let text = serde_json::to_string_pretty(&rules).ok()?;
    Some(ConfigMap {
        metadata: ObjectMeta {
            name: Some(modifiers_name(restore)),
            namespace: Some(spec.velero_namespace.clone()),
            labels: Some(labels.clone()),
            annotations: Some(annotations.clone()),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([(MODIFIERS_KEY.to_string(), text)])),
        ..ConfigMap::default()
    })
}

/// The Restore of `backup` into `volatile_namespace`.
pub fn build_restore(
    spec: &RestoreSpec,
    name: &str,
    backup: &str,
    volatile_namespace: &str,
    modifiers: Option<&str>,
    labels: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
) -> Restore {
    let excluded_resources = match spec.isolation.ingresses {
        IngressPolicy::Exclude => vec![INGRESSES.to_string()],
        IngressPolicy::RewriteHost { .. } => Vec::new(),
    };
    Restore {
        api_version: API_VERSION.to_string(),
        kind: "Restore".to_string(),
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(spec.velero_namespace.clone()),
            labels: Some(labels.clone()),
            annotations: Some(annotations.clone()),
            ..ObjectMeta::default()
        },
        spec: VeleroRestoreSpec {
            backup_name: backup.to_string(),
            included_namespaces: spec.source_namespaces.clone(),
            namespace_mapping: spec
                .source_namespaces
                .iter()
                .map(|source| (source.clone(), volatile_namespace.to_string()))
                .collect(),
            excluded_resources,
            // Unset is Velero's "auto": cluster-scoped objects that
            // namespaced items bring along as additional items (the PV of a
            // bound PVC, the VolumeSnapshotContent of a CSI VolumeSnapshot)
            // are restored, nothing else cluster-scoped is (Velero
            // `pkg/restore/restore.go`, `getOrderedResourceCollection`: a
            // cluster-scoped resource is skipped unless
            // `IsSetToTrue(IncludeClusterResources)` when namespaces are
            // selected). `false` would make `restoreItem` return early for
            // those additional items ("Not restoring item because it's
            // cluster-scoped"), before the PV is renamed or put in
            // `pvsToProvision`: the claim keeps pointing at the production
            // volume and stays Pending. See `volumes` for the proof.
            include_cluster_resources: None,
            restore_pvs: Some(true),
            preserve_node_ports: Some(false),
            resource_modifier: modifiers.map(|name| TypedLocalObjectReference {
                api_group: None,
                kind: "ConfigMap".to_string(),
                name: name.to_string(),
            }),
        },
        status: None,
    }
}

/// How waiting for the Restore ended.
#[derive(Debug, Clone, PartialEq)]
pub struct RestoreWait {
    /// What was last seen of it.
    pub info: RestoreInfo,
    /// Its last phase.
    pub phase: RestorePhase,
    /// From the start of the wait to the poll that saw a terminal phase (or
    /// the timeout).
    pub elapsed: Duration,
}

/// Poll the Restore `name` every `pacing.poll_interval` until its phase is
/// terminal or `timeout` passes (then `info.timed_out`). Up to
/// [`MAX_POLL_ERRORS`] consecutive API errors are tolerated.
pub async fn wait(
    api: &Api<Restore>,
    name: &str,
    timeout: Duration,
    pacing: &Pacing,
) -> Result<RestoreWait, RestoreError> {
    let start = Instant::now();
    let mut info = RestoreInfo {
        name: name.to_string(),
        phase: RestorePhase::Unset.to_string(),
        ..RestoreInfo::default()
    };
    let mut phase = RestorePhase::Unset;
    let mut errors = 0;
    loop {
        match api.get(name).await {
            Ok(restore) => {
                errors = 0;
                phase = update_info(&mut info, &restore);
                if phase.is_terminal() {
                    return Ok(RestoreWait {
                        info,
                        phase,
                        elapsed: start.elapsed(),
                    });
                }
            }
            Err(source) => {
                errors += 1;
                if errors >= MAX_POLL_ERRORS {
                    return Err(RestoreError::Api {
                        step: Step::WatchRestore,
                        source,
                    });
                }
            }
        }
        if start.elapsed() >= timeout {
            info.timed_out = true;
            return Ok(RestoreWait {
                info,
                phase,
                elapsed: start.elapsed(),
            });
        }
        tokio::time::sleep(
            pacing
                .poll_interval
                .min(timeout.saturating_sub(start.elapsed())),
        )
        .await;
    }
}

/// Copy what `restore`'s status says into `info`; its phase.
fn update_info(info: &mut RestoreInfo, restore: &Restore) -> RestorePhase {
    let status = restore.status.clone().unwrap_or_default();
    let phase = RestorePhase::parse(status.phase.as_deref());
    info.phase = phase.to_string();
    info.warnings = status.warnings.unwrap_or(0);
    info.errors = status.errors.unwrap_or(0);
    let mut reasons: Vec<String> = status.failure_reason.into_iter().collect();
    reasons.extend(status.validation_errors.unwrap_or_default());
    info.failure_reason = (!reasons.is_empty()).then(|| reasons.join("; "));
    if let Some(progress) = status.progress {
        info.items_restored = progress.items_restored;
        info.total_items = progress.total_items;
    }
    info.start_timestamp = status.start_timestamp;
    info.completion_timestamp = status.completion_timestamp;
    phase
}
