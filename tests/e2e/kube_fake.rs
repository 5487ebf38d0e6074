//! A small in-memory Kubernetes API server over real HTTP on 127.0.0.1, for
//! driving the `vantage daemon` binary through whole restore tests where
//! no real API server can run (the build machines have none; the suite
//! against a real cluster is `restore_cluster`).
//!
//! It stores objects by collection path and answers the calls a restore
//! test makes: list (with equality label selectors), get, create (409 if
//! present), delete (namespaces take their contents with them). It plays
//! Velero's part too: a Restore is `InProgress` when created and turns
//! `Completed` on the next read, with the app (a ready Deployment and its
//! Pod) "restored" into the namespace its `namespaceMapping` names.
//!
//! It plays the kubelet and the CNI for the isolation probe pod too: on its
//! first read after creation the pod "runs" its `host port` argument pairs
//! the way its script does, and ends with the script's exit code and
//! termination message. A connection is refused when the CNI enforces
//! NetworkPolicy ([`Store::cni_enforces_network_policy`]) and no egress rule
//! of a policy selecting the pod admits the address and port (Kubernetes'
//! semantics: ipBlock CIDR minus `except`, ports; selector peers never match
//! an address outside the cluster); otherwise a real TCP connection to it
//! is tried. A Restore named in [`Store::stuck_restores`] stays
//! `InProgress` (Velero still restoring, for the janitor).
//!
//! Every request is logged, so tests can assert what was created and that
//! cleanup deleted it.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// Resource plurals the fake knows, with their kinds.
const KINDS: [(&str, &str); 13] = [
    ("namespaces", "Namespace"),
    ("networkpolicies", "NetworkPolicy"),
    ("configmaps", "ConfigMap"),
    ("restores", "Restore"),
    ("backups", "Backup"),
    ("backupstoragelocations", "BackupStorageLocation"),
    ("schedules", "Schedule"),
    ("deployments", "Deployment"),
    ("statefulsets", "StatefulSet"),
    ("pods", "Pod"),
    ("persistentvolumes", "PersistentVolume"),
    ("persistentvolumeclaims", "PersistentVolumeClaim"),
    ("services", "Service"),
];

/// The fake's state, shared with the test.
#[derive(Default)]
pub struct Store {
    /// Objects by collection path (`/api/v1/namespaces`), then by name.
    pub objects: BTreeMap<String, BTreeMap<String, Value>>,
    /// `METHOD path` of every request, in order.
    pub log: Vec<String>,
    next_version: u64,
    /// Whether the CNI enforces NetworkPolicy (Calico, Cilium) or not
    /// (flannel): decides what the isolation probe reaches.
    pub cni_enforces_network_policy: bool,
    /// Restores Velero never finishes (they stay `InProgress`).
    pub stuck_restores: BTreeSet<String>,
}

/// The isolation probe pod's name (`restore::probe::PROBE_POD`).
const PROBE_POD: &str = "vantage-isolation-probe";

/// A running fake API server.
pub struct FakeKube {
    /// Its state.
    pub store: Arc<Mutex<Store>>,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl FakeKube {
    /// Start on a free port.
    pub async fn start() -> FakeKube {
        let store = Arc::new(Mutex::new(Store::default()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new().fallback(handle).with_state(store.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeKube { store, addr }
    }

    /// A kubeconfig pointing at the fake.
    pub fn kubeconfig(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: http://{}\n\
             contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n    namespace: default\n\
             current-context: fake\nusers:\n- name: fake\n  user: {{}}\n",
            self.addr
        )
    }

    /// Put an object into `collection`.
    pub fn insert(&self, collection: &str, object: Value) {
        let mut store = self.store.lock().unwrap();
        let name = object["metadata"]["name"].as_str().unwrap().to_string();
        store
            .objects
            .entry(collection.to_string())
            .or_default()
            .insert(name, object);
    }

    /// The names in `collection`.
    pub fn names(&self, collection: &str) -> Vec<String> {
        let store = self.store.lock().unwrap();
        store
            .objects
            .get(collection)
            .map(|c| c.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The request log.
    pub fn log(&self) -> Vec<String> {
        self.store.lock().unwrap().log.clone()
    }
}

/// Split a path into (collection, item name).
fn locate(path: &str) -> Option<(String, Option<String>)> {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let last = *segments.last()?;
    if KINDS.iter().any(|(p, _)| *p == last) {
        return Some((path.trim_end_matches('/').to_string(), None));
    }
    let parent = segments.get(segments.len().checked_sub(2)?)?;
    if KINDS.iter().any(|(p, _)| p == parent) {
        let collection = segments[..segments.len() - 1].join("/");
        return Some((collection, Some(last.to_string())));
    }
    None
}

fn kind_of(collection: &str) -> &'static str {
    let plural = collection.rsplit('/').next().unwrap_or("");
    KINDS
        .iter()
        .find(|(p, _)| *p == plural)
        .map(|(_, k)| *k)
        .unwrap_or("Unknown")
}

fn api_version_of(collection: &str) -> String {
    let parts: Vec<&str> = collection.split('/').collect();
    match parts.get(1) {
        Some(&"api") => parts.get(2).unwrap_or(&"v1").to_string(),
        _ => format!(
            "{}/{}",
            parts.get(2).unwrap_or(&""),
            parts.get(3).unwrap_or(&"")
        ),
    }
}

fn status(code: u16, reason: &str, message: String) -> Response {
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "code": code,
    });
    (
        StatusCode::from_u16(code).unwrap(),
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn ok(code: StatusCode, body: Value) -> Response {
    (
        code,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// Whether `labels` match an equality-based selector (`a=b,c!=d,e`).
fn matches(labels: &Value, selector: &str) -> bool {
    selector.split(',').filter(|s| !s.is_empty()).all(|term| {
        if let Some((k, v)) = term.split_once("!=") {
            labels[k].as_str() != Some(v)
        } else if let Some((k, v)) = term.split_once('=') {
            labels[k.trim_end_matches('=')].as_str() == Some(v.trim_start_matches('='))
        } else {
            !labels[term].is_null()
        }
    })
}

fn query_param(query: Option<&str>, key: &str) -> Option<String> {
    url::form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

async fn handle(State(store): State<Arc<Mutex<Store>>>, request: Request) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let query = request.uri().query().map(str::to_string);
    let body: Bytes = axum::body::to_bytes(request.into_body(), 16 << 20)
        .await
        .unwrap_or_default();
    let mut store = store.lock().unwrap();
    store.log.push(format!("{method} {path}"));
    let Some((collection, name)) = locate(&path) else {
        return status(404, "NotFound", format!("the server could not find {path}"));
    };
    match (method, name) {
        (Method::GET, None) => {
            let selector = query_param(query.as_deref(), "labelSelector").unwrap_or_default();
            let items: Vec<Value> = store
                .objects
                .get(&collection)
                .map(|c| c.values().cloned().collect())
                .unwrap_or_default();
            let items: Vec<Value> = items
                .into_iter()
                .filter(|o| matches(&o["metadata"]["labels"], &selector))
                .collect();
            ok(
                StatusCode::OK,
                json!({
                    "kind": format!("{}List", kind_of(&collection)),
                    "apiVersion": api_version_of(&collection),
                    "metadata": {"resourceVersion": store.next_version.to_string()},
                    "items": items,
                }),
            )
        }
        (Method::GET, Some(name)) => {
            if kind_of(&collection) == "Restore" {
                progress_restore(&mut store, &collection, &name);
            }
            if kind_of(&collection) == "Pod" && name == PROBE_POD {
                run_probe(&mut store, &collection);
            }
            match store.objects.get(&collection).and_then(|c| c.get(&name)) {
                Some(o) => ok(StatusCode::OK, o.clone()),
                None => status(
                    404,
                    "NotFound",
                    format!("{} \"{name}\" not found", kind_of(&collection)),
                ),
            }
        }
        (Method::POST, None) => {
            let Ok(mut object) = serde_json::from_slice::<Value>(&body) else {
                return status(400, "BadRequest", "the body is not JSON".into());
            };
            let Some(name) = object["metadata"]["name"].as_str().map(str::to_string) else {
                return status(422, "Invalid", "metadata.name: Required value".into());
            };
            if store
                .objects
                .get(&collection)
                .is_some_and(|c| c.contains_key(&name))
            {
                return status(
                    409,
                    "AlreadyExists",
                    format!("{} \"{name}\" already exists", kind_of(&collection)),
                );
            }
            store.next_version += 1;
            object["metadata"]["resourceVersion"] = json!(store.next_version.to_string());
            object["metadata"]["uid"] = json!(format!("uid-{}", store.next_version));
            object["metadata"]["creationTimestamp"] = json!(now_rfc3339());
            if kind_of(&collection) == "Restore" {
                object["status"] = json!({"phase": "InProgress", "startTimestamp": now_rfc3339()});
            }
            if kind_of(&collection) == "Pod" {
                object["status"] = json!({"phase": "Pending"});
            }
            store
                .objects
                .entry(collection)
                .or_default()
                .insert(name, object.clone());
            ok(StatusCode::CREATED, object)
        }
        (Method::DELETE, Some(name)) => {
            let removed = store
                .objects
                .get_mut(&collection)
                .and_then(|c| c.remove(&name));
            let Some(object) = removed else {
                return status(
                    404,
                    "NotFound",
                    format!("{} \"{name}\" not found", kind_of(&collection)),
                );
            };
            if kind_of(&collection) == "Namespace" {
                let inside = format!("/namespaces/{name}/");
                store.objects.retain(|path, _| !path.contains(&inside));
            }
            ok(StatusCode::OK, object)
        }
        (method, _) => status(405, "MethodNotAllowed", format!("{method} {path}")),
    }
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Velero's part: an `InProgress` Restore completes, and its app appears in
/// the mapped namespace.
fn progress_restore(store: &mut Store, collection: &str, name: &str) {
    let Some(restore) = store
        .objects
        .get_mut(collection)
        .and_then(|c| c.get_mut(name))
    else {
        return;
    };
    if restore["status"]["phase"] != "InProgress" || store.stuck_restores.contains(name) {
        return;
    }
    restore["status"] = json!({
        "phase": "Completed",
        "startTimestamp": restore["status"]["startTimestamp"],
        "completionTimestamp": now_rfc3339(),
        "warnings": 1,
        "errors": 0,
        "progress": {"itemsRestored": 7, "totalItems": 7},
    });
    let targets: Vec<String> = restore["spec"]["namespaceMapping"]
        .as_object()
        .map(|m| {
            m.values()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let restore_name = name.to_string();
    for ns in targets {
        let labels = json!({"app": "api", "velero.io/restore-name": restore_name});
        let deployment = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "api", "namespace": ns, "labels": labels},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "api"}},
                "template": {"metadata": {"labels": {"app": "api"}},
                             "spec": {"containers": [{"name": "api", "image": "shop/api:1.4"}]}},
            },
            "status": {"replicas": 1, "readyReplicas": 1, "availableReplicas": 1, "updatedReplicas": 1,
                       "observedGeneration": 1},
        });
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "api-7d9f-x2x", "namespace": ns, "labels": labels},
            "spec": {"containers": [{"name": "api", "image": "shop/api:1.4"}]},
            "status": {"phase": "Running",
                       "conditions": [{"type": "Ready", "status": "True"}]},
        });
        store
            .objects
            .entry(format!("/apis/apps/v1/namespaces/{ns}/deployments"))
            .or_default()
            .insert("api".into(), deployment);
        store
            .objects
            .entry(format!("/api/v1/namespaces/{ns}/pods"))
            .or_default()
            .insert("api-7d9f-x2x".into(), pod);
    }
}

/// The kubelet and the CNI for the probe pod in `collection` (a pods
/// collection): a Pending probe runs once and terminates as its script
/// would (exit 0 "refused", exit 1 "reached: h:p ...").
fn run_probe(store: &mut Store, collection: &str) {
    let Some(pod) = store.objects.get(collection).and_then(|c| c.get(PROBE_POD)) else {
        return;
    };
    if pod["status"]["phase"] != "Pending" {
        return;
    }
    let namespace = pod["metadata"]["namespace"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let labels = pod["metadata"]["labels"].clone();
    let args: Vec<String> = pod["spec"]["containers"][0]["args"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let policies: Vec<Value> = store
        .objects
        .get(&format!(
            "/apis/networking.k8s.io/v1/namespaces/{namespace}/networkpolicies"
        ))
        .map(|c| c.values().cloned().collect())
        .unwrap_or_default();
    // args: "probe" ($0), then host port pairs.
    let mut reached = Vec::new();
    for pair in args.get(1..).unwrap_or(&[]).chunks(2) {
        let [host, port] = pair else { continue };
        let Ok(port) = port.parse::<u16>() else {
            continue;
        };
        let Some(addr) = (host.as_str(), port)
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
        else {
            continue;
        };
        let admitted = !store.cni_enforces_network_policy
            || egress_admits(&policies, &labels, addr.ip(), port);
        if admitted && TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok() {
            reached.push(format!("{host}:{port}"));
        }
    }
    let (code, message) = if reached.is_empty() {
        (0, "refused\n".to_string())
    } else {
        (1, format!("reached: {}\n", reached.join(" ")))
    };
    let pod = store
        .objects
        .get_mut(collection)
        .and_then(|c| c.get_mut(PROBE_POD))
        .expect("the probe pod");
    pod["status"] = json!({
        "phase": if code == 0 { "Succeeded" } else { "Failed" },
        "containerStatuses": [{"name": "probe", "ready": false, "restartCount": 0,
            "image": pod["spec"]["containers"][0]["image"], "imageID": "",
            "state": {"terminated": {"exitCode": code, "message": message,
                "reason": if code == 0 { "Completed" } else { "Error" }}}}],
    });
}

/// Whether the NetworkPolicies of a namespace let a pod with `labels`
/// connect to `ip:port` (TCP): allowed when no policy with Egress selects
/// the pod, else when one selecting policy's egress rule admits it.
fn egress_admits(policies: &[Value], labels: &Value, ip: IpAddr, port: u16) -> bool {
    let selecting: Vec<&Value> = policies
        .iter()
        .filter(|p| {
            let types = p["spec"]["policyTypes"].as_array();
            let egress = types.is_some_and(|t| t.iter().any(|t| t == "Egress"))
                || (types.is_none() && p["spec"]["egress"].is_array());
            egress && selector_selects(&p["spec"]["podSelector"], labels)
        })
        .collect();
    if selecting.is_empty() {
        return true;
    }
    selecting.iter().any(|p| {
        p["spec"]["egress"].as_array().is_some_and(|rules| {
            rules.iter().any(|rule| {
                let ports_ok = match rule["ports"].as_array() {
                    None => true,
                    Some(ports) if ports.is_empty() => true,
                    Some(ports) => ports.iter().any(|p| {
                        p["protocol"].as_str().unwrap_or("TCP") == "TCP"
                            && (p["port"].is_null() || p["port"] == json!(port))
                    }),
                };
                let peers_ok = match rule["to"].as_array() {
                    None => true,
                    Some(peers) if peers.is_empty() => true,
                    // Selector peers are pods; only an ipBlock can match an
                    // address outside the cluster.
                    Some(peers) => peers.iter().any(|peer| {
                        let block = &peer["ipBlock"];
                        block["cidr"].as_str().is_some_and(|c| cidr_contains(c, ip))
                            && !block["except"].as_array().is_some_and(|e| {
                                e.iter()
                                    .any(|x| x.as_str().is_some_and(|c| cidr_contains(c, ip)))
                            })
                    }),
                };
                ports_ok && peers_ok
            })
        })
    })
}

/// A podSelector with `matchLabels` only (what Vantage writes).
fn selector_selects(selector: &Value, labels: &Value) -> bool {
    selector["matchLabels"]
        .as_object()
        .is_none_or(|m| m.iter().all(|(k, v)| labels[k] == *v))
}

fn cidr_contains(cidr: &str, ip: IpAddr) -> bool {
    let Some((net, bits)) = cidr.split_once('/') else {
        return false;
    };
    let (Ok(net), Ok(bits)) = (net.parse::<IpAddr>(), bits.parse::<u32>()) else {
        return false;
    };
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(a)) if bits <= 32 => {
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            u32::from(n) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(a)) if bits <= 128 => {
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            u128::from(n) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}
