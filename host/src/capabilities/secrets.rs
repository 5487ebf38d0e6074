//! The `secrets` interface: a check reads only the secrets the operator
//! granted it, by name. Every value read is remembered so the run's result can
//! be redacted.

use wasmtime::component::{HasSelf, Linker};

use crate::config::SecretSource;
use crate::runtime::RunState;
use crate::runtime::bindings::vantage::check::secrets as wit;

/// Per-run secrets state.
#[derive(Debug)]
pub struct SecretsState {
    granted: Vec<(String, SecretSource)>,
    revealed: Vec<String>,
}

impl SecretsState {
    /// Grant exactly these secrets.
    pub fn new(granted: &[(String, SecretSource)]) -> Self {
        SecretsState {
            granted: granted.to_vec(),
            revealed: Vec::new(),
        }
    }

    /// Read the secret called `name`, if granted.
    pub fn read(&mut self, name: &str) -> Result<String, wit::SecretError> {
        let Some((_, source)) = self.granted.iter().find(|(n, _)| n == name) else {
            return Err(wit::SecretError::NotGranted(format!(
                "secret `{name}` is not granted to this check"
            )));
        };
        let value = read_source(source).map_err(wit::SecretError::Unavailable)?;
        if !self.revealed.contains(&value) {
            self.revealed.push(value.clone());
        }
        Ok(value)
    }

    /// Every value handed to the guest during this run (for redaction).
    pub fn revealed(&self) -> &[String] {
        &self.revealed
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
