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

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::{Api, ListParams};

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

/// Poll `namespace` until everything `readiness` asks for is ready or its
/// timeout passes. Up to [`MAX_POLL_ERRORS`] consecutive API errors are
/// tolerated.
pub async fn wait(
    client: &kube::Client,
    namespace: &str,
    readiness: &Readiness,
    pacing: &Pacing,
) -> Result<ReadinessWait, RestoreError> {
    let start = Instant::now();
    let mut errors = 0;
    let mut last = ReadinessInfo::default();
    loop {
        match probe(client, namespace, &readiness.workloads).await {
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
