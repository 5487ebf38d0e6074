//! Restore tests in a build without the `restore` feature (an edge daemon):
//! there are none. The configuration refuses `[[restore]]` and `[audit]` in
//! such a build, naming the file and line, so nothing here is ever asked to
//! run a restore test; the types cannot even be constructed.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::{Daemon, LoadPass};
use crate::config::Config;
use crate::sinks::Sinks;

/// A restore test's task: none exists in this build.
pub enum RestoreTask {}

impl RestoreTask {
    /// Ask the task to stop.
    pub fn stop(&self) {
        match *self {}
    }

    /// Stop it and cancel its run.
    pub fn cancel(&self) {
        match *self {}
    }

    /// Wait for the task to end.
    pub async fn join(self, _grace: Duration) {
        match self {}
    }
}

/// The audit log: none in this build.
pub enum AuditLog {}

/// No audit log in this build (the configuration refused `[audit]`).
pub(super) async fn open_audit(
    config: &Config,
    _data_dir: &Path,
    _sinks: &Sinks,
) -> anyhow::Result<Option<Arc<AuditLog>>> {
    anyhow::ensure!(
        config.audit.is_none(),
        "[audit] needs a vantage built with the `restore` feature"
    );
    Ok(None)
}

/// Nothing to close.
pub(super) async fn close_audit(_audit: Option<Arc<AuditLog>>) {}

/// No janitor: no cluster is used.
pub(super) struct Janitor;

impl Janitor {
    pub(super) fn start(_config: &Config) -> Self {
        Janitor
    }

    pub(super) fn stop(self) {}
}

impl Daemon {
    /// No restore tests to apply (the configuration refused any). Returns
    /// (added, changed, removed).
    pub(super) async fn apply_restores(
        &mut self,
        config: &Config,
        _pass: &mut LoadPass,
        _stopping: &mut Vec<RestoreTask>,
    ) -> (usize, usize) {
        debug_assert!(config.restores.is_empty());
        (0, 0)
    }
}
