//! Restore validation, the Kubernetes side: one run of a restore test
//! (`[[restore]]`) against a cluster with Velero.
//!
//! [`run`] does, in order:
//!
//! 1. [`backup`]: pick the backup (newest or random within a window of a
//!    Schedule's, or a named one) and check its BackupStorageLocation is
//!    `Available`. None usable → verdict `fail`, nothing created.
//! 2. [`namespace`]: create one volatile namespace per source namespace
//!    ([`mapping`]: labels with the test, run id and source namespace, an
//!    expiry annotation) and, before anything is restored into it, a
//!    default-deny NetworkPolicy (with several namespaces, open between
//!    the run's own namespaces only).
//! 3. [`restore_object`]: create the resource-modifier ConfigMap (CronJobs
//!    suspended, Ingress hosts rewritten) and the Velero `Restore` (each
//!    source namespace mapped to its own volatile namespace); poll it until
//!    a terminal phase or the restore timeout.
//! 4. [`readiness`]: poll the restored workloads of every volatile
//!    namespace until ready or the readiness timeout; then the isolation
//!    probe ([`probe`]) from each volatile namespace.
//! 5. Run the restore-validation checks through the daemon's
//!    [`ValidationRunner`] (same sandbox as edge checks), allowed to reach
//!    exactly the Services of the volatile namespaces ([`services`]); then
//!    the data jobs ([`job`]), each in the namespace it names.
//! 6. The verdict ([`RestoreReport::verdict`]), see [`run`].
//! 7. Cleanup, on every path (errors included): keep the finished
//!    Restore's log and results digests ([`evidence`]), delete the Restore, the
//!    ConfigMap, the namespaces, the volumes their claims were bound to
//!    ([`volumes`]: dynamically provisioned ones carry no Velero label) and
//!    PersistentVolumes labelled `velero.io/restore-name=<restore>`. A run whose
//!    process dies leaves objects behind: the next runner of the test takes
//!    the run over while its Restore is there ([`adopt`]), else
//!    [`janitor::sweep`] deletes them once expired.
//!
//! Everything polls (interval [`Pacing::poll_interval`]) rather than
//! watches: simpler to test against a scripted API server and robust to
//! dropped watch connections.

pub use crate::units::human_seconds;
pub mod adopt;
pub mod backup;
pub mod cluster;
pub mod evidence;
pub mod janitor;
pub mod job;
pub mod mapping;
pub mod namespace;
pub mod probe;
pub mod readiness;
pub use crate::result::restore as report;
pub mod restore_object;
pub mod services;
pub mod velero;
pub mod volumes;

#[cfg(test)]
mod tests;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chrono::Utc;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, PersistentVolume};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::audit::record::Verdict;
use crate::config::{RestoreCheck, RestoreSpec, TemplateVars};
use crate::result::{CheckResult, ErrorKind, Status};

pub use adopt::{Adoption, InFlight};
pub use backup::BackupChoice;
pub use cluster::{ClusterError, client};
pub use janitor::{JanitorReport, sweep};
pub use report::{BackupInfo, CleanupInfo, ReadinessInfo, RestoreInfo, RestoreReport, Timings};
pub use velero::RestorePhase;

/// How often the run polls the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pacing {
    /// Between two looks at the Restore or the workloads (default 2 s).
    pub poll_interval: Duration,
}

impl Default for Pacing {
    fn default() -> Self {
        Pacing {
            poll_interval: Duration::from_secs(2),
        }
    }
}

/// Per-run settings that are not part of the restore test's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOptions {
    /// Unique id of the run (labels, namespace suffix, random pick).
    pub run_id: String,
    /// The location label of this host.
    pub location: String,
    /// The namespace Vantage runs in: the volatile namespace accepts
    /// ingress from it (see [`namespace`]). None: Vantage runs outside the
    /// cluster, only same-namespace ingress is allowed.
    pub vantage_namespace: Option<String>,
    /// Poll interval.
    pub pacing: Pacing,
    /// Take over the run `run_id` names, started elsewhere and not
    /// finished, instead of starting it ([`adopt`]).
    pub adopt: Option<Adoption>,
    /// Once cancelled, how long evidence and cleanup may take: a replica
    /// that stopped leading must stop acting on the cluster before the
    /// next leader may start (it adopts what is left). None: unbounded.
    pub cancelled_cleanup_within: Option<Duration>,
}

impl RunOptions {
    /// Options for `run_id` at `location`, the Vantage namespace taken from
    /// `POD_NAMESPACE` (set it with the downward API), default pacing.
    pub fn new(run_id: impl Into<String>, location: impl Into<String>) -> Self {
        RunOptions {
            run_id: run_id.into(),
            location: location.into(),
            vantage_namespace: std::env::var("POD_NAMESPACE")
                .ok()
                .filter(|ns| !ns.is_empty()),
            pacing: Pacing::default(),
            adopt: None,
            cancelled_cleanup_within: None,
        }
    }
}

/// What a restore-validation check run is told about the run (its run
/// context, besides the rendered templates).
#[derive(Debug, Clone, PartialEq)]
pub struct RunInfo {
    /// The restore test.
    pub test: String,
    /// The run's id.
    pub run_id: String,
    /// The location label.
    pub location: String,
    /// The volatile namespace of the first source namespace.
    pub namespace: String,
    /// Every source namespace's volatile namespace.
    pub namespaces: Vec<mapping::NamespaceMapping>,
    /// The restored backup.
    pub backup: String,
    /// Seconds since the backup completed.
    pub backup_age_seconds: Option<f64>,
    /// The ClusterIPs and pod IPs of the Services in the volatile
    /// namespaces ([`services`]): the only private addresses checks may
    /// reach.
    pub reachable: Vec<services::Reachable>,
}

/// Runs one restore-validation check (step 5); the daemon implements it
/// with its Wasm runtime, rendering `check`'s templates with `vars`.
pub trait ValidationRunner: Send + Sync {
    /// Run `check` and return its result (never fails: a check that cannot
    /// run is a result with [`Status::Error`]).
    fn run<'a>(
        &'a self,
        check: &'a RestoreCheck,
        vars: &'a TemplateVars,
        info: &'a RunInfo,
    ) -> Pin<Box<dyn Future<Output = CheckResult> + Send + 'a>>;

    /// The component `check` runs (source and sha256), recorded beside its
    /// result in the report and the audit log; none when unknown.
    fn component(&self, _check: &str) -> Option<crate::result::RanComponent> {
        None
    }
}

/// The steps of a run, named in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Step 1.
    SelectBackup,
    /// Step 2: the namespace.
    CreateNamespace,
    /// Step 2: the NetworkPolicy.
    CreateNetworkPolicy,
    /// Step 3: the modifier ConfigMap.
    CreateModifiers,
    /// Step 3: the Restore.
    CreateRestore,
    /// Step 3: polling the Restore.
    WatchRestore,
    /// Step 4.
    Readiness,
    /// Step 5: reading the Services checks may reach.
    ReadServices,
    /// Step 5b: the data jobs.
    DataJobs,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::SelectBackup => "selecting the backup",
            Step::CreateNamespace => "creating the namespace",
            Step::CreateNetworkPolicy => "creating the NetworkPolicy",
            Step::CreateModifiers => "creating the resource-modifier ConfigMap",
            Step::CreateRestore => "creating the Restore",
            Step::WatchRestore => "watching the Restore",
            Step::Readiness => "waiting for readiness",
            Step::ReadServices => "reading the Services of the volatile namespaces",
            Step::DataJobs => "running the data jobs",
        })
    }
}

/// Why a run could not complete (verdict `error`).
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The Kubernetes API refused or failed a request.
    #[error("{step}: Kubernetes API error: {}", describe_kube_error(.source))]
    Api {
        /// Where.
        step: Step,
        /// The API's answer.
        #[source]
        source: kube::Error,
    },
}

/// `e` in one line: for API answers, code, reason and message.
pub fn describe_kube_error(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) => {
            let reason = if status.reason.is_empty() {
                ""
            } else {
                &status.reason
            };
            format!("{} {reason}: {}", status.code, status.message)
                .replace("  ", " ")
                .trim_end_matches([':', ' '])
                .to_string()
        }
        other => other.to_string(),
    }
}

/// Why the run stopped before its end.
enum Stop {
    /// Something to prove did not hold: verdict `fail`.
    Fail(String),
    /// The run could not complete: verdict `error`.
    Error(String),
}

impl From<RestoreError> for Stop {
    fn from(e: RestoreError) -> Self {
        Stop::Error(e.to_string())
    }
}

/// What the run tried to create, hence what cleanup deletes.
#[derive(Debug, Default)]
struct Attempted {
    /// The volatile namespaces whose creation was attempted.
    namespaces: Vec<String>,
    configmap: Option<String>,
    restore: Option<String>,
    /// The Restore was created and not seen in a terminal phase: Velero may
    /// still be restoring into the namespace.
    restore_running: bool,
}

/// Run the restore test `spec` once (steps 1–7, see the module docs) and
/// report. Never fails and never skips cleanup: API errors make the verdict
/// `error` naming the step.
///
/// Verdict `pass` only if a backup was usable (and, with `max_backup_age`,
/// the newest one recent enough), the Restore `Completed` (with at most
/// `max_warnings` warnings), every workload became ready, every check passed (`degraded` counts as
/// passed, with a note in the reason) and, when an RTO target is set, the
/// measured total (run start → checks done) is within it. A check that
/// could not be loaded or configured (error kinds `load`, `config`, `host`)
/// makes the verdict `error`; any other failing or erroring check `fail`.
/// A Restore that fails Velero's validation (`FailedValidation`) is
/// `error` too: Vantage built something Velero refuses, the backup is not
/// at fault.
pub async fn run(
    client: &kube::Client,
    spec: &RestoreSpec,
    options: &RunOptions,
    runner: &dyn ValidationRunner,
) -> RestoreReport {
    let (_keep, never) = tokio::sync::watch::channel(false);
    run_cancellable(client, spec, options, runner, never).await
}

/// [`run`], cancelled when `cancel` turns true (a replica that stopped
/// leading): the steps stop where they are, verdict `error`, and the
/// cleanup deletes what was made, as after any other stop. With
/// [`RunOptions::cancelled_cleanup_within`], evidence and cleanup stop
/// that long after the cancel (also one that comes while they run), and
/// what is left is for the next runner to take over ([`adopt`]) or the
/// janitor.
pub async fn run_cancellable(
    client: &kube::Client,
    spec: &RestoreSpec,
    options: &RunOptions,
    runner: &dyn ValidationRunner,
    mut cancel: tokio::sync::watch::Receiver<bool>,
) -> RestoreReport {
    // A run taken over counts from the first start (its RTO includes the
    // time nobody was running it).
    let (started, started_unix_ms) = match &options.adopt {
        Some(a) => {
            let ago = SystemTime::now()
                .duration_since(a.started)
                .unwrap_or_default();
            (
                Instant::now().checked_sub(ago).unwrap_or_else(Instant::now),
                a.started
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as u64),
            )
        }
        None => (Instant::now(), unix_ms()),
    };
    let mut report = RestoreReport {
        test: spec.name.clone(),
        run_id: options.run_id.clone(),
        location: options.location.clone(),
        namespace: None,
        namespaces: Vec::new(),
        started_unix_ms,
        finished_unix_ms: started_unix_ms,
        backup: None,
        restore: None,
        readiness: None,
        checks: Vec::new(),
        timings: Timings::default(),
        rto_target_seconds: spec.rto_target.map(|d| d.as_secs_f64()),
        verdict: Verdict::Error,
        reason: String::new(),
        cleanup: CleanupInfo::default(),
        isolation_probe: None,
        jobs: Vec::new(),
        evidence: None,
        adopted: options.adopt.is_some(),
    };
    let mut attempted = Attempted::default();

    let mut was_cancelled = false;
    let outcome = tokio::select! {
        outcome = steps(client, spec, options, runner, started, &mut report, &mut attempted) => outcome,
        () = cancelled(&mut cancel) => {
            was_cancelled = true;
            Err(Stop::Error(
                "cancelled: this replica stopped leading the restore tests; what the run made is cleaned up".to_string(),
            ))
        }
    };
    match outcome {
        Ok(reason) => {
            report.verdict = Verdict::Pass;
            report.reason = reason;
        }
        Err(Stop::Fail(reason)) => {
            report.verdict = Verdict::Fail;
            report.reason = reason;
        }
        Err(Stop::Error(reason)) => {
            report.verdict = Verdict::Error;
            report.reason = reason;
        }
    }
    if options.adopt.is_some() {
        report
            .reason
            .push_str(" (a run started elsewhere and taken over here)");
    }

    // Evidence and cleanup; once cancelled (now or while they run), for at
    // most `cancelled_cleanup_within`: a replica that stopped leading must
    // stop acting on the cluster before the next runner may start.
    // A cancelled run has no verdict of its own to keep: what it leaves is
    // taken over by the next runner.
    let verdict = (!was_cancelled).then_some(report.verdict);
    let finish = finish(client, spec, options, &attempted, verdict, &mut report);
    let cut = async {
        let Some(budget) = options.cancelled_cleanup_within else {
            return std::future::pending::<Duration>().await;
        };
        cancelled(&mut cancel).await;
        tokio::time::sleep(budget).await;
        budget
    };
    let cut_after = tokio::select! {
        () = finish => None,
        budget = cut => Some(budget),
    };
    if let Some(budget) = cut_after {
        report.cleanup = cut_short(&attempted, budget);
        report.timings.cleanup_seconds = Some(budget.as_secs_f64());
    }
    report.finished_unix_ms = unix_ms();
    report
}

/// Once `cancel` is (or turns) true; never if its sender is gone (nobody
/// can cancel any more).
async fn cancelled(cancel: &mut tokio::sync::watch::Receiver<bool>) {
    if cancel.wait_for(|c| *c).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Step 7 after the verdict: keep the Restore's evidence, clean up (a
/// Restore left behind is marked with `verdict`, see [`cleanup`]).
async fn finish(
    client: &kube::Client,
    spec: &RestoreSpec,
    options: &RunOptions,
    attempted: &Attempted,
    verdict: Option<Verdict>,
    report: &mut RestoreReport,
) {
    // Before the Restore goes (Velero's finalizer deletes its log and
    // results with it): keep their sha256 and the failed items.
    if let (Some(name), Some(info)) = (&attempted.restore, &report.restore)
        && matches!(
            RestorePhase::parse(Some(&info.phase)),
            RestorePhase::Completed | RestorePhase::PartiallyFailed | RestorePhase::Failed
        )
    {
        let kept = evidence::fetch(client, &spec.velero_namespace, name, &options.pacing).await;
        // A failed verdict names the first failed item the results list.
        if let Some(first) = kept.failed_items.as_ref().and_then(|i| i.first_error())
            && report.verdict != Verdict::Pass
        {
            report
                .reason
                .push_str(&format!("; first failed item: {first}"));
        }
        report.evidence = Some(kept);
    }

    let cleanup_start = Instant::now();
    report.cleanup = cleanup(client, spec, attempted, verdict).await;
    report.timings.cleanup_seconds = Some(cleanup_start.elapsed().as_secs_f64());
    if !report.cleanup.errors.is_empty() {
        tracing::warn!(
            test = %spec.name,
            run_id = %options.run_id,
            errors = ?report.cleanup.errors,
            "restore test cleanup incomplete; the janitor retries after expiry"
        );
    }
}

/// The cleanup of a cancelled run that did not end within `budget`: what
/// is left goes to the next leader (which adopts the run while its Restore
/// is there) or the janitor.
fn cut_short(attempted: &Attempted, budget: Duration) -> CleanupInfo {
    let why = "may be left: the cleanup was cut short; the next runner of the test takes the run over while its Restore is there, else the janitor deletes it";
    let left: Vec<String> = (attempted.restore.iter().map(|r| ("restore", r)))
        .chain(attempted.configmap.iter().map(|c| ("configmap", c)))
        .chain(attempted.namespaces.iter().map(|n| ("namespace", n)))
        .map(|(kind, name)| format!("{kind}/{name}: {why}"))
        .collect();
    CleanupInfo {
        namespace_deleted: attempted.namespaces.is_empty(),
        restore_deleted: attempted.restore.is_none(),
        configmap_deleted: attempted.configmap.is_none(),
        errors: vec![format!(
            "cleanup cut short after {}: this replica no longer leads, and must stop acting on the cluster before the next leader may start",
            human_seconds(budget.as_secs_f64())
        )],
        left_to_janitor: left,
        ..CleanupInfo::default()
    }
}

/// Steps 1–6. Ok: the pass reason.
async fn steps(
    client: &kube::Client,
    spec: &RestoreSpec,
    options: &RunOptions,
    runner: &dyn ValidationRunner,
    started: Instant,
    report: &mut RestoreReport,
    attempted: &mut Attempted,
) -> Result<String, Stop> {
    let now = Utc::now();
    // What the run is named and labelled: the same for a run adopted.
    let mapping = mapping::volatile_namespaces(
        &spec.namespace_prefix,
        &spec.source_namespaces,
        &options.run_id,
    );
    let Some(ns) = mapping.first().map(|m| m.volatile.clone()) else {
        return Err(Stop::Error(
            "no source namespaces to restore (validate refuses this)".to_string(),
        ));
    };
    let restore_name =
        restore_object::restore_name(&spec.namespace_prefix, &spec.name, &options.run_id);
    let labels = namespace::run_labels(&spec.name, &options.run_id);
    let expires_at = chrono::Duration::from_std(spec.ttl)
        .ok()
        .and_then(|ttl| now.checked_add_signed(ttl))
        .unwrap_or(now);
    let annotations = namespace::run_annotations(expires_at);
    let create = PostParams::default();
    let restores: Api<velero::Restore> = Api::namespaced(client.clone(), &spec.velero_namespace);

    // 0. Adopting: take over what the run made before its Restore (and the
    // Restore), each checked to be the run's own, before anything else can
    // fail: cleanup then deletes exactly that.
    if let Some(adoption) = &options.adopt {
        report.namespace = Some(ns.clone());
        report.namespaces = mapping.clone();
        let t = Instant::now();
        take_over(
            client,
            spec,
            options,
            adoption,
            &mapping,
            &restore_name,
            &labels,
            attempted,
        )
        .await?;
        report.timings.setup_seconds = Some(t.elapsed().as_secs_f64());
    }

    // 1. The backup (adopting: the one the Restore restores).
    let t = Instant::now();
    let choice = match &options.adopt {
        // Picked and judged by the first start: described as of then.
        Some(adoption) => {
            let then = chrono::DateTime::<Utc>::from(adoption.started);
            backup::describe(client, spec, &adoption.backup, then)
                .await
                .map(BackupChoice::Usable)
        }
        None => backup::select(client, spec, now, seed(&options.run_id)).await,
    };
    report.timings.select_seconds = Some(t.elapsed().as_secs_f64());
    let backup = match choice? {
        BackupChoice::Usable(info) => info,
        BackupChoice::Unusable { info, reason } => {
            report.backup = info;
            return Err(Stop::Fail(reason));
        }
    };
    report.backup = Some(backup.clone());
    report.namespace = Some(ns.clone());
    report.namespaces = mapping.clone();

    // 2. The namespaces, one per source namespace, each isolated before
    // anything is restored into it.
    let modifiers =
        restore_object::build_modifiers(spec, &restore_name, &mapping, &labels, &annotations);
    if options.adopt.is_none() {
        let t = Instant::now();
        for m in &mapping {
            let mut ns_labels = labels.clone();
            ns_labels.insert(
                mapping::SOURCE_NAMESPACE_LABEL.to_string(),
                namespace::label_value(&m.source),
            );
            attempted.namespaces.push(m.volatile.clone());
            Api::<Namespace>::all(client.clone())
                .create(
                    &create,
                    &namespace::build_namespace(&m.volatile, &ns_labels, &annotations),
                )
                .await
                .map_err(|source| {
                    create_failed(Step::CreateNamespace, source, || {
                        attempted.namespaces.pop();
                    })
                })?;
            Api::<NetworkPolicy>::namespaced(client.clone(), &m.volatile)
                .create(&create, &policy(spec, options, &mapping, m, &labels))
                .await
                .map_err(|source| RestoreError::Api {
                    step: Step::CreateNetworkPolicy,
                    source,
                })?;
        }
        if let Some(cm) = &modifiers {
            attempted.configmap = cm.metadata.name.clone();
            Api::<ConfigMap>::namespaced(client.clone(), &spec.velero_namespace)
                .create(&create, cm)
                .await
                .map_err(|source| {
                    create_failed(Step::CreateModifiers, source, || attempted.configmap = None)
                })?;
        }
        report.timings.setup_seconds = Some(t.elapsed().as_secs_f64());
    }

    // 3. The Restore. Its prefix annotation lets the janitor recompute
    // its target namespaces (`mapping::is_run_target`).
    let mut restore_annotations = annotations.clone();
    restore_annotations.insert(
        mapping::PREFIX_ANNOTATION.to_string(),
        spec.namespace_prefix.clone(),
    );
    // When the run started: a run that takes this one over counts from it.
    restore_annotations.insert(
        adopt::STARTED_ANNOTATION.to_string(),
        adopt::started_annotation(UNIX_EPOCH + Duration::from_millis(report.started_unix_ms)),
    );
    let restore = restore_object::build_restore(
        spec,
        &restore_name,
        &backup.name,
        &mapping,
        modifiers
            .as_ref()
            .and_then(|cm| cm.metadata.name.as_deref()),
        &labels,
        &restore_annotations,
    );
    let excluded = restore.spec.excluded_resources.clone();
    report.restore = Some(RestoreInfo {
        name: restore_name.clone(),
        phase: RestorePhase::Unset.to_string(),
        excluded_resources: excluded.clone(),
        ..RestoreInfo::default()
    });
    let t = Instant::now();
    if options.adopt.is_none() {
        attempted.restore = Some(restore_name.clone());
        restores.create(&create, &restore).await.map_err(|source| {
            create_failed(Step::CreateRestore, source, || attempted.restore = None)
        })?;
        // Until a terminal phase is seen, Velero may be restoring into the
        // namespace (see `cleanup_while_restoring`).
        attempted.restore_running = true;
    }
    let waited = restore_object::wait(
        &restores,
        &restore_name,
        spec.restore_timeout,
        &options.pacing,
    )
    .await?;
    attempted.restore_running = !waited.phase.is_terminal();
    report.timings.restore_seconds = Some(t.elapsed().as_secs_f64());
    let mut info = waited.info.clone();
    info.excluded_resources = excluded;
    report.restore = Some(info.clone());
    if info.timed_out {
        return Err(Stop::Fail(format!(
            "restore {restore_name} not finished after {} (phase {}{})",
            human_seconds(spec.restore_timeout.as_secs_f64()),
            info.phase,
            progress_text(&info)
        )));
    }
    if waited.phase == RestorePhase::FailedValidation {
        // Velero refused the Restore we built (unknown resource modifier,
        // missing storage location, ...): our problem, not the backup's.
        return Err(Stop::Error(format!(
            "restore {restore_name} FailedValidation: Velero rejected the Restore Vantage created{}",
            info.failure_reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        )));
    }
    if waited.phase != RestorePhase::Completed {
        return Err(Stop::Fail(format!(
            "restore {restore_name} {} (warnings {}, errors {}){}",
            info.phase,
            info.warnings,
            info.errors,
            info.failure_reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        )));
    }

    if let Some(max) = spec.acceptance.max_warnings
        && info.warnings > i64::try_from(max).unwrap_or(i64::MAX)
    {
        return Err(Stop::Fail(format!(
            "restore {restore_name} Completed with {} warning(s), more than max_warnings {max}",
            info.warnings
        )));
    }

    // 4. Readiness.
    let t = Instant::now();
    let ready = readiness::wait(client, &mapping, &spec.readiness, &options.pacing).await?;
    report.timings.ready_seconds = Some(t.elapsed().as_secs_f64());
    report.readiness = Some(ready.info.clone());
    if !ready.info.not_ready.is_empty() {
        return Err(Stop::Fail(format!(
            "not ready after {}: {}",
            human_seconds(spec.readiness.timeout.as_secs_f64()),
            ready.info.not_ready.join(", ")
        )));
    }

    // 4b. The isolation probe, from every volatile namespace (each has its
    // own NetworkPolicy, and pods of each may land on other nodes).
    if !spec.isolation.isolation_probe.is_empty() {
        let mut probes = Vec::new();
        for m in &mapping {
            let probed = probe::run(
                client,
                &m.volatile,
                &spec.isolation.isolation_probe,
                &spec.isolation.probe_image,
                &labels,
                &options.pacing,
                probe::PROBE_TIMEOUT,
                options.adopt.is_some(),
            )
            .await;
            probes.push((m.source.clone(), probed));
        }
        let probed = probe::combine(probes);
        let failure = probe::failure(&probed);
        report.isolation_probe = Some(probed);
        if let Some(reason) = failure {
            return Err(Stop::Error(reason));
        }
    }

    // 5. The checks.
    let vars = TemplateVars {
        namespace: ns.clone(),
        backup: backup.name.clone(),
        namespaces: mapping.clone(),
    };
    let reachable = services::reachable_all(client, &mapping)
        .await
        .map_err(|source| RestoreError::Api {
            step: Step::ReadServices,
            source,
        })?;
    let run_info = RunInfo {
        test: spec.name.clone(),
        run_id: options.run_id.clone(),
        location: options.location.clone(),
        namespace: ns.clone(),
        namespaces: mapping.clone(),
        backup: backup.name.clone(),
        backup_age_seconds: backup.age_seconds,
        reachable,
    };
    let t = Instant::now();
    let mut failed = Vec::new();
    let mut broken = Vec::new();
    let mut degraded = Vec::new();
    for check in &spec.checks {
        let result = runner.run(check, &vars, &run_info).await;
        let line = format!("{} ({})", check.name, result.summary);
        match result.status {
            Status::Pass => {}
            Status::Degraded => degraded.push(line),
            Status::Fail => failed.push(line),
            Status::Error => match result.error.as_ref().map(|e| e.kind) {
                Some(ErrorKind::Load | ErrorKind::Config | ErrorKind::Host) => broken.push(line),
                _ => failed.push(line),
            },
        }
        let mut value = serde_json::to_value(&result).unwrap_or_else(|e| {
            serde_json::json!({"check": check.name, "status": "error", "summary": format!("result not serializable: {e}")})
        });
        if let (Some(c), Some(map)) = (runner.component(&check.name), value.as_object_mut()) {
            map.insert(
                "component".into(),
                serde_json::json!({"source": c.source, "sha256": c.sha256}),
            );
        }
        report.checks.push(value);
    }
    report.timings.checks_seconds = Some(t.elapsed().as_secs_f64());
    let total = started.elapsed().as_secs_f64();
    report.timings.total_seconds = Some(total);

    // 5b. The data jobs (after the RTO: they verify, they do not recover).
    let t = Instant::now();
    let mut failed_jobs = Vec::new();
    for job in &spec.acceptance.jobs {
        // In the copy of the source namespace it names (validated), else
        // the first.
        let job_ns = job
            .namespace
            .as_deref()
            .and_then(|source| mapping::volatile_of(&mapping, source))
            .unwrap_or(&ns);
        let adopting = options.adopt.is_some();
        let outcome = job::run(
            client,
            job_ns,
            job,
            &vars,
            &labels,
            &options.pacing,
            adopting,
        )
        .await
        .map_err(|source| RestoreError::Api {
            step: Step::DataJobs,
            source,
        })?;
        if !outcome.passed {
            let last = outcome
                .log_tail
                .last()
                .map(|l| format!(": {l}"))
                .unwrap_or_default();
            failed_jobs.push(format!("{} ({}{last})", outcome.name, outcome.reason));
        }
        report.jobs.push(outcome);
    }
    if !spec.acceptance.jobs.is_empty() {
        report.timings.jobs_seconds = Some(t.elapsed().as_secs_f64());
    }

    // 6. The verdict.
    if !broken.is_empty() {
        return Err(Stop::Error(format!(
            "check(s) could not run: {}",
            broken.join("; ")
        )));
    }
    if !failed.is_empty() {
        return Err(Stop::Fail(format!(
            "check(s) failed: {}",
            failed.join("; ")
        )));
    }
    if !failed_jobs.is_empty() {
        return Err(Stop::Fail(format!(
            "data job(s) failed: {}",
            failed_jobs.join("; ")
        )));
    }
    let rto = match spec.rto_target {
        Some(target) if total > target.as_secs_f64() => {
            return Err(Stop::Fail(format!(
                "measured RTO {} exceeds the target {}",
                human_seconds(total),
                human_seconds(target.as_secs_f64())
            )));
        }
        Some(target) => format!(
            "RTO {} (target {})",
            human_seconds(total),
            human_seconds(target.as_secs_f64())
        ),
        None => format!("RTO {}", human_seconds(total)),
    };
    let age = backup
        .age_seconds
        .map(|a| format!(" ({} old)", human_seconds(a)))
        .unwrap_or_default();
    let into = if mapping.len() > 1 {
        report.mapping_text()
    } else {
        ns.clone()
    };
    let mut reason = format!(
        "backup {}{age} restored into {into} in {}, {} workload(s)/pod(s) ready, {} check(s) passed; {rto}",
        backup.name,
        human_seconds(report.timings.restore_seconds.unwrap_or(0.0)),
        ready.info.ready.len(),
        spec.checks.len(),
    );
    if !spec.acceptance.jobs.is_empty() {
        reason.push_str(&format!(
            "; {} data job(s) passed",
            spec.acceptance.jobs.len()
        ));
    }
    if !degraded.is_empty() {
        reason.push_str(&format!("; degraded: {}", degraded.join("; ")));
    }
    Ok(reason)
}

/// The isolating NetworkPolicy of `m`'s volatile namespace.
fn policy(
    spec: &RestoreSpec,
    options: &RunOptions,
    mapping: &[mapping::NamespaceMapping],
    m: &mapping::NamespaceMapping,
    labels: &std::collections::BTreeMap<String, String>,
) -> NetworkPolicy {
    let mut policy = namespace::build_network_policy(
        &m.volatile,
        &spec.isolation,
        options.vantage_namespace.as_deref(),
        labels,
    );
    if mapping.len() > 1 {
        // The app's own calls between its namespaces; every namespace of
        // this run carries `labels`, no other run's does.
        namespace::allow_run_namespaces(&mut policy, labels);
    }
    policy
}

/// Step 0 of a run adopted ([`adopt`]): its Restore first (while it may
/// still be restoring, cleanup must leave the namespaces to the janitor)
/// and its modifier ConfigMap if there is one, then its namespaces and
/// their NetworkPolicies (each replaced by the one the configuration builds
/// now), each checked to be the run's own and recorded in `attempted` only
/// then.
#[allow(clippy::too_many_arguments)]
async fn take_over(
    client: &kube::Client,
    spec: &RestoreSpec,
    options: &RunOptions,
    adoption: &Adoption,
    mapping: &[mapping::NamespaceMapping],
    restore_name: &str,
    labels: &std::collections::BTreeMap<String, String>,
    attempted: &mut Attempted,
) -> Result<(), Stop> {
    let cannot =
        |step: Step, why: String| Stop::Error(format!("{step}: cannot adopt the run: {why}"));
    let restores: Api<velero::Restore> = Api::namespaced(client.clone(), &spec.velero_namespace);
    let restore = adopt::claim_made(&restores, restore_name, labels)
        .await
        .map_err(|why| cannot(Step::CreateRestore, why))?;
    if restore.spec.backup_name != adoption.backup {
        return Err(cannot(
            Step::CreateRestore,
            format!(
                "restore/{restore_name} restores backup {}, not {}",
                restore.spec.backup_name, adoption.backup
            ),
        ));
    }
    attempted.restore = Some(restore_name.to_string());
    let phase = RestorePhase::parse(restore.status.as_ref().and_then(|s| s.phase.as_deref()));
    attempted.restore_running = !phase.is_terminal();
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), &spec.velero_namespace);
    let modifiers = restore_object::modifiers_name(restore_name);
    if adopt::claim(&configmaps, &modifiers, labels)
        .await
        .map_err(|why| cannot(Step::CreateModifiers, why))?
        .is_some()
    {
        attempted.configmap = Some(modifiers);
    }
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for m in mapping {
        adopt::claim_made(&namespaces, &m.volatile, labels)
            .await
            .map_err(|why| cannot(Step::CreateNamespace, why))?;
        attempted.namespaces.push(m.volatile.clone());
    }
    for m in mapping {
        let policies: Api<NetworkPolicy> = Api::namespaced(client.clone(), &m.volatile);
        let existing = adopt::claim_made(&policies, namespace::NETWORK_POLICY_NAME, labels)
            .await
            .map_err(|why| cannot(Step::CreateNetworkPolicy, why))?;
        let mut wanted = policy(spec, options, mapping, m, labels);
        wanted.metadata.resource_version = existing.metadata.resource_version;
        policies
            .replace(
                namespace::NETWORK_POLICY_NAME,
                &PostParams::default(),
                &wanted,
            )
            .await
            .map_err(|source| RestoreError::Api {
                step: Step::CreateNetworkPolicy,
                source,
            })?;
    }
    Ok(())
}

/// A create of step `step` failed. A 409 AlreadyExists means another run
/// of the same slot made the object: not this run's to clean up (`forget`
/// takes it out of what cleanup deletes).
fn create_failed(step: Step, source: kube::Error, forget: impl FnOnce()) -> Stop {
    let conflict = adopt::already_exists(&source);
    let error = RestoreError::Api { step, source };
    if conflict {
        forget();
        return Stop::Error(format!(
            "{error} (another run of this slot made it: left alone)"
        ));
    }
    error.into()
}

fn progress_text(info: &RestoreInfo) -> String {
    match (info.items_restored, info.total_items) {
        (Some(done), Some(total)) => format!(", {done}/{total} items restored"),
        _ => String::new(),
    }
}

/// Step 7: delete what the run tried to create. Absent objects count as
/// deleted; failures are recorded, never raised. A Restore left behind
/// (Velero still restoring, or its deletion failed) is marked with the
/// run's `verdict` ([`adopt::REPORTED_ANNOTATION`]) so that no later start
/// of the test takes the run over; a cancelled run (no verdict) is left
/// unmarked for the next runner.
async fn cleanup(
    client: &kube::Client,
    spec: &RestoreSpec,
    attempted: &Attempted,
    verdict: Option<Verdict>,
) -> CleanupInfo {
    let mut info = CleanupInfo {
        namespace_deleted: true,
        restore_deleted: attempted.restore.is_none(),
        configmap_deleted: attempted.configmap.is_none(),
        ..CleanupInfo::default()
    };
    let restores: Api<velero::Restore> = Api::namespaced(client.clone(), &spec.velero_namespace);
    if attempted.restore_running {
        info.namespace_deleted = attempted.namespaces.is_empty();
        if let (Some(name), Some(verdict)) = (&attempted.restore, verdict) {
            mark_left(&restores, name, verdict, &mut info.errors).await;
        }
        return cleanup_while_restoring(client, spec, attempted, info).await;
    }
    if let Some(name) = &attempted.restore {
        info.restore_deleted = delete_noted(&restores, "restore", name, &mut info.errors).await;
        if let (false, Some(verdict)) = (info.restore_deleted, verdict) {
            mark_left(&restores, name, verdict, &mut info.errors).await;
        }
    }
    if let Some(name) = &attempted.configmap {
        let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), &spec.velero_namespace);
        info.configmap_deleted =
            delete_noted(&configmaps, "configmap", name, &mut info.errors).await;
    }
    // Before the namespaces go: their claims name the volumes to delete.
    let mut claimed = volumes::ClaimedVolumes::default();
    for ns in &attempted.namespaces {
        let one = volumes::prepare(client, ns).await;
        claimed.volumes.extend(one.volumes);
        claimed.errors.extend(one.errors);
    }
    info.errors.extend(std::mem::take(&mut claimed.errors));
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for ns in &attempted.namespaces {
        if let Err(e) = delete_ignoring_absent(&namespaces, ns).await {
            info.namespace_deleted = false;
            info.errors.push(format!(
                "deleting namespace {ns}: {}",
                describe_kube_error(&e)
            ));
        }
    }
    let (deleted, errors) = volumes::delete(client, &claimed.volumes).await;
    info.leftovers_deleted.extend(deleted);
    info.errors.extend(errors);
    if let Some(name) = &attempted.restore {
        let volumes: Api<PersistentVolume> = Api::all(client.clone());
        let selector = format!("{}={name}", velero::RESTORE_NAME_LABEL);
        match volumes.list(&ListParams::default().labels(&selector)).await {
            Ok(list) => {
                for pv in list.items {
                    let pv_name = pv.name_any();
                    if claimed.volumes.contains(&pv_name) {
                        continue;
                    }
                    match delete_ignoring_absent(&volumes, &pv_name).await {
                        Ok(()) => info
                            .leftovers_deleted
                            .push(format!("persistentvolume/{pv_name}")),
                        Err(e) => info.errors.push(format!(
                            "deleting persistentvolume {pv_name}: {}",
                            describe_kube_error(&e)
                        )),
                    }
                }
            }
            Err(e) => info.errors.push(format!(
                "listing persistentvolumes labelled {selector}: {}",
                describe_kube_error(&e)
            )),
        }
    }
    info
}

/// Cleanup while Velero may still be restoring (the run timed out, or lost
/// sight of the Restore): only the modifier ConfigMap goes (Velero reads it
/// once, when it validates the Restore). The namespace stays: Velero
/// re-creates a missing target namespace for every item it still restores,
/// from the *source* namespace's labels and annotations, so without
/// Vantage's labels and isolation (`restoreContext.restoreItem` →
/// `getNamespace` + `kube.EnsureNamespaceExistsAndIsReady`, pkg/restore/
/// restore.go). The Restore stays too: deleting it does not stop the
/// restore in flight (the finalizer only deletes its files,
/// `restoreReconciler.deleteExternalResources`, pkg/controller/
/// restore_controller.go), and the janitor needs it to see when Velero is
/// done. [`janitor::sweep`] deletes both once the Restore is terminal.
async fn cleanup_while_restoring(
    client: &kube::Client,
    spec: &RestoreSpec,
    attempted: &Attempted,
    mut info: CleanupInfo,
) -> CleanupInfo {
    if let Some(name) = &attempted.configmap {
        let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), &spec.velero_namespace);
        info.configmap_deleted =
            delete_noted(&configmaps, "configmap", name, &mut info.errors).await;
    }
    let why = "Velero may still be restoring; the janitor deletes it once the Restore is terminal";
    if let Some(name) = &attempted.restore {
        info.left_to_janitor.push(format!("restore/{name}: {why}"));
    }
    for ns in &attempted.namespaces {
        info.left_to_janitor.push(format!("namespace/{ns}: {why}"));
    }
    info
}

/// Mark the Restore `name`, left behind, with the run's `verdict`; a
/// failure is added to `errors`.
async fn mark_left(
    restores: &Api<velero::Restore>,
    name: &str,
    verdict: Verdict,
    errors: &mut Vec<String>,
) {
    match adopt::mark_reported(restores, name, &verdict.to_string()).await {
        Ok(()) => {}
        Err(kube::Error::Api(s)) if s.code == 404 => {}
        Err(e) => errors.push(format!(
            "marking restore {name} reported: {} (a later start of the test may take the run over again)",
            describe_kube_error(&e)
        )),
    }
}

/// Delete `name` (absent counts as deleted): true when it is gone, else
/// false with `deleting <what> <name>: why` added to `errors`.
async fn delete_noted<K>(api: &Api<K>, what: &str, name: &str, errors: &mut Vec<String>) -> bool
where
    K: Resource + Clone + DeserializeOwned + fmt::Debug,
{
    match delete_ignoring_absent(api, name).await {
        Ok(()) => true,
        Err(e) => {
            errors.push(format!(
                "deleting {what} {name}: {}",
                describe_kube_error(&e)
            ));
            false
        }
    }
}

/// Delete `name`; already absent (404) is success.
pub(crate) async fn delete_ignoring_absent<K>(api: &Api<K>, name: &str) -> Result<(), kube::Error>
where
    K: Resource + Clone + DeserializeOwned + fmt::Debug,
{
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

/// The random-pick seed of a run: the first 8 bytes of SHA-256(run id).
fn seed(run_id: &str) -> u64 {
    let digest = Sha256::digest(run_id.as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(bytes)
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
