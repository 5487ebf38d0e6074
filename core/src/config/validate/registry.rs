//! Stage two for `[registry]`.

use std::path::PathBuf;

use serde_spanned::Spanned;

use super::Validator;
use crate::config::raw::SpannedList;
use crate::config::registry::{RawRegistry, RawVerify, RegistryConfig, VerifyConfig, VerifyRule};
use crate::config::values::parse_size;

/// Where `[registry]` errors point.
const REGISTRY: Option<&str> = Some("[registry]");

impl Validator<'_> {
    /// `[registry]`; the defaults when absent (errors recorded).
    pub(super) fn registry(&mut self, raw: Option<Spanned<RawRegistry>>) -> RegistryConfig {
        let mut config = RegistryConfig::default();
        let Some(raw) = raw else {
            return config;
        };
        let raw = raw.into_inner();
        if let Some(list) = &raw.insecure {
            for host in list.get_ref() {
                let text = host.get_ref().trim();
                if text.is_empty() || text.contains("://") || text.contains('/') {
                    let msg = format!(
                        "invalid registry {text:?}: write the registry as host[:port], \
                         e.g. insecure = [\"127.0.0.1:5000\"]"
                    );
                    self.error(host.span(), REGISTRY, Some("insecure"), msg);
                } else {
                    config.insecure.push(text.to_ascii_lowercase());
                }
            }
        }
        if let Some(size) = &raw.cache_size {
            config.cache_size = self
                .parse_text(size, REGISTRY, "cache_size", "1GiB", parse_size)
                .unwrap_or(config.cache_size);
        }
        if let Some(ca) = raw.ca {
            for (registry, file) in ca.into_inner() {
                let span = file.span();
                if registry.is_empty() || registry.contains("://") || registry.contains('/') {
                    let msg = format!(
                        "invalid registry {registry:?}: write the registry as host[:port], \
                         e.g. ca = {{ \"registry.example.com\" = \"ca.pem\" }}"
                    );
                    self.error(span, REGISTRY, Some("ca"), msg);
                    continue;
                }
                if let Some(path) = self.pem_file(&file, "[registry]", "ca", "CERTIFICATE") {
                    config.ca.insert(registry.to_ascii_lowercase(), path);
                }
            }
        }
        if let Some(verify) = raw.verify {
            config.verify = self.verify(verify);
        }
        config
    }

    /// `[registry.verify]`.
    fn verify(&mut self, raw: Spanned<RawVerify>) -> VerifyConfig {
        const VERIFY: Option<&str> = Some("[registry.verify]");
        let span = raw.span();
        let raw = raw.into_inner();
        let mut config = VerifyConfig {
            require: raw.require.as_ref().is_some_and(|r| *r.get_ref()),
            keys: self.key_files(raw.keys.as_ref(), "[registry.verify]"),
            rules: Vec::new(),
        };
        for rule in raw.rule.unwrap_or_default() {
            const RULE: Option<&str> = Some("[[registry.verify.rule]]");
            let rule_span = rule.span();
            let rule = rule.into_inner();
            let Some(prefix) = rule.prefix else {
                let msg =
                    "missing: the rule's prefix, e.g. prefix = \"registry.example.com/vantage/\"";
                self.error(rule_span, RULE, Some("prefix"), msg.to_string());
                continue;
            };
            let text = prefix.get_ref().trim().trim_start_matches("oci://");
            let registry = text.split('/').next().unwrap_or("");
            if !(registry.contains('.') || registry.contains(':') || registry == "localhost") {
                let msg = format!(
                    "invalid prefix {text:?}: start with the registry (a host with a dot or a \
                     port, or localhost), e.g. \"registry.example.com/vantage/\""
                );
                self.error(prefix.span(), RULE, Some("prefix"), msg);
                continue;
            }
            let keys = self.key_files(rule.keys.as_ref(), "[[registry.verify.rule]]");
            if keys.is_empty() && rule.keys.is_none() {
                let msg = "missing: the keys this rule trusts, e.g. keys = [\"keys/release.pub\"]";
                self.error(rule_span, RULE, Some("keys"), msg.to_string());
            }
            config.rules.push(VerifyRule {
                prefix: text.to_ascii_lowercase(),
                keys,
            });
        }
        if config.require && config.keys.is_empty() && config.rules.is_empty() {
            let msg = "require = true needs keys: set keys = [\"keys/team.pub\"] or a \
                       [[registry.verify.rule]] (every component would be refused)";
            self.error(span, VERIFY, Some("require"), msg.to_string());
        }
        config
    }

    /// The public key files of a `keys` list, each checked to be a PEM
    /// public key.
    fn key_files(&mut self, list: Option<&SpannedList>, context: &str) -> Vec<PathBuf> {
        let Some(list) = list else {
            return Vec::new();
        };
        list.get_ref()
            .iter()
            .filter_map(|file| self.pem_file(file, context, "keys", "PUBLIC KEY"))
            .collect()
    }

    /// `file` resolved against the configuration's folder, when it is a
    /// readable PEM file with a `label` block (an error at its place
    /// otherwise).
    pub(super) fn pem_file(
        &mut self,
        file: &Spanned<String>,
        context: &str,
        key: &str,
        label: &str,
    ) -> Option<PathBuf> {
        let path = self.resolve(file.get_ref());
        let problem = match std::fs::read_to_string(&path) {
            Err(e) => Some(format!("cannot read {}: {e}", path.display())),
            Ok(text) if text.contains(&format!("-----BEGIN {label}-----")) => None,
            Ok(text) if text.contains("PRIVATE KEY-----") => Some(format!(
                "{} is a private key: give the public key (`.pub`); keep the private key \
                 where you sign",
                path.display()
            )),
            Ok(_) => Some(format!(
                "{} is not a PEM file with a `{label}` block",
                path.display()
            )),
        };
        match problem {
            None => Some(path),
            Some(msg) => {
                self.error(file.span(), Some(context), Some(key), msg);
                None
            }
        }
    }
}
