//! A one-shot HTTP(S) client that measures every phase of an exchange
//! (resolve, connect, TLS, processing, transfer) the way blackbox_exporter
//! does, and enforces the outbound policy on every hop, both on the URL and on
//! the address actually connected to.
//!
//! Built on hyper's connection-level API rather than a pooled client: a probe
//! wants a fresh connection every time, and the timings of each step.

pub use crate::result::http::Timings;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use cookie_store::CookieStore;
use http::header::{COOKIE, HOST, LOCATION, SET_COOKIE, USER_AGENT};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Version};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite};
use url::Url;

use super::super::net::{Net, Phase};
use crate::bindings::vantage::check::common::NetError;

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
    /// Body cap in bytes.
    pub max_body_bytes: u64,
    /// Complete TLS handshakes whatever the certificate verdict (the
    /// operator allowed it; the verdict is still reported).
    pub insecure: bool,
    /// Client certificate for mutual TLS.
    pub client_cert: Option<std::sync::Arc<crate::capabilities::tls::ClientCert>>,
    /// PEM CAs to trust instead of the system roots.
    pub ca_bundle_pem: Option<String>,
    /// SNI and verification name, instead of the URL's host.
    pub server_name: Option<String>,
    /// Offer HTTP/2 by ALPN.
    pub http2: bool,
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
/// ALPN, the presented chain (parsed) and its verdict (always `valid` in a
/// completed exchange: a bad certificate fails it with `net-error::tls`).
pub type TlsSession = crate::bindings::vantage::check::tls::TlsInfo;

/// A completed exchange.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// Final status.
    pub status: u16,
    /// Final headers (lowercase names).
    pub headers: Vec<(String, String)>,
    /// Final body.
    pub body: Bytes,
    /// Protocol version of the final response.
    pub version: Version,
    /// Address of the final hop.
    pub remote_addr: SocketAddr,
    /// Final URL.
    pub url: Url,
    /// Per-phase timings.
    pub timings: Timings,
    /// Redirects followed.
    pub redirects: Vec<Redirect>,
    /// TLS session of the final hop.
    pub tls: Option<TlsSession>,
}

/// Perform `req` under `allow`, following redirects if asked. Timings are
/// accumulated into `timings` even when the exchange fails.
///
/// With a cookie `jar`, cookies are sent and stored on every hop, like a
/// browser session (a login that sets a cookie on its redirect works).
pub async fn fetch(
    net: &Net,
    req: FetchRequest,
    jar: Option<&Mutex<CookieStore>>,
    timings: &mut Timings,
) -> Result<Fetched, NetError> {
    let started = Instant::now();
    let mut phase = Phase::Resolve;
    let result = tokio::time::timeout(
        req.timeout,
        fetch_following(net, req, jar, &mut phase, timings),
    )
    .await;
    timings.total_ms = ms(started.elapsed());
    match result {
        Ok(Ok(fetched)) => Ok(Fetched {
            timings: *timings,
            ..fetched
        }),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(NetError::Timeout(phase.as_str().to_string())),
    }
}

async fn fetch_following(
    net: &Net,
    mut req: FetchRequest,
    jar: Option<&Mutex<CookieStore>>,
    phase: &mut Phase,
    timings: &mut Timings,
) -> Result<Fetched, NetError> {
    let mut redirects = Vec::new();
    // The caller's own Cookie header; the jar's cookies are added to it.
    let mut own_cookie = req.headers.get(COOKIE).cloned();
    loop {
        if let Some(jar) = jar {
            set_cookie_header(&mut req, own_cookie.as_ref(), jar);
        }
        let hop = exchange(net, &req, phase, timings).await?;
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
                if redirects.len() as u32 >= req.max_redirects {
                    return Err(NetError::TooManyRedirects(req.max_redirects));
                }
                let next = req.url.join(&location).map_err(|e| {
                    NetError::Protocol(format!("bad Location header {location:?}: {e}"))
                })?;
                redirects.push(Redirect {
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
            _ => {
                return Ok(Fetched {
                    redirects,
                    timings: *timings,
                    ..hop
                });
            }
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

/// One request/response on a fresh connection.
async fn exchange(
    net: &Net,
    req: &FetchRequest,
    phase: &mut Phase,
    timings: &mut Timings,
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
    let connection = net.connect(scheme, host_bare, port, phase).await?;
    timings.resolve_ms += ms(connection.resolve);
    timings.connect_ms += ms(connection.connect);
    let (tcp, remote_addr, _slot) = (connection.stream, connection.remote_addr, connection.slot);

    // `driver` drives the connection until the body is read, then drops it.
    let ((response, mut driver), tls) = if scheme == "https" {
        *phase = Phase::Tls;
        // Build the configuration before the clock starts: the phase is the handshake.
        let config = tls_config(req)?;
        let t = Instant::now();
        let (tls_stream, session) = crate::capabilities::tls::handshake(
            tcp,
            req.server_name.as_deref().unwrap_or(host_bare),
            config,
        )
        .await?;
        timings.tls_ms += ms(t.elapsed());
        net.record_tls("http", format!("{host_bare}:{port}"), &session);
        let h2 = session.alpn.as_deref() == Some("h2");
        *phase = Phase::Processing;
        let resp = send(tls_stream, h2, req, timings).await?;
        (resp, Some(session))
    } else {
        *phase = Phase::Processing;
        (send(tcp, false, req, timings).await?, None)
    };

    let status = response.status().as_u16();
    let version = response.version();
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();

    // Transfer.
    *phase = Phase::Transfer;
    let t = Instant::now();
    let mut body = response.into_body();
    let mut buf = BytesMut::new();
    while let Some(frame) = driver.drive(body.frame()).await {
        let frame = frame.map_err(|e| NetError::Protocol(format!("reading body: {e}")))?;
        if let Ok(data) = frame.into_data() {
            if (buf.len() + data.len()) as u64 > req.max_body_bytes {
                timings.transfer_ms += ms(t.elapsed());
                return Err(NetError::BodyTooLarge(req.max_body_bytes));
            }
            net.budget.read_bytes(data.len() as u64)?;
            buf.extend_from_slice(&data);
        }
    }
    timings.transfer_ms += ms(t.elapsed());

    Ok(Fetched {
        status,
        headers,
        body: buf.freeze(),
        version,
        remote_addr,
        url: req.url.clone(),
        timings: *timings,
        redirects: Vec::new(),
        tls,
    })
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
    } else {
        let path = &req.url[url::Position::BeforePath..url::Position::AfterQuery];
        builder.uri(if path.is_empty() { "/" } else { path })
    };
    let mut request = builder
        .body(Full::new(req.body.clone()))
        .map_err(|e| NetError::InvalidRequest(e.to_string()))?;
    *request.headers_mut() = req.headers.clone();
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

/// The TLS client configuration of one connection: webpki roots (or the
/// request's CA bundle), TLS 1.2 and 1.3, ALPN h2 (when allowed) and http/1.1, aws-lc-rs as the crypto provider (chosen
/// explicitly so that no process-wide default is needed), and the recording
/// verifier of [`crate::capabilities::tls`], so the chain is reported; unless
/// the request is `insecure`, a bad certificate fails with its verdict.
fn tls_config(req: &FetchRequest) -> Result<crate::capabilities::tls::HandshakeConfig, NetError> {
    crate::capabilities::tls::TlsOptions {
        server_name: String::new(),
        alpn: if req.http2 {
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        } else {
            vec![b"http/1.1".to_vec()]
        },
        ca_bundle_pem: req.ca_bundle_pem.clone(),
        client_cert: req
            .client_cert
            .as_ref()
            .map(|c| (c.0.clone(), c.1.clone_key())),
        require_valid: !req.insecure,
    }
    .config()
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
