//! [`Board`]: the live, in-memory view of every configured check, kept by the
//! scheduler and read by the HTTP API and the status page.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use serde::Serialize;

use crate::result::{CheckState, RunRecord};

/// What the API and the status page show of one check right now. The
/// default is an entry before its first run (fill in what names it with
/// `..Default::default()`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct CheckView {
    /// The check's configured name.
    pub name: String,
    /// A check or a restore test.
    pub kind: Kind,
    /// The component, as configured (a path or an `oci://` reference).
    pub component: String,
    /// `every 1m` or `cron */5 * * * *`.
    pub schedule: String,
    /// The check's targets.
    pub targets: Vec<String>,
    /// This daemon's location label.
    pub location: String,
    /// Alert severity.
    pub severity: String,
    /// The alerting state.
    pub state: CheckState,
    /// Next planned start, unix milliseconds, when known.
    pub next_unix_ms: Option<u64>,
    /// The most recent run.
    pub last: Option<Arc<RunRecord>>,
    /// The most recent run that was bad (fail or error).
    pub last_failure: Option<Arc<RunRecord>>,
    /// Runs finished: at start-up, the check's runs kept in the history
    /// (see `daemon::state::resume`), then one more per run; a check added
    /// or changed by a reload starts from 0.
    pub runs: u64,
    /// Runs skipped because the previous one was still going.
    pub skipped_overlap: u64,
    /// The maintenance window in force, if any.
    pub maintenance: Option<String>,
    /// For restore tests, the last run's full report.
    pub restore: Option<Arc<crate::result::RestoreReport>>,
}

/// What a board entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A `[[check]]`.
    #[default]
    Check,
    /// A `[[restore]]` test.
    Restore,
    /// A `[[heartbeat]]`: a job that must report in.
    Heartbeat,
}

impl Kind {
    /// `check`, `restore` or `heartbeat`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Check => "check",
            Kind::Restore => "restore",
            Kind::Heartbeat => "heartbeat",
        }
    }
}

/// Every configured check's [`CheckView`], by name. Cheap to clone (shared).
#[derive(Debug, Clone, Default)]
pub struct Board {
    inner: Arc<RwLock<BTreeMap<String, CheckView>>>,
}

impl Board {
    /// Every check, sorted by name.
    pub fn snapshot(&self) -> Vec<CheckView> {
        self.read().values().cloned().collect()
    }

    /// One check, if configured.
    pub fn get(&self, name: &str) -> Option<CheckView> {
        self.read().get(name).cloned()
    }

    /// Add or replace a check's view.
    pub fn insert(&self, view: CheckView) {
        self.write().insert(view.name.clone(), view);
    }

    /// Forget a check (removed by a reload).
    pub fn remove(&self, name: &str) {
        self.write().remove(name);
    }

    /// Change a check's view in place; does nothing if it is gone.
    pub fn update(&self, name: &str, f: impl FnOnce(&mut CheckView)) {
        if let Some(view) = self.write().get_mut(name) {
            f(view);
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, CheckView>> {
        // A panic while holding the lock leaves plain data behind: keep going.
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, CheckView>> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }
}
