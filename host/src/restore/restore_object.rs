//! Step 3: the Velero `Restore` (and its resource-modifier ConfigMap), and
//! waiting for it to finish.
//!
//! The Restore restores each source namespace of the backup into its own
//! volatile namespace: `namespaceMapping {source: volatile}` per source
//! ([`crate::restore::mapping`]; Velero maps every item by its own source
//! namespace, `restoreContext.getSelectedRestoreableItems`,
//! pkg/restore/restore.go),
//! `includeClusterResources` unset (Velero's "auto": only the volumes the
//! restored claims bring along), persistent volumes restored, node ports not
//! preserved (they would clash with production), and nothing with effects
//! outside the namespace (see [`DEFAULT_EXCLUDED`]).
//!
//! # What is not restored
//!
//! [`excluded_resources`]: the NetworkPolicies of the app and of the CNIs
//! (policies are additive: a restored `allow-egress-to-db` would open the
//! sandbox; Velero restores NetworkPolicies like any other namespaced
//! resource), routing objects that publish the app or steer production
//! traffic (Gateway API, Istio, Traefik, Contour, AWS TargetGroupBinding)
//! and, unless rewritten, Ingresses. `exclude_kinds` adds to the list,
//! `keep_kinds` removes from it. A resource the cluster does not know is
//! harmless in the list: Velero keeps unresolvable names as they are
//! (`collections.GetResourceIncludesExcludes`, pkg/util/collections/
//! includes_excludes.go).
//!
//! # Resource modifiers
//!
//! A ConfigMap `<restore>-modifiers` in the Velero namespace holds Velero
//! resource modifier rules (JSON, which is valid YAML; one data key, as
//! Velero requires):
//!
//! - `cronjobs.batch`: `add /spec/suspend "true"` (`add` replaces an
//!   existing member, so it works whether or not the field was set);
//! - `services` of type `LoadBalancer` or `NodePort` (unless
//!   `neutralize_services = false`): a JSON merge patch making them
//!   `ClusterIP` and dropping the fields only external Services may have,
//!   and the external-dns annotations of every Service ([`EXTERNAL_DNS`]);
//! - with `ingress = "rewrite"`, every Ingress: see [`ingress_rules`].
//!
//! **Velero fails open**: when a modifier fails, it records an error and
//! still creates the object as far as it was modified
//! (`restoreContext.restoreItem`, pkg/restore/restore.go: the errors of
//! `ApplyResourceModifierRules` are added to the restore's errors and the
//! item is created; `ApplyResourceModifierRules`, internal/
//! resourcemodifiers/resource_modifiers.go, skips only the failing rule).
//! So every rule here either cannot fail on a valid object (merge patches,
//! `add` on a member of an existing object) or, when it fails, leaves the
//! object in a state the API server rejects (see [`ingress_rules`]).

pub use crate::config::DEFAULT_EXCLUDED;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::Api;
use serde_json::json;

use super::mapping::NamespaceMapping;
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

/// The Restore's name: `{prefix}{test}-{run suffix}` (unique per run,
/// ≤ 63 characters, so usable as the `velero.io/restore-name` label value;
/// with the prefix, which the admission policy checks on volumes).
pub fn restore_name(prefix: &str, test: &str, run_id: &str) -> String {
    super::namespace::volatile_name(prefix, test, run_id)
}

/// The modifier ConfigMap's name.
pub fn modifiers_name(restore: &str) -> String {
    format!("{restore}-modifiers")
}

/// Annotations external-dns publishes DNS records from; removed from
/// restored Services and Ingresses.
pub const EXTERNAL_DNS: &[&str] = &[
    "external-dns.alpha.kubernetes.io/hostname",
    "external-dns.alpha.kubernetes.io/internal-hostname",
    "external-dns.alpha.kubernetes.io/target",
    "external-dns.alpha.kubernetes.io/alias",
    "external-dns.alpha.kubernetes.io/ttl",
    "external-dns.alpha.kubernetes.io/set-identifier",
    "external-dns.alpha.kubernetes.io/controller",
];

/// What the Restore excludes (`spec.excludedResources`), in order:
/// [`DEFAULT_EXCLUDED`] minus `keep_kinds`, Ingresses unless rewritten,
/// then `exclude_kinds`; no duplicates.
pub fn excluded_resources(spec: &RestoreSpec) -> Vec<String> {
    let isolation = &spec.isolation;
    let mut out: Vec<String> = Vec::new();
    let mut push = |r: &str| {
        if !out.iter().any(|x| x == r) {
            out.push(r.to_string());
        }
    };
    for r in DEFAULT_EXCLUDED {
        if !isolation.keep_kinds.iter().any(|k| k == r) {
            push(r);
        }
    }
    if isolation.ingresses == IngressPolicy::Exclude {
        push(INGRESSES);
    }
    for r in &isolation.exclude_kinds {
        push(r);
    }
    out
}

/// The merge patch removing [`EXTERNAL_DNS`] annotations.
fn external_dns_patch() -> serde_json::Value {
    let nulls: serde_json::Map<String, serde_json::Value> = EXTERNAL_DNS
        .iter()
        .map(|a| (a.to_string(), serde_json::Value::Null))
        .collect();
    json!({"metadata": {"annotations": nulls}})
}

/// Rules for Services: `LoadBalancer` and `NodePort` become `ClusterIP`
/// (a merge patch: it cannot fail), without the fields the API server
/// allows only on external Services; every Service loses its external-dns
/// annotations. Conditions match the original type (`matches` is a JSON
/// patch `test`; a missing path just does not match:
/// `matchConditions`, internal/resourcemodifiers/resource_modifiers.go).
///
/// Ports with an explicitly set `nodePort` keep it through Velero's
/// service action even with `preserveNodePorts: false`
/// (`deleteNodePorts`, pkg/restore/actions/service_action.go): the API
/// server then refuses the ClusterIP Service, the restore ends
/// `PartiallyFailed` and the run fails (closed: no node port is opened).
fn service_rules(namespaces: &[String]) -> Vec<serde_json::Value> {
    let mut rules = Vec::new();
    for kind in ["LoadBalancer", "NodePort"] {
        let patch = json!({"spec": {
            "type": "ClusterIP",
            "externalTrafficPolicy": null,
            "healthCheckNodePort": null,
            "loadBalancerIP": null,
            "loadBalancerSourceRanges": null,
            "loadBalancerClass": null,
            "allocateLoadBalancerNodePorts": null,
            "externalIPs": null,
        }});
        rules.push(json!({
            "conditions": {
                "groupResource": "services",
                "namespaces": namespaces,
                "matches": [{"path": "/spec/type", "value": kind}],
            },
            "mergePatches": [{"patchData": patch.to_string()}],
        }));
    }
    rules.push(json!({
        "conditions": {"groupResource": "services", "namespaces": namespaces},
        "mergePatches": [{"patchData": external_dns_patch().to_string()}],
    }));
    rules
}

/// Rules for Ingresses with `ingress = "rewrite"`. A JSON patch cannot
/// address "every element" and Velero creates an object whose patch failed
/// (see the module docs), so instead of rewriting hosts one index at a time
/// (which fails, open, on any other shape) every Ingress is reduced to a
/// shape the rewrite covers completely:
///
/// 1. a merge patch (cannot fail) drops `spec.tls` (production host names
///    and certificate), `spec.defaultBackend` (a catch-all) and the
///    external-dns annotations;
/// 2. a JSON patch keeps only the first rule and sets its host: `copy`
///    rules/0 aside, `replace` the rules with an empty list, `move` the
///    copy back, `add` its host (`add` also sets a host the rule did not
///    have: a host-less rule would match every host). Extra rules (other
///    production hosts) are gone.
///
/// An Ingress without rules (defaultBackend only) makes step 2 fail: Velero
/// records the error and creates the object of step 1, with neither rules
/// nor a default backend, which the API server refuses (an Ingress needs
/// one of them). Either way no production host or catch-all is restored,
/// and the restore ends `PartiallyFailed` (the run fails, naming it).
pub fn ingress_rules(namespaces: &[String], host: &str) -> Vec<serde_json::Value> {
    let mut neutral = external_dns_patch();
    neutral["spec"] = json!({"tls": null, "defaultBackend": null});
    vec![
        json!({
            "conditions": {"groupResource": INGRESSES, "namespaces": namespaces},
            "mergePatches": [{"patchData": neutral.to_string()}],
        }),
        json!({
            "conditions": {"groupResource": INGRESSES, "namespaces": namespaces},
            "patches": [
                {"operation": "copy", "from": "/spec/rules/0", "path": "/spec/vantageRule"},
                {"operation": "replace", "path": "/spec/rules", "value": "[]"},
                {"operation": "move", "from": "/spec/vantageRule", "path": "/spec/rules/-"},
                {"operation": "add", "path": "/spec/rules/0/host", "value": host},
            ],
        }),
    ]
}

/// The Velero resource-modifier rules for `spec` restored as `mapping`
/// says, or None when there is nothing to modify. Conditions name source
/// namespaces: Velero applies the rules before it moves the object into
/// its target namespace (`restoreContext.restoreItem`,
/// pkg/restore/restore.go: `ApplyResourceModifierRules`, then
/// `obj.SetNamespace`).
pub fn modifier_rules(
    spec: &RestoreSpec,
    mapping: &[NamespaceMapping],
) -> Option<serde_json::Value> {
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
    if spec.isolation.neutralize_services {
        rules.extend(service_rules(&spec.source_namespaces));
    }
    if let IngressPolicy::RewriteHost { suffix } = &spec.isolation.ingresses {
        // Each source's Ingresses get its own volatile namespace's host.
        for m in mapping {
            rules.extend(ingress_rules(
                std::slice::from_ref(&m.source),
                &format!("{}.{suffix}", m.volatile),
            ));
        }
    }
    (!rules.is_empty()).then(|| json!({"version": "v1", "resourceModifierRules": rules}))
}

/// The modifier ConfigMap, or None when there is nothing to modify.
pub fn build_modifiers(
    spec: &RestoreSpec,
    restore: &str,
    mapping: &[NamespaceMapping],
    labels: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
) -> Option<ConfigMap> {
    let rules = modifier_rules(spec, mapping)?;
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

/// The Restore of `backup`, each source namespace into its volatile
/// namespace per `mapping`.
pub fn build_restore(
    spec: &RestoreSpec,
    name: &str,
    backup: &str,
    mapping: &[NamespaceMapping],
    modifiers: Option<&str>,
    labels: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
) -> Restore {
    let excluded_resources = excluded_resources(spec);
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
            // One target per source: Velero restores every item of a
            // source namespace into `namespaceMapping[source]`
            // (`getSelectedRestoreableItems` sets the item's
            // `targetNamespace`, `processSelectedResource` creates it if
            // missing, pkg/restore/restore.go).
            namespace_mapping: mapping
                .iter()
                .map(|m| (m.source.clone(), m.volatile.clone()))
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
