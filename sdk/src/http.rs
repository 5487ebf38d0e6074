//! Outbound HTTP(S) with per-phase timings.
//!
//! ```no_run
//! use std::time::Duration;
//! use vantage_sdk::http;
//!
//! let response = http::get("https://api.example.com/healthz")
//!     .header("accept", "application/json")
//!     .timeout(Duration::from_secs(5))
//!     .send()?;
//! println!("{} in {} ms", response.status(), response.timings().total_ms);
//! let doc = response.json()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Every request (and every redirect hop) must match the check's outbound
//! allow list; otherwise [`RequestBuilder::send`] fails with
//! [`NetError::Denied`]. A 4xx/5xx status is a response, not an error.
//!
//! A failed exchange keeps what was learned before it failed: a
//! [`FetchError`] carries the [`NetError`], the last response whose status
//! line arrived (the redirect beyond the cap, a body too large), the phases
//! measured so far, the redirects followed and the TLS session.
//!
//! ```no_run
//! use vantage_sdk::http::{self, Compression, IpFamily, Proxy};
//! use vantage_sdk::tls::{TlsOptions, TlsVersion};
//!
//! let result = http::get("https://internal.example/healthz")
//!     .tls(
//!         TlsOptions::new()
//!             .ca_bundle_pem("-----BEGIN CERTIFICATE-----\n…")
//!             .server_name("internal.example")
//!             .min_version(TlsVersion::Tls13),
//!     )
//!     .proxy(Proxy::new("http://proxy.example:3128").header("proxy-authorization", "Basic …"))
//!     .compression(Compression::Gzip)
//!     .http2(true)
//!     .prefer_ip(IpFamily::Ip6, true)
//!     .send();
//! match result {
//!     Ok(response) => println!("{}", response.headline()),
//!     Err(failed) => println!(
//!         "{failed}; status so far {:?}, {} redirects",
//!         failed.response.as_ref().map(|r| r.status()),
//!         failed.redirects.len()
//!     ),
//! }
//! ```

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use crate::NetError;
use crate::bindings::vantage::check::http as raw;
use crate::tls::TlsOptions;

pub use crate::client::ClientSettings;
pub use crate::tls::TlsInfo;
/// The raw failure record returned by the host (see [`FetchError`]).
pub use raw::FetchError as RawFetchError;
/// The raw request record sent to the host (see [`RequestBuilder::build`]).
pub use raw::Request as RawRequest;
/// The raw response record returned by the host (see [`Response::from_raw`]).
pub use raw::Response as RawResponse;
pub use raw::{Compression, HttpVersion, IpFamily, IpPreference, Proxy, Redirect, Timings};

/// A `GET` request to `url`.
pub fn get(url: impl Into<String>) -> RequestBuilder {
    request("GET", url)
}

/// A `HEAD` request to `url`.
pub fn head(url: impl Into<String>) -> RequestBuilder {
    request("HEAD", url)
}

/// A `POST` request to `url`; add a body with [`RequestBuilder::body`] or
/// [`RequestBuilder::json`].
pub fn post(url: impl Into<String>) -> RequestBuilder {
    request("POST", url)
}

/// A `PUT` request to `url`.
pub fn put(url: impl Into<String>) -> RequestBuilder {
    request("PUT", url)
}

/// A `DELETE` request to `url`.
pub fn delete(url: impl Into<String>) -> RequestBuilder {
    request("DELETE", url)
}

/// A request with any method (`OPTIONS`, `PATCH`, …) to `url`.
pub fn request(method: impl Into<String>, url: impl Into<String>) -> RequestBuilder {
    RequestBuilder {
        raw: RawRequest {
            method: method.into(),
            url: url.into(),
            headers: Vec::new(),
            body: None,
            timeout_ms: None,
            follow_redirects: true,
            max_redirects: None,
            max_body_bytes: None,
            tls: TlsOptions::default(),
            proxy: None,
            compression: None,
            http2: false,
            ip: IpPreference {
                preferred: None,
                fallback: true,
            },
        },
    }
}

/// A request being built; finish with [`send`](RequestBuilder::send).
///
/// Defaults: no headers, no body, redirects followed (up to 10), the host's
/// timeout (10 s, capped by the run's deadline) and body limit (1 MiB), the
/// system roots, no proxy, no compression, HTTP/1.1, whichever address the
/// resolver returns first.
#[derive(Debug, Clone)]
#[must_use = "a request does nothing until `.send()` is called"]
pub struct RequestBuilder {
    raw: RawRequest,
}

impl RequestBuilder {
    /// Add a header (headers may repeat; they are sent in order).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.raw.headers.push((name.into(), value.into()));
        self
    }

    /// Add several headers.
    pub fn headers<K, V>(mut self, headers: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<String>,
        V: Into<String>,
    {
        self.raw
            .headers
            .extend(headers.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    /// Send `Authorization: Bearer <token>`.
    pub fn bearer_auth(self, token: impl fmt::Display) -> Self {
        self.header("authorization", format!("Bearer {token}"))
    }

    /// Send `Authorization: Basic <base64(user:password)>`.
    pub fn basic_auth(self, user: &str, password: &str) -> Self {
        let encoded = base64(format!("{user}:{password}").as_bytes());
        self.header("authorization", format!("Basic {encoded}"))
    }

    /// Set the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.raw.body = Some(body.into());
        self
    }

    /// Set a JSON body, and `content-type: application/json` unless a
    /// content type was already set.
    pub fn json(mut self, value: &serde_json::Value) -> Self {
        if !self.has_header("content-type") {
            self.raw
                .headers
                .push(("content-type".into(), "application/json".into()));
        }
        self.raw.body = Some(value.to_string().into_bytes());
        self
    }

    /// Timeout for the whole exchange, redirects included (capped by the
    /// run's deadline).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.raw.timeout_ms = Some(crate::util::duration_ms_u64(timeout));
        self
    }

    /// Follow redirects (the default) or return the first response as is.
    pub fn follow_redirects(mut self, follow: bool) -> Self {
        self.raw.follow_redirects = follow;
        self
    }

    /// The most redirects to follow (host default: 10). More fail with
    /// [`NetError::TooManyRedirects`].
    pub fn max_redirects(mut self, max: u32) -> Self {
        self.raw.max_redirects = Some(max);
        self
    }

    /// The largest body to accept, in bytes (host default 1 MiB, capped at
    /// 16 MiB). Larger bodies fail with [`NetError::BodyTooLarge`].
    pub fn max_body_bytes(mut self, max: u64) -> Self {
        self.raw.max_body_bytes = Some(max);
        self
    }

    /// Set up TLS (for `https://` URLs and an `https://` proxy): server
    /// name, trusted CAs, client certificate, versions, `insecure`.
    pub fn tls(mut self, options: TlsOptions) -> Self {
        self.raw.tls = options;
        self
    }

    /// Accept any certificate (the chain and verdict are still reported in
    /// [`Response::tls`]). The host refuses the request with a `denied` error
    /// unless the operator allowed insecure TLS for this check.
    pub fn insecure(mut self, insecure: bool) -> Self {
        self.raw.tls.insecure = insecure;
        self
    }

    /// Present the client certificate (PEM chain + key) held by the granted
    /// secret `name`, for mutual TLS.
    pub fn client_cert_secret(mut self, name: impl Into<String>) -> Self {
        self.raw.tls.client_cert_secret = Some(name.into());
        self
    }

    /// Send the request through `proxy`: plain `http://` requests in
    /// absolute form, `https://` ones through a `CONNECT` tunnel.
    pub fn proxy(mut self, proxy: Proxy) -> Self {
        self.raw.proxy = Some(proxy);
        self
    }

    /// Ask for a compressed response (`Accept-Encoding`) and decode it; a
    /// response in another encoding fails with [`NetError::Protocol`], and
    /// the body limit applies to the decoded body.
    pub fn compression(mut self, compression: Compression) -> Self {
        self.raw.compression = Some(compression);
        self
    }

    /// Offer HTTP/2 by ALPN on `https://` URLs (HTTP/1.1 otherwise).
    pub fn http2(mut self, offer: bool) -> Self {
        self.raw.http2 = offer;
        self
    }

    /// Connect over `family` first; with `fallback`, use the other family
    /// when `family` has no address (blackbox_exporter's
    /// `preferred_ip_protocol` and `ip_protocol_fallback`).
    pub fn prefer_ip(mut self, family: IpFamily, fallback: bool) -> Self {
        self.raw.ip = IpPreference {
            preferred: Some(family),
            fallback,
        };
        self
    }

    /// The request as built so far.
    pub fn as_raw(&self) -> &RawRequest {
        &self.raw
    }

    /// The raw request record.
    pub fn build(self) -> RawRequest {
        self.raw
    }

    /// Perform the exchange. A failure keeps what was learned before it
    /// (see [`FetchError`]); `?` turns it into an [`Error`](crate::Error) or
    /// a [`NetError`].
    pub fn send(self) -> Result<Response, FetchError> {
        raw::fetch(&self.raw)
            .map(Response::from_raw)
            .map_err(FetchError::from)
    }

    fn has_header(&self, name: &str) -> bool {
        self.raw
            .headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case(name))
    }
}

/// Why an exchange ended without a complete response, with everything
/// learned before it did (see the [module docs](self)).
///
/// [`Display`](fmt::Display) shows the [`NetError`], e.g. `too many
/// redirects: more than 3`.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchError {
    /// What went wrong.
    pub error: NetError,
    /// The last response whose status line arrived, when one did: the
    /// redirect beyond the cap, a response whose body was too large (its
    /// body cut at the cap), one whose body timed out.
    pub response: Option<Box<Response>>,
    /// The phases measured so far, summed over hops.
    pub timings: Timings,
    /// The redirects followed before it failed.
    pub redirects: Vec<Redirect>,
    /// The TLS session, when a handshake got that far (with the chain and
    /// its verdict when verification is what failed).
    pub tls: Option<Box<TlsInfo>>,
}

impl FetchError {
    /// A failure with nothing learned: zero timings, no response.
    pub fn new(error: NetError) -> Self {
        Self {
            error,
            response: None,
            timings: zero_timings(),
            redirects: Vec::new(),
            tls: None,
        }
    }

    /// The TLS session: the failure's own, or the partial response's.
    pub fn tls(&self) -> Option<&TlsInfo> {
        self.tls
            .as_deref()
            .or_else(|| self.response.as_ref().and_then(|r| r.tls()))
    }

    /// `request timed out during connect`, `302 Found, then too many
    /// redirects: more than 3`: a one-line description, for summaries.
    pub fn headline(&self) -> String {
        match &self.response {
            Some(response) => format!("{}, then {}", response.status_text(), self.error),
            None => match &self.error {
                NetError::Timeout(phase) => format!("request timed out during {phase}"),
                NetError::Denied(_) => "request denied by the outbound policy".to_string(),
                other => format!("request failed ({})", other.kind()),
            },
        }
    }
}

impl From<RawFetchError> for FetchError {
    fn from(raw: RawFetchError) -> Self {
        Self {
            error: NetError::from(raw.error),
            response: raw.response.map(|r| Box::new(Response::from_raw(r))),
            timings: raw.timings,
            redirects: raw.redirects,
            tls: raw.tls.map(Box::new),
        }
    }
}

impl From<NetError> for FetchError {
    fn from(error: NetError) -> Self {
        Self::new(error)
    }
}

impl From<FetchError> for NetError {
    fn from(error: FetchError) -> Self {
        error.error
    }
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for FetchError {}

fn zero_timings() -> Timings {
    Timings {
        resolve_ms: 0.0,
        connect_ms: 0.0,
        tls_ms: 0.0,
        processing_ms: 0.0,
        transfer_ms: 0.0,
        total_ms: 0.0,
    }
}

/// An HTTP proxy, for [`RequestBuilder::proxy`].
impl Proxy {
    /// The proxy at `url` (`http://host:port` or `https://host:port`). It
    /// must be allowed by the outbound policy, as the target must.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            headers: Vec::new(),
        }
    }

    /// A header sent to the proxy only (`Proxy-Authorization`).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

impl Compression {
    /// `gzip`, `deflate`, `br` or `zstd`, as in `Accept-Encoding`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Deflate => "deflate",
            Compression::Br => "br",
            Compression::Zstd => "zstd",
        }
    }

    /// Parse `gzip`, `deflate`, `br` or `zstd` (case-insensitive).
    pub fn parse(text: &str) -> Option<Compression> {
        match text.trim().to_ascii_lowercase().as_str() {
            "gzip" => Some(Compression::Gzip),
            "deflate" => Some(Compression::Deflate),
            "br" => Some(Compression::Br),
            "zstd" => Some(Compression::Zstd),
            _ => None,
        }
    }
}

impl IpFamily {
    /// Parse `ip4`/`ipv4`/`4` or `ip6`/`ipv6`/`6` (case-insensitive), as
    /// blackbox_exporter's `preferred_ip_protocol`.
    pub fn parse(text: &str) -> Option<IpFamily> {
        match text.trim().to_ascii_lowercase().as_str() {
            "ip4" | "ipv4" | "4" => Some(IpFamily::Ip4),
            "ip6" | "ipv6" | "6" => Some(IpFamily::Ip6),
            _ => None,
        }
    }
}

/// An HTTP response, with its timings, redirects and TLS session.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    raw: RawResponse,
}

impl Response {
    /// Wrap a raw response record.
    pub fn from_raw(raw: RawResponse) -> Self {
        Self { raw }
    }

    /// A response made up locally, for unit tests of assertions: HTTP/1.1,
    /// zero timings, no redirects, no TLS, from `http://test.invalid/`.
    pub fn mock(status: u16, headers: &[(&str, &str)], body: impl Into<Vec<u8>>) -> Self {
        let body = body.into();
        Self::from_raw(RawResponse {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
                .collect(),
            wire_body_bytes: body.len() as u64,
            body,
            version: HttpVersion::Http11,
            remote_addr: "127.0.0.1:80".to_string(),
            url: "http://test.invalid/".to_string(),
            timings: zero_timings(),
            redirects: Vec::new(),
            tls: None,
            decoded_from: None,
        })
    }

    /// The raw record.
    pub fn raw(&self) -> &RawResponse {
        &self.raw
    }

    /// Unwrap the raw record.
    pub fn into_raw(self) -> RawResponse {
        self.raw
    }

    /// Status code of the final response.
    pub fn status(&self) -> u16 {
        self.raw.status
    }

    /// The canonical reason phrase of the status, e.g. `Not Found` (empty for
    /// unknown codes).
    pub fn reason(&self) -> &'static str {
        reason_phrase(self.raw.status)
    }

    /// `200 OK in 12.3 ms`: a one-line description, for summaries.
    pub fn headline(&self) -> String {
        format!(
            "{} in {}",
            self.status_text(),
            crate::format_duration(self.raw.timings.total_ms)
        )
    }

    /// `404 Not Found` (the code alone when its reason is unknown).
    pub fn status_text(&self) -> String {
        match self.reason() {
            "" => self.raw.status.to_string(),
            reason => format!("{} {reason}", self.raw.status),
        }
    }

    /// The `Content-Encoding` that was decoded, if any.
    pub fn decoded_from(&self) -> Option<Compression> {
        self.raw.decoded_from
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.raw.status)
    }

    /// All headers, in order (names are lowercase).
    pub fn headers(&self) -> &[(String, String)] {
        &self.raw.headers
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.raw
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of header `name` (case-insensitive), in order.
    pub fn header_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.raw
            .headers
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body bytes.
    pub fn body(&self) -> &[u8] {
        &self.raw.body
    }

    /// The body as text (invalid UTF-8 replaced by `�`).
    pub fn text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.raw.body)
    }

    /// The body parsed as JSON.
    pub fn json(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::from_slice(&self.raw.body)
    }

    /// The protocol version.
    pub fn version(&self) -> HttpVersion {
        self.raw.version
    }

    /// The address the final response came from, `ip:port`.
    pub fn remote_addr(&self) -> &str {
        &self.raw.remote_addr
    }

    /// The final URL, after redirects.
    pub fn url(&self) -> &str {
        &self.raw.url
    }

    /// Per-phase timings, in milliseconds, summed over redirect hops.
    pub fn timings(&self) -> &Timings {
        &self.raw.timings
    }

    /// The whole exchange's duration.
    pub fn elapsed(&self) -> Duration {
        Duration::from_secs_f64(self.raw.timings.total_ms.max(0.0) / 1000.0)
    }

    /// The redirects followed, in order.
    pub fn redirects(&self) -> &[Redirect] {
        &self.raw.redirects
    }

    /// The TLS session of the final hop, for `https://` URLs.
    pub fn tls(&self) -> Option<&TlsInfo> {
        self.raw.tls.as_ref()
    }
}

impl HttpVersion {
    /// `1.0`, `1.1` or `2`.
    pub fn as_str(&self) -> &'static str {
        match self {
            HttpVersion::Http10 => "1.0",
            HttpVersion::Http11 => "1.1",
            HttpVersion::Http2 => "2",
        }
    }

    /// The version as a number (`1.0`, `1.1`, `2.0`), for measurements.
    pub fn as_f64(&self) -> f64 {
        match self {
            HttpVersion::Http10 => 1.0,
            HttpVersion::Http11 => 1.1,
            HttpVersion::Http2 => 2.0,
        }
    }

    /// Parse `1.0`, `1.1`, `2` (also `2.0`, `HTTP/1.1`, `http11`, `h2`),
    /// case-insensitive.
    pub fn parse(text: &str) -> Option<HttpVersion> {
        let t = text.trim().to_ascii_lowercase();
        let t = t
            .strip_prefix("http/")
            .or_else(|| t.strip_prefix("http"))
            .unwrap_or(&t);
        match t {
            "1.0" | "10" => Some(HttpVersion::Http10),
            "1.1" | "11" => Some(HttpVersion::Http11),
            "2" | "2.0" | "20" | "h2" => Some(HttpVersion::Http2),
            _ => None,
        }
    }
}

impl fmt::Display for HttpVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP/{}", self.as_str())
    }
}

/// A set of acceptable status codes, parsed from text such as `200`, `2xx`,
/// `200-299` or a comma-separated mix (`200, 204, 3xx`).
///
/// ```
/// use vantage_sdk::http::StatusSet;
/// let ok = StatusSet::parse("2xx, 304").unwrap();
/// assert!(ok.contains(204) && ok.contains(304) && !ok.contains(301));
/// assert_eq!(ok.to_string(), "2xx, 304");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusSet {
    ranges: Vec<(u16, u16)>,
}

impl StatusSet {
    /// Exactly the given codes.
    pub fn codes(codes: &[u16]) -> Self {
        Self {
            ranges: codes.iter().map(|&c| (c, c)).collect(),
        }
    }

    /// An inclusive range of codes.
    pub fn range(from: u16, to: u16) -> Self {
        Self {
            ranges: vec![(from, to)],
        }
    }

    /// Parse one or more comma-separated items: a code (`200`), a class
    /// (`2xx`) or an inclusive range (`200-299`).
    pub fn parse(text: &str) -> Result<Self, String> {
        Self::parse_all([text])
    }

    /// Parse each item of a list (each may itself be comma-separated), as
    /// given by [`Context::config_list`](crate::Context::config_list).
    pub fn parse_all<'a>(items: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        let mut ranges = Vec::new();
        for item in items.into_iter().flat_map(|i| i.split(',')) {
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            ranges.push(parse_status_item(item)?);
        }
        if ranges.is_empty() {
            return Err("no status codes given".to_string());
        }
        Ok(Self { ranges })
    }

    /// Whether `code` is in the set.
    pub fn contains(&self, code: u16) -> bool {
        self.ranges.iter().any(|&(a, b)| (a..=b).contains(&code))
    }
}

fn parse_status_item(item: &str) -> Result<(u16, u16), String> {
    let code = |s: &str| -> Result<u16, String> {
        match s.trim().parse::<u16>() {
            Ok(c) if (100..=999).contains(&c) => Ok(c),
            _ => Err(format!("invalid status code `{s}`")),
        }
    };
    let lower = item.to_ascii_lowercase();
    if let Some(class) = lower.strip_suffix("xx") {
        let digit = class
            .parse::<u16>()
            .ok()
            .filter(|d| (1..=9).contains(d))
            .ok_or_else(|| format!("invalid status class `{item}`"))?;
        return Ok((digit * 100, digit * 100 + 99));
    }
    if let Some((from, to)) = item.split_once('-') {
        let (from, to) = (code(from)?, code(to)?);
        if from > to {
            return Err(format!("invalid status range `{item}`"));
        }
        return Ok((from, to));
    }
    code(item).map(|c| (c, c))
}

impl fmt::Display for StatusSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, &(a, b)) in self.ranges.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            if a == b {
                write!(f, "{a}")?;
            } else if a % 100 == 0 && b == a + 99 {
                write!(f, "{}xx", a / 100)?;
            } else {
                write!(f, "{a}-{b}")?;
            }
        }
        Ok(())
    }
}

/// The canonical reason phrase of an HTTP status code (empty if unknown).
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        418 => "I'm a teapot",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        425 => "Too Early",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        451 => "Unavailable For Legal Reasons",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        507 => "Insufficient Storage",
        511 => "Network Authentication Required",
        _ => "",
    }
}

fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_fills_the_raw_request() {
        let r = post("https://x/")
            .header("X-A", "1")
            .json(&serde_json::json!({"a": 1}))
            .timeout(Duration::from_millis(1500))
            .follow_redirects(false)
            .max_redirects(3)
            .max_body_bytes(1024)
            .basic_auth("Aladdin", "open sesame")
            .build();
        assert_eq!(r.method, "POST");
        assert_eq!(r.url, "https://x/");
        assert_eq!(
            r.headers,
            vec![
                ("X-A".to_string(), "1".to_string()),
                ("content-type".to_string(), "application/json".to_string()),
                (
                    "authorization".to_string(),
                    "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==".to_string()
                ),
            ]
        );
        assert_eq!(r.body.as_deref(), Some(&br#"{"a":1}"#[..]));
        assert_eq!(r.timeout_ms, Some(1500));
        assert!(!r.follow_redirects);
        assert_eq!(r.max_redirects, Some(3));
        assert_eq!(r.max_body_bytes, Some(1024));

        let r = get("http://y/")
            .header("Content-Type", "text/x")
            .json(&serde_json::json!(1))
            .build();
        assert_eq!(r.headers.len(), 1);
        assert!(r.follow_redirects);
    }

    #[test]
    fn base64_pads() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foob"), "Zm9vYg==");
    }

    #[test]
    fn response_helpers() {
        let r = Response::mock(
            404,
            &[
                ("Content-Type", "application/json"),
                ("set-cookie", "a"),
                ("Set-Cookie", "b"),
            ],
            r#"{"status":"ok"}"#,
        );
        assert_eq!(r.status(), 404);
        assert_eq!(r.reason(), "Not Found");
        assert_eq!(r.headline(), "404 Not Found in 0.00 ms");
        assert_eq!(r.header("CONTENT-TYPE"), Some("application/json"));
        assert_eq!(
            r.header_all("set-cookie").collect::<Vec<_>>(),
            vec!["a", "b"]
        );
        assert_eq!(r.header("missing"), None);
        assert_eq!(r.text(), r#"{"status":"ok"}"#);
        assert_eq!(r.json().unwrap()["status"], "ok");
        assert!(!r.is_success());
        assert_eq!(Response::mock(599, &[], "").headline(), "599 in 0.00 ms");
    }

    #[test]
    fn status_sets() {
        let s = StatusSet::parse_all(["200-399"]).unwrap();
        assert!(s.contains(200) && s.contains(399) && !s.contains(400) && !s.contains(199));
        assert_eq!(s.to_string(), "200-399");
        let s = StatusSet::parse_all(["2xx", "404", "500-502, 504"]).unwrap();
        assert!(s.contains(250) && s.contains(404) && s.contains(501) && s.contains(504));
        assert!(!s.contains(503));
        assert_eq!(s.to_string(), "2xx, 404, 500-502, 504");
        assert!(StatusSet::parse("abc").is_err());
        assert!(StatusSet::parse("0xx").is_err());
        assert!(StatusSet::parse("300-200").is_err());
        assert!(StatusSet::parse("").is_err());
        assert!(StatusSet::parse("42").is_err());
        assert_eq!(StatusSet::codes(&[200, 204]).to_string(), "200, 204");
    }

    #[test]
    fn http_versions() {
        assert_eq!(HttpVersion::parse("HTTP/1.1"), Some(HttpVersion::Http11));
        assert_eq!(HttpVersion::parse("2"), Some(HttpVersion::Http2));
        assert_eq!(HttpVersion::parse("http2"), Some(HttpVersion::Http2));
        assert_eq!(HttpVersion::parse("1.0"), Some(HttpVersion::Http10));
        assert_eq!(HttpVersion::parse("3"), None);
        assert_eq!(HttpVersion::Http2.to_string(), "HTTP/2");
    }
}
