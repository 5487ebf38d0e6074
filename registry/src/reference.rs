//! Registry references: `oci://host[:port]/repository:tag` or
//! `oci://host[:port]/repository@sha256:<hex>`.

use std::fmt;

use crate::RegistryError;

/// A component in an OCI registry, as written after `oci://`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OciRef {
    /// `host[:port]`, lower-case.
    pub registry: String,
    /// The repository path (`vantage/http`).
    pub repository: String,
    /// The tag, when given (`1.2.0`).
    pub tag: Option<String>,
    /// The manifest digest, when given (`sha256:<64 hex>`).
    pub digest: Option<String>,
}

impl OciRef {
    /// Parse `oci://host[:port]/repo[:tag][@sha256:hex]` (the `oci://`
    /// prefix is optional). The registry must be explicit: a host with a
    /// dot or a port, or `localhost`. Without tag or digest the tag is
    /// `latest`.
    pub fn parse(text: &str) -> Result<OciRef, RegistryError> {
        let invalid = |reason: &str| RegistryError::InvalidReference {
            reference: text.to_string(),
            reason: reason.to_string(),
        };
        let rest = text.trim().strip_prefix("oci://").unwrap_or(text.trim());
        let (registry, path) = rest
            .split_once('/')
            .ok_or_else(|| invalid("expected oci://REGISTRY/REPOSITORY:TAG"))?;
        let registry = registry.to_ascii_lowercase();
        if registry.is_empty()
            || !(registry.contains('.') || registry.contains(':') || registry == "localhost")
        {
            return Err(invalid(
                "the registry must be a host name with a dot or a port, or localhost, e.g. ghcr.io or 127.0.0.1:5000",
            ));
        }
        let (name, digest) = match path.split_once('@') {
            Some((name, digest)) => {
                let hex = digest
                    .strip_prefix("sha256:")
                    .ok_or_else(|| invalid("only sha256 digests are supported"))?;
                if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(invalid("a sha256 digest has 64 hex digits"));
                }
                (name, Some(format!("sha256:{}", hex.to_ascii_lowercase())))
            }
            None => (path, None),
        };
        // A tag follows the last `:` after the last `/`.
        let last = name.rsplit('/').next().unwrap_or(name);
        let (repository, tag) = match last.rsplit_once(':') {
            Some((_, tag)) => (&name[..name.len() - tag.len() - 1], Some(tag.to_string())),
            None => (name, None),
        };
        if repository.is_empty()
            || !repository.split('/').all(|part| {
                !part.is_empty()
                    && part.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b)
                    })
            })
        {
            return Err(invalid(
                "the repository is lower-case letters, digits, `.`, `_`, `-` and `/`",
            ));
        }
        if let Some(tag) = &tag {
            let ok = !tag.is_empty()
                && tag.len() <= 128
                && tag
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
                && !tag.starts_with(['.', '-']);
            if !ok {
                return Err(invalid(
                    "a tag is up to 128 letters, digits, `.`, `_` and `-`",
                ));
            }
        }
        let tag = if tag.is_none() && digest.is_none() {
            Some("latest".to_string())
        } else {
            tag
        };
        Ok(OciRef {
            registry,
            repository: repository.to_string(),
            tag,
            digest,
        })
    }

    /// The same component pinned to `digest` (the tag is kept for display).
    pub fn pinned(&self, digest: &str) -> OciRef {
        OciRef {
            digest: Some(digest.to_string()),
            ..self.clone()
        }
    }

    /// Another tag in the same repository (not pinned).
    pub fn with_tag(&self, tag: &str) -> OciRef {
        OciRef {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            tag: Some(tag.to_string()),
            digest: None,
        }
    }

    /// `host/repository@digest` (or `:tag` when not pinned), without `oci://`.
    pub fn locator(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => format!("{}/{}@{d}", self.registry, self.repository),
            (None, Some(t)) => format!("{}/{}:{t}", self.registry, self.repository),
            (None, None) => format!("{}/{}", self.registry, self.repository),
        }
    }

    /// Whether the registry is on this machine (`localhost`, 127.0.0.0/8,
    /// `::1`): it is reached over plain HTTP.
    pub fn is_loopback(&self) -> bool {
        let host = match self.registry.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => &self.registry,
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }

    /// The reference for oci-client.
    pub(crate) fn client_ref(&self) -> oci_client::Reference {
        match (&self.digest, &self.tag) {
            (Some(d), _) => oci_client::Reference::with_digest(
                self.registry.clone(),
                self.repository.clone(),
                d.clone(),
            ),
            (None, tag) => oci_client::Reference::with_tag(
                self.registry.clone(),
                self.repository.clone(),
                tag.clone().unwrap_or_else(|| "latest".into()),
            ),
        }
    }
}

impl fmt::Display for OciRef {
    /// `oci://host/repo:tag`, `oci://host/repo@sha256:…` or both
    /// (`:tag@sha256:…`) once pinned.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "oci://{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oci_references_parse_tag_digest_and_port() {
        let r = OciRef::parse("oci://127.0.0.1:5000/vantage/http:1.2.0").unwrap();
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "vantage/http");
        assert_eq!(r.tag.as_deref(), Some("1.2.0"));
        assert!(r.is_loopback());
        let d = format!("sha256:{}", "ab".repeat(32));
        let r = OciRef::parse(&format!("ghcr.io/acme/http@{d}")).unwrap();
        assert_eq!(r.digest.as_deref(), Some(d.as_str()));
        assert_eq!(r.tag, None);
        assert!(!r.is_loopback());
        assert_eq!(
            OciRef::parse("oci://ghcr.io/acme/http")
                .unwrap()
                .tag
                .as_deref(),
            Some("latest")
        );
        assert_eq!(
            r.pinned(&d).to_string(),
            format!("oci://ghcr.io/acme/http@{d}")
        );
    }

    #[test]
    fn bad_oci_references_say_why() {
        for (text, why) in [
            ("oci://http:1.0", "expected oci://"),
            ("oci://acme/http:1.0", "the registry must be"),
            ("oci://ghcr.io/Acme/http:1.0", "lower-case"),
            ("oci://ghcr.io/acme/http@md5:00", "only sha256"),
            ("oci://ghcr.io/acme/http@sha256:00", "64 hex"),
            ("oci://ghcr.io/acme/http:", "a tag is"),
        ] {
            let e = OciRef::parse(text).unwrap_err().to_string();
            assert!(e.contains(why), "{text}: {e}");
        }
    }
}
