//! The whole run against a scripted API server: kube's `tower-test` mock
//! (as kube-rs documents for testing), answering from an in-memory "world"
//! of realistic Velero and Kubernetes objects and recording every request.
//!
//! Every Velero object used (fixtures as adjusted) or built (Restores) is
//! validated against Velero's CRD schemas (`tests/fixtures/velero/crds/`).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use http::{Request, Response};
use kube::client::Body;
use serde_json::{Value, json};

use super::*;
use crate::config::{
    BackupSource, ClusterAccess, ComponentRef, IngressPolicy, Isolation, Limits, Readiness,
    RestoreCheck, RestoreSpec, Schedule, Selection, Template, TemplateVars, Workload, WorkloadKind,
};
use crate::result::{Assertion, CheckResult, ErrorKind, Status};

pub(super) mod fixture;
mod stateful;

use fixture::*;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/velero");
const V: &str = "/apis/velero.io/v1/namespaces/velero";

// ---------------------------------------------------------------- fixtures

fn fixture(name: &str) -> Value {
    let path = format!("{FIXTURES}/{name}");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn crd_validator(plural: &str) -> jsonschema::Validator {
    let crd = fixture(&format!("crds/velero.io_{plural}.json"));
    let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
    assert!(schema.is_object(), "no schema in the {plural} CRD");
    jsonschema::validator_for(schema).expect("the CRD schema compiles")
}

/// Panics unless `object` is valid per the CRD of `plural`.
fn assert_valid(plural: &str, object: &Value) {
    let validator = crd_validator(plural);
    let errors: Vec<String> = validator
        .iter_errors(object)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{plural} object invalid per Velero's CRD: {errors:#?}\n{object:#}"
    );
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The completed backup fixture, renamed, completed `age` ago.
fn backup(name: &str, phase: &str, age: chrono::Duration) -> Value {
    let mut b = fixture("backup-completed.json");
    let done = Utc::now() - age;
    b["metadata"]["name"] = json!(name);
    b["metadata"]["creationTimestamp"] = json!(ts(done - chrono::Duration::seconds(72)));
    b["status"]["phase"] = json!(phase);
    b["status"]["startTimestamp"] = json!(ts(done - chrono::Duration::seconds(72)));
    if phase == "InProgress" {
        b["status"]
            .as_object_mut()
            .expect("status")
            .remove("completionTimestamp");
    } else {
        b["status"]["completionTimestamp"] = json!(ts(done));
    }
    assert_valid("backups", &b);
    b
}

fn hours(h: i64) -> chrono::Duration {
    chrono::Duration::hours(h)
}

fn deployment(name: &str, replicas: i32, available: i32) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "generation": 1, "labels": {"app": name}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": name, "image": "shop/api:1.4"}]}}},
        "status": {"observedGeneration": 1, "replicas": replicas, "updatedReplicas": replicas,
                   "availableReplicas": available, "readyReplicas": available}
    })
}

fn statefulset(name: &str, replicas: i32, ready: i32) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": name, "generation": 1},
        "spec": {"replicas": replicas, "serviceName": name, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": name, "image": "postgres:17"}]}}},
        "status": {"observedGeneration": 1, "replicas": replicas, "readyReplicas": ready, "availableReplicas": ready}
    })
}

fn pod(name: &str, ready: bool) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}
    })
}

// ------------------------------------------------------- the fake API server

/// One request the fake API server received.
#[derive(Debug, Clone)]
struct Recorded {
    method: String,
    path: String,
    query: String,
    body: Option<Value>,
}

impl Recorded {
    fn is(&self, method: &str, path: &str) -> bool {
        self.method == method && self.path == path
    }
}

/// What the fake API server knows and how it misbehaves.
#[derive(Default)]
struct World {
    schedule: Option<Value>,
    backups: Vec<Value>,
    bsl: Option<Value>,
    /// `status` of the Restore on successive GETs; the last one repeats.
    restore_statuses: Vec<Value>,
    restore_gets: usize,
    /// Deployments on successive lists; the last one repeats.
    deployments: Vec<Vec<Value>>,
    deployment_lists: usize,
    statefulsets: Vec<Value>,
    pods: Vec<Value>,
    namespaces: Vec<Value>,
    restores: Vec<Value>,
    configmaps: Vec<Value>,
    volumes: Vec<Value>,
    /// A PersistentVolume labelled with the Restore's name appears when it is
    /// created (as Velero would restore one).
    volume_on_restore: bool,
    /// (method, path) answered with 500.
    fail: Vec<(&'static str, String)>,
    /// Answer Restore statuses the CRD schema rejects (unknown phases).
    unvalidated_statuses: bool,
    /// (method, path prefix) never answered (the caller hangs).
    hang: Vec<(&'static str, String)>,
    /// Answers requests before the routes above (tests of one feature add
    /// the API it needs); None: not handled here.
    extra: Option<Extra>,
    /// The volumes of the backup and how Velero restores them; claims and
    /// provisioned volumes (see `tests/stateful.rs`).
    stateful: stateful::Volumes,
}

/// See [`World::extra`].
type Extra = Box<dyn FnMut(&Recorded) -> Option<(u16, Value)> + Send>;

fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
           "status": if code < 400 { "Success" } else { "Failure" },
           "message": message, "reason": reason, "code": code})
}

fn not_found(what: &str) -> (u16, Value) {
    (404, status(404, "NotFound", &format!("{what} not found")))
}

fn list(kind: &str, items: Vec<Value>) -> (u16, Value) {
    (
        200,
        json!({"apiVersion": "v1", "kind": kind, "metadata": {"resourceVersion": "100"}, "items": items}),
    )
}

fn name_of(v: &Value) -> &str {
    v["metadata"]["name"].as_str().unwrap_or("")
}

/// `k=v,k2` label selector semantics.
fn selected(v: &Value, query: &str) -> bool {
    let selector = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("labelSelector="))
        .map(|s| {
            url::form_urlencoded::parse(format!("s={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        })
        .unwrap_or_default();
    let labels = &v["metadata"]["labels"];
    selector
        .split(',')
        .filter(|t| !t.is_empty())
        .all(|term| match term.split_once('=') {
            Some((k, val)) => labels[k].as_str() == Some(val),
            None => labels.get(term).is_some(),
        })
}

impl World {
    fn answer(&mut self, r: &Recorded) -> (u16, Value) {
        if self.fail.iter().any(|(m, p)| r.is(m, p)) {
            return (
                500,
                status(500, "InternalError", "etcdserver: request timed out"),
            );
        }
        if let Some(answer) = self.extra.as_mut().and_then(|extra| extra(r)) {
            return answer;
        }
        if let Some(answer) = stateful::answer(self, r) {
            return answer;
        }
        let path = r.path.as_str();
        let parts = r.parts();
        match (r.method.as_str(), parts.as_slice()) {
            ("GET", ["velero", "schedules", name]) => match &self.schedule {
                Some(s) if name_of(s) == *name => (200, s.clone()),
                _ => not_found("schedule"),
            },
            ("GET", ["velero", "backups"]) => list(
                "BackupList",
                self.backups
                    .iter()
                    .filter(|b| selected(b, &r.query))
                    .cloned()
                    .collect(),
            ),
            ("GET", ["velero", "backups", name]) => self
                .backups
                .iter()
                .find(|b| name_of(b) == *name)
                .map_or_else(|| not_found("backup"), |b| (200, b.clone())),
            ("GET", ["velero", "backupstoragelocations", name]) => match &self.bsl {
                Some(b) if name_of(b) == *name => (200, b.clone()),
                _ => not_found("backupstoragelocation"),
            },
            ("POST", ["api", "v1", "namespaces"]) => {
                let ns = r.body.clone().unwrap_or_default();
                self.namespaces.push(ns.clone());
                (201, ns)
            }
            (
                "POST",
                [
                    "apis",
                    "networking.k8s.io",
                    "v1",
                    "namespaces",
                    _,
                    "networkpolicies",
                ],
            ) => (201, r.body.clone().unwrap_or_default()),
            ("POST", ["api", "v1", "namespaces", "velero", "configmaps"]) => {
                let cm = r.body.clone().unwrap_or_default();
                self.configmaps.push(cm.clone());
                (201, cm)
            }
            ("POST", ["velero", "restores"]) => {
                let restore = r.body.clone().unwrap_or_default();
                if self.volume_on_restore {
                    self.volumes.push(json!({
                        "apiVersion": "v1", "kind": "PersistentVolume",
                        "metadata": {"name": "pvc-3f9a1c", "labels": {
                            "velero.io/restore-name": name_of(&restore),
                            "velero.io/backup-name": restore["spec"]["backupName"]}},
                        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                                 "persistentVolumeReclaimPolicy": "Retain"}
                    }));
                }
                self.restores.push(restore.clone());
                (201, restore)
            }
            ("GET", ["velero", "restores", name]) => {
                let Some(mut restore) = self.restores.iter().find(|x| name_of(x) == *name).cloned()
                else {
                    return not_found("restore");
                };
                if !self.restore_statuses.is_empty() {
                    let i = self.restore_gets.min(self.restore_statuses.len() - 1);
                    restore["status"] = self.restore_statuses[i].clone();
                }
                self.restore_gets += 1;
                if !self.unvalidated_statuses {
                    assert_valid("restores", &restore);
                }
                (200, restore)
            }
            ("GET", ["velero", "restores"]) => list(
                "RestoreList",
                self.restores
                    .iter()
                    .filter(|x| selected(x, &r.query))
                    .cloned()
                    .collect(),
            ),
            ("GET", ["api", "v1", "namespaces", "velero", "configmaps"]) => list(
                "ConfigMapList",
                self.configmaps
                    .iter()
                    .filter(|x| selected(x, &r.query))
                    .cloned()
                    .collect(),
            ),
            ("GET", ["api", "v1", "namespaces"]) => list(
                "NamespaceList",
                self.namespaces
                    .iter()
                    .filter(|x| selected(x, &r.query))
                    .cloned()
                    .collect(),
            ),
            ("GET", ["api", "v1", "persistentvolumes"]) => list(
                "PersistentVolumeList",
                self.volumes
                    .iter()
                    .filter(|x| selected(x, &r.query))
                    .cloned()
                    .collect(),
            ),
            ("GET", ["apis", "apps", "v1", "namespaces", _, "deployments"]) => {
                let i = self
                    .deployment_lists
                    .min(self.deployments.len().saturating_sub(1));
                self.deployment_lists += 1;
                list(
                    "DeploymentList",
                    self.deployments.get(i).cloned().unwrap_or_default(),
                )
            }
            ("GET", ["apis", "apps", "v1", "namespaces", _, "deployments", name]) => {
                let i = self
                    .deployment_lists
                    .min(self.deployments.len().saturating_sub(1));
                self.deployment_lists += 1;
                self.deployments
                    .get(i)
                    .and_then(|ds| ds.iter().find(|d| name_of(d) == *name).cloned())
                    .map_or_else(|| not_found("deployment"), |d| (200, d))
            }
            ("GET", ["apis", "apps", "v1", "namespaces", _, "statefulsets"]) => {
                list("StatefulSetList", self.statefulsets.clone())
            }
            ("GET", ["apis", "apps", "v1", "namespaces", _, "statefulsets", name]) => self
                .statefulsets
                .iter()
                .find(|s| name_of(s) == *name)
                .map_or_else(|| not_found("statefulset"), |s| (200, s.clone())),
            ("GET", ["api", "v1", "namespaces", _, "pods"]) => list("PodList", self.pods.clone()),
            ("DELETE", ["api", "v1", "namespaces", name]) => {
                remove(&mut self.namespaces, name, "namespace")
            }
            ("DELETE", ["velero", "restores", name]) => remove(&mut self.restores, name, "restore"),
            ("DELETE", ["api", "v1", "namespaces", "velero", "configmaps", name]) => {
                remove(&mut self.configmaps, name, "configmap")
            }
            ("DELETE", ["api", "v1", "persistentvolumes", name]) => {
                remove(&mut self.volumes, name, "persistentvolume")
            }
            _ => (
                418,
                status(
                    418,
                    "Unexpected",
                    &format!("unexpected request {} {path}", r.method),
                ),
            ),
        }
    }
}

fn remove(items: &mut Vec<Value>, name: &str, what: &str) -> (u16, Value) {
    match items.iter().position(|x| name_of(x) == name) {
        Some(i) => {
            items.remove(i);
            (200, status(200, "", ""))
        }
        None => not_found(what),
    }
}

/// A client talking to `world`, and the log of every request.
struct Fake {
    client: kube::Client,
    log: Arc<Mutex<Vec<Recorded>>>,
    world: Arc<Mutex<World>>,
}

impl Fake {
    fn new(world: World) -> Fake {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let client = kube::Client::new(service, "default");
        let log = Arc::new(Mutex::new(Vec::new()));
        let world = Arc::new(Mutex::new(world));
        let (task_log, task_world) = (log.clone(), world.clone());
        tokio::spawn(async move {
            let mut hung = Vec::new();
            while let Some((request, send)) = handle.next_request().await {
                let (parts, body) = request.into_parts();
                let bytes = body.collect_bytes().await.expect("request body");
                let recorded = Recorded {
                    method: parts.method.to_string(),
                    path: parts.uri.path().to_string(),
                    query: parts.uri.query().unwrap_or("").to_string(),
                    body: (!bytes.is_empty())
                        .then(|| serde_json::from_slice(&bytes).expect("request body is JSON")),
                };
                task_log.lock().unwrap().push(recorded.clone());
                let mut world = task_world.lock().unwrap();
                if world
                    .hang
                    .iter()
                    .any(|(m, p)| recorded.method == *m && recorded.path.starts_with(p.as_str()))
                {
                    hung.push(send);
                    continue;
                }
                let (code, answer) = world.answer(&recorded);
                drop(world);
                // Pod logs are plain text.
                let (content_type, bytes) = match &answer {
                    Value::String(text) if recorded.path.ends_with("/log") => {
                        ("text/plain", text.clone().into_bytes())
                    }
                    _ => (
                        "application/json",
                        serde_json::to_vec(&answer).expect("JSON"),
                    ),
                };
                let response = Response::builder()
                    .status(code)
                    .header("content-type", content_type)
                    .body(Body::from(bytes))
                    .expect("response");
                send.send_response(response);
            }
        });
        Fake { client, log, world }
    }

    fn requests(&self) -> Vec<Recorded> {
        self.log.lock().unwrap().clone()
    }

    /// `METHOD path` of every request except polls (GETs of the Restore, of
    /// workloads and of claims), in order.
    fn calls(&self) -> Vec<String> {
        self.requests()
            .iter()
            .filter(|r| {
                !(r.method == "GET"
                    && (r.path.contains("/restores/")
                        || r.path.contains("/apis/apps/")
                        || r.path.ends_with("/pods")
                        || r.path.ends_with("/persistentvolumeclaims")
                        || r.path.contains("/downloadrequests/")))
            })
            .map(|r| format!("{} {}", r.method, r.path))
            .collect()
    }

    fn posted(&self, path_end: &str) -> Vec<Value> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == "POST" && r.path.ends_with(path_end))
            .filter_map(|r| r.body)
            .collect()
    }
}

// --------------------------------------------------------------- the runner

/// What the runner was given for one check: its name, its rendered
/// targets, the template values and the run info.
type Seen = (String, Vec<String>, TemplateVars, RunInfo);

/// Returns scripted statuses per check name (default pass) and records what
/// it was given.
#[derive(Default)]
struct ScriptedRunner {
    statuses: BTreeMap<String, (Status, Option<ErrorKind>)>,
    seen: Mutex<Vec<Seen>>,
}

impl ValidationRunner for ScriptedRunner {
    fn component(&self, check: &str) -> Option<crate::result::RanComponent> {
        Some(crate::result::RanComponent {
            source: format!("checks/{check}.wasm"),
            sha256: "ab".repeat(32),
        })
    }

    fn run<'a>(
        &'a self,
        check: &'a RestoreCheck,
        vars: &'a TemplateVars,
        info: &'a RunInfo,
    ) -> Pin<Box<dyn Future<Output = CheckResult> + Send + 'a>> {
        Box::pin(async move {
            let targets: Vec<String> = check.targets.iter().map(|t| t.render(vars)).collect();
            self.seen.lock().unwrap().push((
                check.name.clone(),
                targets.clone(),
                vars.clone(),
                info.clone(),
            ));
            let (status, kind) = self
                .statuses
                .get(&check.name)
                .copied()
                .unwrap_or((Status::Pass, None));
            let mut result = CheckResult::host_error(
                &check.name,
                &info.location,
                0,
                kind.unwrap_or(ErrorKind::Host),
                "",
            );
            result.status = status;
            result.error = if status == Status::Error {
                result.error
            } else {
                None
            };
            result.summary = format!("{} {}", status.as_str(), targets.join(" "));
            result.assertions = vec![Assertion {
                name: "status is 200".into(),
                passed: status == Status::Pass,
                warn: false,
                detail: format!("GET {}", targets.join(" ")),
                duration_ms: Some(1.5),
            }];
            tokio::time::sleep(Duration::from_millis(3)).await;
            result
        })
    }
}

// ------------------------------------------------------------------- specs

fn check(name: &str, target: &str) -> RestoreCheck {
    RestoreCheck {
        name: name.into(),
        component: ComponentRef::Path("checks/http.wasm".into()),
        targets: vec![Template(target.into())],
        config: Vec::new(),
        allow: vec![Template("{target}".into())],
        secrets: Vec::new(),
        limits: Limits::default(),
        allow_insecure: false,
    }
}

fn spec() -> RestoreSpec {
    RestoreSpec {
        name: "shop".into(),
        cluster: ClusterAccess::default(),
        velero_namespace: "velero".into(),
        backup: BackupSource::Schedule {
            name: "shop-daily".into(),
            selection: Selection::Latest,
        },
        accept_partially_failed: false,
        source_namespaces: vec!["shop".into()],
        namespace_prefix: "vantage-restore-".into(),
        schedule: Schedule::Every(Duration::from_secs(86_400)),
        timezone: chrono_tz::UTC,
        restore_timeout: Duration::from_millis(400),
        poll_interval: Duration::from_millis(5),
        readiness: Readiness {
            workloads: Vec::new(),
            timeout: Duration::from_millis(400),
        },
        checks: vec![
            check(
                "api",
                "http://api.{{namespace}}.svc.cluster.local:8080/healthz?backup={{backup}}",
            ),
            check(
                "orders",
                "http://api.{{namespace}}.svc.cluster.local:8080/orders",
            ),
        ],
        edge_target: None,
        rto_target: Some(Duration::from_secs(900)),
        isolation: Isolation::default(),
        ttl: Duration::from_secs(6 * 3600),
        audit: true,
        severity: "critical".into(),
        acceptance: crate::config::Acceptance::default(),
    }
}

fn options(run_id: &str) -> RunOptions {
    RunOptions {
        run_id: run_id.into(),
        location: "fra1".into(),
        vantage_namespace: Some("monitoring".into()),
        pacing: Pacing {
            poll_interval: Duration::from_millis(5),
        },
        adopt: None,
        cancelled_cleanup_within: None,
    }
}

/// A cluster with a Schedule, its backups (the newest usable one
/// `shop-daily-newest`), an available BSL, a restore going New → InProgress
/// → Completed and an app that becomes ready on the second look.
fn healthy_world() -> World {
    let mut schedule = fixture("schedule.json");
    schedule["status"]["lastBackup"] = json!(ts(Utc::now() - hours(1)));
    assert_valid("schedules", &schedule);
    let bsl = fixture("bsl-available.json");
    assert_valid("backupstoragelocations", &bsl);
    World {
        schedule: Some(schedule),
        backups: vec![
            backup("shop-daily-older", "Completed", hours(25)),
            backup("shop-daily-newest", "Completed", hours(2)),
            backup("shop-daily-failed", "Failed", hours(1)),
            backup("shop-daily-running", "InProgress", hours(0)),
        ],
        bsl: Some(bsl),
        restore_statuses: vec![
            json!({"phase": "New"}),
            json!({"phase": "InProgress", "startTimestamp": ts(Utc::now()),
                   "progress": {"itemsRestored": 12, "totalItems": 57}}),
            json!({"phase": "Completed", "startTimestamp": ts(Utc::now()),
                   "completionTimestamp": ts(Utc::now()), "warnings": 1,
                   "progress": {"itemsRestored": 57, "totalItems": 57}}),
        ],
        deployments: vec![vec![deployment("api", 2, 0)], vec![deployment("api", 2, 2)]],
        statefulsets: vec![statefulset("db", 1, 1)],
        pods: vec![
            pod("api-7d9f-1", true),
            pod("api-7d9f-2", true),
            pod("db-0", true),
        ],
        volume_on_restore: true,
        ..World::default()
    }
}

/// The cleanup calls of a run that got as far as the Restore.
fn assert_full_cleanup(fake: &Fake, report: &RestoreReport) {
    let ns = report.namespace.clone().expect("namespace named");
    let calls = fake.calls();
    for expected in [
        format!("DELETE {V}/restores/{ns}"),
        format!("DELETE /api/v1/namespaces/velero/configmaps/{ns}-modifiers"),
        format!("DELETE /api/v1/namespaces/{ns}"),
        "GET /api/v1/persistentvolumes".to_string(),
    ] {
        assert!(calls.contains(&expected), "no {expected} in {calls:#?}");
    }
    let c = &report.cleanup;
    assert!(
        c.namespace_deleted && c.restore_deleted && c.configmap_deleted,
        "{c:?}"
    );
    assert!(c.errors.is_empty(), "{c:?}");
    let world = fake.world.lock().unwrap();
    assert!(
        world.restores.is_empty() && world.configmaps.is_empty() && world.namespaces.is_empty()
    );
}

fn print_timings(label: &str, t: &Timings) {
    let f = |v: Option<f64>| v.map_or("-".to_string(), |s| format!("{:.1} ms", s * 1000.0));
    println!(
        "{label} timings: select {} | setup {} | restore {} | ready {} | checks {} | total (RTO) {} | cleanup {}",
        f(t.select_seconds),
        f(t.setup_seconds),
        f(t.restore_seconds),
        f(t.ready_seconds),
        f(t.checks_seconds),
        f(t.total_seconds),
        f(t.cleanup_seconds)
    );
}

// ------------------------------------------------------------------- tests

#[tokio::test]
async fn success_restores_the_newest_backup_isolated_and_cleans_up() {
    let fake = Fake::new(healthy_world());
    let runner = ScriptedRunner::default();
    let report = run(
        &fake.client,
        &spec(),
        &options("18c2f9a0b11-4d2-0"),
        &runner,
    )
    .await;
    print_timings("success", &report.timings);
    println!("{}", serde_json::to_string_pretty(&report).unwrap());

    assert_eq!(report.verdict, Verdict::Pass, "{}", report.reason);
    let ns = report.namespace.clone().unwrap();
    assert!(
        ns.starts_with("vantage-restore-shop-") && ns.len() <= 63,
        "{ns}"
    );
    assert!(
        report.reason.contains("shop-daily-newest"),
        "{}",
        report.reason
    );
    assert!(
        report.reason.contains("2 check(s) passed"),
        "{}",
        report.reason
    );

    // The backup: newest Completed, not the newer Failed / InProgress ones.
    let b = report.backup.as_ref().unwrap();
    assert_eq!(b.name, "shop-daily-newest");
    assert_eq!(b.schedule.as_deref(), Some("shop-daily"));
    assert_eq!(b.storage_location_phase.as_deref(), Some("Available"));
    let age = b.age_seconds.unwrap();
    assert!((7190.0..7300.0).contains(&age), "{age}");

    // The calls, in order (polls left out).
    let calls = fake.calls();
    let expected = vec![
        format!("GET {V}/schedules/shop-daily"),
        format!("GET {V}/backups"),
        format!("GET {V}/backupstoragelocations/default"),
        "POST /api/v1/namespaces".to_string(),
        format!("POST /apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies"),
        "POST /api/v1/namespaces/velero/configmaps".to_string(),
        format!("POST {V}/restores"),
        format!("GET /api/v1/namespaces/{ns}/services"),
        format!("POST {V}/downloadrequests"),
        format!("DELETE {V}/downloadrequests/{ns}-log"),
        format!("POST {V}/downloadrequests"),
        format!("DELETE {V}/downloadrequests/{ns}-results"),
        format!("DELETE {V}/restores/{ns}"),
        format!("DELETE /api/v1/namespaces/velero/configmaps/{ns}-modifiers"),
        format!("DELETE /api/v1/namespaces/{ns}"),
        "GET /api/v1/persistentvolumes".to_string(),
        "DELETE /api/v1/persistentvolumes/pvc-3f9a1c".to_string(),
    ];
    assert_eq!(calls, expected);
    let requests = fake.requests();
    let list = requests
        .iter()
        .find(|r| r.path.ends_with("/backups"))
        .unwrap();
    assert!(
        list.query
            .contains("labelSelector=velero.io%2Fschedule-name%3Dshop-daily"),
        "{}",
        list.query
    );
    let pvs = requests
        .iter()
        .find(|r| r.path == "/api/v1/persistentvolumes")
        .unwrap();
    assert!(
        pvs.query
            .contains(&format!("velero.io%2Frestore-name%3D{ns}")),
        "{}",
        pvs.query
    );
    assert!(
        requests
            .iter()
            .filter(|r| r.path.ends_with(&format!("/restores/{ns}")) && r.method == "GET")
            .count()
            >= 3
    );

    // The namespace: labels and expiry.
    let namespace = &fake.posted("/namespaces")[0];
    let labels = &namespace["metadata"]["labels"];
    assert_eq!(labels["app.kubernetes.io/managed-by"], "vantage");
    assert_eq!(labels["vantage.dev/restore-test"], "shop");
    assert_eq!(labels["vantage.dev/run-id"], "18c2f9a0b11-4d2-0");
    let expires = namespace["metadata"]["annotations"]["vantage.dev/expires-at"]
        .as_str()
        .unwrap();
    let expires = DateTime::parse_from_rfc3339(expires)
        .unwrap()
        .with_timezone(&Utc);
    let ttl = (expires - Utc::now()).num_seconds();
    assert!((6 * 3600 - 60..=6 * 3600).contains(&ttl), "{ttl}");

    // The NetworkPolicy: default deny, DNS, same namespace, Vantage's namespace.
    let policy = &fake.posted("/networkpolicies")[0];
    assert_eq!(policy["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
    assert_eq!(
        policy["spec"]["ingress"][0]["from"],
        json!([{"podSelector": {}}, {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}])
    );
    assert_eq!(policy["spec"]["egress"].as_array().unwrap().len(), 2);

    // The Restore: valid per Velero's CRD, mapped, isolated, labelled.
    let restore = &fake.posted("/restores")[0];
    assert_valid("restores", restore);
    assert_eq!(restore["metadata"]["name"], json!(ns));
    assert_eq!(restore["metadata"]["namespace"], "velero");
    assert_eq!(
        restore["metadata"]["labels"]["vantage.dev/run-id"],
        "18c2f9a0b11-4d2-0"
    );
    assert_eq!(
        restore["spec"],
        json!({
            "backupName": "shop-daily-newest",
            "includedNamespaces": ["shop"],
            "namespaceMapping": {"shop": ns},
            "excludedResources": restore_object::excluded_resources(&spec()),
            // No includeClusterResources: Velero's "auto" (see tests/stateful.rs).
            "restorePVs": true,
            "preserveNodePorts": false,
            "resourceModifier": {"kind": "ConfigMap", "name": format!("{ns}-modifiers")},
        })
    );

    // The modifiers: CronJobs suspended (then Services neutralised, see
    // tests/isolation.rs).
    let cm = &fake.posted("/configmaps")[0];
    let data = cm["data"].as_object().unwrap();
    assert_eq!(data.len(), 1, "Velero wants exactly one key");
    let rules: Value = serde_json::from_str(data["modifiers.yaml"].as_str().unwrap()).unwrap();
    assert_eq!(rules["version"], "v1");
    assert_eq!(
        rules["resourceModifierRules"][0],
        json!({
            "conditions": {"groupResource": "cronjobs.batch", "namespaces": ["shop"]},
            "patches": [{"operation": "add", "path": "/spec/suspend", "value": "true"}]})
    );

    // The restore and readiness as recorded.
    let r = report.restore.as_ref().unwrap();
    assert_eq!(
        (r.phase.as_str(), r.warnings, r.errors),
        ("Completed", 1, 0)
    );
    assert_eq!((r.items_restored, r.total_items), (Some(57), Some(57)));
    assert!(r.start_timestamp.is_some() && r.completion_timestamp.is_some());
    let ready = report.readiness.as_ref().unwrap();
    assert_eq!(
        ready.ready,
        [
            "deployment/api",
            "statefulset/db",
            "pod/api-7d9f-1",
            "pod/api-7d9f-2",
            "pod/db-0"
        ]
    );

    // The checks got the rendered namespace and backup, and the run info.
    let seen = runner.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        seen[0].1,
        [format!(
            "http://api.{ns}.svc.cluster.local:8080/healthz?backup=shop-daily-newest"
        )]
    );
    assert_eq!(
        seen[0].2,
        TemplateVars {
            namespace: ns.clone(),
            backup: "shop-daily-newest".into(),
            namespaces: vec![mapping::NamespaceMapping::new("shop", ns.clone())],
        }
    );
    assert_eq!(seen[0].3.run_id, "18c2f9a0b11-4d2-0");
    assert_eq!(seen[0].3.location, "fra1");
    assert!(seen[0].3.backup_age_seconds.unwrap() > 7000.0);
    assert_eq!(report.checks.len(), 2);
    // Each check's result names the component that ran, by digest (the
    // audit record carries the report).
    let name = report.checks[0]["check"].as_str().unwrap().to_string();
    assert_eq!(
        report.checks[0]["component"],
        serde_json::json!({"source": format!("checks/{name}.wasm"), "sha256": "ab".repeat(32)})
    );

    // Every phase measured, total = RTO within target.
    let t = &report.timings;
    for v in [
        t.select_seconds,
        t.setup_seconds,
        t.restore_seconds,
        t.ready_seconds,
        t.checks_seconds,
        t.total_seconds,
        t.cleanup_seconds,
    ] {
        assert!(v.is_some_and(|s| s > 0.0), "{t:?}");
    }
    assert!(t.total_seconds.unwrap() >= t.restore_seconds.unwrap() + t.ready_seconds.unwrap());
    assert_eq!(report.rto_target_seconds, Some(900.0));
    assert_eq!(
        report.cleanup.leftovers_deleted,
        ["persistentvolume/pvc-3f9a1c"]
    );
    assert_full_cleanup(&fake, &report);

    // Shown like a check; the report survives a JSON round trip.
    let shown = report.to_check_result();
    assert_eq!(shown.status, Status::Pass);
    let names: Vec<&str> = shown.assertions.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "backup selected",
            "restore completed",
            "app ready",
            "api: status is 200",
            "orders: status is 200",
            "rto within target"
        ]
    );
    assert!(shown.assertions.iter().all(|a| a.passed));
    assert!(
        shown
            .measurements
            .iter()
            .any(|m| m.name == "restore_seconds")
    );
    let back: RestoreReport =
        serde_json::from_str(&serde_json::to_string(&report).unwrap()).unwrap();
    assert_eq!(back, report);
}

#[tokio::test]
async fn partially_failed_restore_fails_and_cleans_up() {
    let mut world = healthy_world();
    world.restore_statuses = vec![
        json!({"phase": "InProgress"}),
        json!({"phase": "PartiallyFailed", "warnings": 2, "errors": 1,
               "startTimestamp": ts(Utc::now()), "completionTimestamp": ts(Utc::now()),
               "progress": {"itemsRestored": 55, "totalItems": 57}}),
    ];
    let fake = Fake::new(world);
    let report = fake.run(&spec(), "run-pf").await;
    assert_fails_with(&report, "PartiallyFailed (warnings 2, errors 1)");
    assert!(report.readiness.is_none() && report.checks.is_empty());
    assert!(
        !fake
            .requests()
            .iter()
            .any(|r| r.path.contains("/apis/apps/"))
    );
    assert_eq!(report.restore.as_ref().unwrap().items_restored, Some(55));
    assert_full_cleanup(&fake, &report);
    assert!(!report.to_check_result().assertions[1].passed);
}

#[tokio::test]
async fn failed_restore_fails_naming_the_reason() {
    let mut world = healthy_world();
    world.restore_statuses = vec![json!({"phase": "Failed", "errors": 3,
        "failureReason": "found a restore with status \"InProgress\" during the server starting, mark it as \"Failed\""})];
    let fake = Fake::new(world);
    let report = fake.run(&spec(), "run-failed").await;
    assert_fails_with(&report, "Failed (warnings 0, errors 3): found a restore");
    assert_full_cleanup(&fake, &report);

    let mut world = healthy_world();
    world.restore_statuses = vec![json!({"phase": "FailedValidation",
        "validationErrors": ["Invalid included/excluded namespace lists: excludes list cannot contain an item in the includes list: shop"]})];
    let fake = Fake::new(world);
    let report = fake.run(&spec(), "run-fv").await;
    // Velero refused what Vantage built: our problem (error), not the
    // backup's (fail).
    assert_eq!(report.verdict, Verdict::Error);
    assert!(
        report.reason.contains("FailedValidation") && report.reason.contains("excludes list"),
        "{}",
        report.reason
    );
    assert_full_cleanup(&fake, &report);
}

#[tokio::test]
async fn restore_timeout_fails_and_cleans_up() {
    let mut world = healthy_world();
    world.restore_statuses = vec![json!({"phase": "InProgress",
        "progress": {"itemsRestored": 3, "totalItems": 57}})];
    let fake = Fake::new(world);
    let mut spec = spec();
    spec.restore_timeout = Duration::from_millis(60);
    let report = fake.run(&spec, "run-timeout").await;
    assert_fails_with(
        &report,
        "not finished after 60 ms (phase InProgress, 3/57 items restored)",
    );
    assert!(report.restore.as_ref().unwrap().timed_out);
    let restore_seconds = report.timings.restore_seconds.unwrap();
    assert!((0.06..1.0).contains(&restore_seconds), "{restore_seconds}");
    // Velero may still be restoring: namespace and Restore are left to the
    // janitor (tests/isolation.rs).
    assert_left_to_janitor(&fake, &report);
}

/// Cleanup of a run whose Restore was not seen finished: only the
/// ConfigMap goes.
fn assert_left_to_janitor(fake: &Fake, report: &RestoreReport) {
    let ns = report.namespace.clone().expect("namespace named");
    let c = &report.cleanup;
    assert!(
        c.configmap_deleted && !c.namespace_deleted && !c.restore_deleted,
        "{c:?}"
    );
    assert_eq!(c.left_to_janitor.len(), 2, "{c:?}");
    let calls = fake.calls();
    assert!(calls.contains(&format!(
        "DELETE /api/v1/namespaces/velero/configmaps/{ns}-modifiers"
    )));
    assert!(
        !calls
            .iter()
            .any(|c| c.starts_with("DELETE") && !c.contains("/configmaps/")),
        "{calls:#?}"
    );
}

#[tokio::test]
async fn unknown_restore_phase_counts_as_unfinished() {
    let mut world = healthy_world();
    // A phase of a newer Velero (the schema of this one would reject it).
    world.restore_statuses = vec![json!({"phase": "Quiescing"})];
    world.unvalidated_statuses = true;
    let fake = Fake::new(world);
    let mut spec = spec();
    spec.restore_timeout = Duration::from_millis(40);
    let report = fake.run(&spec, "run-unknown").await;
    assert_fails_with(&report, "not finished after 40 ms (phase Quiescing)");
    assert_left_to_janitor(&fake, &report);
}

#[tokio::test]
async fn workloads_never_ready_fail_naming_them() {
    let mut world = healthy_world();
    world.deployments = vec![vec![deployment("api", 2, 0)]];
    world.pods = vec![pod("api-7d9f-1", false), pod("db-0", true)];
    let fake = Fake::new(world);
    let mut spec = spec();
    spec.readiness.timeout = Duration::from_millis(60);
    let runner = ScriptedRunner::default();
    let report = run(&fake.client, &spec, &options("run-notready"), &runner).await;
    assert_eq!(report.verdict, Verdict::Fail);
    assert!(
        report.reason.starts_with("not ready after 60 ms: deployment/api: 0/2 available, 2/2 updated, pod/api-7d9f-1: not ready (phase Running)"),
        "{}",
        report.reason
    );
    let ready = report.readiness.as_ref().unwrap();
    assert!(ready.timed_out && ready.ready.contains(&"statefulset/db".to_string()));
    assert!(
        runner.seen.lock().unwrap().is_empty(),
        "no check runs on an app that is not ready"
    );
    assert_full_cleanup(&fake, &report);

    // Named workloads: only those are waited for.
    let mut world = healthy_world();
    world.deployments = vec![vec![deployment("api", 2, 2)]];
    let fake = Fake::new(world);
    let mut spec = self::spec();
    spec.readiness.workloads = vec![
        workload(WorkloadKind::Deployment, "api"),
        workload(WorkloadKind::StatefulSet, "cache"),
    ];
    spec.readiness.timeout = Duration::from_millis(40);
    let report = fake.run(&spec, "run-named").await;
    assert_eq!(report.verdict, Verdict::Fail);
    assert!(
        report.reason.ends_with(": statefulset/cache: not found"),
        "{}",
        report.reason
    );
    assert_eq!(report.readiness.as_ref().unwrap().ready, ["deployment/api"]);
    assert_full_cleanup(&fake, &report);
}

#[tokio::test]
async fn api_error_creating_the_restore_is_an_error_and_cleans_up() {
    let mut world = healthy_world();
    world.fail = vec![("POST", format!("{V}/restores"))];
    let fake = Fake::new(world);
    let report = fake.run(&spec(), "run-500").await;
    assert_eq!(report.verdict, Verdict::Error);
    assert_eq!(
        report.reason,
        "creating the Restore: Kubernetes API error: 500 InternalError: etcdserver: request timed out"
    );
    let ns = report.namespace.clone().unwrap();
    let calls = fake.calls();
    // The Restore was never stored: its delete answers 404, which is fine.
    assert!(
        calls.contains(&format!("DELETE {V}/restores/{ns}")),
        "{calls:#?}"
    );
    assert_full_cleanup(&fake, &report);
    assert_eq!(report.to_check_result().status, Status::Error);
    assert!(report.to_check_result().error.is_some());

    // A failing delete is recorded, never raised.
    let mut world = healthy_world();
    world.fail = vec![("POST", format!("{V}/restores"))];
    let fake = Fake::new(world);
    let ns = namespace::volatile_name("vantage-restore-", "shop", "run-500b");
    fake.world
        .lock()
        .unwrap()
        .fail
        .push(("DELETE", format!("/api/v1/namespaces/{ns}")));
    let report = fake.run(&spec(), "run-500b").await;
    assert_eq!(report.verdict, Verdict::Error);
    assert!(!report.cleanup.namespace_deleted && report.cleanup.restore_deleted);
    assert_eq!(
        report.cleanup.errors,
        [format!(
            "deleting namespace {ns}: 500 InternalError: etcdserver: request timed out"
        )]
    );
}

#[tokio::test]
async fn api_errors_while_polling_are_tolerated_then_reported() {
    let mut world = healthy_world();
    let ns = namespace::volatile_name("vantage-restore-", "shop", "run-poll");
    world.fail = vec![("GET", format!("{V}/restores/{ns}"))];
    let fake = Fake::new(world);
    let report = fake.run(&spec(), "run-poll").await;
    assert_eq!(report.verdict, Verdict::Error);
    assert!(
        report
            .reason
            .starts_with("watching the Restore: Kubernetes API error: 500"),
        "{}",
        report.reason
    );
    let polls = fake
        .requests()
        .iter()
        .filter(|r| r.is("GET", &format!("{V}/restores/{ns}")))
        .count();
    assert_eq!(polls, restore_object::MAX_POLL_ERRORS as usize);
    assert_left_to_janitor(&fake, &report);
}

#[tokio::test]
async fn no_usable_backup_fails_without_creating_anything() {
    let mut world = healthy_world();
    world.backups = vec![
        backup("shop-daily-failed", "Failed", hours(3)),
        backup("shop-daily-partial", "PartiallyFailed", hours(2)),
        backup("shop-daily-running", "InProgress", hours(0)),
    ];
    let fake = Fake::new(world);
    let report = fake.run(&spec(), "run-none").await;
    assert_eq!(report.verdict, Verdict::Fail);
    assert_eq!(
        report.reason,
        "no completed backup of schedule shop-daily ever"
    );
    assert!(
        fake.requests().iter().all(|r| r.method == "GET"),
        "{:#?}",
        fake.calls()
    );
    assert_eq!(
        report.cleanup,
        CleanupInfo {
            namespace_deleted: true,
            restore_deleted: true,
            configmap_deleted: true,
            ..CleanupInfo::default()
        }
    );
    assert!(report.namespace.is_none() && report.restore.is_none());

    // Accepting PartiallyFailed makes the partial one usable.
    let mut world = healthy_world();
    world.backups = vec![backup("shop-daily-partial", "PartiallyFailed", hours(2))];
    let fake = Fake::new(world);
    let mut accepting = spec();
    accepting.accept_partially_failed = true;
    let report = fake.run(&accepting, "run-partial").await;
    assert_eq!(report.verdict, Verdict::Pass, "{}", report.reason);
    assert_eq!(report.backup.unwrap().name, "shop-daily-partial");

    // Within a window: the window start is named.
    let mut world = healthy_world();
    world.backups = vec![backup("shop-daily-old", "Completed", hours(24 * 10))];
    let fake = Fake::new(world);
    let mut windowed = spec();
    windowed.backup = BackupSource::Schedule {
        name: "shop-daily".into(),
        selection: Selection::RandomWithin(Duration::from_secs(7 * 86_400)),
    };
    let report = fake.run(&windowed, "run-window").await;
    assert_eq!(report.verdict, Verdict::Fail);
    assert!(
        report
            .reason
            .starts_with("no completed backup of schedule shop-daily since 20"),
        "{}",
        report.reason
    );

    // No such schedule, no such named backup.
    let mut world = healthy_world();
    world.schedule = None;
    let fake = Fake::new(world);
    let report = fake.run(&spec(), "run-nosched").await;
    assert_eq!(
        report.reason,
        "no Velero Schedule shop-daily in namespace velero"
    );
    let fake = Fake::new(healthy_world());
    let mut named = spec();
    named.backup = BackupSource::Named("shop-manual-1".into());
    let report = fake.run(&named, "run-named").await;
    assert_eq!(
        (report.verdict, report.reason.as_str()),
        (
            Verdict::Fail,
            "backup shop-manual-1 not found in namespace velero"
        )
    );
    named.backup = BackupSource::Named("shop-daily-failed".into());
    let fake = Fake::new(healthy_world());
    let report = fake.run(&named, "run-named2").await;
    assert_eq!(
        report.reason,
        "backup shop-daily-failed is Failed, not Completed"
    );
    assert!(fake.requests().iter().all(|r| r.method == "GET"));

    // A backup that does not hold the source namespace.
    let mut named = spec();
    named.source_namespaces = vec!["billing".into()];
    named.backup = BackupSource::Named("shop-daily-newest".into());
    let fake = Fake::new(healthy_world());
    let report = fake.run(&named, "run-named3").await;
    assert_eq!(
        report.reason,
        "backup shop-daily-newest does not include namespace(s) billing"
    );
}

#[tokio::test]
async fn unavailable_storage_location_fails_without_creating_anything() {
    let mut world = healthy_world();
    let bsl = fixture("bsl-unavailable.json");
    assert_valid("backupstoragelocations", &bsl);
    world.bsl = Some(bsl);
    let fake = Fake::new(world);
    let report = fake.run(&spec(), "run-bsl").await;
    assert_eq!(report.verdict, Verdict::Fail);
    assert!(
        report.reason.starts_with("backup storage location default is Unavailable: BackupStorageLocation \"default\" is unavailable"),
        "{}",
        report.reason
    );
    assert_eq!(
        report
            .backup
            .as_ref()
            .unwrap()
            .storage_location_phase
            .as_deref(),
        Some("Unavailable")
    );
    assert!(fake.requests().iter().all(|r| r.method == "GET"));
    assert!(!report.to_check_result().assertions[0].passed);
}

#[test]
fn random_within_window_picks_only_from_the_window() {
    let now = Utc::now();
    let parse = |v: Value| -> velero::Backup { serde_json::from_value(v).unwrap() };
    let all = || {
        vec![
            parse(backup("b-1d", "Completed", hours(24))),
            parse(backup("b-3d", "Completed", hours(72))),
            parse(backup("b-5d-failed", "Failed", hours(120))),
            parse(backup("b-10d", "Completed", hours(240))),
            parse(backup("b-20d", "Completed", hours(480))),
        ]
    };
    let window = Selection::RandomWithin(Duration::from_secs(7 * 86_400));
    let mut picked = std::collections::BTreeSet::new();
    for seed in 0..64 {
        let b = backup::pick(all(), window, false, now, seed).unwrap();
        picked.insert(b.metadata.name.unwrap());
    }
    assert_eq!(picked, ["b-1d".to_string(), "b-3d".to_string()].into());
    let latest = backup::pick(all(), Selection::Latest, false, now, 7).unwrap();
    assert_eq!(latest.metadata.name.as_deref(), Some("b-1d"));
    let narrow = Selection::RandomWithin(Duration::from_secs(3600));
    assert!(backup::pick(all(), narrow, false, now, 1).is_none());
}

#[tokio::test]
async fn failing_checks_fail_degraded_pass_and_rto_is_enforced() {
    let fake = Fake::new(healthy_world());
    let mut runner = ScriptedRunner::default();
    runner
        .statuses
        .insert("orders".into(), (Status::Fail, None));
    runner
        .statuses
        .insert("api".into(), (Status::Degraded, None));
    let report = run(&fake.client, &spec(), &options("run-checkfail"), &runner).await;
    assert_eq!(report.verdict, Verdict::Fail);
    assert!(
        report
            .reason
            .starts_with("check(s) failed: orders (fail http://api."),
        "{}",
        report.reason
    );
    assert!(report.timings.checks_seconds.is_some());
    assert_full_cleanup(&fake, &report);

    let fake = Fake::new(healthy_world());
    let mut runner = ScriptedRunner::default();
    runner
        .statuses
        .insert("api".into(), (Status::Degraded, None));
    let report = run(&fake.client, &spec(), &options("run-degraded"), &runner).await;
    assert_eq!(report.verdict, Verdict::Pass, "{}", report.reason);
    assert!(
        report.reason.contains("; degraded: api (degraded"),
        "{}",
        report.reason
    );

    let fake = Fake::new(healthy_world());
    let mut runner = ScriptedRunner::default();
    runner
        .statuses
        .insert("api".into(), (Status::Error, Some(ErrorKind::Load)));
    let report = run(&fake.client, &spec(), &options("run-load"), &runner).await;
    assert_eq!(report.verdict, Verdict::Error);
    assert!(
        report.reason.starts_with("check(s) could not run: api"),
        "{}",
        report.reason
    );

    let fake = Fake::new(healthy_world());
    let mut tight = spec();
    tight.rto_target = Some(Duration::from_millis(1));
    let report = fake.run(&tight, "run-rto").await;
    assert_eq!(report.verdict, Verdict::Fail);
    assert!(
        report.reason.starts_with("measured RTO ")
            && report.reason.ends_with("exceeds the target 1 ms"),
        "{}",
        report.reason
    );
    let shown = report.to_check_result();
    assert!(!shown.assertions.last().unwrap().passed);
    assert_full_cleanup(&fake, &report);
}

#[tokio::test]
async fn crash_after_namespace_creation_then_the_janitor_cleans_up() {
    let mut world = healthy_world();
    // The API server never answers the NetworkPolicy creation; the run is
    // dropped mid-flight (a crash as far as cleanup is concerned).
    world.hang = vec![("POST", "/apis/networking.k8s.io/".to_string())];
    // Leftovers of other runs: a fresh one, and a managed namespace without
    // an expiry; and an expired Restore with its volume and ConfigMap.
    let old = ts(Utc::now() - hours(1));
    let managed = |name: &str, expires: Option<&str>| {
        let mut meta = json!({"name": name, "labels": {
            "app.kubernetes.io/managed-by": "vantage", "vantage.dev/restore-test": "shop",
            "vantage.dev/run-id": format!("{name}-run")}});
        if let Some(e) = expires {
            meta["annotations"] = json!({"vantage.dev/expires-at": e});
        }
        meta
    };
    let fresh = ts(Utc::now() + hours(12));
    world.namespaces = vec![
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": managed("vantage-restore-shop-fresh1", Some(&fresh))}),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": managed("vantage-restore-shop-noexp", None)}),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop", "labels": {"team": "shop"}}}),
    ];
    let mut old_restore = restore_object::build_restore(
        &spec(),
        "vantage-restore-shop-old111",
        "shop-daily-older",
        &[mapping::NamespaceMapping::new(
            "shop",
            "vantage-restore-shop-old111",
        )],
        None,
        &namespace::run_labels("shop", "old-run"),
        &namespace::run_annotations(Utc::now() - hours(1)),
    );
    old_restore.status = Some(velero::RestoreStatus {
        phase: Some("Completed".into()),
        ..Default::default()
    });
    let old_restore = serde_json::to_value(&old_restore).unwrap();
    assert_valid("restores", &old_restore);
    world.restores = vec![old_restore];
    world.configmaps = vec![json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": managed("vantage-restore-shop-old111-modifiers", Some(&old)), "data": {}})];
    world.volumes = vec![
        json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pvc-old",
            "labels": {"velero.io/restore-name": "vantage-restore-shop-old111"}}}),
        json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pvc-prod",
            "labels": {"velero.io/restore-name": "prod-migration"}}}),
    ];
    let fake = Fake::new(world);

    let crashed = tokio::time::timeout(
        Duration::from_millis(200),
        run(
            &fake.client,
            &spec(),
            &options("run-crash"),
            &ScriptedRunner::default(),
        ),
    )
    .await;
    assert!(crashed.is_err(), "the run should hang on the NetworkPolicy");
    let ns = namespace::volatile_name("vantage-restore-", "shop", "run-crash");
    assert!(
        fake.world
            .lock()
            .unwrap()
            .namespaces
            .iter()
            .any(|n| name_of(n) == ns),
        "left behind"
    );
    assert!(
        !fake.calls().iter().any(|c| c.starts_with("DELETE")),
        "no cleanup ran"
    );

    // Now: only the expired Restore, its volume and ConfigMap go.
    let report = sweep(&fake.client, "velero", Utc::now()).await;
    assert_eq!(report.errors, Vec::<String>::new());
    assert!(report.namespaces_deleted.is_empty(), "{report:?}");
    assert_eq!(report.restores_deleted, ["vantage-restore-shop-old111"]);
    assert_eq!(report.volumes_deleted, ["pvc-old"]);
    assert_eq!(
        report.configmaps_deleted,
        ["vantage-restore-shop-old111-modifiers"]
    );
    let ns_list = fake
        .requests()
        .into_iter()
        .find(|r| r.is("GET", "/api/v1/namespaces"))
        .unwrap();
    assert!(
        ns_list
            .query
            .contains("app.kubernetes.io%2Fmanaged-by%3Dvantage"),
        "{}",
        ns_list.query
    );

    // After the TTL (6 h): the crashed run's namespace goes, the fresh one
    // (12 h) and the one without expiry stay.
    let report = sweep(
        &fake.client,
        "velero",
        Utc::now() + hours(6) + chrono::Duration::minutes(1),
    )
    .await;
    assert_eq!(report.namespaces_deleted, [ns]);
    let left: Vec<String> = fake.namespace_names();
    assert_eq!(
        left,
        [
            "vantage-restore-shop-fresh1",
            "vantage-restore-shop-noexp",
            "shop"
        ]
    );
    assert_eq!(
        fake.world.lock().unwrap().volumes.len(),
        1,
        "the production volume stays"
    );
}

// ------------------------------------------------- objects vs Velero's CRDs

#[test]
fn fixtures_and_built_restores_validate_against_the_crds() {
    assert_valid("schedules", &fixture("schedule.json"));
    assert_valid("backups", &fixture("backup-completed.json"));
    assert_valid("backupstoragelocations", &fixture("bsl-available.json"));
    assert_valid("backupstoragelocations", &fixture("bsl-unavailable.json"));
    let labels = namespace::run_labels("shop", "r1");
    let annotations = namespace::run_annotations(Utc::now());
    for ingresses in [
        IngressPolicy::Exclude,
        IngressPolicy::RewriteHost {
            suffix: "restore.example.com".into(),
        },
    ] {
        let mut spec = spec();
        spec.source_namespaces = vec!["shop".into(), "shop-db".into()];
        spec.isolation.ingresses = ingresses.clone();
        let targets = [
            mapping::NamespaceMapping::new("shop", "vol"),
            mapping::NamespaceMapping::new("shop-db", "vol-db"),
        ];
        let restore = restore_object::build_restore(
            &spec,
            "r",
            "b",
            &targets,
            Some("r-modifiers"),
            &labels,
            &annotations,
        );
        let v = serde_json::to_value(&restore).unwrap();
        assert_valid("restores", &v);
        assert_eq!(
            v["spec"]["namespaceMapping"],
            json!({"shop": "vol", "shop-db": "vol-db"})
        );
        let rules = restore_object::modifier_rules(&spec, &targets).unwrap();
        let rules = rules["resourceModifierRules"].as_array().unwrap();
        let ingress_rules: Vec<&Value> = rules
            .iter()
            .filter(|r| r["conditions"]["groupResource"] == "ingresses.networking.k8s.io")
            .collect();
        let excluded = v["spec"]["excludedResources"].as_array().unwrap();
        if let IngressPolicy::RewriteHost { .. } = ingresses {
            assert!(!excluded.contains(&json!("ingresses.networking.k8s.io")));
            assert_eq!(
                ingress_rules[1]["patches"][3],
                json!({"operation": "add", "path": "/spec/rules/0/host", "value": "vol.restore.example.com"})
            );
            // Each source's Ingresses get its own namespace's host.
            assert_eq!(
                ingress_rules[3]["conditions"]["namespaces"],
                json!(["shop-db"])
            );
            assert_eq!(
                ingress_rules[3]["patches"][3]["value"],
                "vol-db.restore.example.com"
            );
        } else {
            assert!(excluded.contains(&json!("ingresses.networking.k8s.io")));
            assert!(ingress_rules.is_empty());
        }
    }
    let mut quiet = spec();
    quiet.isolation.suspend_cronjobs = false;
    quiet.isolation.neutralize_services = false;
    assert!(
        restore_object::modifier_rules(&quiet, &[mapping::NamespaceMapping::new("shop", "vol")])
            .is_none()
    );
}

#[test]
fn the_crd_schemas_reject_wrong_objects() {
    let labels = namespace::run_labels("shop", "r1");
    let restore = restore_object::build_restore(
        &spec(),
        "r",
        "b",
        &[mapping::NamespaceMapping::new("shop", "vol")],
        None,
        &labels,
        &BTreeMap::new(),
    );
    let mut v = serde_json::to_value(&restore).unwrap();
    assert!(crd_validator("restores").is_valid(&v));
    v["spec"]["restorePVs"] = json!("yes");
    assert!(!crd_validator("restores").is_valid(&v));
    let mut v = serde_json::to_value(&restore).unwrap();
    v["spec"]["resourceModifier"] = json!({"kind": "ConfigMap"});
    assert!(!crd_validator("restores").is_valid(&v), "name is required");
    let mut bsl = fixture("bsl-available.json");
    bsl["status"]["phase"] = json!("Sleeping");
    assert!(!crd_validator("backupstoragelocations").is_valid(&bsl));
    let mut schedule = fixture("schedule.json");
    schedule["spec"].as_object_mut().unwrap().remove("template");
    assert!(
        !crd_validator("schedules").is_valid(&schedule),
        "template is required"
    );
}

mod admission;
mod evidence_items;
mod isolation;
mod job_redaction;
mod multins;
