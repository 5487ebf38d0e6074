//! The `http` interface: outbound HTTP(S) with per-phase timings, under the
//! check's outbound allow list and per-run caps.
//!
//! The guest-facing glue lives here; the measuring client is in [`client`],
//! proxies in [`proxy`], content decoding in [`decode`].

pub mod client;
pub mod decode;
pub mod proxy;
#[cfg(test)]
mod tests;

pub use crate::result::http::HttpTrace;

use bytes::Bytes;
use wasmtime::component::{HasSelf, Linker};

use self::client::{FetchRequest, TlsParams};
use self::decode::Encoding;
use super::net::{self, IpFamily, IpPreference, Net};
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
}

impl HttpState {
    /// State for a run with the given network context, granted secrets, and
    /// whether the operator allows insecure TLS for this check.
    pub fn new(net: Net, secrets: &[(String, SecretSource)], allow_insecure: bool) -> Self {
        HttpState {
            net,
            secrets: secrets.to_vec(),
            allow_insecure,
            jar: Default::default(),
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
        let tls = &req.tls;
        if tls.insecure && !self.allow_insecure {
            return Err(NetError::Denied(
                "insecure TLS is not allowed for this check (the operator can allow it with --allow-insecure)"
                    .into(),
            ));
        }
        if tls
            .server_name
            .as_ref()
            .is_some_and(|n| n.trim().is_empty())
        {
            return Err(NetError::InvalidRequest("tls server-name is empty".into()));
        }
        if let Some(pem) = &tls.ca_bundle_pem {
            // Refuse a bad bundle before connecting anywhere.
            super::tls::verify::Trust::from_pem(pem).map_err(NetError::InvalidRequest)?;
        }
        let client_cert = match &tls.client_cert_secret {
            Some(name) => Some(Arc::new(super::tls::client_cert(&self.secrets, name)?)),
            None => None,
        };
        let proxy = match &req.proxy {
            Some(p) => Some(proxy::Proxy::parse(
                &p.url,
                client::header_map(&p.headers)?,
            )?),
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
            tls: TlsParams {
                server_name: tls.server_name.as_ref().map(|n| n.trim().to_string()),
                ca_bundle_pem: tls.ca_bundle_pem.clone(),
                client_cert,
                insecure: tls.insecure,
                min_version: tls.min_version,
                max_version: tls.max_version,
            },
            proxy,
            compression: req.compression.map(encoding_of),
            http2: req.http2,
            ip: ip_preference(&req.ip),
        })
    }

    async fn fetch(&self, req: wit::Request) -> Result<wit::Response, wit::FetchError> {
        let (method, url) = (req.method.clone(), req.url.clone());
        let prepared = self.prepare(req).map_err(|error| wit::FetchError {
            error,
            response: None,
            timings: to_wit_timings(&client::Timings::default()),
            redirects: Vec::new(),
            tls: None,
        })?;
        let result = client::fetch(&self.net, prepared, Some(&self.jar)).await;
        record_exchange(&self.net, method, url, &result);
        match result {
            Ok(fetched) => Ok(to_wit_response(fetched)),
            Err(failed) => {
                let failed = *failed;
                Err(wit::FetchError {
                    error: failed.error,
                    response: failed.response.map(to_wit_response),
                    timings: to_wit_timings(&failed.timings),
                    redirects: failed.redirects.into_iter().map(to_wit_redirect).collect(),
                    tls: failed.tls,
                })
            }
        }
    }
}

/// Put one exchange (`method url`, its outcome) in the run's HTTP trace,
/// and its TLS handshake in the TLS trace: every HTTP capability
/// (`http.fetch`, `wasi:http`) reports its exchanges here.
pub fn record_exchange(
    net: &Net,
    method: String,
    url: String,
    result: &Result<client::Fetched, Box<client::Failed>>,
) {
    let mut trace = HttpTrace {
        method,
        url,
        status: None,
        remote_addr: None,
        redirects: 0,
        timings: client::Timings::default(),
        error: None,
    };
    match result {
        Ok(fetched) => {
            trace.status = Some(fetched.status);
            trace.remote_addr = Some(fetched.remote_addr.to_string());
            trace.redirects = fetched.redirects.len() as u32;
            trace.timings = fetched.timings;
            if let Some(tls) = &fetched.tls {
                net.record_tls("http", server_of(&fetched.url), tls);
            }
        }
        Err(failed) => {
            trace.error = Some(net::describe(&failed.error));
            trace.timings = failed.timings;
            trace.redirects = failed.redirects.len() as u32;
            if let Some(r) = &failed.response {
                trace.status = Some(r.status);
                trace.remote_addr = Some(r.remote_addr.to_string());
            }
            if let (Some(tls), Ok(url)) = (&failed.tls, url::Url::parse(&trace.url)) {
                net.record_tls("http", server_of(&url), tls);
            }
        }
    }
    net.record_http(trace);
}

/// The host's encoding for the WIT's.
fn encoding_of(c: wit::Compression) -> Encoding {
    match c {
        wit::Compression::Gzip => Encoding::Gzip,
        wit::Compression::Deflate => Encoding::Deflate,
        wit::Compression::Br => Encoding::Br,
        wit::Compression::Zstd => Encoding::Zstd,
    }
}

fn compression_of(e: Encoding) -> wit::Compression {
    match e {
        Encoding::Gzip => wit::Compression::Gzip,
        Encoding::Deflate => wit::Compression::Deflate,
        Encoding::Br => wit::Compression::Br,
        Encoding::Zstd => wit::Compression::Zstd,
    }
}

/// The host's address-family preference for the guest's (also used by
/// `tcp.probe`).
pub fn ip_preference(ip: &wit::IpPreference) -> IpPreference {
    IpPreference {
        preferred: ip.preferred.map(|f| match f {
            wit::IpFamily::Ip4 => IpFamily::V4,
            wit::IpFamily::Ip6 => IpFamily::V6,
        }),
        fallback: ip.fallback,
    }
}

/// `host:port` of `url`, as TLS traces name the server.
fn server_of(url: &url::Url) -> String {
    format!(
        "{}:{}",
        url.host_str().unwrap_or_default(),
        url.port_or_known_default().unwrap_or(443)
    )
}

fn to_wit_timings(t: &client::Timings) -> wit::Timings {
    wit::Timings {
        resolve_ms: t.resolve_ms,
        connect_ms: t.connect_ms,
        tls_ms: t.tls_ms,
        processing_ms: t.processing_ms,
        transfer_ms: t.transfer_ms,
        total_ms: t.total_ms,
    }
}

fn to_wit_redirect(r: client::Redirect) -> wit::Redirect {
    wit::Redirect {
        url: r.url,
        status: r.status,
        location: r.location,
    }
}

fn to_wit_response(f: client::Fetched) -> wit::Response {
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
        timings: to_wit_timings(&f.timings),
        redirects: f.redirects.into_iter().map(to_wit_redirect).collect(),
        // The full handshake summary: the verdict is `valid` unless the
        // request was `insecure` (a bad certificate fails it otherwise).
        tls: f.tls,
        wire_body_bytes: f.wire_body_bytes,
        decoded_from: f.decoded_from.map(compression_of),
    }
}

impl wit::Host for HttpState {
    async fn fetch(
        &mut self,
        request: wit::Request,
    ) -> wasmtime::Result<Result<wit::Response, wit::FetchError>> {
        let (tape, net) = (self.net.tape.clone(), self.net.clone());
        let result = tape
            .exchange(
                "http.fetch",
                |r: &wit::Request| format!("{} {}", r.method, r.url),
                request,
                Some(&net),
                |r| HttpState::fetch(self, r),
            )
            .await?;
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
