//! Builders for the check's self-description.

use std::fmt;

use crate::bindings::vantage::check::common::{Capabilities, ConfigKey as RawConfigKey};
use crate::{Metadata, Mode};

/// The type of a configuration value (of each item, for a
/// [`repeated`](ConfigKey::repeated) key). The host checks every configured
/// value against it when it loads the configuration (`vantage validate`
/// included), so a bad value is refused with its file, line and key instead
/// of failing every run.
pub use crate::bindings::vantage::check::common::ValueType;

/// The outbound pattern that stands for "whatever targets the operator
/// configures for this check": `{target}`.
pub const TARGET: &str = "{target}";

/// One configuration key a check understands, for [`Metadata::config_key`]:
/// its name, what it does, the type of its value and whether it takes a list,
/// has a default, is required or may hold a secret.
///
/// ```
/// use vantage_sdk::{ConfigKey, ValueType};
/// let key = ConfigKey::new("expect.status", "Acceptable status codes.")
///     .typed(ValueType::StatusRange)
///     .repeated()
///     .default("2xx");
/// assert_eq!(key.default.as_deref(), Some("2xx"));
/// assert!(key.repeated && !key.required && !key.sensitive);
///
/// let token = ConfigKey::new("token", "Bearer token.").sensitive();
/// assert_eq!(token.value_type, ValueType::Text);
/// assert!(token.sensitive);
/// ```
pub type ConfigKey = RawConfigKey;

impl RawConfigKey {
    /// An optional text key without a default; set its type with
    /// [`typed`](Self::typed).
    pub fn new(key: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            description: description.into(),
            value_type: ValueType::Text,
            repeated: false,
            default: None,
            required: false,
            sensitive: false,
        }
    }

    /// Set the type of the value (of each item, when [`repeated`](Self::repeated)).
    pub fn typed(mut self, value_type: ValueType) -> Self {
        self.value_type = value_type;
        self
    }

    /// The key takes a list (`expect.status = ["2xx", 304]`, which reaches
    /// the check as `expect.status.0`, `expect.status.1`); a single value is
    /// a list of one.
    pub fn repeated(mut self) -> Self {
        self.repeated = true;
        self
    }

    /// Set the value used when the key is absent, as the operator would
    /// write it (shown to operators).
    pub fn default(mut self, value: impl Into<String>) -> Self {
        self.default = Some(value.into());
        self
    }

    /// Mark the key as required: without it, the run fails with
    /// ``missing config `<key>` `` before the check's `run` is called.
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// The value may be a secret (a token, a password): neither the host nor
    /// the SDK ever shows it in errors or output, even when it is written
    /// inline.
    pub fn sensitive(mut self) -> Self {
        self.sensitive = true;
        self
    }

    /// Whether this declared key covers the flattened configuration key
    /// `key`: itself, its list items (`k.0`, `k.1`, …) and, for a key with a
    /// placeholder segment such as `headers.<name>`, everything under
    /// `headers.`.
    pub fn covers(&self, key: &str) -> bool {
        crate::context::key_matches(&self.key, key)
    }
}

impl ValueType {
    /// A whole number between `min` and `max`, inclusive (`None`: unbounded).
    pub fn integer(min: Option<i64>, max: Option<i64>) -> Self {
        ValueType::Integer((min, max))
    }

    /// One of the given words, e.g. `ValueType::choice(["GET", "POST"])`.
    pub fn choice<S: Into<String>>(words: impl IntoIterator<Item = S>) -> Self {
        ValueType::Choice(words.into_iter().map(Into::into).collect())
    }

    /// Whether `value` is a valid value of this type; the error says why
    /// not, without repeating the value (it may be a secret).
    ///
    /// Cheap types only: `text`, `regex` and `pem` accept anything here (a
    /// check compiles its patterns itself and reports a bad one with its
    /// key; the host checks them when it loads the configuration).
    ///
    /// ```
    /// use vantage_sdk::ValueType;
    /// assert!(ValueType::Duration.check("1m30s").is_ok());
    /// assert!(ValueType::Duration.check("90").is_err());
    /// assert!(ValueType::StatusRange.check("2xx").is_ok());
    /// assert!(ValueType::integer(Some(0), Some(10)).check("11").is_err());
    /// assert!(ValueType::choice(["udp", "tcp"]).check("TCP").is_ok());
    /// ```
    pub fn check(&self, value: &str) -> Result<(), String> {
        let v = value.trim();
        match self {
            ValueType::Text | ValueType::Regex | ValueType::Pem => Ok(()),
            ValueType::Integer((min, max)) => {
                let n: i64 = v
                    .parse()
                    .map_err(|_| "expected a whole number".to_string())?;
                match (min, max) {
                    (Some(min), _) if n < *min => Err(format!("expected at least {min}")),
                    (_, Some(max)) if n > *max => Err(format!("expected at most {max}")),
                    _ => Ok(()),
                }
            }
            ValueType::Number => v
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite())
                .map(|_| ())
                .ok_or_else(|| "expected a number".to_string()),
            ValueType::Boolean => crate::context::parse_bool(v)
                .map(|_| ())
                .ok_or_else(|| "expected true or false".to_string()),
            ValueType::Duration => crate::parse_duration(v)
                .map(|_| ())
                .map_err(|_| "expected a duration such as `500ms`, `10s` or `1m30s`".to_string()),
            ValueType::Size => crate::parse_size(v).map(|_| ()),
            ValueType::Url => {
                let rest = v
                    .strip_prefix("http://")
                    .or_else(|| v.strip_prefix("https://"))
                    .ok_or_else(|| "expected an http:// or https:// URL".to_string())?;
                match rest.split(['/', '?', '#']).next() {
                    Some(host) if !host.is_empty() => Ok(()),
                    _ => Err("expected an http:// or https:// URL with a host".to_string()),
                }
            }
            ValueType::HostPort => match v.rsplit_once(':') {
                Some((host, port))
                    if !host.trim_matches(['[', ']']).is_empty() && port.parse::<u16>().is_ok() =>
                {
                    Ok(())
                }
                _ => Err("expected host:port".to_string()),
            },
            ValueType::StatusRange => crate::http::StatusSet::parse(v).map(|_| ()).map_err(|_| {
                "expected a status code (`204`), class (`2xx`) or range (`200-299`)".to_string()
            }),
            ValueType::Choice(words) => {
                if words.iter().any(|w| w.eq_ignore_ascii_case(v)) {
                    Ok(())
                } else {
                    Err(format!("expected one of {}", words.join(", ")))
                }
            }
        }
    }
}

impl fmt::Display for ValueType {
    /// How the type reads in messages: `a duration`, `one of GET, POST`, ….
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValueType::Text => f.write_str("text"),
            ValueType::Integer((None, None)) => f.write_str("a whole number"),
            ValueType::Integer((min, max)) => {
                let bound = |b: &Option<i64>| b.map(|n| n.to_string()).unwrap_or_default();
                write!(f, "a whole number in {}..={}", bound(min), bound(max))
            }
            ValueType::Number => f.write_str("a number"),
            ValueType::Boolean => f.write_str("true or false"),
            ValueType::Duration => f.write_str("a duration"),
            ValueType::Size => f.write_str("a size"),
            ValueType::Regex => f.write_str("a regular expression"),
            ValueType::Url => f.write_str("a URL"),
            ValueType::HostPort => f.write_str("host:port"),
            ValueType::StatusRange => f.write_str("a status range"),
            ValueType::Pem => f.write_str("PEM text"),
            ValueType::Choice(words) => write!(f, "one of {}", words.join(", ")),
        }
    }
}

// `Capabilities` is generated by wit-bindgen, so `Default` cannot be derived.
#[allow(clippy::derivable_impls)]
impl Default for Capabilities {
    fn default() -> Self {
        Self {
            outbound: Vec::new(),
            secrets: Vec::new(),
        }
    }
}

impl Default for Metadata {
    /// Everything empty: [`export_check!`](crate::export_check) fills name,
    /// version, description and modes from your `Cargo.toml`.
    fn default() -> Self {
        Self {
            name: String::new(),
            version: String::new(),
            description: String::new(),
            capabilities: Capabilities::default(),
            config: Vec::new(),
            modes: Vec::new(),
        }
    }
}

impl Metadata {
    /// Metadata for a check called `name`. Version, description and modes
    /// default to your crate's (see [`Metadata::with_package_defaults`]).
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }

    /// Set the version (defaults to `CARGO_PKG_VERSION`).
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = version.into();
        self
    }

    /// Set the one-paragraph description of what the check proves (defaults
    /// to `CARGO_PKG_DESCRIPTION`).
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// Declare an outbound pattern the check needs, e.g. `https://*.example.com`,
    /// `tcp://db.internal:5432`, `dns://9.9.9.9` or [`TARGET`]. Duplicates are
    /// ignored.
    pub fn outbound(mut self, pattern: impl Into<String>) -> Self {
        push_unique(&mut self.capabilities.outbound, pattern.into());
        self
    }

    /// Declare a secret the check reads with [`secrets::get`](crate::secrets::get).
    /// Duplicates are ignored.
    pub fn secret(mut self, name: impl Into<String>) -> Self {
        push_unique(&mut self.capabilities.secrets, name.into());
        self
    }

    /// Declare a configuration key the check understands.
    ///
    /// Once a check declares a key, the SDK refuses, before each run, every
    /// configuration key that is not declared and every
    /// [`required`](ConfigKey::required) key that is missing (see
    /// [`Check::run`](crate::Check::run)); a check that declares none takes
    /// any configuration.
    pub fn config_key(mut self, key: ConfigKey) -> Self {
        self.config.push(key);
        self
    }

    /// Declare a mode the check is meant for (all modes when none is declared).
    pub fn mode(mut self, mode: Mode) -> Self {
        if !self.modes.contains(&mode) {
            self.modes.push(mode);
        }
        self
    }

    /// Fill the fields left empty: `name`, `version` and `description` from
    /// the given package values, and `modes` with every mode.
    ///
    /// [`export_check!`](crate::export_check) calls this with your crate's
    /// `CARGO_PKG_NAME`, `CARGO_PKG_VERSION` and `CARGO_PKG_DESCRIPTION`.
    pub fn with_package_defaults(mut self, name: &str, version: &str, description: &str) -> Self {
        if self.name.is_empty() {
            self.name = name.to_string();
        }
        if self.version.is_empty() {
            self.version = version.to_string();
        }
        if self.description.is_empty() {
            self.description = description.to_string();
        }
        if self.modes.is_empty() {
            self.modes = vec![Mode::Edge, Mode::Restore];
        }
        self
    }
}

fn push_unique(list: &mut Vec<String>, value: String) {
    if !list.contains(&value) {
        list.push(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Check;

    #[test]
    fn package_defaults_fill_only_empty_fields() {
        let m = Metadata::new("mine")
            .description("explicit")
            .with_package_defaults("pkg", "1.2.3", "from cargo");
        assert_eq!(m.name, "mine");
        assert_eq!(m.version, "1.2.3");
        assert_eq!(m.description, "explicit");
        assert_eq!(m.modes, vec![Mode::Edge, Mode::Restore]);

        let m = Metadata::default()
            .mode(Mode::Restore)
            .with_package_defaults("pkg", "1.2.3", "");
        assert_eq!(m.name, "pkg");
        assert_eq!(m.description, "");
        assert_eq!(m.modes, vec![Mode::Restore]);
    }

    #[test]
    fn builder_dedupes_capabilities() {
        let m = Metadata::new("x")
            .outbound(TARGET)
            .outbound(TARGET)
            .outbound("dns://9.9.9.9")
            .secret("token")
            .secret("token")
            .config_key(ConfigKey::new("a", "the a").default("1"))
            .config_key(ConfigKey::new("b", "the b").required())
            .config_key(
                ConfigKey::new("c", "the c")
                    .typed(ValueType::Duration)
                    .repeated()
                    .sensitive(),
            );
        assert_eq!(m.capabilities.outbound, vec!["{target}", "dns://9.9.9.9"]);
        assert_eq!(m.capabilities.secrets, vec!["token"]);
        assert_eq!(m.config.len(), 3);
        assert_eq!(m.config[0].default.as_deref(), Some("1"));
        assert_eq!(m.config[0].value_type, ValueType::Text);
        assert!(m.config[1].required);
        assert_eq!(m.config[2].value_type, ValueType::Duration);
        assert!(m.config[2].repeated && m.config[2].sensitive && !m.config[2].required);
    }

    #[test]
    fn value_types_check_values_without_echoing_them() {
        let ok = |t: ValueType, v: &str| t.check(v).is_ok();
        assert!(ok(ValueType::Text, "anything"));
        assert!(ok(ValueType::integer(Some(1), None), "1"));
        assert!(!ok(ValueType::integer(Some(1), None), "0"));
        assert!(!ok(ValueType::integer(None, None), "1.5"));
        assert!(ok(ValueType::Number, "1.5"));
        assert!(!ok(ValueType::Number, "NaN"));
        assert!(ok(ValueType::Boolean, "yes") && !ok(ValueType::Boolean, "maybe"));
        assert!(ok(ValueType::Duration, "250ms") && !ok(ValueType::Duration, "5"));
        assert!(ok(ValueType::Url, "https://a.example/x"));
        assert!(!ok(ValueType::Url, "a.example:443") && !ok(ValueType::Url, "https:///x"));
        assert!(ok(ValueType::HostPort, "a.example:443") && ok(ValueType::HostPort, "[::1]:53"));
        assert!(!ok(ValueType::HostPort, "a.example") && !ok(ValueType::HostPort, ":53"));
        assert!(ok(ValueType::StatusRange, "200-299") && !ok(ValueType::StatusRange, "2x"));
        assert!(ok(ValueType::choice(["gzip", "br"]), "BR"));
        let err = ValueType::choice(["gzip", "br"])
            .check("s3cr3t-value")
            .unwrap_err();
        assert_eq!(err, "expected one of gzip, br");
        let err = ValueType::integer(None, Some(3))
            .check("hunter22")
            .unwrap_err();
        assert!(!err.contains("hunter22"), "{err}");
        assert_eq!(ValueType::Duration.to_string(), "a duration");
        assert_eq!(
            ValueType::integer(Some(0), None).to_string(),
            "a whole number in 0..="
        );
    }

    #[test]
    fn default_describe_asks_for_targets_only() {
        struct Minimal;
        impl Check for Minimal {
            fn run(_: &crate::Context) -> Result<crate::Outcome, crate::Error> {
                Ok(crate::Outcome::new())
            }
        }
        let m = crate::__private::describe::<Minimal>("minimal", "0.1.0", "A minimal check.");
        assert_eq!(m.name, "minimal");
        assert_eq!(m.version, "0.1.0");
        assert_eq!(m.description, "A minimal check.");
        assert_eq!(m.capabilities.outbound, vec![TARGET]);
        assert!(m.capabilities.secrets.is_empty());
    }
}
