//! Stage two for `[[remote_write]]`.

use std::collections::HashSet;
use std::time::Duration;

use serde_spanned::Spanned;

use super::Validator;
use crate::config::SecretSource;
use crate::config::remote_write::{
    CentralConfig, QueueConfig, RawCentral, RawQueue, RawRemoteWrite, RemoteWriteAuth,
    RemoteWriteConfig,
};
use crate::config::values::{DurationRange, parse_size};

/// Headers the sender sets itself (Prometheus refuses them in
/// `headers` too).
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "authorization",
    "content-encoding",
    "content-type",
    "content-length",
    "user-agent",
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "www-authenticate",
    "x-prometheus-remote-write-version",
];

/// A timeout of one request: 1ms to 10m.
const REQUEST_TIMEOUT: DurationRange =
    DurationRange::new(Duration::from_millis(1), Duration::from_secs(600));
/// `max_age`: 1s to 30d.
const MAX_AGE: DurationRange =
    DurationRange::new(Duration::from_secs(1), Duration::from_secs(30 * 86_400));
/// Backoffs and the batch deadline: 1ms to 10m.
const SHORT: DurationRange = DurationRange::new(Duration::from_millis(1), Duration::from_secs(600));

impl Validator<'_> {
    /// `[central]`.
    pub(super) fn central(&mut self, raw: Spanned<RawCentral>) -> Option<CentralConfig> {
        const CENTRAL: Option<&str> = Some("[central]");
        let span = raw.span();
        let raw = raw.into_inner();
        let Some(url) = &raw.prometheus else {
            self.error(
                span,
                CENTRAL,
                Some("prometheus"),
                "missing: the Prometheus the edges push to, e.g. prometheus = \"http://prometheus:9090\""
                    .to_string(),
            );
            return None;
        };
        let prometheus = match url::Url::parse(url.get_ref().trim()) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => u,
            _ => {
                let msg = format!(
                    "invalid URL {:?}: write the Prometheus base URL, e.g. \"http://prometheus:9090\"",
                    url.get_ref()
                );
                self.error(url.span(), CENTRAL, Some("prometheus"), msg);
                return None;
            }
        };
        let silent_after = raw
            .silent_after
            .as_ref()
            .and_then(|v| self.duration(v, CENTRAL, "silent_after", "2m", MAX_AGE))
            .unwrap_or(Duration::from_secs(120));
        Some(CentralConfig {
            prometheus,
            silent_after,
        })
    }

    /// Every `[[remote_write]]` (errors recorded; invalid ones left out).
    pub(super) fn remote_writes(
        &mut self,
        raw: Vec<Spanned<RawRemoteWrite>>,
    ) -> Vec<RemoteWriteConfig> {
        let mut names = HashSet::new();
        let mut out = Vec::new();
        for (i, entry) in raw.into_iter().enumerate() {
            let context = format!("[[remote_write]] #{}", i + 1);
            let span = entry.span();
            let Some(config) = self.remote_write(entry.into_inner(), span.clone(), &context) else {
                continue;
            };
            if !names.insert(config.name.clone()) {
                let msg = format!(
                    "a second remote_write named {:?}: give each a distinct `name`",
                    config.name
                );
                self.error(span, Some(&context), Some("name"), msg);
                continue;
            }
            out.push(config);
        }
        out
    }

    fn remote_write(
        &mut self,
        raw: RawRemoteWrite,
        span: std::ops::Range<usize>,
        context: &str,
    ) -> Option<RemoteWriteConfig> {
        let ctx = Some(context);
        let Some(url_text) = &raw.url else {
            self.error(
                span,
                ctx,
                Some("url"),
                "missing: the receiver's endpoint, e.g. url = \"http://prometheus:9090/api/v1/write\""
                    .to_string(),
            );
            return None;
        };
        let url = match url::Url::parse(url_text.get_ref()) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => u,
            Ok(u) => {
                let msg = format!(
                    "invalid url {:?}: expected http:// or https:// with a host, not {}:",
                    url_text.get_ref(),
                    u.scheme()
                );
                self.error(url_text.span(), ctx, Some("url"), msg);
                return None;
            }
            Err(e) => {
                let msg = format!("invalid url {:?}: {e}", url_text.get_ref());
                self.error(url_text.span(), ctx, Some("url"), msg);
                return None;
            }
        };
        let name = match &raw.name {
            Some(n) if n.get_ref().trim().is_empty() => {
                self.error(n.span(), ctx, Some("name"), "name is empty".to_string());
                return None;
            }
            Some(n) => n.get_ref().trim().to_string(),
            None => format!(
                "{}:{}",
                url.host_str().unwrap_or_default(),
                url.port_or_known_default().unwrap_or_default()
            ),
        };
        let mut headers = Vec::new();
        if let Some(table) = &raw.headers {
            for (header, value) in table.get_ref() {
                let lower = header.to_ascii_lowercase();
                let valid_name = !header.is_empty()
                    && header
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
                if !valid_name {
                    let msg = format!("invalid header name {header:?}");
                    self.error(value.span(), ctx, Some("headers"), msg);
                } else if RESERVED_HEADERS.contains(&lower.as_str()) {
                    let msg = format!(
                        "header {header:?} is set by the sender (use basic_auth or bearer_token \
                         for credentials)"
                    );
                    self.error(value.span(), ctx, Some("headers"), msg);
                } else if value.get_ref().bytes().any(|b| b == b'\r' || b == b'\n') {
                    let msg = format!("the value of header {header:?} has a line break");
                    self.error(value.span(), ctx, Some("headers"), msg);
                } else {
                    headers.push((header.clone(), value.get_ref().clone()));
                }
            }
        }
        let auth = self.remote_write_auth(&raw, ctx);
        if auth.is_some()
            && url.scheme() == "http"
            && !url.host_str().is_some_and(|h| {
                h == "localhost"
                    || h.parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback())
            })
        {
            self.warn(
                url_text.span(),
                ctx,
                Some("url"),
                "credentials would be sent over plain http to a remote host: use https://"
                    .to_string(),
            );
        }
        let ca = raw
            .ca
            .as_ref()
            .and_then(|file| self.pem_file(file, context, "ca", "CERTIFICATE"));
        let timeout = raw
            .timeout
            .as_ref()
            .and_then(|t| self.duration(t, ctx, "timeout", "30s", REQUEST_TIMEOUT))
            .unwrap_or(Duration::from_secs(30));
        let queue = match raw.queue {
            Some(q) => self.remote_write_queue(q, context),
            None => QueueConfig::default(),
        };
        Some(RemoteWriteConfig {
            name,
            url,
            headers,
            auth,
            ca,
            timeout,
            queue,
        })
    }

    /// `basic_auth` or `bearer_token`, not both.
    fn remote_write_auth(
        &mut self,
        raw: &RawRemoteWrite,
        ctx: Option<&str>,
    ) -> Option<RemoteWriteAuth> {
        match (&raw.basic_auth, &raw.bearer_token) {
            (Some(_), Some(token)) => {
                self.error(
                    token.span(),
                    ctx,
                    Some("bearer_token"),
                    "give basic_auth or bearer_token, not both".to_string(),
                );
                None
            }
            (None, Some(token)) => self
                .remote_secret(token, ctx, "bearer_token")
                .map(RemoteWriteAuth::Bearer),
            (Some(basic), None) => {
                let b = basic.get_ref();
                let username = match &b.username {
                    Some(u) if !u.get_ref().is_empty() => u.get_ref().clone(),
                    _ => {
                        self.error(
                            basic.span(),
                            ctx,
                            Some("basic_auth"),
                            "missing: username".to_string(),
                        );
                        return None;
                    }
                };
                let Some(password) = &b.password else {
                    self.error(
                        basic.span(),
                        ctx,
                        Some("basic_auth"),
                        "missing: password, a secret source (env:NAME or file:PATH)".to_string(),
                    );
                    return None;
                };
                let password = self.remote_secret(password, ctx, "basic_auth.password")?;
                Some(RemoteWriteAuth::Basic { username, password })
            }
            (None, None) => None,
        }
    }

    /// A secret source; a relative file path starts at the configuration's
    /// folder. The value itself is never in the configuration.
    fn remote_secret(
        &mut self,
        value: &Spanned<String>,
        ctx: Option<&str>,
        key: &str,
    ) -> Option<SecretSource> {
        match value.get_ref().parse::<SecretSource>() {
            Ok(SecretSource::File(p)) => {
                Some(SecretSource::File(self.resolve(&p.to_string_lossy())))
            }
            Ok(s) => Some(s),
            Err(e) => {
                self.error(value.span(), ctx, Some(key), e.0);
                None
            }
        }
    }

    /// `[remote_write.queue]`.
    fn remote_write_queue(&mut self, raw: Spanned<RawQueue>, context: &str) -> QueueConfig {
        let ctx = Some(context);
        let raw = raw.into_inner();
        let mut q = QueueConfig::default();
        if let Some(v) = &raw.max_bytes {
            match self.parse_text(v, ctx, "max_bytes", "256MiB", parse_size) {
                Some(n) if n >= 1 << 20 => q.max_bytes = n,
                Some(_) => self.error(
                    v.span(),
                    ctx,
                    Some("max_bytes"),
                    "max_bytes must be at least 1MiB".to_string(),
                ),
                None => {}
            }
        }
        if let Some(v) = &raw.max_age {
            q.max_age = self
                .duration(v, ctx, "max_age", "2h", MAX_AGE)
                .unwrap_or(q.max_age);
        }
        q.max_samples_per_send = self.count(
            raw.max_samples_per_send.as_ref(),
            ctx,
            "max_samples_per_send",
            1..=100_000,
            q.max_samples_per_send,
        );
        if let Some(v) = &raw.batch_send_deadline {
            q.batch_send_deadline = self
                .duration(v, ctx, "batch_send_deadline", "5s", SHORT)
                .unwrap_or(q.batch_send_deadline);
        }
        q.shards = self.count(raw.shards.as_ref(), ctx, "shards", 1..=64, q.shards);
        if let Some(v) = &raw.min_backoff {
            q.min_backoff = self
                .duration(v, ctx, "min_backoff", "30ms", SHORT)
                .unwrap_or(q.min_backoff);
        }
        if let Some(v) = &raw.max_backoff {
            q.max_backoff = self
                .duration(v, ctx, "max_backoff", "5s", SHORT)
                .unwrap_or(q.max_backoff);
            if q.max_backoff < q.min_backoff {
                self.error(
                    v.span(),
                    ctx,
                    Some("max_backoff"),
                    "max_backoff is shorter than min_backoff".to_string(),
                );
            }
        }
        q
    }
}
