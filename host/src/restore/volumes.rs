//! The volumes a restore brought along, and deleting them at cleanup.
//!
//! How Velero gives a restored claim its own volume depends on how the
//! backup holds the data (Velero `pkg/restore/restore.go`,
//! `restoreContext.restoreItem`, the `kuberesource.PersistentVolumes`
//! branch; the PV comes in as an additional item of the claim,
//! `pkg/restore/actions/pvc_action.go`, `Execute`):
//!
//! - a native snapshot: `handlePVHasNativeSnapshot` creates the PV from the
//!   snapshot, renamed (`velero-clone-<uuid>`) when the namespace is mapped
//!   and the original still exists; it carries `velero.io/restore-name`;
//! - a file-system backup (`PodVolumeBackup`) or a CSI snapshot: the PV is
//!   put in `pvsToProvision` and not restored; the claim loses
//!   `spec.volumeName` and the cluster's provisioner creates a new volume
//!   (CSI: from the VolumeSnapshotContent restored as an additional item of
//!   the VolumeSnapshot, `pkg/restore/actions/csi/volumesnapshot_action.go`).
//!   Such a volume carries **no** Velero label, and with a `Retain` storage
//!   class it outlives its claim: a Released copy of production data.
//!
//! Cleanup therefore finds volumes through the claims of the volatile
//! namespace (`spec.volumeName`), before the namespace is deleted. A volume
//! is touched only if its `claimRef` names the volatile namespace: a claim
//! that still points at a production volume (as it would if cluster
//! resources were excluded) never gets that volume deleted. Each one is
//! switched to `persistentVolumeReclaimPolicy: Delete` (so the provisioner
//! deletes the disk, not only the object, once the claim is gone), and
//! deleted after the namespace.

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::json;

use super::{delete_ignoring_absent, describe_kube_error};

/// The claim phase a usable claim is in.
pub const BOUND: &str = "Bound";

/// Volumes found through the claims of one namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClaimedVolumes {
    /// PersistentVolume names bound to claims of the namespace, and
    /// switched to reclaim policy `Delete`.
    pub volumes: Vec<String>,
    /// Each failure, with the API's answer.
    pub errors: Vec<String>,
}

/// `volume` belongs to a claim in `namespace` (its `claimRef` says so).
pub fn claimed_from(volume: &PersistentVolume, namespace: &str) -> bool {
    volume
        .spec
        .as_ref()
        .and_then(|s| s.claim_ref.as_ref())
        .and_then(|c| c.namespace.as_deref())
        == Some(namespace)
}

/// Find the volumes the claims of `namespace` are bound to, keep those whose
/// `claimRef` names `namespace`, and make each reclaim-`Delete` (call it
/// before deleting the namespace).
pub async fn prepare(client: &kube::Client, namespace: &str) -> ClaimedVolumes {
    let mut out = ClaimedVolumes::default();
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), namespace);
    let listed = match claims.list(&ListParams::default()).await {
        Ok(l) => l.items,
        Err(e) => {
            out.errors.push(format!(
                "listing persistentvolumeclaims of {namespace}: {}",
                describe_kube_error(&e)
            ));
            return out;
        }
    };
    let volumes: Api<PersistentVolume> = Api::all(client.clone());
    for claim in listed {
        let Some(name) = claim
            .spec
            .as_ref()
            .and_then(|s| s.volume_name.clone())
            .filter(|n| !n.is_empty())
        else {
            continue;
        };
        if out.volumes.contains(&name) {
            continue;
        }
        let volume = match volumes.get_opt(&name).await {
            Ok(Some(v)) => v,
            Ok(None) => continue,
            Err(e) => {
                out.errors.push(format!(
                    "reading persistentvolume {name}: {}",
                    describe_kube_error(&e)
                ));
                continue;
            }
        };
        if !claimed_from(&volume, namespace) {
            // Not ours (e.g. the production volume): never touched.
            continue;
        }
        let policy = volume
            .spec
            .as_ref()
            .and_then(|s| s.persistent_volume_reclaim_policy.as_deref());
        if policy != Some("Delete") {
            let patch = json!({"spec": {"persistentVolumeReclaimPolicy": "Delete"}});
            if let Err(e) = volumes
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                out.errors.push(format!(
                    "setting reclaim policy Delete on persistentvolume {name}: {}",
                    describe_kube_error(&e)
                ));
            }
        }
        out.volumes.push(name);
    }
    out
}

/// Delete the volumes `prepare` found (absent ones count as deleted: the
/// provisioner may have been first). Returns `persistentvolume/NAME` per
/// deleted volume and the failures.
pub async fn delete(client: &kube::Client, names: &[String]) -> (Vec<String>, Vec<String>) {
    let volumes: Api<PersistentVolume> = Api::all(client.clone());
    let mut deleted = Vec::new();
    let mut errors = Vec::new();
    for name in names {
        match delete_ignoring_absent(&volumes, name).await {
            Ok(()) => deleted.push(format!("persistentvolume/{name}")),
            Err(e) => errors.push(format!(
                "deleting persistentvolume {name}: {}",
                describe_kube_error(&e)
            )),
        }
    }
    (deleted, errors)
}
