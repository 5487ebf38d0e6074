//! The check's configuration, parsed and validated once, before any request.

use std::time::Duration;

use vantage_sdk::http::{ClientSettings, HttpVersion, StatusSet};
use vantage_sdk::regex_lite::Regex;
use vantage_sdk::{ConfigError, Context};

use crate::condition::JsonCondition;

/// Status codes accepted when `expect.status` is not set: 2xx, as
/// blackbox_exporter's `valid_status_codes` (a redirect that is not followed
/// fails unless expected).
pub const DEFAULT_STATUS: &str = "2xx";

/// Everything the configuration asks for.
#[derive(Debug)]
pub struct Spec {
    pub method: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    pub basic_auth: Option<(String, String)>,
    pub bearer_token: Option<String>,
    pub timeout: Option<Duration>,
    pub follow_redirects: bool,
    pub max_redirects: Option<u32>,
    pub max_body_bytes: Option<u64>,
    /// TLS, proxy, compression, HTTP/2 and IP preference.
    pub client: ClientSettings,
    pub status: StatusSet,
    pub body_contains: Vec<String>,
    pub body_not_contains: Vec<String>,
    /// Compiled once, here, and used as is by the assertions: a run starts
    /// from a fresh instance, so every compile is paid on every run.
    pub body_matches: Vec<Regex>,
    pub body_not_matches: Vec<Regex>,
    /// Header name and value pattern (`None`: must be present).
    pub expect_headers: Vec<(String, Option<Regex>)>,
    /// Headers that must be absent.
    pub headers_absent: Vec<String>,
    /// Header name and a pattern none of its values may match.
    pub headers_not_matching: Vec<(String, Regex)>,
    /// Headers whose absence passes the two pattern rules
    /// (blackbox_exporter's `allow_missing`), lowercase.
    pub allow_missing: Vec<String>,
    pub json: Vec<JsonCondition>,
    pub http_versions: Vec<HttpVersion>,
    pub tls: Option<bool>,
    pub latency_degraded: Option<Duration>,
    pub latency_max: Option<Duration>,
    pub cert_expiry_degraded: Option<Duration>,
    pub cert_expiry_min: Option<Duration>,
}

impl Spec {
    /// Parse and validate every key; the first problem is returned.
    pub fn from_context(ctx: &Context) -> Result<Self, ConfigError> {
        let regexes = |key: &str| -> Result<Vec<Regex>, ConfigError> {
            ctx.config_list(key)
                .into_iter()
                .map(|pattern| compile(key, pattern))
                .collect()
        };

        let mut expect_headers = Vec::new();
        for (name, pattern) in ctx.config_table("expect.headers") {
            let key = format!("expect.headers.{name}");
            if pattern.is_empty() {
                expect_headers.push((name.to_string(), None));
            } else {
                expect_headers.push((name.to_string(), Some(compile(&key, pattern)?)));
            }
        }

        let mut headers_not_matching = Vec::new();
        for (name, pattern) in ctx.config_table("expect.headers_not_matching") {
            let key = format!("expect.headers_not_matching.{name}");
            headers_not_matching.push((name.to_string(), compile(&key, pattern)?));
        }

        let json = ctx
            .config_table("expect.json")
            .into_iter()
            .map(|(path, condition)| {
                JsonCondition::parse(path, condition)
                    .map_err(|e| ConfigError::new(format!("expect.json.{path}"), condition, e))
            })
            .collect::<Result<Vec<_>, _>>()?;

        let http_versions = ctx
            .config_list("expect.http_version")
            .into_iter()
            .map(|v| {
                HttpVersion::parse(v).ok_or_else(|| {
                    ConfigError::new("expect.http_version", v, "expected 1.0, 1.1 or 2")
                })
            })
            .collect::<Result<Vec<_>, _>>()?;

        let max_body_bytes = ctx
            .config("max_body_bytes")
            .map(|v| {
                vantage_sdk::parse_size(v).map_err(|e| ConfigError::new("max_body_bytes", v, e))
            })
            .transpose()?;

        Ok(Spec {
            method: ctx.config_or("method", "GET").trim().to_ascii_uppercase(),
            headers: ctx
                .config_table("headers")
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: ctx.config("body").map(str::to_string),
            basic_auth: basic_auth(ctx)?,
            bearer_token: ctx.config("bearer_token").map(str::to_string),
            timeout: ctx.config_duration("timeout")?,
            follow_redirects: ctx.config_bool("follow_redirects")?.unwrap_or(true),
            max_redirects: ctx.config_parse("max_redirects")?,
            max_body_bytes,
            client: ClientSettings::from_context(ctx)?,
            status: status(ctx)?,
            body_contains: strings(ctx, "expect.body_contains"),
            body_not_contains: strings(ctx, "expect.body_not_contains"),
            body_matches: regexes("expect.body_matches")?,
            body_not_matches: regexes("expect.body_not_matches")?,
            expect_headers,
            headers_absent: strings(ctx, "expect.headers_absent"),
            headers_not_matching,
            allow_missing: ctx
                .config_list("expect.headers_allow_missing")
                .into_iter()
                .map(|h| h.trim().to_ascii_lowercase())
                .collect(),
            json,
            http_versions,
            tls: ctx.config_bool("expect.tls")?,
            latency_degraded: ctx.config_duration("latency.degraded")?,
            latency_max: ctx.config_duration("latency.max")?,
            cert_expiry_degraded: ctx.config_duration("cert_expiry.degraded")?,
            cert_expiry_min: ctx.config_duration("cert_expiry.min")?,
        })
    }
}

/// The acceptable statuses (2xx when none is configured).
fn status(ctx: &Context) -> Result<StatusSet, ConfigError> {
    let items = ctx.config_list("expect.status");
    if items.is_empty() {
        return Ok(StatusSet::parse(DEFAULT_STATUS).expect("valid default"));
    }
    StatusSet::parse_all(items.iter().copied())
        .map_err(|e| ConfigError::new("expect.status", items.join(", "), e))
}

/// User and password for basic authentication, if configured.
fn basic_auth(ctx: &Context) -> Result<Option<(String, String)>, ConfigError> {
    match (
        ctx.config("basic_auth.username"),
        ctx.config("basic_auth.password"),
    ) {
        (None, None) => Ok(None),
        (Some(user), password) => Ok(Some((
            user.to_string(),
            password.unwrap_or_default().to_string(),
        ))),
        (None, Some(_)) => Err(ConfigError::hidden(
            "basic_auth.password",
            "basic_auth.username is missing",
        )),
    }
}

/// A list key's items, as owned strings.
fn strings(ctx: &Context, key: &str) -> Vec<String> {
    ctx.config_list(key).into_iter().map(String::from).collect()
}

/// Compile a configured pattern, once per run. `regex-lite`, not `regex`: a
/// small pattern compiles in a few microseconds instead of hundreds in Wasm,
/// and the component is smaller. Its dialect is `regex`'s but with ASCII-only
/// `\d`, `\w`, `\s` and case folding, and no `\p{…}` classes.
fn compile(key: &str, pattern: &str) -> Result<Regex, ConfigError> {
    Regex::new(pattern).map_err(|e| ConfigError::new(key, pattern, format!("invalid regex: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(entries: &[(&str, &str)]) -> Context {
        entries
            .iter()
            .fold(
                Context::builder().target("https://example.com/"),
                |b, (k, v)| b.config(*k, *v),
            )
            .build()
    }

    #[test]
    fn defaults() {
        let s = Spec::from_context(&ctx(&[])).unwrap();
        assert_eq!(s.method, "GET");
        assert!(s.follow_redirects);
        // 2xx, as blackbox_exporter: a redirect that is not followed fails.
        assert!(s.status.contains(200) && s.status.contains(299));
        assert!(!s.status.contains(302) && !s.status.contains(404));
        assert!(s.json.is_empty() && s.headers.is_empty() && s.tls.is_none());
    }

    #[test]
    fn full_config() {
        let s = Spec::from_context(&ctx(&[
            ("method", "post"),
            ("headers.Accept", "application/json"),
            ("body", "{}"),
            ("basic_auth.username", "u"),
            ("timeout", "5s"),
            ("follow_redirects", "false"),
            ("max_redirects", "3"),
            ("max_body_bytes", "2 MiB"),
            ("expect.status.0", "200"),
            ("expect.status.1", "204"),
            ("expect.body_contains", "ok"),
            ("expect.body_matches.0", "v\\d+"),
            ("expect.headers.Content-Type", "^application/json"),
            ("expect.headers.ETag", ""),
            ("expect.headers_absent.0", "X-Debug"),
            ("expect.headers_not_matching.Server", "^Apache"),
            ("expect.headers_allow_missing", "Server"),
            ("bearer_token", "t0k3n"),
            ("compression", "gzip"),
            ("expect.json./status", "ok"),
            ("expect.json.data.count", "> 0"),
            ("expect.http_version.0", "1.1"),
            ("expect.http_version.1", "2"),
            ("expect.tls", "true"),
            ("latency.degraded", "500ms"),
            ("latency.max", "2s"),
            ("cert_expiry.min", "7d"),
        ]))
        .unwrap();
        assert_eq!(s.method, "POST");
        assert_eq!(s.basic_auth, Some(("u".into(), "".into())));
        assert_eq!(s.timeout, Some(Duration::from_secs(5)));
        assert!(!s.follow_redirects);
        assert_eq!(s.max_redirects, Some(3));
        assert_eq!(s.max_body_bytes, Some(2 << 20));
        assert!(s.status.contains(204) && !s.status.contains(201));
        assert_eq!(s.body_matches.len(), 1);
        assert_eq!(s.body_matches[0].as_str(), "v\\d+");
        assert_eq!(s.expect_headers.len(), 2);
        assert_eq!(
            s.expect_headers[0].1.as_ref().map(|re| re.as_str()),
            Some("^application/json")
        );
        assert_eq!(s.expect_headers[1].0, "ETag");
        assert!(s.expect_headers[1].1.is_none());
        assert_eq!(s.headers_absent, ["X-Debug"]);
        assert_eq!(s.headers_not_matching[0].0, "Server");
        assert_eq!(s.allow_missing, ["server"]);
        assert_eq!(s.bearer_token.as_deref(), Some("t0k3n"));
        assert!(s.client.compression.is_some());
        assert_eq!(s.json.len(), 2);
        assert_eq!(s.json[1].pointer, "/data/count");
        assert_eq!(
            s.http_versions,
            vec![HttpVersion::Http11, HttpVersion::Http2]
        );
        assert_eq!(s.tls, Some(true));
        assert_eq!(s.latency_degraded, Some(Duration::from_millis(500)));
        assert_eq!(s.cert_expiry_min, Some(Duration::from_secs(7 * 86_400)));
    }

    #[test]
    fn errors_name_the_key() {
        let err = |entries: &[(&str, &str)]| Spec::from_context(&ctx(entries)).unwrap_err().key;
        assert_eq!(err(&[("expect.status.0", "20x")]), "expect.status");
        assert_eq!(
            err(&[("expect.body_matches.0", "(")]),
            "expect.body_matches"
        );
        assert_eq!(err(&[("expect.headers.X", "[")]), "expect.headers.X");
        assert_eq!(
            err(&[("expect.headers_not_matching.X", "(")]),
            "expect.headers_not_matching.X"
        );
        assert_eq!(err(&[("min_tls_version", "SSL3")]), "min_tls_version");
        assert_eq!(err(&[("expect.json./a", "> x")]), "expect.json./a");
        assert_eq!(err(&[("timeout", "5")]), "timeout");
        assert_eq!(err(&[("follow_redirects", "maybe")]), "follow_redirects");
        assert_eq!(err(&[("max_body_bytes", "1 parsec")]), "max_body_bytes");
        assert_eq!(err(&[("expect.http_version", "3")]), "expect.http_version");
        assert_eq!(err(&[("basic_auth.password", "p")]), "basic_auth.password");
    }
}
