//! [`RunRecord`]: what the scheduler hands to every sink after a run, and
//! [`CheckState`], the per-check state that alerts follow.

use serde::Serialize;

use super::{CheckResult, Status};

/// The alerting state of a check. It changes only after
/// `failure_threshold` consecutive bad runs (fail or error), and back after
/// `success_threshold` consecutive good runs (pass or degraded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum CheckState {
    /// No run has finished yet.
    #[default]
    Pending,
    /// The check is passing (its last runs were good enough).
    Up,
    /// The check is failing: alerts fire while it stays here.
    Down,
}

impl CheckState {
    /// Every state, in the order metrics list them.
    pub const ALL: [CheckState; 3] = [CheckState::Pending, CheckState::Up, CheckState::Down];

    /// Lowercase name, as in JSON and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckState::Pending => "pending",
            CheckState::Up => "up",
            CheckState::Down => "down",
        }
    }
}

/// An earlier attempt of the same run that failed and was retried.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attempt {
    /// Its verdict.
    pub status: Status,
    /// Its one-line summary (or error message).
    pub summary: String,
    /// Its wall-clock duration, milliseconds.
    pub duration_ms: f64,
}

/// The state change a run caused, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Transition {
    /// The state before the run.
    pub from: CheckState,
    /// The state after the run.
    pub to: CheckState,
}

/// One finished, scheduled run of one check, with everything the sinks need.
/// The scheduler builds it once and shares it (`Arc<RunRecord>`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunRecord {
    /// The result of the final attempt (it carries the check name, location,
    /// run id, status, assertions, measurements, timings and logs).
    pub result: CheckResult,
    /// When the run was planned to start, unix milliseconds.
    pub planned_unix_ms: u64,
    /// Actual start minus planned start, milliseconds (never negative).
    pub lateness_ms: f64,
    /// Earlier attempts that were retried before this result counted; empty
    /// when the first attempt counted.
    pub retries: Vec<Attempt>,
    /// The check's state after this run.
    pub state: CheckState,
    /// The state change this run caused, if any.
    pub transition: Option<Transition>,
    /// The name of the maintenance window in force, if any: runs are still
    /// recorded, alerts are suppressed.
    pub maintenance: Option<String>,
    /// The alert severity configured for the check (`critical` by default).
    pub severity: String,
    /// What ran (none when no component could be loaded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub component: Option<RanComponent>,
}

/// The component a run executed, by content: its source and the sha256 of
/// its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RanComponent {
    /// The file, or the registry reference pinned to its manifest digest
    /// (`oci://host/repo:tag@sha256:…`).
    pub source: String,
    /// sha256 of the component's bytes (hex).
    pub sha256: String,
}

impl RunRecord {
    /// The check's configured name.
    pub fn check(&self) -> &str {
        &self.result.check
    }

    /// The location label of the daemon that ran it.
    pub fn location(&self) -> &str {
        &self.result.location
    }

    /// Assertions that did not hold, as `name: detail` lines.
    pub fn failing_assertions(&self) -> Vec<String> {
        self.result
            .assertions
            .iter()
            .filter(|a| !a.passed)
            .map(|a| {
                if a.detail.is_empty() {
                    a.name.clone()
                } else {
                    format!("{}: {}", a.name, a.detail)
                }
            })
            .collect()
    }

    /// Why the run is bad, for humans: the error message, else the failing
    /// assertions, else the summary.
    pub fn reason(&self) -> String {
        if let Some(e) = &self.result.error {
            return e.message.clone();
        }
        let failing = self.failing_assertions();
        if !failing.is_empty() {
            return failing.join("; ");
        }
        self.result.summary.clone()
    }
}
