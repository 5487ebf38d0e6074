//! The validated configuration: what the rest of Vantage works from. Every
//! value here has been checked; nothing downstream re-parses text.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use super::error::Diagnostic;
use super::values::{DEFAULT_MEMORY, DEFAULT_TIMEOUT, SecretSource, ValueError};
use crate::policy::AllowList;

/// A loaded, valid `vantage.toml`.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file it was read from (as given, not canonicalized).
    pub source: PathBuf,
    /// Daemon-wide settings.
    pub global: Global,
    /// The limits a check gets for what it does not set itself.
    pub defaults: Limits,
    /// The checks, in file order; names are unique.
    pub checks: Vec<CheckSpec>,
    /// Non-fatal notes (each names file, line and key), e.g. a check with
    /// targets but no `allow`.
    pub warnings: Vec<Diagnostic>,
}

/// Daemon-wide settings (`[global]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Global {
    /// Label attached to every result, e.g. `eu-west-1` (default `local`).
    pub location: String,
    /// Where compiled components and state are kept; `None` lets the caller
    /// pick the OS data directory. Relative paths are resolved against the
    /// configuration file's directory.
    pub data_dir: Option<PathBuf>,
    /// Operator-wide ceiling for every check's allow list, if set. Checks'
    /// lists have already been checked against it.
    pub allow_ceiling: Option<AllowList>,
}

impl Default for Global {
    fn default() -> Self {
        Global {
            location: "local".to_string(),
            data_dir: None,
            allow_ceiling: None,
        }
    }
}

/// One `[[check]]`: which component runs, when, against what, with which
/// permissions and limits.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckSpec {
    /// Unique name, `[a-z0-9][a-z0-9_-]*`.
    pub name: String,
    /// The component to run.
    pub component: ComponentRef,
    /// When to run it.
    pub schedule: Schedule,
    /// Random delay added to each scheduled run, up to this much (zero: none).
    pub jitter: Duration,
    /// What the check probes, usually URLs; passed to the check as is.
    pub targets: Vec<String>,
    /// Outbound allow list, with `{target}` expanded and within the
    /// operator's ceiling. Empty means no outbound access.
    pub allow: AllowList,
    /// Secrets granted to the check, by name, sorted by name.
    pub secrets: Vec<(String, SecretSource)>,
    /// Deadline, memory and fuel.
    pub limits: Limits,
    /// Why the check runs.
    pub mode: Mode,
    /// The check's configuration, flattened to dotted keys (see
    /// [`flatten_config`](super::flatten_config)).
    pub config: Vec<(String, String)>,
}

/// Where a check's component comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ComponentRef {
    /// A `.wasm` file; relative paths in `vantage.toml` are resolved against
    /// the configuration file's directory.
    Path(PathBuf),
    /// A registry reference, kept as written, including the `oci://` prefix
    /// (`oci://ghcr.io/vantage/http:0.1`).
    Oci(String),
}

impl fmt::Display for ComponentRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ComponentRef::Path(p) => write!(f, "{}", p.display()),
            ComponentRef::Oci(r) => f.write_str(r),
        }
    }
}

/// When a check runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    /// At a fixed interval (`every = "1m"`), at least one second.
    Every(Duration),
    /// At the times a cron expression matches (`cron = "*/5 * * * *"`): the
    /// text as written and the parsed expression. Five fields (minute hour
    /// day-of-month month day-of-week), or six with seconds first; `@hourly`
    /// and similar nicknames work too. Boxed: a parsed expression is large.
    Cron(String, Box<croner::Cron>),
}

impl fmt::Display for Schedule {
    /// `every 1m` or `cron */5 * * * *`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Schedule::Every(d) => write!(f, "every {}", humantime::format_duration(*d)),
            Schedule::Cron(expr, _) => write!(f, "cron {expr}"),
        }
    }
}

/// What one run of a check may use.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Limits {
    /// Wall-clock budget of a run (greater than zero).
    pub timeout: Duration,
    /// Memory cap in bytes (1MiB to 4GiB).
    pub memory: u64,
    /// Instruction budget (fuel); `None` for no budget.
    pub fuel: Option<u64>,
}

impl Default for Limits {
    /// 10s, 64MiB, no fuel budget.
    fn default() -> Self {
        Limits {
            timeout: DEFAULT_TIMEOUT,
            memory: DEFAULT_MEMORY,
            fuel: None,
        }
    }
}

/// Why a check runs (the check world's `mode`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// A scheduled deep check of a live endpoint (the default).
    #[default]
    Edge,
    /// Validation of an application restored from a backup.
    Restore,
}

impl Mode {
    /// `edge` or `restore`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Edge => "edge",
            Mode::Restore => "restore",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Mode {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, ValueError> {
        match s {
            "edge" => Ok(Mode::Edge),
            "restore" => Ok(Mode::Restore),
            _ => Err(ValueError(format!(
                "invalid mode {s:?}: expected edge or restore"
            ))),
        }
    }
}
