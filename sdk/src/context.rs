//! The run context and typed access to the flattened configuration.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::{Error, Metadata, Mode, RunContext};

/// Everything a check is told about the run it is asked to do.
///
/// # Configuration
///
/// The operator's configuration arrives flattened to dotted keys with string
/// values: the TOML
///
/// ```toml
/// method = "POST"
/// expect.status = [200, 204]
/// headers.Accept = "application/json"
/// ```
///
/// arrives as `method = POST`, `expect.status.0 = 200`, `expect.status.1 = 204`
/// and `headers.Accept = application/json`. The helpers below undo that:
/// [`config`](Context::config) for scalars,
/// [`config_list`](Context::config_list) for lists (a scalar counts as a list
/// of one), [`config_table`](Context::config_table) for tables, and
/// [`config_parse`](Context::config_parse) /
/// [`config_duration`](Context::config_duration) /
/// [`config_bool`](Context::config_bool) for typed values. If a key appears
/// more than once, the last occurrence wins.
///
/// ```
/// use vantage_sdk::Context;
/// let ctx = Context::builder()
///     .target("https://example.com/")
///     .config("expect.status.0", "200")
///     .config("expect.status.1", "204")
///     .config("headers.Accept", "application/json")
///     .config("retries", "3")
///     .build();
/// assert_eq!(ctx.config_list("expect.status"), vec!["200", "204"]);
/// assert_eq!(ctx.config_table("headers"), vec![("Accept", "application/json")]);
/// assert_eq!(ctx.config_parse::<u32>("retries"), Ok(Some(3)));
/// assert_eq!(ctx.config_or("method", "GET"), "GET");
/// ```
#[derive(Debug, Clone)]
pub struct Context {
    raw: RunContext,
    /// Declared keys marked [`sensitive`](crate::ConfigKey::sensitive): their
    /// values never appear in a [`ConfigError`].
    sensitive: Vec<String>,
    /// The host's monotonic clock when the run started, for
    /// [`call_timeout`](Context::call_timeout); `None` outside a component
    /// (a context built by hand in a native test), where no time passes.
    started: Option<Duration>,
}

/// Configuration keys under this prefix are set by the host, not the
/// operator.
pub const RESERVED_PREFIX: &str = "vantage.";
/// The volatile namespace of a restore run.
pub const RESTORE_NAMESPACE_KEY: &str = "vantage.restore.namespace";
/// The restored backup's name.
pub const RESTORE_BACKUP_KEY: &str = "vantage.restore.backup";
/// Seconds between the backup's completion and the run.
pub const RESTORE_BACKUP_AGE_KEY: &str = "vantage.restore.backup_age_seconds";

/// What a restore run restored (see [`Context::restore`]).
#[derive(Debug, Clone, PartialEq)]
pub struct RestoreContext {
    /// The volatile namespace the backup was restored into.
    pub namespace: String,
    /// The backup's name.
    pub backup: String,
    /// How old the backup was when the run started, if known.
    pub backup_age: Option<Duration>,
}

impl Context {
    /// Wrap the raw context the host passed to `run`.
    pub fn new(raw: RunContext) -> Self {
        Self {
            raw,
            sensitive: Vec::new(),
            started: None,
        }
    }

    /// Treat the keys `metadata` marks [`sensitive`](crate::ConfigKey::sensitive)
    /// as secrets: the errors of the typed helpers
    /// ([`config_parse`](Context::config_parse), …) name them without their
    /// value. [`export_check!`](crate::export_check) does this with the
    /// check's own [`describe`](crate::Check::describe).
    pub fn with_metadata(mut self, metadata: &Metadata) -> Self {
        self.sensitive = metadata
            .config
            .iter()
            .filter(|k| k.sensitive)
            .map(|k| k.key.clone())
            .collect();
        self
    }

    /// Whether the value of the flattened key `key` may be a secret (it is
    /// covered by a key declared [`sensitive`](crate::ConfigKey::sensitive)).
    pub fn is_sensitive(&self, key: &str) -> bool {
        self.sensitive.iter().any(|k| key_matches(k, key))
    }

    /// A [`ConfigError`] about `key` = `value`, without the value when the
    /// key is sensitive.
    pub fn config_error(&self, key: &str, value: &str, message: impl Into<String>) -> ConfigError {
        if self.is_sensitive(key) {
            ConfigError::hidden(key, message)
        } else {
            ConfigError::new(key, value, message)
        }
    }

    /// Start building a context by hand, for tests: check name `test`,
    /// location `local`, mode edge, timeout 30 s, no targets, no config.
    pub fn builder() -> ContextBuilder {
        ContextBuilder {
            raw: RunContext {
                check_name: "test".to_string(),
                targets: Vec::new(),
                config: Vec::new(),
                location: "local".to_string(),
                mode: Mode::Edge,
                timeout_ms: 30_000,
                run_id: "test-run".to_string(),
            },
        }
    }

    /// The raw context, as the host sent it.
    pub fn raw(&self) -> &RunContext {
        &self.raw
    }

    /// The name the operator gave this check, e.g. `api-health`.
    pub fn check_name(&self) -> &str {
        &self.raw.check_name
    }

    /// The targets to probe, usually URLs or `host:port` pairs. May be empty.
    pub fn targets(&self) -> &[String] {
        &self.raw.targets
    }

    /// The location label of the daemon running the check, e.g. `eu-west-1`.
    pub fn location(&self) -> &str {
        &self.raw.location
    }

    /// Why the check runs.
    pub fn mode(&self) -> Mode {
        self.raw.mode
    }

    /// The wall-clock budget of the whole run. The host cancels the run when
    /// it is spent; host calls never outlive it.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.raw.timeout_ms)
    }

    /// The timeout to give one host call (an HTTP exchange, a probe, a
    /// lookup) so that the run keeps time to report: `wanted` (the host's
    /// default, 10 s, when `None`), capped by what is left of the run's
    /// [budget](Context::timeout) minus a reserve (a tenth of the budget,
    /// between 100 ms and 1 s).
    ///
    /// A call cut by this cap ends as a `timeout` error with the phases it
    /// measured, which the check reports as a clean `fail`; without it, the
    /// host stops the whole run at its deadline and the result is `error:
    /// deadline exceeded`, with nothing measured.
    ///
    /// ```
    /// use std::time::Duration;
    /// use vantage_sdk::Context;
    /// let ctx = Context::builder().timeout(Duration::from_secs(5)).build();
    /// let t = ctx.call_timeout(None);
    /// assert!(t <= Duration::from_millis(4500) && t > Duration::from_secs(4));
    /// let roomy = Context::builder().timeout(Duration::from_secs(60)).build();
    /// assert_eq!(roomy.call_timeout(Some(Duration::from_secs(3))), Duration::from_secs(3));
    /// ```
    pub fn call_timeout(&self, wanted: Option<Duration>) -> Duration {
        let budget = self.timeout();
        let reserve = (budget / 10).clamp(Duration::from_millis(100), Duration::from_secs(1));
        let left = budget
            .saturating_sub(self.elapsed())
            .saturating_sub(reserve);
        wanted.unwrap_or(Duration::from_secs(10)).min(left)
    }

    /// Start the run's clock for [`call_timeout`](Context::call_timeout),
    /// with the host's monotonic clock. [`export_check!`](crate::export_check)
    /// does this when the run starts; a hand-built context (a native test)
    /// has no clock and counts no time as spent.
    pub fn start_clock(mut self) -> Self {
        self.started = Some(crate::clock::monotonic());
        self
    }

    /// Time spent since [`start_clock`](Context::start_clock) (zero without it).
    fn elapsed(&self) -> Duration {
        match self.started {
            Some(start) => crate::clock::monotonic().saturating_sub(start),
            None => Duration::ZERO,
        }
    }

    /// A unique identifier of this run, for correlating logs.
    pub fn run_id(&self) -> &str {
        &self.raw.run_id
    }

    /// In a restore run (mode restore), what was restored: the host passes
    /// it as the reserved configuration keys `vantage.restore.namespace`,
    /// `vantage.restore.backup` and `vantage.restore.backup_age_seconds`.
    /// `None` in an edge run.
    pub fn restore(&self) -> Option<RestoreContext> {
        Some(RestoreContext {
            namespace: self.config(RESTORE_NAMESPACE_KEY)?.to_string(),
            backup: self.config(RESTORE_BACKUP_KEY)?.to_string(),
            backup_age: self
                .config(RESTORE_BACKUP_AGE_KEY)
                .and_then(|s| s.parse::<f64>().ok())
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(Duration::from_secs_f64),
        })
    }

    /// Every configuration entry, flattened, in the order the host sent them.
    pub fn config_entries(&self) -> impl Iterator<Item = (&str, &str)> {
        self.raw
            .config
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The value of `key`, if present (the last one, if repeated).
    pub fn config(&self, key: &str) -> Option<&str> {
        self.raw
            .config
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `key`, or `default` when absent.
    pub fn config_or<'a>(&'a self, key: &str, default: &'a str) -> &'a str {
        self.config(key).unwrap_or(default)
    }

    /// Whether `key` is present, as a scalar, a list or a table.
    pub fn has_config(&self, key: &str) -> bool {
        self.raw.config.iter().any(|(k, _)| {
            k == key
                || (k.len() > key.len() && k.starts_with(key) && k.as_bytes()[key.len()] == b'.')
        })
    }

    /// The value of `key` parsed with [`FromStr`]; `Ok(None)` when absent.
    ///
    /// The error names the key and the offending value, ready to put in a
    /// summary.
    pub fn config_parse<T>(&self, key: &str) -> Result<Option<T>, ConfigError>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        self.config(key)
            .map(|value| {
                value
                    .trim()
                    .parse::<T>()
                    .map_err(|e| self.config_error(key, value, e.to_string()))
            })
            .transpose()
    }

    /// The value of `key` as a boolean (`true`/`false`, `yes`/`no`, `on`/`off`,
    /// `1`/`0`, case-insensitive); `Ok(None)` when absent.
    pub fn config_bool(&self, key: &str) -> Result<Option<bool>, ConfigError> {
        self.config(key)
            .map(|value| {
                parse_bool(value)
                    .ok_or_else(|| self.config_error(key, value, "expected true or false"))
            })
            .transpose()
    }

    /// The value of `key` as a duration (`500ms`, `2s`, `1m30s`, see
    /// [`parse_duration`](crate::parse_duration)); `Ok(None)` when absent.
    pub fn config_duration(&self, key: &str) -> Result<Option<Duration>, ConfigError> {
        self.config(key)
            .map(|value| crate::parse_duration(value).map_err(|e| self.config_error(key, value, e)))
            .transpose()
    }

    /// The list under `key`: `[v]` if `key` itself is present, otherwise the
    /// values of `key.0`, `key.1`, … ordered by index. Empty when absent.
    ///
    /// Only direct numeric children count: `key.0.name` is part of a list of
    /// tables, see [`config_table`](Context::config_table).
    pub fn config_list(&self, key: &str) -> Vec<&str> {
        if let Some(value) = self.config(key) {
            return vec![value];
        }
        let mut items: Vec<(usize, &str)> = Vec::new();
        for (k, v) in &self.raw.config {
            let Some(index) = strip_prefix_dot(k, key).and_then(|i| i.parse::<usize>().ok()) else {
                continue;
            };
            // Last occurrence of an index wins, like `config`.
            match items.iter_mut().find(|(i, _)| *i == index) {
                Some(slot) => slot.1 = v,
                None => items.push((index, v)),
            }
        }
        items.sort_by_key(|(i, _)| *i);
        items.into_iter().map(|(_, v)| v).collect()
    }

    /// Every entry under `prefix.`, with `prefix.` stripped, in order:
    /// `headers.Accept = a` gives `("Accept", "a")` for prefix `headers`.
    /// Nested keys keep their remaining dots (`a.b.c` → `("b.c", …)` for
    /// prefix `a`).
    pub fn config_table(&self, prefix: &str) -> Vec<(&str, &str)> {
        self.raw
            .config
            .iter()
            .filter_map(|(k, v)| strip_prefix_dot(k, prefix).map(|rest| (rest, v.as_str())))
            .collect()
    }
}

impl Context {
    /// The configuration keys that `metadata` does not declare, to catch
    /// typos (`expect.stauts`) that would otherwise silently skip an
    /// assertion.
    ///
    /// A declared key `k` covers `k` itself and the list items `k.0`, `k.1`, …;
    /// a declared key with a placeholder segment, such as `headers.<name>`,
    /// covers everything under `headers.`.
    ///
    /// Keys under `vantage.` are reserved for what the host adds (see
    /// [`Context::restore`]) and never reported.
    pub fn unknown_config_keys(&self, metadata: &Metadata) -> Vec<&str> {
        self.raw
            .config
            .iter()
            .map(|(k, _)| k.as_str())
            .filter(|key| !key.starts_with(RESERVED_PREFIX))
            .filter(|key| {
                !metadata
                    .config
                    .iter()
                    .any(|declared| key_matches(&declared.key, key))
            })
            .collect()
    }

    /// The keys `metadata` marks [`required`](crate::ConfigKey::required)
    /// that the configuration does not set (as a scalar, a list or a table).
    pub fn missing_config_keys<'m>(&self, metadata: &'m Metadata) -> Vec<&'m str> {
        metadata
            .config
            .iter()
            .filter(|declared| declared.required)
            .filter(|declared| {
                !self.has_config(&declared.key)
                    && !self
                        .raw
                        .config
                        .iter()
                        .any(|(k, _)| key_matches(&declared.key, k))
            })
            .map(|declared| declared.key.as_str())
            .collect()
    }

    /// Fail on the first configuration key that `metadata` does not declare
    /// (see [`unknown_config_keys`](Context::unknown_config_keys)), with the
    /// keys that are understood, then on the first required key that is
    /// missing (see [`missing_config_keys`](Context::missing_config_keys)).
    ///
    /// The error never shows the value of an unknown key: it may be a
    /// secret under a mistyped name.
    ///
    /// [`export_check!`](crate::export_check) does this before every run of
    /// a check whose [`describe`](crate::Check::describe) declares at least
    /// one key, so a check does not call it itself. Values are checked
    /// against their key's type by the host, when it loads the
    /// configuration; [`check_config_values`](Context::check_config_values)
    /// does the same inside a check.
    pub fn check_config_keys(&self, metadata: &Metadata) -> Result<(), Error> {
        if let Some(key) = self.unknown_config_keys(metadata).first() {
            let known: Vec<&str> = metadata.config.iter().map(|c| c.key.as_str()).collect();
            return Err(ConfigError::hidden(
                *key,
                format!("unknown key; this check understands {}", known.join(", ")),
            )
            .into());
        }
        match self.missing_config_keys(metadata).first() {
            None => Ok(()),
            Some(key) => Err(Error::config(format!("missing config `{key}`"))),
        }
    }

    /// Fail on the first configuration value that is not of its declared
    /// key's [type](crate::ValueType) (see
    /// [`ValueType::check`](crate::ValueType::check)), without showing the
    /// value of a [`sensitive`](crate::ConfigKey::sensitive) key.
    ///
    /// The host does this when it loads the configuration (`vantage
    /// validate` included), so a run never sees a badly typed value; the
    /// SDK does not repeat it before each run (its number and duration
    /// parsing would add some 45 KB to every component). Call it for
    /// defense in depth, or in tests.
    pub fn check_config_values(&self, metadata: &Metadata) -> Result<(), ConfigError> {
        for (key, value) in &self.raw.config {
            let Some(declared) = metadata.config.iter().find(|d| d.covers(key)) else {
                continue;
            };
            if let Err(why) = declared.value_type.check(value) {
                return Err(if declared.sensitive {
                    ConfigError::hidden(key, why)
                } else {
                    ConfigError::new(key, value, why)
                });
            }
        }
        Ok(())
    }

    /// The targets, or an [`ErrorKind::NoTarget`](crate::ErrorKind::NoTarget)
    /// error `no target: <hint>` when there is none; `hint` says what to
    /// configure.
    ///
    /// ```
    /// use vantage_sdk::Context;
    /// let none = Context::builder().build();
    /// let error = none.require_targets("configure the URL to fetch").unwrap_err();
    /// assert_eq!(error.to_string(), "no target: configure the URL to fetch");
    /// let one = Context::builder().target("https://example.com/").build();
    /// assert_eq!(one.require_targets("…").unwrap(), ["https://example.com/"]);
    /// ```
    pub fn require_targets(&self, hint: &str) -> Result<&[String], Error> {
        match self.targets() {
            [] => Err(Error::no_target(hint)),
            targets => Ok(targets),
        }
    }
}

/// `true`/`false`, `yes`/`no`, `on`/`off`, `1`/`0`, case-insensitive.
pub(crate) fn parse_bool(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Some(true),
        "false" | "no" | "off" | "0" => Some(false),
        _ => None,
    }
}

pub(crate) fn key_matches(declared: &str, key: &str) -> bool {
    if let Some(open) = declared.find('<') {
        let prefix = &declared[..open];
        return key.len() > prefix.len() && key.starts_with(prefix);
    }
    key == declared
        || strip_prefix_dot(key, declared)
            .is_some_and(|rest| rest.bytes().all(|b| b.is_ascii_digit()))
}

impl From<RunContext> for Context {
    fn from(raw: RunContext) -> Self {
        Self::new(raw)
    }
}

fn strip_prefix_dot<'a>(key: &'a str, prefix: &str) -> Option<&'a str> {
    key.strip_prefix(prefix)?
        .strip_prefix('.')
        .filter(|rest| !rest.is_empty())
}

/// Builds a [`Context`] by hand, for unit tests of a check. See
/// [`Context::builder`].
#[derive(Debug, Clone)]
pub struct ContextBuilder {
    raw: RunContext,
}

impl ContextBuilder {
    /// Set the check name.
    pub fn check_name(mut self, name: impl Into<String>) -> Self {
        self.raw.check_name = name.into();
        self
    }

    /// Add a target.
    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.raw.targets.push(target.into());
        self
    }

    /// Add a flattened configuration entry.
    pub fn config(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.raw.config.push((key.into(), value.into()));
        self
    }

    /// Add several flattened configuration entries, in order.
    pub fn configs<K, V>(mut self, entries: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<String>,
        V: Into<String>,
    {
        self.raw
            .config
            .extend(entries.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    /// Set the location label.
    pub fn location(mut self, location: impl Into<String>) -> Self {
        self.raw.location = location.into();
        self
    }

    /// Set the mode.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.raw.mode = mode;
        self
    }

    /// Set the run's budget.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.raw.timeout_ms = crate::util::duration_ms_u64(timeout);
        self
    }

    /// Finish.
    pub fn build(self) -> Context {
        Context::new(self.raw)
    }
}

/// A configuration value that could not be understood.
///
/// Shown as ``invalid config `<key>` = "<value>": <message>``, or without
/// the value when it may be a secret (``invalid config `<key>`: <message>``).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The flattened key, e.g. `expect.status.1`.
    pub key: String,
    /// The value found; `None` when it must not be shown (a sensitive key,
    /// an unknown key).
    pub value: Option<String>,
    /// What is wrong with it.
    pub message: String,
}

impl ConfigError {
    /// A new error about `key` = `value`.
    pub fn new(
        key: impl Into<String>,
        value: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            key: key.into(),
            value: Some(value.into()),
            message: message.into(),
        }
    }

    /// A new error about `key` whose value is not to be shown (it may be a
    /// secret).
    pub fn hidden(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            value: None,
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(value) => write!(
                f,
                "invalid config `{}` = {value:?}: {}",
                self.key, self.message
            ),
            None => write!(f, "invalid config `{}`: {}", self.key, self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(entries: &[(&str, &str)]) -> Context {
        Context::builder().configs(entries.iter().copied()).build()
    }

    #[test]
    fn scalar_lookup_last_wins() {
        let c = ctx(&[("a", "1"), ("b", "2"), ("a", "3")]);
        assert_eq!(c.config("a"), Some("3"));
        assert_eq!(c.config("c"), None);
        assert_eq!(c.config_or("c", "dflt"), "dflt");
        assert_eq!(c.config_or("b", "dflt"), "2");
    }

    #[test]
    fn lists_are_ordered_by_index_and_accept_scalars() {
        let c = ctx(&[
            ("s.10", "ten"),
            ("s.2", "two"),
            ("s.0", "zero"),
            ("s.x", "not an index"),
            ("s.1.name", "nested"),
            ("single", "only"),
            ("sx.0", "other key"),
        ]);
        assert_eq!(c.config_list("s"), vec!["zero", "two", "ten"]);
        assert_eq!(c.config_list("single"), vec!["only"]);
        assert!(c.config_list("missing").is_empty());
        assert!(c.config_list("s.0").len() == 1);
    }

    #[test]
    fn tables_strip_prefix_and_keep_order() {
        let c = ctx(&[
            ("headers.Accept", "application/json"),
            ("headersX.no", "no"),
            ("headers", "scalar is not an entry"),
            ("headers.X-Trace.Id", "nested"),
            ("expect.json./status", "ok"),
            ("expect.json./a.b", "dots"),
        ]);
        assert_eq!(
            c.config_table("headers"),
            vec![("Accept", "application/json"), ("X-Trace.Id", "nested")]
        );
        assert_eq!(
            c.config_table("expect.json"),
            vec![("/status", "ok"), ("/a.b", "dots")]
        );
        assert!(c.config_table("nothing").is_empty());
        assert!(c.has_config("expect"));
        assert!(c.has_config("headers"));
        assert!(!c.has_config("expec"));
    }

    #[test]
    fn typed_values() {
        let c = ctx(&[
            ("n", " 42 "),
            ("bad", "forty"),
            ("t", "Yes"),
            ("f", "off"),
            ("d", "1.5s"),
            ("nd", "15"),
        ]);
        assert_eq!(c.config_parse::<u16>("n"), Ok(Some(42)));
        assert_eq!(c.config_parse::<u16>("missing"), Ok(None));
        let err = c.config_parse::<u16>("bad").unwrap_err();
        assert_eq!(err.key, "bad");
        assert!(
            err.to_string()
                .starts_with("invalid config `bad` = \"forty\": "),
            "{err}"
        );
        assert_eq!(c.config_bool("t"), Ok(Some(true)));
        assert_eq!(c.config_bool("f"), Ok(Some(false)));
        assert!(c.config_bool("n").is_err());
        assert_eq!(
            c.config_duration("d"),
            Ok(Some(Duration::from_millis(1500)))
        );
        assert!(c.config_duration("nd").is_err());
        assert_eq!(c.config_duration("missing"), Ok(None));
    }

    #[test]
    fn restore_context_comes_from_reserved_keys_that_are_never_unknown() {
        let edge = Context::builder().build();
        assert_eq!(edge.restore(), None);
        let c = Context::builder()
            .config(RESTORE_NAMESPACE_KEY, "vantage-restore-shop-1a2b")
            .config(RESTORE_BACKUP_KEY, "daily-20261127")
            .config(RESTORE_BACKUP_AGE_KEY, "3600")
            .build();
        let r = c.restore().unwrap();
        assert_eq!(r.namespace, "vantage-restore-shop-1a2b");
        assert_eq!(r.backup, "daily-20261127");
        assert_eq!(r.backup_age, Some(Duration::from_secs(3600)));
        assert!(c.unknown_config_keys(&Metadata::new("x")).is_empty());
    }

    #[test]
    fn unknown_keys_are_reported() {
        use crate::ConfigKey;
        let m = Metadata::new("x")
            .config_key(ConfigKey::new("method", ""))
            .config_key(ConfigKey::new("expect.status", ""))
            .config_key(ConfigKey::new("headers.<name>", ""))
            .config_key(ConfigKey::new("expect.json.<pointer>", ""));
        let c = ctx(&[
            ("method", "GET"),
            ("expect.status.0", "200"),
            ("expect.status", "200"),
            ("headers.Accept", "x"),
            ("expect.json./a.b", "1"),
            ("expect.stauts", "200"),
            ("expect.status.x", "1"),
            ("headers", "no name"),
        ]);
        assert_eq!(
            c.unknown_config_keys(&m),
            vec!["expect.stauts", "expect.status.x", "headers"]
        );
        let err = c.check_config_keys(&m).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Config);
        assert!(
            err.message().starts_with("invalid config `expect.stauts`: unknown key; this check understands method, expect.status, headers.<name>"),
            "{err}"
        );
        assert!(ctx(&[("method", "GET")]).check_config_keys(&m).is_ok());
    }

    /// Regression: an unknown key used to be shown with its value
    /// (`invalid config `bearer_token` = "mysecret"`); neither an unknown
    /// key's value nor a sensitive key's value reaches an error.
    #[test]
    fn errors_never_show_secret_values() {
        use crate::{ConfigKey, ValueType};
        let m = Metadata::new("x")
            .config_key(ConfigKey::new("token", "").sensitive())
            .config_key(ConfigKey::new("retries", "").typed(ValueType::integer(Some(0), Some(5))))
            .config_key(
                ConfigKey::new("pin", "")
                    .typed(ValueType::integer(None, None))
                    .sensitive(),
            );
        let typo = ctx(&[("bearer_token", "mysecret")]);
        let err = typo.check_config_keys(&m).unwrap_err().to_string();
        assert!(!err.contains("mysecret"), "{err}");
        assert!(
            err.starts_with("invalid config `bearer_token`: unknown key"),
            "{err}"
        );

        let bad = ctx(&[("retries", "9")]);
        assert!(
            bad.check_config_keys(&m).is_ok(),
            "values are the host's to check"
        );
        assert_eq!(
            bad.check_config_values(&m).unwrap_err().to_string(),
            "invalid config `retries` = \"9\": expected at most 5"
        );
        let secret = ctx(&[("pin", "hunter2")]);
        let err = secret.check_config_values(&m).unwrap_err().to_string();
        assert_eq!(err, "invalid config `pin`: expected a whole number");
        assert!(
            ctx(&[("retries", "5"), ("pin", "7")])
                .check_config_values(&m)
                .is_ok()
        );

        let c = ctx(&[("token", "s3cr3t"), ("retries", "x")]).with_metadata(&m);
        assert!(c.is_sensitive("token") && !c.is_sensitive("retries"));
        let err = c.config_parse::<u32>("token").unwrap_err();
        assert_eq!(err.value, None);
        assert!(!err.to_string().contains("s3cr3t"), "{err}");
        let err = c.config_parse::<u32>("retries").unwrap_err();
        assert_eq!(err.value.as_deref(), Some("x"));
    }

    #[test]
    fn required_keys_must_be_set() {
        use crate::ConfigKey;
        let m = Metadata::new("x")
            .config_key(ConfigKey::new("login.username", "").required())
            .config_key(ConfigKey::new("expect.json.<pointer>", "").required())
            .config_key(ConfigKey::new("method", ""));
        let both = ctx(&[("login.username", "monitor"), ("expect.json./a", "1")]);
        assert!(both.missing_config_keys(&m).is_empty());
        assert!(both.check_config_keys(&m).is_ok());
        let none = ctx(&[("method", "GET")]);
        assert_eq!(
            none.missing_config_keys(&m),
            ["login.username", "expect.json.<pointer>"]
        );
        let err = none.check_config_keys(&m).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Config);
        assert_eq!(err.message(), "missing config `login.username`");
        // An unknown key is reported first: it may be the required one, mistyped.
        let typo = ctx(&[("login.usrename", "monitor"), ("expect.json./a", "1")]);
        assert!(
            typo.check_config_keys(&m)
                .unwrap_err()
                .message()
                .contains("`login.usrename`")
        );
    }

    #[test]
    fn targets_are_required_with_a_hint() {
        let err = Context::builder()
            .build()
            .require_targets("set one")
            .unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::NoTarget);
        assert_eq!(err.message(), "no target: set one");
        let c = Context::builder().target("a:1").target("b:2").build();
        assert_eq!(c.require_targets("set one").unwrap(), ["a:1", "b:2"]);
    }

    /// Regression: a request without `timeout` got the host's 10 s, capped by
    /// the run's deadline, so the deadline cut the run before it could
    /// report (`error: deadline exceeded` instead of a `fail` with phases).
    #[test]
    fn call_timeouts_leave_room_to_report() {
        let ctx = |budget_ms: u64| {
            Context::builder()
                .timeout(Duration::from_millis(budget_ms))
                .build()
        };
        let c = ctx(2_000);
        let t = c.call_timeout(None);
        assert!(t <= Duration::from_millis(1_800), "{t:?}");
        assert!(t > Duration::from_millis(1_500), "{t:?}");
        assert!(c.call_timeout(Some(Duration::from_secs(30))) <= Duration::from_millis(1_800));
        // A large budget keeps at most 1 s back; the default is the host's.
        assert_eq!(ctx(600_000).call_timeout(None), Duration::from_secs(10));
        let t = ctx(20_000).call_timeout(Some(Duration::from_secs(60)));
        assert!(
            t <= Duration::from_secs(19) && t > Duration::from_millis(18_500),
            "{t:?}"
        );
        // A tiny budget keeps 100 ms back, and never goes below zero.
        assert_eq!(ctx(50).call_timeout(None), Duration::ZERO);
    }

    #[test]
    fn context_accessors() {
        let c = Context::builder()
            .check_name("api")
            .target("https://a/")
            .target("https://b/")
            .location("eu-west-1")
            .mode(Mode::Restore)
            .timeout(Duration::from_secs(5))
            .build();
        assert_eq!(c.check_name(), "api");
        assert_eq!(c.targets(), ["https://a/", "https://b/"]);
        assert_eq!(c.location(), "eu-west-1");
        assert_eq!(c.mode(), Mode::Restore);
        assert_eq!(c.timeout(), Duration::from_secs(5));
        assert_eq!(c.run_id(), "test-run");
    }
}
