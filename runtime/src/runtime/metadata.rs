//! A check's self-description (`describe` export), as the host keeps it.

use serde::Serialize;

use crate::bindings::common as wit;

pub use crate::schema::{ConfigKey, ValueType};

/// What a check declares about itself.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metadata {
    /// Check name.
    pub name: String,
    /// Check version.
    pub version: String,
    /// What it proves.
    pub description: String,
    /// Outbound patterns it expects to need (`{target}` = the configured targets).
    pub outbound: Vec<String>,
    /// Secrets it reads.
    pub secrets: Vec<String>,
    /// Configuration keys.
    pub config: Vec<ConfigKey>,
    /// Modes it is meant for (`edge`, `restore`).
    pub modes: Vec<String>,
}

impl From<wit::Metadata> for Metadata {
    fn from(m: wit::Metadata) -> Self {
        Metadata {
            name: m.name,
            version: m.version,
            description: m.description,
            outbound: m.capabilities.outbound,
            secrets: m.capabilities.secrets,
            config: m
                .config
                .into_iter()
                .map(|k| ConfigKey {
                    key: k.key,
                    description: k.description,
                    value_type: k.value_type.into(),
                    repeated: k.repeated,
                    default: k.default,
                    required: k.required,
                    sensitive: k.sensitive,
                })
                .collect(),
            modes: m
                .modes
                .into_iter()
                .map(|m| match m {
                    wit::Mode::Edge => "edge".to_string(),
                    wit::Mode::Restore => "restore".to_string(),
                })
                .collect(),
        }
    }
}

impl From<wit::ValueType> for ValueType {
    fn from(t: wit::ValueType) -> Self {
        match t {
            wit::ValueType::Text => ValueType::Text,
            wit::ValueType::Integer((lo, hi)) => ValueType::Integer(lo, hi),
            wit::ValueType::Number => ValueType::Number,
            wit::ValueType::Boolean => ValueType::Boolean,
            wit::ValueType::Duration => ValueType::Duration,
            wit::ValueType::Regex => ValueType::Regex,
            wit::ValueType::Url => ValueType::Url,
            wit::ValueType::HostPort => ValueType::HostPort,
            wit::ValueType::StatusRange => ValueType::StatusRange,
            wit::ValueType::Pem => ValueType::Pem,
            wit::ValueType::Size => ValueType::Size,
            wit::ValueType::Choice(words) => ValueType::Choice(words),
        }
    }
}
