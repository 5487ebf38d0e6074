//! The `secrets` interface: a check reads only the secrets the operator
//! granted it, by name. Every value read is remembered so the run's result can
//! be redacted.

use std::borrow::Cow;
use std::sync::{Arc, RwLock};

use wasmtime::component::{HasSelf, Linker};

use crate::config::SecretSource;
use crate::runtime::RunState;
use crate::runtime::bindings::vantage::check::secrets as wit;

/// The secret values handed to one run so far, shared with every capability
/// that sends guest text out of the run while it is still going (the `log`
/// lines forwarded to the host's own log), so they can be redacted there too.
#[derive(Debug, Clone, Default)]
pub struct Revealed(Arc<RwLock<Vec<String>>>);

impl Revealed {
    fn add(&self, value: &str) {
        let mut values = self.0.write().unwrap_or_else(|e| e.into_inner());
        if !value.is_empty() && !values.iter().any(|v| v == value) {
            values.push(value.to_string());
        }
    }

    /// The values, in the order they were first revealed.
    pub fn values(&self) -> Vec<String> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// `text` with every revealed value replaced by `[redacted]`.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let values = self.0.read().unwrap_or_else(|e| e.into_inner());
        let mut text = Cow::Borrowed(text);
        for value in values.iter() {
            if text.contains(value.as_str()) {
                text = Cow::Owned(text.replace(value.as_str(), "[redacted]"));
            }
        }
        text
    }
}

/// Per-run secrets state.
#[derive(Debug)]
pub struct SecretsState {
    granted: Vec<(String, SecretSource)>,
    revealed: Revealed,
}

impl SecretsState {
    /// Grant exactly these secrets.
    pub fn new(granted: &[(String, SecretSource)]) -> Self {
        SecretsState {
            granted: granted.to_vec(),
            revealed: Revealed::default(),
        }
    }

    /// The run's revealed values, to share with capabilities that redact.
    pub fn revealed_handle(&self) -> Revealed {
        self.revealed.clone()
    }

    /// Read the secret called `name`, if granted.
    pub fn read(&mut self, name: &str) -> Result<String, wit::SecretError> {
        let Some((_, source)) = self.granted.iter().find(|(n, _)| n == name) else {
            return Err(wit::SecretError::NotGranted(format!(
                "secret `{name}` is not granted to this check"
            )));
        };
        let value = read_source(source).map_err(wit::SecretError::Unavailable)?;
        self.revealed.add(&value);
        Ok(value)
    }

    /// Every value handed to the guest during this run (for redaction).
    pub fn revealed(&self) -> Vec<String> {
        self.revealed.values()
    }
}

/// Read a secret's value from its source. Errors name the source, never the value.
pub fn read_source(source: &SecretSource) -> Result<String, String> {
    match source {
        SecretSource::Env(var) => match std::env::var(var) {
            Ok(v) if !v.is_empty() => Ok(v),
            Ok(_) => Err(format!("environment variable {var} is empty")),
            Err(_) => Err(format!("environment variable {var} is not set")),
        },
        SecretSource::File(path) => std::fs::read_to_string(path)
            .map(|v| v.trim_end_matches(['\n', '\r']).to_string())
            .map_err(|e| format!("cannot read {}: {e}", path.display())),
    }
}

/// The opening of a secret reference in a config value: `{{secret.NAME}}`.
const REF_OPEN: &str = "{{secret.";
/// The close of a secret reference.
const REF_CLOSE: &str = "}}";

/// The names in the `{{secret.NAME}}` references of a value, in order.
pub fn references(value: &str) -> Vec<&str> {
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

/// Replace every `{{secret.NAME}}` in the config values with the secret's
/// value, reading it through `secrets` (so only granted secrets resolve and
/// every value read is remembered for redaction). Errors name the key and
/// the secret, never a value.
pub fn expand_config(
    config: &[(String, String)],
    secrets: &mut SecretsState,
) -> Result<Vec<(String, String)>, String> {
    config
        .iter()
        .map(|(key, value)| {
            let mut expanded = value.clone();
            for name in references(value) {
                let secret = secrets.read(name).map_err(|e| match e {
                    wit::SecretError::NotGranted(m) | wit::SecretError::Unavailable(m) => {
                        format!("config key `{key}` refers to {{{{secret.{name}}}}}: {m}")
                    }
                })?;
                expanded = expanded.replace(&format!("{REF_OPEN}{name}{REF_CLOSE}"), &secret);
            }
            Ok((key.clone(), expanded))
        })
        .collect()
}

impl wit::Host for SecretsState {
    async fn get(&mut self, name: String) -> wasmtime::Result<Result<String, wit::SecretError>> {
        Ok(self.read(&name))
    }
}

/// Register the `secrets` interface.
pub fn add_to_linker(linker: &mut Linker<RunState>) -> wasmtime::Result<()> {
    wit::add_to_linker::<RunState, HasSelf<SecretsState>>(linker, |s| &mut s.caps.secrets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_granted_secrets_are_readable() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "hunter2\n").unwrap();
        let mut s = SecretsState::new(&[("token".into(), SecretSource::File(file))]);
        assert_eq!(s.read("token").unwrap(), "hunter2");
        assert!(matches!(
            s.read("other"),
            Err(wit::SecretError::NotGranted(_))
        ));
        assert_eq!(s.revealed(), ["hunter2".to_string()]);
    }

    #[test]
    fn references_are_found_in_order() {
        assert_eq!(references("Bearer {{secret.token}}"), ["token"]);
        assert_eq!(references("{{secret.a}}:{{secret.b}}"), ["a", "b"]);
        assert!(references("{{secret.unclosed").is_empty());
        assert!(references("no refs").is_empty());
    }

    #[test]
    fn config_references_expand_only_for_granted_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "t0k3n").unwrap();
        let mut s = SecretsState::new(&[("token".into(), SecretSource::File(file))]);
        let config = vec![
            (
                "headers.Authorization".to_string(),
                "Bearer {{secret.token}}".to_string(),
            ),
            ("plain".to_string(), "value".to_string()),
        ];
        let expanded = expand_config(&config, &mut s).unwrap();
        assert_eq!(expanded[0].1, "Bearer t0k3n");
        assert_eq!(expanded[1].1, "value");
        assert_eq!(s.revealed(), ["t0k3n".to_string()]);

        let bad = vec![("k".to_string(), "{{secret.other}}".to_string())];
        let err = expand_config(&bad, &mut s).unwrap_err();
        assert!(
            err.contains("config key `k`") && err.contains("other"),
            "{err}"
        );
        assert!(!err.contains("t0k3n"));
    }

    #[test]
    fn missing_source_is_unavailable_and_names_it() {
        let mut s = SecretsState::new(&[(
            "t".into(),
            SecretSource::Env("VANTAGE_TEST_SURELY_UNSET_VAR".into()),
        )]);
        match s.read("t") {
            Err(wit::SecretError::Unavailable(m)) => {
                assert!(m.contains("VANTAGE_TEST_SURELY_UNSET_VAR"))
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
