//! Restore tests in the daemon: one task per `[[restore]]` that sleeps until
//! the next planned start, runs the test ([`crate::restore::run`]) with the
//! daemon's sandbox as its [`ValidationRunner`](crate::restore::ValidationRunner), then hands the outcome to
//! the sinks like a check's (board, metrics, history, alerts) and to the
//! audit log. Before its first slot, a task takes over the newest run of
//! its test that was started elsewhere and not finished (a leader that
//! died, this daemon before a restart; [`crate::restore::adopt`]). A
//! janitor sweeps expired volatile namespaces at start-up and every
//! `JANITOR_EVERY`.
//!
//! Restore-validation checks run in the same sandbox as edge checks, under
//! the same concurrency cap, in mode `restore`. Besides their rendered
//! targets and config they receive three reserved config keys:
//! `vantage.restore.namespace`, `vantage.restore.backup` and
//! `vantage.restore.backup_age_seconds` (the SDK's `Context::restore`).

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tracing::{Instrument, error, info, info_span, warn};

pub use crate::audit::log::AuditLog;
use crate::audit::record::KIND_RESTORE_TEST;
use crate::audit::spool::Entry;
use crate::capabilities::net::HostResolver;
use crate::config::{ClusterAccess, Config, Mode, RestoreCheck, RestoreSpec, TemplateVars};
use crate::policy::{AllowList, AllowPattern};
use crate::restore::{self, RestoreReport, RunInfo, RunOptions, ValidationRunner};
use crate::result::{CheckResult, ErrorKind};
use crate::runtime::{LoadedCheck, RunSpec};
use crate::sinks::Sinks;
use crate::sinks::metrics::RestoreSample;

use super::scheduler::{Job, Running, Shared, TaskHandle, sleep_until};
use super::state::Tracker;
use super::{Daemon, LoadPass, plan, state};
use crate::result::RunRecord;
use crate::sinks::board::CheckView;

/// How often the janitor sweeps expired volatile namespaces.
pub const JANITOR_EVERY: Duration = Duration::from_secs(600);

/// How long a restore task looks for a run in flight to take over before
/// it goes on with its schedule.
const ADOPTION_LOOKUP: Duration = Duration::from_secs(30);

/// A restore test ready to schedule: its spec and each check's component
/// (or why it failed to load).
pub struct PreparedRestore {
    /// The restore test as configured.
    pub spec: RestoreSpec,
    /// Components of its checks, by check name.
    pub components: HashMap<String, Result<Arc<LoadedCheck>, String>>,
    /// sha256 of each check's component, by check name.
    pub digests: HashMap<String, Option<String>>,
    /// The operator's allow ceiling.
    pub ceiling: Option<AllowList>,
    /// Where verdicts are recorded, when the test is audited.
    pub audit: Option<Arc<AuditLog>>,
    /// Poll interval of the Kubernetes side.
    pub pacing: restore::Pacing,
    /// Turned true to cancel the run in flight (this replica stopped
    /// leading): it stops and cleans up instead of finishing.
    pub cancel: watch::Sender<bool>,
    /// How long a cancelled run may spend cleaning up (see
    /// [`RunOptions::cancelled_cleanup_within`]).
    pub cancelled_cleanup_within: Option<Duration>,
}

/// A running restore-test task.
pub type RestoreTask = Running<PreparedRestore>;

impl Job for PreparedRestore {
    fn log_aborted(&self) {
        warn!(restore_test = %self.spec.name, "restore test still running after the grace period: aborted; a later start of the test (a restart, another leader) takes the run over, else the janitor deletes its namespace once it expires");
    }
}

impl RestoreTask {
    /// Stop the task and cancel its run in flight, which cleans up instead
    /// of finishing (this replica stopped leading: another one may start
    /// the next run).
    pub fn cancel(&self) {
        let _ = self.prepared.cancel.send(true);
        self.stop();
    }

    /// Start the task of one restore test.
    pub fn spawn(
        shared: Arc<Shared>,
        prepared: Arc<PreparedRestore>,
        tracker: Arc<Mutex<Tracker>>,
        resolver: Arc<HostResolver>,
    ) -> Self {
        let spec = &prepared.spec;
        let state = tracker.lock().unwrap_or_else(|e| e.into_inner()).state();
        shared.sinks.board.insert(CheckView {
            name: spec.name.clone(),
            kind: crate::sinks::board::Kind::Restore,
            component: format!("restore of {}", spec.describe_backup()),
            schedule: spec.schedule.to_string(),
            targets: spec
                .edge_target
                .iter()
                .map(|t| t.0.clone())
                .chain(
                    spec.checks
                        .iter()
                        .flat_map(|c| c.targets.iter().map(|t| t.0.clone())),
                )
                .collect(),
            location: shared.location.clone(),
            severity: spec.severity.clone(),
            state,
            ..Default::default()
        });
        let span = info_span!("restore", restore_test = %spec.name, location = %shared.location);
        let task = TaskHandle::spawn(|stopped| {
            restore_loop(shared, prepared.clone(), tracker.clone(), resolver, stopped)
                .instrument(span)
        });
        RestoreTask {
            prepared,
            tracker,
            task,
        }
    }
}

async fn restore_loop(
    shared: Arc<Shared>,
    prepared: Arc<PreparedRestore>,
    tracker: Arc<Mutex<Tracker>>,
    resolver: Arc<HostResolver>,
    mut stop: watch::Receiver<bool>,
) {
    let spec = &prepared.spec;
    let name = spec.name.as_str();
    let clock = shared.clock;
    let mut after = clock.now();
    // A slot another runner (a leader that died, an earlier process)
    // started and did not finish is finished here first. With Leases, look
    // only once a cancelled runner's bounded cleanup must be over.
    let settle = prepared.cancelled_cleanup_within.unwrap_or_default();
    let look = async {
        tokio::time::sleep(settle).await;
        tokio::time::timeout(ADOPTION_LOOKUP, in_flight(&shared, spec)).await
    };
    let adopting = tokio::select! {
        biased;
        _ = stop.wait_for(|s| *s) => return,
        found = look => found.unwrap_or_else(|_| {
            warn!("no answer from the cluster within {ADOPTION_LOOKUP:?}: not looking for a run in flight to take over");
            None
        }),
    };
    if let Some(adopting) = adopting {
        let Adopting {
            planned,
            adoption,
            run_id,
            guard,
        } = adopting;
        let lateness = adoption.started.duration_since(planned).unwrap_or_default();
        let report = run_once(
            &shared,
            &prepared,
            &resolver,
            &run_id,
            Some(adoption),
            guard,
        )
        .await;
        publish(&shared, &prepared, &tracker, planned, lateness, report);
        after = clock.now();
    }
    loop {
        let Some(planned) = plan::next_after(&spec.schedule, spec.timezone, name, after) else {
            info!(schedule = %spec.schedule, "the schedule has no future start: the restore test will not run again");
            return;
        };
        shared
            .sinks
            .board
            .update(name, |v| v.next_unix_ms = Some(plan::unix_ms(planned)));
        if !sleep_until(&clock, planned, &mut stop).await {
            return;
        }
        let started = clock.now();
        let lateness = started.duration_since(planned).unwrap_or_default();
        // One run id per (test, planned slot), the same on every replica:
        // the volatile namespaces and the Velero Restore are named from it,
        // so a second replica starting the same slot (a leader handover
        // gone wrong) is refused by the API server (409 AlreadyExists)
        // instead of restoring twice.
        let run_id = slot_run_id(plan::unix_ms(planned));
        info!(%run_id, "restore test starting: {}", spec.describe_backup());
        let Some(guard) = InFlightGuard::reserve(&shared.restore_runs, name, &run_id) else {
            warn!(%run_id, "this slot is already running in this process: not started again");
            after = clock.now().max(planned);
            continue;
        };
        let report = run_once(&shared, &prepared, &resolver, &run_id, None, guard).await;
        publish(&shared, &prepared, &tracker, planned, lateness, report);
        after = clock.now().max(planned);
    }
}

/// The run id of a restore test's run planned at `planned_unix_ms`.
fn slot_run_id(planned_unix_ms: u64) -> String {
    format!("{planned_unix_ms:x}-slot")
}

/// The planned start of the slot `run_id` names, if it names one.
fn slot_of(run_id: &str) -> Option<SystemTime> {
    let hex = run_id.strip_suffix("-slot")?;
    let ms = u64::from_str_radix(hex, 16).ok()?;
    Some(std::time::UNIX_EPOCH + Duration::from_millis(ms))
}

/// A run found in flight, to take over.
struct Adopting {
    /// Its slot.
    planned: SystemTime,
    adoption: restore::Adoption,
    run_id: String,
    /// Reserves the run in this process.
    guard: InFlightGuard,
}

/// The newest slot of `spec` started elsewhere and not finished, which this
/// process is not running (reserved here before it is returned). A cluster
/// that cannot be read is logged and adopts nothing.
async fn in_flight(shared: &Arc<Shared>, spec: &RestoreSpec) -> Option<Adopting> {
    let client = match restore::client(&spec.cluster).await {
        Ok(client) => client,
        Err(e) => {
            warn!("cannot look for a run in flight to take over: cannot reach the cluster: {e}");
            return None;
        }
    };
    let wanted = |run_id: &str| {
        slot_of(run_id).is_some()
            && !InFlightGuard::running(&shared.restore_runs, &spec.name, run_id)
    };
    match restore::adopt::find(&client, spec, chrono::Utc::now(), wanted).await {
        Ok(Some(found)) => {
            let planned = slot_of(&found.run_id)?;
            let guard = InFlightGuard::reserve(&shared.restore_runs, &spec.name, &found.run_id)?;
            info!(
                run_id = %found.run_id,
                restore = %found.restore,
                phase = %found.phase,
                backup = %found.backup,
                "taking over a restore run started elsewhere and not finished"
            );
            let adoption = restore::Adoption {
                backup: found.backup,
                started: found.started,
            };
            Some(Adopting {
                planned,
                adoption,
                run_id: found.run_id,
                guard,
            })
        }
        Ok(None) => None,
        Err(e) => {
            warn!(
                "cannot look for a run in flight to take over: {}",
                restore::describe_kube_error(&e)
            );
            None
        }
    }
}

/// The restore runs (`test/run id`) of this process.
type Runs = Arc<Mutex<std::collections::BTreeSet<String>>>;

/// A restore run reserved as in flight in this process
/// ([`Shared::restore_runs`]) while it lives.
struct InFlightGuard {
    runs: Runs,
    key: String,
}

impl InFlightGuard {
    fn key(test: &str, run_id: &str) -> String {
        format!("{test}/{run_id}")
    }

    /// Reserve run `run_id` of `test`; None if this process runs it already.
    fn reserve(runs: &Runs, test: &str, run_id: &str) -> Option<Self> {
        let key = Self::key(test, run_id);
        let fresh = runs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.clone());
        fresh.then(|| InFlightGuard {
            runs: runs.clone(),
            key,
        })
    }

    /// Whether this process runs run `run_id` of `test`.
    fn running(runs: &Runs, test: &str, run_id: &str) -> bool {
        runs.lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&Self::key(test, run_id))
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.runs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.key);
    }
}

/// One run (`adopt`: taking over one started elsewhere), reserved in this
/// process until it ends: connect, run, and always come back with a report.
async fn run_once(
    shared: &Arc<Shared>,
    prepared: &Arc<PreparedRestore>,
    resolver: &Arc<HostResolver>,
    run_id: &str,
    adopt: Option<restore::Adoption>,
    _reserved: InFlightGuard,
) -> RestoreReport {
    let spec = &prepared.spec;
    let mut options = RunOptions::new(run_id, shared.location.clone());
    options.pacing = prepared.pacing;
    options.adopt = adopt;
    options.cancelled_cleanup_within = prepared.cancelled_cleanup_within;
    let runner = SandboxRunner {
        shared: shared.clone(),
        prepared: prepared.clone(),
        resolver: resolver.clone(),
    };
    match restore::client(&spec.cluster).await {
        Ok(client) => {
            let cancel = prepared.cancel.subscribe();
            restore::run_cancellable(&client, spec, &options, &runner, cancel).await
        }
        Err(e) => not_started(spec, &options, format!("cannot reach the cluster: {e}")),
    }
}

/// The report of a run that could not start (verdict `error`).
fn not_started(spec: &RestoreSpec, options: &RunOptions, reason: String) -> RestoreReport {
    let now = plan::unix_ms(SystemTime::now());
    RestoreReport {
        test: spec.name.clone(),
        run_id: options.run_id.clone(),
        location: options.location.clone(),
        namespace: None,
        namespaces: Vec::new(),
        started_unix_ms: now,
        finished_unix_ms: now,
        backup: None,
        restore: None,
        readiness: None,
        checks: Vec::new(),
        timings: restore::Timings::default(),
        rto_target_seconds: spec.rto_target.map(|d| d.as_secs_f64()),
        verdict: crate::audit::Verdict::Error,
        reason,
        cleanup: restore::CleanupInfo::default(),
        isolation_probe: None,
        jobs: Vec::new(),
        evidence: None,
        adopted: options.adopt.is_some(),
    }
}

/// Hand the outcome to every sink and the audit log.
fn publish(
    shared: &Shared,
    prepared: &PreparedRestore,
    tracker: &Mutex<Tracker>,
    planned: SystemTime,
    lateness: Duration,
    report: RestoreReport,
) {
    let spec = &prepared.spec;
    let name = spec.name.as_str();
    if let Some(audit) = &prepared.audit {
        let entry = Entry {
            run_id: report.run_id.clone(),
            location: report.location.clone(),
            kind: KIND_RESTORE_TEST.to_string(),
            subject: serde_json::to_value(&report).unwrap_or_default(),
            verdict: Some(report.verdict),
        };
        match audit.append(entry) {
            Ok(record) => match audit.status().last_error {
                None => info!(seq = record.seq, "verdict recorded in the audit log"),
                Some(stalled) => error!(
                    seq = record.seq,
                    "verdict spooled but the audit log is not reaching S3 (shipping stalled): {stalled}"
                ),
            },
            Err(e) => error!("cannot record the verdict in the audit log: {e:#}"),
        }
    }
    let result = report.to_check_result();
    let (state, transition) =
        tracker
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .observe(result.status, 1, 1);
    let record = Arc::new(RunRecord {
        planned_unix_ms: plan::unix_ms(planned),
        lateness_ms: lateness.as_secs_f64() * 1000.0,
        retries: Vec::new(),
        state,
        transition,
        maintenance: shared.maintenance_for(name),
        severity: spec.severity.clone(),
        result,
        component: None,
    });
    let t = &report.timings;
    let sample = RestoreSample {
        test: name.to_string(),
        success: report.verdict == crate::audit::Verdict::Pass,
        phases: [
            ("setup", t.setup_seconds),
            ("restore", t.restore_seconds),
            ("ready", t.ready_seconds),
            ("checks", t.checks_seconds),
            ("cleanup", t.cleanup_seconds),
        ]
        .into_iter()
        .filter_map(|(p, s)| s.map(|s| (p.to_string(), s)))
        .collect(),
        rto_seconds: t.total_seconds.unwrap_or_else(|| {
            (report
                .finished_unix_ms
                .saturating_sub(report.started_unix_ms)) as f64
                / 1000.0
        }),
        rto_target_seconds: report.rto_target_seconds,
        backup_age_seconds: report.backup.as_ref().and_then(|b| b.age_seconds),
        finished_unix: report.finished_unix_ms as f64 / 1000.0,
    };
    let level_bad = report.verdict != crate::audit::Verdict::Pass;
    if level_bad {
        warn!(run_id = %report.run_id, verdict = %report.verdict, "restore test: {}", report.reason);
    } else {
        info!(run_id = %report.run_id, rto_seconds = sample.rto_seconds, "restore test passed: {}", report.reason);
    }
    super::scheduler::publish(shared, name, record, |v| {
        v.restore = Some(Arc::new(report));
        shared.sinks.metrics.restore(&sample);
    });
}

/// Runs restore-validation checks in the daemon's sandbox.
struct SandboxRunner {
    shared: Arc<Shared>,
    prepared: Arc<PreparedRestore>,
    resolver: Arc<HostResolver>,
}

impl ValidationRunner for SandboxRunner {
    fn component(&self, check: &str) -> Option<crate::result::RanComponent> {
        match self.prepared.components.get(check) {
            Some(Ok(c)) => Some(crate::result::RanComponent {
                source: c.source.clone(),
                sha256: c.digest.clone(),
            }),
            _ => None,
        }
    }

    fn run<'a>(
        &'a self,
        check: &'a RestoreCheck,
        vars: &'a TemplateVars,
        info: &'a RunInfo,
    ) -> Pin<Box<dyn Future<Output = CheckResult> + Send + 'a>> {
        Box::pin(async move {
            let started = plan::unix_ms(SystemTime::now());
            let fail = |kind: ErrorKind, why: String| {
                CheckResult::host_error(&check.name, &info.location, started, kind, why)
            };
            let component = match self.prepared.components.get(&check.name) {
                Some(Ok(c)) => c.clone(),
                Some(Err(why)) => return fail(ErrorKind::Load, why.clone()),
                None => return fail(ErrorKind::Load, "component not loaded".into()),
            };
            let spec = match run_spec(
                check,
                vars,
                info,
                self.prepared.ceiling.as_ref(),
                &self.resolver,
            ) {
                Ok(s) => s,
                Err(why) => return fail(ErrorKind::Config, why),
            };
            let Ok(_permit) = self.shared.permits.acquire().await else {
                return fail(ErrorKind::Host, "the daemon is shutting down".into());
            };
            self.shared.run_guest(&component, &Arc::new(spec)).await
        })
    }
}

/// The inputs of one restore check's run: templates rendered, the allow
/// list parsed and held to the ceiling, plus exactly the addresses of the
/// volatile namespace's Services ([`RunInfo::reachable`]), the run
/// context's reserved keys.
pub fn run_spec(
    check: &RestoreCheck,
    vars: &TemplateVars,
    info: &RunInfo,
    ceiling: Option<&AllowList>,
    resolver: &Arc<HostResolver>,
) -> Result<RunSpec, String> {
    let targets: Vec<String> = check.targets.iter().map(|t| t.render(vars)).collect();
    let entries: Vec<String> = check.allow.iter().map(|e| e.render(vars)).collect();
    let allow = AllowList::expand(entries.iter().map(String::as_str), &targets, ceiling)
        .map_err(|e| format!("{e} (rendered from the templates)"))?;
    let mut patterns: Vec<AllowPattern> = allow.patterns().to_vec();
    // The restored app's Services: their exact addresses and ports, read
    // from the API for this run. Not held to the ceiling: they are the
    // volatile namespace's own, which the run created.
    for p in info.reachable.iter().filter_map(|r| r.pattern()) {
        if !patterns.contains(&p) {
            patterns.push(p);
        }
    }
    let mut config: Vec<(String, String)> = check
        .config
        .iter()
        .map(|(k, v)| (k.clone(), v.render(vars)))
        .collect();
    config.push(("vantage.restore.namespace".into(), info.namespace.clone()));
    config.push(("vantage.restore.backup".into(), info.backup.clone()));
    if let Some(age) = info.backup_age_seconds {
        config.push((
            "vantage.restore.backup_age_seconds".into(),
            format!("{age:.0}"),
        ));
    }
    Ok(RunSpec::deny_all(&check.name, check.limits.timeout)
        .with_targets(targets)
        .with_config(config)
        .with_allow(AllowList::from(patterns))
        .with_secrets(check.secrets.clone())
        .with_limits(check.limits.clone())
        .with_location(info.location.clone())
        .with_mode(Mode::Restore)
        .with_resolver(resolver.clone())
        .with_insecure(check.allow_insecure))
}

/// Sweep expired volatile namespaces of every cluster the restore tests
/// use, now and every `JANITOR_EVERY`, until `stop`.
pub async fn janitor_loop(clusters: Vec<(ClusterAccess, String)>, mut stop: watch::Receiver<bool>) {
    if clusters.is_empty() {
        return;
    }
    loop {
        for (access, velero_namespace) in &clusters {
            match restore::client(access).await {
                Ok(client) => {
                    let report =
                        restore::sweep(&client, velero_namespace, chrono::Utc::now()).await;
                    if !report.namespaces_deleted.is_empty() || !report.restores_deleted.is_empty()
                    {
                        info!(
                            namespaces = ?report.namespaces_deleted,
                            restores = ?report.restores_deleted,
                            "janitor deleted expired restore-test leftovers"
                        );
                    }
                    for e in &report.errors {
                        warn!("janitor: {e}");
                    }
                }
                Err(e) => warn!("janitor: cannot reach the cluster: {e}"),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(JANITOR_EVERY) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// Open the audit log `[audit]` configures, if any (see [`AuditLog::open`]).
pub(super) async fn open_audit(
    config: &Config,
    data_dir: &Path,
    sinks: &Sinks,
) -> anyhow::Result<Option<Arc<AuditLog>>> {
    Ok(match &config.audit {
        Some(a) => Some(Arc::new(
            AuditLog::open(
                a,
                data_dir,
                &config.global.location,
                sinks.metrics.audit().clone(),
            )
            .await?,
        )),
        None => None,
    })
}

/// Ship what the audit log still holds and close it (at most 10 s).
pub(super) async fn close_audit(audit: Option<Arc<AuditLog>>) {
    if let Some(audit) = audit.and_then(Arc::into_inner) {
        audit.shutdown(Duration::from_secs(10)).await;
    }
}

/// The janitor of the clusters the restore tests use (see
/// [`janitor_loop`]).
pub(super) struct Janitor {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Janitor {
    pub(super) fn start(config: &Config) -> Self {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let mut clusters: Vec<(ClusterAccess, String)> = Vec::new();
        for r in &config.restores {
            let key = (r.cluster.clone(), r.velero_namespace.clone());
            if !clusters.contains(&key) {
                clusters.push(key);
            }
        }
        let task = tokio::spawn(janitor_loop(clusters, stopped));
        Janitor { stop, task }
    }

    pub(super) fn stop(self) {
        let _ = self.stop.send(true);
        self.task.abort();
    }
}

impl Daemon {
    /// Make the running restore tests match `config`, as [`Daemon::apply`]
    /// does for checks (those no longer run were stopped before, by
    /// `Daemon::stop_unwanted`). Returns (added, changed).
    pub(super) async fn apply_restores(
        &mut self,
        config: &Config,
        pass: &mut LoadPass,
        stopping: &mut Vec<RestoreTask>,
    ) -> (usize, usize) {
        let mut old = std::mem::take(&mut self.restores);
        let (mut added, mut changed) = (0, 0);
        for spec in &config.restores {
            let mut components = HashMap::new();
            let mut digests = HashMap::new();
            for check in &spec.checks {
                let (component, digest) = self.load_once(pass, &check.component).await;
                if let Err(why) = &component {
                    error!(restore_test = %spec.name, check = %check.name, "{why}");
                }
                components.insert(check.name.clone(), component);
                digests.insert(check.name.clone(), digest);
            }
            let broken = components.values().any(Result::is_err);
            let tracker = match old.remove(&spec.name) {
                Some(task)
                    if task.prepared.spec == *spec
                        && task.prepared.digests == digests
                        && !task.is_finished() =>
                {
                    for c in task.prepared.components.values() {
                        pass.keep(c.as_ref().ok());
                    }
                    self.restores.insert(spec.name.clone(), task);
                    continue;
                }
                // A new component cannot be loaded: the working test runs on.
                Some(task)
                    if broken
                        && task.prepared.components.values().all(Result::is_ok)
                        && !task.is_finished() =>
                {
                    error!(restore_test = %spec.name, "keeps running its previous components");
                    for c in task.prepared.components.values() {
                        pass.keep(c.as_ref().ok());
                    }
                    self.restores.insert(spec.name.clone(), task);
                    continue;
                }
                previous => {
                    let counts = (&mut added, &mut changed);
                    state::handed_on(previous, self.carried.get(&spec.name), stopping, counts)
                }
            };
            let prepared = PreparedRestore {
                spec: spec.clone(),
                components,
                digests,
                ceiling: config.global.allow_ceiling.clone(),
                audit: if spec.audit { self.audit.clone() } else { None },
                pacing: restore::Pacing {
                    poll_interval: spec.poll_interval,
                },
                cancel: watch::channel(false).0,
                cancelled_cleanup_within: self
                    .cluster
                    .as_ref()
                    .and_then(|c| c.cancelled_cleanup_within()),
            };
            let task = RestoreTask::spawn(
                self.shared.clone(),
                Arc::new(prepared),
                tracker,
                self.resolver.clone(),
            );
            let carried = self.carried.remove(&spec.name);
            state::carry_runs(&self.shared.sinks.board, &spec.name, carried.as_ref());
            self.restores.insert(spec.name.clone(), task);
        }
        debug_assert!(old.is_empty());
        (added, changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_run_id_names_its_planned_start() {
        let planned = 1_796_000_000_123;
        let id = slot_run_id(planned);
        assert_eq!(
            slot_of(&id),
            Some(std::time::UNIX_EPOCH + Duration::from_millis(planned))
        );
        // Run ids of `vantage restore run` and foreign labels name no slot.
        assert_eq!(slot_of("manual-19adf5e4c00"), None);
        assert_eq!(slot_of("zz-slot"), None);
    }

    #[test]
    fn a_run_is_reserved_once_in_a_process_until_it_ends() {
        let runs = Runs::default();
        let first = InFlightGuard::reserve(&runs, "shop", "19a-slot").unwrap();
        assert!(InFlightGuard::running(&runs, "shop", "19a-slot"));
        // A second task (a reload's) can neither adopt nor start it.
        assert!(InFlightGuard::reserve(&runs, "shop", "19a-slot").is_none());
        // Another test's run of the same slot is its own.
        let other = InFlightGuard::reserve(&runs, "billing", "19a-slot");
        assert!(other.is_some());
        drop(first);
        assert!(!InFlightGuard::running(&runs, "shop", "19a-slot"));
        assert!(InFlightGuard::reserve(&runs, "shop", "19a-slot").is_some());
    }
}
