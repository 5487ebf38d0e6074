//! The `http` interface: outbound HTTP(S) with per-phase timings, under the
//! check's outbound allow list and per-run caps.
//!
//! The guest-facing glue lives here; the measuring client is in [`client`].

pub mod client;

pub use crate::result::http::HttpTrace;

use bytes::Bytes;
use wasmtime::component::{HasSelf, Linker};

use self::client::{FetchRequest, Timings};
use super::net::{self, Net};
use crate::bindings::vantage::check::common::NetError;
use crate::bindings::vantage::check::http as wit;
use crate::capabilities::CapabilitiesView;
use crate::config::SecretSource;
use std::sync::Arc;

/// Per-run HTTP state.
#[derive(Debug)]
pub struct HttpState {
    net: Net,
    /// Granted secrets (for client certificates).
    secrets: Vec<(String, SecretSource)>,
    /// Whether the operator allows `insecure` requests for this check.
    allow_insecure: bool,
    /// Cookies carried across the run's exchanges (a session per run).
    jar: std::sync::Mutex<cookie_store::CookieStore>,
    /// The run's exchanges, in order (the first [`MAX_TRACE`]).
    pub trace: Vec<HttpTrace>,
    /// Exchanges left out of `trace` once it was full.
    pub trace_dropped: usize,
}

/// Most exchanges one run's trace keeps: a check calling `fetch` in a loop
/// (retrying a denied or failing target) must not grow the host's memory or
/// the result without bound.
pub const MAX_TRACE: usize = 256;

impl HttpState {
    /// State for a run with the given network context, granted secrets, and
    /// whether the operator allows insecure TLS for this check.
    pub fn new(net: Net, secrets: &[(String, SecretSource)], allow_insecure: bool) -> Self {
        HttpState {
            net,
            secrets: secrets.to_vec(),
            allow_insecure,
            jar: Default::default(),
            trace: Vec::new(),
            trace_dropped: 0,
        }
    }

    /// Validate the guest's request and turn it into a [`FetchRequest`].
    fn prepare(&self, req: wit::Request) -> Result<FetchRequest, NetError> {
        let method = http::Method::from_bytes(req.method.as_bytes())
            .map_err(|_| NetError::InvalidRequest(format!("invalid method {:?}", req.method)))?;
        let url = url::Url::parse(&req.url)
            .map_err(|e| NetError::InvalidRequest(format!("invalid URL {:?}: {e}", req.url)))?;
        let headers = client::header_map(&req.headers)?;
        let timeout = self.net.timeout(req.timeout_ms, client::DEFAULT_TIMEOUT);
        let max_body_bytes = req
            .max_body_bytes
            .unwrap_or(client::DEFAULT_MAX_BODY_BYTES)
            .min(client::HOST_MAX_BODY_BYTES);
        if let Some(body) = &req.body
            && body.len() as u64 > client::HOST_MAX_BODY_BYTES
        {
            return Err(NetError::InvalidRequest(format!(
                "request body of {} bytes is larger than the host's cap of {} bytes",
                body.len(),
                client::HOST_MAX_BODY_BYTES
            )));
        }
        for (set, what) in [
            (req.proxy.is_some(), "proxy"),
            (req.compression.is_some(), "compression"),
            (req.ip.preferred.is_some(), "an IP family preference"),
            (
                req.tls.min_version.is_some() || req.tls.max_version.is_some(),
                "TLS versions",
            ),
        ] {
            if set {
                return Err(NetError::Unsupported(format!(
                    "this host does not support {what} in http.fetch yet"
                )));
            }
        }
        if req.tls.insecure && !self.allow_insecure {
            return Err(NetError::Denied(
                "insecure TLS is not allowed for this check (the operator can allow it with --allow-insecure)"
                    .into(),
            ));
        }
        let client_cert = match &req.tls.client_cert_secret {
            Some(name) => Some(Arc::new(super::tls::client_cert(&self.secrets, name)?)),
            None => None,
        };
        Ok(FetchRequest {
            method,
            url,
            headers,
            body: req.body.map(Bytes::from).unwrap_or_default(),
            timeout,
            follow_redirects: req.follow_redirects,
            max_redirects: req.max_redirects.unwrap_or(client::DEFAULT_MAX_REDIRECTS),
            max_body_bytes,
            insecure: req.tls.insecure,
            client_cert,
            ca_bundle_pem: req.tls.ca_bundle_pem,
            server_name: req.tls.server_name,
            http2: req.http2,
        })
    }

    /// Keep `trace` if the run's trace has room, count it otherwise.
    fn record(&mut self, trace: HttpTrace) {
        if self.trace.len() < MAX_TRACE {
            self.trace.push(trace);
        } else {
            self.trace_dropped += 1;
        }
    }

    async fn fetch(&mut self, req: wit::Request) -> Result<wit::Response, wit::FetchError> {
        let (method, url) = (req.method.clone(), req.url.clone());
        let prepared = self
            .prepare(req)
            .map_err(|e| failed(e, Timings::default()))?;
        let mut timings = Timings::default();
        let result = client::fetch(&self.net, prepared, Some(&self.jar), &mut timings).await;
        let mut trace = HttpTrace {
            method,
            url,
            status: None,
            remote_addr: None,
            redirects: 0,
            timings,
            error: None,
            tls_earliest_expiry_unix_ms: None,
        };
        match result {
            Ok(fetched) => {
                trace.status = Some(fetched.status);
                trace.remote_addr = Some(fetched.remote_addr.to_string());
                trace.redirects = fetched.redirects.len() as u32;
                trace.tls_earliest_expiry_unix_ms =
                    fetched.tls.as_ref().and_then(|t| t.earliest_expiry_unix_ms);
                self.record(trace);
                Ok(to_wit_response(fetched))
            }
            Err(e) => {
                trace.error = Some(net::describe(&e));
                self.record(trace);
                Err(failed(e, timings))
            }
        }
    }
}

/// A failed exchange: the error and the phases measured before it.
fn failed(error: NetError, t: Timings) -> wit::FetchError {
    wit::FetchError {
        error,
        response: None,
        timings: wit_timings(t),
        redirects: Vec::new(),
        tls: None,
    }
}

fn wit_timings(t: Timings) -> wit::Timings {
    wit::Timings {
        resolve_ms: t.resolve_ms,
        connect_ms: t.connect_ms,
        tls_ms: t.tls_ms,
        processing_ms: t.processing_ms,
        transfer_ms: t.transfer_ms,
        total_ms: t.total_ms,
    }
}

fn to_wit_response(f: client::Fetched) -> wit::Response {
    let wire_body_bytes = f.body.len() as u64;
    wit::Response {
        status: f.status,
        headers: f.headers,
        body: f.body.to_vec(),
        version: match f.version {
            http::Version::HTTP_2 => wit::HttpVersion::Http2,
            http::Version::HTTP_10 => wit::HttpVersion::Http10,
            _ => wit::HttpVersion::Http11,
        },
        remote_addr: f.remote_addr.to_string(),
        url: f.url.to_string(),
        timings: wit_timings(f.timings),
        redirects: f
            .redirects
            .into_iter()
            .map(|r| wit::Redirect {
                url: r.url,
                status: r.status,
                location: r.location,
            })
            .collect(),
        // The full handshake summary: the chain verified against the webpki
        // roots (verdict `valid`), or the exchange would have failed with
        // `net-error::tls`.
        tls: f.tls,
        wire_body_bytes,
        decoded_from: None,
    }
}

impl wit::Host for HttpState {
    async fn fetch(
        &mut self,
        request: wit::Request,
    ) -> wasmtime::Result<Result<wit::Response, wit::FetchError>> {
        let result = HttpState::fetch(self, request).await;
        if let Err(e) = &result {
            self.net.note_error(&e.error);
        }
        Ok(result)
    }
}

/// Register the `http` interface.
pub fn add_to_linker<T: CapabilitiesView>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    wit::add_to_linker::<T, HasSelf<HttpState>>(linker, |s| &mut s.caps().http)
}
