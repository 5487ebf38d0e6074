//! A one-shot HTTP(S) client that measures every phase of an exchange
//! (resolve, connect, TLS, processing, transfer) the way blackbox_exporter
//! does, and enforces the outbound policy on every hop, both on the URL and on
//! the address actually connected to.
//!
//! Built on hyper's connection-level API rather than a pooled client: a probe
//! wants a fresh connection every time, and the timings of each step.
//!
//! A failed exchange keeps what it learned ([`Failed`]): the phases measured
//! so far (a timeout charges the time spent in the phase it cut to that
//! phase), the redirects followed, the last response whose head arrived
//! (with its body cut at the cap), and the TLS session or the chain whose
//! verification failed.
//!
//! Through a proxy ([`proxy`](super::proxy)), `resolve` and `connect` are the
//! proxy's (the `CONNECT` exchange counts as connecting), and the target's
//! URL must still pass the outbound policy by name.

pub use crate::result::http::Timings;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use cookie_store::CookieStore;
use http::header::{
    ACCEPT_ENCODING, CONTENT_ENCODING, COOKIE, HOST, LOCATION, SET_COOKIE, USER_AGENT,
};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Version};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite};
use url::Url;

use super::decode::{self, Decoded, Encoding};
use super::proxy::{self, Proxy};
use crate::bindings::vantage::check::common::NetError;
use crate::capabilities::net::{ConnectionSlot, IpPreference, Net, Phase};
use crate::capabilities::tls::{self as host_tls, ClientCert, TlsOptions};

/// Largest body any request may accept, whatever it asks for.
pub const HOST_MAX_BODY_BYTES: u64 = 16 * 1024 * 1024;
/// Body cap when the request does not set one.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 1024 * 1024;
/// Timeout when the request does not set one.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Redirects followed when the request does not set a maximum.
pub const DEFAULT_MAX_REDIRECTS: u32 = 10;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// TLS settings of a request, applied to every `https://` hop.
#[derive(Debug, Clone, Default)]
pub struct TlsParams {
    /// SNI and verification name for every hop (the hop's host by default).
    pub server_name: Option<String>,
    /// CAs to trust instead of the built-in roots (pinned leaves too).
    pub ca_bundle_pem: Option<String>,
    /// Client certificate for mutual TLS.
    pub client_cert: Option<std::sync::Arc<ClientCert>>,
    /// Complete TLS handshakes whatever the certificate verdict (the
    /// operator allowed it; the verdict is still reported).
    pub insecure: bool,
    /// Lowest protocol version.
    pub min_version: Option<crate::bindings::vantage::check::tls::TlsVersion>,
    /// Highest protocol version.
    pub max_version: Option<crate::bindings::vantage::check::tls::TlsVersion>,
}

/// One exchange to perform.
#[derive(Debug, Clone)]
pub struct FetchRequest {
    /// Method.
    pub method: Method,
    /// Absolute URL.
    pub url: Url,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
    /// Timeout for the whole exchange.
    pub timeout: Duration,
    /// Follow redirects.
    pub follow_redirects: bool,
    /// Most redirects to follow.
    pub max_redirects: u32,
    /// Body cap in bytes (on the decoded body when decoding).
    pub max_body_bytes: u64,
    /// TLS settings.
    pub tls: TlsParams,
    /// Send the request through this proxy.
    pub proxy: Option<Proxy>,
    /// Ask for this encoding and decode it.
    pub compression: Option<Encoding>,
    /// Offer HTTP/2 by ALPN on https.
    pub http2: bool,
    /// Address family preference.
    pub ip: IpPreference,
}

/// One redirect followed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Redirect {
    /// URL that redirected.
    pub url: String,
    /// Its status.
    pub status: u16,
    /// Where it pointed.
    pub location: String,
}

/// What the TLS handshake of the final hop showed: version, cipher suite,
/// ALPN, the presented chain (parsed), its verdict and the verified path.
pub type TlsSession = crate::bindings::vantage::check::tls::TlsInfo;

/// A completed exchange (or, in [`Failed`], the part of one that arrived).
#[derive(Debug, Clone)]
pub struct Fetched {
    /// Final status.
    pub status: u16,
    /// Final headers (lowercase names).
    pub headers: Vec<(String, String)>,
    /// Final body (decoded, when decoding was asked for).
    pub body: Bytes,
    /// Protocol version of the final response.
    pub version: Version,
    /// Address of the final hop (the proxy's, through a proxy).
    pub remote_addr: SocketAddr,
    /// Final URL.
    pub url: Url,
    /// Per-phase timings.
    pub timings: Timings,
    /// Redirects followed.
    pub redirects: Vec<Redirect>,
    /// TLS session of the final hop.
    pub tls: Option<TlsSession>,
    /// Body bytes as received, before decoding.
    pub wire_body_bytes: u64,
    /// The encoding that was decoded.
    pub decoded_from: Option<Encoding>,
}

/// An exchange that ended without a complete response, with what it
/// learned.
#[derive(Debug)]
pub struct Failed {
    /// What went wrong.
    pub error: NetError,
    /// The last response whose head arrived (the redirect beyond the cap; a
    /// body too large, cut at the cap; a body that timed out, as far as it
    /// came).
    pub response: Option<Fetched>,
    /// Phases measured so far.
    pub timings: Timings,
    /// Redirects followed before the failure.
    pub redirects: Vec<Redirect>,
    /// The TLS session, or the chain whose verification failed.
    pub tls: Option<TlsSession>,
}

/// Where an exchange is; shared with [`fetch`] so that what was learned
/// survives a timeout that drops the exchange.
#[derive(Debug)]
struct Progress {
    phase: Phase,
    timings: Timings,
    redirects: Vec<Redirect>,
    /// The response being read: its head, its body so far in `wire`.
    pending: Option<Fetched>,
    wire: BytesMut,
    /// A complete response a failure concerns (the redirect beyond the cap).
    last: Option<Fetched>,
    tls: Option<TlsSession>,
}

/// Perform `req` under `net`, following redirects if asked.
///
/// With a cookie `jar`, cookies are sent and stored on every hop, like a
/// browser session (a login that sets a cookie on its redirect works).
pub async fn fetch(
    net: &Net,
    req: FetchRequest,
    jar: Option<&Mutex<CookieStore>>,
) -> Result<Fetched, Box<Failed>> {
    let started = Instant::now();
    let mut progress = Progress {
        phase: Phase::Resolve,
        timings: Timings::default(),
        redirects: Vec::new(),
        pending: None,
        wire: BytesMut::new(),
        last: None,
        tls: None,
    };
    let (max_body, compression) = (req.max_body_bytes, req.compression);
    let result =
        tokio::time::timeout(req.timeout, fetch_following(net, req, jar, &mut progress)).await;
    let total = ms(started.elapsed());
    progress.timings.total_ms = total;
    let error = match result {
        Ok(Ok(mut fetched)) => {
            fetched.timings = progress.timings;
            fetched.redirects = progress.redirects;
            return Ok(fetched);
        }
        Ok(Err(e)) => e,
        Err(_) => {
            // The phase the timeout cut gets the time spent in it.
            let t = &mut progress.timings;
            let measured = t.resolve_ms + t.connect_ms + t.tls_ms + t.processing_ms + t.transfer_ms;
            let left = (total - measured).max(0.0);
            match progress.phase {
                Phase::Resolve => t.resolve_ms += left,
                Phase::Connect => t.connect_ms += left,
                Phase::Tls => t.tls_ms += left,
                Phase::Processing => t.processing_ms += left,
                Phase::Transfer => t.transfer_ms += left,
            }
            NetError::Timeout(progress.phase.as_str().to_string())
        }
    };
    let response = match (progress.last, progress.pending) {
        (Some(last), _) => Some(last),
        (None, Some(mut pending)) => {
            // Decoded only when it came in the encoding asked for.
            let encoded = pending.headers.iter().any(|(k, v)| {
                k == CONTENT_ENCODING.as_str()
                    && compression.is_some_and(|c| Encoding::parse(v) == Some(c))
            });
            let compression = compression.filter(|_| encoded);
            let body = partial_body(&progress.wire, compression, max_body);
            pending.body = body;
            pending.wire_body_bytes = progress.wire.len() as u64;
            Some(pending)
        }
        (None, None) => None,
    };
    let timings = progress.timings;
    Err(Box::new(Failed {
        error,
        response: response.map(|r| Fetched {
            timings,
            redirects: progress.redirects.clone(),
            ..r
        }),
        timings,
        redirects: progress.redirects,
        tls: progress.tls,
    }))
}

/// The body of a response cut short, from its wire bytes: decoded (when
/// it came in the encoding asked for) as far as it goes, cut at `cap`.
fn partial_body(wire: &[u8], compression: Option<Encoding>, cap: u64) -> Bytes {
    match compression {
        Some(encoding) if !wire.is_empty() => match decode::decode(encoding, wire, cap, false) {
            Ok(Decoded::Complete(b) | Decoded::TooLarge(b)) => Bytes::from(b),
            Err(_) => Bytes::new(),
        },
        _ => Bytes::copy_from_slice(&wire[..wire.len().min(cap as usize)]),
    }
}

async fn fetch_following(
    net: &Net,
    mut req: FetchRequest,
    jar: Option<&Mutex<CookieStore>>,
    progress: &mut Progress,
) -> Result<Fetched, NetError> {
    // The caller's own Cookie header; the jar's cookies are added to it.
    let mut own_cookie = req.headers.get(COOKIE).cloned();
    if let Some(encoding) = req.compression
        && !req.headers.contains_key(ACCEPT_ENCODING)
    {
        req.headers
            .insert(ACCEPT_ENCODING, HeaderValue::from_static(encoding.token()));
    }
    loop {
        if let Some(jar) = jar {
            set_cookie_header(&mut req, own_cookie.as_ref(), jar);
        }
        let hop = exchange(net, &req, progress).await?;
        if let Some(jar) = jar {
            let mut jar = jar.lock().unwrap_or_else(|e| e.into_inner());
            for (_, value) in hop.headers.iter().filter(|(k, _)| k == SET_COOKIE.as_str()) {
                // A malformed or refused cookie is ignored, as browsers do.
                let _ = jar.parse(value, &req.url);
            }
        }
        let location = hop
            .headers
            .iter()
            .find(|(k, _)| k == LOCATION.as_str())
            .map(|(_, v)| v.clone());
        let is_redirect = matches!(hop.status, 301 | 302 | 303 | 307 | 308);
        match location {
            Some(location) if is_redirect && req.follow_redirects => {
                if progress.redirects.len() as u32 >= req.max_redirects {
                    progress.last = Some(hop);
                    return Err(NetError::TooManyRedirects(req.max_redirects));
                }
                let next = match req.url.join(&location) {
                    Ok(next) => next,
                    Err(e) => {
                        progress.last = Some(hop);
                        return Err(NetError::Protocol(format!(
                            "bad Location header {location:?}: {e}"
                        )));
                    }
                };
                progress.redirects.push(Redirect {
                    url: req.url.to_string(),
                    status: hop.status,
                    location,
                });
                // Like browsers: 303 always, and 301/302 after a POST, become a bodyless GET.
                if hop.status == 303
                    || (matches!(hop.status, 301 | 302) && req.method == Method::POST)
                {
                    req.method = Method::GET;
                    req.body = Bytes::new();
                }
                if next.host_str() != req.url.host_str() {
                    req.headers.remove(http::header::AUTHORIZATION);
                    req.headers.remove(COOKIE);
                    own_cookie = None;
                }
                req.url = next;
            }
            _ => return Ok(hop),
        }
    }
}

/// Set the Cookie header of `req` to the caller's own cookie plus the jar's
/// cookies for the request URL.
fn set_cookie_header(req: &mut FetchRequest, own: Option<&HeaderValue>, jar: &Mutex<CookieStore>) {
    let jar = jar.lock().unwrap_or_else(|e| e.into_inner());
    let mut parts: Vec<String> = own
        .and_then(|v| v.to_str().ok())
        .map(|v| vec![v.to_string()])
        .unwrap_or_default();
    parts.extend(
        jar.get_request_values(&req.url)
            .map(|(k, v)| format!("{k}={v}")),
    );
    req.headers.remove(COOKIE);
    if let Ok(value) = HeaderValue::from_str(&parts.join("; "))
        && !parts.is_empty()
    {
        req.headers.insert(COOKIE, value);
    }
}

/// A connection's byte stream, whatever layers it has (TCP, TLS to a
/// proxy, a tunnel, TLS to the target).
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// The host TLS options of one hop to `host`.
fn tls_options(req: &FetchRequest, host: &str, alpn: Vec<Vec<u8>>) -> TlsOptions {
    TlsOptions {
        server_name: req
            .tls
            .server_name
            .clone()
            .unwrap_or_else(|| host.to_string()),
        alpn,
        ca_bundle_pem: req.tls.ca_bundle_pem.clone(),
        client_cert: req
            .tls
            .client_cert
            .as_ref()
            .map(|c| (c.0.clone(), c.1.clone_key())),
        require_valid: !req.tls.insecure,
        min_version: req.tls.min_version,
        max_version: req.tls.max_version,
    }
}

/// One request/response on a fresh connection: connect (directly or to
/// the proxy), send and read the head, read the body, decode it.
async fn exchange(
    net: &Net,
    req: &FetchRequest,
    progress: &mut Progress,
) -> Result<Fetched, NetError> {
    let url = &req.url;
    let scheme = url.scheme();
    if scheme != "http" && scheme != "https" {
        return Err(NetError::InvalidRequest(format!(
            "unsupported scheme `{scheme}` in {url}: use http:// or https://"
        )));
    }
    let host = url
        .host_str()
        .ok_or_else(|| NetError::InvalidRequest(format!("no host in {url}")))?;
    let host_bare = host.trim_start_matches('[').trim_end_matches(']');
    let port = url
        .port_or_known_default()
        .ok_or_else(|| NetError::InvalidRequest(format!("no port in {url}")))?;
    progress.pending = None;
    progress.wire.clear();

    // The slot is held until the body is read.
    let (stream, remote_addr, _slot) = open(net, req, host_bare, port, progress).await?;
    // `driver` drives the connection until the body is read, then drops it.
    let (response, mut driver) = request_head(stream, req, host_bare, port, progress).await?;

    let content_encoding = response
        .headers()
        .get(CONTENT_ENCODING)
        .map(|v| {
            String::from_utf8_lossy(v.as_bytes())
                .trim()
                .to_ascii_lowercase()
        })
        .filter(|v| !v.is_empty() && v != "identity");
    progress.pending = Some(Fetched {
        status: response.status().as_u16(),
        headers: response
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: Bytes::new(),
        version: response.version(),
        remote_addr,
        url: req.url.clone(),
        timings: progress.timings,
        redirects: Vec::new(),
        tls: progress.tls.clone(),
        wire_body_bytes: 0,
        decoded_from: None,
    });
    if let (Some(asked), Some(got)) = (req.compression, &content_encoding)
        && Encoding::parse(got) != Some(asked)
    {
        return Err(NetError::Protocol(format!(
            "asked for {} content, the response is encoded as {got}",
            asked.token()
        )));
    }
    let cut = transfer(net, req, response.into_body(), &mut driver, progress).await?;
    finish_body(req, progress, content_encoding.is_some(), cut)
}

/// Connect for `req`: to the target, or to its proxy (over TLS for an
/// `https://` proxy). Returns the stream, the address connected to and the
/// connection's budget slot.
async fn open(
    net: &Net,
    req: &FetchRequest,
    host_bare: &str,
    port: u16,
    progress: &mut Progress,
) -> Result<(Box<dyn Io>, SocketAddr, ConnectionSlot), NetError> {
    let scheme = req.url.scheme();
    let connection = match &req.proxy {
        None => {
            net.connect_prefer(scheme, host_bare, port, &mut progress.phase, req.ip)
                .await?
        }
        Some(proxy) => {
            // The target must be allowed by name; the proxy resolves it.
            net.allow
                .check_target(scheme, host_bare, port)
                .map_err(|d| NetError::Denied(d.to_string()))?;
            let p_host = proxy.url.host_str().unwrap_or_default();
            let p_host = p_host.trim_start_matches('[').trim_end_matches(']');
            let p_port = proxy.url.port_or_known_default().unwrap_or(80);
            net.connect_prefer(
                proxy.url.scheme(),
                p_host,
                p_port,
                &mut progress.phase,
                req.ip,
            )
            .await
            .map_err(|e| proxy.blame(e))?
        }
    };
    progress.timings.resolve_ms += ms(connection.resolve);
    progress.timings.connect_ms += ms(connection.connect);
    let (tcp, remote_addr, slot) = (connection.stream, connection.remote_addr, connection.slot);
    let mut stream: Box<dyn Io> = Box::new(tcp);

    if let Some(proxy) = &req.proxy
        && proxy.url.scheme() == "https"
    {
        progress.phase = Phase::Tls;
        let p_host = proxy.url.host_str().unwrap_or_default();
        let p_host = p_host.trim_start_matches('[').trim_end_matches(']');
        let mut options = tls_options(req, p_host, vec![b"http/1.1".to_vec()]);
        options.server_name = p_host.to_string();
        options.client_cert = None;
        let config = options.config()?;
        let t = Instant::now();
        let (tls, _) = host_tls::handshake(stream, p_host, config)
            .await
            .map_err(|e| proxy.blame(e))?;
        progress.timings.tls_ms += ms(t.elapsed());
        stream = Box::new(tls);
    }
    Ok((stream, remote_addr, slot))
}

/// Over `stream`: for `https://`, the proxy tunnel (if any) and the TLS
/// handshake (its session, or what a failed one showed, goes to
/// `progress.tls`); then the request, up to the response head.
async fn request_head(
    mut stream: Box<dyn Io>,
    req: &FetchRequest,
    host_bare: &str,
    port: u16,
    progress: &mut Progress,
) -> Result<(http::Response<hyper::body::Incoming>, Driver), NetError> {
    let url = &req.url;
    if url.scheme() != "https" {
        progress.tls = None;
        progress.phase = Phase::Processing;
        let absolute = req.proxy.is_some();
        return send(stream, false, absolute, req, &mut progress.timings).await;
    }
    if let Some(proxy) = &req.proxy {
        progress.phase = Phase::Connect;
        let t = Instant::now();
        let authority = &url[url::Position::BeforeHost..url::Position::AfterPort];
        let authority = if url.port().is_none() {
            format!("{authority}:{port}")
        } else {
            authority.to_string()
        };
        proxy::connect_tunnel(&mut stream, proxy, &authority).await?;
        progress.timings.connect_ms += ms(t.elapsed());
    }
    progress.phase = Phase::Tls;
    let alpn = if req.http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    // Build the configuration before the clock starts: the phase is the handshake.
    let options = tls_options(req, host_bare, alpn);
    let config = options.config()?;
    let t = Instant::now();
    let handshake = host_tls::handshake_detailed(stream, &options.server_name, config).await;
    progress.timings.tls_ms += ms(t.elapsed());
    let (tls_stream, session) = match handshake {
        Ok(ok) => ok,
        Err(failed) => {
            progress.tls = failed.info;
            return Err(failed.error);
        }
    };
    let h2 = session.alpn.as_deref() == Some("h2");
    progress.tls = Some(session);
    progress.phase = Phase::Processing;
    send(tls_stream, h2, false, req, &mut progress.timings).await
}

/// Read the body into `progress.wire`, up to the wire cap. Without decoding
/// the cap applies to the bytes received; with it, to the decoded bytes,
/// the wire being allowed a little more (an incompressible body grows
/// slightly when compressed). Returns whether the body was cut.
async fn transfer(
    net: &Net,
    req: &FetchRequest,
    mut body: hyper::body::Incoming,
    driver: &mut Driver,
    progress: &mut Progress,
) -> Result<bool, NetError> {
    let wire_cap = match req.compression {
        None => req.max_body_bytes,
        Some(_) => req.max_body_bytes + req.max_body_bytes / 16 + 1024,
    };
    progress.phase = Phase::Transfer;
    let t = Instant::now();
    let mut cut = false;
    // With decoding, what arrived is decoded at doubling sizes (64 KiB,
    // 128 KiB…): a body that already decodes past the cap (a bomb) stops
    // being read there, at a cost of at most twice one decode.
    let mut next_check = 64 * 1024;
    let read = async {
        while let Some(frame) = driver.drive(body.frame()).await {
            let frame = frame.map_err(|e| NetError::Protocol(format!("reading body: {e}")))?;
            if let Ok(data) = frame.into_data() {
                net.budget.read_bytes(data.len() as u64)?;
                let room = wire_cap.saturating_sub(progress.wire.len() as u64) as usize;
                progress
                    .wire
                    .extend_from_slice(&data[..data.len().min(room)]);
                if data.len() > room {
                    cut = true;
                    break;
                }
                if let Some(encoding) = req.compression
                    && progress.wire.len() >= next_check
                {
                    next_check = progress.wire.len() * 2;
                    let partial =
                        decode::decode(encoding, &progress.wire, req.max_body_bytes, false);
                    if let Ok(Decoded::TooLarge(_)) = partial {
                        cut = true;
                        break;
                    }
                }
            }
        }
        Ok::<_, NetError>(())
    };
    let read = read.await;
    progress.timings.transfer_ms += ms(t.elapsed());
    read?;
    Ok(cut)
}

/// The response recorded in `progress.pending` with its body: decoded when
/// the request asked for compression and the response is `encoded`, cut at
/// the cap (then the error is `body-too-large`, the response kept in
/// `progress.last`).
fn finish_body(
    req: &FetchRequest,
    progress: &mut Progress,
    encoded: bool,
    cut: bool,
) -> Result<Fetched, NetError> {
    let wire_body_bytes = progress.wire.len() as u64;
    let decoded_from = req.compression.filter(|_| encoded);
    if let (Some(asked), false) = (req.compression, encoded)
        && !progress.wire.is_empty()
    {
        return Err(NetError::Protocol(format!(
            "asked for {} content, the response is not encoded (no Content-Encoding)",
            asked.token()
        )));
    }
    let (body, too_large) = match decoded_from {
        Some(encoding) => {
            match decode::decode(encoding, &progress.wire, req.max_body_bytes, !cut) {
                Ok(Decoded::Complete(b)) => (Bytes::from(b), cut),
                Ok(Decoded::TooLarge(b)) => (Bytes::from(b), true),
                Err(e) => return Err(NetError::Protocol(e)),
            }
        }
        None => {
            let n = progress.wire.len().min(req.max_body_bytes as usize);
            (
                Bytes::copy_from_slice(&progress.wire[..n]),
                cut || progress.wire.len() as u64 > req.max_body_bytes,
            )
        }
    };
    let mut fetched = progress
        .pending
        .take()
        .expect("the head was recorded before the body");
    fetched.body = body;
    fetched.wire_body_bytes = wire_body_bytes;
    fetched.decoded_from = decoded_from;
    fetched.timings = progress.timings;
    if too_large {
        progress.last = Some(fetched);
        return Err(NetError::BodyTooLarge(req.max_body_bytes));
    }
    Ok(fetched)
}

/// What drives a connection while its response is read.
///
/// HTTP/1.1: the connection future itself, polled by the task that reads the
/// response ([`Driver::drive`]), so a plain exchange never leaves that task:
/// with the connection on a task of its own, every read woke another worker
/// thread (a futex call and a context switch each time), which cost more
/// than the rest of a loopback probe. HTTP/2 multiplexes its streams behind
/// the scenes and keeps a spawned task, aborted when the exchange is over.
enum Driver {
    Inline(Option<Pin<Box<dyn Future<Output = ()> + Send>>>),
    Spawned(tokio::task::JoinHandle<()>),
}

impl Driver {
    /// Await `work` while driving the connection.
    async fn drive<F: Future>(&mut self, work: F) -> F::Output {
        let Driver::Inline(conn) = self else {
            return work.await;
        };
        tokio::pin!(work);
        loop {
            let Some(c) = conn.as_mut() else {
                return work.await;
            };
            tokio::select! {
                biased;
                out = &mut work => return out,
                () = c.as_mut() => *conn = None,
            }
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Driver::Spawned(task) = self {
            task.abort();
        }
    }
}

/// Send the request over an established (possibly TLS) connection and wait
/// for the response head. Returns the response with its body still to read,
/// and what drives the connection until the body is read ([`Driver`]).
async fn send<IO>(
    io: IO,
    h2: bool,
    absolute: bool,
    req: &FetchRequest,
    timings: &mut Timings,
) -> Result<(http::Response<hyper::body::Incoming>, Driver), NetError>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let t = Instant::now();
    let io = TokioIo::new(io);
    let proto = |e: hyper::Error| NetError::Protocol(e.to_string());
    let mut builder = http::Request::builder().method(req.method.clone());
    builder = if h2 {
        builder.uri(req.url.as_str()).version(Version::HTTP_2)
    } else if absolute {
        // To a plain HTTP proxy: the absolute form, `GET http://host/path`.
        let without_fragment = &req.url[..url::Position::AfterQuery];
        builder.uri(without_fragment)
    } else {
        let path = &req.url[url::Position::BeforePath..url::Position::AfterQuery];
        builder.uri(if path.is_empty() { "/" } else { path })
    };
    let mut request = builder
        .body(Full::new(req.body.clone()))
        .map_err(|e| NetError::InvalidRequest(e.to_string()))?;
    *request.headers_mut() = req.headers.clone();
    if absolute && let Some(proxy) = &req.proxy {
        for (name, value) in &proxy.headers {
            request.headers_mut().append(name, value.clone());
        }
    }
    if !h2 && !request.headers().contains_key(HOST) {
        let host = &req.url[url::Position::BeforeHost..url::Position::AfterPort];
        let value =
            HeaderValue::from_str(host).map_err(|e| NetError::InvalidRequest(e.to_string()))?;
        request.headers_mut().insert(HOST, value);
    }
    if !request.headers().contains_key(USER_AGENT) {
        request.headers_mut().insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("Vantage/", env!("CARGO_PKG_VERSION"))),
        );
    }
    let (response, driver) = if h2 {
        let (mut sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
            .await
            .map_err(proto)?;
        let driver = Driver::Spawned(tokio::spawn(async move {
            let _ = conn.await;
        }));
        (sender.send_request(request).await.map_err(proto)?, driver)
    } else {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(proto)?;
        let mut driver = Driver::Inline(Some(Box::pin(async move {
            let _ = conn.await;
        })));
        let response = driver.drive(sender.send_request(request)).await;
        (response.map_err(proto)?, driver)
    };
    timings.processing_ms += ms(t.elapsed());
    Ok((response, driver))
}

/// Build a header map from a guest's list, rejecting invalid names/values.
pub fn header_map(headers: &[(String, String)]) -> Result<HeaderMap, NetError> {
    let mut map = HeaderMap::new();
    for (k, v) in headers {
        let name = HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| NetError::InvalidRequest(format!("invalid header name {k:?}")))?;
        let value = HeaderValue::from_str(v)
            .map_err(|_| NetError::InvalidRequest(format!("invalid value for header {k}")))?;
        map.append(name, value);
    }
    Ok(map)
}
