//! Parsers for the values written in `vantage.toml` and on the command line
//! (`--timeout 10s --memory 64MiB --secret NAME=env:VAR --set key=value`).
//! Each error says what was wrong and shows the form to write.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// A value that could not be parsed; the message names the value and shows
/// the correct form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValueError(pub String);

/// The timeout of a check when neither the check nor `[defaults]` sets one.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The memory cap of a check when neither the check nor `[defaults]` sets one.
pub const DEFAULT_MEMORY: u64 = 64 * MIB;
/// The smallest memory cap accepted.
pub const MIN_MEMORY: u64 = MIB;
/// The largest memory cap accepted: all a 32-bit WebAssembly memory can use.
pub const MAX_MEMORY: u64 = 4 * GIB;
/// The shortest interval accepted for `every`.
pub const MIN_EVERY: Duration = Duration::from_secs(1);

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;

const DURATION_FORM: &str = "expected a number followed by a unit like 30s, 1m, 2h";

const MINUTE: u64 = 60;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;

/// The longest duration any key accepts: 10 years (3650d). Longer values
/// mean nothing to a monitor and would overflow the millisecond arithmetic
/// of schedules (`every = "2305843009213693957s"` used to run every 5s).
pub const MAX_DURATION: Duration = Duration::from_secs(3650 * DAY);

/// The range a duration key accepts, both ends included. `min` of
/// [`DurationRange::POSITIVE`] means "greater than zero".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationRange {
    /// The shortest value accepted.
    pub min: Duration,
    /// The longest value accepted.
    pub max: Duration,
}

impl DurationRange {
    /// The smallest positive duration: as `min`, "greater than zero".
    pub const POSITIVE: Duration = Duration::from_nanos(1);

    /// `every` of a check or restore test: 1s to 366d.
    pub const EVERY: Self = Self::new(MIN_EVERY, Duration::from_secs(366 * DAY));
    /// `jitter`: 0 to 366d (and a warning when not shorter than `every`).
    pub const JITTER: Self = Self::new(Duration::ZERO, Duration::from_secs(366 * DAY));
    /// A run's `timeout` (checks, `[defaults]`, `vantage run --timeout`):
    /// greater than zero, at most 24h.
    pub const TIMEOUT: Self = Self::new(Self::POSITIVE, Duration::from_secs(DAY));
    /// `retry_delay`: 0 to 1h.
    pub const RETRY_DELAY: Self = Self::new(Duration::ZERO, Duration::from_secs(HOUR));
    /// `[global] shutdown_grace`: 0 to 1h.
    pub const SHUTDOWN_GRACE: Self = Self::new(Duration::ZERO, Duration::from_secs(HOUR));
    /// `[global] history_max_age`: greater than zero, at most 3650d.
    pub const HISTORY_MAX_AGE: Self = Self::new(Self::POSITIVE, MAX_DURATION);
    /// `[alerts] resend`: greater than zero, at most 30d.
    pub const RESEND: Self = Self::new(Self::POSITIVE, Duration::from_secs(30 * DAY));
    /// A recurring `[[maintenance]]` window's `duration`: greater than zero,
    /// at most 366d.
    pub const WINDOW_DURATION: Self = Self::new(Self::POSITIVE, Duration::from_secs(366 * DAY));
    /// `[[restore]]` `restore_timeout` and `ready_timeout`: greater than
    /// zero, at most 7d.
    pub const RESTORE_TIMEOUT: Self = Self::new(Self::POSITIVE, Duration::from_secs(7 * DAY));
    /// `[[restore]]` `ttl` and `rto`: greater than zero, at most 30d.
    pub const RESTORE_TTL: Self = Self::new(Self::POSITIVE, Duration::from_secs(30 * DAY));
    /// `[[restore]]` `poll_interval`: greater than zero, at most 1h.
    pub const POLL_INTERVAL: Self = Self::new(Self::POSITIVE, Duration::from_secs(HOUR));
    /// `[[restore]]` `window` (random selection): greater than zero, at most
    /// 3650d.
    pub const SELECTION_WINDOW: Self = Self::new(Self::POSITIVE, MAX_DURATION);
    /// `[audit] checkpoint_every`: 1s to 7d.
    pub const CHECKPOINT_EVERY: Self =
        Self::new(Duration::from_secs(1), Duration::from_secs(7 * DAY));

    /// A range from `min` to `max`, both included.
    pub const fn new(min: Duration, max: Duration) -> Self {
        DurationRange { min, max }
    }

    /// Parse a [duration](parse_duration) for `key` and check it is in range.
    pub fn parse(&self, key: &str, s: &str) -> Result<Duration, ValueError> {
        let d = parse_duration(s)?;
        if d < self.min {
            let msg = if self.min == Self::POSITIVE {
                format!("{key} {s:?} must be greater than zero")
            } else {
                format!(
                    "{key} {s:?} is too short: the minimum is {}",
                    whole_units(self.min)
                )
            };
            return Err(ValueError(msg));
        }
        if d > self.max {
            return Err(ValueError(format!(
                "{key} {s:?} is too long: the maximum is {}",
                whole_units(self.max)
            )));
        }
        Ok(d)
    }
}

/// A limit as written in the configuration: `366d`, `24h`... in the
/// largest unit that divides it (humantime would show 366d as
/// "1year 18h", its years being 365.25 days).
fn whole_units(d: Duration) -> String {
    let secs = d.as_secs();
    if d.subsec_nanos() != 0 || secs == 0 {
        return humantime::format_duration(d).to_string();
    }
    [(DAY, "d"), (HOUR, "h"), (MINUTE, "m"), (1, "s")]
        .iter()
        .find(|(unit, _)| secs.is_multiple_of(*unit))
        .map_or_else(
            || format!("{secs}s"),
            |(unit, name)| format!("{}{name}", secs / unit),
        )
}

/// Parse a duration: a number followed by a unit, like `500ms`, `30s`, `1m`,
/// `2h`, `1d`; parts may be combined (`1m 30s`). At most [`MAX_DURATION`]
/// (10 years); each key narrows this with its [`DurationRange`].
pub fn parse_duration(s: &str) -> Result<Duration, ValueError> {
    let d = humantime::parse_duration(s.trim()).map_err(|e| match e {
        humantime::DurationError::NumberOverflow => ValueError(format!(
            "duration {s:?} is too long: the maximum of any duration is 3650d (10 years)"
        )),
        _ => ValueError(format!("invalid duration {s:?}: {DURATION_FORM}")),
    })?;
    if d > MAX_DURATION {
        return Err(ValueError(format!(
            "duration {s:?} is too long: the maximum of any duration is 3650d (10 years)"
        )));
    }
    Ok(d)
}

/// Parse a check timeout: a [duration](parse_duration) greater than zero and
/// at most 24h ([`DurationRange::TIMEOUT`]).
pub fn parse_timeout(s: &str) -> Result<Duration, ValueError> {
    DurationRange::TIMEOUT.parse("timeout", s)
}

/// Parse a size in bytes: a whole number followed by a unit, `B`, `KiB`,
/// `MiB`, `GiB` (powers of 1024) or `KB`, `MB`, `GB` (powers of 1000), like
/// `64MiB`. A space between number and unit is allowed.
pub fn parse_size(s: &str) -> Result<u64, ValueError> {
    let invalid = || {
        ValueError(format!(
            "invalid size {s:?}: expected a whole number followed by a unit, \
             B, KiB, MiB, GiB, KB, MB or GB, like 64MiB"
        ))
    };
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    if number.is_empty() {
        return Err(invalid());
    }
    let multiplier = match unit.trim_start() {
        "B" => 1,
        "KiB" => KIB,
        "MiB" => MIB,
        "GiB" => GIB,
        "KB" => 1000,
        "MB" => 1000 * 1000,
        "GB" => 1000 * 1000 * 1000,
        _ => return Err(invalid()),
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(multiplier))
        .ok_or_else(|| ValueError(format!("size {s:?} is too large")))
}

/// Parse a check's memory cap: a [size](parse_size) from 1MiB to 4GiB.
pub fn parse_memory(s: &str) -> Result<u64, ValueError> {
    let bytes = parse_size(s)?;
    if bytes < MIN_MEMORY {
        return Err(ValueError(format!(
            "memory {s:?} is below the minimum of 1MiB"
        )));
    }
    if bytes > MAX_MEMORY {
        return Err(ValueError(format!(
            "memory {s:?} is above the maximum of 4GiB (all a 32-bit WebAssembly memory can use)"
        )));
    }
    Ok(bytes)
}

/// The largest component file read when nothing else is configured
/// (`[global] max_component_size`, `--max-component-size`): 64 MiB.
pub const DEFAULT_MAX_COMPONENT_SIZE: u64 = 64 << 20;

/// The smallest `max_component_size` accepted (a minimal check is ~100KiB).
pub const MIN_COMPONENT_SIZE: u64 = 64 * KIB;
/// The largest `max_component_size` accepted.
pub const MAX_COMPONENT_SIZE: u64 = 4 * GIB;

/// Parse a cap on component files (`max_component_size`,
/// `--max-component-size`): a [size](parse_size) from 64KiB to 4GiB.
pub fn parse_component_size(s: &str) -> Result<u64, ValueError> {
    let bytes = parse_size(s)?;
    if !(MIN_COMPONENT_SIZE..=MAX_COMPONENT_SIZE).contains(&bytes) {
        return Err(ValueError(format!(
            "max_component_size {s:?} must be between 64KiB and 4GiB"
        )));
    }
    Ok(bytes)
}

/// Where a secret's value comes from. The value itself is read when a run
/// needs it, never at load time, and never appears in errors.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SecretSource {
    /// `env:API_TOKEN`: an environment variable of the daemon.
    Env(String),
    /// `file:/run/secrets/token`: a file's contents, without a trailing
    /// newline. In `vantage.toml` a relative path is relative to the
    /// configuration file's directory.
    File(PathBuf),
    /// A value the daemon read for the check from elsewhere: a Kubernetes
    /// Secret named by a `Check`'s `secretKeyRef`. Never written in
    /// `vantage.toml`.
    Held(HeldSecret),
}

/// A secret value held in memory, with the name of where it came from.
/// Its `Debug` and `Display` show only that name.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct HeldSecret {
    /// Where it came from, e.g. `secretKeyRef shop/api-token/token`.
    pub origin: String,
    value: std::sync::Arc<str>,
}

impl HeldSecret {
    /// `value`, read from `origin`.
    pub fn new(origin: impl Into<String>, value: &str) -> Self {
        HeldSecret {
            origin: origin.into(),
            value: value.into(),
        }
    }
}

impl fmt::Debug for HeldSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HeldSecret({})", self.origin)
    }
}

impl SecretSource {
    /// Read the value now (a file without its trailing newline). Errors
    /// name the source, never a value.
    pub fn read(&self) -> Result<String, String> {
        match self {
            SecretSource::Env(var) => match std::env::var(var) {
                Ok(v) if !v.is_empty() => Ok(v),
                Ok(_) => Err(format!("environment variable {var} is empty")),
                Err(_) => Err(format!("environment variable {var} is not set")),
            },
            SecretSource::File(path) => std::fs::read_to_string(path)
                .map(|v| v.trim_end_matches(['\n', '\r']).to_string())
                .map_err(|e| format!("cannot read {}: {e}", path.display())),
            SecretSource::Held(held) if held.value.is_empty() => {
                Err(format!("{} is empty", held.origin))
            }
            SecretSource::Held(held) => Ok(held.value.to_string()),
        }
    }
}

const SECRET_FORM: &str = "expected env:VARIABLE or file:/path/to/file";

impl FromStr for SecretSource {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, ValueError> {
        if let Some(var) = s.strip_prefix("env:") {
            if let Some(bare) = var.strip_prefix('$') {
                return Err(ValueError(format!(
                    "invalid secret source {s:?}: write env:{} (no `$`)",
                    bare.trim_matches(['{', '}'])
                )));
            }
            let valid = var.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(ValueError(format!(
                    "invalid secret source {s:?}: the environment variable name must be \
                     letters, digits and `_`, not starting with a digit, like env:API_TOKEN"
                )));
            }
            return Ok(SecretSource::Env(var.to_string()));
        }
        if let Some(path) = s.strip_prefix("file:") {
            if path.trim().is_empty() {
                return Err(ValueError(format!(
                    "invalid secret source {s:?}: the path is empty, e.g. file:/run/secrets/token"
                )));
            }
            return Ok(SecretSource::File(PathBuf::from(path)));
        }
        Err(ValueError(format!(
            "invalid secret source {s:?}: {SECRET_FORM}"
        )))
    }
}

impl fmt::Display for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::Env(var) => write!(f, "env:{var}"),
            SecretSource::File(path) => write!(f, "file:{}", path.display()),
            SecretSource::Held(held) => f.write_str(&held.origin),
        }
    }
}

/// Whether `name` is a valid secret name: letters, digits, `-` and `_`.
pub fn is_secret_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Parse a `--secret NAME=SOURCE` argument, e.g. `token=env:API_TOKEN`.
pub fn parse_secret(s: &str) -> Result<(String, SecretSource), ValueError> {
    let Some((name, source)) = s.split_once('=') else {
        return Err(ValueError(format!(
            "invalid secret {s:?}: expected NAME=env:VARIABLE or NAME=file:/path/to/file"
        )));
    };
    if !is_secret_name(name) {
        return Err(ValueError(format!(
            "invalid secret name {name:?}: use letters, digits, `-` and `_`, e.g. token=env:API_TOKEN"
        )));
    }
    Ok((name.to_string(), source.parse()?))
}

/// Parse a `--set KEY=VALUE` argument: a dotted key (`expect.status`,
/// `headers.Accept`; segments of letters, digits, `-` and `_`) and a value,
/// which may be empty and may contain `=`.
pub fn parse_set(s: &str) -> Result<(String, String), ValueError> {
    let invalid = |why: &str| {
        ValueError(format!(
            "invalid setting {s:?}: {why}; expected KEY=VALUE with a dotted key, e.g. expect.status=200"
        ))
    };
    let Some((key, value)) = s.split_once('=') else {
        return Err(invalid("there is no `=`"));
    };
    if key.is_empty() {
        return Err(invalid("the key is empty"));
    }
    // Parts are what TOML keys can be, quoted keys included: JSON pointers
    // such as `expect.json./status` are keys too. Only whitespace and empty
    // parts (`a..b`) are refused.
    let valid = key
        .split('.')
        .all(|seg| !seg.is_empty() && !seg.chars().any(|c| c.is_whitespace() || c.is_control()));
    if !valid {
        return Err(invalid(
            "a key is made of non-empty parts joined by `.`, without spaces",
        ));
    }
    Ok((key.to_string(), value.to_string()))
}

/// Flatten a check's free-form configuration table to dotted keys with
/// string values, as checks receive it: nested tables become `a.b`, array
/// items `a.0`, `a.1`, …; strings stay as they are, numbers and booleans are
/// written as in TOML, date-times in RFC 3339. Keys come in sorted order;
/// empty tables and arrays produce nothing.
///
/// ```
/// # use vantage_core::config::flatten_config;
/// let table: toml::Table = toml::from_str("expect.status = [200, 204]\nheaders.Accept = 'text/html'").unwrap();
/// assert_eq!(flatten_config(&table), [
///     ("expect.status.0".to_string(), "200".to_string()),
///     ("expect.status.1".to_string(), "204".to_string()),
///     ("headers.Accept".to_string(), "text/html".to_string()),
/// ]);
/// ```
pub fn flatten_config(table: &toml::Table) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (key, value) in table {
        flatten_value(key.clone(), value, &mut out);
    }
    out
}

fn flatten_value(key: String, value: &toml::Value, out: &mut Vec<(String, String)>) {
    match value {
        toml::Value::String(s) => out.push((key, s.clone())),
        toml::Value::Integer(i) => out.push((key, i.to_string())),
        toml::Value::Float(_) | toml::Value::Boolean(_) => out.push((key, value.to_string())),
        toml::Value::Datetime(d) => out.push((key, d.to_string())),
        toml::Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                flatten_value(format!("{key}.{i}"), item, out);
            }
        }
        toml::Value::Table(table) => {
            for (k, v) in table {
                flatten_value(format!("{key}.{k}"), v, out);
            }
        }
    }
}

/// The opening of a secret reference in a config value: `{{secret.NAME}}`.
const REF_OPEN: &str = "{{secret.";
/// The close of a secret reference.
const REF_CLOSE: &str = "}}";

/// The names in the `{{secret.NAME}}` references of a value, in order.
pub fn secret_references(value: &str) -> Vec<&str> {
    let mut names = Vec::new();
    let mut rest = value;
    while let Some(start) = rest.find(REF_OPEN) {
        let after = &rest[start + REF_OPEN.len()..];
        match after.find(REF_CLOSE) {
            Some(end) => {
                names.push(&after[..end]);
                rest = &after[end + REF_CLOSE.len()..];
            }
            None => break,
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_secret_references() {
        assert_eq!(secret_references("Bearer {{secret.token}}"), ["token"]);
        assert_eq!(secret_references("{{secret.a}}:{{secret.b}}"), ["a", "b"]);
        assert!(secret_references("{{secret.unclosed").is_empty());
        assert!(secret_references("plain").is_empty());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1m 30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("0s").unwrap(), Duration::ZERO);
        for bad in ["1x", "10", "", "s", "-1s", "1.5.2s"] {
            let e = parse_duration(bad).unwrap_err().to_string();
            assert_eq!(
                e,
                format!(
                    "invalid duration {bad:?}: expected a number followed by a unit like 30s, 1m, 2h"
                )
            );
        }
        assert!(
            parse_timeout("0s")
                .unwrap_err()
                .0
                .contains("greater than zero")
        );
        assert_eq!(parse_timeout("5s").unwrap(), Duration::from_secs(5));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_size("64 MiB").unwrap(), 64 << 20);
        assert_eq!(parse_size("1GiB").unwrap(), 1 << 30);
        assert_eq!(parse_size("512KiB").unwrap(), 512 << 10);
        assert_eq!(parse_size("100B").unwrap(), 100);
        assert_eq!(parse_size("2KB").unwrap(), 2000);
        assert_eq!(parse_size("3MB").unwrap(), 3_000_000);
        assert_eq!(parse_size("4GB").unwrap(), 4_000_000_000);
        for bad in ["64", "MiB", "64mib", "64XB", "1.5GiB", "-1MiB", ""] {
            let e = parse_size(bad).unwrap_err().0;
            assert!(e.starts_with(&format!("invalid size {bad:?}")), "{e}");
            assert!(e.contains("B, KiB, MiB, GiB, KB, MB or GB"), "{e}");
        }
        assert!(
            parse_size("99999999999999999999GiB")
                .unwrap_err()
                .0
                .contains("too large")
        );
    }

    #[test]
    fn memory_bounds() {
        assert_eq!(parse_memory("1MiB").unwrap(), MIN_MEMORY);
        assert_eq!(parse_memory("4GiB").unwrap(), MAX_MEMORY);
        assert!(
            parse_memory("1023KiB")
                .unwrap_err()
                .0
                .contains("below the minimum of 1MiB")
        );
        assert!(
            parse_memory("5GiB")
                .unwrap_err()
                .0
                .contains("above the maximum of 4GiB")
        );
        assert!(parse_memory("5GB").is_err());
    }

    #[test]
    fn secret_sources() {
        assert_eq!(
            "env:API_TOKEN".parse::<SecretSource>().unwrap(),
            SecretSource::Env("API_TOKEN".into())
        );
        assert_eq!(
            "file:/run/secrets/token".parse::<SecretSource>().unwrap(),
            SecretSource::File("/run/secrets/token".into())
        );
        assert_eq!(SecretSource::Env("X".into()).to_string(), "env:X");
        assert_eq!(SecretSource::File("/a/b".into()).to_string(), "file:/a/b");
        let e = "API_TOKEN".parse::<SecretSource>().unwrap_err().0;
        assert!(
            e.contains("expected env:VARIABLE or file:/path/to/file"),
            "{e}"
        );
        let e = "vault:x".parse::<SecretSource>().unwrap_err().0;
        assert!(e.contains("expected env:VARIABLE"), "{e}");
        let e = "env:$API_TOKEN".parse::<SecretSource>().unwrap_err().0;
        assert!(e.contains("write env:API_TOKEN"), "{e}");
        let e = "env:${API_TOKEN}".parse::<SecretSource>().unwrap_err().0;
        assert!(e.contains("write env:API_TOKEN"), "{e}");
        assert!("env:".parse::<SecretSource>().is_err());
        assert!("env:1X".parse::<SecretSource>().is_err());
        assert!("env:A-B".parse::<SecretSource>().is_err());
        assert!(
            "file:"
                .parse::<SecretSource>()
                .unwrap_err()
                .0
                .contains("path is empty")
        );
    }

    #[test]
    fn secret_arguments() {
        assert_eq!(
            parse_secret("token=env:API_TOKEN").unwrap(),
            ("token".into(), SecretSource::Env("API_TOKEN".into()))
        );
        assert!(parse_secret("token").is_err());
        assert!(
            parse_secret("=env:X")
                .unwrap_err()
                .0
                .contains("secret name")
        );
        assert!(parse_secret("a b=env:X").is_err());
        assert!(parse_secret("token=API_TOKEN").is_err());
    }

    #[test]
    fn settings() {
        assert_eq!(
            parse_set("expect.status=200").unwrap(),
            ("expect.status".into(), "200".into())
        );
        assert_eq!(
            parse_set("headers.Accept=a=b").unwrap(),
            ("headers.Accept".into(), "a=b".into())
        );
        assert_eq!(parse_set("body=").unwrap(), ("body".into(), String::new()));
        assert!(
            parse_set("novalue")
                .unwrap_err()
                .0
                .contains("there is no `=`")
        );
        assert!(parse_set("=x").unwrap_err().0.contains("the key is empty"));
        assert!(parse_set("a..b=x").is_err());
        assert!(parse_set(".a=x").is_err());
        assert!(parse_set("a b=x").is_err());
        assert_eq!(
            parse_set("expect.json./data/0/id=7").unwrap(),
            ("expect.json./data/0/id".into(), "7".into())
        );
    }

    #[test]
    fn flattening() {
        let table: toml::Table = toml::from_str(
            r#"
            method = "GET"
            retries = 3
            ratio = 0.5
            whole = 2.0
            follow = true
            when = 1979-05-27T07:32:00Z
            day = 1979-05-27
            empty = []
            none = {}
            expect.status = [200, 204]
            expect.body.contains = ["ok"]
            headers.Accept = "application/json"
            steps = [{ url = "/a" }, { url = "/b", status = 201 }]
            matrix = [[1, 2], [3]]
            "#,
        )
        .unwrap();
        let flat = flatten_config(&table);
        let get = |k: &str| {
            flat.iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("method"), Some("GET"));
        assert_eq!(get("retries"), Some("3"));
        assert_eq!(get("ratio"), Some("0.5"));
        assert_eq!(get("whole"), Some("2.0"));
        assert_eq!(get("follow"), Some("true"));
        assert_eq!(get("when"), Some("1979-05-27T07:32:00Z"));
        assert_eq!(get("day"), Some("1979-05-27"));
        assert_eq!(get("expect.status.0"), Some("200"));
        assert_eq!(get("expect.status.1"), Some("204"));
        assert_eq!(get("expect.body.contains.0"), Some("ok"));
        assert_eq!(get("headers.Accept"), Some("application/json"));
        assert_eq!(get("steps.0.url"), Some("/a"));
        assert_eq!(get("steps.1.url"), Some("/b"));
        assert_eq!(get("steps.1.status"), Some("201"));
        assert_eq!(get("matrix.0.1"), Some("2"));
        assert_eq!(get("matrix.1.0"), Some("3"));
        assert_eq!(get("empty"), None);
        assert_eq!(get("none"), None);
        assert_eq!(flat.len(), 17);
        // Sorted by key, arrays in order.
        let keys: Vec<&str> = flat.iter().map(|(k, _)| k.as_str()).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
    }
}
