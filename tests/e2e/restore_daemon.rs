//! A restore test configured in `vantage.toml` runs on schedule in the real
//! `vantage daemon` binary, against the in-memory Kubernetes API of
//! [`crate::kube_fake`] (playing Velero too), with a real Wasm check (the
//! official `http` check) probing a loopback target through the
//! `{{namespace}}`/`{{backup}}` templates, and the audit log on a real S3
//! server with Object Lock (moto). The verdict must show in `/metrics`, the
//! API, the status page and the audit log; `vantage audit verify` must pass
//! on the untouched log and fail once a record is edited.

use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use axum::Router;
use axum::extract::Path as UrlPath;
use axum::routing::get;
use serde_json::json;
use vantage::audit::record::AuditKey;
use vantage::audit::s3::S3Sink;

use crate::audit::{ACCESS_KEY, Moto, SECRET_KEY, cli, config as s3_config, create_locked_bucket};
use crate::daemon::Daemon;
use crate::kube_fake::FakeKube;
use crate::servers::{free_port, http_get, wait_until};
use crate::support::{repo, wasm};

const BACKUPS: &str = "/apis/velero.io/v1/namespaces/velero/backups";
const LOCATIONS: &str = "/apis/velero.io/v1/namespaces/velero/backupstoragelocations";
const SCHEDULES: &str = "/apis/velero.io/v1/namespaces/velero/schedules";
pub(crate) const RESTORES: &str = "/apis/velero.io/v1/namespaces/velero/restores";
pub(crate) const NAMESPACES: &str = "/api/v1/namespaces";

/// A target that answers 200 with its path for `/app/{namespace}/{backup}`
/// only when the namespace is a volatile one.
pub(crate) async fn start_app() -> String {
    let app = Router::new().route(
        "/app/{namespace}/{backup}",
        get(
            |UrlPath((ns, backup)): UrlPath<(String, String)>| async move {
                if ns.starts_with("vantage-restore-") {
                    (
                        axum::http::StatusCode::OK,
                        format!("restored {backup} into {ns}"),
                    )
                } else {
                    (axum::http::StatusCode::NOT_FOUND, "no such app".to_string())
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

/// Velero's objects, from the fixtures the schema tests validate against
/// Velero's CRDs: the Schedule, its storage location, and a backup that
/// completed three hours ago.
pub(crate) fn seed_velero(kube: &FakeKube) {
    let fixture = |name: &str| -> serde_json::Value {
        let path = repo().join("tests/fixtures/velero").join(name);
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
    };
    let completed = (chrono::Utc::now() - chrono::Duration::hours(3))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut backup = fixture("backup-completed.json");
    backup["metadata"]["name"] = json!("shop-daily-20261127030000");
    backup["status"]["startTimestamp"] = json!(completed);
    backup["status"]["completionTimestamp"] = json!(completed);
    kube.insert(SCHEDULES, fixture("schedule.json"));
    kube.insert(LOCATIONS, fixture("bsl-available.json"));
    kube.insert(BACKUPS, backup);
}

/// Make Deployment `name` exist and be ready in `namespace`.
pub(crate) fn ready_deployment(kube: &FakeKube, namespace: &str, name: &str) {
    kube.insert(
        &format!("/apis/apps/v1/namespaces/{namespace}/deployments"),
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": name, "image": "app:1"}]}}},
            "status": {"replicas": 1, "readyReplicas": 1, "availableReplicas": 1,
                       "updatedReplicas": 1, "observedGeneration": 1},
        }),
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restore_test_runs_in_the_daemon_and_its_verdict_reaches_every_sink() {
    let kube = FakeKube::start().await;
    seed_velero(&kube);
    let app = start_app().await;
    let moto = tokio::task::spawn_blocking(|| Moto::start(free_port()))
        .await
        .unwrap();
    let bucket = "restore-audit";
    let sink = S3Sink::new(s3_config(&moto.endpoint, bucket, None))
        .await
        .unwrap();
    create_locked_bucket(&sink).await;

    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, kube.kubeconfig()).unwrap();
    let key = AuditKey::from_seed([42; 32]);
    let key_file = dir.path().join("audit.key");
    std::fs::write(&key_file, hex::encode([42u8; 32])).unwrap();
    // The daemon refuses a signing key file readable by group or others.
    std::fs::set_permissions(
        &key_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let public_key = dir.path().join("audit.pub");
    std::fs::write(&public_key, key.public_key_hex()).unwrap();

    let body = format!(
        r#"
[audit]
bucket = "{bucket}"
endpoint = "{endpoint}"
region = "us-east-1"
signing_key = "file:{key}"
lock_mode = "compliance"
lock_days = 1

[[restore]]
name = "shop-restore"
kubeconfig = "{kubeconfig}"
schedule = "shop-daily"
namespaces = ["shop"]
every = "10s"
ready = ["deployment/api"]
rto = "10m"
poll_interval = "50ms"

[[restore.check]]
name = "api"
component = "{http}"
targets = ["{app}/app/{{{{namespace}}}}/{{{{backup}}}}"]
allow = ["{{target}}"]
[restore.check.config]
expect.status = [200]
expect.body_contains = "restored {{{{backup}}}}"
"#,
        endpoint = moto.endpoint,
        key = key_file.display(),
        kubeconfig = kubeconfig.display(),
        http = wasm("http").display(),
    );
    let daemon = tokio::task::spawn_blocking({
        let dir = dir.path().to_path_buf();
        move || {
            Daemon::start_with_env(
                &dir,
                "",
                &body,
                &["--no-watch"],
                &[
                    ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
                    ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
                ],
            )
        }
    })
    .await
    .unwrap();
    let daemon = std::sync::Arc::new(daemon);

    // The run: pass, through the API.
    let detail = tokio::task::spawn_blocking({
        let daemon = daemon.clone();
        move || {
            wait_until("a finished restore test", Duration::from_secs(60), || {
                let v = daemon.api("/api/v1/checks/shop-restore");
                let done = !v["last"].is_null();
                (done.then(|| v.clone()), v.to_string())
            })
        }
    })
    .await
    .unwrap();
    assert_eq!(detail["kind"], "restore", "{detail:#}");
    assert_eq!(detail["last"]["result"]["status"], "pass", "{detail:#}");
    let report = &detail["restore"];
    assert_eq!(report["verdict"], "pass", "{report:#}");
    assert_eq!(report["backup"]["name"], "shop-daily-20261127030000");
    assert_eq!(report["restore"]["phase"], "Completed");
    let namespace = report["namespace"].as_str().unwrap().to_string();
    assert!(
        namespace.starts_with("vantage-restore-shop-"),
        "{namespace}"
    );
    let check = &report["checks"][0];
    assert_eq!(check["status"], "pass", "{check:#}");
    for phase in [
        "restore_seconds",
        "ready_seconds",
        "checks_seconds",
        "total_seconds",
    ] {
        assert!(
            report["timings"][phase].as_f64().is_some(),
            "{phase}: {report:#}"
        );
    }
    assert!(report["cleanup"]["namespace_deleted"].as_bool().unwrap());
    assert!(report["cleanup"]["restore_deleted"].as_bool().unwrap());

    // What the cluster saw: created in order, then all deleted.
    let log = kube.log();
    // deploy/rbac.yaml grants all of it.
    crate::rbac::assert_granted(&log);
    let position = |needle: &str| {
        log.iter()
            .position(|l| l.starts_with(needle))
            .unwrap_or_else(|| panic!("no {needle:?} in {log:#?}"))
    };
    let ns_created = position(&format!("POST {NAMESPACES}"));
    let policy_created = position(&format!(
        "POST /apis/networking.k8s.io/v1/namespaces/{namespace}/networkpolicies"
    ));
    let restore_created = position(&format!("POST {RESTORES}"));
    assert!(
        ns_created < policy_created && policy_created < restore_created,
        "{log:#?}"
    );
    position(&format!("DELETE {NAMESPACES}/{namespace}"));
    position(&format!("DELETE {RESTORES}/"));
    assert!(kube.names(NAMESPACES).is_empty(), "namespace left behind");
    assert!(kube.names(RESTORES).is_empty(), "Restore left behind");

    // Metrics.
    let metrics = daemon.metrics();
    for needle in [
        "vantage_restore_test_success{restore_test=\"shop-restore\",location=\"e2e-dc1\"} 1",
        "vantage_restore_rto_seconds{restore_test=\"shop-restore\"",
        "vantage_restore_rto_target_seconds{restore_test=\"shop-restore\",location=\"e2e-dc1\"} 600",
        "vantage_backup_last_validated_timestamp{restore_test=\"shop-restore\"",
        "vantage_restore_duration_seconds{restore_test=\"shop-restore\",location=\"e2e-dc1\",phase=\"restore\"}",
        "probe_success{check=\"shop-restore\",location=\"e2e-dc1\"} 1",
    ] {
        assert!(metrics.contains(needle), "missing {needle}:\n{metrics}");
    }

    // The status page.
    let (status, page) = http_get(&format!("{}/", daemon.url())).unwrap();
    assert_eq!(status, 200);
    assert!(page.contains("shop-restore"), "{page}");
    assert!(
        page.contains("restore test"),
        "the page marks restore tests: {page}"
    );

    // The audit log: shipped, verifiable, and tamper-evident.
    let verify = |extra: &[&str]| {
        let mut args: Vec<String> = [
            "verify",
            "--bucket",
            bucket,
            "--endpoint",
            &moto.endpoint,
            "--public-key",
            &public_key.display().to_string(),
        ]
        .map(String::from)
        .to_vec();
        args.extend(extra.iter().map(|s| s.to_string()));
        cli(args)
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let versions = loop {
        let versions = sink.list_versions().await.unwrap();
        if !versions.is_empty() || std::time::Instant::now() > deadline {
            break versions;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(!versions.is_empty(), "a record shipped");
    let (code, out, err) = verify(&[]).await;
    assert_eq!(code, 0, "verify on the untouched log: {out}\n{err}");
    let stored = sink.get(&sink.key(1), None).await.unwrap();
    let record: serde_json::Value = serde_json::from_slice(&stored).unwrap();
    assert_eq!(record["verdict"], "pass");
    assert_eq!(record["subject"]["namespace"], namespace.as_str());
    assert_eq!(record["subject"]["checks"][0]["check"], "api");

    // Tamper: a new version of record 1 claiming a shorter RTO.
    let mut edited = record.clone();
    edited["subject"]["timings"]["total_seconds"] = json!(1.0);
    sink.client()
        .put_object()
        .bucket(bucket)
        .key(sink.key(1))
        .body(ByteStream::from(serde_json::to_vec(&edited).unwrap()))
        .send()
        .await
        .unwrap();
    let (code, out, err) = verify(&[]).await;
    assert_ne!(code, 0, "verify must fail on an edited log: {out}\n{err}");
    assert!(
        format!("{out}{err}").contains("edit"),
        "the report names the edit: {out}\n{err}"
    );
}
