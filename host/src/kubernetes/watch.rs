//! The watchers behind `vantage daemon --kubernetes`: kube-runtime
//! reflectors keep every `Check` and `RestoreTest` in scope (its own
//! namespace, a list, or the namespaces a label selector picks), and each
//! change (debounced) becomes a new list of [`Fragment`]s, with the Secrets
//! and ConfigMaps the resources name read at that moment. A resync every
//! minute picks up changed Secrets.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::api::{Api, ResourceExt};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt as _, watcher};
use kube::{Client, Resource};
use sha2::{Digest, Sha256};
use tokio::sync::{Notify, watch};
use tracing::{info, warn};

use super::crd::{Check, KeyRef, RestoreTest};
use super::render::{self, Fragment, Kind, ResourceId};
use crate::config::HeldSecret;
use crate::pace::AbortOnDrop;

/// Which namespaces' resources the daemon runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// These namespaces (default: the daemon's own).
    Namespaces(Vec<String>),
    /// Every namespace whose labels match this selector (`team=web`).
    Selector(String),
}

/// The resources in scope, kept current.
pub struct Watch {
    /// The latest fragments (`None` until the first full list).
    pub fragments: watch::Receiver<Option<Arc<Vec<Fragment>>>>,
    _tasks: Vec<AbortOnDrop<()>>,
}

/// How long to wait for more changes before rebuilding.
const DEBOUNCE: Duration = Duration::from_millis(200);
/// How often everything is rebuilt anyway (Secrets are not watched).
const RESYNC: Duration = Duration::from_secs(60);
/// How long the first list of each watched collection is waited for; one
/// that cannot be listed (no such namespace, no RoleBinding) does not hold
/// up the others.
const FIRST_LIST: Duration = Duration::from_secs(20);

impl Watch {
    /// Start watching `scope`; ConfigMap components are written under
    /// `dir`.
    pub fn start(client: Client, scope: Scope, dir: PathBuf) -> Watch {
        let notify = Arc::new(Notify::new());
        let mut tasks = Vec::new();
        let mut checks = Vec::new();
        let mut restores = Vec::new();
        let mut namespaces = None;
        match &scope {
            Scope::Namespaces(list) => {
                for ns in list {
                    checks.push(reflect(
                        Api::<Check>::namespaced(client.clone(), ns),
                        &notify,
                        &mut tasks,
                    ));
                    restores.push(reflect(
                        Api::<RestoreTest>::namespaced(client.clone(), ns),
                        &notify,
                        &mut tasks,
                    ));
                }
            }
            Scope::Selector(selector) => {
                checks.push(reflect(
                    Api::<Check>::all(client.clone()),
                    &notify,
                    &mut tasks,
                ));
                restores.push(reflect(
                    Api::<RestoreTest>::all(client.clone()),
                    &notify,
                    &mut tasks,
                ));
                namespaces = Some((
                    reflect_with(
                        Api::<Namespace>::all(client.clone()),
                        watcher::Config::default().labels(selector),
                        &notify,
                        &mut tasks,
                    ),
                    selector.clone(),
                ));
            }
        }
        let (tx, rx) = watch::channel(None);
        let mut build = Build {
            client,
            dir,
            checks,
            restores,
            namespaces,
            last: BTreeMap::new(),
        };
        tasks.push(AbortOnDrop(tokio::spawn(async move {
            build.ready().await;
            let mut sent: Option<Vec<Fragment>> = None;
            loop {
                let fragments = build.fragments().await;
                // A resync that finds nothing new is no change.
                if sent.as_ref() != Some(&fragments) {
                    info!(
                        resources = fragments.len(),
                        "kubernetes: resources in scope"
                    );
                    sent = Some(fragments.clone());
                    if tx.send(Some(Arc::new(fragments))).is_err() {
                        return;
                    }
                }
                let _ = tokio::time::timeout(RESYNC, notify.notified()).await;
                // Let a burst of changes settle into one rebuild.
                tokio::time::sleep(DEBOUNCE).await;
            }
        })));
        Watch {
            fragments: rx,
            _tasks: tasks,
        }
    }
}

/// A reflector over `api`, driven by its own task, waking `notify` on
/// every change.
fn reflect<K>(api: Api<K>, notify: &Arc<Notify>, tasks: &mut Vec<AbortOnDrop<()>>) -> Store<K>
where
    K: Resource + Clone + std::fmt::Debug + Send + Sync + serde::de::DeserializeOwned + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone + Send + Sync,
{
    reflect_with(api, watcher::Config::default(), notify, tasks)
}

fn reflect_with<K>(
    api: Api<K>,
    config: watcher::Config,
    notify: &Arc<Notify>,
    tasks: &mut Vec<AbortOnDrop<()>>,
) -> Store<K>
where
    K: Resource + Clone + std::fmt::Debug + Send + Sync + serde::de::DeserializeOwned + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone + Send + Sync,
{
    let (reader, writer) = reflector::store();
    let notify = notify.clone();
    let stream = reflector::reflector(writer, watcher(api, config).default_backoff());
    tasks.push(AbortOnDrop(tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            match event {
                Ok(
                    watcher::Event::Apply(_) | watcher::Event::Delete(_) | watcher::Event::InitDone,
                ) => {
                    notify.notify_one();
                }
                Ok(_) => {}
                Err(e) => warn!("kubernetes: watch: {e} (retrying)"),
            }
        }
    })));
    reader
}

/// What rebuilding the fragments reads from.
struct Build {
    client: Client,
    dir: PathBuf,
    checks: Vec<Store<Check>>,
    restores: Vec<Store<RestoreTest>>,
    namespaces: Option<(Store<Namespace>, String)>,
    /// Each resource's last fragment that read its Secrets and ConfigMaps,
    /// kept over a transient read error.
    last: BTreeMap<ResourceId, Fragment>,
}

impl Build {
    /// Wait for every store's first full list, at most [`FIRST_LIST`]; a
    /// store that cannot list is reported and joins when it can.
    async fn ready(&self) {
        let deadline = tokio::time::Instant::now() + FIRST_LIST;
        let mut late = 0;
        for s in &self.checks {
            late += usize::from(
                tokio::time::timeout_at(deadline, s.wait_until_ready())
                    .await
                    .is_err(),
            );
        }
        for s in &self.restores {
            late += usize::from(
                tokio::time::timeout_at(deadline, s.wait_until_ready())
                    .await
                    .is_err(),
            );
        }
        if let Some((s, _)) = &self.namespaces {
            late += usize::from(
                tokio::time::timeout_at(deadline, s.wait_until_ready())
                    .await
                    .is_err(),
            );
        }
        if late > 0 {
            warn!(
                "kubernetes: {late} watched collection(s) not listed within {FIRST_LIST:?} (a namespace that does not exist, or no RoleBinding?): running the others; the watch errors above say which"
            );
        }
    }

    /// Every resource in scope as a fragment, oldest first (the older of
    /// two resources with one name wins).
    async fn fragments(&mut self) -> Vec<Fragment> {
        let in_scope: Option<BTreeSet<String>> = self
            .namespaces
            .as_ref()
            .map(|(s, _)| s.state().iter().map(|n| n.name_any()).collect());
        let keep = |ns: &str| in_scope.as_ref().is_none_or(|set| set.contains(ns));
        let mut reads = Reads::new(self.client.clone(), &self.dir);
        let mut out: Vec<(Option<String>, Fragment)> = Vec::new();
        for check in self.checks.iter().flat_map(Store::state) {
            let ns = check.namespace().unwrap_or_default();
            if !keep(&ns) {
                continue;
            }
            let (fragment, transient) = reads.check(&check).await;
            out.push((
                created(&*check),
                keep_last(&mut self.last, fragment, transient),
            ));
        }
        for test in self.restores.iter().flat_map(Store::state) {
            let ns = test.namespace().unwrap_or_default();
            if !keep(&ns) {
                continue;
            }
            let (fragment, transient) = reads.restore(&test).await;
            out.push((
                created(&*test),
                keep_last(&mut self.last, fragment, transient),
            ));
        }
        out.sort_by(|a, b| (&a.0, &a.1.id).cmp(&(&b.0, &b.1.id)));
        out.into_iter().map(|(_, f)| f).collect()
    }
}

/// `fragment`, or, when reading its Secrets or ConfigMaps failed for a
/// passing reason (the API server busy, a timeout), the resource's last
/// good one at the same generation: a blip does not stop a check.
fn keep_last(
    last: &mut BTreeMap<ResourceId, Fragment>,
    fragment: Fragment,
    transient: bool,
) -> Fragment {
    if fragment.toml.is_ok() {
        last.insert(fragment.id.clone(), fragment.clone());
        return fragment;
    }
    match last.get(&fragment.id) {
        Some(previous) if transient => {
            let why = fragment.toml.as_ref().err().map_or("", String::as_str);
            warn!(resource = %fragment.id, "kubernetes: {why}; keeping what it was");
            previous.clone()
        }
        _ => fragment,
    }
}

fn created<K: Resource>(k: &K) -> Option<String> {
    k.meta()
        .creation_timestamp
        .as_ref()
        .map(|t| t.0.to_string())
}

fn id<K: Resource>(kind: Kind, k: &K) -> ResourceId {
    ResourceId {
        kind,
        namespace: k.meta().namespace.clone().unwrap_or_default(),
        name: k.meta().name.clone().unwrap_or_default(),
        generation: k.meta().generation,
    }
}

/// The Secrets and ConfigMaps read in one rebuild, each read once.
struct Reads<'a> {
    client: Client,
    dir: &'a Path,
    /// Whether a read for the current resource failed for a passing reason.
    transient: bool,
    secrets: Cache<Secret>,
    config_maps: Cache<ConfigMap>,
}

impl<'a> Reads<'a> {
    fn new(client: Client, dir: &'a Path) -> Self {
        Reads {
            client,
            dir,
            transient: false,
            secrets: BTreeMap::new(),
            config_maps: BTreeMap::new(),
        }
    }

    async fn check(&mut self, check: &Check) -> (Fragment, bool) {
        self.transient = false;
        let id = id(Kind::Check, check);
        let ns = id.namespace.clone();
        let mut secrets = BTreeMap::new();
        let toml = async {
            let component = match &check.spec.component_from {
                Some(from) => Some(self.component(&ns, &from.config_map_key_ref).await?),
                None => None,
            };
            for r in check.spec.secrets.values() {
                let value = self.secret(&ns, &r.secret_key_ref).await?;
                secrets.insert(render::placeholder(&ns, &r.secret_key_ref), value);
            }
            let secret = |r: &KeyRef| render::placeholder(&ns, r);
            render::check_table(&id.name, &check.spec, component.as_deref(), &secret)
                .map(|t| render::as_toml("check", t))
        }
        .await;
        (Fragment { id, toml, secrets }, self.transient)
    }

    async fn restore(&mut self, test: &RestoreTest) -> (Fragment, bool) {
        self.transient = false;
        let id = id(Kind::RestoreTest, test);
        let ns = id.namespace.clone();
        let mut secrets = BTreeMap::new();
        let toml = async {
            let mut components = BTreeMap::new();
            for c in &test.spec.checks {
                if let Some(from) = &c.check.component_from {
                    let path = self.component(&ns, &from.config_map_key_ref).await?;
                    components.insert(c.name.clone(), path);
                }
                for r in c.check.secrets.values() {
                    let value = self.secret(&ns, &r.secret_key_ref).await?;
                    secrets.insert(render::placeholder(&ns, &r.secret_key_ref), value);
                }
            }
            let secret = |r: &KeyRef| render::placeholder(&ns, r);
            render::restore_table(&id.name, &test.spec, &components, &secret)
                .map(|t| render::as_toml("restore", t))
        }
        .await;
        (Fragment { id, toml, secrets }, self.transient)
    }

    /// The value of a Secret's key (errors name the Secret and key).
    async fn secret(&mut self, ns: &str, r: &KeyRef) -> Result<HeldSecret, String> {
        let secret = get_once(&self.client, &mut self.secrets, "Secret", ns, &r.name)
            .await
            .map_err(|(e, passing)| {
                self.transient |= passing;
                e
            })?;
        let origin = format!("secretKeyRef {ns}/{}/{}", r.name, r.key);
        let bytes = secret
            .data
            .as_ref()
            .and_then(|d| d.get(&r.key))
            .map(|b| b.0.clone())
            .or_else(|| {
                secret
                    .string_data
                    .as_ref()
                    .and_then(|d| d.get(&r.key))
                    .map(|s| s.clone().into_bytes())
            })
            .ok_or_else(|| format!("Secret {ns}/{} has no key {:?}", r.name, r.key))?;
        let text = String::from_utf8(bytes)
            .map_err(|_| format!("Secret {ns}/{} key {:?} is not UTF-8 text", r.name, r.key))?;
        Ok(HeldSecret::new(origin, &text))
    }

    /// A ConfigMap key's bytes written to a file named by their sha256.
    async fn component(&mut self, ns: &str, r: &KeyRef) -> Result<PathBuf, String> {
        let cm = get_once(
            &self.client,
            &mut self.config_maps,
            "ConfigMap",
            ns,
            &r.name,
        )
        .await
        .map_err(|(e, passing)| {
            self.transient |= passing;
            e
        })?;
        let bytes = cm
            .binary_data
            .as_ref()
            .and_then(|d| d.get(&r.key))
            .map(|b| b.0.clone())
            .ok_or_else(|| {
                format!(
                    "ConfigMap {ns}/{} has no binaryData key {:?} (a component is binary: kubectl create configmap NAME --from-file=KEY=check.wasm)",
                    r.name, r.key
                )
            })?;
        let path = self
            .dir
            .join(format!("{}.wasm", hex::encode(Sha256::digest(&bytes))));
        if !path.exists() {
            std::fs::create_dir_all(self.dir)
                .and_then(|()| {
                    let tmp = path.with_extension("tmp");
                    std::fs::write(&tmp, &bytes)?;
                    std::fs::rename(&tmp, &path)
                })
                .map_err(|e| format!("writing the component of ConfigMap {ns}/{}: {e}", r.name))?;
        }
        Ok(path)
    }
}

/// Objects read once per rebuild, by (namespace, name); an error says
/// what failed and whether it may pass by itself.
type Cache<K> = BTreeMap<(String, String), Result<K, (String, bool)>>;

/// `kind` `name` of namespace `ns`, read at most once per rebuild.
async fn get_once<K>(
    client: &Client,
    cache: &mut Cache<K>,
    kind: &str,
    ns: &str,
    name: &str,
) -> Result<K, (String, bool)>
where
    K: Resource<Scope = kube::core::NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned,
    K::DynamicType: Default,
{
    let key = (ns.to_string(), name.to_string());
    if !cache.contains_key(&key) {
        let got = Api::<K>::namespaced(client.clone(), ns).get(name).await;
        let got = got.map_err(|e| (format!("{kind} {ns}/{name}: {}", short(&e)), passing(&e)));
        cache.insert(key.clone(), got);
    }
    cache[&key].clone()
}

/// Whether `e` may pass by itself (anything but the API server saying the
/// object is not there or not allowed).
fn passing(e: &kube::Error) -> bool {
    !matches!(e, kube::Error::Api(s) if matches!(s.code, 400..=499) && s.code != 429)
}

/// A kube error in one line, without the request's details.
fn short(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => s.message.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fragment(generation: i64, toml: Result<&str, &str>) -> Fragment {
        Fragment {
            id: ResourceId {
                kind: Kind::Check,
                namespace: "shop".into(),
                name: "api".into(),
                generation: Some(generation),
            },
            toml: toml.map(str::to_string).map_err(str::to_string),
            secrets: BTreeMap::new(),
        }
    }

    #[test]
    fn a_passing_read_error_keeps_the_last_good_table_of_the_same_generation() {
        let mut last = BTreeMap::new();
        let good = fragment(1, Ok("[[check]]"));
        assert_eq!(keep_last(&mut last, good.clone(), false), good);
        // The API server was busy: the check keeps running as it was.
        let busy = fragment(1, Err("Secret shop/api: 503"));
        assert_eq!(keep_last(&mut last, busy, true), good);
        // The Secret is gone (404): that is the resource's error.
        let gone = fragment(1, Err("Secret shop/api: not found"));
        assert_eq!(keep_last(&mut last, gone.clone(), false), gone);
        // A new generation has no good table yet: its error stands.
        let new = fragment(2, Err("Secret shop/api: 503"));
        assert_eq!(keep_last(&mut last, new.clone(), true), new);
    }
}
