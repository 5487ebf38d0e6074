//! A restore test against a REAL cluster with Velero: the newest backup of a
//! Velero Schedule is restored into a volatile namespace, the app must become
//! ready, the official `http` check (the real Wasm component, in the same
//! sandbox and restore mode as the daemon's) must get 200 from
//! `http://api.{{namespace}}.svc.cluster.local/`, and everything is cleaned
//! up.
//!
//! Runs only when `KUBECONFIG` and `VANTAGE_E2E_VELERO_SCHEDULE` are set
//! (optional: `VANTAGE_E2E_VELERO_NAMESPACE`, default `velero`;
//! `VANTAGE_E2E_SOURCE_NAMESPACE`, default `shop`;
//! `VANTAGE_E2E_CLUSTER_DOMAIN`, default `cluster.local`); otherwise it prints
//! why it is skipped and passes. The kubeconfig's user needs the rights of
//! `deploy/rbac.yaml` (kind's admin user has them).
//!
//! The check connects from this process to the restored Service's ClusterIP,
//! resolved through the cluster's DNS (the `kube-dns` Service of
//! `kube-system`). So before anything is restored the test checks that this
//! process can do that: resolve `kubernetes.default.svc.<domain>` through
//! kube-dns and open a TCP connection to it. If it cannot, the test FAILS
//! saying so (it never passes without having run the check): run it where
//! ClusterIPs are routable, e.g. in a pod of the cluster, on a node, or with
//! a route to the service CIDR through a node (kind on Linux:
//! `sudo ip route add 10.96.0.0/12 via $(docker inspect -f
//! '{{.NetworkSettings.Networks.kind.IPAddress}}' vantage-e2e-control-plane)`,
//! with kube-proxy in iptables mode).
//!
//! # Setting up kind (or k3d), Velero and an S3 server
//!
//! ```sh
//! # 1. A cluster. kind ≥ 0.24 (kindnet enforces NetworkPolicies):
//! kind create cluster --name vantage-e2e
//! #    or k3d (its default k3s enforces NetworkPolicies too):
//! #    k3d cluster create vantage-e2e
//!
//! # 2. An S3 server in the cluster: Velero's MinIO example (namespace velero,
//! #    bucket "velero", credentials minio/minio123).
//! kubectl apply -f https://raw.githubusercontent.com/vmware-tanzu/velero/main/examples/minio/00-minio-deployment.yaml
//! kubectl -n velero rollout status deployment/minio
//! #    (Or any S3 server the cluster reaches, e.g. `moto_server -H 0.0.0.0 -p 5000`
//! #    on the host, with a bucket created beforehand and s3Url pointing at it.)
//! printf '[default]\naws_access_key_id = minio\naws_secret_access_key = minio123\n' > credentials-velero
//!
//! # 3. Velero (CLI from its GitHub releases), file-system backups of volumes:
//! velero install --provider aws --plugins velero/velero-plugin-for-aws:v1.12.0 \
//!   --bucket velero --secret-file ./credentials-velero \
//!   --use-volume-snapshots=false --use-node-agent --default-volumes-to-fs-backup \
//!   --backup-location-config region=minio,s3ForcePathStyle="true",s3Url=http://minio.velero.svc:9000
//! kubectl -n velero get backupstoragelocations   # PHASE Available
//!
//! # 4. An app to back up, a Schedule, and one backup made from it now:
//! kubectl create namespace shop
//! kubectl -n shop create deployment api --image=nginx:1.27 --replicas=2
//! kubectl -n shop expose deployment api --port 80
//! velero schedule create shop-daily --schedule "0 3 * * *" --include-namespaces shop
//! velero backup create --from-schedule shop-daily --wait
//!
//! # 5. Run this test:
//! KUBECONFIG=$HOME/.kube/config VANTAGE_E2E_VELERO_SCHEDULE=shop-daily \
//!   VANTAGE_E2E_SOURCE_NAMESPACE=shop cargo nextest run -p vantage --test e2e restore_cluster
//! ```
//!
//! # A stateful app: a StatefulSet with a volume, and a data job
//!
//! `restore_cluster_statefulset_volume_and_data_job` runs when
//! `VANTAGE_E2E_STATEFUL_SCHEDULE` is set too: it restores a PostgreSQL
//! StatefulSet whose claim is backed up by file-system backup, requires the
//! claim to be Bound to a new volume, runs a `psql` data job (password from
//! the restored Secret; it also prints it, and the report must hold it
//! redacted) and checks that the restored volume is gone after cleanup.
//!
//! ```sh
//! kubectl create namespace shopdb
//! kubectl -n shopdb create secret generic db-credentials --from-literal=password=s3cret
//! kubectl -n shopdb apply -f - <<'EOF'
//! apiVersion: v1
//! kind: Service
//! metadata: {name: db}
//! spec: {clusterIP: None, selector: {app: db}, ports: [{port: 5432}]}
//! ---
//! apiVersion: apps/v1
//! kind: StatefulSet
//! metadata: {name: db}
//! spec:
//!   serviceName: db
//!   replicas: 1
//!   selector: {matchLabels: {app: db}}
//!   template:
//!     metadata: {labels: {app: db}}
//!     spec:
//!       containers:
//!       - name: postgres
//!         image: postgres:17
//!         env:
//!         - {name: POSTGRES_PASSWORD, valueFrom: {secretKeyRef: {name: db-credentials, key: password}}}
//!         - {name: PGDATA, value: /var/lib/postgresql/data/pgdata}
//!         ports: [{containerPort: 5432}]
//!         readinessProbe: {exec: {command: [pg_isready, -U, postgres]}}
//!         volumeMounts: [{name: data, mountPath: /var/lib/postgresql/data}]
//!   volumeClaimTemplates:
//!   - metadata: {name: data}
//!     spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
//! EOF
//! kubectl -n shopdb rollout status statefulset/db
//! kubectl -n shopdb exec db-0 -- psql -U postgres -c //!   "create table orders (id serial, created_at timestamptz default now()); insert into orders default values;"
//! velero schedule create shopdb-daily --schedule "0 3 * * *" --include-namespaces shopdb //!   --default-volumes-to-fs-backup
//! velero backup create --from-schedule shopdb-daily --wait
//! KUBECONFIG=$HOME/.kube/config VANTAGE_E2E_VELERO_SCHEDULE=shop-daily //!   VANTAGE_E2E_STATEFUL_SCHEDULE=shopdb-daily cargo nextest run -p vantage --test e2e restore_cluster
//! ```
//!
//! The test prints the whole report (per-phase timings included). Leftovers of
//! an interrupted run carry `app.kubernetes.io/managed-by=vantage`; the janitor
//! (`vantage::restore::sweep`) removes them after their expiry (1 h here).

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use k8s_openapi::api::core::v1::{Namespace, PersistentVolume, Service};
use kube::api::Api;
use vantage::audit::record::Verdict;
use vantage::capabilities::net::HostResolver;
use vantage::config::{
    Acceptance, BackupSource, ClusterAccess, ComponentRef, Isolation, JobEnv, Limits, Readiness,
    RestoreCheck, RestoreJob, RestoreSpec, Schedule, Selection, Template, TemplateVars,
};
use vantage::restore::{Pacing, RunInfo, RunOptions, ValidationRunner};
use vantage::result::{Assertion, CheckResult, ErrorKind, Status};
use vantage::runtime::engine::EngineOptions;
use vantage::runtime::{LoadedCheck, Runtime};

/// A check that passes when it was given the run's namespace and backup.
struct ContextCheck;

impl ValidationRunner for ContextCheck {
    fn run<'a>(
        &'a self,
        check: &'a RestoreCheck,
        vars: &'a TemplateVars,
        info: &'a RunInfo,
    ) -> Pin<Box<dyn Future<Output = CheckResult> + Send + 'a>> {
        Box::pin(async move {
            let target = check
                .targets
                .first()
                .map(|t| t.render(vars))
                .unwrap_or_default();
            let ok = vars.namespace == info.namespace
                && vars.backup == info.backup
                && target.contains(&info.namespace);
            let mut result =
                CheckResult::host_error(&check.name, &info.location, 0, ErrorKind::Host, "");
            result.error = None;
            result.status = if ok { Status::Pass } else { Status::Fail };
            result.summary = format!("rendered {target}");
            result.assertions = vec![Assertion {
                name: "run context".into(),
                passed: ok,
                warn: false,
                detail: format!("namespace {}, backup {}", vars.namespace, vars.backup),
                duration_ms: None,
            }];
            result
        })
    }
}

/// Runs restore checks with the real Wasm runtime, as the daemon does
/// (`vantage::daemon::restores::run_spec`: templates, allow list plus the
/// volatile namespace's Service addresses, restore mode), resolving names
/// through the cluster's DNS.
struct WasmRunner {
    runtime: Runtime,
    http: LoadedCheck,
    resolver: Arc<HostResolver>,
}

impl ValidationRunner for WasmRunner {
    fn run<'a>(
        &'a self,
        check: &'a RestoreCheck,
        vars: &'a TemplateVars,
        info: &'a RunInfo,
    ) -> Pin<Box<dyn Future<Output = CheckResult> + Send + 'a>> {
        Box::pin(async move {
            match vantage::daemon::restores::run_spec(check, vars, info, None, &self.resolver) {
                Ok(spec) => self.runtime.run(&self.http, &spec).await,
                Err(why) => {
                    CheckResult::host_error(&check.name, &info.location, 0, ErrorKind::Config, why)
                }
            }
        })
    }
}

/// Whether this process reaches the cluster's Services: the address of
/// the `kube-dns` Service (port 53), once `kubernetes.default.svc.<domain>`
/// resolved through it and accepted a TCP connection. Err: what failed.
async fn cluster_services_reachable(
    client: &kube::Client,
    domain: &str,
) -> Result<SocketAddr, String> {
    let dns = Api::<Service>::namespaced(client.clone(), "kube-system")
        .get("kube-dns")
        .await
        .map_err(|e| format!("reading Service kube-system/kube-dns: {e}"))?;
    let ip: IpAddr = dns
        .spec
        .and_then(|s| s.cluster_ip)
        .and_then(|ip| ip.parse().ok())
        .ok_or("Service kube-system/kube-dns has no ClusterIP")?;
    let nameserver = SocketAddr::new(ip, 53);
    let resolver = HostResolver {
        nameserver: Some(nameserver),
        ..HostResolver::default()
    };
    let name = format!("kubernetes.default.svc.{domain}");
    let addrs = tokio::time::timeout(Duration::from_secs(3), resolver.lookup(&name))
        .await
        .map_err(|_| format!("no DNS answer for {name} from kube-dns at {nameserver} within 3 s"))?
        .map_err(|e| format!("resolving {name} through kube-dns at {nameserver}: {e}"))?;
    let target = SocketAddr::new(addrs[0], 443);
    tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::TcpStream::connect(target),
    )
    .await
    .map_err(|_| format!("connecting to {name} ({target}): no answer within 5 s"))?
    .map_err(|e| format!("connecting to {name} ({target}): {e}"))?;
    Ok(nameserver)
}

#[tokio::test(flavor = "multi_thread")]
async fn restore_cluster_latest_backup_passes_and_cleans_up() {
    let (Ok(_), Ok(schedule)) = (
        std::env::var("KUBECONFIG"),
        std::env::var("VANTAGE_E2E_VELERO_SCHEDULE"),
    ) else {
        println!(
            "skipped: set KUBECONFIG and VANTAGE_E2E_VELERO_SCHEDULE to run against a real cluster \
             (see tests/e2e/restore_cluster.rs for a kind + Velero + MinIO setup)"
        );
        return;
    };
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let velero_namespace =
        std::env::var("VANTAGE_E2E_VELERO_NAMESPACE").unwrap_or_else(|_| "velero".into());
    let source = std::env::var("VANTAGE_E2E_SOURCE_NAMESPACE").unwrap_or_else(|_| "shop".into());
    let domain =
        std::env::var("VANTAGE_E2E_CLUSTER_DOMAIN").unwrap_or_else(|_| "cluster.local".into());

    let spec = RestoreSpec {
        name: "e2e".into(),
        cluster: ClusterAccess::default(),
        velero_namespace: velero_namespace.clone(),
        backup: BackupSource::Schedule {
            name: schedule,
            selection: Selection::Latest,
        },
        accept_partially_failed: false,
        source_namespaces: vec![source],
        namespace_prefix: "vantage-restore-".into(),
        schedule: Schedule::Every(Duration::from_secs(86_400)),
        timezone: chrono_tz::UTC,
        restore_timeout: Duration::from_secs(600),
        poll_interval: Duration::from_secs(2),
        readiness: Readiness {
            workloads: Vec::new(),
            timeout: Duration::from_secs(300),
        },
        checks: vec![RestoreCheck {
            name: "api".into(),
            component: ComponentRef::Path(crate::support::wasm("http")),
            targets: vec![Template(format!(
                "http://api.{{{{namespace}}}}.svc.{domain}/"
            ))],
            config: vec![("expect.status.0".into(), Template("200".into()))],
            allow: vec![Template("{target}".into())],
            secrets: Vec::new(),
            limits: Limits::default(),
            allow_insecure: false,
        }],
        edge_target: None,
        rto_target: Some(Duration::from_secs(1800)),
        isolation: Isolation::default(),
        ttl: Duration::from_secs(3600),
        audit: false,
        severity: "critical".into(),
        acceptance: Acceptance::default(),
    };
    let client = vantage::restore::client(&spec.cluster)
        .await
        .expect("a client from KUBECONFIG");
    // The check must really connect: refuse to go on (and fail) where this
    // process cannot reach the cluster's Services.
    let nameserver = match cluster_services_reachable(&client, &domain).await {
        Ok(ns) => ns,
        Err(why) => panic!(
            "KUBECONFIG is set, but this process cannot reach the cluster's Services ({why}). \
             The real `http` check connects to the restored app's ClusterIP, resolved through \
             kube-dns: run this suite where ClusterIPs are routable (in a pod, on a node, or with \
             a route to the service CIDR; see tests/e2e/restore_cluster.rs)"
        ),
    };
    let runtime = Runtime::new(&EngineOptions::default(), Some(crate::support::cache_dir()))
        .expect("the Wasm runtime");
    let http = runtime
        .load_file(&crate::support::wasm("http"))
        .await
        .expect("the http check");
    let runner = WasmRunner {
        runtime,
        http,
        resolver: Arc::new(HostResolver {
            nameserver: Some(nameserver),
            ..HostResolver::default()
        }),
    };
    let options = e2e_options("e2e");

    let report = vantage::restore::run(&client, &spec, &options, &runner).await;
    println!("{}", serde_json::to_string_pretty(&report).expect("JSON"));
    assert_eq!(report.verdict, Verdict::Pass, "{}", report.reason);
    // The real check connected to the restored Service and got 200.
    let check = &report.checks[0];
    assert_eq!(check["status"], "pass", "{check:#}");
    assert!(
        check["measurements"].as_array().is_some_and(|m| m
            .iter()
            .any(|m| m["name"] == "http_status_code" && m["value"] == 200.0)),
        "{check:#}"
    );
    let c = &report.cleanup;
    assert!(
        c.namespace_deleted && c.restore_deleted && c.configmap_deleted && c.errors.is_empty(),
        "{c:?}"
    );

    // The namespace terminates, then is gone.
    let namespace = report.namespace.clone().expect("a namespace");
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        match namespaces.get_opt(&namespace).await.expect("get namespace") {
            None => break,
            Some(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_secs(2)).await
            }
            Some(ns) => panic!(
                "namespace {namespace} still there after 5 min: {:?}",
                ns.status
            ),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn restore_cluster_statefulset_volume_and_data_job() {
    let (Ok(_), Ok(schedule)) = (
        std::env::var("KUBECONFIG"),
        std::env::var("VANTAGE_E2E_STATEFUL_SCHEDULE"),
    ) else {
        println!(
            "skipped: set KUBECONFIG and VANTAGE_E2E_STATEFUL_SCHEDULE to restore a StatefulSet \
             with a volume and run a data job on a real cluster (see tests/e2e/restore_cluster.rs)"
        );
        return;
    };
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let velero_namespace =
        std::env::var("VANTAGE_E2E_VELERO_NAMESPACE").unwrap_or_else(|_| "velero".into());
    let spec = RestoreSpec {
        name: "e2e-db".into(),
        cluster: ClusterAccess::default(),
        velero_namespace,
        backup: BackupSource::Schedule {
            name: schedule,
            selection: Selection::Latest,
        },
        accept_partially_failed: false,
        source_namespaces: vec!["shopdb".into()],
        namespace_prefix: "vantage-restore-".into(),
        schedule: Schedule::Every(Duration::from_secs(86_400)),
        timezone: chrono_tz::UTC,
        restore_timeout: Duration::from_secs(900),
        poll_interval: Duration::from_secs(2),
        readiness: Readiness {
            workloads: Vec::new(),
            timeout: Duration::from_secs(600),
        },
        checks: Vec::new(),
        edge_target: None,
        rto_target: None,
        isolation: Isolation::default(),
        ttl: Duration::from_secs(3600),
        audit: false,
        severity: "critical".into(),
        acceptance: Acceptance {
            jobs: vec![RestoreJob {
                name: "orders-recent".into(),
                image: "postgres:17".into(),
                // It prints its password first: the report must not.
                command: vec![
                    Template("sh".into()),
                    Template("-c".into()),
                    Template(
                        "echo \"password: $PGPASSWORD\"; \
                         psql -h db -U postgres -tAc 'select count(*) > 0 from orders'"
                            .into(),
                    ),
                ],
                env: vec![(
                    "PGPASSWORD".into(),
                    JobEnv::Secret {
                        name: "db-credentials".into(),
                        key: "password".into(),
                    },
                )],
                timeout: Duration::from_secs(300),
                expect_output: Some("t".into()),
                namespace: None,
            }],
            ..Acceptance::default()
        },
    };
    let client = vantage::restore::client(&spec.cluster)
        .await
        .expect("a client from KUBECONFIG");
    let options = e2e_options("e2e-db");
    let report = vantage::restore::run(&client, &spec, &options, &ContextCheck).await;
    println!("{}", serde_json::to_string_pretty(&report).expect("JSON"));
    assert_eq!(report.verdict, Verdict::Pass, "{}", report.reason);
    let ready = report.readiness.as_ref().expect("readiness");
    assert!(
        ready
            .ready
            .iter()
            .any(|r| r.starts_with("persistentvolumeclaim/data-db-0")),
        "{ready:?}"
    );
    let job = &report.jobs[0];
    assert!(job.passed && job.exit_code == Some(0), "{job:?}");
    // Redacted of the restored Secret's value (read here from the source).
    assert!(
        job.log_tail.iter().any(|l| l == "password: [redacted]"),
        "{job:?}"
    );
    let source = Api::<k8s_openapi::api::core::v1::Secret>::namespaced(client.clone(), "shopdb")
        .get("db-credentials")
        .await
        .expect("the source Secret");
    let password = source
        .data
        .and_then(|d| {
            d.get("password")
                .map(|v| String::from_utf8_lossy(&v.0).into_owned())
        })
        .expect("its password");
    let subject = serde_json::to_string(&report).expect("JSON");
    for fragment in vantage::capabilities::secrets::fragments(password.trim()) {
        assert!(!subject.contains(fragment), "the report holds {fragment:?}");
    }
    let evidence = report.evidence.as_ref().expect("evidence");
    assert!(
        evidence.log.is_some() && evidence.results.is_some(),
        "{evidence:?}"
    );
    let volumes: Vec<String> = report
        .cleanup
        .leftovers_deleted
        .iter()
        .filter_map(|l| l.strip_prefix("persistentvolume/").map(str::to_string))
        .collect();
    assert!(
        !volumes.is_empty(),
        "the restored volume is deleted: {:?}",
        report.cleanup
    );
    let pvs: Api<PersistentVolume> = Api::all(client.clone());
    let deadline = Instant::now() + Duration::from_secs(300);
    for name in volumes {
        while pvs.get_opt(&name).await.expect("get pv").is_some() {
            assert!(
                Instant::now() < deadline,
                "volume {name} still there after 5 min"
            );
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
}

/// The gate of the real-cluster check is honest: against an API (the
/// in-memory fake) whose Services this process cannot reach, the
/// precondition fails naming what failed, so the suite would fail rather
/// than pass without having run the check.
#[tokio::test(flavor = "multi_thread")]
async fn restore_cluster_reachability_precondition_names_what_failed() {
    let kube = crate::kube_fake::FakeKube::start().await;
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::from_yaml(&kube.kubeconfig()).unwrap(),
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .unwrap();
    let client = kube::Client::try_from(config).unwrap();

    // No cluster DNS Service at all.
    let e = cluster_services_reachable(&client, "cluster.local")
        .await
        .unwrap_err();
    assert!(e.starts_with("reading Service kube-system/kube-dns"), "{e}");

    // A cluster DNS whose ClusterIP answers nothing from here (nothing
    // listens on port 53 of this address).
    kube.insert(
        "/api/v1/namespaces/kube-system/services",
        serde_json::json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "kube-dns", "namespace": "kube-system"},
            "spec": {"clusterIP": "127.0.0.254", "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}]}}),
    );
    let started = Instant::now();
    let e = cluster_services_reachable(&client, "cluster.local")
        .await
        .unwrap_err();
    assert!(
        e.starts_with(
            "resolving kubernetes.default.svc.cluster.local through kube-dns at 127.0.0.254:53"
        ) || e.starts_with(
            "no DNS answer for kubernetes.default.svc.cluster.local from kube-dns at 127.0.0.254:53"
        ),
        "{e}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// Options of a run from this test process: run id `PREFIX-<unix ms, hex>`,
/// location `e2e`, no Vantage namespace (the test runs outside the cluster,
/// whatever `POD_NAMESPACE` says), default pacing.
fn e2e_options(prefix: &str) -> RunOptions {
    let started = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    RunOptions {
        run_id: format!("{prefix}-{started:x}"),
        location: "e2e".into(),
        vantage_namespace: None,
        pacing: Pacing::default(),
        adopt: None,
        cancelled_cleanup_within: None,
    }
}
