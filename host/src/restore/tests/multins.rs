//! Multi-namespace applications (issue 13): each source namespace of the
//! backup is restored into its own volatile namespace, isolated, open only
//! to the run's other namespaces, waited for, reachable by the checks,
//! cleaned up, found by the janitor, and shown in the report.
//!
//! The fake plays Velero as its source does (`restoreContext.
//! getSelectedRestoreableItems`, pkg/restore/restore.go): every object of a
//! source namespace goes to `namespaceMapping[source]`; an object whose name
//! is already taken in the target namespace is not created (Velero counts
//! it as existing and warns), so merging two namespaces loses objects.

use super::*;
use crate::restore::mapping::{NamespaceMapping, PREFIX_ANNOTATION, SOURCE_NAMESPACE_LABEL};

const SOURCES: [&str; 2] = ["shop", "shop-data"];

/// The cluster behind the fake, by namespace.
#[derive(Default)]
struct Cluster {
    /// The backup's objects, by source namespace.
    backup: BTreeMap<String, Vec<Value>>,
    /// Objects restored, by target namespace.
    restored: BTreeMap<String, Vec<Value>>,
    /// Same-named objects Velero did not create (target, kind/name).
    skipped: Vec<String>,
    /// Isolation-probe outcome by namespace: exit code and message.
    probe: BTreeMap<String, (i32, String)>,
    /// Probe pods created, by namespace.
    probe_pods: BTreeMap<String, Value>,
    /// Data Jobs created: (namespace, Job).
    jobs: Vec<(String, Value)>,
}

fn with_namespace(mut v: Value, ns: &str) -> Value {
    v["metadata"]["namespace"] = json!(ns);
    v
}

fn service(name: &str, ip: &str, port: i32) -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
           "spec": {"clusterIP": ip, "clusterIPs": [ip], "selector": {"app": name},
                    "ports": [{"port": port, "protocol": "TCP"}]}})
}

/// `shop`: the API and its metrics Service; `shop-data`: the database and
/// its own metrics Service (same name, another address).
fn backup_of_two_namespaces() -> BTreeMap<String, Vec<Value>> {
    BTreeMap::from([
        (
            "shop".to_string(),
            vec![
                deployment("api", 1, 1),
                pod("api-7d9f-1", true),
                service("api", "10.96.0.10", 8080),
                service("metrics", "10.96.0.11", 9090),
            ],
        ),
        (
            "shop-data".to_string(),
            vec![
                statefulset("db", 1, 1),
                pod("db-0", true),
                service("db", "10.96.0.20", 5432),
                service("metrics", "10.96.0.21", 9090),
                // Restored by file-system backup: a new volume from the
                // provisioner (see `restored_volume`).
                json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                       "metadata": {"name": "data-db-0"},
                       "spec": {"volumeName": "pvc-restored-data", "accessModes": ["ReadWriteOnce"]},
                       "status": {"phase": "Bound"}}),
            ],
        ),
    ])
}

fn objects_of<'a>(cluster: &'a Cluster, ns: &str, kind: &str) -> Vec<&'a Value> {
    cluster
        .restored
        .get(ns)
        .into_iter()
        .flatten()
        .filter(|o| o["kind"] == kind)
        .collect()
}

/// Velero and the kubelet, namespace by namespace (see the module docs).
fn namespaced_api(world: &mut World, cluster: Arc<Mutex<Cluster>>) {
    world.extra = Some(Box::new(move |r: &Recorded| {
        let mut c = cluster.lock().unwrap();
        let parts = r.parts();
        let listed = |c: &Cluster, list_kind: &str, ns: &str, kind: &str| {
            Some(list(
                list_kind,
                objects_of(c, ns, kind).into_iter().cloned().collect(),
            ))
        };
        match (r.method.as_str(), parts.as_slice()) {
            ("POST", ["velero", "restores"]) => {
                let restore = r.body.clone().unwrap_or_default();
                let mapping = restore["spec"]["namespaceMapping"]
                    .as_object()
                    .cloned()
                    .unwrap_or_default();
                for (source, target) in mapping {
                    let target = target.as_str().unwrap_or_default().to_string();
                    for obj in c.backup.get(&source).cloned().unwrap_or_default() {
                        let taken = objects_of(&c, &target, obj["kind"].as_str().unwrap_or(""))
                            .iter()
                            .any(|o| name_of(o) == name_of(&obj));
                        if taken {
                            let what = format!("{target}: {}/{}", obj["kind"], name_of(&obj));
                            c.skipped.push(what);
                            continue;
                        }
                        c.restored
                            .entry(target.clone())
                            .or_default()
                            .push(with_namespace(obj, &target));
                    }
                }
                None
            }
            ("GET", ["apis", "apps", "v1", "namespaces", ns, "deployments"]) => {
                listed(&c, "DeploymentList", ns, "Deployment")
            }
            ("GET", ["apis", "apps", "v1", "namespaces", ns, "statefulsets"]) => {
                listed(&c, "StatefulSetList", ns, "StatefulSet")
            }
            ("GET", ["apis", "apps", "v1", "namespaces", ns, kind, name]) => {
                let kind = if *kind == "deployments" {
                    "Deployment"
                } else {
                    "StatefulSet"
                };
                Some(
                    objects_of(&c, ns, kind)
                        .into_iter()
                        .find(|o| name_of(o) == *name)
                        .map_or_else(|| not_found("workload"), |o| (200, o.clone())),
                )
            }
            ("GET", ["api", "v1", "namespaces", ns, "services"]) => {
                listed(&c, "ServiceList", ns, "Service")
            }
            ("GET", ["api", "v1", "namespaces", ns, "persistentvolumeclaims"]) => {
                listed(&c, "PersistentVolumeClaimList", ns, "PersistentVolumeClaim")
            }
            // The data jobs' pods: one per Job of the namespace, exit 0.
            ("GET", ["api", "v1", "namespaces", ns, "pods"])
                if r.query.contains("vantage.dev%2Fjob") =>
            {
                let pods = c
                    .jobs
                    .iter()
                    .filter(|(jns, _)| jns == ns)
                    .map(|(_, j)| {
                        json!({"apiVersion": "v1", "kind": "Pod",
                               "metadata": {"name": format!("{}-x7k2p", name_of(j)), "namespace": ns,
                                            "labels": j["spec"]["template"]["metadata"]["labels"]},
                               "status": {"phase": "Succeeded", "containerStatuses": [{"name": "job",
                                   "ready": false, "restartCount": 0, "image": "", "imageID": "",
                                   "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}})
                    })
                    .filter(|p| selected(p, &r.query))
                    .collect();
                Some(list("PodList", pods))
            }
            ("GET", ["api", "v1", "namespaces", ns, "pods"]) => listed(&c, "PodList", ns, "Pod"),
            ("GET", ["api", "v1", "namespaces", _, "pods", _, "log"]) => {
                Some((200, Value::String("t\n".into())))
            }
            ("POST", ["api", "v1", "namespaces", ns, "pods"]) => {
                let pod = r.body.clone().unwrap_or_default();
                c.probe_pods.insert(ns.to_string(), pod.clone());
                Some((201, pod))
            }
            ("GET", ["api", "v1", "namespaces", ns, "pods", probe::PROBE_POD]) => {
                let mut pod = c.probe_pods.get(*ns).cloned()?;
                let (exit, message) = c.probe.get(*ns).cloned().unwrap_or((0, "refused".into()));
                pod["status"] = probe_terminated(exit, &message);
                Some((200, pod))
            }
            ("DELETE", ["api", "v1", "namespaces", _, "pods", probe::PROBE_POD]) => {
                Some((200, status(200, "", "")))
            }
            ("POST", ["apis", "batch", "v1", "namespaces", ns, "jobs"]) => {
                let job = r.body.clone().unwrap_or_default();
                c.jobs.push((ns.to_string(), job.clone()));
                Some((201, job))
            }
            ("GET", ["apis", "batch", "v1", "namespaces", ns, "jobs", name]) => Some(
                c.jobs
                    .iter()
                    .find(|(jns, j)| jns == ns && name_of(j) == *name)
                    .map_or_else(
                        || not_found("job"),
                        |(_, j)| {
                            let mut j = j.clone();
                            j["status"] = json!({"succeeded": 1,
                                "conditions": [{"type": "Complete", "status": "True"}]});
                            (200, j)
                        },
                    ),
            ),
            _ => None,
        }
    }));
}

/// The shop restore test over both namespaces: a check on each, a data job
/// in `shop-data`, the isolation probe.
fn two_namespace_spec() -> RestoreSpec {
    let mut spec = spec();
    spec.source_namespaces = SOURCES.iter().map(|s| s.to_string()).collect();
    spec.checks = vec![
        check(
            "api",
            "http://api.{{namespace}}.svc.cluster.local:8080/healthz",
        ),
        check(
            "db",
            "http://db.{{namespace:shop-data}}.svc.cluster.local:5432/",
        ),
    ];
    spec.isolation.isolation_probe = vec!["postgres.shop-data-prod.svc:5432".into()];
    let mut job = data_job_in(None);
    job.name = "api-config".into();
    spec.acceptance.jobs = vec![data_job_in(Some("shop-data")), job];
    spec
}

fn data_job_in(namespace: Option<&str>) -> crate::config::RestoreJob {
    crate::config::RestoreJob {
        name: "orders".into(),
        image: "postgres:17".into(),
        command: vec![
            Template("psql".into()),
            Template("-h".into()),
            Template("db.{{namespace:shop-data}}.svc".into()),
        ],
        env: Vec::new(),
        timeout: Duration::from_secs(5),
        expect_output: Some("t".into()),
        namespace: namespace.map(str::to_string),
    }
}

fn world_of_two_namespaces() -> (World, Arc<Mutex<Cluster>>) {
    let mut world = healthy_world();
    world.volume_on_restore = false;
    // Backed up together, as one app.
    for b in &mut world.backups {
        b["spec"]["includedNamespaces"] = json!(SOURCES);
        assert_valid("backups", b);
    }
    let cluster = Arc::new(Mutex::new(Cluster {
        backup: backup_of_two_namespaces(),
        ..Cluster::default()
    }));
    namespaced_api(&mut world, cluster.clone());
    (world, cluster)
}

/// The volume the provisioner made for the claim restored into `ns`
/// (`Retain`, no Velero label), and production's volume of `shop-data`.
fn restored_volume(ns: &str) -> Vec<Value> {
    let pv = |name: &str, claim_ns: &str| {
        json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name},
               "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                        "persistentVolumeReclaimPolicy": "Retain",
                        "claimRef": {"kind": "PersistentVolumeClaim", "namespace": claim_ns, "name": "data-db-0"}},
               "status": {"phase": "Bound"}})
    };
    vec![
        pv("pvc-restored-data", ns),
        pv("pvc-prod-data", "shop-data"),
    ]
}

fn expected_mapping(run_id: &str) -> Vec<NamespaceMapping> {
    let sources: Vec<String> = SOURCES.iter().map(|s| s.to_string()).collect();
    mapping::volatile_namespaces("vantage-restore-", &sources, run_id)
}

/// Whether a `matchLabels` selector selects an object with `labels`.
fn selects(selector: &Value, labels: &Value) -> bool {
    selector["matchLabels"]
        .as_object()
        .is_some_and(|m| m.iter().all(|(k, v)| labels[k] == *v))
}

#[tokio::test]
async fn multins_each_source_namespace_is_restored_into_its_own_isolated_namespace() {
    let (mut world, cluster) = world_of_two_namespaces();
    let run_id = "18c2f9a0b11-4d2-7";
    world.volumes = restored_volume(&expected_mapping(run_id)[1].volatile);
    let fake = Fake::new(world);
    let runner = ScriptedRunner::default();
    let spec = two_namespace_spec();
    let report = run(&fake.client, &spec, &options(run_id), &runner).await;
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
    assert_eq!(report.verdict, Verdict::Pass, "{}", report.reason);

    let m = expected_mapping(run_id);
    let (shop, data) = (m[0].volatile.clone(), m[1].volatile.clone());
    assert_ne!(shop, data);
    assert_eq!(
        report.namespaces,
        [
            NamespaceMapping::new("shop", shop.clone()),
            NamespaceMapping::new("shop-data", data.clone())
        ]
    );
    assert_eq!(report.namespace.as_deref(), Some(shop.as_str()));

    // Two namespaces, each labelled with the run and its source, each with
    // its own isolating NetworkPolicy created before the Restore.
    let calls = fake.calls();
    let at = |needle: &str| position_of(&calls, needle);
    let restore_at = at(&format!("POST {V}/restores"));
    for ns in [&shop, &data] {
        assert!(
            at(&format!(
                "POST /apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies"
            )) < restore_at
        );
    }
    let namespaces = fake.posted("/namespaces");
    assert_eq!(namespaces.len(), 2, "{namespaces:#?}");
    for (posted, (source, ns)) in namespaces
        .iter()
        .zip([("shop", &shop), ("shop-data", &data)])
    {
        assert_eq!(name_of(posted), ns.as_str());
        let labels = &posted["metadata"]["labels"];
        assert_eq!(labels["vantage.dev/run-id"], run_id);
        assert_eq!(labels["app.kubernetes.io/managed-by"], "vantage");
        assert_eq!(labels[SOURCE_NAMESPACE_LABEL], source);
        assert!(posted["metadata"]["annotations"]["vantage.dev/expires-at"].is_string());
    }

    // Isolation: each policy lets in and out exactly the run's namespaces
    // besides what a single namespace gets; not another run's, not any
    // Vantage namespace, not production.
    let policies = fake.posted("/networkpolicies");
    assert_eq!(policies.len(), 2);
    let other_run = json!({"app.kubernetes.io/managed-by": "vantage",
        "vantage.dev/restore-test": "shop", "vantage.dev/run-id": "another-run"});
    let production = json!({"kubernetes.io/metadata.name": "shop-data"});
    for (policy, posted_ns) in policies.iter().zip(&namespaces) {
        let ingress = policy["spec"]["ingress"].as_array().unwrap();
        let egress = policy["spec"]["egress"].as_array().unwrap();
        assert_eq!(ingress.len(), 2, "{policy:#}");
        // DNS + the run's namespaces (egress = [] in the spec).
        assert_eq!(egress.len(), 3, "{policy:#}");
        for rule in [&ingress[1]["from"], &egress[2]["to"]] {
            let peers = rule.as_array().unwrap();
            assert_eq!(peers.len(), 1);
            let selector = &peers[0]["namespaceSelector"];
            assert!(peers[0].get("podSelector").is_none() && peers[0].get("ipBlock").is_none());
            for ns in &namespaces {
                assert!(
                    selects(selector, &ns["metadata"]["labels"]),
                    "{selector} must select {}",
                    name_of(ns)
                );
            }
            assert!(!selects(selector, &other_run), "another run: {selector}");
            assert!(!selects(selector, &production), "production: {selector}");
            assert!(
                !selects(
                    selector,
                    &json!({"app.kubernetes.io/managed-by": "vantage"})
                ),
                "any Vantage namespace: {selector}"
            );
        }
        assert_eq!(
            policy["metadata"]["namespace"],
            posted_ns["metadata"]["name"]
        );
    }

    // The Restore: each source to its own target, valid per Velero's CRD.
    let restore = &fake.posted("/restores")[0];
    assert_valid("restores", restore);
    assert_eq!(
        restore["spec"]["namespaceMapping"],
        json!({"shop": shop, "shop-data": data})
    );
    assert_eq!(
        restore["spec"]["includedNamespaces"],
        json!(["shop", "shop-data"])
    );
    assert_eq!(
        restore["metadata"]["annotations"][PREFIX_ANNOTATION],
        "vantage-restore-"
    );
    // Nothing merged: both `metrics` Services exist, each in its namespace.
    let c = cluster.lock().unwrap();
    assert!(c.skipped.is_empty(), "{:?}", c.skipped);
    assert_eq!(objects_of(&c, &shop, "Service").len(), 2);
    assert_eq!(objects_of(&c, &data, "Service").len(), 2);
    // The isolation probe ran in both namespaces; the jobs where they say.
    assert_eq!(c.probe_pods.keys().cloned().collect::<Vec<_>>(), {
        let mut v = vec![shop.clone(), data.clone()];
        v.sort();
        v
    });
    let jobs: Vec<(String, String)> = c
        .jobs
        .iter()
        .map(|(ns, j)| (ns.clone(), name_of(j).to_string()))
        .collect();
    assert_eq!(
        jobs,
        [
            (data.clone(), "vantage-job-orders".to_string()),
            (shop.clone(), "vantage-job-api-config".to_string())
        ]
    );
    // A job's template names the other namespace's copy.
    assert_eq!(
        c.jobs[0].1["spec"]["template"]["spec"]["containers"][0]["command"][2],
        format!("db.{data}.svc")
    );
    drop(c);
    let probe = report.isolation_probe.as_ref().unwrap();
    assert!(probe.isolated && probe.error.is_none(), "{probe:?}");

    // Readiness looked at both namespaces.
    let ready = report.readiness.as_ref().unwrap();
    assert_eq!(
        ready.ready,
        [
            "shop/deployment/api",
            "shop/pod/api-7d9f-1",
            "shop-data/statefulset/db",
            "shop-data/pod/db-0",
            "shop-data/persistentvolumeclaim/data-db-0"
        ]
    );

    // The checks: `{{namespace}}` is the first source's copy,
    // `{{namespace:shop-data}}` the database's; both namespaces' Services
    // are reachable.
    let seen = runner.seen.lock().unwrap().clone();
    assert_eq!(
        seen[0].1,
        [format!("http://api.{shop}.svc.cluster.local:8080/healthz")]
    );
    assert_eq!(
        seen[1].1,
        [format!("http://db.{data}.svc.cluster.local:5432/")]
    );
    let info = &seen[1].3;
    assert_eq!(info.namespaces, report.namespaces);
    let reachable: Vec<String> = info
        .reachable
        .iter()
        .map(|r| format!("{}:{}", r.ip, r.port))
        .collect();
    for addr in [
        "10.96.0.10:8080",
        "10.96.0.11:9090",
        "10.96.0.20:5432",
        "10.96.0.21:9090",
    ] {
        assert!(
            reachable.contains(&addr.to_string()),
            "{addr} in {reachable:?}"
        );
    }
    let sandbox = crate::daemon::restores::run_spec(
        &spec.checks[1],
        &seen[1].2,
        info,
        None,
        &Arc::new(crate::capabilities::net::HostResolver::default()),
    )
    .unwrap();
    let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
    let host = format!("db.{data}.svc.cluster.local");
    assert!(
        sandbox
            .allow
            .check_addr("http", &host, 5432, ip("10.96.0.20"))
            .is_ok()
    );
    assert!(
        sandbox
            .allow
            .check_addr("http", &host, 5432, ip("10.96.0.99"))
            .is_err()
    );

    // The report shows the mapping: reason, the restore assertion (text
    // output), labels, JSON (the audit record's subject).
    let mapping_text = format!("shop → {shop}, shop-data → {data}");
    assert!(
        report
            .reason
            .contains(&format!("restored into {mapping_text}")),
        "{}",
        report.reason
    );
    let shown = report.to_check_result();
    let restored = shown
        .assertions
        .iter()
        .find(|a| a.name == "restore completed")
        .unwrap();
    assert!(
        restored.detail.ends_with(&mapping_text),
        "{}",
        restored.detail
    );
    assert!(
        crate::cli::output::human(&shown).contains(&mapping_text),
        "text output"
    );
    assert!(
        shown
            .labels
            .contains(&("namespace:shop-data".to_string(), data.clone()))
    );
    let v = serde_json::to_value(&report).unwrap();
    assert_eq!(
        v["namespaces"],
        json!([{"source": "shop", "volatile": shop}, {"source": "shop-data", "volatile": data}])
    );
    let back: RestoreReport = serde_json::from_value(v).unwrap();
    assert_eq!(back, report);

    // Cleanup: both namespaces, the Restore and the ConfigMap.
    let calls = fake.calls();
    for ns in [&shop, &data] {
        let delete = format!("DELETE /api/v1/namespaces/{ns}");
        assert!(calls.contains(&delete), "no {delete} in {calls:#?}");
        // Its claims were read first: their volumes go with it.
        assert!(fake.requests().iter().any(|r| r.is(
            "GET",
            &format!("/api/v1/namespaces/{ns}/persistentvolumeclaims")
        )));
    }
    assert!(report.cleanup.namespace_deleted, "{:?}", report.cleanup);
    // The second namespace's volume went through its claim; production's
    // stays.
    assert!(
        report
            .cleanup
            .leftovers_deleted
            .contains(&"persistentvolume/pvc-restored-data".to_string()),
        "{:?}",
        report.cleanup
    );
    let volumes: Vec<String> = fake
        .world
        .lock()
        .unwrap()
        .volumes
        .iter()
        .map(|v| name_of(v).to_string())
        .collect();
    assert_eq!(volumes, ["pvc-prod-data"]);
    assert!(report.cleanup.errors.is_empty(), "{:?}", report.cleanup);
    let world = fake.world.lock().unwrap();
    assert!(world.namespaces.is_empty() && world.restores.is_empty());
}

#[tokio::test]
async fn multins_a_probe_that_reaches_production_from_one_namespace_is_an_error_naming_it() {
    let (world, cluster) = world_of_two_namespaces();
    let run_id = "run-probe-2";
    let m = expected_mapping(run_id);
    cluster.lock().unwrap().probe.insert(
        m[1].volatile.clone(),
        (1, "reached: postgres.shop-data-prod.svc:5432\n".into()),
    );
    let fake = Fake::new(world);
    let report = fake.run(&two_namespace_spec(), run_id).await;
    assert_eq!(report.verdict, Verdict::Error, "{}", report.reason);
    assert!(
        report
            .reason
            .contains("reached postgres.shop-data-prod.svc:5432 from shop-data"),
        "{}",
        report.reason
    );
    let probe = report.isolation_probe.as_ref().unwrap();
    assert!(!probe.isolated);
    assert_eq!(
        probe.reached,
        ["postgres.shop-data-prod.svc:5432 from shop-data"]
    );
    assert!(report.cleanup.namespace_deleted && report.cleanup.errors.is_empty());
    assert!(fake.world.lock().unwrap().namespaces.is_empty());
}

#[tokio::test]
async fn multins_readiness_waits_for_every_namespace() {
    let (world, cluster) = world_of_two_namespaces();
    // The database never becomes ready.
    cluster.lock().unwrap().backup.get_mut("shop-data").unwrap()[0] = statefulset("db", 1, 0);
    let fake = Fake::new(world);
    let mut spec = two_namespace_spec();
    spec.readiness.workloads = vec![
        workload(WorkloadKind::Deployment, "api"),
        workload(WorkloadKind::StatefulSet, "db"),
        workload(WorkloadKind::Deployment, "worker"),
    ];
    let report = fake.run(&spec, "run-ready-2").await;
    assert_eq!(report.verdict, Verdict::Fail, "{}", report.reason);
    let ready = report.readiness.as_ref().unwrap();
    assert_eq!(ready.ready, ["shop/deployment/api"]);
    assert_eq!(
        ready.not_ready,
        [
            "shop-data/statefulset/db: 0/1 ready",
            "deployment/worker: not found in shop, shop-data"
        ]
    );
    assert!(fake.world.lock().unwrap().namespaces.is_empty());
}

#[tokio::test]
async fn multins_the_janitor_finds_every_namespace_of_a_run_even_unlabelled() {
    let mut world = World::default();
    let old = Utc::now() - hours(7);
    let spec = two_namespace_spec();
    let expired = namespace::run_annotations(old + hours(6));
    let done = expected_mapping("old-run");
    let running = expected_mapping("running-run");
    let mut restore_annotations = expired.clone();
    restore_annotations.insert(PREFIX_ANNOTATION.into(), "vantage-restore-".into());
    let restore_of = |name: &str, run: &str, mapping: &[NamespaceMapping], phase: &str| {
        let mut r = restore_object::build_restore(
            &spec,
            name,
            "shop-daily-older",
            mapping,
            None,
            &namespace::run_labels("shop", run),
            &restore_annotations,
        );
        r.status = Some(velero::RestoreStatus {
            phase: Some(phase.into()),
            ..Default::default()
        });
        let v = serde_json::to_value(&r).unwrap();
        assert_valid("restores", &v);
        v
    };
    // A finished run whose namespaces Velero re-created without Vantage's
    // labels; a run Velero is still restoring (labelled namespaces); a
    // Restore someone else labelled, with the prefix annotation, mapping
    // into production.
    let hostile = restore_of(
        "vantage-restore-shop-evil00",
        "evil-run",
        &[
            NamespaceMapping::new("shop", "shop"),
            NamespaceMapping::new("shop-data", "vantage-restore-shop-data-0a0b0c"),
        ],
        "Completed",
    );
    world.restores = vec![
        restore_of(
            &restore_object::restore_name("vantage-restore-", "shop", "old-run"),
            "old-run",
            &done,
            "Completed",
        ),
        restore_of(
            &restore_object::restore_name("vantage-restore-", "shop", "running-run"),
            "running-run",
            &running,
            "InProgress",
        ),
        hostile,
    ];
    let unlabelled =
        |name: &str| json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
    let labelled = |name: &str, run: &str| {
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name,
            "labels": namespace::run_labels("shop", run), "annotations": expired}})
    };
    world.namespaces = vec![
        unlabelled(&done[0].volatile),
        unlabelled(&done[1].volatile),
        labelled(&running[0].volatile, "running-run"),
        labelled(&running[1].volatile, "running-run"),
        unlabelled("shop"),
        unlabelled("vantage-restore-shop-data-0a0b0c"),
    ];
    let fake = Fake::new(world);
    let swept = sweep(&fake.client, "velero", Utc::now()).await;
    assert_eq!(swept.errors, Vec::<String>::new());
    assert_eq!(
        swept.namespaces_deleted,
        [done[0].volatile.clone(), done[1].volatile.clone()]
    );
    for ns in &running {
        assert!(
            swept
                .waiting
                .iter()
                .any(|w| w.starts_with(&format!("namespace/{}:", ns.volatile))),
            "{:?}",
            swept.waiting
        );
    }
    let left: Vec<String> = fake.namespace_names();
    assert_eq!(
        left,
        [
            running[0].volatile.clone(),
            running[1].volatile.clone(),
            "shop".to_string(),
            "vantage-restore-shop-data-0a0b0c".to_string()
        ]
    );

    // Once Velero is done, the running run's namespaces go too.
    {
        let mut w = fake.world.lock().unwrap();
        for r in &mut w.restores {
            r["status"]["phase"] = json!("Completed");
        }
    }
    let swept = sweep(&fake.client, "velero", Utc::now()).await;
    assert_eq!(
        swept.namespaces_deleted,
        [running[0].volatile.clone(), running[1].volatile.clone()]
    );
}

#[test]
fn multins_the_admission_policy_admits_a_restore_per_source_and_refuses_an_unprefixed_target() {
    use super::admission::{allow, deny, labels, req};
    let mut spec = spec();
    spec.source_namespaces = SOURCES.iter().map(|s| s.to_string()).collect();
    let targets = expected_mapping("run-1");
    let name = restore_object::restore_name("vantage-restore-", "shop", "run-1");
    let annotations = namespace::run_annotations(Utc::now());
    let modifiers =
        restore_object::build_modifiers(&spec, &name, &targets, &labels(), &annotations);
    let restore = serde_json::to_value(restore_object::build_restore(
        &spec,
        &name,
        "shop-daily-1",
        &targets,
        modifiers.as_ref().and_then(|m| m.metadata.name.as_deref()),
        &labels(),
        &annotations,
    ))
    .unwrap();
    assert_eq!(
        restore["spec"]["namespaceMapping"]
            .as_object()
            .unwrap()
            .len(),
        2
    );
    allow(req("CREATE", "restores", restore.clone()));
    let mut bad = restore.clone();
    bad["spec"]["namespaceMapping"]["shop-data"] = json!("shop-data-copy");
    deny(req("CREATE", "restores", bad));
    let mut unmapped = restore.clone();
    unmapped["spec"]["namespaceMapping"]
        .as_object_mut()
        .unwrap()
        .remove("shop-data");
    deny(req("CREATE", "restores", unmapped));
}
