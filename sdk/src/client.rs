//! The HTTP client settings a check takes from its configuration, under
//! blackbox_exporter's names: see [`ClientSettings`].

use crate::http::{Compression, IpFamily, Proxy, RequestBuilder};
use crate::tls::TlsOptions;
use crate::{ConfigError, ConfigKey, Context, Metadata, ValueType};

/// How to reach a server, read from the configuration keys blackbox_exporter's
/// `http` module uses (`tls_config.*` flattened), so that a migrating
/// operator writes the same words (the TLS keys alone, for checks that
/// are not HTTP, are [`TlsOptions::from_context`]):
///
/// | key | blackbox_exporter | request |
/// |---|---|---|
/// | `ca_bundle` | `tls_config.ca_file` | trust this PEM bundle (or a `{{secret.NAME}}`) |
/// | `server_name` | `tls_config.server_name` | SNI and verification name |
/// | `client_cert_secret` | `tls_config.cert_file` + `key_file` | client certificate and key, from a granted secret |
/// | `insecure` | `tls_config.insecure_skip_verify` | skip verification (the operator must allow it) |
/// | `min_tls_version` / `max_tls_version` | `tls_config.min_version` / `max_version` | `TLS12`, `TLS13` |
/// | `proxy_url` | `proxy_url` | HTTP proxy (CONNECT for `https://`) |
/// | `proxy_headers.<name>` | `proxy_connect_header` | headers sent to the proxy only |
/// | `compression` | `compression` | `gzip`, `deflate`, `br`, `zstd` |
/// | `enable_http2` | `enable_http2` | offer HTTP/2 by ALPN |
/// | `preferred_ip_protocol` | `preferred_ip_protocol` | `ip4` or `ip6` first |
/// | `ip_protocol_fallback` | `ip_protocol_fallback` | use the other family when the preferred has no address |
///
/// ```
/// use vantage_sdk::{Context, Metadata, http::{self, ClientSettings, Compression}};
///
/// let metadata = ClientSettings::declare(Metadata::new("mine"));
/// assert!(metadata.config.iter().any(|k| k.key == "proxy_url"));
///
/// let ctx = Context::builder()
///     .config("server_name", "api.internal")
///     .config("compression", "gzip")
///     .config("proxy_url", "http://127.0.0.1:3128")
///     .build();
/// let settings = ClientSettings::from_context(&ctx)?;
/// let request = settings.apply(http::get("https://10.0.0.7/healthz")).build();
/// assert_eq!(request.tls.server_name.as_deref(), Some("api.internal"));
/// assert_eq!(request.compression, Some(Compression::Gzip));
/// assert_eq!(request.proxy.unwrap().url, "http://127.0.0.1:3128");
/// # Ok::<(), vantage_sdk::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ClientSettings {
    /// TLS: server name, CAs, client certificate, versions, `insecure`.
    pub tls: TlsOptions,
    /// The proxy, if any.
    pub proxy: Option<Proxy>,
    /// The compression to ask for, if any.
    pub compression: Option<Compression>,
    /// Offer HTTP/2.
    pub http2: bool,
    /// The address family to try first, and whether to fall back.
    pub ip: Option<(IpFamily, bool)>,
}

impl ClientSettings {
    /// Declare the keys read by [`from_context`](Self::from_context) in
    /// `metadata`, typed, with their defaults.
    pub fn declare(metadata: Metadata) -> Metadata {
        Self::config_keys()
            .into_iter()
            .fold(metadata, Metadata::config_key)
    }

    /// The keys read by [`from_context`](Self::from_context).
    pub fn config_keys() -> Vec<ConfigKey> {
        let key = ConfigKey::new;
        let mut keys = TlsOptions::config_keys();
        keys.extend([
            key(
                "proxy_url",
                "Send requests through this HTTP proxy (`http://host:port`; `https://` targets \
                 go through a CONNECT tunnel). The proxy must be allowed outbound.",
            )
            .typed(ValueType::Url),
            key(
                "proxy_headers.<name>",
                "A header sent to the proxy only, e.g. `proxy_headers.Proxy-Authorization`.",
            )
            .sensitive(),
            key(
                "compression",
                "Ask for this content encoding and decode it; another encoding fails, and the \
                 body limit applies to the decoded body.",
            )
            .typed(ValueType::choice(["gzip", "deflate", "br", "zstd"])),
            key("enable_http2", "Offer HTTP/2 by ALPN on https:// URLs.")
                .typed(ValueType::Boolean)
                .default("false"),
        ]);
        keys.extend(Self::ip_config_keys());
        keys
    }

    /// The address-family keys alone (`preferred_ip_protocol`,
    /// `ip_protocol_fallback`), for checks that connect without HTTP, such as
    /// `tcp`; read them with [`ip_from_context`](Self::ip_from_context).
    pub fn ip_config_keys() -> Vec<ConfigKey> {
        vec![
            ConfigKey::new(
                "preferred_ip_protocol",
                "Address family to connect over first: `ip4` or `ip6`.",
            )
            .typed(ValueType::choice(["ip4", "ip6"])),
            ConfigKey::new(
                "ip_protocol_fallback",
                "Use the other address family when the preferred one has no address.",
            )
            .typed(ValueType::Boolean)
            .default("true"),
        ]
    }

    /// The preferred address family and whether to fall back to the other,
    /// or `None` when `preferred_ip_protocol` is not set.
    pub fn ip_from_context(ctx: &Context) -> Result<Option<(IpFamily, bool)>, ConfigError> {
        let fallback = ctx.config_bool("ip_protocol_fallback")?.unwrap_or(true);
        ctx.config("preferred_ip_protocol")
            .map(|v| {
                IpFamily::parse(v)
                    .map(|family| (family, fallback))
                    .ok_or_else(|| {
                        ctx.config_error("preferred_ip_protocol", v, "expected ip4 or ip6")
                    })
            })
            .transpose()
    }

    /// Read the settings; an invalid value is an error naming its key.
    pub fn from_context(ctx: &Context) -> Result<Self, ConfigError> {
        let text = |key: &str| {
            ctx.config(key)
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(String::from)
        };
        let tls = TlsOptions::from_context(ctx)?;
        let headers: Vec<(String, String)> = ctx
            .config_table("proxy_headers")
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let proxy = match text("proxy_url") {
            Some(url) => Some(Proxy { url, headers }),
            None if !headers.is_empty() => {
                return Err(ConfigError::hidden(
                    "proxy_headers",
                    "proxy headers need a `proxy_url`",
                ));
            }
            None => None,
        };
        let compression = ctx
            .config("compression")
            .map(|v| {
                Compression::parse(v).ok_or_else(|| {
                    ctx.config_error("compression", v, "expected gzip, deflate, br or zstd")
                })
            })
            .transpose()?;
        let ip = Self::ip_from_context(ctx)?;
        Ok(Self {
            tls,
            proxy,
            compression,
            http2: ctx.config_bool("enable_http2")?.unwrap_or(false),
            ip,
        })
    }

    /// Set these settings on `request`.
    pub fn apply(&self, request: RequestBuilder) -> RequestBuilder {
        let mut request = request.tls(self.tls.clone()).http2(self.http2);
        if let Some(proxy) = &self.proxy {
            request = request.proxy(proxy.clone());
        }
        if let Some(compression) = self.compression {
            request = request.compression(compression);
        }
        if let Some((family, fallback)) = self.ip {
            request = request.prefer_ip(family, fallback);
        }
        request
    }
}

impl TlsOptions {
    /// The TLS keys read by [`from_context`](Self::from_context): `ca_bundle`,
    /// `server_name`, `client_cert_secret`, `insecure`, `min_tls_version`
    /// and `max_tls_version` (blackbox_exporter's `tls_config`).
    pub fn config_keys() -> Vec<ConfigKey> {
        let key = ConfigKey::new;
        let version = || ValueType::choice(["TLS12", "TLS13"]);
        vec![
            key(
                "ca_bundle",
                "PEM bundle of CAs to trust instead of the public roots (or a \
                 `{{secret.NAME}}` reference); a self-signed server certificate listed here is \
                 trusted as itself.",
            )
            .typed(ValueType::Pem),
            key(
                "server_name",
                "Name to send as SNI and verify the certificate against; defaults to the target's host.",
            ),
            key(
                "client_cert_secret",
                "Name of a granted secret holding a PEM client certificate chain and key, for mutual TLS.",
            ),
            key(
                "insecure",
                "Do not verify the server certificate (the operator must allow it); the verdict is still reported.",
            )
            .typed(ValueType::Boolean)
            .default("false"),
            key("min_tls_version", "Lowest TLS version to offer: `TLS12` or `TLS13`.")
                .typed(version())
                .default("TLS12"),
            key("max_tls_version", "Highest TLS version to offer: `TLS12` or `TLS13`.")
                .typed(version())
                .default("TLS13"),
        ]
    }

    /// Read the TLS keys (see [`config_keys`](Self::config_keys)); an
    /// invalid value is an error naming its key.
    ///
    /// ```
    /// use vantage_sdk::{Context, tls::{TlsOptions, TlsVersion}};
    /// let ctx = Context::builder()
    ///     .config("server_name", "db.internal")
    ///     .config("min_tls_version", "TLS13")
    ///     .build();
    /// let options = TlsOptions::from_context(&ctx)?;
    /// assert_eq!(options.server_name.as_deref(), Some("db.internal"));
    /// assert_eq!(options.min_version, Some(TlsVersion::Tls13));
    /// # Ok::<(), vantage_sdk::ConfigError>(())
    /// ```
    pub fn from_context(ctx: &Context) -> Result<Self, ConfigError> {
        let text = |key: &str| {
            ctx.config(key)
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(String::from)
        };
        let version = |key: &str| -> Result<Option<crate::tls::TlsVersion>, ConfigError> {
            ctx.config(key)
                .map(|v| {
                    crate::tls::TlsVersion::parse(v)
                        .ok_or_else(|| ctx.config_error(key, v, "expected TLS12 or TLS13"))
                })
                .transpose()
        };
        Ok(TlsOptions {
            server_name: text("server_name"),
            ca_bundle_pem: ctx.config("ca_bundle").map(String::from),
            client_cert_secret: text("client_cert_secret"),
            insecure: ctx.config_bool("insecure")?.unwrap_or(false),
            min_version: version("min_tls_version")?,
            max_version: version("max_tls_version")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::TlsVersion;

    fn ctx(entries: &[(&str, &str)]) -> Context {
        Context::builder().configs(entries.iter().copied()).build()
    }

    #[test]
    fn defaults_change_nothing() {
        let s = ClientSettings::from_context(&ctx(&[])).unwrap();
        let r = s.apply(crate::http::get("https://a.test/")).build();
        assert_eq!(r.tls, TlsOptions::default());
        assert!(r.proxy.is_none() && r.compression.is_none() && !r.http2);
        assert_eq!(r.ip.preferred, None);
    }

    #[test]
    fn every_key_reaches_the_request() {
        let s = ClientSettings::from_context(&ctx(&[
            ("ca_bundle", "-----BEGIN CERTIFICATE-----"),
            ("server_name", "api.internal"),
            ("client_cert_secret", "client"),
            ("insecure", "false"),
            ("min_tls_version", "TLS13"),
            ("max_tls_version", "tls13"),
            ("proxy_url", "http://127.0.0.1:3128"),
            ("proxy_headers.Proxy-Authorization", "Basic eHg6eXk="),
            ("compression", "br"),
            ("enable_http2", "true"),
            ("preferred_ip_protocol", "ip6"),
            ("ip_protocol_fallback", "false"),
        ]))
        .unwrap();
        let r = s.apply(crate::http::get("https://a.test/")).build();
        assert_eq!(
            r.tls.ca_bundle_pem.as_deref(),
            Some("-----BEGIN CERTIFICATE-----")
        );
        assert_eq!(r.tls.server_name.as_deref(), Some("api.internal"));
        assert_eq!(r.tls.client_cert_secret.as_deref(), Some("client"));
        assert_eq!(r.tls.min_version, Some(TlsVersion::Tls13));
        assert_eq!(r.tls.max_version, Some(TlsVersion::Tls13));
        let proxy = r.proxy.unwrap();
        assert_eq!(proxy.url, "http://127.0.0.1:3128");
        assert_eq!(
            proxy.headers,
            [(
                "Proxy-Authorization".to_string(),
                "Basic eHg6eXk=".to_string()
            )]
        );
        assert_eq!(r.compression, Some(Compression::Br));
        assert!(r.http2);
        assert_eq!(r.ip.preferred, Some(IpFamily::Ip6));
        assert!(!r.ip.fallback);
    }

    #[test]
    fn bad_values_name_their_key_and_hide_proxy_secrets() {
        let key =
            |entries: &[(&str, &str)]| ClientSettings::from_context(&ctx(entries)).unwrap_err().key;
        assert_eq!(key(&[("min_tls_version", "TLS10")]), "min_tls_version");
        assert_eq!(key(&[("compression", "lz4")]), "compression");
        assert_eq!(
            key(&[("preferred_ip_protocol", "ip5")]),
            "preferred_ip_protocol"
        );
        assert_eq!(key(&[("enable_http2", "sometimes")]), "enable_http2");
        let err = ClientSettings::from_context(&ctx(&[(
            "proxy_headers.Proxy-Authorization",
            "Basic c2VjcmV0",
        )]))
        .unwrap_err();
        assert_eq!(err.key, "proxy_headers");
        assert!(!err.to_string().contains("c2VjcmV0"), "{err}");
        // The declared keys are typed: the SDK (and the host) check values.
        let m = ClientSettings::declare(Metadata::new("x"));
        let bad = ctx(&[("compression", "lz4")]);
        assert!(bad.check_config_values(&m).is_err());
        let ok = ctx(&[("compression", "gzip"), ("proxy_headers.X-A", "1")]);
        assert!(ok.check_config_keys(&m).is_ok() && ok.check_config_values(&m).is_ok());
    }
}
