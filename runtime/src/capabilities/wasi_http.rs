//! `wasi:http/outgoing-handler`, for components built with standard HTTP
//! client libraries (Rust `wasi`/`waki`, JS `fetch`, Python `urllib`,
//! `http.client` and `requests` through the Python SDK). Requests go through
//! the same measuring client as Vantage's own `http` interface
//! ([`super::http::client`]): the outbound allow list on the target and on
//! the address actually connected to, the per-run connection and byte
//! budget, per-phase timings in the run's HTTP trace and the TLS handshake
//! in its TLS trace, and the run's tape (recorded and replayed like
//! `http.fetch`). A refused request fails with
//! `error-code::http-request-denied` and is logged with the run.
//!
//! Each request is one exchange: redirects are not followed (standard
//! libraries follow them themselves), nothing is decoded, and the response
//! body reaches the guest once read whole, within the host's body cap. The
//! rich `http` interface remains the one with TLS options and the TLS data
//! on the response.

use std::future::Future;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use serde::{Deserialize, Serialize};
use wasmtime::component::Linker;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpCtx, WasiHttpHooks};

use super::http::client::{self, FetchRequest, TlsParams};
use super::net::{IpPreference, Net};
use crate::bindings::vantage::check::common::NetError;
use crate::capabilities::CapabilitiesView;

/// Per-run `wasi:http` state.
pub struct WasiHttpState {
    /// The WASI HTTP context (field size limits).
    pub ctx: WasiHttpCtx,
    /// The hooks that send requests under the outbound policy.
    pub hooks: PolicyHooks,
}

impl WasiHttpState {
    /// State for one run.
    pub fn new(net: Net) -> Self {
        WasiHttpState {
            ctx: WasiHttpCtx::new(),
            hooks: PolicyHooks { net },
        }
    }
}

/// Sends `wasi:http` requests through [`Net`].
pub struct PolicyHooks {
    net: Net,
}

type IoFuture = Box<dyn Future<Output = Result<(), Error>> + Send>;

impl WasiHttpHooks for PolicyHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _response_error: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Box<dyn Future<Output = Result<(http::Response<WasiBody>, IoFuture), Error>> + Send> {
        Box::new(send(self.net.clone(), request, options))
    }
}

/// A `wasi:http` request as the tape records it.
#[derive(Debug, Serialize, Deserialize)]
struct Sent {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// The guest's first-byte (or connect) timeout, ms.
    timeout_ms: Option<u64>,
}

/// A `wasi:http` response as the tape records it.
#[derive(Debug, Serialize, Deserialize)]
struct Received {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

async fn send(
    net: Net,
    request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
) -> Result<(http::Response<WasiBody>, IoFuture), Error> {
    let (parts, body) = request.into_parts();
    let body = Limited::new(body, client::HOST_MAX_BODY_BYTES as usize)
        .collect()
        .await
        .map_err(|_| Error::HttpRequestBodySize(Some(client::HOST_MAX_BODY_BYTES)))?
        .to_bytes();
    let headers = parts
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let timeout_ms = options
        .and_then(|o| o.first_byte_timeout.or(o.connect_timeout))
        .map(|d| d.as_millis() as u64);
    let sent = Sent {
        method: parts.method.to_string(),
        url: parts.uri.to_string(),
        headers,
        body: body.to_vec(),
        timeout_ms,
    };
    let live_net = net.clone();
    let answer: Result<Received, NetError> = net
        .tape
        .exchange(
            "wasi-http.request",
            |s: &Sent| format!("{} {}", s.method, s.url),
            sent,
            Some(&net),
            move |s| exchange(live_net, s),
        )
        .await
        .map_err(|e| Error::InternalError(Some(e.to_string())))?;
    let received = answer.map_err(|e| {
        net.note_error(&e);
        error_code(e)
    })?;
    let mut response = http::Response::builder().status(received.status);
    for (name, value) in &received.headers {
        response = response.header(name, value);
    }
    let response = response
        .body(
            Full::new(Bytes::from(received.body))
                .map_err(|never| match never {})
                .boxed_unsync(),
        )
        .map_err(|e| Error::InternalError(Some(e.to_string())))?;
    let io: IoFuture = Box::new(async { Ok(()) });
    Ok((response, io))
}

/// One live exchange through the measuring client, in the run's trace.
async fn exchange(net: Net, sent: Sent) -> Result<Received, NetError> {
    let method = http::Method::from_bytes(sent.method.as_bytes())
        .map_err(|_| NetError::InvalidRequest(format!("invalid method {:?}", sent.method)))?;
    let url = url::Url::parse(&sent.url)
        .map_err(|e| NetError::InvalidRequest(format!("invalid URL {:?}: {e}", sent.url)))?;
    let request = FetchRequest {
        method,
        url,
        headers: client::header_map(&sent.headers)?,
        body: Bytes::from(sent.body),
        timeout: net.timeout(sent.timeout_ms, client::DEFAULT_TIMEOUT),
        follow_redirects: false,
        max_redirects: 0,
        max_body_bytes: client::HOST_MAX_BODY_BYTES,
        tls: TlsParams::default(),
        proxy: None,
        compression: None,
        http2: false,
        ip: IpPreference::default(),
    };
    let result = client::fetch(&net, request, None).await;
    super::http::record_exchange(&net, sent.method, sent.url, &result);
    let fetched = result.map_err(|failed| failed.error)?;
    Ok(Received {
        status: fetched.status,
        headers: fetched.headers,
        body: fetched.body.to_vec(),
    })
}

/// The `wasi:http` error code for a network failure.
fn error_code(e: NetError) -> Error {
    match e {
        NetError::Denied(_) => Error::HttpRequestDenied,
        NetError::Dns(_) => Error::DnsError {
            rcode: None,
            info_code: None,
        },
        NetError::LimitExceeded(_) => Error::ConnectionLimitReached,
        NetError::Timeout(_) => Error::ConnectionTimeout,
        NetError::Connect(_) => Error::ConnectionRefused,
        NetError::Tls(m) if m.contains("certificate") => Error::TlsCertificateError,
        NetError::Tls(_) => Error::TlsProtocolError,
        NetError::BodyTooLarge(max) => Error::HttpResponseBodySize(Some(max)),
        NetError::InvalidRequest(_) => Error::HttpRequestUriInvalid,
        NetError::Protocol(m) | NetError::Unsupported(m) => Error::InternalError(Some(m)),
        NetError::TooManyRedirects(_) => Error::HttpProtocolError,
    }
}

/// Register `wasi:http` (types and outgoing-handler).
pub fn add_to_linker<T: CapabilitiesView>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)
}
