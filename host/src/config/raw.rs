//! Stage one: `vantage.toml` exactly as written. Unknown keys are errors
//! (`deny_unknown_fields`), and every value keeps its place in the file
//! ([`Spanned`]) so stage two can point at the right line.
//!
//! Values with a unit (durations, sizes) are read as any TOML value, so that
//! `timeout = 10` gets a message showing `"10s"` rather than serde's
//! generic "expected a string".

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_spanned::Spanned;

use super::model::Mode;

/// A list of strings, each with its place.
pub(super) type SpannedList = Spanned<Vec<Spanned<String>>>;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    /// `[global]`: daemon-wide settings.
    pub global: Option<Spanned<RawGlobal>>,
    /// `[defaults]`: limits for checks that do not set their own.
    pub defaults: Option<Spanned<RawDefaults>>,
    /// `[[check]]`: one per check.
    #[serde(default)]
    pub check: Vec<Spanned<RawCheck>>,
}

/// `[global]`; every key is optional.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGlobal {
    /// Label attached to every result, e.g. `"eu-west-1"`; default `"local"`.
    pub location: Option<Spanned<String>>,
    /// Directory for the compiled-component cache and state; default: the OS
    /// data directory. Relative to the configuration file's directory.
    pub data_dir: Option<Spanned<String>>,
    /// Ceiling for every check's allow list, e.g. `["https://*", "http://*"]`.
    pub allow_ceiling: Option<SpannedList>,
}

/// `[defaults]`; every key is optional.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDefaults {
    /// Wall-clock budget of a run, e.g. `"10s"`; default 10s.
    pub timeout: Option<Spanned<toml::Value>>,
    /// Memory cap, e.g. `"64MiB"` (B, KiB, MiB, GiB, KB, MB, GB); default 64MiB.
    pub memory: Option<Spanned<toml::Value>>,
    /// Instruction budget; default: none.
    pub fuel: Option<Spanned<u64>>,
}

/// One `[[check]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCheck {
    /// Required, unique, `[a-z0-9][a-z0-9_-]*`, e.g. `"api-health"`.
    pub name: Option<Spanned<String>>,
    /// Required: a `.wasm` path relative to the configuration file's
    /// directory, or a registry reference `"oci://…"`.
    pub component: Option<Spanned<String>>,
    /// Run at this interval, e.g. `"1m"`. Exactly one of `every` and `cron`.
    pub every: Option<Spanned<toml::Value>>,
    /// Run when this cron expression matches, e.g. `"*/5 * * * *"`.
    pub cron: Option<Spanned<String>>,
    /// Random delay of up to this much before each run, e.g. `"5s"`.
    pub jitter: Option<Spanned<toml::Value>>,
    /// What to probe, usually URLs.
    pub targets: Option<SpannedList>,
    /// Outbound allow patterns; `"{target}"` stands for each target's
    /// `scheme://host:port`. Absent or empty: no outbound access.
    pub allow: Option<SpannedList>,
    /// Overrides `defaults.timeout`.
    pub timeout: Option<Spanned<toml::Value>>,
    /// Overrides `defaults.memory`.
    pub memory: Option<Spanned<toml::Value>>,
    /// Overrides `defaults.fuel`.
    pub fuel: Option<Spanned<u64>>,
    /// `"edge"` (default) or `"restore"`.
    pub mode: Option<Spanned<Mode>>,
    /// `[check.secrets]`: name = `"env:VAR"` or `"file:PATH"`.
    pub secrets: Option<BTreeMap<Spanned<String>, Spanned<String>>>,
    /// `[check.config]`: free-form, passed to the check flattened to dotted keys.
    pub config: Option<Spanned<toml::Table>>,
}
