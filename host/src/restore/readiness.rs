//! Step 4: waiting until the restored application is ready.
//!
//! - Named workloads (`readiness.workloads`): each must exist and be ready;
//!   other pods are not looked at.
//! - Otherwise every Deployment and StatefulSet in the namespace must be
//!   ready (at least one must exist: an empty restore is not a ready app),
//!   every pod that is not finished (`Succeeded`/`Failed`) must have the
//!   `Ready` condition, and every PersistentVolumeClaim must be `Bound` (a
//!   Pending claim is a volume the restore did not bring back).
//!
//! A Deployment is ready when its controller observed its current
//! generation and `availableReplicas` and `updatedReplicas` reach
//! `spec.replicas` (default 1); a StatefulSet when `readyReplicas` does.
//! A workload scaled to zero replicas is never ready: nothing of it runs,
//! so nothing proves the restored app works.
//!
//! With several volatile namespaces (one per source namespace) every one is
//! looked at and names are shown as `SOURCE/kind/name`: a named workload
//! must exist in at least one of them (and be ready wherever it exists);
//! otherwise at least one Deployment or StatefulSet must exist in the run
//! (a namespace holding only Services or Secrets is fine), and every
//! workload, pod and claim of every namespace must be ready.

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::{Api, ListParams};

use super::mapping::NamespaceMapping;
use super::report::ReadinessInfo;
use super::restore_object::MAX_POLL_ERRORS;
use super::{Pacing, RestoreError, Step};
use crate::config::{Readiness, Workload, WorkloadKind};

/// How waiting ended.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadinessWait {
    /// Ready and not-ready workloads at the last poll.
    pub info: ReadinessInfo,
    /// From the start of the wait to the poll that saw everything ready (or
    /// the timeout).
    pub elapsed: Duration,
}

/// Poll the volatile namespaces of `mapping` until everything `readiness`
/// asks for is ready or its timeout passes. Up to [`MAX_POLL_ERRORS`]
/// consecutive API errors are tolerated.
pub async fn wait(
    client: &kube::Client,
    mapping: &[NamespaceMapping],
    readiness: &Readiness,
    pacing: &Pacing,
) -> Result<ReadinessWait, RestoreError> {
    let start = Instant::now();
    let mut errors = 0;
    let mut last = ReadinessInfo::default();
    loop {
        match probe_all(client, mapping, &readiness.workloads).await {
            Ok(info) => {
                errors = 0;
                if info.not_ready.is_empty() {
                    return Ok(ReadinessWait {
                        info,
                        elapsed: start.elapsed(),
                    });
                }
                last = info;
            }
            Err(source) => {
                errors += 1;
                if errors >= MAX_POLL_ERRORS {
                    return Err(RestoreError::Api {
                        step: Step::Readiness,
                        source,
                    });
                }
            }
        }
        if start.elapsed() >= readiness.timeout {
            last.timed_out = true;
            return Ok(ReadinessWait {
                info: last,
                elapsed: start.elapsed(),
            });
        }
        let left = readiness.timeout.saturating_sub(start.elapsed());
        tokio::time::sleep(pacing.poll_interval.min(left)).await;
    }
}

/// Why an empty restore is not ready.
const NO_WORKLOADS: &str = "workloads: no Deployment or StatefulSet was restored";

/// One look at every volatile namespace of `mapping` (one namespace: the
/// same as [`probe`]).
pub async fn probe_all(
    client: &kube::Client,
    mapping: &[NamespaceMapping],
    workloads: &[Workload],
) -> Result<ReadinessInfo, kube::Error> {
    if let [only] = mapping {
        return probe(client, &only.volatile, workloads).await;
    }
    let mut info = ReadinessInfo::default();
    if !workloads.is_empty() {
        for w in workloads {
            let mut found = false;
            for m in mapping {
                let one = probe(client, &m.volatile, std::slice::from_ref(w)).await?;
                for name in one.ready {
                    found = true;
                    info.ready.push(format!("{}/{name}", m.source));
                }
                for why in one.not_ready {
                    if why.ends_with(": not found") {
                        continue;
                    }
                    found = true;
                    info.not_ready.push(format!("{}/{why}", m.source));
                }
            }
            if !found {
                let sources: Vec<&str> = mapping.iter().map(|m| m.source.as_str()).collect();
                info.not_ready
                    .push(format!("{w}: not found in {}", sources.join(", ")));
            }
        }
        return Ok(info);
    }
    let mut any_workload = false;
    for m in mapping {
        let one = probe(client, &m.volatile, &[]).await?;
        any_workload |= !one.not_ready.iter().any(|w| w == NO_WORKLOADS);
        info.ready
            .extend(one.ready.into_iter().map(|r| format!("{}/{r}", m.source)));
        info.not_ready.extend(
            one.not_ready
                .into_iter()
                .filter(|w| w != NO_WORKLOADS)
                .map(|w| format!("{}/{w}", m.source)),
        );
    }
    if !any_workload {
        info.not_ready.insert(0, NO_WORKLOADS.to_string());
    }
    Ok(info)
}

/// One look at the namespace.
pub async fn probe(
    client: &kube::Client,
    namespace: &str,
    workloads: &[Workload],
) -> Result<ReadinessInfo, kube::Error> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let statefulsets: Api<StatefulSet> = Api::namespaced(client.clone(), namespace);
    let mut info = ReadinessInfo::default();
    let mut record = |name: String, verdict: Result<(), String>| match verdict {
        Ok(()) => info.ready.push(name),
        Err(why) => info.not_ready.push(format!("{name}: {why}")),
    };

    if !workloads.is_empty() {
        for w in workloads {
            let verdict = match w.kind {
                WorkloadKind::Deployment => deployments
                    .get_opt(&w.name)
                    .await?
                    .map_or(Err("not found".to_string()), |d| deployment_ready(&d)),
                WorkloadKind::StatefulSet => statefulsets
                    .get_opt(&w.name)
                    .await?
                    .map_or(Err("not found".to_string()), |s| statefulset_ready(&s)),
            };
            record(w.to_string(), verdict);
        }
        return Ok(info);
    }

    let all = ListParams::default();
    let deployments = deployments.list(&all).await?.items;
    let statefulsets = statefulsets.list(&all).await?.items;
    if deployments.is_empty() && statefulsets.is_empty() {
        // Shows as NO_WORKLOADS.
        record(
            "workloads".to_string(),
            Err("no Deployment or StatefulSet was restored".to_string()),
        );
    }
    for d in &deployments {
        record(
            format!("deployment/{}", d.metadata.name.as_deref().unwrap_or("?")),
            deployment_ready(d),
        );
    }
    for s in &statefulsets {
        record(
            format!("statefulset/{}", s.metadata.name.as_deref().unwrap_or("?")),
            statefulset_ready(s),
        );
    }
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    for p in pods.list(&all).await?.items {
        let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
        if matches!(phase, Some("Succeeded" | "Failed")) {
            continue;
        }
        record(
            format!("pod/{}", p.metadata.name.as_deref().unwrap_or("?")),
            pod_ready(&p),
        );
    }
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), namespace);
    for c in claims.list(&all).await?.items {
        record(
            format!(
                "persistentvolumeclaim/{}",
                c.metadata.name.as_deref().unwrap_or("?")
            ),
            claim_bound(&c),
        );
    }
    Ok(info)
}

/// A claim is usable once `Bound`.
fn claim_bound(c: &PersistentVolumeClaim) -> Result<(), String> {
    let phase = c.status.as_ref().and_then(|s| s.phase.as_deref());
    if phase == Some(super::volumes::BOUND) {
        return Ok(());
    }
    let volume = c
        .spec
        .as_ref()
        .and_then(|s| s.volume_name.as_deref())
        .filter(|v| !v.is_empty())
        .map(|v| format!(", volume {v}"))
        .unwrap_or_default();
    Err(format!("{}{volume}", phase.unwrap_or("Pending")))
}

/// Zero desired replicas: nothing runs, so nothing is proven.
const SCALED_TO_ZERO: &str = "scaled to 0 replicas: nothing runs to prove the restore";

fn deployment_ready(d: &Deployment) -> Result<(), String> {
    let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    if want <= 0 {
        return Err(SCALED_TO_ZERO.to_string());
    }
    let status = d.status.clone().unwrap_or_default();
    if let (Some(generation), Some(observed)) = (d.metadata.generation, status.observed_generation)
        && observed < generation
    {
        return Err(format!("generation {generation} not observed yet"));
    }
    let available = status.available_replicas.unwrap_or(0);
    let updated = status.updated_replicas.unwrap_or(0);
    if available >= want && updated >= want {
        Ok(())
    } else {
        Err(format!(
            "{available}/{want} available, {updated}/{want} updated"
        ))
    }
}

fn statefulset_ready(s: &StatefulSet) -> Result<(), String> {
    let want = s.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    if want <= 0 {
        return Err(SCALED_TO_ZERO.to_string());
    }
    let ready = s
        .status
        .as_ref()
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0);
    if ready >= want {
        Ok(())
    } else {
        Err(format!("{ready}/{want} ready"))
    }
}

fn pod_ready(p: &Pod) -> Result<(), String> {
    let status = p.status.clone().unwrap_or_default();
    let ready = status
        .conditions
        .unwrap_or_default()
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    if ready {
        Ok(())
    } else {
        Err(format!(
            "not ready (phase {})",
            status.phase.as_deref().unwrap_or("unknown")
        ))
    }
}
