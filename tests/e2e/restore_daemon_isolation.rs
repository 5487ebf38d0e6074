//! The `vantage daemon` binary against two in-memory Kubernetes APIs
//! ([`crate::kube_fake`]): one whose CNI enforces NetworkPolicy, one that
//! does not (flannel). Each restore test probes a real TCP listener on
//! loopback standing for the production database (`isolation_probe`): the
//! enforced one must be refused (verdict `pass`, the listener never sees a
//! connection), the other reaches it (verdict `error` naming the reason).
//! Meanwhile the janitor, at start-up, sweeps an expired volatile namespace
//! a "previous run" left (with its Restore, modifier ConfigMap and restored
//! volume) and keeps one whose Restore Velero is still running.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::json;
use vantage::restore::namespace::{run_annotations, run_labels, volatile_name};
use vantage::restore::restore_object::restore_name;

use crate::daemon::Daemon;
use crate::kube_fake::FakeKube;
use crate::restore_daemon::{NAMESPACES, RESTORES, seed_velero, start_app};
use crate::servers::wait_until;
use crate::support::wasm;

const CONFIGMAPS: &str = "/api/v1/namespaces/velero/configmaps";
const VOLUMES: &str = "/api/v1/persistentvolumes";

/// A TCP listener standing for the production database: counts the
/// connections it accepts.
async fn production_db() -> (u16, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((_conn, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
        }
    });
    (port, accepted)
}

/// What a run of test `test` with id `run_id` left behind, expired an hour
/// ago: its namespace, Restore (in `phase`), modifier ConfigMap and a
/// volume Velero restored. Returns the namespace and the Restore's name.
fn leftovers(kube: &FakeKube, test: &str, run_id: &str, phase: &str) -> (String, String) {
    let ns = volatile_name("vantage-restore-", "shop", run_id);
    let restore = restore_name("vantage-restore-", test, run_id);
    let labels = serde_json::to_value(run_labels(test, run_id)).unwrap();
    let expired = chrono::Utc::now() - chrono::Duration::hours(1);
    let annotations = serde_json::to_value(run_annotations(expired)).unwrap();
    let meta = |name: &str| json!({"name": name, "labels": labels, "annotations": annotations});
    kube.insert(
        NAMESPACES,
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": meta(&ns)}),
    );
    kube.insert(
        RESTORES,
        json!({"apiVersion": "velero.io/v1", "kind": "Restore",
               "metadata": {"name": restore, "namespace": "velero", "labels": labels,
                            "annotations": annotations},
               "spec": {"backupName": "shop-daily-20261127030000", "includedNamespaces": ["shop"],
                        "namespaceMapping": {"shop": ns}},
               "status": {"phase": phase}}),
    );
    kube.insert(
        CONFIGMAPS,
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": format!("{restore}-modifiers"), "namespace": "velero",
                            "labels": labels, "annotations": annotations},
               "data": {"modifiers.yaml": "version: v1\nresourceModifierRules: []\n"}}),
    );
    kube.insert(
        VOLUMES,
        json!({"apiVersion": "v1", "kind": "PersistentVolume",
               "metadata": {"name": format!("velero-clone-{run_id}"),
                            "labels": {"velero.io/restore-name": restore}},
               "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                        "persistentVolumeReclaimPolicy": "Retain"}}),
    );
    (ns, restore)
}

fn restore_test(
    name: &str,
    kube: &FakeKube,
    dir: &std::path::Path,
    db_port: u16,
    app: &str,
) -> String {
    let kubeconfig = dir.join(format!("{name}.kubeconfig"));
    std::fs::write(&kubeconfig, kube.kubeconfig()).unwrap();
    format!(
        r#"
[[restore]]
name = "{name}"
kubeconfig = "{kubeconfig}"
schedule = "shop-daily"
namespaces = ["shop"]
every = "10s"
ready = ["deployment/api"]
poll_interval = "50ms"
isolation_probe = ["127.0.0.1:{db_port}"]

[[restore.check]]
name = "api"
component = "{http}"
targets = ["{app}/app/{{{{namespace}}}}/{{{{backup}}}}"]
allow = ["{{target}}"]
[restore.check.config]
expect.status = [200]
"#,
        kubeconfig = kubeconfig.display(),
        http = wasm("http").display(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_probes_isolation_and_its_janitor_sweeps_only_finished_leftovers() {
    let app = start_app().await;
    // Calico: policies enforced. The janitor's leftovers live here.
    let enforced = FakeKube::start().await;
    enforced.store.lock().unwrap().cni_enforces_network_policy = true;
    seed_velero(&enforced);
    let (swept, swept_restore) = leftovers(&enforced, "shop-isolated", "old-run-1", "Completed");
    let (running, running_restore) =
        leftovers(&enforced, "shop-isolated", "old-run-2", "InProgress");
    enforced
        .store
        .lock()
        .unwrap()
        .stuck_restores
        .insert(running_restore.clone());
    // flannel: NetworkPolicies stored, never enforced.
    let flannel = FakeKube::start().await;
    seed_velero(&flannel);
    let (isolated_db, isolated_accepts) = production_db().await;
    let (leaky_db, leaky_accepts) = production_db().await;

    let dir = tempfile::tempdir().unwrap();
    let body = format!(
        "{}{}",
        restore_test("shop-isolated", &enforced, dir.path(), isolated_db, &app),
        restore_test("shop-leaky", &flannel, dir.path(), leaky_db, &app),
    );
    let daemon = tokio::task::spawn_blocking({
        let dir = dir.path().to_path_buf();
        move || Daemon::start(&dir, "", &body, &["--no-watch"])
    })
    .await
    .unwrap();
    let daemon = Arc::new(daemon);
    let finished = |name: &'static str| {
        let daemon = daemon.clone();
        tokio::task::spawn_blocking(move || {
            wait_until(name, Duration::from_secs(60), || {
                let v = daemon.api(&format!("/api/v1/checks/{name}"));
                ((!v["last"].is_null()).then(|| v.clone()), v.to_string())
            })
        })
    };
    let isolated = finished("shop-isolated").await.unwrap();
    let leaky = finished("shop-leaky").await.unwrap();

    // Enforced: refused, pass, the database never saw a connection.
    let report = &isolated["restore"];
    assert_eq!(report["verdict"], "pass", "{report:#}");
    assert_eq!(
        report["isolation_probe"],
        json!({"endpoints": [format!("127.0.0.1:{isolated_db}")], "reached": [],
               "isolated": true, "error": null}),
        "{report:#}"
    );
    assert_eq!(isolated_accepts.load(Ordering::SeqCst), 0);

    // Not enforced: the probe connected for real, verdict error with why.
    let report = &leaky["restore"];
    assert_eq!(report["verdict"], "error", "{report:#}");
    assert_eq!(leaky["last"]["result"]["status"], "error", "{leaky:#}");
    let reason = report["reason"].as_str().unwrap();
    assert!(
        reason.starts_with(&format!(
            "CNI does not enforce NetworkPolicy: a pod in the volatile namespace reached 127.0.0.1:{leaky_db} (isolation_probe)"
        )),
        "{reason}"
    );
    assert_eq!(report["isolation_probe"]["isolated"], false);
    assert!(leaky_accepts.load(Ordering::SeqCst) >= 1);
    // The run stopped before its checks, and still cleaned up.
    assert!(
        report["checks"].as_array().unwrap().is_empty(),
        "{report:#}"
    );
    assert_eq!(report["cleanup"]["namespace_deleted"], true, "{report:#}");

    // Both probe pods: in the volatile namespace, created after the app was
    // ready, deleted after.
    for (kube, report) in [(&enforced, &isolated["restore"]), (&flannel, report)] {
        let ns = report["namespace"].as_str().unwrap();
        let pod = format!("/api/v1/namespaces/{ns}/pods");
        let log = kube.log();
        let at = |needle: &str| {
            log.iter()
                .position(|l| l == needle)
                .unwrap_or_else(|| panic!("no {needle:?} in {log:#?}"))
        };
        let created = at(&format!("POST {pod}"));
        assert!(
            at(&format!(
                "GET /apis/apps/v1/namespaces/{ns}/deployments/api"
            )) < created
        );
        assert!(created < at(&format!("DELETE {pod}/vantage-isolation-probe")));
    }

    // The janitor (at start-up): the finished run's leftovers are gone, the
    // namespace Velero may still restore into is kept, with its Restore.
    let janitor_done = {
        let enforced_log = enforced.store.clone();
        let swept = swept.clone();
        tokio::task::spawn_blocking(move || {
            wait_until("the janitor's sweep", Duration::from_secs(30), || {
                let log = enforced_log.lock().unwrap().log.clone();
                let done = log
                    .iter()
                    .any(|l| l == &format!("DELETE {NAMESPACES}/{swept}"));
                (done.then_some(()), format!("{log:#?}"))
            })
        })
    };
    janitor_done.await.unwrap();
    let log = enforced.log();
    for gone in [
        format!("DELETE {RESTORES}/{}", swept_restore),
        format!("DELETE {CONFIGMAPS}/{}-modifiers", swept_restore),
        format!("DELETE {VOLUMES}/velero-clone-old-run-1"),
    ] {
        assert!(log.contains(&gone), "no {gone} in {log:#?}");
    }
    // Kept: the namespace and Restore Velero still restores (its modifier
    // ConfigMap may go: Velero read it when it validated the Restore).
    for kept in [
        format!("DELETE {NAMESPACES}/{running}"),
        format!("DELETE {RESTORES}/{}", running_restore),
        "DELETE /api/v1/persistentvolumes/velero-clone-old-run-2".to_string(),
    ] {
        assert!(
            !log.contains(&kept),
            "{kept} while Velero still restores: {log:#?}"
        );
    }
    // (A later run of the test may be under way: look at the leftovers only.)
    let namespaces = enforced.names(NAMESPACES);
    assert!(
        namespaces.contains(&running) && !namespaces.contains(&swept),
        "{namespaces:?}"
    );
    let restores = enforced.names(RESTORES);
    assert!(
        restores.contains(&running_restore) && !restores.contains(&swept_restore),
        "{restores:?}"
    );
    assert_eq!(enforced.names(VOLUMES), ["velero-clone-old-run-2"]);
}
