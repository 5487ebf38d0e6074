//! `vantage.toml`: loading, validation and the configuration model.
//!
//! Two stages: the file is read into raw serde structs that reject unknown
//! keys and keep every value's place in the file, then each value is checked
//! and turned into the validated [`Config`]. Every problem names the file,
//! the line and column, and the key, and all problems are reported at once:
//!
//! ```text
//! vantage.toml:14:9: check "api-health": key `every`: invalid duration "1x": expected a number followed by a unit like 30s, 1m, 2h
//! ```
//!
//! # Format
//!
//! ```toml
//! [global]                      # all optional
//! location = "eu-west-1"        # label attached to every result (default "local")
//! data_dir = "/var/lib/vantage" # component cache and state (default: OS data dir)
//! allow_ceiling = ["https://*", "http://*"]  # caps every check's allow list
//! listen = "127.0.0.1:9470"     # daemon API, /metrics, status page (default)
//! public_url = "https://status.example.com"  # alerts link here (default http://{listen})
//! concurrency = 64              # runs at once (default 64)
//! history_max_age = "30d"       # history retention (default 30d)
//! history_max_runs = 10000      # runs kept per check (default 10000)
//! shutdown_grace = "30s"        # runs in flight get this long on SIGTERM
//! max_component_size = "64MiB"  # larger component files are refused (64KiB..4GiB)
//!
//! [alerts]                      # all optional
//! alertmanager = ["http://127.0.0.1:9093"]   # Alertmanager base URLs
//! webhooks = ["https://hooks.example.com/x"] # generic JSON webhooks
//! resend = "1m"                 # re-send firing alerts (default 1m)
//!
//! [defaults]                    # limits for checks that set none; all optional
//! timeout = "10s"               # default 10s
//! memory = "64MiB"              # B, KiB, MiB, GiB, KB, MB, GB; 1MiB..4GiB; default 64MiB
//! fuel = 1000000000             # instruction budget; default none
//! cpu = "2s"                    # CPU time per run (computing, not waiting); default none
//!
//! [[check]]
//! name = "api-health"           # required, unique, [a-z0-9][a-z0-9_-]*
//! component = "checks/http.wasm"  # relative to this file, or "oci://registry/repo:tag"
//! every = "1m"                  # exactly one of `every` and `cron`
//! # cron = "*/5 * * * *"
//! jitter = "5s"                 # optional random delay before each run
//! targets = ["https://api.example.com/healthz"]
//! allow = ["{target}"]          # outbound allow list; "{target}" = each target's scheme://host:port
//! timeout = "5s"                # overrides [defaults]
//! memory = "32MiB"
//! fuel = 500000000
//! cpu = "500ms"                 # below `timeout`; a run over it ends with error kind `cpu`
//! mode = "edge"                 # edge (default) | restore
//! timezone = "Europe/Berlin"    # for cron (default UTC)
//! failure_threshold = 3         # bad runs in a row before the state is down (default 1)
//! success_threshold = 2         # good runs in a row before it is up again (default 1)
//! retries = 1                   # retry a bad run before it counts (default 0, max 10)
//! retry_delay = "2s"            # default 1s
//! severity = "critical"         # alert label (default critical)
//! allow_insecure = false        # let the check make insecure TLS requests
//! [check.secrets]               # granted secrets, sorted by name
//! token = "env:API_TOKEN"       # or "file:/run/secrets/token" (relative to this file)
//! [check.config]                # free-form, passed to the check as dotted keys
//! method = "GET"
//! expect.status = [200]         # arrives as expect.status.0 = "200"
//! headers.Authorization = "Bearer {{secret.token}}"
//!
//! [[maintenance]]               # alerts suppressed; runs still recorded
//! name = "nightly-deploy"
//! checks = ["api-health"]       # absent: every check
//! cron = "0 2 * * *"            # recurring: opens when cron matches ...
//! duration = "30m"              # ... for this long
//! timezone = "Europe/Berlin"
//! # or once: start = "2026-12-01T02:00:00Z", end = "2026-12-01T04:00:00Z"
//! ```
//!
//! Every duration has a range ([`DurationRange`]; none beyond 3650d), and a
//! `cron` expression must match within the next 5 years.
//!
//! Restore tests (`[[restore]]` with `[[restore.check]]`s) and the audit
//! log (`[audit]`) are described in `examples/restore.toml` and validated
//! the same way (see `config/restore.rs` for the model).
//!
//! Outbound access is denied by default: a check reaches only what its
//! `allow` list names (see [`crate::policy`]), within `allow_ceiling`.

mod error;
mod heartbeat;
mod model;
mod raw;
mod registry;
mod remote_write;
mod restore;
pub mod s3;
mod schema_check;
mod validate;
mod values;

use std::path::Path;

pub use error::{ConfigError, Diagnostic, Severity};
pub use heartbeat::{Expect, HeartbeatConfig, MIN_TOKEN_CHARS};
pub use model::{
    Alerting, CheckSpec, ComponentRef, Config, DEFAULT_LISTEN, Global, Limits, Maintenance, Mode,
    Schedule, Window,
};
pub use registry::{DEFAULT_REGISTRY_CACHE_SIZE, RegistryConfig, VerifyConfig, VerifyRule};
pub use remote_write::{
    CentralConfig, DEFAULT_QUEUE_BYTES, QueueConfig, RemoteWriteAuth, RemoteWriteConfig,
};
pub use restore::{
    Acceptance, AuditConfig, BackupSource, ClusterAccess, EgressRule, IngressPolicy, Isolation,
    JobEnv, PLACEHOLDERS, Readiness, RestoreCheck, RestoreJob, RestoreSpec, Selection, Template,
    TemplateVars, Workload, WorkloadKind,
};
pub use restore::{DEFAULT_EXCLUDED, DEFAULT_PROBE_IMAGE, DnsPeer, DnsRule, split_endpoint};
pub use values::{
    DEFAULT_MAX_COMPONENT_SIZE, DurationRange, MAX_COMPONENT_SIZE, MAX_DURATION,
    MIN_COMPONENT_SIZE, parse_component_size,
};
pub use values::{
    DEFAULT_MEMORY, DEFAULT_TIMEOUT, HeldSecret, MAX_MEMORY, MIN_EVERY, MIN_MEMORY, SecretSource,
    ValueError, flatten_config, is_secret_name, parse_duration, parse_memory, parse_secret,
    parse_set, parse_size, parse_timeout, secret_references,
};

use error::Source;
use raw::RawConfig;
pub use raw::keys;

/// Read and validate the configuration file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    from_str(&text, path)
}

/// Validate configuration `text` that was read from `path`. The path names
/// the file in errors, and relative paths in the file (components, secret
/// files, `data_dir`) are resolved against its directory.
pub fn from_str(text: &str, path: &Path) -> Result<Config, ConfigError> {
    let src = Source { file: path, text };
    let doc = toml::de::DeTable::parse(text)
        .map_err(|e| ConfigError::Invalid(vec![src.toml_error(&e, None)]))?;
    let raw: RawConfig = toml::from_str(text)
        .map_err(|e| ConfigError::Invalid(vec![src.toml_error(&e, Some(doc.get_ref()))]))?;
    validate::validate(raw, &src, doc.get_ref())
}

#[cfg(test)]
mod tests;
