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
    /// Where alerts go (`[alerts]`).
    pub alerts: Alerting,
    /// Maintenance windows (`[[maintenance]]`), in file order.
    pub maintenance: Vec<Maintenance>,
    /// Restore tests (`[[restore]]`), in file order; names are unique among
    /// checks and restore tests.
    pub restores: Vec<super::RestoreSpec>,
    /// The audit log (`[audit]`), if configured.
    pub audit: Option<super::AuditConfig>,
    /// Non-fatal notes (each names file, line and key), e.g. a check with
    /// targets but no `allow`.
    pub warnings: Vec<Diagnostic>,
    /// Every `component` key (checks and restore tests' checks), in file
    /// order: the component and a diagnostic placed at the key, whose
    /// message is empty. Problems found with the file later (it is missing,
    /// too large, not a component) are reported at the key's line.
    pub component_keys: Vec<(ComponentRef, Diagnostic)>,
    /// Where each check's `config` keys are written, for problems found
    /// once the component says what it takes (see
    /// [`Config::schema_problems`]): the dotted path (`check.0.config.
    /// expect.status.0`, and `check.0.config` for the table itself) and a
    /// diagnostic placed there, whose message is empty.
    pub config_places: Vec<(String, Diagnostic)>,
    /// OCI registries (`[registry]`).
    pub registry: super::RegistryConfig,
    /// Receivers every run's series are pushed to (`[[remote_write]]`).
    pub remote_write: Vec<super::RemoteWriteConfig>,
    /// The fleet's view (`[central]`), when this daemon shows it.
    pub central: Option<super::CentralConfig>,
    /// Jobs that must report in (`[[heartbeat]]`).
    pub heartbeats: Vec<super::HeartbeatConfig>,
}

/// The daemon's HTTP address when neither `--listen` nor `global.listen`
/// sets one.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9470";

/// Where alerts are sent (`[alerts]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Alerting {
    /// Alertmanager base URLs (alerts go to `{url}/api/v2/alerts`).
    pub alertmanagers: Vec<url::Url>,
    /// Generic JSON webhook URLs.
    pub webhooks: Vec<url::Url>,
    /// How often firing alerts are re-sent (default 1m).
    pub resend: Duration,
}

impl Default for Alerting {
    fn default() -> Self {
        Alerting {
            alertmanagers: Vec::new(),
            webhooks: Vec::new(),
            resend: Duration::from_secs(60),
        }
    }
}

/// A time when alerts are suppressed (`[[maintenance]]`). Runs still happen
/// and are recorded, marked with the window's name.
#[derive(Debug, Clone, PartialEq)]
pub struct Maintenance {
    /// Its name, shown on results and the status page.
    pub name: String,
    /// The checks it covers; empty means every check.
    pub checks: Vec<String>,
    /// When it is open.
    pub window: Window,
}

impl Maintenance {
    /// Whether the window covers `check` at `at`.
    pub fn covers(&self, check: &str, at: chrono::DateTime<chrono::Utc>) -> bool {
        (self.checks.is_empty() || self.checks.iter().any(|c| c == check))
            && self.window.is_open(at)
    }
}

/// When a maintenance window is open.
#[derive(Debug, Clone, PartialEq)]
pub enum Window {
    /// From `start` (inclusive) to `end` (exclusive).
    Once {
        /// Opens.
        start: chrono::DateTime<chrono::Utc>,
        /// Closes.
        end: chrono::DateTime<chrono::Utc>,
    },
    /// Opens whenever `cron` matches (in `timezone`), stays open `duration`.
    Recurring {
        /// The expression as written.
        expr: String,
        /// The parsed expression.
        cron: Box<croner::Cron>,
        /// How long each opening lasts.
        duration: Duration,
        /// The time zone the expression is read in.
        timezone: chrono_tz::Tz,
    },
}

impl Window {
    /// Whether the window is open at `at`.
    pub fn is_open(&self, at: chrono::DateTime<chrono::Utc>) -> bool {
        match self {
            Window::Once { start, end } => *start <= at && at < *end,
            Window::Recurring {
                cron,
                duration,
                timezone,
                ..
            } => {
                // Open if the latest opening at or before `at` is less than
                // `duration` ago.
                let Ok(span) = chrono::Duration::from_std(*duration) else {
                    return false;
                };
                let local = at.with_timezone(timezone);
                match cron.find_previous_occurrence(&local, true) {
                    Ok(opened) => local - opened < span,
                    Err(_) => false,
                }
            }
        }
    }
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
    /// Address of the HTTP API, metrics and status page (`--listen`
    /// overrides it; default [`DEFAULT_LISTEN`]).
    pub listen: Option<std::net::SocketAddr>,
    /// The URL people reach the status page at; alerts link to it. Default:
    /// `http://{listen}`.
    pub public_url: Option<String>,
    /// At most this many runs at once (default 64).
    pub concurrency: usize,
    /// History is kept this long (default 30 days).
    pub history_max_age: Duration,
    /// At most this many runs per check are kept (default 10,000).
    pub history_max_runs: u64,
    /// On shutdown, runs in flight get this long to finish (default 30s).
    pub shutdown_grace: Duration,
    /// Component files larger than this are refused, unread beyond it
    /// (default 64 MiB).
    pub max_component_size: u64,
}

impl Default for Global {
    fn default() -> Self {
        Global {
            location: "local".to_string(),
            data_dir: None,
            allow_ceiling: None,
            listen: None,
            public_url: None,
            concurrency: 64,
            history_max_age: Duration::from_secs(30 * 24 * 3600),
            history_max_runs: 10_000,
            shutdown_grace: Duration::from_secs(30),
            max_component_size: super::values::DEFAULT_MAX_COMPONENT_SIZE,
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
    /// The time zone `cron` is read in (default UTC).
    pub timezone: chrono_tz::Tz,
    /// Consecutive bad runs (fail, error) before the state turns down.
    pub failure_threshold: u32,
    /// Consecutive good runs (pass, degraded) before it turns up again.
    pub success_threshold: u32,
    /// Retries of a bad run before it counts.
    pub retries: u32,
    /// Delay before the first retry; each further retry waits twice the
    /// previous delay, capped at the check's interval, and up to 20% less at
    /// random (see `daemon::scheduler`).
    pub retry_delay: Duration,
    /// Alert severity label (default `critical`).
    pub severity: String,
    /// Whether the operator lets the check make `insecure` TLS requests.
    pub allow_insecure: bool,
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
    /// CPU time one run may use (time computing on a guest thread, as
    /// opposed to the wall-clock `timeout`); `None` for no limit.
    pub cpu: Option<Duration>,
}

impl Default for Limits {
    /// 10s, 64MiB, no fuel budget, no CPU limit.
    fn default() -> Self {
        Limits {
            timeout: DEFAULT_TIMEOUT,
            memory: DEFAULT_MEMORY,
            fuel: None,
            cpu: None,
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
