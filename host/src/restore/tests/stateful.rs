//! Stateful applications against the scripted API server: how Velero gives
//! a restored claim a volume (modelled on its code, cited below), readiness
//! of claims and scaled-down workloads, cleanup of provisioned volumes, and
//! the bounds of the verdict (`max_warnings`, `max_backup_age`).
//!
//! # The model of Velero's volume restore
//!
//! Velero restores a claim (`pkg/restore/actions/pvc_action.go`, `Execute`)
//! and, when it was bound, its PV as an *additional item*; a CSI claim
//! instead gets its VolumeSnapshot as additional item
//! (`pkg/restore/actions/csi/pvc_action.go`, `Execute`, which also clears
//! `spec.volumeName` and sets `dataSource`), whose VolumeSnapshotContent is
//! in turn an additional item (`csi/volumesnapshot_action.go`, `Execute`).
//! `restoreContext.restoreItem` (`pkg/restore/restore.go`) returns early for
//! a cluster-scoped item when `boolptr.IsSetToFalse(IncludeClusterResources)`
//! ("Not restoring item because it's cluster-scoped"), i.e. before the PV
//! branch that
//!
//! - renames and creates a natively snapshotted PV
//!   (`handlePVHasNativeSnapshot`, `velero-clone-<uuid>`, labelled with the
//!   restore), then points the claim at it (`renamedPVs`);
//! - or puts a file-system-backed / CSI-snapshotted PV in `pvsToProvision`,
//!   so the claim loses `spec.volumeName` and the provisioner makes a new,
//!   unlabelled volume.
//!
//! So with `includeClusterResources: false` the claim keeps naming the
//! production volume (native, file-system) or waits for a snapshot content
//! that never comes (CSI): Pending. The fake does exactly that, and
//! "provisions" volumes like a `Retain` storage class would: they survive
//! their claim unless someone deletes them.

use super::*;
use crate::config::Acceptance;

/// How the backup holds a claim's data (Velero's `volume.BackupMethod`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Method {
    /// A native (volume snapshotter plugin) snapshot.
    NativeSnapshot,
    /// File-system backup (`PodVolumeBackup`, kopia/restic).
    PodVolumeBackup,
    /// A CSI VolumeSnapshot.
    CsiSnapshot,
}

/// A claim of the source namespace, bound in production to `volume`.
#[derive(Debug, Clone)]
pub(super) struct BackupVolume {
    claim: String,
    volume: String,
    method: Method,
}

/// The stateful part of the fake's world.
#[derive(Debug, Default)]
pub(super) struct Volumes {
    /// The claims in the backup.
    backup: Vec<BackupVolume>,
    /// Claims in the cluster (restored ones; any namespace).
    claims: Vec<Value>,
    /// (claim, volume it got) for every claim a restore bound.
    bound: Vec<(String, String)>,
    /// Volumes "provisioned" so far.
    provisioned: u32,
    /// Services of the volatile namespace.
    services: Vec<Value>,
    /// How each data job's container ends (by `vantage.dev/job`).
    pub(super) job_scripts: BTreeMap<String, JobScript>,
    /// Jobs created, with when (the Job controller's clock).
    jobs: Vec<(Value, std::time::Instant)>,
    /// Pods the Job controller made.
    job_pods: Vec<Value>,
    /// DownloadRequests, and the base URL of the "object storage" their
    /// pre-signed URLs point at (None: an unreachable one).
    download_requests: Vec<Value>,
    pub(super) download_base: Option<String>,
    /// Secrets restored into volatile namespaces (readable only through a
    /// RoleBinding of `vantage-job-secrets` to the caller, see
    /// `secrets_rbac`).
    pub(super) secrets: Vec<Value>,
    /// RoleBindings created, and how many Secret reads each has already
    /// been refused while "propagating".
    pub(super) role_bindings: Vec<Value>,
    binding_lag: u32,
}

/// The user the fake API authenticates Vantage as.
pub(super) const FAKE_USER: &str = "system:serviceaccount:monitoring:vantage";

/// SelfSubjectReview, RoleBindings and Secrets with RBAC: a Secret of a
/// namespace is readable only once a RoleBinding there grants the
/// `vantage-job-secrets` ClusterRole to [`FAKE_USER`]; the first read after
/// the binding is still refused (the authorizer's cache lags).
fn secrets_rbac(world: &mut World, r: &Recorded) -> Option<(u16, Value)> {
    let parts = r.parts();
    let forbidden = |what: &str| {
        (
            403,
            status(
                403,
                "Forbidden",
                &format!(
                    "{what} is forbidden: User \"{FAKE_USER}\" cannot get resource \"secrets\""
                ),
            ),
        )
    };
    let v = &mut world.stateful;
    match (r.method.as_str(), parts.as_slice()) {
        ("POST", ["apis", "authentication.k8s.io", "v1", "selfsubjectreviews"]) => Some((
            201,
            json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview",
                   "metadata": {"creationTimestamp": null},
                   "status": {"userInfo": {"username": FAKE_USER, "uid": "4b7c",
                              "groups": ["system:serviceaccounts", "system:authenticated"]}}}),
        )),
        (
            "POST",
            [
                "apis",
                "rbac.authorization.k8s.io",
                "v1",
                "namespaces",
                ns,
                "rolebindings",
            ],
        ) => {
            let binding = r.body.clone().unwrap_or_default();
            if binding["metadata"]["namespace"] != json!(ns) {
                return Some((400, status(400, "BadRequest", "namespace mismatch")));
            }
            if v.role_bindings
                .iter()
                .any(|b| b["metadata"]["namespace"] == json!(ns) && name_of(b) == name_of(&binding))
            {
                return Some((409, status(409, "AlreadyExists", "rolebinding exists")));
            }
            v.role_bindings.push(binding.clone());
            v.binding_lag = 1;
            Some((201, binding))
        }
        ("GET", ["api", "v1", "namespaces", ns, "secrets", name]) => {
            let granted = v.role_bindings.iter().any(|b| {
                b["metadata"]["namespace"] == json!(ns)
                    && b["roleRef"] == json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "vantage-job-secrets"})
                    && b["subjects"].as_array().is_some_and(|s| {
                        s.iter().any(|s| s["kind"] == "User" && s["name"] == FAKE_USER)
                    })
            });
            if !granted {
                return Some(forbidden(&format!("secrets \"{name}\"")));
            }
            if v.binding_lag > 0 {
                v.binding_lag -= 1;
                return Some(forbidden(&format!("secrets \"{name}\"")));
            }
            Some(v.secrets.iter().find(|s| name_of(s) == *name).map_or_else(
                || not_found("secret"),
                |s| {
                    let mut s = s.clone();
                    s["metadata"]["namespace"] = json!(ns);
                    (200, s)
                },
            ))
        }
        _ => None,
    }
}

/// How a data job's container ends: exit code (None: runs forever) and
/// what it logs.
#[derive(Debug, Clone)]
pub(super) struct JobScript {
    pub(super) exit: Option<i32>,
    pub(super) log: String,
}

/// A map entry: the Job `name` ends with `exit` after logging `log`.
pub(super) fn script(name: &str, exit: Option<i32>, log: impl Into<String>) -> (String, JobScript) {
    let log = log.into();
    (name.to_string(), JobScript { exit, log })
}

fn claim_namespace(c: &Value) -> &str {
    c["metadata"]["namespace"].as_str().unwrap_or("")
}

/// Routes the stateful model answers, and Velero's side effects of a new
/// Restore (then None: the ordinary route stores it).
pub(super) fn answer(world: &mut World, r: &Recorded) -> Option<(u16, Value)> {
    if let Some(answer) = secrets_rbac(world, r) {
        return Some(answer);
    }
    let parts = r.parts();
    match (r.method.as_str(), parts.as_slice()) {
        ("POST", ["velero", "restores"]) => {
            if let Some(restore) = &r.body {
                velero_restores_volumes(world, restore);
            }
            None
        }
        ("GET", ["api", "v1", "namespaces", ns, "persistentvolumeclaims"]) => Some(list(
            "PersistentVolumeClaimList",
            world
                .stateful
                .claims
                .iter()
                .filter(|c| claim_namespace(c) == *ns)
                .cloned()
                .collect(),
        )),
        ("GET", ["api", "v1", "namespaces", _, "services"]) => {
            Some(list("ServiceList", world.stateful.services.clone()))
        }
        ("POST", ["apis", "batch", "v1", "namespaces", _, "jobs"]) => {
            let job = r.body.clone().unwrap_or_default();
            world
                .stateful
                .jobs
                .push((job.clone(), std::time::Instant::now()));
            Some((201, job))
        }
        ("GET", ["apis", "batch", "v1", "namespaces", ns, "jobs", name]) => {
            Some(job_controller(world, ns, name))
        }
        ("GET", ["api", "v1", "namespaces", _, "pods"])
            if r.query.contains("vantage.dev%2Fjob") =>
        {
            Some(list(
                "PodList",
                world
                    .stateful
                    .job_pods
                    .iter()
                    .filter(|p| selected(p, &r.query))
                    .cloned()
                    .collect(),
            ))
        }
        ("GET", ["api", "v1", "namespaces", _, "pods", pod, "log"]) => {
            let job = world
                .stateful
                .job_pods
                .iter()
                .find(|p| name_of(p) == *pod)
                .and_then(|p| p["metadata"]["labels"]["vantage.dev/job"].as_str())
                .map(str::to_string);
            Some(match job.and_then(|j| world.stateful.job_scripts.get(&j)) {
                Some(script) => (200, Value::String(script.log.clone())),
                None => not_found("pod"),
            })
        }
        ("POST", ["velero", "downloadrequests"]) => {
            let request = r.body.clone().unwrap_or_default();
            world.stateful.download_requests.push(request.clone());
            Some((201, request))
        }
        // Velero's DownloadRequest controller: Processed, with a pre-signed
        // URL of `<restore>-logs.gz` / `<restore>-results.gz`.
        ("GET", ["velero", "downloadrequests", name]) => {
            let base = world
                .stateful
                .download_base
                .clone()
                .unwrap_or_else(|| "http://127.0.0.1:9".to_string());
            Some(
                match world
                    .stateful
                    .download_requests
                    .iter_mut()
                    .find(|d| name_of(d) == *name)
                {
                    Some(d) => {
                        let target = &d["spec"]["target"];
                        let file = match target["kind"].as_str() {
                            Some("RestoreLog") => "logs",
                            _ => "results",
                        };
                        let url = format!(
                            "{base}/restores/{}/restore-{}-{file}.gz?X-Amz-Signature=0f3c",
                            target["name"].as_str().unwrap_or(""),
                            target["name"].as_str().unwrap_or("")
                        );
                        d["status"] = json!({"phase": "Processed", "downloadURL": url,
                                             "expiration": ts(Utc::now() + chrono::Duration::minutes(10))});
                        (200, d.clone())
                    }
                    None => not_found("downloadrequest"),
                },
            )
        }
        ("DELETE", ["velero", "downloadrequests", name]) => Some(remove(
            &mut world.stateful.download_requests,
            name,
            "downloadrequest",
        )),
        ("GET", ["api", "v1", "persistentvolumes", name]) => Some(
            world
                .volumes
                .iter()
                .find(|v| name_of(v) == *name)
                .map_or_else(|| not_found("persistentvolume"), |v| (200, v.clone())),
        ),
        ("PATCH", ["api", "v1", "persistentvolumes", name]) => {
            let patch = r.body.clone().unwrap_or_default();
            let Some(i) = world.volumes.iter().position(|v| name_of(v) == *name) else {
                return Some(not_found("persistentvolume"));
            };
            if let Some(policy) = patch["spec"]["persistentVolumeReclaimPolicy"].as_str() {
                world.volumes[i]["spec"]["persistentVolumeReclaimPolicy"] = json!(policy);
            }
            let volume = world.volumes[i].clone();
            // The PV controller reclaims a Released volume whose policy is
            // Delete.
            if volume["status"]["phase"] == "Released"
                && volume["spec"]["persistentVolumeReclaimPolicy"] == "Delete"
            {
                world.volumes.remove(i);
            }
            Some((200, volume))
        }
        ("DELETE", ["api", "v1", "namespaces", ns]) => {
            // The namespace takes its claims; the PV controller then deletes
            // Delete-policy volumes and releases the others.
            let gone: Vec<Value> = world
                .stateful
                .claims
                .iter()
                .filter(|c| claim_namespace(c) == *ns)
                .cloned()
                .collect();
            world.stateful.claims.retain(|c| claim_namespace(c) != *ns);
            for claim in gone {
                let Some(volume) = claim["spec"]["volumeName"].as_str() else {
                    continue;
                };
                let Some(i) = world.volumes.iter().position(|v| {
                    name_of(v) == volume && v["spec"]["claimRef"]["namespace"] == json!(ns)
                }) else {
                    continue;
                };
                if world.volumes[i]["spec"]["persistentVolumeReclaimPolicy"] == "Delete" {
                    world.volumes.remove(i);
                } else {
                    world.volumes[i]["status"]["phase"] = json!("Released");
                }
            }
            None
        }
        ("GET", ["apis", "apps", "v1", "namespaces", ns, "statefulsets"])
            if world
                .stateful
                .claims
                .iter()
                .any(|c| claim_namespace(c) == *ns && c["status"]["phase"] != "Bound") =>
        {
            // A pod whose claim is Pending is never scheduled.
            let mut sets = world.statefulsets.clone();
            for s in &mut sets {
                s["status"]["readyReplicas"] = json!(0);
                s["status"]["availableReplicas"] = json!(0);
            }
            Some(list("StatefulSetList", sets))
        }
        _ => None,
    }
}

/// The Job controller (backoffLimit 0): on the first look the Job is
/// active with a running pod; then it ends as its script says, or, if the
/// container never exits, fails `DeadlineExceeded` once
/// `activeDeadlineSeconds` passed.
fn job_controller(world: &mut World, ns: &str, name: &str) -> (u16, Value) {
    let Some(i) = world
        .stateful
        .jobs
        .iter()
        .position(|(j, _)| name_of(j) == name && j["metadata"]["namespace"] == json!(ns))
    else {
        return not_found("job");
    };
    let (mut job, created) = world.stateful.jobs[i].clone();
    let data_job = job["spec"]["template"]["metadata"]["labels"]["vantage.dev/job"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let script = world.stateful.job_scripts.get(&data_job).cloned();
    let pod_name = format!("{name}-x7k2p");
    let has_pod = world
        .stateful
        .job_pods
        .iter()
        .any(|p| name_of(p) == pod_name);
    let mut pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": pod_name, "namespace": ns,
                     "labels": job["spec"]["template"]["metadata"]["labels"],
                     "creationTimestamp": ts(Utc::now())},
        "spec": job["spec"]["template"]["spec"],
        "status": {"phase": "Running", "containerStatuses": [{"name": "job", "ready": true,
                   "restartCount": 0, "image": "", "imageID": "",
                   "state": {"running": {"startedAt": ts(Utc::now())}}}]},
    });
    let deadline = job["spec"]["activeDeadlineSeconds"]
        .as_u64()
        .unwrap_or(u64::MAX);
    let status = match (has_pod, script.as_ref().and_then(|s| s.exit)) {
        (false, _) => json!({"active": 1, "startTime": ts(Utc::now())}),
        (true, Some(code)) => {
            pod["status"]["phase"] = json!(if code == 0 { "Succeeded" } else { "Failed" });
            pod["status"]["containerStatuses"][0]["state"] = json!({"terminated": {"exitCode": code, "reason": if code == 0 { "Completed" } else { "Error" }}});
            if code == 0 {
                json!({"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]})
            } else {
                json!({"failed": 1, "conditions": [{"type": "Failed", "status": "True",
                       "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}]})
            }
        }
        (true, None) if created.elapsed().as_secs() >= deadline => {
            pod["status"]["phase"] = json!("Failed");
            pod["status"]["containerStatuses"][0]["state"] =
                json!({"terminated": {"exitCode": 137, "reason": "Error"}});
            json!({"failed": 1, "conditions": [{"type": "Failed", "status": "True",
                   "reason": "DeadlineExceeded", "message": "Job was active longer than specified deadline"}]})
        }
        (true, None) => json!({"active": 1}),
    };
    world.stateful.job_pods.retain(|p| name_of(p) != pod_name);
    world.stateful.job_pods.push(pod);
    job["status"] = status;
    world.stateful.jobs[i].0 = job.clone();
    (200, job)
}

/// What Velero makes of the backup's claims for `restore` (module docs).
fn velero_restores_volumes(world: &mut World, restore: &Value) {
    let spec = &restore["spec"];
    let cluster_scoped_skipped = spec["includeClusterResources"] == json!(false);
    let restore_name = name_of(restore).to_string();
    let backup = spec["backupName"].as_str().unwrap_or("").to_string();
    let labels = json!({"velero.io/restore-name": restore_name, "velero.io/backup-name": backup});
    for v in world.stateful.backup.clone() {
        let Some(target) = spec["namespaceMapping"]["shop"].as_str() else {
            continue;
        };
        let mut claim = json!({
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": v.claim, "namespace": target, "labels": labels},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "standard-retain",
                     "resources": {"requests": {"storage": "1Gi"}}},
            "status": {"phase": "Pending"},
        });
        // The volume this claim ends up bound to, and whether Velero
        // created it (labelled) or the provisioner did (unlabelled).
        let got: Option<(String, bool)> = match (v.method, cluster_scoped_skipped) {
            // pvc_action keeps spec.volumeName (resetVolumeBindingInfo
            // only drops annotations); the PV item was skipped, so it is
            // neither renamed nor in pvsToProvision: the claim waits for the
            // production volume, bound elsewhere.
            (Method::NativeSnapshot | Method::PodVolumeBackup, true) => {
                claim["spec"]["volumeName"] = json!(v.volume);
                None
            }
            // csi/pvc_action cleared volumeName and set the data source;
            // the VolumeSnapshotContent was skipped, the snapshot never
            // becomes ready.
            (Method::CsiSnapshot, true) => {
                claim["spec"]["dataSource"] = json!({"apiGroup": "snapshot.storage.k8s.io",
                    "kind": "VolumeSnapshot", "name": format!("velero-{}", v.claim)});
                None
            }
            // handlePVHasNativeSnapshot: the PV exists in the cluster and
            // the namespace is mapped, so shouldRenamePV: a new name.
            (Method::NativeSnapshot, false) => {
                world.stateful.provisioned += 1;
                Some((
                    format!("velero-clone-{:08x}", world.stateful.provisioned),
                    true,
                ))
            }
            // pvsToProvision: volumeName removed, dynamic provisioning.
            (Method::PodVolumeBackup | Method::CsiSnapshot, false) => {
                world.stateful.provisioned += 1;
                Some((
                    format!(
                        "pvc-{:08x}-5e1d-4c2a-9f00-restored",
                        world.stateful.provisioned
                    ),
                    false,
                ))
            }
        };
        if let Some((volume, by_velero)) = got {
            let mut metadata = json!({"name": volume});
            if by_velero {
                metadata["labels"] = labels.clone();
            }
            world.volumes.push(json!({
                "apiVersion": "v1", "kind": "PersistentVolume", "metadata": metadata,
                "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                         "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "standard-retain",
                         "claimRef": {"kind": "PersistentVolumeClaim", "namespace": target, "name": v.claim}},
                "status": {"phase": "Bound"},
            }));
            claim["spec"]["volumeName"] = json!(volume);
            claim["status"]["phase"] = json!("Bound");
            world.stateful.bound.push((v.claim.clone(), volume));
        }
        world.stateful.claims.push(claim);
    }
}

/// A production volume bound to `shop/claim`.
fn production_volume(name: &str, claim: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name},
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                 "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "standard-retain",
                 "claimRef": {"kind": "PersistentVolumeClaim", "namespace": "shop", "name": claim}},
        "status": {"phase": "Bound"},
    })
}

/// The healthy world with a database whose three claims are backed up in
/// the three ways Velero knows, and their production volumes.
fn stateful_world() -> World {
    let mut world = healthy_world();
    world.volume_on_restore = false;
    let backed_up = [
        ("data-db-0", "pvc-prod-0001", Method::NativeSnapshot),
        ("uploads", "pvc-prod-0002", Method::PodVolumeBackup),
        ("wal-db-0", "pvc-prod-0003", Method::CsiSnapshot),
    ];
    for (claim, volume, method) in backed_up {
        world.volumes.push(production_volume(volume, claim));
        world.stateful.backup.push(BackupVolume {
            claim: claim.into(),
            volume: volume.into(),
            method,
        });
    }
    world
}

fn production_volumes() -> Vec<Value> {
    vec![
        production_volume("pvc-prod-0001", "data-db-0"),
        production_volume("pvc-prod-0002", "uploads"),
        production_volume("pvc-prod-0003", "wal-db-0"),
    ]
}

#[tokio::test]
async fn claims_restored_by_snapshot_fsb_and_csi_get_their_own_volumes_and_cleanup_deletes_them() {
    let fake = Fake::new(stateful_world());
    let report = fake.run(&spec(), "run-stateful").await;
    assert_eq!(report.verdict, Verdict::Pass, "{}", report.reason);
    let ns = report.namespace.clone().unwrap();

    // Velero's "auto": no includeClusterResources in the Restore.
    let restore = &fake.posted("/restores")[0];
    assert_valid("restores", restore);
    assert!(
        restore["spec"].get("includeClusterResources").is_none(),
        "{:#}",
        restore["spec"]
    );

    // Every claim got a volume of its own, none a production one.
    let world = fake.world.lock().unwrap();
    let bound = world.stateful.bound.clone();
    assert_eq!(bound.len(), 3, "{bound:?}");
    for (claim, volume) in &bound {
        assert!(!volume.starts_with("pvc-prod-"), "{claim} got {volume}");
    }
    let ready = report.readiness.as_ref().unwrap();
    for claim in ["data-db-0", "uploads", "wal-db-0"] {
        assert!(
            ready
                .ready
                .contains(&format!("persistentvolumeclaim/{claim}")),
            "{ready:?}"
        );
    }

    // Cleanup deleted the three restored volumes: the labelled clone and
    // the two the provisioner made without any Velero label (Retain: they
    // would have stayed, Released, holding production data). Production
    // volumes are untouched.
    assert_eq!(world.volumes, production_volumes());
    let mut deleted = report.cleanup.leftovers_deleted.clone();
    deleted.sort();
    let mut expected: Vec<String> = bound
        .iter()
        .map(|(_, v)| format!("persistentvolume/{v}"))
        .collect();
    expected.sort();
    assert_eq!(deleted, expected);
    assert!(report.cleanup.errors.is_empty(), "{:?}", report.cleanup);
    drop(world);
    let requests = fake.requests();
    let claims_listed = requests
        .iter()
        .rposition(|r| {
            r.is(
                "GET",
                &format!("/api/v1/namespaces/{ns}/persistentvolumeclaims"),
            )
        })
        .expect("cleanup lists the claims");
    let namespace_deleted = requests
        .iter()
        .position(|r| r.is("DELETE", &format!("/api/v1/namespaces/{ns}")))
        .expect("namespace deleted");
    assert!(
        claims_listed < namespace_deleted,
        "claims must be read before the namespace takes them"
    );
    let patched: Vec<&Recorded> = requests
        .iter()
        .filter(|r| r.method == "PATCH" && r.path.starts_with("/api/v1/persistentvolumes/"))
        .collect();
    assert_eq!(patched.len(), 3, "{patched:?}");
    for p in patched {
        assert!(!p.path.contains("pvc-prod-"), "{p:?}");
        assert_eq!(
            p.body.as_ref().unwrap()["spec"]["persistentVolumeReclaimPolicy"],
            "Delete"
        );
    }
    assert_full_cleanup(&fake, &report);
}

/// Why the Restore must not say `includeClusterResources: false`: the
/// same backup restored that way leaves every claim Pending (two of them
/// on the production volume), readiness names them, and cleanup never
/// touches the production volumes they point at.
#[tokio::test]
async fn excluding_cluster_resources_leaves_claims_pending_and_production_volumes_alone() {
    let fake = Fake::new(stateful_world());
    let labels = namespace::run_labels("shop", "run-false");
    let mut restore = restore_object::build_restore(
        &spec(),
        "vol-false",
        "shop-daily-newest",
        &[mapping::NamespaceMapping::new("shop", "vol-false")],
        None,
        &labels,
        &BTreeMap::new(),
    );
    restore.spec.include_cluster_resources = Some(false);
    let restores: Api<velero::Restore> = Api::namespaced(fake.client.clone(), "velero");
    restores
        .create(&PostParams::default(), &restore)
        .await
        .unwrap();
    {
        let world = fake.world.lock().unwrap();
        assert!(world.stateful.bound.is_empty());
        let claims = &world.stateful.claims;
        assert_eq!(claims.len(), 3);
        assert!(claims.iter().all(|c| c["status"]["phase"] == "Pending"));
        assert_eq!(claims[0]["spec"]["volumeName"], "pvc-prod-0001");
        assert_eq!(claims[1]["spec"]["volumeName"], "pvc-prod-0002");
        assert!(claims[2]["spec"].get("volumeName").is_none());
    }

    let info = readiness::probe(&fake.client, "vol-false", &[])
        .await
        .unwrap();
    assert!(
        info.not_ready.contains(
            &"persistentvolumeclaim/data-db-0: Pending, volume pvc-prod-0001".to_string()
        ),
        "{info:?}"
    );
    assert!(
        info.not_ready
            .contains(&"statefulset/db: 0/1 ready".to_string()),
        "{info:?}"
    );

    let claimed = volumes::prepare(&fake.client, "vol-false").await;
    assert!(claimed.volumes.is_empty(), "{claimed:?}");
    assert!(claimed.errors.is_empty(), "{claimed:?}");
    assert!(!fake.requests().iter().any(|r| r.method == "PATCH"));
    assert_eq!(fake.world.lock().unwrap().volumes, production_volumes());
}

#[tokio::test]
async fn workloads_scaled_to_zero_are_not_ready() {
    let mut world = healthy_world();
    world.deployments = vec![vec![deployment("api", 0, 0)]];
    world.statefulsets = vec![statefulset("db", 0, 0)];
    world.pods = Vec::new();
    let fake = Fake::new(world);
    let report = fake.run(&spec(), "run-zero").await;
    assert_eq!(report.verdict, Verdict::Fail, "{}", report.reason);
    assert!(
        report
            .reason
            .contains("deployment/api: scaled to 0 replicas")
            && report
                .reason
                .contains("statefulset/db: scaled to 0 replicas"),
        "{}",
        report.reason
    );

    // Named workloads too.
    let mut named = spec();
    named.readiness.workloads = vec![workload(WorkloadKind::Deployment, "api")];
    let mut world = healthy_world();
    world.deployments = vec![vec![deployment("api", 0, 0)]];
    let fake = Fake::new(world);
    let report = fake.run(&named, "run-zero-named").await;
    assert_fails_with(&report, "scaled to 0");
}

#[tokio::test]
async fn restore_warnings_beyond_max_warnings_fail_the_verdict() {
    // The healthy restore completes with 1 warning.
    let mut strict = spec();
    strict.acceptance.max_warnings = Some(0);
    let fake = Fake::new(healthy_world());
    let report = fake.run(&strict, "run-warn").await;
    assert_fails_with(
        &report,
        "Completed with 1 warning(s), more than max_warnings 0",
    );
    assert!(report.readiness.is_none(), "stops before readiness");
    assert_full_cleanup(&fake, &report);

    let mut lenient = spec();
    lenient.acceptance.max_warnings = Some(1);
    let fake = Fake::new(healthy_world());
    let report = fake.run(&lenient, "run-warn-ok").await;
    assert_eq!(report.verdict, Verdict::Pass, "{}", report.reason);
}

#[tokio::test]
async fn a_stale_newest_backup_fails_selection_whatever_is_picked() {
    // Newest completed backup: 2 h old.
    let mut stale = spec();
    stale.acceptance = Acceptance {
        max_backup_age: Some(Duration::from_secs(3600)),
        ..Acceptance::default()
    };
    let fake = Fake::new(healthy_world());
    let report = fake.run(&stale, "run-stale").await;
    assert_eq!(report.verdict, Verdict::Fail, "{}", report.reason);
    assert!(
        report.reason.contains(
            "the newest completed backup of schedule shop-daily is 2 h 0 m old, more than max_backup_age 1 h 0 m"
        ),
        "{}",
        report.reason
    );
    assert!(report.namespace.is_none());
    assert!(!fake.requests().iter().any(|r| r.method == "POST"));
    let b = report.backup.as_ref().unwrap();
    let newest = b.newest_age_seconds.unwrap();
    assert!((7190.0..7300.0).contains(&newest), "{newest}");

    // A random pick of an older backup passes while the newest is fresh:
    // the bound is on the chain, not on the pick.
    let mut random = spec();
    random.backup = BackupSource::Schedule {
        name: "shop-daily".into(),
        selection: Selection::RandomWithin(Duration::from_secs(7 * 86_400)),
    };
    random.acceptance.max_backup_age = Some(Duration::from_secs(3 * 3600));
    let mut picked_older = false;
    for i in 0..8 {
        let fake = Fake::new(healthy_world());
        let report = run(
            &fake.client,
            &random,
            &options(&format!("run-random-{i}")),
            &ScriptedRunner::default(),
        )
        .await;
        assert_eq!(report.verdict, Verdict::Pass, "{}", report.reason);
        let b = report.backup.unwrap();
        picked_older |= b.name == "shop-daily-older";
        assert!(b.newest_age_seconds.unwrap() < 3.0 * 3600.0);
    }
    assert!(picked_older, "some run picked the 25 h old backup");

    // A named backup is its own newest.
    let mut named = spec();
    named.backup = BackupSource::Named("shop-daily-older".into());
    named.acceptance.max_backup_age = Some(Duration::from_secs(24 * 3600));
    let fake = Fake::new(healthy_world());
    let report = fake.run(&named, "run-named-stale").await;
    assert_fails_with(
        &report,
        "is 25 h 0 m old, more than max_backup_age 24 h 0 m",
    );
}

#[tokio::test]
async fn backup_age_gauge_follows_the_newest_backup_whatever_the_verdict() {
    use crate::result::CheckState;
    use crate::sinks::board::{Board, CheckView, Kind};
    use crate::sinks::metrics::Metrics;

    let gauge = |report: RestoreReport| -> f64 {
        let board = Board::default();
        let metrics = Metrics::new(board.clone(), "fra1");
        board.insert(CheckView {
            kind: Kind::Restore,
            name: "shop".into(),
            component: "restore".into(),
            schedule: "every 1d".into(),
            targets: vec![],
            location: "fra1".into(),
            severity: "critical".into(),
            state: CheckState::Up,
            runs: 1,
            restore: Some(std::sync::Arc::new(report)),
            ..Default::default()
        });
        let text = metrics.render();
        let line = text
            .lines()
            .find(|l| l.starts_with("vantage_backup_age_seconds{"))
            .unwrap_or_else(|| panic!("no vantage_backup_age_seconds in\n{text}"));
        assert!(
            line.starts_with(
                "vantage_backup_age_seconds{restore_test=\"shop\",location=\"fra1\"} "
            ),
            "{line}"
        );
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };

    // A passing run that restored the newest backup (2 h old).
    let fake = Fake::new(healthy_world());
    let report = fake.run(&spec(), "run-g1").await;
    assert_eq!(report.verdict, Verdict::Pass, "{}", report.reason);
    let age = gauge(report);
    assert!((7190.0..7300.0).contains(&age), "{age}");

    // A run that failed for the backup's age still exports it.
    let mut stale = spec();
    stale.acceptance.max_backup_age = Some(Duration::from_secs(60));
    let fake = Fake::new(healthy_world());
    let report = fake.run(&stale, "run-g2").await;
    assert_eq!(report.verdict, Verdict::Fail);
    let age = gauge(report);
    assert!((7190.0..7300.0).contains(&age), "{age}");
}

fn service(name: &str, cluster_ip: &str, port: i32, target: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
        "spec": {"clusterIP": cluster_ip, "clusterIPs": [cluster_ip], "selector": {"app": name},
                 "ports": [{"name": "main", "port": port, "targetPort": target, "protocol": "TCP"}]},
    })
}

fn app_pod(name: &str, app: &str, ip: &str, port: (&str, i32), host_network: bool) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": app}},
        "spec": {"hostNetwork": host_network, "containers": [{"name": app, "image": "shop/api:1.4",
                 "ports": [{"name": port.0, "containerPort": port.1}]}]},
        "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                   "conditions": [{"type": "Ready", "status": "True"}]},
    })
}

#[tokio::test]
async fn checks_reach_exactly_the_services_of_the_volatile_namespace() {
    use crate::capabilities::net::HostResolver;
    use crate::daemon::restores::run_spec;
    use std::net::IpAddr;

    let mut world = healthy_world();
    world.stateful.services = vec![
        service("api", "10.96.14.7", 8080, json!("http")),
        service("db", "None", 5432, json!(5432)),
    ];
    world.pods = vec![
        app_pod("api-7d9f-1", "api", "10.244.1.5", ("http", 80), false),
        app_pod("api-7d9f-2", "api", "10.244.2.9", ("http", 80), false),
        // On the node's network: its IP is the node's, never allowed.
        app_pod("api-debug", "api", "172.18.0.2", ("http", 80), true),
        app_pod("db-0", "db", "10.244.1.6", ("pg", 5432), false),
    ];
    let fake = Fake::new(world);
    let runner = ScriptedRunner::default();
    let report = run(&fake.client, &spec(), &options("run-reach"), &runner).await;
    assert_eq!(report.verdict, Verdict::Pass, "{}", report.reason);
    let ns = report.namespace.clone().unwrap();

    let seen = runner.seen.lock().unwrap().clone();
    let info = seen[0].3.clone();
    let shown: Vec<String> = info
        .reachable
        .iter()
        .map(|r| format!("{} {}:{}", r.service, r.ip, r.port))
        .collect();
    assert_eq!(
        shown,
        [
            "api 10.96.14.7:8080",
            "api 10.244.1.5:80",
            "api 10.244.2.9:80",
            "db 10.244.1.6:5432",
        ]
    );

    // The check's sandbox: the documented target reaches the Service's
    // ClusterIP and its pods; nothing else private does.
    let run = run_spec(
        &spec().checks[0],
        &seen[0].2,
        &info,
        None,
        &Arc::new(HostResolver::default()),
    )
    .unwrap();
    let host = format!("api.{ns}.svc.cluster.local");
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    assert!(
        run.allow
            .check_addr("http", &host, 8080, ip("10.96.14.7"))
            .is_ok()
    );
    assert!(
        run.allow
            .check_addr("http", "10.244.1.5", 80, ip("10.244.1.5"))
            .is_ok()
    );
    assert!(
        run.allow
            .check_addr("tcp", "10.244.1.6", 5432, ip("10.244.1.6"))
            .is_ok()
    );
    for (host, port, addr) in [
        // Another ClusterIP (e.g. production's Service), resolved from the
        // allowed name: refused.
        (host.as_str(), 8080, "10.96.0.99"),
        // The pod on the host network.
        ("172.18.0.2", 80, "172.18.0.2"),
        // An allowed pod on another port.
        ("10.244.1.5", 22, "10.244.1.5"),
        // The metadata address.
        (host.as_str(), 8080, "169.254.169.254"),
    ] {
        assert!(
            run.allow.check_addr("http", host, port, ip(addr)).is_err(),
            "{host}:{port} -> {addr} must be refused"
        );
    }
    // Without the run's Services (the code before): the documented target
    // is refused.
    let mut bare = info.clone();
    bare.reachable.clear();
    let run = run_spec(
        &spec().checks[0],
        &seen[0].2,
        &bare,
        None,
        &Arc::new(HostResolver::default()),
    )
    .unwrap();
    assert!(
        run.allow
            .check_addr("http", &host, 8080, ip("10.96.14.7"))
            .is_err()
    );
}

pub(super) fn data_job(name: &str, expect: Option<&str>) -> crate::config::RestoreJob {
    use crate::config::{JobEnv, RestoreJob, Template};
    RestoreJob {
        name: name.into(),
        image: "postgres:17".into(),
        command: vec![
            Template("psql".into()),
            Template("-tAc".into()),
            Template(
                "select count(*) > 0 from orders where created_at > now() - interval '2 days'"
                    .into(),
            ),
        ],
        env: vec![
            (
                "PGHOST".into(),
                JobEnv::Value(Template("db.{{namespace}}.svc".into())),
            ),
            (
                "PGPASSWORD".into(),
                JobEnv::Secret {
                    name: "db-credentials".into(),
                    key: "password".into(),
                },
            ),
        ],
        timeout: Duration::from_secs(1),
        expect_output: expect.map(str::to_string),
        namespace: None,
    }
}

#[tokio::test]
async fn data_jobs_run_in_the_namespace_and_their_exit_and_log_decide() {
    let mut world = healthy_world();
    world.stateful.job_scripts = BTreeMap::from([
        script("orders-recent", Some(0), "psql: connected\nt\n"),
        script("orders-count", Some(0), "f\n"),
        script(
            "schema",
            Some(2),
            "psql: error: relation \"orders\" does not exist\n",
        ),
    ]);
    let mut spec = spec();
    spec.acceptance.jobs = vec![data_job("orders-recent", Some("t"))];
    let fake = Fake::new(world);
    let report = fake.run(&spec, "run-job").await;
    assert_eq!(report.verdict, Verdict::Pass, "{}", report.reason);
    assert!(
        report.reason.contains("1 data job(s) passed"),
        "{}",
        report.reason
    );
    let ns = report.namespace.clone().unwrap();
    let j = &report.jobs[0];
    assert!(j.passed, "{j:?}");
    assert_eq!(j.exit_code, Some(0));
    assert_eq!(j.log_tail, ["psql: connected", "t"]);
    assert!(report.timings.jobs_seconds.is_some());

    // The Job: in the volatile namespace, one pod, no token, the deadline,
    // env from the restored Secret by reference (no value through Vantage).
    let posted = fake.posted("/jobs");
    assert_eq!(posted.len(), 1);
    let job = &posted[0];
    assert_eq!(job["metadata"]["name"], "vantage-job-orders-recent");
    assert_eq!(job["metadata"]["namespace"], json!(ns));
    assert_eq!(job["metadata"]["labels"]["vantage.dev/run-id"], "run-job");
    assert_eq!(job["spec"]["backoffLimit"], 0);
    assert_eq!(job["spec"]["activeDeadlineSeconds"], 1);
    let pod = &job["spec"]["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Never");
    assert_eq!(pod["automountServiceAccountToken"], false);
    let c = &pod["containers"][0];
    assert_eq!(c["image"], "postgres:17");
    assert_eq!(c["command"][0], "psql");
    assert_eq!(
        c["env"],
        json!([
            {"name": "PGHOST", "value": format!("db.{ns}.svc")},
            {"name": "PGPASSWORD", "valueFrom": {"secretKeyRef": {"name": "db-credentials", "key": "password", "optional": false}}}
        ])
    );
    let log = fake
        .requests()
        .into_iter()
        .find(|r| r.path.ends_with("/log"))
        .expect("the log was read");
    assert!(
        log.query.contains("tailLines=20") && log.query.contains("container=job"),
        "{}",
        log.query
    );
    let shown = report.to_check_result();
    let a = shown
        .assertions
        .iter()
        .find(|a| a.name == "data job orders-recent")
        .expect("an assertion per job");
    assert!(
        a.passed && a.detail.contains("exit 0") && a.detail.ends_with("; t"),
        "{a:?}"
    );
    assert_full_cleanup(&fake, &report);

    // A wrong answer (exit 0, output lacks the expected text), a failing
    // command and a job that never ends: each fails the verdict with its
    // reason and last log line.
    for (job, needle) in [
        (
            data_job("orders-count", Some("t")),
            "orders-count (exit 0, but the last 20 log lines lack \"t\": f)",
        ),
        (
            data_job("schema", None),
            "schema (failed: exit 2 (BackoffLimitExceeded): psql: error: relation \"orders\" does not exist)",
        ),
        (
            data_job("hangs", None),
            "hangs (failed: exit 137 (DeadlineExceeded))",
        ),
    ] {
        let mut world = healthy_world();
        world.stateful.job_scripts = BTreeMap::from([
            script("orders-count", Some(0), "f\n"),
            script(
                "schema",
                Some(2),
                "psql: error: relation \"orders\" does not exist\n",
            ),
            script("hangs", None, ""),
        ]);
        let mut bad = super::spec();
        bad.acceptance.jobs = vec![job];
        let fake = Fake::new(world);
        let report = fake.run(&bad, "run-job-bad").await;
        assert_eq!(report.verdict, Verdict::Fail, "{}", report.reason);
        assert!(
            report
                .reason
                .contains(&format!("data job(s) failed: {needle}")),
            "{}",
            report.reason
        );
        assert!(!report.jobs[0].passed);
        assert_full_cleanup(&fake, &report);
    }
}

/// Bytes as Velero stores them: one gzip stream (`gzip.NewWriter` in
/// `putResults`, pkg/controller/restore_controller.go).
pub(super) fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

/// "Object storage" on loopback serving `files` by path.
pub(super) async fn object_storage(files: BTreeMap<String, Vec<u8>>) -> String {
    let files = Arc::new(files);
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
        let files = files.clone();
        async move {
            match files.get(uri.path()) {
                Some(b) => (axum::http::StatusCode::OK, b.clone()),
                None => (axum::http::StatusCode::NOT_FOUND, b"NoSuchKey".to_vec()),
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn the_restore_log_and_results_are_kept_before_the_restore_is_deleted() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let run_id = "run-evidence";
    let ns = namespace::volatile_name("vantage-restore-", "shop", run_id);
    let log = gzip(b"time=\"2026-12-04T03:30:01Z\" level=info msg=\"restore completed\"\n");
    let results = gzip(
        br#"{"errors":{"namespaces":{"shop":["error restoring persistentvolumeclaims/shop/data-db-0: admission webhook denied the request"]}},"warnings":{"velero":["Velero restore resource modifier: no rule matched"],"namespaces":{"shop":["could not restore, ConfigMap \"kube-root-ca.crt\" already exists. Warning: the in-cluster version is different than the backed-up version"]}}}"#,
    );
    let base = object_storage(BTreeMap::from([
        (format!("/restores/{ns}/restore-{ns}-logs.gz"), log.clone()),
        (
            format!("/restores/{ns}/restore-{ns}-results.gz"),
            results.clone(),
        ),
    ]))
    .await;
    let mut world = healthy_world();
    world.stateful.download_base = Some(base);
    world.restore_statuses = vec![
        json!({"phase": "PartiallyFailed", "warnings": 2, "errors": 1,
        "startTimestamp": ts(Utc::now()), "completionTimestamp": ts(Utc::now())}),
    ];
    let fake = Fake::new(world);
    let report = fake.run(&spec(), run_id).await;
    assert_eq!(report.verdict, Verdict::Fail, "{}", report.reason);
    assert_eq!(report.namespace.as_deref(), Some(ns.as_str()));

    let e = report.evidence.clone().expect("evidence kept");
    assert!(e.fetch_errors.is_empty(), "{e:?}");
    assert_eq!(
        e.log,
        Some(evidence::StoredFile {
            sha256: hex::encode(Sha256::digest(&log)),
            bytes: log.len() as u64
        })
    );
    assert_eq!(
        e.results,
        Some(evidence::StoredFile {
            sha256: hex::encode(Sha256::digest(&results)),
            bytes: results.len() as u64
        })
    );

    // Fetched before the Restore was deleted; the requests cleaned up.
    let calls = fake.calls();
    let at = |needle: &str| position_of(&calls, needle);
    let restore_deleted = at(&format!("DELETE {V}/restores/{ns}"));
    assert!(at(&format!("DELETE {V}/downloadrequests/{ns}-log")) < restore_deleted);
    assert!(at(&format!("DELETE {V}/downloadrequests/{ns}-results")) < restore_deleted);
    let posted = fake.posted("/downloadrequests");
    assert_eq!(
        posted[0]["spec"]["target"],
        json!({"kind": "RestoreLog", "name": ns})
    );
    assert_eq!(
        posted[1]["spec"]["target"],
        json!({"kind": "RestoreResults", "name": ns})
    );
    assert!(
        fake.world
            .lock()
            .unwrap()
            .stateful
            .download_requests
            .is_empty()
    );

    // In the audit subject (the serialized report).
    let subject = serde_json::to_value(&report).unwrap();
    assert_eq!(
        subject["evidence"]["log"]["sha256"],
        json!(hex::encode(Sha256::digest(&log)))
    );

    // Object storage unreachable: the run goes on, the failure is named.
    let fake = Fake::new(healthy_world());
    let report = fake.run(&spec(), "run-evidence-2").await;
    assert_eq!(report.verdict, Verdict::Pass, "{}", report.reason);
    let e = report.evidence.unwrap();
    assert!(e.log.is_none() && e.fetch_errors.len() == 2, "{e:?}");
    assert!(
        e.fetch_errors[0].starts_with("RestoreLog: downloading"),
        "{e:?}"
    );

    // A Restore that never finished has no files yet: nothing asked.
    let mut world = healthy_world();
    world.restore_statuses = vec![json!({"phase": "InProgress"})];
    let fake = Fake::new(world);
    let report = fake.run(&spec(), "run-evidence-3").await;
    assert!(report.evidence.is_none());
    assert!(fake.posted("/downloadrequests").is_empty());
}
