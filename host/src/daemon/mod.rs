//! `vantage daemon`: runs every configured check on its schedule, forever,
//! and hands each result to the sinks.
//!
//! The flow is one way: [`config`] → [`plan`] and
//! [`scheduler`] → [`runtime`](crate::runtime) → [`RunRecord`](crate::result::RunRecord)
//! → [`sinks`](crate::sinks).
//!
//! - [`plan`]: when a check runs next (spread offsets, cron with time zones).
//! - [`scheduler`]: one task per check; overlap, concurrency, retries.
//! - [`state`]: the alerting state and its thresholds.
//! - [`restores`]: one task per restore test, and the janitor.
//!
//! What sinks receive is a [`RunRecord`](crate::result::RunRecord); the live
//! view of every check is the sinks' [`Board`].
//! - [`reload`]: SIGHUP and config-file watching.
//!
//! Threads: the scheduler, sinks and web server run on the caller's Tokio
//! runtime; guest code (every run, every compile and `describe`) runs on the
//! [`GuestPool`], so a check that computes flat out delays no timer and no
//! API request.
//!
//! Lifecycle: SIGHUP or a change of the configuration file reloads it (an
//! invalid file is rejected and the running configuration kept); SIGTERM or
//! SIGINT stop it gracefully (no new runs, runs in flight get
//! `shutdown_grace`, history flushed, alerts delivered).

/// The daemon in a Kubernetes cluster; without the `kubernetes` feature,
/// a stand-in that is never enabled.
#[cfg(feature = "kubernetes")]
pub mod cluster;
#[cfg(not(feature = "kubernetes"))]
#[path = "cluster_off.rs"]
pub mod cluster;
pub mod heartbeats;
pub mod plan;
pub mod reload;
/// Restore tests in the daemon; without the `restore` feature, an empty
/// stand-in (the configuration refuses `[[restore]]` and `[audit]` then).
#[cfg(feature = "restore")]
pub mod restores;
#[cfg(not(feature = "restore"))]
#[path = "restores_off.rs"]
pub mod restores;
pub mod scheduler;
#[cfg(test)]
mod scheduler_tests;
pub mod shard;
pub mod state;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context as _;
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::{error, info, warn};

use crate::config::{self, ComponentRef, Config, DEFAULT_LISTEN};
use crate::runtime::engine::EngineOptions;
use crate::runtime::pool::{GuestPool, low_lane_permits_for};
use crate::runtime::{LoadedCheck, Runtime};
use crate::sinks::Sinks;
use crate::sinks::alerts::{AlertConfig, Alerts};
use crate::sinks::history::{History, Retention};
use crate::sinks::metrics::Metrics;
use crate::sinks::remote_write::RemoteWrite;
use crate::sinks::web::{self, WebState};

use crate::sinks::board::Board;
use restores::{AuditLog, Janitor, RestoreTask};
use scheduler::{CheckTask, Prepared, Shared};

/// How the daemon is started (the command line).
#[derive(Debug, Clone)]
pub struct Options {
    /// The configuration file.
    pub config: PathBuf,
    /// HTTP address; overrides `global.listen`.
    pub listen: Option<SocketAddr>,
    /// Data directory (history); overrides `global.data_dir`.
    pub data_dir: Option<PathBuf>,
    /// Compiled-component cache directory, if any.
    pub cache_dir: Option<PathBuf>,
    /// Reload when the configuration file changes (SIGHUP always works).
    pub watch: bool,
    /// Resolve `oci://` tags the lock file does not pin (with a warning)
    /// instead of refusing them.
    pub re_resolve: bool,
    /// The compiler of the daemon's engine (Cranelift unless `--compiler`).
    pub compiler: crate::runtime::engine::Compiler,
    /// The location label, over `[global] location` (one configuration for
    /// every edge, each started with its own).
    pub location: Option<String>,
    /// This replica's share of the checks (`--shard i/n`), if sharded.
    pub shard: Option<shard::Shard>,
    /// Resources, Leases and leader election (`--kubernetes`,
    /// `--membership leases`, `--leader-elect`).
    pub cluster: cluster::ClusterOptions,
}

/// A check's component (or why it failed to load) and the sha256 of its
/// bytes, when they could be read.
type Loaded = (Result<Arc<LoadedCheck>, String>, Option<String>);

/// The component loads of one apply pass.
struct LoadPass {
    /// What each source gave, so each is read, hashed and loaded once.
    by_source: HashMap<ComponentRef, Loaded>,
    /// The components in use, by sha256.
    used: HashMap<String, Arc<LoadedCheck>>,
    /// Where components come from: files and registries, read up to
    /// `max_component_size`.
    sources: crate::components::Components,
}

impl LoadPass {
    fn new(config: &Config, re_resolve: bool) -> Self {
        LoadPass {
            by_source: HashMap::new(),
            used: HashMap::new(),
            sources: crate::components::Components::for_config(config).re_resolving(re_resolve),
        }
    }

    /// Keep `component` (of a task kept running) among those in use.
    fn keep(&mut self, component: Option<&Arc<LoadedCheck>>) {
        if let Some(c) = component {
            self.used.insert(c.digest.clone(), c.clone());
        }
    }
}

/// The running daemon: the shared run context and one task per check.
struct Daemon {
    shared: Arc<Shared>,
    tasks: BTreeMap<String, CheckTask>,
    /// One task per restore test.
    restores: BTreeMap<String, RestoreTask>,
    /// The audit log, when `[audit]` is configured (opened at start-up).
    #[cfg_attr(not(feature = "restore"), allow(dead_code))] // no [audit] then
    audit: Option<Arc<AuditLog>>,
    /// Loaded components by sha256, kept across reloads.
    components: HashMap<String, Arc<LoadedCheck>>,
    config: Config,
    resolver: Arc<crate::capabilities::net::HostResolver>,
    /// State read back from the history at start-up, taken by each check
    /// when it is first added (see [`state::resume`]).
    carried: HashMap<String, state::Carried>,
    /// Resolve tags the lock file does not pin ([`Options::re_resolve`]).
    re_resolve: bool,
    /// [`Options::location`], applied to every reload too.
    location_override: Option<String>,
    /// [`Options::shard`], applied to every reload too.
    shard: Option<shard::Shard>,
    /// The configuration file's text (the last valid one).
    base: String,
    /// The whole configuration: the file and the cluster's resources, before
    /// this replica's share is taken.
    full: Config,
    /// The cluster side, when enabled.
    cluster: Option<cluster::Cluster>,
    /// [`Options::cluster`].
    cluster_options: cluster::ClusterOptions,
    /// [`Options::config`].
    config_path: PathBuf,
}

/// Run the daemon until SIGTERM or SIGINT.
pub async fn run(options: Options) -> anyhow::Result<()> {
    let base = cluster::read_base(&options.config, &options.cluster)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let config = parse(&options.config, &base, None, options.location.as_deref())?;
    // Signal handlers first: a SIGHUP or SIGTERM that arrives while the
    // checks load waits for the loop below instead of killing the process
    // (the default action of both).
    // With `--kubernetes` the file may be absent: then only SIGHUP reloads.
    let watch_file = options.watch && options.config.exists();
    let mut reloads = reload::Triggers::new(&options.config, watch_file)?;
    let global = config.global.clone();
    let location = global.location.clone();
    let data_dir = data_dir(&options, &global)?;
    let listener = bind(&options, &global).await?;
    let bound = listener.local_addr()?;
    let public_url = global
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{bound}"));

    let sinks = open_sinks(&config, &data_dir, &public_url)?;
    let audit = restores::open_audit(&config, &data_dir, &sinks).await?;
    let engine = EngineOptions {
        compiler: options.compiler,
        ..engine_options(&config)
    };
    let runtime = Arc::new(Runtime::new(&engine, options.cache_dir.clone())?);
    // Runs in the low-priority lane hold at most this many slots of the cap.
    let guests = GuestPool::per_core()
        .context("cannot start the guest threads")?
        .with_low_lane_permits(low_lane_permits_for(global.concurrency));
    let shared = Arc::new(Shared {
        runtime,
        guests,
        permits: Arc::new(Semaphore::new(global.concurrency)),
        sinks: sinks.clone(),
        location: location.clone(),
        maintenance: RwLock::new(Arc::new(Vec::new())),
        clock: crate::pace::Clock::system(),
        restore_runs: Default::default(),
    });
    // Heartbeats before the web server: their ping routes are part of it.
    // Pings reach one replica: with static shards, shard 0; with Leases,
    // none (run heartbeats in a daemon of their own).
    let serves_heartbeats = options.shard.is_none_or(|s| s.serves_heartbeats());
    let heartbeat_configs = if !serves_heartbeats {
        &[][..]
    } else if options.cluster.shares_checks() && !config.heartbeats.is_empty() {
        warn!(
            "[[heartbeat]] is not shared among replicas by Leases: run heartbeats in a daemon of their own (a pinged replica would be the only one to know)"
        );
        &[][..]
    } else {
        &config.heartbeats[..]
    };
    let heartbeats = heartbeats::Heartbeats::start(heartbeat_configs, &data_dir, shared.clone())?;
    let health = web::Health::default();
    let web = Web::start(
        listener,
        &sinks,
        &location,
        config.central.as_ref(),
        heartbeats.as_ref().map(heartbeats::Heartbeats::router),
        health.clone(),
    );
    let cluster = cluster::Cluster::start(&options.cluster, &data_dir, &sinks, &health).await?;
    // The file and the cluster's resources.
    let (config, verdicts) = cluster::compose(&base, &options.config, cluster.as_ref())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let config = with_location(config, options.location.as_deref())?;
    let janitor = Janitor::start(&config);

    let names = config
        .checks
        .iter()
        .map(|c| c.name.clone())
        .chain(config.restores.iter().map(|r| r.name.clone()))
        .collect();
    let carried = state::resume(&sinks.history, &sinks.alerts, &location, names).await;
    let mut daemon = Daemon {
        shared,
        tasks: BTreeMap::new(),
        restores: BTreeMap::new(),
        audit: audit.clone(),
        components: HashMap::new(),
        config: config.clone(),
        resolver: Arc::default(),
        carried,
        re_resolve: options.re_resolve,
        location_override: options.location.clone(),
        shard: options.shard,
        base,
        full: config,
        cluster,
        cluster_options: options.cluster.clone(),
        config_path: options.config.clone(),
    };
    let problems = daemon.apply_share().await;
    if let Some(c) = &mut daemon.cluster {
        c.verdicts(Some(verdicts));
    }
    if !problems.is_empty() {
        say(&format!(
            "vantage daemon: these checks cannot load their component and fail every run:\n{}",
            problems.join("\n")
        ));
    }
    info!(
        %location,
        checks = daemon.tasks.len(),
        restore_tests = daemon.restores.len(),
        listen = %bound,
        data_dir = %data_dir.display(),
        "vantage daemon started: status page at http://{bound}/"
    );
    say(&format!(
        "vantage daemon: {} check(s), location {location}, status page http://{bound}/ (metrics at /metrics); SIGHUP reloads, Ctrl-C stops",
        daemon.tasks.len()
    ));

    let reason = loop {
        /// What woke the loop.
        enum Next {
            File(reload::Event),
            Cluster(cluster::Change),
        }
        let next = tokio::select! {
            event = reloads.next() => Next::File(event),
            change = cluster_changed(&mut daemon.cluster) => Next::Cluster(change),
        };
        match next {
            Next::File(reload::Event::Reload(why)) => daemon.reload(&options.config, &why).await,
            Next::File(reload::Event::Stop(why)) => break why,
            Next::Cluster(change) => daemon.cluster_changed(change).await,
        }
    };
    info!("{reason}: shutting down");
    say(&format!(
        "vantage daemon: {reason}, stopping (grace {})",
        humantime::format_duration(global.shutdown_grace)
    ));
    let grace = global.shutdown_grace;
    daemon.shutdown(grace).await;
    if let Some(c) = daemon.cluster.take() {
        c.leave().await;
    }
    janitor.stop();
    drop(daemon);
    restores::close_audit(audit).await;
    sinks.history.flush().await;
    sinks.alerts.shutdown(grace).await;
    web.stop().await;
    info!("stopped");
    Ok(())
}

/// The data directory (`--data-dir`, else `[global] data_dir`, else the
/// platform's), created if missing.
fn data_dir(options: &Options, global: &config::Global) -> anyhow::Result<PathBuf> {
    let data_dir = options
        .data_dir
        .clone()
        .or_else(|| global.data_dir.clone())
        .or_else(|| {
            directories::ProjectDirs::from("dev", "vantage", "vantage")
                .map(|d| d.data_dir().to_path_buf())
        })
        .context("no data directory: set global.data_dir or --data-dir")?;
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create the data directory {}", data_dir.display()))?;
    Ok(data_dir)
}

/// Listen where `--listen`, else `[global] listen`, else the default says.
async fn bind(options: &Options, global: &config::Global) -> anyhow::Result<TcpListener> {
    let listen = options
        .listen
        .or(global.listen)
        .unwrap_or_else(|| DEFAULT_LISTEN.parse().expect("valid default address"));
    TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))
}

/// The sinks every run goes to: board, metrics, history, alerts, remote
/// write.
fn open_sinks(config: &Config, data_dir: &Path, public_url: &str) -> anyhow::Result<Sinks> {
    let global = &config.global;
    let board = Board::default();
    let mut metrics = Metrics::new(board.clone(), &global.location);
    let identity = metrics.identity().clone();
    identity.set_config(&config_sha256(&config.source));
    let remote_write = RemoteWrite::start(
        &config.remote_write,
        data_dir,
        &identity,
        metrics.registry_mut(),
    )?;
    let metrics = Arc::new(metrics);
    let history = History::open(
        data_dir,
        Retention {
            max_age: global.history_max_age,
            max_runs_per_check: global.history_max_runs,
        },
    )?;
    let alerts = Alerts::start(AlertConfig {
        alertmanagers: config.alerts.alertmanagers.clone(),
        webhooks: config.alerts.webhooks.clone(),
        resend: config.alerts.resend,
        generator_base: public_url.to_string(),
        ..AlertConfig::default()
    });
    Ok(Sinks {
        board,
        metrics,
        history,
        alerts,
        remote_write,
        tap: Default::default(),
    })
}

/// The sha256 of the configuration file (what `vantage_config_info`
/// reports), or empty when it cannot be read.
fn config_sha256(path: &Path) -> String {
    use sha2::Digest as _;
    std::fs::read(path)
        .map(|bytes| format!("{:x}", sha2::Sha256::digest(bytes)))
        .unwrap_or_default()
}

/// The engine's settings for every check and restore check configured:
/// fuel if any uses it, the largest memory limit, and pooled instances for
/// the concurrency cap plus the low lane. (`vantage compile CONFIG` compiles
/// with the same, so its cache entries are the daemon's.)
pub(crate) fn engine_options(config: &Config) -> EngineOptions {
    let limits = || {
        config.checks.iter().map(|c| &c.limits).chain(
            config
                .restores
                .iter()
                .flat_map(|r| r.checks.iter().map(|c| &c.limits)),
        )
    };
    let concurrency = config.global.concurrency;
    EngineOptions {
        fuel: limits().any(|l| l.fuel.is_some()),
        max_memory: limits()
            .map(|l| l.memory)
            .chain([config.defaults.memory])
            .max()
            .unwrap_or(config::DEFAULT_MEMORY),
        pool_instances: u32::try_from(concurrency + low_lane_permits_for(concurrency) + 16)
            .unwrap_or(u32::MAX),
        compiler: Default::default(),
    }
}

/// The status page, API and `/metrics`, served until stopped.
struct Web {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Web {
    fn start(
        listener: TcpListener,
        sinks: &Sinks,
        location: &str,
        central: Option<&config::CentralConfig>,
        pings: Option<axum::Router>,
        health: web::Health,
    ) -> Self {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let render = {
            let metrics = sinks.metrics.clone();
            Arc::new(move || metrics.render())
        };
        let router = web::router(WebState {
            board: sinks.board.clone(),
            history: sinks.history.clone(),
            metrics: render,
            location: location.to_string(),
            version: env!("CARGO_PKG_VERSION"),
            central: central.map(|c| {
                Arc::new(web::central::Central::new(
                    c.prometheus.clone(),
                    c.silent_after,
                ))
            }),
            health,
        });
        let router = match pings {
            Some(pings) => pings.merge(router),
            None => router,
        };
        let task = tokio::spawn(web::serve(listener, router, async move {
            let _ = stopped.await;
        }));
        Web { stop, task }
    }

    /// Stop serving; wait at most 5 s.
    async fn stop(self) {
        let _ = self.stop.send(());
        match tokio::time::timeout(Duration::from_secs(5), self.task).await {
            Ok(Ok(Err(e))) => warn!("web server: {e:#}"),
            Ok(_) => {}
            Err(_) => warn!("web server did not stop within 5s"),
        }
    }
}

/// A line on stderr for the operator; a closed stderr is not an error (the
/// log has it too, and the daemon keeps running).
fn say(text: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}

/// Wait for the cluster's next change; never without a cluster.
async fn cluster_changed(cluster: &mut Option<cluster::Cluster>) -> cluster::Change {
    match cluster {
        Some(c) => c.changed().await,
        None => std::future::pending().await,
    }
}

/// Validate the configuration file's `text` (read from `path`), with the
/// cluster's resources when there is a cluster; `location`
/// (`--location`, `VANTAGE_LOCATION`) overrides `[global] location`.
/// Errors carry every diagnostic; warnings are left for the composed
/// configuration to log.
fn parse(
    path: &Path,
    text: &str,
    cluster: Option<&cluster::Cluster>,
    location: Option<&str>,
) -> anyhow::Result<Config> {
    let (config, _) = cluster::compose(text, path, cluster).map_err(|e| anyhow::anyhow!("{e}"))?;
    relocate(config, location)
}

/// `config` with `location` over `[global] location`.
fn relocate(mut config: Config, location: Option<&str>) -> anyhow::Result<Config> {
    if let Some(location) = location {
        anyhow::ensure!(
            !location.trim().is_empty(),
            "--location (VANTAGE_LOCATION) is empty"
        );
        config.global.location = location.trim().to_string();
    }
    Ok(config)
}

/// [`relocate`], with the configuration's warnings logged.
fn with_location(config: Config, location: Option<&str>) -> anyhow::Result<Config> {
    let config = relocate(config, location)?;
    for w in &config.warnings {
        warn!("{w}");
    }
    Ok(config)
}

/// `component` for `checks[index]` of `config`, unless the check's
/// configuration is refused by the keys the component declares: that counts
/// as a component that cannot be loaded (a running task keeps its previous
/// one), and each problem (file, line, key) is added to `problems`.
fn configured(
    config: &Config,
    index: usize,
    component: Arc<LoadedCheck>,
    problems: &mut Vec<String>,
) -> Result<Arc<LoadedCheck>, String> {
    let found = component
        .config_schema()
        .map(|keys| config.check_problems(index, keys))
        .unwrap_or_default();
    if found.is_empty() {
        return Ok(component);
    }
    let lines: Vec<String> = found.iter().map(ToString::to_string).collect();
    let text = lines.join("; ");
    problems.extend(lines);
    Err(format!("invalid configuration: {text}"))
}

impl Daemon {
    /// Read the configuration again and apply it; an invalid file is
    /// rejected and the running configuration kept.
    async fn reload(&mut self, path: &Path, why: &str) {
        info!("{why}: reloading {}", path.display());
        let options = self.cluster_options();
        let read = cluster::read_base(path, &options).map_err(|e| anyhow::anyhow!("{e}"));
        let loaded = read.and_then(|text| {
            let (config, verdicts) = cluster::compose(&text, path, self.cluster.as_ref())
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let config = with_location(config, self.location_override.as_deref())?;
            Ok((text, config, verdicts))
        });
        let (text, config, verdicts) = match loaded {
            Ok(c) => c,
            Err(e) => {
                self.shared.sinks.metrics.config_reload(false);
                error!("configuration rejected, the running one is kept:\n{e:#}");
                say(&format!(
                    "vantage daemon: configuration rejected, the running one is kept:\n{e:#}"
                ));
                return;
            }
        };
        // `max_component_size` applies to the components this reload loads.
        let restart_only = |c: &Config| config::Global {
            max_component_size: 0,
            ..c.global.clone()
        };
        if restart_only(&config) != restart_only(&self.full)
            || config.alerts != self.full.alerts
            || config.audit != self.full.audit
            || config.remote_write != self.full.remote_write
            || config.central != self.full.central
            || config.heartbeats != self.full.heartbeats
        {
            warn!(
                "changes to [global], [alerts], [audit], [central], [[remote_write]] and \
                 [[heartbeat]] take effect at the next restart"
            );
        }
        self.base = text;
        self.full = config;
        let problems = self.apply_share().await;
        if let Some(c) = &mut self.cluster {
            c.verdicts(Some(verdicts));
        }
        // The metric first: whoever reads the report below sees it set.
        self.shared.sinks.metrics.config_reload(problems.is_empty());
        if problems.is_empty() {
            self.shared
                .sinks
                .metrics
                .identity()
                .set_config(&config_sha256(path));
        }
        if !problems.is_empty() {
            let text = problems.join("\n");
            error!(
                "configuration applied except checks whose component cannot be loaded or refuses its configuration; checks that had a working one keep running it:\n{text}"
            );
            say(&format!(
                "vantage daemon: reload incomplete: components cannot be loaded or refuse their configuration; checks that had a working one keep running it:\n{text}"
            ));
        }
    }

    /// The cluster options the daemon runs with (whether a missing file is
    /// an empty one).
    fn cluster_options(&self) -> cluster::ClusterOptions {
        self.cluster_options.clone()
    }

    /// Act on a change in the cluster: new resources are composed with the
    /// file (a resource that fails gets its condition, the rest run); a new
    /// share is applied.
    async fn cluster_changed(&mut self, change: cluster::Change) {
        let mut verdicts = None;
        if change == cluster::Change::Resources {
            match cluster::compose(&self.base, &self.config_path, self.cluster.as_ref()) {
                Ok((config, v)) => {
                    match with_location(config, self.location_override.as_deref()) {
                        Ok(config) => self.full = config,
                        Err(e) => error!("{e:#}"),
                    }
                    verdicts = Some(v);
                }
                Err(e) => {
                    error!(
                        "kubernetes: the resources cannot be applied, the running ones are kept:\n{e}"
                    );
                    return;
                }
            }
        }
        let problems = self.apply_share().await;
        // New verdicts, or the last ones for the new share's owners.
        if let Some(c) = &mut self.cluster {
            c.verdicts(verdicts);
        }
        if !problems.is_empty() {
            error!(
                "checks whose component cannot be loaded or refuses its configuration:\n{}",
                problems.join("\n")
            );
        }
    }

    /// Apply this replica's share of the whole configuration: with
    /// `--shard i/n` the checks whose name hashes to it (heartbeats stay
    /// as started), with Leases the checks it owns, with `--leader-elect`
    /// the restore tests only while leading.
    async fn apply_share(&mut self) -> Vec<String> {
        let mut config = self.full.clone();
        let all = config.checks.len() + config.restores.len();
        if let Some(c) = &mut self.cluster {
            let names = config
                .checks
                .iter()
                .map(|c| c.name.clone())
                .chain(config.restores.iter().map(|r| r.name.clone()))
                .collect();
            c.set_names(names);
        }
        if let Some(shard) = self.shard {
            config.checks.retain(|c| shard.owns(&c.name));
            config.restores.retain(|r| shard.owns(&r.name));
        }
        if let Some(c) = &self.cluster {
            config.checks.retain(|k| c.runs_check(&k.name));
            config.restores.retain(|r| c.runs_restore(&r.name));
        }
        let owned = config.checks.len() + config.restores.len();
        let members = match (&self.cluster, self.shard) {
            (Some(c), _) if c.members().is_some() => c.members().map(|m| m as u32),
            (_, Some(s)) => Some(s.count),
            _ => None,
        };
        if let Some(members) = members {
            info!(
                members,
                owned,
                of = all,
                "shard: running this replica's share of the checks"
            );
            self.shared.sinks.metrics.shard(members, owned);
        }
        if let Some(leads) = self.cluster.as_ref().and_then(|c| c.leading()) {
            self.shared.sinks.metrics.leader(leads);
        }
        self.apply(config).await
    }

    /// Make the running checks match `config`: unchanged checks keep their
    /// task (and so their schedule); changed checks are restarted with
    /// their alerting state; removed checks are stopped and forgotten.
    ///
    /// A check (or restore test) whose new component cannot be loaded keeps
    /// its running task when that one has a working component; a new one
    /// runs and fails with the reason. Returns one line per `component` key
    /// whose file cannot be loaded (`file:line:col: check "x": key
    /// `component`: why`); empty when all loaded.
    async fn apply(&mut self, config: Config) -> Vec<String> {
        *self
            .shared
            .maintenance
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Arc::new(config.maintenance.clone());
        let mut stopping = Vec::new();
        let mut stopping_restores = Vec::new();
        // What this replica no longer runs stops first, before any
        // component is loaded: a slow load must not keep a check that moved
        // to another replica running here too.
        let (removed, r_removed) =
            self.stop_unwanted(&config, &mut stopping, &mut stopping_restores);
        let mut old = std::mem::take(&mut self.tasks);
        let (mut added, mut changed, mut kept) = (0, 0, 0);
        let mut pass = LoadPass::new(&config, self.re_resolve);
        let mut held = 0;
        let mut config_problems = Vec::new();
        for (index, spec) in config.checks.clone().into_iter().enumerate() {
            let (component, digest) = self.load_once(&mut pass, &spec.component).await;
            let component =
                component.and_then(|c| configured(&config, index, c, &mut config_problems));
            let name = spec.name.clone();
            let tracker = match old.remove(&name) {
                Some(task)
                    if task.prepared.spec == spec
                        && task.prepared.digest == digest
                        && task.prepared.component.is_ok() == component.is_ok()
                        && !task.is_finished() =>
                {
                    kept += 1;
                    self.tasks.insert(name, task);
                    continue;
                }
                // The new component cannot be loaded: the working one runs on.
                Some(task)
                    if component.is_err()
                        && task.prepared.component.is_ok()
                        && !task.is_finished() =>
                {
                    held += 1;
                    if let Err(why) = &component {
                        error!(check = %name, "{why}; the check keeps running its previous component");
                    }
                    pass.keep(task.prepared.guest());
                    self.tasks.insert(name, task);
                    continue;
                }
                previous => {
                    let counts = (&mut added, &mut changed);
                    state::handed_on(previous, self.carried.get(&name), &mut stopping, counts)
                }
            };
            if let Err(why) = &component {
                error!(check = %name, "{why}");
            }
            let prepared = Prepared::new(
                spec,
                component,
                digest,
                &self.shared.location,
                self.resolver.clone(),
            );
            let task = CheckTask::spawn(self.shared.clone(), Arc::new(prepared), tracker);
            state::carry_runs(
                &self.shared.sinks.board,
                &name,
                self.carried.remove(&name).as_ref(),
            );
            self.tasks.insert(name, task);
        }
        // Every task left in `old` was taken by a configured check above:
        // the others were stopped by `stop_unwanted`.
        debug_assert!(old.is_empty());
        let (r_added, r_changed) = self
            .apply_restores(&config, &mut pass, &mut stopping_restores)
            .await;
        let mut problems: Vec<String> = config
            .component_keys
            .iter()
            .filter_map(|(reference, place)| match pass.by_source.get(reference) {
                Some((Err(why), _)) => {
                    let mut d = place.clone();
                    d.message = why.clone();
                    Some(d.to_string())
                }
                _ => None,
            })
            .collect();
        problems.extend(config_problems);
        // Components no check uses any more are dropped.
        self.components = pass.used;
        self.shared.sinks.metrics.configured(self.tasks.len());
        self.config = config;
        info!(
            added,
            changed,
            removed,
            kept,
            kept_previous_component = held,
            restore_tests_added = r_added,
            restore_tests_changed = r_changed,
            restore_tests_removed = r_removed,
            "configuration applied"
        );
        // Old tasks finish their run in flight in the background.
        for task in stopping {
            tokio::spawn(task.join(Duration::from_secs(300)));
        }
        // A restore run in flight finishes, cleanup included.
        for task in stopping_restores {
            tokio::spawn(task.join(Duration::from_secs(3600)));
        }
        problems
    }

    /// Stop the checks and restore tests `config` does not run; how many of
    /// each.
    fn stop_unwanted(
        &mut self,
        config: &Config,
        stopping: &mut Vec<CheckTask>,
        stopping_restores: &mut Vec<RestoreTask>,
    ) -> (usize, usize) {
        let checks: std::collections::HashSet<&str> =
            config.checks.iter().map(|c| c.name.as_str()).collect();
        let restores: std::collections::HashSet<&str> =
            config.restores.iter().map(|r| r.name.as_str()).collect();
        let gone: Vec<String> = self
            .tasks
            .keys()
            .filter(|n| !checks.contains(n.as_str()))
            .cloned()
            .collect();
        for name in &gone {
            if let Some(task) = self.tasks.remove(name) {
                task.stop();
                let _ = self.let_go(name);
                stopping.push(task);
            }
        }
        let gone_restores: Vec<String> = self
            .restores
            .keys()
            .filter(|n| !restores.contains(n.as_str()))
            .cloned()
            .collect();
        for name in &gone_restores {
            if let Some(task) = self.restores.remove(name) {
                // Still configured: this replica stopped leading, so the run
                // in flight is cancelled (cleaned up) rather than finished
                // while another replica may start the next.
                if self.let_go(name) {
                    task.cancel();
                } else {
                    task.stop();
                }
                self.shared.sinks.metrics.forget_restore(name);
                stopping_restores.push(task);
            }
        }
        (gone.len(), gone_restores.len())
    }

    /// Forget a check or restore test this replica stopped: removed from the
    /// configuration (its alerts resolved), or moved to another replica
    /// (its alerts left to the new owner). Whether it moved.
    fn let_go(&self, name: &str) -> bool {
        let configured = self.full.checks.iter().any(|c| c.name == name)
            || self.full.restores.iter().any(|r| r.name == name);
        if configured {
            self.shared.sinks.hand_over(name);
        } else {
            self.shared.sinks.forget(name);
        }
        configured
    }

    /// Load `component` once per apply pass: checks and restore checks
    /// sharing a component file share one read, hash and load, and the
    /// pass collects the components in use.
    async fn load_once(&mut self, pass: &mut LoadPass, component: &ComponentRef) -> Loaded {
        if let Some(loaded) = pass.by_source.get(component) {
            return loaded.clone();
        }
        let loaded = self.load(component, &pass.sources).await;
        if let Ok(c) = &loaded.0 {
            pass.used.insert(c.digest.clone(), c.clone());
        }
        pass.by_source.insert(component.clone(), loaded.clone());
        loaded
    }

    /// Load a check's component (from its file or its registry), reusing
    /// one already loaded with the same bytes. Returns the component (or
    /// why not) and the bytes' sha256.
    async fn load(
        &mut self,
        component: &ComponentRef,
        sources: &crate::components::Components,
    ) -> Loaded {
        // A bounded read: `/dev/zero` or a huge file (or layer) is refused
        // at the cap.
        let fetched = match sources.fetch(component).await {
            Ok(f) => f,
            Err(e) => return (Err(e), None),
        };
        let (bytes, source) = (fetched.bytes, fetched.source);
        let digest = hex::encode(Sha256::digest(&bytes));
        if let Some(loaded) = self.components.get(&digest) {
            return (Ok(loaded.clone()), Some(digest));
        }
        // Compiling and `describe` are guest work: on the guest pool, so a
        // start or reload does not hold up running checks' timers or the API.
        let load = {
            let (runtime, source) = (self.shared.runtime.clone(), source.clone());
            async move { runtime.load_bytes(&source, &bytes).await }
        };
        match self
            .shared
            .guests
            .run(load)
            .await
            .map_err(anyhow::Error::msg)
        {
            Ok(Ok(loaded)) => {
                let loaded = Arc::new(loaded);
                self.components.insert(digest.clone(), loaded.clone());
                (Ok(loaded), Some(digest))
            }
            Ok(Err(e)) | Err(e) => (
                Err(format!("cannot load component {source}: {e:#}")),
                Some(digest),
            ),
        }
    }

    /// Stop every task: no new runs; runs in flight get `grace`.
    async fn shutdown(&mut self, grace: Duration) {
        for task in self.tasks.values() {
            task.stop();
        }
        for task in self.restores.values() {
            task.stop();
        }
        info!("waiting for runs in flight");
        let joins = std::mem::take(&mut self.tasks)
            .into_values()
            .map(|t| t.join(grace));
        let restores = std::mem::take(&mut self.restores)
            .into_values()
            .map(|t| t.join(grace));
        tokio::join!(futures_join_all(joins), futures_join_all(restores));
    }
}

/// Await every future (all at once).
async fn futures_join_all<F: std::future::Future<Output = ()> + Send + 'static>(
    futures: impl Iterator<Item = F>,
) {
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    for h in handles {
        let _ = h.await;
    }
}
