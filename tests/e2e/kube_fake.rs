//! A small in-memory Kubernetes API server over real HTTP on 127.0.0.1, for
//! driving the `vantage daemon` binary (and kube-rs clients in-process)
//! where no real API server can run (the build machines have none; the
//! suite against a real cluster is `restore_cluster`). Its answers are
//! checked against recorded real API-server responses in
//! `kube_fake_tests` (fixtures under `tests/fixtures/kube/`).
//!
//! It serves generic resources by path: `/api/v1[/namespaces/{ns}]/{plural}
//! [/{name}[/status]]`, the same under `/apis/{group}/{version}`, and
//! all-namespaces lists and watches (`/apis/{group}/{version}/{plural}`),
//! for the plurals in [`KINDS`] (others are 404). Every write (create,
//! replace, patch, status update, delete) takes the next value of one
//! global `resourceVersion` counter; objects get `uid`,
//! `creationTimestamp` and `generation` (bumped when anything but
//! `metadata` and `status` changes). Kinds with a status subresource
//! ignore `status` on writes to the main resource, and `/status` writes
//! change only `status`.
//!
//! - PUT replaces: 404 when absent, 409 `Conflict` when the body's
//!   `metadata.resourceVersion` is set and stale.
//! - PATCH by Content-Type: merge (RFC 7386), strategic (merge, with lists
//!   of objects with a `name` merged by name), JSON patch (RFC 6902) and
//!   server-side apply (`application/apply-patch+yaml`, JSON bodies), with
//!   `metadata.managedFields` per manager (leaf paths, FieldsV1), apply
//!   conflicts (409 with `FieldManagerConflict` causes) unless `force=true`,
//!   create on apply (201).
//! - `?watch=true` streams newline-delimited watch events after the given
//!   `resourceVersion` (410 `Expired` ERROR event when older than the kept
//!   history, see [`FakeKube::compact`]); `labelSelector`, `fieldSelector`,
//!   `timeoutSeconds`, `allowWatchBookmarks` (a BOOKMARK every
//!   [`BOOKMARK_EVERY`]) and `sendInitialEvents` are honoured.
//!
//! It plays Velero's part too: a Restore is `InProgress` when created and
//! turns `Completed` on the next read, with the app (a ready Deployment and
//! its Pod) "restored" into the namespace its `namespaceMapping` names.
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
//! cleanup deleted it; [`FakeKube::set_unavailable`] and
//! [`FakeKube::set_hook`] make requests fail (an outage, or one client's;
//! kube-rs clients retry 429/503/504 by default, up to 15 times with
//! backoff, so a hook answering 500 fails them at once), and
//! [`FakeKube::set_delay`] makes them hang.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use tokio::sync::{broadcast, mpsc};

/// Resource plurals the fake knows: plural, kind, namespaced, whether the
/// kind has a status subresource.
pub const KINDS: [(&str, &str, bool, bool); 18] = [
    ("namespaces", "Namespace", false, true),
    ("networkpolicies", "NetworkPolicy", true, false),
    ("configmaps", "ConfigMap", true, false),
    ("secrets", "Secret", true, false),
    ("events", "Event", true, false),
    ("leases", "Lease", true, false),
    ("restores", "Restore", true, false),
    ("backups", "Backup", true, false),
    (
        "backupstoragelocations",
        "BackupStorageLocation",
        true,
        false,
    ),
    ("schedules", "Schedule", true, false),
    ("deployments", "Deployment", true, true),
    ("statefulsets", "StatefulSet", true, true),
    ("pods", "Pod", true, true),
    ("persistentvolumes", "PersistentVolume", false, true),
    (
        "persistentvolumeclaims",
        "PersistentVolumeClaim",
        true,
        true,
    ),
    ("services", "Service", true, true),
    ("checks", "Check", true, true),
    ("restoretests", "RestoreTest", true, true),
];

/// Custom resources: a `status` in a create is dropped (CRD semantics).
const CUSTOM_WITH_STATUS: [&str; 2] = ["checks", "restoretests"];

/// How many changes the watch history keeps (older `resourceVersion`s get
/// 410 Expired).
const HISTORY: usize = 10_000;

/// How often a watch that asked for bookmarks gets one.
pub const BOOKMARK_EVERY: Duration = Duration::from_secs(1);

/// A request hook: `(method, path, user agent)`, called for every request
/// (the store's lock is not held); `Some(code)` fails the request with that
/// HTTP status.
pub type Hook = Arc<dyn Fn(&str, &str, &str) -> Option<u16> + Send + Sync>;

/// One change, as watch events report it.
#[derive(Clone, Debug)]
pub struct Change {
    /// The `resourceVersion` the change took.
    pub version: u64,
    /// The collection path of the object.
    pub collection: String,
    /// `ADDED`, `MODIFIED` or `DELETED`.
    pub kind: &'static str,
    /// The object after the change (before deletion, for `DELETED`).
    pub object: Value,
    /// The object before a MODIFIED, when known (a watch with a selector
    /// turns a change into or out of it into ADDED or DELETED).
    pub previous: Option<Value>,
}

/// The fake's state, shared with the test.
pub struct Store {
    /// Objects by collection path (`/api/v1/namespaces`), then by name.
    pub objects: BTreeMap<String, BTreeMap<String, Value>>,
    /// `METHOD path` of every request, in order.
    pub log: Vec<String>,
    /// The global resourceVersion counter: the version of the last write.
    next_version: u64,
    /// Whether the CNI enforces NetworkPolicy (Calico, Cilium) or not
    /// (flannel): decides what the isolation probe reaches.
    pub cni_enforces_network_policy: bool,
    /// Restores Velero never finishes (they stay `InProgress`).
    pub stuck_restores: BTreeSet<String>,
    /// Every request answers 503 while set.
    pub unavailable: bool,
    /// Called for every request; see [`Hook`].
    pub hook: Option<Hook>,
    /// Every request waits this long before it is answered (a hanging API
    /// server).
    pub delay: Option<Duration>,
    /// The changes a watch can still start from.
    history: VecDeque<Change>,
    /// Watches from a version below this get 410 Expired.
    floor: u64,
    changes: broadcast::Sender<Change>,
}

impl Default for Store {
    fn default() -> Store {
        Store {
            objects: BTreeMap::new(),
            log: Vec::new(),
            next_version: 0,
            cni_enforces_network_policy: false,
            stuck_restores: BTreeSet::new(),
            unavailable: false,
            hook: None,
            delay: None,
            history: VecDeque::new(),
            floor: 0,
            changes: broadcast::channel(4096).0,
        }
    }
}

impl Store {
    /// The current (last written) resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.next_version
    }

    fn bump(&mut self) -> u64 {
        self.next_version += 1;
        self.next_version
    }

    /// Record a change at the current version and tell the watches.
    fn record(
        &mut self,
        collection: &str,
        kind: &'static str,
        object: Value,
        previous: Option<Value>,
    ) {
        let change = Change {
            version: self.next_version,
            collection: collection.to_string(),
            kind,
            object,
            previous,
        };
        self.history.push_back(change.clone());
        while self.history.len() > HISTORY {
            if let Some(old) = self.history.pop_front() {
                self.floor = old.version;
            }
        }
        let _ = self.changes.send(change);
    }

    /// Store `object` (new or replacing) as a write outside the API: a new
    /// resourceVersion, `uid`/`creationTimestamp`/`generation` when absent,
    /// and an ADDED or MODIFIED event.
    fn put(&mut self, collection: &str, mut object: Value) -> Value {
        let version = self.bump();
        let name = object["metadata"]["name"]
            .as_str()
            .unwrap_or("")
            .to_string();
        stamp(&mut object, version, collection);
        let previous = self
            .objects
            .entry(collection.to_string())
            .or_default()
            .insert(name, object.clone());
        let kind = if previous.is_some() {
            "MODIFIED"
        } else {
            "ADDED"
        };
        self.record(collection, kind, object.clone(), previous);
        object
    }

    /// A stored object was changed in place (Velero, the kubelet): a new
    /// resourceVersion and a MODIFIED event.
    fn touch(&mut self, collection: &str, name: &str) {
        let version = self.bump();
        let Some(object) = self
            .objects
            .get_mut(collection)
            .and_then(|c| c.get_mut(name))
        else {
            return;
        };
        object["metadata"]["resourceVersion"] = json!(version.to_string());
        let object = object.clone();
        self.record(collection, "MODIFIED", object, None);
    }

    /// Remove an object: a new resourceVersion and a DELETED event (a
    /// namespace takes its contents with it).
    fn delete(&mut self, collection: &str, name: &str) -> Option<Value> {
        let mut object = self.objects.get_mut(collection)?.remove(name)?;
        let version = self.bump();
        object["metadata"]["resourceVersion"] = json!(version.to_string());
        self.record(collection, "DELETED", object.clone(), None);
        if plural_of(collection) == "namespaces" && !collection.contains("/namespaces/") {
            let inside = format!("/namespaces/{name}/");
            let doomed: Vec<(String, String)> = self
                .objects
                .iter()
                .filter(|(path, _)| path.contains(&inside))
                .flat_map(|(path, c)| c.keys().map(move |n| (path.clone(), n.clone())))
                .collect();
            for (path, item) in doomed {
                self.delete(&path, &item);
            }
            self.objects.retain(|path, _| !path.contains(&inside));
        }
        Some(object)
    }
}

/// Give a stored-from-outside object what the API server would: a
/// resourceVersion when absent (else it is kept), uid, creationTimestamp,
/// generation, apiVersion and kind.
fn stamp(object: &mut Value, version: u64, collection: &str) {
    if !object["metadata"].is_object() {
        object["metadata"] = json!({});
    }
    let meta = &mut object["metadata"];
    if meta["resourceVersion"].as_str().is_none_or(str::is_empty) {
        meta["resourceVersion"] = json!(version.to_string());
    }
    if meta["uid"].is_null() {
        meta["uid"] = json!(uid(version));
    }
    if meta["creationTimestamp"].is_null() {
        meta["creationTimestamp"] = json!(now_rfc3339());
    }
    if meta["generation"].is_null() {
        meta["generation"] = json!(1);
    }
    if object["apiVersion"].is_null() {
        object["apiVersion"] = json!(api_version_of(collection));
    }
    if object["kind"].is_null() {
        object["kind"] = json!(kind_of(collection));
    }
}

fn uid(version: u64) -> String {
    format!("00000000-0000-4000-8000-{version:012x}")
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

    /// Its base URL, `http://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
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

    /// Put an object into `collection` (create or replace, no checks): it
    /// takes a new resourceVersion unless it carries one, and
    /// uid/creationTimestamp/generation when absent; watches see ADDED or
    /// MODIFIED.
    pub fn insert(&self, collection: &str, object: Value) {
        self.store.lock().unwrap().put(collection, object);
    }

    /// Remove an object from `collection` (watches see DELETED).
    pub fn remove(&self, collection: &str, name: &str) -> Option<Value> {
        self.store.lock().unwrap().delete(collection, name)
    }

    /// One object of `collection`, as stored.
    pub fn object(&self, collection: &str, name: &str) -> Option<Value> {
        let store = self.store.lock().unwrap();
        store
            .objects
            .get(collection)
            .and_then(|c| c.get(name))
            .cloned()
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

    /// The current (last written) resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.store.lock().unwrap().resource_version()
    }

    /// Forget the watch history (etcd compaction): a watch from any
    /// resourceVersion before now gets 410 Expired.
    pub fn compact(&self) {
        let mut store = self.store.lock().unwrap();
        store.history.clear();
        store.floor = store.next_version;
    }

    /// While set, every request answers 503 ServiceUnavailable (open
    /// watches keep streaming).
    pub fn set_unavailable(&self, unavailable: bool) {
        self.store.lock().unwrap().unavailable = unavailable;
    }

    /// Install (or with `None` remove) the per-request hook: it sees every
    /// request and may fail it (per client, by user agent).
    pub fn set_hook(&self, hook: Option<Hook>) {
        self.store.lock().unwrap().hook = hook;
    }

    /// Make every request wait `delay` before it is handled (a hanging API
    /// server); `None` answers at once again. Requests already waiting keep
    /// waiting.
    pub fn set_delay(&self, delay: Option<Duration>) {
        self.store.lock().unwrap().delay = delay;
    }
}

/// What a request names: a collection, maybe an item, maybe `/status`.
#[derive(Clone, Debug)]
struct Target {
    /// `/api/v1` or `/apis/{group}/{version}`.
    prefix: String,
    plural: String,
    namespace: Option<String>,
    name: Option<String>,
    status: bool,
}

impl Target {
    fn collection(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{}/namespaces/{ns}/{}", self.prefix, self.plural),
            None => format!("{}/{}", self.prefix, self.plural),
        }
    }

    /// A namespaced kind listed or watched across all namespaces.
    fn all_namespaces(&self) -> bool {
        namespaced(&self.plural) && self.namespace.is_none()
    }

    /// Whether objects of `collection` are in this (list or watch) scope.
    fn covers(&self, collection: &str) -> bool {
        if !self.all_namespaces() {
            return collection == self.collection();
        }
        let Some(rest) = collection.strip_prefix(&format!("{}/namespaces/", self.prefix)) else {
            return false;
        };
        matches!(rest.split('/').collect::<Vec<_>>().as_slice(), [_, p] if *p == self.plural)
    }

    fn group(&self) -> &str {
        self.prefix
            .strip_prefix("/apis/")
            .and_then(|gv| gv.split('/').next())
            .unwrap_or("")
    }

    /// `leases.coordination.k8s.io`, `configmaps`: how messages name it.
    fn qualified(&self) -> String {
        match self.group() {
            "" => self.plural.clone(),
            group => format!("{}.{group}", self.plural),
        }
    }

    fn api_version(&self) -> String {
        api_version_of(&self.prefix)
    }
}

fn kind_entry(plural: &str) -> Option<&'static (&'static str, &'static str, bool, bool)> {
    KINDS.iter().find(|(p, ..)| *p == plural)
}

fn namespaced(plural: &str) -> bool {
    kind_entry(plural).is_some_and(|k| k.2)
}

fn has_status(plural: &str) -> bool {
    kind_entry(plural).is_some_and(|k| k.3)
}

/// Parse a request path.
fn parse(path: &str) -> Option<Target> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (prefix, rest) = match segments.as_slice() {
        ["api", version, rest @ ..] => (format!("/api/{version}"), rest),
        ["apis", group, version, rest @ ..] => (format!("/apis/{group}/{version}"), rest),
        _ => return None,
    };
    let item = |plural: &str, namespace: Option<&str>, tail: &[&str]| -> Option<Target> {
        if tail.len() > 2 || tail.get(1).is_some_and(|s| *s != "status") {
            return None;
        }
        Some(Target {
            prefix: prefix.clone(),
            plural: plural.to_string(),
            namespace: namespace.map(str::to_string),
            name: tail.first().map(|s| s.to_string()),
            status: tail.len() == 2,
        })
    };
    match rest {
        ["namespaces", ns, plural, tail @ ..] if namespaced(plural) => item(plural, Some(ns), tail),
        [plural, tail @ ..] if kind_entry(plural).is_some() => {
            if namespaced(plural) && !tail.is_empty() {
                return None;
            }
            item(plural, None, tail)
        }
        _ => None,
    }
}

fn plural_of(collection: &str) -> &str {
    collection.rsplit('/').next().unwrap_or("")
}

fn kind_of(collection: &str) -> &'static str {
    kind_entry(plural_of(collection))
        .map(|k| k.1)
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

fn status_body(code: u16, reason: &str, message: String, details: Option<Value>) -> Value {
    let mut body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason,
    });
    if let Some(details) = details {
        body["details"] = details;
    }
    body["code"] = json!(code);
    body
}

fn status(code: u16, reason: &str, message: String) -> Response {
    ok(
        StatusCode::from_u16(code).unwrap(),
        status_body(code, reason, message, None),
    )
}

fn status_with(code: u16, reason: &str, message: String, details: Value) -> Response {
    ok(
        StatusCode::from_u16(code).unwrap(),
        status_body(code, reason, message, Some(details)),
    )
}

/// The real server's NotFound: `leases.coordination.k8s.io "x" not found`.
fn not_found(target: &Target, name: &str) -> Response {
    let mut details = json!({"name": name, "kind": target.plural});
    if !target.group().is_empty() {
        details["group"] = json!(target.group());
    }
    status_with(
        404,
        "NotFound",
        format!("{} \"{name}\" not found", target.qualified()),
        details,
    )
}

fn ok(code: StatusCode, body: Value) -> Response {
    (
        code,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// Whether `labels` match a selector (`a=b,c!=d,e,!f`).
fn matches(labels: &Value, selector: &str) -> bool {
    selector.split(',').filter(|s| !s.is_empty()).all(|term| {
        let term = term.trim();
        if let Some((k, v)) = term.split_once("!=") {
            labels[k.trim()].as_str() != Some(v.trim())
        } else if let Some((k, v)) = term.split_once('=') {
            labels[k.trim()].as_str() == Some(v.trim_start_matches('=').trim())
        } else if let Some(k) = term.strip_prefix('!') {
            labels[k].is_null()
        } else {
            !labels[term].is_null()
        }
    })
}

/// Whether `object` matches a field selector (`metadata.name=x`,
/// `metadata.namespace!=y`).
fn fields_match(object: &Value, selector: &str) -> bool {
    selector.split(',').filter(|s| !s.is_empty()).all(|term| {
        let (path, want, equal) = if let Some((k, v)) = term.split_once("!=") {
            (k, v, false)
        } else if let Some((k, v)) = term.split_once('=') {
            (k, v.trim_start_matches('='), true)
        } else {
            return true;
        };
        let mut value = object;
        for part in path.trim().split('.') {
            value = &value[part];
        }
        let actual = match value {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        };
        (actual == want.trim()) == equal
    })
}

fn query_param(query: Option<&str>, key: &str) -> Option<String> {
    url::form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

fn flag(query: Option<&str>, key: &str) -> bool {
    query_param(query, key).is_some_and(|v| v == "true" || v == "1")
}

/// What a request is about, beyond method and path.
struct Call<'a> {
    method: &'a Method,
    path: &'a str,
    query: Option<&'a str>,
    content_type: &'a str,
    user_agent: &'a str,
    body: &'a [u8],
}

/// A handled request: an answer, or a watch to stream.
enum Outcome {
    Answer(Response),
    Watch(WatchSpec),
}

async fn handle(State(store): State<Arc<Mutex<Store>>>, request: Request) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let query = request.uri().query().map(str::to_string);
    let (content_type, user_agent) = {
        let header = |name: &str| {
            request
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        (header("content-type"), header("user-agent"))
    };
    let body: Bytes = axum::body::to_bytes(request.into_body(), 16 << 20)
        .await
        .unwrap_or_default();
    let (hook, delay) = {
        let mut store = store.lock().unwrap();
        store.log.push(format!("{method} {path}"));
        if store.unavailable {
            return status(
                503,
                "ServiceUnavailable",
                "the server is currently unable to handle the request".into(),
            );
        }
        (store.hook.clone(), store.delay)
    };
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    if let Some(code) = hook.and_then(|h| h(method.as_str(), &path, &user_agent)) {
        let reason = match code {
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "NotFound",
            409 => "Conflict",
            429 => "TooManyRequests",
            500 => "InternalError",
            503 => "ServiceUnavailable",
            504 => "Timeout",
            _ => "Unknown",
        };
        return status(
            code,
            reason,
            format!("injected failure for {method} {path}"),
        );
    }
    let call = Call {
        method: &method,
        path: &path,
        query: query.as_deref(),
        content_type: &content_type,
        user_agent: &user_agent,
        body: &body,
    };
    let outcome = {
        let mut guard = store.lock().unwrap();
        dispatch(&mut guard, &call)
    };
    match outcome {
        Outcome::Answer(response) => response,
        Outcome::Watch(spec) => start_watch(store, spec),
    }
}

fn dispatch(store: &mut Store, call: &Call) -> Outcome {
    let Some(target) = parse(call.path) else {
        return Outcome::Answer(status(
            404,
            "NotFound",
            "the server could not find the requested resource".into(),
        ));
    };
    let collection = target.collection();
    let answer = match (call.method.clone(), target.name.clone()) {
        (Method::GET, None) if flag(call.query, "watch") => {
            return Outcome::Watch(watch_spec(store, &target, call.query));
        }
        (Method::GET, None) => list(store, &target, call.query),
        (Method::GET, Some(name)) => {
            if kind_of(&collection) == "Restore" {
                progress_restore(store, &collection, &name);
            }
            if kind_of(&collection) == "Pod" && name == PROBE_POD {
                run_probe(store, &collection);
            }
            match store.objects.get(&collection).and_then(|c| c.get(&name)) {
                Some(o) => ok(StatusCode::OK, o.clone()),
                None => not_found(&target, &name),
            }
        }
        (Method::POST, None) if !target.all_namespaces() || !namespaced(&target.plural) => {
            create(store, &target, call)
        }
        (Method::PUT, Some(name)) => replace(store, &target, &name, call),
        (Method::PATCH, Some(name)) => patch(store, &target, &name, call),
        (Method::DELETE, Some(name)) if !target.status => match store.delete(&collection, &name) {
            Some(object) => ok(StatusCode::OK, object),
            None => not_found(&target, &name),
        },
        (method, _) => status(
            405,
            "MethodNotAllowed",
            format!("the server does not allow this method on the requested resource: {method}"),
        ),
    };
    Outcome::Answer(answer)
}

/// The objects in a list or watch scope that match its selectors.
fn selected<'a>(
    store: &'a Store,
    target: &'a Target,
    query: Option<&str>,
) -> Vec<(&'a String, &'a Value)> {
    let labels = query_param(query, "labelSelector").unwrap_or_default();
    let fields = query_param(query, "fieldSelector").unwrap_or_default();
    store
        .objects
        .iter()
        .filter(|(path, _)| target.covers(path))
        .flat_map(|(path, c)| c.values().map(move |o| (path, o)))
        .filter(|(_, o)| matches(&o["metadata"]["labels"], &labels) && fields_match(o, &fields))
        .collect()
}

fn list(store: &Store, target: &Target, query: Option<&str>) -> Response {
    let items: Vec<Value> = selected(store, target, query)
        .into_iter()
        .map(|(_, o)| o.clone())
        .collect();
    ok(
        StatusCode::OK,
        json!({
            "kind": format!("{}List", kind_of(&target.plural)),
            "apiVersion": target.api_version(),
            "metadata": {"resourceVersion": store.next_version.to_string()},
            "items": items,
        }),
    )
}

/// The field manager of a non-apply write: `fieldManager`, else the user
/// agent's program name (the real server's default), else "unknown".
fn update_manager(call: &Call) -> String {
    query_param(call.query, "fieldManager")
        .filter(|m| !m.is_empty())
        .or_else(|| {
            let program = call.user_agent.split('/').next().unwrap_or("").trim();
            (!program.is_empty()).then(|| program.to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn create(store: &mut Store, target: &Target, call: &Call) -> Response {
    let collection = target.collection();
    let Ok(mut object) = serde_json::from_slice::<Value>(call.body) else {
        return status(
            400,
            "BadRequest",
            "the body of the request was in an unknown format".into(),
        );
    };
    if !object.is_object() {
        return status(
            400,
            "BadRequest",
            "the body of the request was in an unknown format".into(),
        );
    }
    let Some(name) = object["metadata"]["name"].as_str().map(str::to_string) else {
        let kind = kind_of(&collection);
        return status(
            422,
            "Invalid",
            format!(
                "{kind} \"\" is invalid: metadata.name: Required value: name or generateName is required"
            ),
        );
    };
    if store
        .objects
        .get(&collection)
        .is_some_and(|c| c.contains_key(&name))
    {
        let mut details = json!({"name": name, "kind": target.plural});
        if !target.group().is_empty() {
            details["group"] = json!(target.group());
        }
        return status_with(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", target.qualified()),
            details,
        );
    }
    if CUSTOM_WITH_STATUS.contains(&target.plural.as_str())
        && let Some(map) = object.as_object_mut()
    {
        map.remove("status");
    }
    if let Some(meta) = object["metadata"].as_object_mut() {
        for key in [
            "resourceVersion",
            "uid",
            "creationTimestamp",
            "generation",
            "managedFields",
        ] {
            meta.remove(key);
        }
    }
    if kind_of(&collection) == "Restore" {
        object["status"] = json!({"phase": "InProgress", "startTimestamp": now_rfc3339()});
    }
    if kind_of(&collection) == "Pod" {
        object["status"] = json!({"phase": "Pending"});
    }
    let manager = update_manager(call);
    let object = commit(store, target, &name, None, object, Some(&manager));
    ok(StatusCode::CREATED, object)
}

/// Store a write through the API: immutable metadata kept from `old`, the
/// next resourceVersion, generation bumped when the spec changed, managed
/// fields updated for an Update by `manager` (an apply tracks its own),
/// and a watch event.
fn commit(
    store: &mut Store,
    target: &Target,
    name: &str,
    old: Option<&Value>,
    mut new: Value,
    manager: Option<&str>,
) -> Value {
    let collection = target.collection();
    let version = store.bump();
    if !new["metadata"].is_object() {
        new["metadata"] = json!({});
    }
    new["metadata"]["name"] = json!(name);
    if let Some(ns) = &target.namespace {
        new["metadata"]["namespace"] = json!(ns);
    }
    match old {
        Some(old) => {
            for key in ["uid", "creationTimestamp"] {
                new["metadata"][key] = old["metadata"][key].clone();
            }
            let generation = old["metadata"]["generation"].as_i64().unwrap_or(1);
            let bumped = spec_part(old) != spec_part(&new);
            new["metadata"]["generation"] = json!(generation + i64::from(bumped));
        }
        None => {
            new["metadata"]["uid"] = json!(uid(version));
            new["metadata"]["creationTimestamp"] = json!(now_rfc3339());
            new["metadata"]["generation"] = json!(1);
        }
    }
    new["metadata"]["resourceVersion"] = json!(version.to_string());
    if new["apiVersion"].is_null() {
        new["apiVersion"] = json!(target.api_version());
    }
    if new["kind"].is_null() {
        new["kind"] = json!(kind_of(&collection));
    }
    if let Some(manager) = manager {
        track_update(old, &mut new, manager, target);
    }
    if new["metadata"]["managedFields"]
        .as_array()
        .is_some_and(Vec::is_empty)
    {
        new["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("managedFields");
    }
    store
        .objects
        .entry(collection.clone())
        .or_default()
        .insert(name.to_string(), new.clone());
    let kind = if old.is_some() { "MODIFIED" } else { "ADDED" };
    store.record(&collection, kind, new.clone(), old.cloned());
    new
}

/// What `generation` follows: everything but metadata and status.
fn spec_part(object: &Value) -> Value {
    let mut copy = object.clone();
    if let Some(map) = copy.as_object_mut() {
        for key in ["metadata", "status", "apiVersion", "kind"] {
            map.remove(key);
        }
    }
    copy
}

/// The new object of a main-resource or `/status` write: with a status
/// subresource, a main write keeps the stored status and a status write
/// changes nothing else.
fn scoped(target: &Target, old: &Value, mut new: Value) -> Value {
    if target.status {
        let mut kept = old.clone();
        kept["status"] = new["status"].take();
        if kept["status"].is_null() {
            kept.as_object_mut().unwrap().remove("status");
        }
        return kept;
    }
    if has_status(&target.plural) {
        match old.get("status") {
            Some(s) => new["status"] = s.clone(),
            None => {
                if let Some(map) = new.as_object_mut() {
                    map.remove("status");
                }
            }
        }
    }
    new["metadata"]["managedFields"] = old["metadata"]["managedFields"].clone();
    new
}

fn conflict(target: &Target, name: &str) -> Response {
    let mut details = json!({"name": name, "kind": target.plural});
    if !target.group().is_empty() {
        details["group"] = json!(target.group());
    }
    status_with(
        409,
        "Conflict",
        format!(
            "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; \
             please apply your changes to the latest version and try again",
            target.qualified()
        ),
        details,
    )
}

fn replace(store: &mut Store, target: &Target, name: &str, call: &Call) -> Response {
    let collection = target.collection();
    let Ok(body) = serde_json::from_slice::<Value>(call.body) else {
        return status(
            400,
            "BadRequest",
            "the body of the request was in an unknown format".into(),
        );
    };
    let Some(old) = store
        .objects
        .get(&collection)
        .and_then(|c| c.get(name))
        .cloned()
    else {
        return not_found(target, name);
    };
    if let Some(body_name) = body["metadata"]["name"].as_str()
        && body_name != name
    {
        return status(
            400,
            "BadRequest",
            format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            ),
        );
    }
    let wanted = body["metadata"]["resourceVersion"].as_str().unwrap_or("");
    if !wanted.is_empty() && wanted != old["metadata"]["resourceVersion"].as_str().unwrap_or("") {
        return conflict(target, name);
    }
    let mut new = scoped(target, &old, body);
    new["metadata"]["managedFields"] = old["metadata"]["managedFields"].clone();
    let manager = update_manager(call);
    let object = commit(store, target, name, Some(&old), new, Some(&manager));
    ok(StatusCode::OK, object)
}

fn patch(store: &mut Store, target: &Target, name: &str, call: &Call) -> Response {
    let collection = target.collection();
    let media = call
        .content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let old = store
        .objects
        .get(&collection)
        .and_then(|c| c.get(name))
        .cloned();
    if media == "application/apply-patch+yaml" {
        return apply(store, target, name, old, call);
    }
    let Some(old) = old else {
        return not_found(target, name);
    };
    let mut new = old.clone();
    match media.as_str() {
        "application/merge-patch+json" | "application/strategic-merge-patch+json" => {
            let Ok(patch) = serde_json::from_slice::<Value>(call.body) else {
                return status(
                    400,
                    "BadRequest",
                    "the body of the request was in an unknown format".into(),
                );
            };
            if media.starts_with("application/merge") {
                json_patch::merge(&mut new, &patch);
            } else {
                strategic_merge(&mut new, &patch);
            }
        }
        "application/json-patch+json" => {
            let Ok(ops) = serde_json::from_slice::<json_patch::Patch>(call.body) else {
                return status(
                    400,
                    "BadRequest",
                    "the body of the request was in an unknown format".into(),
                );
            };
            if let Err(e) = json_patch::patch(&mut new, &ops) {
                // The real server answers any failed JSON patch with 422.
                return status(422, "Invalid", e.to_string());
            }
        }
        other => {
            return status(
                415,
                "UnsupportedMediaType",
                format!(
                    "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml; got {other}"
                ),
            );
        }
    }
    // resourceVersion in a patch is a precondition too.
    let wanted = new["metadata"]["resourceVersion"].as_str().unwrap_or("");
    if !wanted.is_empty() && wanted != old["metadata"]["resourceVersion"].as_str().unwrap_or("") {
        return conflict(target, name);
    }
    let new = scoped(target, &old, new);
    let manager = update_manager(call);
    let object = commit(store, target, name, Some(&old), new, Some(&manager));
    ok(StatusCode::OK, object)
}

/// Strategic merge patch, simplified: RFC 7386 merge, except that lists of
/// objects that all have a `name` are merged by name (`$patch: delete`
/// removes one).
fn strategic_merge(doc: &mut Value, patch: &Value) {
    let Some(patch_map) = patch.as_object() else {
        *doc = patch.clone();
        return;
    };
    if !doc.is_object() {
        *doc = json!({});
    }
    let map = doc.as_object_mut().unwrap();
    for (key, value) in patch_map {
        if key.starts_with("$setElementOrder") || key == "$retainKeys" {
            continue;
        }
        match value {
            Value::Null => {
                map.remove(key);
            }
            Value::Object(_) => {
                strategic_merge(map.entry(key.clone()).or_insert(Value::Null), value)
            }
            Value::Array(items)
                if named_list(items)
                    && map
                        .get(key)
                        .is_some_and(|v| v.as_array().is_some_and(|a| named_list(a))) =>
            {
                let current = map.get_mut(key).unwrap().as_array_mut().unwrap();
                for item in items {
                    let name = &item["name"];
                    let position = current.iter().position(|c| c["name"] == *name);
                    if item["$patch"] == "delete" {
                        if let Some(i) = position {
                            current.remove(i);
                        }
                        continue;
                    }
                    match position {
                        Some(i) => strategic_merge(&mut current[i], item),
                        None => current.push(item.clone()),
                    }
                }
            }
            other => {
                map.insert(key.clone(), other.clone());
            }
        }
    }
}

fn named_list(items: &[Value]) -> bool {
    !items.is_empty() && items.iter().all(|i| i["name"].is_string())
}

// ---- managed fields -------------------------------------------------------

type FieldPath = Vec<String>;

/// One `metadata.managedFields` entry.
#[derive(Clone, Debug)]
struct Managed {
    manager: String,
    operation: String,
    api_version: String,
    time: String,
    subresource: Option<String>,
    fields: BTreeSet<FieldPath>,
}

impl Managed {
    fn is(&self, manager: &str, operation: &str, subresource: Option<&str>) -> bool {
        self.manager == manager
            && self.operation == operation
            && self.subresource.as_deref() == subresource
    }

    /// How the real server names a manager in a conflict.
    fn printed(&self) -> String {
        let mut text = format!("{:?}", self.manager);
        if let Some(sub) = &self.subresource {
            text = format!("{text} with subresource {sub:?}");
        }
        if self.operation == "Update" {
            text = format!("{text} using {}", self.api_version);
        }
        text
    }

    fn to_json(&self) -> Value {
        let mut entry = json!({
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
            "time": self.time,
            "fieldsType": "FieldsV1",
            "fieldsV1": fields_v1(&self.fields),
        });
        if let Some(sub) = &self.subresource {
            entry["subresource"] = json!(sub);
        }
        entry
    }
}

fn read_managed(object: &Value) -> Vec<Managed> {
    object["metadata"]["managedFields"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .map(|e| Managed {
                    manager: e["manager"].as_str().unwrap_or("").to_string(),
                    operation: e["operation"].as_str().unwrap_or("Update").to_string(),
                    api_version: e["apiVersion"].as_str().unwrap_or("").to_string(),
                    time: e["time"].as_str().unwrap_or("").to_string(),
                    subresource: e["subresource"].as_str().map(str::to_string),
                    fields: paths_of_fields_v1(&e["fieldsV1"]),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn write_managed(object: &mut Value, entries: Vec<Managed>) {
    let entries: Vec<Value> = entries
        .iter()
        .filter(|e| !e.fields.is_empty())
        .map(Managed::to_json)
        .collect();
    object["metadata"]["managedFields"] = Value::Array(entries);
}

/// `{"f:spec":{"f:holderIdentity":{}}}` for `[["spec","holderIdentity"]]`.
fn fields_v1(paths: &BTreeSet<FieldPath>) -> Value {
    let mut root = Map::new();
    for path in paths {
        let mut node = &mut root;
        for segment in path {
            let key = if segment.starts_with("k:")
                || segment.starts_with("v:")
                || segment.starts_with("i:")
            {
                segment.clone()
            } else {
                format!("f:{segment}")
            };
            node = node
                .entry(key)
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .unwrap();
        }
    }
    Value::Object(root)
}

fn paths_of_fields_v1(fields: &Value) -> BTreeSet<FieldPath> {
    fn walk(node: &Value, prefix: &mut FieldPath, out: &mut BTreeSet<FieldPath>) {
        let children: Vec<(&String, &Value)> = node
            .as_object()
            .map(|m| m.iter().filter(|(k, _)| k.as_str() != ".").collect())
            .unwrap_or_default();
        if children.is_empty() {
            if !prefix.is_empty() {
                out.insert(prefix.clone());
            }
            return;
        }
        for (key, child) in children {
            prefix.push(key.strip_prefix("f:").unwrap_or(key).to_string());
            walk(child, prefix, out);
            prefix.pop();
        }
    }
    let mut out = BTreeSet::new();
    walk(fields, &mut Vec::new(), &mut out);
    out
}

/// The leaf paths a write sets: everything but apiVersion, kind and the
/// server's metadata; only `status` for a status write; no `status` for a
/// main write of a kind with a status subresource.
fn tracked(object: &Value, target: &Target) -> BTreeSet<FieldPath> {
    fn leaves(value: &Value, prefix: &mut FieldPath, out: &mut BTreeSet<FieldPath>) {
        match value.as_object() {
            Some(map) if !map.is_empty() => {
                for (key, child) in map {
                    prefix.push(key.clone());
                    leaves(child, prefix, out);
                    prefix.pop();
                }
            }
            _ => {
                if !value.is_null() {
                    out.insert(prefix.clone());
                }
            }
        }
    }
    let mut out = BTreeSet::new();
    let Some(map) = object.as_object() else {
        return out;
    };
    for (key, value) in map {
        let wanted = match key.as_str() {
            "apiVersion" | "kind" => false,
            "status" => target.status || !has_status(&target.plural),
            _ => !target.status,
        };
        if !wanted {
            continue;
        }
        if key == "metadata" {
            for meta in ["labels", "annotations", "ownerReferences", "finalizers"] {
                if let Some(v) = value.get(meta) {
                    leaves(v, &mut vec!["metadata".into(), meta.into()], &mut out);
                }
            }
            continue;
        }
        leaves(value, &mut vec![key.clone()], &mut out);
    }
    out
}

fn get_path<'a>(value: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, key| v.get(key.as_str()))
}

fn remove_path(value: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut node = value;
    for key in parents {
        match node.get_mut(key.as_str()) {
            Some(next) => node = next,
            None => return,
        }
    }
    if let Some(map) = node.as_object_mut() {
        map.remove(last);
    }
}

/// Whether one path is a prefix of the other.
fn overlaps(a: &[String], b: &[String]) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

fn path_string(path: &[String]) -> String {
    path.iter().map(|s| format!(".{s}")).collect()
}

/// Managed fields after an Update by `manager`: it takes the fields it
/// changed from whoever had them; fields gone from the object are owned by
/// nobody.
fn track_update(old: Option<&Value>, new: &mut Value, manager: &str, target: &Target) {
    let mut entries = old.map(read_managed).unwrap_or_default();
    let before = old.map(|o| tracked(o, target)).unwrap_or_default();
    let after = tracked(new, target);
    let changed: BTreeSet<FieldPath> = after
        .iter()
        .filter(|p| old.and_then(|o| get_path(o, p)) != get_path(new, p))
        .cloned()
        .collect();
    let removed: BTreeSet<FieldPath> = before.difference(&after).cloned().collect();
    for entry in &mut entries {
        entry
            .fields
            .retain(|p| !changed.contains(p) && !removed.contains(p) && get_path(new, p).is_some());
    }
    let subresource = target.status.then_some("status");
    if !changed.is_empty() {
        let position = entries
            .iter()
            .position(|e| e.is(manager, "Update", subresource));
        let entry = match position {
            Some(i) => &mut entries[i],
            None => {
                entries.push(Managed {
                    manager: manager.to_string(),
                    operation: "Update".into(),
                    api_version: target.api_version(),
                    time: String::new(),
                    subresource: subresource.map(str::to_string),
                    fields: BTreeSet::new(),
                });
                entries.last_mut().unwrap()
            }
        };
        entry.fields.extend(changed);
        entry.time = now_rfc3339();
        entry.api_version = target.api_version();
    }
    write_managed(new, entries);
}

/// Merge an applied configuration into an object: maps merge, anything
/// else replaces, null removes.
fn merge_applied(doc: &mut Value, config: &Value) {
    let Some(config) = config.as_object() else {
        *doc = config.clone();
        return;
    };
    if !doc.is_object() {
        *doc = json!({});
    }
    let map = doc.as_object_mut().unwrap();
    for (key, value) in config {
        match value {
            Value::Null => {
                map.remove(key);
            }
            Value::Object(_) => merge_applied(map.entry(key.clone()).or_insert(Value::Null), value),
            other => {
                map.insert(key.clone(), other.clone());
            }
        }
    }
}

/// Server-side apply.
fn apply(
    store: &mut Store,
    target: &Target,
    name: &str,
    old: Option<Value>,
    call: &Call,
) -> Response {
    let Some(manager) = query_param(call.query, "fieldManager").filter(|m| !m.is_empty()) else {
        return status(
            400,
            "BadRequest",
            "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch".into(),
        );
    };
    let force = flag(call.query, "force");
    let Ok(config) = serde_json::from_slice::<Value>(call.body) else {
        return status(
            400,
            "BadRequest",
            "error decoding YAML: the fake API server takes JSON apply bodies only".into(),
        );
    };
    if config["apiVersion"].as_str().is_none_or(str::is_empty)
        || config["kind"].as_str().is_none_or(str::is_empty)
    {
        return status(400, "BadRequest", "invalid object type: /, Kind=".into());
    }
    if let Some(config_name) = config["metadata"]["name"].as_str()
        && config_name != name
    {
        return status(
            400,
            "BadRequest",
            format!(
                "the name of the object ({config_name}) does not match the name on the URL ({name})"
            ),
        );
    }
    if old.is_none() && target.status {
        return not_found(target, name);
    }
    let subresource = target.status.then_some("status");
    let applied = tracked(&config, target);
    let mut entries = old.as_ref().map(read_managed).unwrap_or_default();
    let live = old.clone().unwrap_or(Value::Null);

    // Conflicts: fields another manager owns whose value would change.
    let mut conflicts: Vec<(usize, FieldPath)> = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        if entry.is(&manager, "Apply", subresource) {
            continue;
        }
        for owned in &entry.fields {
            for path in &applied {
                if overlaps(owned, path) && get_path(&live, path) != get_path(&config, path) {
                    let shown = if owned.len() >= path.len() {
                        owned
                    } else {
                        path
                    };
                    if !conflicts.iter().any(|(j, p)| *j == i && p == shown) {
                        conflicts.push((i, shown.clone()));
                    }
                }
            }
        }
    }
    if !conflicts.is_empty() && !force {
        return apply_conflict(&entries, &conflicts);
    }
    for (i, path) in &conflicts {
        entries[*i].fields.retain(|owned| !overlaps(owned, path));
    }

    // The new object: the live one, minus what this manager applied before
    // and no longer does (unless someone else owns it), plus the config.
    let mut new = old.clone().unwrap_or_else(|| json!({"metadata": {}}));
    let mine = entries
        .iter()
        .position(|e| e.is(&manager, "Apply", subresource));
    if let Some(i) = mine {
        let dropped: Vec<FieldPath> = entries[i].fields.difference(&applied).cloned().collect();
        for path in dropped {
            let shared = entries
                .iter()
                .enumerate()
                .any(|(j, e)| j != i && e.fields.iter().any(|p| overlaps(p, &path)));
            if !shared {
                remove_path(&mut new, &path);
            }
        }
    }
    let mut filtered = config.clone();
    if let Some(map) = filtered.as_object_mut() {
        if target.status {
            map.retain(|k, _| k == "status");
        } else if has_status(&target.plural) {
            map.remove("status");
        }
        if let Some(meta) = map.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.retain(|k, _| {
                matches!(
                    k.as_str(),
                    "labels" | "annotations" | "ownerReferences" | "finalizers"
                )
            });
        }
    }
    merge_applied(&mut new, &filtered);
    match mine {
        Some(i) => {
            entries[i].fields = applied;
            entries[i].time = now_rfc3339();
        }
        None => entries.push(Managed {
            manager: manager.clone(),
            operation: "Apply".into(),
            api_version: target.api_version(),
            time: now_rfc3339(),
            subresource: subresource.map(str::to_string),
            fields: applied,
        }),
    }
    for entry in &mut entries {
        entry.fields.retain(|p| get_path(&new, p).is_some());
    }
    write_managed(&mut new, entries);
    let created = old.is_none();
    let object = commit(store, target, name, old.as_ref(), new, None);
    ok(
        if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        object,
    )
}

/// The real server's apply conflict: 409 Conflict, one
/// `FieldManagerConflict` cause per field.
fn apply_conflict(entries: &[Managed], conflicts: &[(usize, FieldPath)]) -> Response {
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|(i, path)| {
            json!({
                "reason": "FieldManagerConflict",
                "message": format!("conflict with {}", entries[*i].printed()),
                "field": path_string(path),
            })
        })
        .collect();
    let message = if let [(i, path)] = conflicts {
        format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            entries[*i].printed(),
            path_string(path)
        )
    } else {
        let mut by_manager: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (i, path) in conflicts {
            by_manager
                .entry(entries[*i].printed())
                .or_default()
                .push(path_string(path));
        }
        let mut lines = Vec::new();
        for (manager, paths) in by_manager {
            lines.push(format!("conflicts with {manager}:"));
            lines.extend(paths.into_iter().map(|p| format!("- {p}")));
        }
        format!(
            "Apply failed with {} conflicts: {}",
            conflicts.len(),
            lines.join("\n")
        )
    };
    status_with(409, "Conflict", message, json!({"causes": causes}))
}

// ---- watch ----------------------------------------------------------------

/// A watch, as set up under the store's lock.
struct WatchSpec {
    target: Target,
    labels: String,
    fields: String,
    bookmarks: bool,
    timeout: Duration,
    /// Lines to send first (initial events, history, or the 410 error).
    backlog: Vec<Bytes>,
    /// The stream ends after the backlog (410).
    expired: bool,
    changes: broadcast::Receiver<Change>,
}

impl WatchSpec {
    /// The event this watch sends for a change, if any: a change into the
    /// selectors is ADDED, out of them DELETED (as the real server does).
    fn event(&self, change: &Change) -> Option<Bytes> {
        if !self.target.covers(&change.collection) {
            return None;
        }
        let selects = |o: &Value| {
            matches(&o["metadata"]["labels"], &self.labels) && fields_match(o, &self.fields)
        };
        let now = selects(&change.object);
        let before = change.previous.as_ref().map_or(now, selects);
        let kind = match (before, now) {
            (true, true) => change.kind,
            (false, true) => "ADDED",
            (true, false) => "DELETED",
            (false, false) => return None,
        };
        Some(line(kind, change.object.clone()))
    }

    fn bookmark(&self, version: u64, initial_end: bool) -> Bytes {
        let mut metadata = json!({"resourceVersion": version.to_string()});
        if initial_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        line(
            "BOOKMARK",
            json!({
                "kind": kind_of(&self.target.plural),
                "apiVersion": self.target.api_version(),
                "metadata": metadata,
            }),
        )
    }
}

fn line(kind: &str, object: Value) -> Bytes {
    let mut text = json!({"type": kind, "object": object}).to_string();
    text.push('\n');
    Bytes::from(text)
}

fn expired_line(asked: u64, oldest: u64) -> Bytes {
    line(
        "ERROR",
        status_body(
            410,
            "Expired",
            format!("too old resource version: {asked} ({oldest})"),
            None,
        ),
    )
}

fn watch_spec(store: &Store, target: &Target, query: Option<&str>) -> WatchSpec {
    let timeout = query_param(query, "timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .filter(|t| *t > 0)
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(1800));
    let mut spec = WatchSpec {
        target: target.clone(),
        labels: query_param(query, "labelSelector").unwrap_or_default(),
        fields: query_param(query, "fieldSelector").unwrap_or_default(),
        bookmarks: flag(query, "allowWatchBookmarks"),
        timeout,
        backlog: Vec::new(),
        expired: false,
        changes: store.changes.subscribe(),
    };
    let from = query_param(query, "resourceVersion").unwrap_or_default();
    let initial = flag(query, "sendInitialEvents");
    if from.is_empty() || from == "0" || initial {
        // Start now, with a synthetic ADDED for each existing object.
        for (_, object) in selected(store, target, query) {
            spec.backlog.push(line("ADDED", object.clone()));
        }
        if initial && spec.bookmarks {
            spec.backlog.push(spec.bookmark(store.next_version, true));
        }
        return spec;
    }
    let Ok(from) = from.parse::<u64>() else {
        spec.backlog.push(line(
            "ERROR",
            status_body(
                400,
                "BadRequest",
                format!("invalid resource version: {from}"),
                None,
            ),
        ));
        spec.expired = true;
        return spec;
    };
    if from < store.floor {
        spec.backlog.push(expired_line(from, store.floor));
        spec.expired = true;
        return spec;
    }
    let replay: Vec<Bytes> = store
        .history
        .iter()
        .filter(|c| c.version > from)
        .filter_map(|c| spec.event(c))
        .collect();
    spec.backlog = replay;
    spec
}

/// A response body fed from a channel.
struct ChannelBody(mpsc::Receiver<Bytes>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|b| Ok(hyper::body::Frame::data(b))))
    }
}

fn start_watch(store: Arc<Mutex<Store>>, spec: WatchSpec) -> Response {
    let (out, body) = mpsc::channel::<Bytes>(256);
    tokio::spawn(pump(store, spec, out));
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        axum::body::Body::new(ChannelBody(body)),
    )
        .into_response()
}

async fn pump(store: Arc<Mutex<Store>>, mut spec: WatchSpec, out: mpsc::Sender<Bytes>) {
    for chunk in std::mem::take(&mut spec.backlog) {
        if out.send(chunk).await.is_err() {
            return;
        }
    }
    if spec.expired {
        return;
    }
    let deadline = tokio::time::Instant::now() + spec.timeout;
    let mut ticks =
        tokio::time::interval_at(tokio::time::Instant::now() + BOOKMARK_EVERY, BOOKMARK_EVERY);
    loop {
        let chunks: Vec<Bytes> = tokio::select! {
            _ = tokio::time::sleep_until(deadline) => return,
            _ = out.closed() => return,
            change = spec.changes.recv() => match change {
                Ok(change) => match spec.event(&change) {
                    Some(event) => vec![event],
                    None => continue,
                },
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let (floor, now) = {
                        let store = store.lock().unwrap();
                        (store.floor, store.next_version)
                    };
                    let _ = out.send(expired_line(floor, now)).await;
                    return;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = ticks.tick(), if spec.bookmarks => {
                // Under the lock every change up to the current version is
                // already in the channel: drain it, then bookmark.
                let mut chunks = Vec::new();
                let version = {
                    let store = store.lock().unwrap();
                    while let Ok(change) = spec.changes.try_recv() {
                        chunks.extend(spec.event(&change));
                    }
                    store.next_version
                };
                chunks.push(spec.bookmark(version, false));
                chunks
            }
        };
        for chunk in chunks {
            if out.send(chunk).await.is_err() {
                return;
            }
        }
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
    store.touch(collection, name);
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
        store.put(
            &format!("/apis/apps/v1/namespaces/{ns}/deployments"),
            deployment,
        );
        store.put(&format!("/api/v1/namespaces/{ns}/pods"), pod);
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
    store.touch(collection, PROBE_POD);
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
