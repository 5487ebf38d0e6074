//! Stage two for `[registry]`.

use serde_spanned::Spanned;

use super::Validator;
use crate::config::registry::{RawRegistry, RegistryConfig};
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
        config
    }
}
