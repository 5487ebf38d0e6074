//! [`RestoreReport`]: the serializable outcome of one restore-test run, the
//! subject of its audit record and what the API shows.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    Assertion, CheckResult, ErrorKind, Measurement, RunError, RunTimings, Status, Verdict,
};

/// Everything one run found out and did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RestoreReport {
    /// The restore test's name.
    pub test: String,
    /// Unique id of the run.
    pub run_id: String,
    /// The location label of the host that ran it.
    pub location: String,
    /// The volatile namespace of the first source namespace (set once
    /// named, even if never created).
    pub namespace: Option<String>,
    /// Every source namespace and the volatile namespace it is restored
    /// into (`source → volatile`), in configuration order; set with
    /// `namespace`.
    #[serde(default)]
    pub namespaces: Vec<NamespaceMapping>,
    /// Start of the run, unix milliseconds.
    pub started_unix_ms: u64,
    /// End of the run (cleanup included), unix milliseconds.
    pub finished_unix_ms: u64,
    /// The backup restored (or the one found unusable).
    pub backup: Option<BackupInfo>,
    /// The Velero Restore, once created.
    pub restore: Option<RestoreInfo>,
    /// Readiness of the restored workloads, once waited for.
    pub readiness: Option<ReadinessInfo>,
    /// Each restore-validation check's result (a serialized
    /// [`CheckResult`]), in configuration order.
    pub checks: Vec<Value>,
    /// How long each phase took.
    pub timings: Timings,
    /// The configured RTO, seconds.
    pub rto_target_seconds: Option<f64>,
    /// The outcome.
    pub verdict: Verdict,
    /// One line saying why.
    pub reason: String,
    /// What cleanup did.
    pub cleanup: CleanupInfo,
    /// The isolation probe's outcome, when one ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isolation_probe: Option<ProbeInfo>,
    /// Each data job's outcome (`[[restore.job]]`), in configuration order.
    #[serde(default)]
    pub jobs: Vec<JobOutcome>,
    /// The finished Restore's log and results (sha256, failed items),
    /// fetched before it was deleted.
    #[serde(default)]
    pub evidence: Option<Evidence>,
    /// The run was started elsewhere (a leader that died, an earlier
    /// process) and taken over here: the same slot, its Restore waited for
    /// rather than made again; `started_unix_ms` is the first start.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub adopted: bool,
}

/// The selected backup.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BackupInfo {
    /// Its name.
    pub name: String,
    /// The Schedule that made it, if any.
    pub schedule: Option<String>,
    /// Its phase (`Completed`, ...).
    pub phase: Option<String>,
    /// `status.completionTimestamp`, RFC 3339.
    pub completion_timestamp: Option<String>,
    /// Seconds between its completion and the run.
    pub age_seconds: Option<f64>,
    /// Its BackupStorageLocation.
    pub storage_location: Option<String>,
    /// That location's phase (`Available`, `Unavailable`), once checked.
    pub storage_location_phase: Option<String>,
    /// Completion of the newest usable backup of the Schedule (the named
    /// backup's own), RFC 3339: what `max_backup_age` and
    /// `vantage_backup_age_seconds` measure.
    #[serde(default)]
    pub newest_completion_timestamp: Option<String>,
    /// Its age when the run selected, seconds.
    #[serde(default)]
    pub newest_age_seconds: Option<f64>,
}

/// The Velero Restore of the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RestoreInfo {
    /// Its name (in the Velero namespace).
    pub name: String,
    /// The last phase seen (`Completed`, `PartiallyFailed`, ...; `(none)`
    /// before Velero set one).
    pub phase: String,
    /// `status.warnings`.
    pub warnings: i64,
    /// `status.errors`.
    pub errors: i64,
    /// `status.failureReason` / `validationErrors`, joined.
    pub failure_reason: Option<String>,
    /// `status.progress.itemsRestored`.
    pub items_restored: Option<i64>,
    /// `status.progress.totalItems`.
    pub total_items: Option<i64>,
    /// `status.startTimestamp`, RFC 3339.
    pub start_timestamp: Option<String>,
    /// `status.completionTimestamp`, RFC 3339.
    pub completion_timestamp: Option<String>,
    /// Whether the run gave up waiting for it.
    pub timed_out: bool,
    /// The resources it did not restore (`spec.excludedResources`: the
    /// NetworkPolicy and routing kinds, Ingresses unless rewritten).
    #[serde(default)]
    pub excluded_resources: Vec<String>,
}

/// Readiness of the restored workloads.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReadinessInfo {
    /// Ready workloads and pods (`deployment/api`, `pod/api-1`).
    pub ready: Vec<String>,
    /// Not ready, each with why (`deployment/api: 0/2 available`).
    pub not_ready: Vec<String>,
    /// Whether the wait ended by timeout.
    pub timed_out: bool,
}

/// How long each phase took, seconds (absent: not reached).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    /// Selecting the backup and checking its storage location.
    pub select_seconds: Option<f64>,
    /// Creating the namespace, NetworkPolicy and modifier ConfigMap.
    pub setup_seconds: Option<f64>,
    /// From the Restore's creation to its last phase.
    pub restore_seconds: Option<f64>,
    /// From the restore's end until every workload was ready.
    pub ready_seconds: Option<f64>,
    /// Running the restore-validation checks.
    pub checks_seconds: Option<f64>,
    /// The measured RTO: from the start of the run until the checks were
    /// done (absent when the run did not get that far).
    pub total_seconds: Option<f64>,
    /// Deleting what the run created.
    pub cleanup_seconds: Option<f64>,
    /// Running the data jobs (after the RTO's end).
    #[serde(default)]
    pub jobs_seconds: Option<f64>,
}

/// What cleanup deleted, and what it failed to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CleanupInfo {
    /// Every volatile namespace is deleted (or was never there).
    pub namespace_deleted: bool,
    /// The Restore is deleted (or was never there).
    pub restore_deleted: bool,
    /// The resource-modifier ConfigMap is deleted (or was never there).
    pub configmap_deleted: bool,
    /// Cluster-scoped objects labelled `velero.io/restore-name=<restore>`
    /// that were deleted (`persistentvolume/NAME`).
    pub leftovers_deleted: Vec<String>,
    /// Each deletion that failed, with the API's answer.
    pub errors: Vec<String>,
    /// Objects left for the janitor, with why (a Restore Velero is still
    /// running, and its namespace: deleting that namespace now would make
    /// Velero re-create it without isolation).
    #[serde(default)]
    pub left_to_janitor: Vec<String>,
}

impl BackupInfo {
    /// Seconds from the newest completed backup to `now` (None: no usable
    /// backup was seen, or its timestamp does not parse).
    pub fn newest_age_at(&self, now: chrono::DateTime<chrono::Utc>) -> Option<f64> {
        let done =
            chrono::DateTime::parse_from_rfc3339(self.newest_completion_timestamp.as_deref()?)
                .ok()?;
        Some((now - done.with_timezone(&chrono::Utc)).num_milliseconds() as f64 / 1000.0)
    }
}

impl RestoreReport {
    /// The namespace mapping in one line: `shop → vantage-restore-shop-1a2b3c,
    /// shop-data → vantage-restore-shop-data-1a2b3c`.
    pub fn mapping_text(&self) -> String {
        self.namespaces
            .iter()
            .map(|m| format!("{} → {}", m.source, m.volatile))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The run shown like a check result: status from the verdict, summary
    /// the reason, one assertion per step (then every check's assertions,
    /// prefixed with the check's name) and the timings as measurements.
    pub fn to_check_result(&self) -> CheckResult {
        let status = match self.verdict {
            Verdict::Pass => Status::Pass,
            Verdict::Fail => Status::Fail,
            Verdict::Error => Status::Error,
        };
        let mut assertions = Vec::new();
        self.step_assertions(&mut assertions);
        self.check_assertions(&mut assertions);
        self.evidence_assertions(&mut assertions);
        let t = &self.timings;
        let measurements = [
            ("select_seconds", t.select_seconds),
            ("setup_seconds", t.setup_seconds),
            ("restore_seconds", t.restore_seconds),
            ("ready_seconds", t.ready_seconds),
            ("checks_seconds", t.checks_seconds),
            ("total_seconds", t.total_seconds),
            ("cleanup_seconds", t.cleanup_seconds),
            ("jobs_seconds", t.jobs_seconds),
            ("rto_target_seconds", self.rto_target_seconds),
            (
                "backup_age_seconds",
                self.backup.as_ref().and_then(|b| b.age_seconds),
            ),
        ]
        .into_iter()
        .filter_map(|(name, value)| {
            value.map(|value| Measurement {
                labels: Default::default(),
                name: name.to_string(),
                value,
                unit: "s".to_string(),
            })
        })
        .collect();

        let mut labels = Vec::new();
        if let Some(ns) = &self.namespace {
            labels.push(("namespace".to_string(), ns.clone()));
        }
        if self.namespaces.len() > 1 {
            for m in &self.namespaces {
                labels.push((format!("namespace:{}", m.source), m.volatile.clone()));
            }
        }
        if let Some(b) = &self.backup {
            labels.push(("backup".to_string(), b.name.clone()));
        }
        if let Some(r) = &self.restore {
            labels.push(("restore".to_string(), r.name.clone()));
        }

        CheckResult {
            check: self.test.clone(),
            status,
            summary: self.reason.clone(),
            duration_ms: self.finished_unix_ms.saturating_sub(self.started_unix_ms) as f64,
            location: self.location.clone(),
            run_id: self.run_id.clone(),
            started_unix_ms: self.started_unix_ms,
            assertions,
            measurements,
            labels,
            timings: RunTimings::default(),
            logs: Vec::new(),
            error: (self.verdict == Verdict::Error).then(|| RunError {
                kind: ErrorKind::Host,
                message: self.reason.clone(),
            }),
        }
    }

    /// The backup, restore and readiness steps as assertions.
    fn step_assertions(&self, assertions: &mut Vec<Assertion>) {
        if let Some(b) = &self.backup {
            // The namespace is named only once a usable backup was found.
            let usable = self.namespace.is_some();
            let age = b
                .age_seconds
                .map(|a| format!(", {} old", crate::units::human_seconds(a)))
                .unwrap_or_default();
            assertions.push(assertion(
                "backup selected",
                usable,
                format!(
                    "{} ({}{age}, location {} {})",
                    b.name,
                    b.phase.as_deref().unwrap_or("no phase"),
                    b.storage_location.as_deref().unwrap_or("?"),
                    b.storage_location_phase.as_deref().unwrap_or("unchecked"),
                ),
            ));
        } else if self.verdict != Verdict::Pass {
            assertions.push(assertion("backup selected", false, self.reason.clone()));
        }
        if let Some(r) = &self.restore {
            let completed = r.phase == "Completed";
            let progress = match (r.items_restored, r.total_items) {
                (Some(done), Some(total)) => format!(", {done}/{total} items"),
                _ => String::new(),
            };
            assertions.push(assertion(
                "restore completed",
                completed,
                format!(
                    "{} {}{} (warnings {}, errors {}{progress}){}",
                    r.name,
                    r.phase,
                    if r.timed_out { ", timed out" } else { "" },
                    r.warnings,
                    r.errors,
                    if self.namespaces.len() > 1 {
                        format!("; {}", self.mapping_text())
                    } else {
                        String::new()
                    }
                ),
            ));
        }
        if let Some(r) = &self.readiness {
            let ok = r.not_ready.is_empty() && !r.timed_out;
            let detail = if ok {
                format!("ready: {}", r.ready.join(", "))
            } else {
                format!("not ready: {}", r.not_ready.join(", "))
            };
            assertions.push(assertion("app ready", ok, detail));
        }
    }

    /// The validation checks' assertions (each named `check: assertion`)
    /// and the data jobs.
    fn check_assertions(&self, assertions: &mut Vec<Assertion>) {
        for check in &self.checks {
            let name = check["check"].as_str().unwrap_or("check");
            let check_status = check["status"].as_str().unwrap_or("error");
            let list = check["assertions"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            if list.is_empty() {
                assertions.push(assertion(
                    &format!("{name}: {check_status}"),
                    matches!(check_status, "pass" | "degraded"),
                    check["summary"].as_str().unwrap_or("").to_string(),
                ));
            }
            for a in list {
                assertions.push(Assertion {
                    name: format!("{name}: {}", a["name"].as_str().unwrap_or("")),
                    passed: a["passed"].as_bool().unwrap_or(false),
                    warn: false,
                    detail: a["detail"].as_str().unwrap_or("").to_string(),
                    duration_ms: a["duration_ms"].as_f64(),
                });
            }
        }
        for j in &self.jobs {
            let last = j
                .log_tail
                .last()
                .map(|l| format!("; {l}"))
                .unwrap_or_default();
            assertions.push(assertion(
                &format!("data job {}", j.name),
                j.passed,
                format!("{}{last}", j.reason),
            ));
        }
    }

    /// Velero's failed items and the RTO target.
    fn evidence_assertions(&self, assertions: &mut Vec<Assertion>) {
        if let Some(items) = self.evidence.as_ref().and_then(|e| e.failed_items.as_ref()) {
            let listed = items
                .errors
                .iter()
                .take(3)
                .cloned()
                .collect::<Vec<_>>()
                .join("; ");
            let more = items.errors_total.saturating_sub(3.min(items.errors.len()));
            assertions.push(assertion(
                "restore results: no failed items",
                items.errors_total == 0,
                format!(
                    "{} error(s), {} warning(s){}{}",
                    items.errors_total,
                    items.warnings_total,
                    if listed.is_empty() {
                        String::new()
                    } else {
                        format!(": {listed}")
                    },
                    if more > 0 {
                        format!(" (and {more} more)")
                    } else {
                        String::new()
                    }
                ),
            ));
        }
        if let (Some(target), Some(total)) = (self.rto_target_seconds, self.timings.total_seconds) {
            assertions.push(assertion(
                "rto within target",
                total <= target,
                format!(
                    "measured {} (target {})",
                    crate::units::human_seconds(total),
                    crate::units::human_seconds(target)
                ),
            ));
        }
    }
}

/// One source namespace of the backup and the volatile namespace it is
/// restored into.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamespaceMapping {
    /// The namespace in the backup (production's name).
    pub source: String,
    /// The volatile namespace the run restores it into.
    pub volatile: String,
}

impl NamespaceMapping {
    /// `source` restored into `volatile`.
    pub fn new(source: impl Into<String>, volatile: impl Into<String>) -> Self {
        NamespaceMapping {
            source: source.into(),
            volatile: volatile.into(),
        }
    }
}

/// The volatile namespace of `source` in `mapping`.
pub fn volatile_of<'a>(mapping: &'a [NamespaceMapping], source: &str) -> Option<&'a str> {
    mapping
        .iter()
        .find(|m| m.source == source)
        .map(|m| m.volatile.as_str())
}

/// What the probe found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeInfo {
    /// The endpoints tried (`host:port`).
    pub endpoints: Vec<String>,
    /// Those a pod in the volatile namespace could connect to (should be
    /// none).
    pub reached: Vec<String>,
    /// Whether isolation held: the probe ran and reached nothing.
    pub isolated: bool,
    /// Why the probe could not run, when it could not.
    pub error: Option<String>,
}

/// The outcome of one data job.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JobOutcome {
    /// The `[[restore.job]]` name.
    pub name: String,
    /// The Kubernetes Job's name.
    pub job: String,
    /// Whether it proved the data.
    pub passed: bool,
    /// The container's exit code, once terminated.
    pub exit_code: Option<i32>,
    /// Why it passed or failed, one line.
    pub reason: String,
    /// The last lines of its log.
    pub log_tail: Vec<String>,
    /// From creation to the end (or the deadline), seconds.
    pub seconds: f64,
}

/// What was kept of the Restore's log and results.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// The log as stored (gzip), when fetched.
    pub log: Option<StoredFile>,
    /// The results as stored (gzip), when fetched.
    pub results: Option<StoredFile>,
    /// What could not be fetched (or read), and why.
    pub fetch_errors: Vec<String>,
    /// The errors and warnings of the results file, when it was read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_items: Option<FailedItems>,
}

/// What the Restore's results file says failed, bounded.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FailedItems {
    /// The first `MAX_LISTED` (20) errors, each `SCOPE: message` (scope
    /// `velero`, `cluster` or `namespace NAME`).
    pub errors: Vec<String>,
    /// How many errors the file holds (Velero's `status.errors`).
    pub errors_total: usize,
    /// The first `MAX_LISTED` (20) warnings, likewise.
    pub warnings: Vec<String>,
    /// How many warnings the file holds.
    pub warnings_total: usize,
}

impl FailedItems {
    /// The first error and how many more, one line (None: no errors).
    pub fn first_error(&self) -> Option<String> {
        let first = self.errors.first()?;
        let more = self.errors_total.saturating_sub(1);
        Some(if more == 0 {
            first.clone()
        } else {
            format!("{first} (and {more} more)")
        })
    }
}

/// One file of the backup storage location.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StoredFile {
    /// sha256 of the bytes as stored (compressed), hex.
    pub sha256: String,
    /// Their length.
    pub bytes: u64,
}

/// A passed or failed assertion with its detail, without a duration.
fn assertion(name: &str, passed: bool, detail: String) -> Assertion {
    Assertion {
        name: name.to_string(),
        passed,
        warn: false,
        detail,
        duration_ms: None,
    }
}
