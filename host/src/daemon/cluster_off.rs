//! Without the `kubernetes` feature: no cluster. The daemon's code paths
//! stay the same; [`Cluster`] cannot be constructed.

use std::path::Path;

use crate::config::{self, Config, ConfigError};
use crate::sinks::Sinks;
use crate::sinks::web::Health;

/// No verdicts: there are no resources.
pub type Verdicts = Vec<()>;

/// The configuration file's text.
pub fn read_base(path: &Path, _: &ClusterOptions) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// The configuration file alone.
pub fn compose(
    text: &str,
    path: &Path,
    _: Option<&Cluster>,
) -> Result<(Config, Verdicts), ConfigError> {
    config::from_str(text, path).map(|c| (c, Vec::new()))
}

/// Nothing to configure.
#[derive(Debug, Clone, Default)]
pub struct ClusterOptions;

impl ClusterOptions {
    /// Never.
    pub fn enabled(&self) -> bool {
        false
    }

    /// Never.
    pub fn shares_checks(&self) -> bool {
        false
    }
}

/// What changed (never anything).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Never.
    Resources,
    /// Never.
    Owners,
}

/// No cluster.
pub enum Cluster {}

impl Cluster {
    /// None.
    pub async fn start(
        _: &ClusterOptions,
        _: &Path,
        _: &Sinks,
        _: &Health,
    ) -> anyhow::Result<Option<Cluster>> {
        Ok(None)
    }

    /// Unreachable.
    pub async fn changed(&mut self) -> Change {
        match *self {}
    }

    /// Unreachable.
    pub fn set_names(&mut self, _: Vec<String>) -> bool {
        match *self {}
    }

    /// Unreachable.
    pub fn runs_check(&self, _: &str) -> bool {
        match *self {}
    }

    /// Unreachable.
    pub fn runs_restore(&self, _: &str) -> bool {
        match *self {}
    }

    /// Unreachable.
    pub fn members(&self) -> Option<usize> {
        match *self {}
    }

    /// Unreachable.
    pub fn cancelled_cleanup_within(&self) -> Option<std::time::Duration> {
        match *self {}
    }

    /// Unreachable.
    pub fn leading(&self) -> Option<bool> {
        match *self {}
    }

    /// Unreachable.
    pub fn verdicts(&mut self, _: Option<Verdicts>) {
        match *self {}
    }

    /// Unreachable.
    pub async fn leave(self) {
        match self {}
    }
}
