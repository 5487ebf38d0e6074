//! What a check says about its configuration (the `config-key` records of
//! its `describe`, WIT 0.2.0): each key's type, default and whether it may
//! hold a secret. Plain data; the runtime fills it from the component.

use serde::Serialize;

/// The type of a configuration value (WIT `value-type`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "type", content = "of")]
pub enum ValueType {
    /// Any text.
    Text,
    /// A whole number within the inclusive bounds, when given.
    Integer(Option<i64>, Option<i64>),
    /// A number.
    Number,
    /// `true` or `false`.
    Boolean,
    /// A duration such as `1500ms`, `10s`, `1h30m`.
    Duration,
    /// A regular expression.
    Regex,
    /// An absolute `http://` or `https://` URL.
    Url,
    /// `host:port`.
    HostPort,
    /// An HTTP status code, class (`2xx`) or range (`200-299`).
    StatusRange,
    /// PEM text.
    Pem,
    /// One of these words.
    Choice(Vec<String>),
}

impl std::fmt::Display for ValueType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ValueType::Text => f.write_str("text"),
            ValueType::Integer(None, None) => f.write_str("integer"),
            ValueType::Integer(lo, hi) => {
                let bound = |b: &Option<i64>| b.map(|v| v.to_string()).unwrap_or_default();
                write!(f, "integer {}..{}", bound(lo), bound(hi))
            }
            ValueType::Number => f.write_str("number"),
            ValueType::Boolean => f.write_str("boolean"),
            ValueType::Duration => f.write_str("duration"),
            ValueType::Regex => f.write_str("regex"),
            ValueType::Url => f.write_str("url"),
            ValueType::HostPort => f.write_str("host:port"),
            ValueType::StatusRange => f.write_str("status range"),
            ValueType::Pem => f.write_str("PEM"),
            ValueType::Choice(words) => write!(f, "one of {}", words.join(", ")),
        }
    }
}

/// One configuration key a check understands.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConfigKey {
    /// Dotted key; a part written `<name>` stands for any operator-chosen
    /// name (`headers.<name>`).
    pub key: String,
    /// What it does.
    pub description: String,
    /// The type of its value (of each item, when `repeated`).
    pub value_type: ValueType,
    /// Whether it takes a list (`key.0`, `key.1`, … reach the check).
    pub repeated: bool,
    /// Default value, if any.
    pub default: Option<String>,
    /// Whether the check needs it.
    pub required: bool,
    /// Whether its value may be a secret: never shown in errors or output.
    pub sensitive: bool,
}
