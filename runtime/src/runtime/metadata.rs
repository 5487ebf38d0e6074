//! A check's self-description (`describe` export), as the host keeps it.

use serde::Serialize;

use crate::bindings::types as wit;

/// One configuration key a check understands.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConfigKey {
    /// Dotted key.
    pub key: String,
    /// What it does.
    pub description: String,
    /// Default value, if any.
    pub default: Option<String>,
    /// Whether the check needs it.
    pub required: bool,
}

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
                    default: k.default,
                    required: k.required,
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
