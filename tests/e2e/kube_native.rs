//! Kubernetes-native Vantage against the in-process fake API server
//! (`kube_fake.rs`): `Check` resources run by three `vantage daemon
//! --kubernetes --membership leases` processes, each check exactly once
//! per slot; one replica killed, its checks moved within a lease duration;
//! an invalid resource refused with its condition while the others run;
//! a Secret and a ConfigMap reaching a check; a `RestoreTest` run by one
//! leader that hands over when it dies; a replica cut off from the API
//! server running nothing.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path as UrlPath, State};
use serde_json::{Value, json};

use crate::daemon::Daemon;
use crate::kube_fake::FakeKube;
use crate::servers::wait_until;
use crate::support::wasm;

const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/default/leases";

/// When each check's target was hit, by check name.
type Hits = Arc<Mutex<BTreeMap<String, Vec<Instant>>>>;

/// The token `check-0`'s target requires (from a Secret, by secretKeyRef).
const TOKEN: &str = "s3cr3t-token-from-a-secret";

/// A target answering 200 on `/c/{name}` and noting the time; `/c/check-0`
/// answers 401 without `Authorization: Bearer {TOKEN}`.
async fn counting_target() -> (String, Hits) {
    let hits: Hits = Arc::default();
    let app = axum::Router::new()
        .route(
            "/c/{name}",
            axum::routing::get(
                |State(h): State<Hits>,
                 UrlPath(name): UrlPath<String>,
                 headers: axum::http::HeaderMap| async move {
                    let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
                    if name == "check-0" && auth != Some(&format!("Bearer {TOKEN}")) {
                        return (axum::http::StatusCode::UNAUTHORIZED, "who are you");
                    }
                    h.lock()
                        .unwrap()
                        .entry(name)
                        .or_default()
                        .push(Instant::now());
                    (axum::http::StatusCode::OK, "ok")
                },
            ),
        )
        .with_state(hits.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), hits)
}

/// A `Check` resource running the official `http` check every `every`.
fn check(name: &str, target: &str, every: &str) -> Value {
    json!({
        "apiVersion": "vantage.dev/v1alpha1",
        "kind": "Check",
        "metadata": {"name": name},
        "spec": {
            "component": wasm("http").display().to_string(),
            "every": every,
            "targets": [format!("{target}/c/{name}")],
            "allow": ["{target}"],
        },
    })
}

/// Start replica `i` of the group against the API server of `kubeconfig`,
/// in `namespace`.
fn replica(
    dir: &std::path::Path,
    kubeconfig: &std::path::Path,
    namespace: &str,
    i: usize,
    args: &[&str],
) -> Daemon {
    let pod = format!("vantage-{i}");
    let mut all = vec![
        "--no-watch",
        "--kubernetes",
        "--shard-group",
        "e2e",
        "--lease-duration",
        "3s",
    ];
    all.extend_from_slice(args);
    Daemon::start_with_env(
        dir,
        "",
        "",
        &all,
        &[
            ("KUBECONFIG", kubeconfig.to_str().unwrap()),
            ("POD_NAME", &pod),
            ("POD_NAMESPACE", namespace),
        ],
    )
}

/// The largest gap between consecutive hits of `times` within `[from, to]`,
/// and the smallest; there must be at least `least` hits.
fn gaps(times: &[Instant], from: Instant, to: Instant, least: usize) -> (Duration, Duration) {
    let inside: Vec<Instant> = times
        .iter()
        .copied()
        .filter(|t| *t >= from && *t <= to)
        .collect();
    assert!(
        inside.len() >= least,
        "{} run(s), expected at least {least}",
        inside.len()
    );
    let mut max = Duration::ZERO;
    let mut min = Duration::MAX;
    for w in inside.windows(2) {
        max = max.max(w[1] - w[0]);
        min = min.min(w[1] - w[0]);
    }
    (max, min)
}

#[tokio::test(flavor = "multi_thread")]
async fn three_replicas_run_each_check_once_per_slot_and_take_over_a_dead_ones_share() {
    let kube = FakeKube::start().await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, kube.kubeconfig()).unwrap();
    sharded(&kubeconfig, "default").await;
}

/// A client for the cluster `kubeconfig` names.
pub(crate) async fn client(kubeconfig: &std::path::Path) -> kube::Client {
    let config = kube::config::Kubeconfig::read_from(kubeconfig).unwrap();
    let config = kube::Config::from_custom_kubeconfig(config, &Default::default())
        .await
        .unwrap();
    kube::Client::try_from(config).unwrap()
}

/// The sharded scenario, against the API server `kubeconfig` names (the
/// fake, or a real cluster with the CRDs applied) in `namespace`: nine
/// `Check`s and an invalid one, three replicas with Leases, each check
/// once per slot, their status written back, one replica killed and its
/// checks moved within a lease duration.
pub(crate) async fn sharded(kubeconfig: &std::path::Path, namespace: &str) {
    use k8s_openapi::api::coordination::v1::Lease;
    use k8s_openapi::api::core::v1::{ConfigMap, Secret};
    use kube::api::{Api, PostParams};
    use vantage::kubernetes::crd::Check;
    let client = client(kubeconfig).await;
    let checks: Api<Check> = Api::namespaced(client.clone(), namespace);
    let leases: Api<Lease> = Api::namespaced(client.clone(), namespace);
    let (target, hits) = counting_target().await;
    let names: Vec<String> = (0..9).map(|i| format!("check-{i}")).collect();
    // check-0's token from a Secret; check-8's component from a ConfigMap.
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "shop-api"},
        "stringData": {"token": TOKEN},
    }))
    .unwrap();
    let mut secret = secret;
    secret.data = secret.string_data.take().map(|d| {
        d.into_iter()
            .map(|(k, v)| (k, k8s_openapi::ByteString(v.into_bytes())))
            .collect()
    });
    Api::<Secret>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let wasm_bytes = std::fs::read(wasm("http")).unwrap();
    let cm: ConfigMap = ConfigMap {
        metadata: kube::api::ObjectMeta {
            name: Some("http-check".into()),
            ..Default::default()
        },
        binary_data: Some([("http.wasm".to_string(), k8s_openapi::ByteString(wasm_bytes))].into()),
        ..Default::default()
    };
    Api::<ConfigMap>::namespaced(client, namespace)
        .create(&PostParams::default(), &cm)
        .await
        .unwrap();
    let create = |object: Value| {
        let checks = checks.clone();
        async move {
            let c: Check = serde_json::from_value(object).unwrap();
            checks.create(&PostParams::default(), &c).await.unwrap();
        }
    };
    for n in &names {
        let mut c = check(n, &target, "1s");
        if n == "check-0" {
            c["spec"]["secrets"] =
                json!({"token": {"secretKeyRef": {"name": "shop-api", "key": "token"}}});
            c["spec"]["config"] = json!({"headers": {"Authorization": "Bearer {{secret.token}}"}});
        }
        if n == "check-8" {
            let spec = c["spec"].as_object_mut().unwrap();
            spec.remove("component");
            spec.insert(
                "componentFrom".into(),
                json!({"configMapKeyRef": {"name": "http-check", "key": "http.wasm"}}),
            );
        }
        create(c).await;
    }
    // An invalid one: refused with its reason, the others unaffected.
    create(check("bad-every", &target, "1x")).await;
    let status_of = |name: &str| {
        let (checks, name) = (checks.clone(), name.to_string());
        async move { serde_json::to_value(checks.get(&name).await.unwrap()).unwrap()["status"].clone() }
    };
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut replicas: Vec<Option<Daemon>> = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        let (path, kc, ns) = (
            dir.path().to_path_buf(),
            kubeconfig.to_path_buf(),
            namespace.to_string(),
        );
        let d = tokio::task::spawn_blocking(move || {
            replica(&path, &kc, &ns, i, &["--membership", "leases"])
        })
        .await
        .unwrap();
        replicas.push(Some(d));
    }
    // Settled: three members, every check owned by exactly one replica.
    let owners = wait_until(
        "three members sharing the checks",
        Duration::from_secs(30),
        || {
            let owned: Vec<Vec<String>> =
                replicas.iter().flatten().map(Daemon::check_names).collect();
            let metrics: Vec<String> = replicas.iter().flatten().map(Daemon::metrics).collect();
            let mut all = owned.concat();
            all.sort();
            let mut want = names.clone();
            want.sort();
            let ok = all == want
                && owned.iter().all(|o| !o.is_empty())
                && metrics
                    .iter()
                    .all(|m| m.contains("vantage_shard_members 3"));
            (ok.then(|| owned.clone()), format!("{owned:?}"))
        },
    );
    for (d, mine) in replicas.iter().flatten().zip(&owners) {
        let m = d.metrics();
        assert!(
            m.contains(&format!("vantage_shard_owned_checks {}", mine.len())),
            "{m}"
        );
    }
    // Each check runs once per 1 s slot: over 6 s, consecutive runs are
    // never less than half a slot apart (two runs in one slot would be) and
    // never more than a slot and a half.
    let from = Instant::now();
    tokio::time::sleep(Duration::from_secs(6)).await;
    let to = Instant::now();
    for n in &names {
        let h = hits.lock().unwrap().get(n).cloned().unwrap_or_default();
        let (max, min) = gaps(&h, from, to, 5);
        assert!(
            min >= Duration::from_millis(500),
            "{n} ran twice in a slot: {min:?} apart"
        );
        assert!(
            max <= Duration::from_millis(1500),
            "{n} missed a slot: {max:?} gap"
        );
    }
    // The resources' status (what `kubectl get checks` shows) says who
    // runs them and how it went.
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        let mut s = Vec::new();
        for n in &names {
            s.push(status_of(n).await);
        }
        if s.iter()
            .all(|s| s["state"] == "up" && s["lastRun"].is_string())
        {
            break s;
        }
        assert!(Instant::now() < deadline, "every Check's status: {s:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for (n, s) in names.iter().zip(&status) {
        let runner = s["runner"].as_str().unwrap();
        let i: usize = runner.trim_start_matches("vantage-").parse().unwrap();
        assert!(
            owners[i].contains(n),
            "{n} says {runner} runs it: {owners:?}"
        );
        assert!(s["lastResult"].as_str().unwrap().starts_with("pass"), "{s}");
        assert!(
            s["componentDigest"]
                .as_str()
                .unwrap()
                .starts_with("sha256:"),
            "{s}"
        );
        assert_eq!(s["conditions"][0]["status"], "True", "{s}");
    }
    // The Secret's value reached the check and nothing else.
    for s in &status {
        assert!(!s.to_string().contains(TOKEN), "{s}");
    }
    for d in replicas.iter().flatten() {
        assert!(!d.stderr().contains(TOKEN));
        assert!(!d.api("/api/v1/checks").to_string().contains(TOKEN));
    }
    let bad = status_of("bad-every").await;
    let cond = &bad["conditions"][0];
    assert_eq!(cond["type"], "Accepted", "{bad}");
    assert_eq!(cond["status"], "False", "{bad}");
    assert!(
        cond["message"]
            .as_str()
            .unwrap()
            .starts_with("spec.every: "),
        "{bad}"
    );
    assert_eq!(bad["state"], "invalid");
    assert!(hits.lock().unwrap().get("bad-every").is_none());

    // Kill replica 1 (no goodbye: SIGKILL). Its checks run again on the
    // others within a lease duration (3 s) of their last run, plus the slot
    // they wait for and a second for noticing and scheduling.
    let lost = owners[1].clone();
    let killed_at = Instant::now();
    drop(replicas[1].take());
    wait_until("two members", Duration::from_secs(15), || {
        let m: Vec<String> = replicas.iter().flatten().map(Daemon::metrics).collect();
        let ok = m.iter().all(|m| m.contains("vantage_shard_members 2"));
        (ok.then_some(()), String::new())
    });
    tokio::time::sleep(Duration::from_secs(4)).await;
    let after = Instant::now();
    let mut worst = Duration::ZERO;
    for n in &lost {
        let h = hits.lock().unwrap().get(n).cloned().unwrap_or_default();
        assert!(
            h.iter().any(|t| *t > killed_at + Duration::from_secs(1)),
            "{n} never ran again"
        );
        let (max, min) = gaps(&h, killed_at - Duration::from_secs(2), after, 3);
        worst = worst.max(max);
        assert!(
            min >= Duration::from_millis(500),
            "{n} ran twice in a slot after the move"
        );
        assert!(
            max <= Duration::from_secs(5),
            "{n} went {max:?} without a run: more than a lease duration and a slot"
        );
    }
    eprintln!("longest gap of a moved check: {worst:?} (lease 3 s, slot 1 s)");
    let mut all: Vec<String> = replicas
        .iter()
        .flatten()
        .flat_map(Daemon::check_names)
        .collect();
    all.sort();
    let mut want = names.clone();
    want.sort();
    assert_eq!(all, want);
    // The dead replica's Lease is still there (it said no goodbye).
    assert!(
        leases
            .get_opt("vantage-member-vantage-1")
            .await
            .unwrap()
            .is_some()
    );
    // A replica that stops cleanly gives its Lease up.
    let zero = replicas[0].as_mut().unwrap();
    zero.sigterm();
    zero.wait(Duration::from_secs(15));
    assert!(
        leases
            .get_opt("vantage-member-vantage-0")
            .await
            .unwrap()
            .is_none()
    );
}

/// `GET path` of `daemon`'s API, `Null` unless 200 (a restore test is on
/// the board only while its replica leads, which a loaded machine can make
/// flap).
fn api_opt(daemon: &Daemon, path: &str) -> Value {
    match crate::servers::http_get(&format!("{}{path}", daemon.url())) {
        Ok((200, body)) => serde_json::from_str(&body).unwrap_or(Value::Null),
        _ => Value::Null,
    }
}

/// `vantage_is_leader` of `daemon` (None when not reported).
fn leads(daemon: &Daemon) -> Option<bool> {
    let m = daemon.metrics();
    let line = m.lines().find(|l| l.starts_with("vantage_is_leader "))?;
    Some(line.ends_with(" 1"))
}

/// Create the RestoreTest `slow-restore`, every 3 s, whose runs stay in
/// flight until a Deployment `never` is ready in their namespace.
async fn create_slow_restore(kubeconfig: &std::path::Path) {
    let test: vantage::kubernetes::crd::RestoreTest = serde_json::from_value(json!({
        "apiVersion": "vantage.dev/v1alpha1",
        "kind": "RestoreTest",
        "metadata": {"name": "slow-restore"},
        "spec": {
            "schedule": "shop-daily",
            "namespaces": ["shop"],
            "every": "3s",
            "ready": ["deployment/never"],
            "readyTimeout": "2m",
            "pollInterval": "50ms",
        },
    }))
    .unwrap();
    let tests: kube::Api<vantage::kubernetes::crd::RestoreTest> =
        kube::Api::namespaced(client(kubeconfig).await, "default");
    tests.create(&Default::default(), &test).await.unwrap();
}

/// Start two `--leader-elect` replicas, one per directory, and wait until
/// exactly one leads: the replicas, and which one leads.
async fn leader_and_standby(
    dirs: &[tempfile::TempDir],
    kubeconfig: &std::path::Path,
) -> (Vec<Option<Daemon>>, usize) {
    let mut replicas: Vec<Option<Daemon>> = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        let (path, kc) = (dir.path().to_path_buf(), kubeconfig.to_path_buf());
        let d = tokio::task::spawn_blocking(move || {
            replica(&path, &kc, "default", i, &["--leader-elect"])
        })
        .await
        .unwrap();
        replicas.push(Some(d));
    }
    let leader = wait_until("one leader", Duration::from_secs(20), || {
        let l: Vec<Option<bool>> = replicas.iter().flatten().map(leads).collect();
        let one = l.iter().filter(|x| **x == Some(true)).count() == 1
            && l.iter().filter(|x| **x == Some(false)).count() == 1;
        (
            one.then(|| l.iter().position(|x| *x == Some(true)).unwrap()),
            format!("{l:?}"),
        )
    });
    (replicas, leader)
}

#[tokio::test(flavor = "multi_thread")]
async fn restore_tests_run_on_one_leader_that_hands_over_when_it_dies_or_cannot_renew() {
    use crate::restore_daemon::{seed_velero, start_app};
    let kube = FakeKube::start().await;
    seed_velero(&kube);
    let app = start_app().await;
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let kubeconfig = dirs[0].path().join("kubeconfig");
    std::fs::write(&kubeconfig, kube.kubeconfig()).unwrap();
    // The restore test as a RestoreTest resource: the keys of [[restore]].
    let test: vantage::kubernetes::crd::RestoreTest = serde_json::from_value(json!({
        "apiVersion": "vantage.dev/v1alpha1",
        "kind": "RestoreTest",
        "metadata": {"name": "shop-restore"},
        "spec": {
            "schedule": "shop-daily",
            "namespaces": ["shop"],
            "every": "2s",
            "ready": ["deployment/api"],
            "pollInterval": "50ms",
            "checks": [{
                "name": "api",
                "component": wasm("http").display().to_string(),
                "targets": [format!("{app}/app/{{{{namespace}}}}/{{{{backup}}}}")],
                "allow": ["{target}"],
            }],
        },
    }))
    .unwrap();
    let tests: kube::Api<vantage::kubernetes::crd::RestoreTest> =
        kube::Api::namespaced(client(&kubeconfig).await, "default");
    tests.create(&Default::default(), &test).await.unwrap();
    // One leader; it runs the restore test, the standby does not.
    let (mut replicas, leader) = leader_and_standby(&dirs, &kubeconfig).await;
    let standby = 1 - leader;
    let lease = kube
        .object(LEASES, "e2e-restore-leader")
        .expect("the leader Lease");
    assert_eq!(lease["spec"]["holderIdentity"], format!("vantage-{leader}"));
    let l = replicas[leader].as_ref().unwrap();
    wait_until(
        "a restore run on the leader",
        Duration::from_secs(30),
        || {
            let v = api_opt(l, "/api/v1/checks/shop-restore");
            let done = v["last"]["result"]["status"] == "pass";
            (done.then_some(()), v["last"].to_string())
        },
    );
    let s = replicas[standby].as_ref().unwrap();
    assert!(!s.check_names().contains(&"shop-restore".to_string()));
    // The leader wrote the resource's status.
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        let t = serde_json::to_value(tests.get("shop-restore").await.unwrap()).unwrap();
        if t["status"]["state"] == "up" {
            break t["status"].clone();
        }
        assert!(Instant::now() < deadline, "the RestoreTest's status: {t}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(status["runner"], format!("vantage-{leader}"), "{status}");
    assert!(
        status["lastResult"]
            .as_str()
            .unwrap()
            .starts_with("pass: backup shop-daily-"),
        "{status}"
    );

    // The leader dies: the standby leads within a lease duration (3 s) and
    // an attempt period (1 s), and runs the restore test.
    let killed = Instant::now();
    drop(replicas[leader].take());
    let s = replicas[standby].as_ref().unwrap();
    wait_until("the standby leading", Duration::from_secs(10), || {
        (leads(s).unwrap_or(false).then_some(()), String::new())
    });
    let took = killed.elapsed();
    eprintln!("the standby led {took:?} after the leader died (lease 3 s)");
    assert!(took <= Duration::from_secs(5), "{took:?}");
    wait_until(
        "a restore run on the new leader",
        Duration::from_secs(30),
        || {
            let v = api_opt(s, "/api/v1/checks/shop-restore");
            let done = v["last"]["result"]["status"] == "pass";
            (done.then_some(()), v["last"].to_string())
        },
    );
    // Every run made its own namespace: none was started twice (a second
    // start of a slot would be refused 409 and end in error).
    let runs = s.api("/api/v1/checks/shop-restore/runs");
    let errors = runs.to_string().matches("\"status\":\"error\"").count();
    assert_eq!(errors, 0, "{runs}");

    // The API server goes away: the leader stops leading before its Lease
    // could pass to anyone, and says it is unhealthy after a lease.
    kube.set_unavailable(true);
    let gone = Instant::now();
    wait_until("the leader stepping down", Duration::from_secs(10), || {
        (
            leads(s).map(|l| !l).unwrap_or(false).then_some(()),
            String::new(),
        )
    });
    assert!(
        gone.elapsed() <= Duration::from_secs(3),
        "{:?}",
        gone.elapsed()
    );
    let health =
        wait_until(
            "/healthz 503",
            Duration::from_secs(10),
            || match crate::servers::http_get(&format!("{}/healthz", s.url())) {
                Ok((503, body)) => (Some(body), String::new()),
                other => (None, format!("{other:?}")),
            },
        );
    assert!(health.contains("leader election"), "{health}");
    kube.set_unavailable(false);
    wait_until("leading again", Duration::from_secs(10), || {
        (leads(s).unwrap_or(false).then_some(()), String::new())
    });
    // A leader that stops cleanly releases the Lease (a standby would lead
    // at its next attempt instead of a lease duration later).
    let s = replicas[standby].as_mut().unwrap();
    s.sigterm();
    s.wait(Duration::from_secs(15));
    assert!(kube.object(LEASES, "e2e-restore-leader").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replica_that_cannot_renew_its_lease_runs_nothing_and_says_so() {
    use kube::api::{Api, PostParams};
    use vantage::kubernetes::crd::Check;
    let kube = FakeKube::start().await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, kube.kubeconfig()).unwrap();
    let (target, _hits) = counting_target().await;
    let checks: Api<Check> = Api::namespaced(client(&kubeconfig).await, "default");
    for n in ["a", "b", "c"] {
        let c: Check = serde_json::from_value(check(n, &target, "1s")).unwrap();
        checks.create(&PostParams::default(), &c).await.unwrap();
    }
    let (path, kc) = (dir.path().to_path_buf(), kubeconfig.clone());
    let d = tokio::task::spawn_blocking(move || {
        replica(&path, &kc, "default", 0, &["--membership", "leases"])
    })
    .await
    .unwrap();
    wait_until(
        "the replica running its checks",
        Duration::from_secs(20),
        || {
            let n = d.check_names();
            ((n.len() == 3).then_some(()), format!("{n:?}"))
        },
    );
    // The API server stops answering: before its Lease could expire (3 s)
    // the replica stops running checks, and /healthz says why.
    kube.set_unavailable(true);
    let cut = Instant::now();
    wait_until("nothing running", Duration::from_secs(10), || {
        let n = d.check_names();
        (n.is_empty().then_some(()), format!("{n:?}"))
    });
    assert!(
        cut.elapsed() < Duration::from_secs(3),
        "{:?}",
        cut.elapsed()
    );
    let (code, body) = crate::servers::http_get(&format!("{}/healthz", d.url())).unwrap();
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("membership Lease is not current"), "{body}");
    // Back: it renews twice, counts again and runs its checks.
    kube.set_unavailable(false);
    wait_until("running again", Duration::from_secs(20), || {
        let n = d.check_names();
        ((n.len() == 3).then_some(()), format!("{n:?}"))
    });
    let (code, _) = crate::servers::http_get(&format!("{}/healthz", d.url())).unwrap();
    assert_eq!(code, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_namespace_selector_picks_the_namespaces_whose_checks_run() {
    use kube::api::{Api, PostParams};
    use vantage::kubernetes::crd::Check;
    let kube = FakeKube::start().await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, kube.kubeconfig()).unwrap();
    let (target, _hits) = counting_target().await;
    let client = client(&kubeconfig).await;
    for (ns, labels) in [
        ("web", json!({"team": "web"})),
        ("db", json!({"team": "db"})),
    ] {
        kube.insert(
            "/api/v1/namespaces",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": labels}}),
        );
        let checks: Api<Check> = Api::namespaced(client.clone(), ns);
        let c: Check = serde_json::from_value(check(&format!("{ns}-home"), &target, "1s")).unwrap();
        checks.create(&PostParams::default(), &c).await.unwrap();
    }
    let (path, kc) = (dir.path().to_path_buf(), kubeconfig.clone());
    let d = tokio::task::spawn_blocking(move || {
        replica(
            &path,
            &kc,
            "default",
            0,
            &["--kubernetes-namespace-selector", "team=web"],
        )
    })
    .await
    .unwrap();
    wait_until("the web team's check", Duration::from_secs(20), || {
        let n = d.check_names();
        ((n == ["web-home"]).then_some(()), format!("{n:?}"))
    });
    // The db namespace joins the team: its check runs too, without a restart.
    kube.insert(
        "/api/v1/namespaces",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "db", "labels": {"team": "web"}}}),
    );
    wait_until("both checks", Duration::from_secs(20), || {
        let mut n = d.check_names();
        n.sort();
        (
            (n == ["db-home", "web-home"]).then_some(()),
            format!("{n:?}"),
        )
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn a_leader_that_stops_leading_cancels_its_run_and_cleans_up() {
    use crate::restore_daemon::{NAMESPACES, RESTORES, seed_velero};
    let kube = FakeKube::start().await;
    seed_velero(&kube);
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, kube.kubeconfig()).unwrap();
    create_slow_restore(&kubeconfig).await;
    let (path, kc) = (dir.path().to_path_buf(), kubeconfig.clone());
    let d =
        tokio::task::spawn_blocking(move || replica(&path, &kc, "default", 0, &["--leader-elect"]))
            .await
            .unwrap();
    let volatile = |kube: &FakeKube| -> Vec<String> {
        kube.names(NAMESPACES)
            .into_iter()
            .filter(|n| n.starts_with("vantage-restore-"))
            .collect()
    };
    wait_until("a run in flight", Duration::from_secs(20), || {
        let v = volatile(&kube);
        let restores = kube.names(RESTORES);
        (
            (!v.is_empty() && !restores.is_empty()).then_some(()),
            format!("{v:?} {restores:?}"),
        )
    });
    // The leader can no longer renew its Lease (every write of it fails):
    // it steps down and cancels the run, which cleans up after itself.
    kube.set_hook(Some(Arc::new(|method: &str, path: &str, _: &str| {
        (method == "PUT" && path.ends_with("/leases/e2e-restore-leader")).then_some(500)
    })));
    // The board lets go of the test at once (another replica may lead);
    // the run's end is in the log, and the cluster is clean.
    let log = d.wait_stderr(
        "cancelled: this replica stopped leading",
        Duration::from_secs(20),
    );
    assert!(log.contains("slow-restore"), "{log}");
    assert_eq!(leads(&d), Some(false));
    wait_until("the run's objects deleted", Duration::from_secs(10), || {
        let (v, r) = (volatile(&kube), kube.names(RESTORES));
        (
            (v.is_empty() && r.is_empty()).then_some(()),
            format!("{v:?} {r:?}"),
        )
    });
    assert!(!d.check_names().contains(&"slow-restore".to_string()));
    kube.set_hook(None);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_leader_adopts_the_run_a_dead_leader_left_in_flight() {
    use crate::restore_daemon::{NAMESPACES, RESTORES, ready_deployment, seed_velero};
    let kube = FakeKube::start().await;
    seed_velero(&kube);
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let kubeconfig = dirs[0].path().join("kubeconfig");
    std::fs::write(&kubeconfig, kube.kubeconfig()).unwrap();
    create_slow_restore(&kubeconfig).await;
    let (mut replicas, leader) = leader_and_standby(&dirs, &kubeconfig).await;
    let standby = 1 - leader;
    // The leader's run: restored, waiting for readiness.
    let (restore, namespace) = wait_until("a run in flight", Duration::from_secs(20), || {
        let restores = kube.names(RESTORES);
        let done = restores.first().filter(|r| {
            kube.object(RESTORES, r)
                .is_some_and(|o| o["status"]["phase"] == "Completed")
        });
        let ns: Vec<String> = kube
            .names(NAMESPACES)
            .into_iter()
            .filter(|n| n.starts_with("vantage-restore-"))
            .collect();
        (
            done.zip(ns.first()).map(|(r, n)| (r.clone(), n.clone())),
            format!("{restores:?} {ns:?}"),
        )
    });
    let run_id =
        kube.object(RESTORES, &restore).unwrap()["metadata"]["labels"]["vantage.dev/run-id"]
            .as_str()
            .unwrap()
            .to_string();
    assert!(run_id.ends_with("-slot"), "{run_id}");
    // The leader dies mid-run (SIGKILL: no cleanup, no release).
    drop(replicas[leader].take());
    let s = replicas[standby].as_ref().unwrap();
    let log = s.wait_stderr(
        "taking over a restore run started elsewhere",
        Duration::from_secs(15),
    );
    assert!(log.contains(&run_id), "{log}");
    // What it waits for comes up: the adopted run passes, for that slot.
    ready_deployment(&kube, &namespace, "never");
    let last = wait_until("the adopted run's verdict", Duration::from_secs(20), || {
        let v = api_opt(s, "/api/v1/checks/slow-restore");
        let done = v["last"]["result"]["status"] == "pass";
        (done.then(|| v["last"].clone()), v["last"].to_string())
    });
    let summary = last["result"]["summary"].as_str().unwrap_or_default();
    assert!(summary.contains("taken over here"), "{last}");
    // One Restore for the slot, ever; its objects are gone.
    let posts = kube
        .log()
        .iter()
        .filter(|l| *l == &format!("POST {RESTORES}"))
        .count();
    let restores_now = kube.names(RESTORES);
    assert!(!restores_now.contains(&restore), "{restores_now:?}");
    assert!(kube.object(NAMESPACES, &namespace).is_none());
    // The new leader's own later slots may have started since: each made
    // its own Restore, never a second one for the adopted slot.
    assert_eq!(posts, 1 + restores_now.len(), "{restores_now:?}");
}
