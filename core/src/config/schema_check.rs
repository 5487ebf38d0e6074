//! The second stage of validation: each check's `config` against the keys
//! its component declares (`describe`, WIT 0.2.0), once the components are
//! loaded. `vantage validate`, `vantage run` and the daemon (at start and on
//! reload) all go through [`Config::schema_problems`].

use super::error::{Diagnostic, Severity};
use super::model::{ComponentRef, Config};
use crate::schema::{ConfigKey, check_values};

impl Config {
    /// Every problem of every check's configuration (restore tests' checks
    /// included) against the keys its component declares, each placed at
    /// the key's line (a missing key at the check's `config` table).
    /// `schema_of` gives a component's declared keys, or `None` when they are
    /// not known (a component that failed to load, or one built for WIT 0.1.0,
    /// whose keys carry no types: it is left to check its own configuration).
    pub fn schema_problems(
        &self,
        schema_of: &dyn Fn(&ComponentRef) -> Option<Vec<ConfigKey>>,
    ) -> Vec<Diagnostic> {
        let mut out = Vec::new();
        for (i, check) in self.checks.iter().enumerate() {
            if let Some(keys) = schema_of(&check.component) {
                out.extend(self.check_problems(i, &keys));
            }
        }
        for (r, restore) in self.restores.iter().enumerate() {
            for (c, check) in restore.checks.iter().enumerate() {
                if let Some(keys) = schema_of(&check.component) {
                    out.extend(self.restore_check_problems(r, c, &keys));
                }
            }
        }
        out
    }

    /// The problems of `checks[index]`'s configuration against `keys`.
    pub fn check_problems(&self, index: usize, keys: &[ConfigKey]) -> Vec<Diagnostic> {
        let mut out = Vec::new();
        if let Some(check) = self.checks.get(index) {
            self.place_problems(&format!("check.{index}"), keys, &check.config, &mut out);
        }
        out
    }

    /// The problems of `restores[restore].checks[check]`'s configuration
    /// against `keys` (values with `{{…}}` templates are not type-checked).
    pub fn restore_check_problems(
        &self,
        restore: usize,
        check: usize,
        keys: &[ConfigKey],
    ) -> Vec<Diagnostic> {
        let mut out = Vec::new();
        if let Some(spec) = self.restores.get(restore).and_then(|r| r.checks.get(check)) {
            let config: Vec<(String, String)> = spec
                .config
                .iter()
                .map(|(k, v)| (k.clone(), v.0.clone()))
                .collect();
            let table = format!("restore.{restore}.check.{check}");
            self.place_problems(&table, keys, &config, &mut out);
        }
        out
    }

    fn place_problems(
        &self,
        table: &str,
        keys: &[ConfigKey],
        config: &[(String, String)],
        out: &mut Vec<Diagnostic>,
    ) {
        let at = |path: &str| {
            self.config_places
                .iter()
                .find(|(p, _)| p == path)
                .map(|(_, d)| d.clone())
        };
        let first = out.len();
        for problem in check_values(keys, config) {
            let table_place = at(&format!("{table}.config"));
            // Every check's table has a place; line 1 is only a fallback.
            let mut d = at(&format!("{table}.config.{}", problem.key))
                .or(table_place)
                .unwrap_or_else(|| Diagnostic {
                    file: self.source.clone(),
                    line: 1,
                    column: 1,
                    context: Some(table.to_string()),
                    key: None,
                    message: String::new(),
                    severity: Severity::Error,
                });
            d.key = Some(format!("config.{}", problem.key));
            d.message = problem.message;
            out.push(d);
        }
        // In the file's order, as the first stage reports.
        out[first..].sort_by_key(|d| (d.line, d.column));
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::from_str;
    use crate::schema::{ConfigKey, ValueType};

    fn key(k: &str, t: ValueType, required: bool) -> ConfigKey {
        ConfigKey {
            key: k.into(),
            description: "what it does".into(),
            value_type: t,
            repeated: false,
            default: None,
            required,
            sensitive: false,
        }
    }

    #[test]
    fn problems_name_file_line_and_key() {
        let text = r#"# vantage.toml

[[check]]
name = "api"
component = "http.wasm"
every = "1m"
targets = ["https://example.com/"]
allow = ["{target}"]

[check.config]
timeout = "5s"
expect.status = ["2xx", "2x9"]
expect.body_matches = "(unclosed"
"#;
        let config = from_str(text, Path::new("/etc/vantage.toml")).unwrap();
        let keys = vec![
            key("timeout", ValueType::Duration, false),
            key("expect.status", ValueType::StatusRange, false),
            key("expect.body_matches", ValueType::Regex, false),
            key("login.username", ValueType::Text, true),
        ];
        let problems: Vec<String> = config
            .schema_problems(&|_| Some(keys.clone()))
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(problems.len(), 3, "{problems:#?}");
        let find = |key: &str| {
            problems
                .iter()
                .find(|p| p.contains(&format!("key `config.{key}`")))
                .unwrap_or_else(|| panic!("no problem at {key}: {problems:#?}"))
        };
        let status = find("expect.status.1");
        assert!(
            status.starts_with("/etc/vantage.toml:12:")
                && status.contains("\"2x9\" is not a valid status range"),
            "{status}"
        );
        let regex = find("expect.body_matches");
        assert!(
            regex.starts_with("/etc/vantage.toml:13:") && regex.contains("regex"),
            "{regex}"
        );
        let missing = find("login.username");
        assert!(
            missing.starts_with("/etc/vantage.toml:10:") && missing.contains("missing"),
            "{missing}"
        );
        // Unknown schemas (a 0.1.0 component, a load failure) are left alone.
        assert!(config.schema_problems(&|_| None).is_empty());
    }
}
