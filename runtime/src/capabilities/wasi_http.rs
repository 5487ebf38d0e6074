//! `wasi:http/outgoing-handler`, for components built with standard HTTP
//! client libraries (Rust `wasi`/`waki`, JS `fetch`, Python `requests` via
//! componentize-py). Requests go through the same network layer as Vantage's
//! own `http` interface: the outbound allow list on the target and on the
//! address actually connected to, and the per-run connection budget. A
//! refused request fails with `error-code::http-request-denied` and is logged
//! with the run; response bodies count against the run's byte budget. The
//! rich `http` interface remains the one with timings and TLS data.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, SizeHint};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use wasmtime::component::Linker;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpCtx, WasiHttpHooks};

use super::net::{Net, NetBudget, Phase};
use crate::bindings::vantage::check::common::NetError;
use crate::capabilities::CapabilitiesView;
use crate::pace::AbortOnDrop;

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

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

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

async fn send(
    net: Net,
    mut request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
) -> Result<(http::Response<WasiBody>, IoFuture), Error> {
    let uri = request.uri().clone();
    let https = uri.scheme_str() == Some("https");
    let scheme = if https { "https" } else { "http" };
    let host = uri.host().ok_or(Error::HttpRequestUriInvalid)?.to_string();
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let connect_timeout = net.timeout(
        options
            .and_then(|o| o.connect_timeout)
            .map(|d| d.as_millis() as u64),
        Duration::from_secs(10),
    );
    let mut phase = Phase::Resolve;
    let connection = match tokio::time::timeout(
        connect_timeout,
        net.connect(scheme, &host, port, &mut phase),
    )
    .await
    {
        Err(_) => return Err(Error::ConnectionTimeout),
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            return Err(match e {
                NetError::Denied(rule) => {
                    // Noted for the run's log, which reaches the host's log
                    // with the run's secrets redacted (a rule names the host,
                    // and a check may have put a secret there).
                    net.note::<()>(&Err(NetError::Denied(rule)));
                    Error::HttpRequestDenied
                }
                NetError::Dns(_) => Error::DnsError {
                    rcode: None,
                    info_code: None,
                },
                NetError::LimitExceeded(_) => Error::ConnectionLimitReached,
                NetError::Timeout(_) => Error::ConnectionTimeout,
                _ => Error::ConnectionRefused,
            });
        }
    };
    let io: Box<dyn Io> = if https {
        let config = super::tls::TlsOptions {
            server_name: host.clone(),
            alpn: vec![b"http/1.1".to_vec()],
            ca_bundle_pem: None,
            client_cert: None,
            require_valid: true,
            min_version: None,
            max_version: None,
        }
        .config()
        .map_err(|_| Error::TlsProtocolError)?;
        let (tls, _) = super::tls::handshake(connection.stream, &host, config)
            .await
            .map_err(|_| Error::TlsCertificateError)?;
        Box::new(tls)
    } else {
        Box::new(connection.stream)
    };
    // The request carries scheme and authority; on the wire HTTP/1.1 wants
    // the path only (and the Host header, which wasi-http has set).
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    *request.uri_mut() = path.parse().map_err(|_| Error::HttpRequestUriInvalid)?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
    // Drive the connection while waiting for the response; the returned I/O
    // future owns the driver, so dropping it (the response is done, or the
    // run is over) aborts the connection.
    let driver = AbortOnDrop(tokio::spawn(async move { conn.await.map_err(Error::from) }));
    let slot = connection.slot;
    let response = sender.send_request(request).await?;
    let io: IoFuture = Box::new(async move {
        let _slot = slot;
        let mut driver = driver;
        match (&mut driver.0).await {
            Ok(result) => result,
            Err(e) => Err(Error::InternalError(Some(e.to_string()))),
        }
    });
    let budget = net.budget.clone();
    let response = response.map(|body| {
        Budgeted {
            inner: body.map_err(Error::from),
            budget,
        }
        .boxed_unsync()
    });
    Ok((response, io))
}

/// A response body whose bytes count against the run's byte budget, like
/// those the `http` interface reads: past the budget it fails with
/// `http-response-body-size` (a 1 GiB body is not streamed to the guest).
struct Budgeted<B> {
    inner: B,
    budget: Arc<NetBudget>,
}

impl<B> Body for Budgeted<B>
where
    B: Body<Data = Bytes, Error = Error> + Unpin,
{
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let frame = std::task::ready!(Pin::new(&mut self.inner).poll_frame(cx));
        if let Some(Ok(frame)) = &frame
            && let Some(data) = frame.data_ref()
            && let Err(e) = self.budget.read_bytes(data.len() as u64)
        {
            tracing::debug!(error = %super::net::describe(&e), "wasi:http response body cut");
            return Poll::Ready(Some(Err(Error::HttpResponseBodySize(Some(
                self.budget.max_bytes(),
            )))));
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Register `wasi:http` (types and outgoing-handler).
pub fn add_to_linker<T: CapabilitiesView>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)
}
