//! Components built against the frozen `vantage:check@0.1.0` world keep
//! running: the host implements the 0.1.0 interfaces by adapting each call
//! to the 0.2.0 implementation: the 0.1.0 request becomes a 0.2.0 one, the
//! same capability code runs (the same policy, budget, trace and
//! redaction), and the answer is converted back. No capability logic lives
//! here, only conversions.
//!
//! What the adaptation decides:
//! - `http`: `insecure` and `client-cert-secret` become the request's
//!   `tls-options`; HTTP/2 is offered as 0.1.0 did; no proxy, no
//!   compression; a `fetch-error` goes back as its `net-error` (0.1.0 had no
//!   partial response).
//! - `tcp`: `read-banner` and `send` become `read` and `send` + `read` steps
//!   (the reads of 0.1.0: to the end of a line or 2 s of silence); `expect`
//!   is matched against everything received, as 0.1.0 did, rather than
//!   becoming an `expect` step (which would read on until a line matched);
//!   a step that failed comes back as the error 0.1.0 gave (`timeout` when
//!   the probe's time ran out, `protocol` otherwise).
//! - `tls`: `server-name`, `ca-bundle-pem` and `client-cert-secret` become
//!   the request's `tls-options`.
//! - `dns`: UDP (TCP when truncated) with recursion desired, as 0.1.0 did;
//!   records of types 0.1.0 does not know are left out, the authority and
//!   additional sections dropped.
//! - a 0.1.0 component's results: an assertion that `passed` is in state
//!   `pass`, otherwise `fail`; measurements have no labels; config keys are
//!   typed `text`.

use regex::Regex;
use wasmtime::component::{HasSelf, Linker};

use super::clock::ClockState;
use super::dns::DnsState;
use super::http::HttpState;
use super::log::LogState;
use super::secrets::SecretsState;
use super::tcp::TcpState;
use super::tls::TlsState;
use crate::bindings::v0_1::vantage::check as v01;
use crate::bindings::vantage::check as v02;
use crate::capabilities::CapabilitiesView;

/// Register the 0.1.0 interfaces, each adapted to its 0.2.0 implementation
/// on the same per-run state.
pub fn add_to_linker<T: CapabilitiesView>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    v01::log::add_to_linker::<T, HasSelf<LogState>>(linker, |s| &mut s.caps().log)?;
    v01::clock::add_to_linker::<T, HasSelf<ClockState>>(linker, |s| &mut s.caps().clock)?;
    v01::secrets::add_to_linker::<T, HasSelf<SecretsState>>(linker, |s| &mut s.caps().secrets)?;
    v01::http::add_to_linker::<T, HasSelf<HttpState>>(linker, |s| &mut s.caps().http)?;
    v01::tls::add_to_linker::<T, HasSelf<TlsState>>(linker, |s| &mut s.caps().tls)?;
    v01::dns::add_to_linker::<T, HasSelf<DnsState>>(linker, |s| &mut s.caps().dns)?;
    v01::tcp::add_to_linker::<T, HasSelf<TcpState>>(linker, |s| &mut s.caps().tcp)?;
    Ok(())
}

// ---------------------------------------------------------------------------
// The host side: each 0.1.0 call, adapted.

impl v01::log::Host for LogState {
    async fn log(&mut self, level: v01::log::Level, message: String) -> wasmtime::Result<()> {
        v02::log::Host::log(self, level.into(), message).await
    }
}

impl v01::clock::Host for ClockState {
    async fn wall_now_unix_ms(&mut self) -> wasmtime::Result<u64> {
        v02::clock::Host::wall_now_unix_ms(self).await
    }

    async fn monotonic_now_ns(&mut self) -> wasmtime::Result<u64> {
        v02::clock::Host::monotonic_now_ns(self).await
    }

    async fn sleep(&mut self, duration_ms: u64) -> wasmtime::Result<()> {
        v02::clock::Host::sleep(self, duration_ms).await
    }
}

impl v01::secrets::Host for SecretsState {
    async fn get(
        &mut self,
        name: String,
    ) -> wasmtime::Result<Result<String, v01::secrets::SecretError>> {
        Ok(v02::secrets::Host::get(self, name)
            .await?
            .map_err(Into::into))
    }
}

impl v01::http::Host for HttpState {
    async fn fetch(
        &mut self,
        request: v01::http::Request,
    ) -> wasmtime::Result<Result<v01::http::Response, v01::types::NetError>> {
        let answer = v02::http::Host::fetch(self, request.into()).await?;
        Ok(answer.map(Into::into).map_err(|e| e.error.into()))
    }
}

impl v01::tls::Host for TlsState {
    async fn inspect(
        &mut self,
        request: v01::tls::TlsRequest,
    ) -> wasmtime::Result<Result<v01::tls::TlsReport, v01::types::NetError>> {
        let answer = v02::tls::Host::inspect(self, request.into()).await?;
        Ok(answer.map(Into::into).map_err(Into::into))
    }
}

impl v01::dns::Host for DnsState {
    async fn resolve(
        &mut self,
        query: v01::dns::DnsQuery,
    ) -> wasmtime::Result<Result<v01::dns::DnsAnswer, v01::types::NetError>> {
        let answer = v02::dns::Host::resolve(self, query.into()).await?;
        Ok(answer.map(Into::into).map_err(Into::into))
    }
}

impl v01::tcp::Host for TcpState {
    async fn probe(
        &mut self,
        request: v01::tcp::TcpRequest,
    ) -> wasmtime::Result<Result<v01::tcp::TcpReport, v01::types::NetError>> {
        let expect = match request.expect.as_deref().map(Regex::new).transpose() {
            Ok(expect) => expect,
            Err(e) => {
                return Ok(Err(v01::types::NetError::InvalidRequest(format!(
                    "bad expect regex: {e}"
                ))));
            }
        };
        let answer = v02::tcp::Host::probe(self, request.into()).await?;
        Ok(match answer {
            Err(e) => Err(e.into()),
            // 0.1.0 had no failed steps: a conversation the probe's timeout
            // cut (`timed out`) was a timeout of the processing
            // phase, any other break an error of the protocol.
            Ok(v02::tcp::TcpReport {
                failed_step: Some((_, why)),
                ..
            }) => Err(if why.ends_with("timed out") {
                v01::types::NetError::Timeout("processing".into())
            } else {
                v01::types::NetError::Protocol(why)
            }),
            Ok(report) => Ok(v01::tcp::TcpReport {
                matched: expect.map(|re| re.is_match(&String::from_utf8_lossy(&report.received))),
                remote_addr: report.remote_addr,
                resolve_ms: report.resolve_ms,
                connect_ms: report.connect_ms,
                received: report.received,
                tls: report.tls.map(Into::into),
                total_ms: report.total_ms,
            }),
        })
    }
}

// ---------------------------------------------------------------------------
// Conversions. Records and variants with the same shape in both versions are
// converted field by field by the macros below; the rest is written out.

/// A value of one version's type as the other version's: field by field for
/// records, case by case for variants, element by element for lists.
trait Adapt<T> {
    fn adapt(self) -> T;
}

macro_rules! same {
    ($($t:ty),*) => {
        $(impl Adapt<$t> for $t {
            fn adapt(self) -> $t {
                self
            }
        })*
    };
}
same!(String, bool, u8, u16, u32, u64, i64, f64, (String, String));

impl<A: Adapt<B>, B> Adapt<Vec<B>> for Vec<A> {
    fn adapt(self) -> Vec<B> {
        self.into_iter().map(Adapt::adapt).collect()
    }
}

impl<A: Adapt<B>, B> Adapt<Option<B>> for Option<A> {
    fn adapt(self) -> Option<B> {
        self.map(Adapt::adapt)
    }
}

/// `From` (and [`Adapt`]) between two records: the fields listed are
/// converted, the target's fields after `;` set to the given values; source
/// fields not listed are dropped.
macro_rules! record {
    ($from:ty => $to:ty { $($field:ident),* $(,)? } $(; $($extra:ident: $value:expr),* $(,)?)?) => {
        impl From<$from> for $to {
            fn from(r: $from) -> Self {
                Self {
                    $($field: r.$field.adapt(),)*
                    $($($extra: $value,)*)?
                }
            }
        }
        impl Adapt<$to> for $from {
            fn adapt(self) -> $to {
                self.into()
            }
        }
    };
}

/// `From` (and [`Adapt`]) between two variants or enums whose cases (of the
/// source) have the same names in the target.
macro_rules! variant {
    ($from:ty => $to:ty { $($case:ident $(($x:ident))?),* $(,)? }) => {
        impl From<$from> for $to {
            fn from(v: $from) -> Self {
                type Source = $from;
                match v {
                    $(Source::$case $(($x))? => Self::$case $(($x.adapt()))?,)*
                }
            }
        }
        impl Adapt<$to> for $from {
            fn adapt(self) -> $to {
                self.into()
            }
        }
    };
}

// What a 0.1.0 guest asks: 0.1.0 → 0.2.0.

variant!(v01::log::Level => v02::log::Level { Trace, Debug, Info, Warn, Error });
variant!(v01::tcp::Starttls => v02::tcp::Starttls { Smtp, Imap, Pop3 });
variant!(v01::dns::RecordType => v02::dns::RecordType { A, Aaaa, Cname, Mx, Txt, Ns, Soa, Caa, Srv });
record!(v01::dns::DnsQuery => v02::dns::DnsQuery { name, record_type, server, timeout_ms };
    transport: v02::dns::DnsTransport::Udp,
    recursion_desired: true,
);

/// TLS options with only what 0.1.0 could ask for.
fn tls_options(
    server_name: Option<String>,
    ca_bundle_pem: Option<String>,
    client_cert_secret: Option<String>,
    insecure: bool,
) -> v02::tls::TlsOptions {
    v02::tls::TlsOptions {
        server_name,
        ca_bundle_pem,
        client_cert_secret,
        insecure,
        min_version: None,
        max_version: None,
    }
}

impl From<v01::http::Request> for v02::http::Request {
    fn from(r: v01::http::Request) -> Self {
        v02::http::Request {
            tls: tls_options(None, None, r.client_cert_secret, r.insecure),
            method: r.method,
            url: r.url,
            headers: r.headers,
            body: r.body,
            timeout_ms: r.timeout_ms,
            follow_redirects: r.follow_redirects,
            max_redirects: r.max_redirects,
            max_body_bytes: r.max_body_bytes,
            proxy: None,
            compression: None,
            // 0.1.0 offered HTTP/2 by ALPN on every `https://` request.
            http2: true,
            ip: v02::http::IpPreference {
                preferred: None,
                fallback: true,
            },
        }
    }
}

impl From<v01::tls::TlsRequest> for v02::tls::TlsRequest {
    fn from(r: v01::tls::TlsRequest) -> Self {
        v02::tls::TlsRequest {
            options: tls_options(r.server_name, r.ca_bundle_pem, r.client_cert_secret, false),
            host: r.host,
            port: r.port,
            alpn: r.alpn,
            timeout_ms: r.timeout_ms,
        }
    }
}

impl From<v01::tcp::TcpRequest> for v02::tcp::TcpRequest {
    /// 0.1.0's conversation as steps: the banner (not with `starttls`,
    /// whose dialogue reads the greeting itself), then `send` and its reply.
    /// `expect` is matched by the caller against everything received.
    fn from(r: v01::tcp::TcpRequest) -> Self {
        let mut steps = Vec::new();
        if r.read_banner && r.starttls.is_none() {
            steps.push(v02::tcp::TcpStep::Read);
        }
        if let Some(bytes) = r.send {
            steps.push(v02::tcp::TcpStep::Send(bytes));
            steps.push(v02::tcp::TcpStep::Read);
        }
        v02::tcp::TcpRequest {
            host: r.host,
            port: r.port,
            steps,
            starttls: r.starttls.map(Into::into),
            tls: r.tls,
            tls_options: tls_options(None, None, None, false),
            timeout_ms: r.timeout_ms,
            // 0.1.0 connected to whatever the resolver returned first.
            ip: v02::http::IpPreference {
                preferred: None,
                fallback: true,
            },
        }
    }
}

// What the host answers: 0.2.0 → 0.1.0.

variant!(v02::common::NetError => v01::types::NetError {
    InvalidRequest(x), Denied(x), Dns(x), Connect(x), Tls(x), Timeout(x),
    BodyTooLarge(x), TooManyRedirects(x), Protocol(x), LimitExceeded(x), Unsupported(x),
});
variant!(v02::secrets::SecretError => v01::secrets::SecretError { NotGranted(x), Unavailable(x) });
variant!(v02::tls::Verdict => v01::tls::Verdict {
    Valid, Expired, NotYetValid, UnknownIssuer, HostnameMismatch, IncompleteChain, Revoked, Other(x),
});
record!(v02::tls::Certificate => v01::tls::Certificate {
    subject, issuer, sans, serial, not_before_unix_ms, not_after_unix_ms,
    signature_algorithm, key_type, key_bits, sha256_fingerprint,
});
record!(v02::tls::TlsInfo => v01::tls::TlsInfo {
    version, cipher_suite, alpn, chain, earliest_expiry_unix_ms, verdict,
});
record!(v02::tls::TlsTimings => v01::tls::TlsTimings { resolve_ms, connect_ms, handshake_ms });
record!(v02::tls::TlsReport => v01::tls::TlsReport { info, remote_addr, timings });
variant!(v02::http::HttpVersion => v01::http::HttpVersion { Http10, Http11, Http2 });
record!(v02::http::Timings => v01::http::Timings {
    resolve_ms, connect_ms, tls_ms, processing_ms, transfer_ms, total_ms,
});
record!(v02::http::Redirect => v01::http::Redirect { url, status, location });
record!(v02::http::Response => v01::http::Response {
    status, headers, body, version, remote_addr, url, timings, redirects, tls,
});

/// A record type 0.1.0 knows, or `None`.
fn record_type_v01(t: v02::dns::RecordType) -> Option<v01::dns::RecordType> {
    use v01::dns::RecordType as Old;
    use v02::dns::RecordType as New;
    Some(match t {
        New::A => Old::A,
        New::Aaaa => Old::Aaaa,
        New::Cname => Old::Cname,
        New::Mx => Old::Mx,
        New::Txt => Old::Txt,
        New::Ns => Old::Ns,
        New::Soa => Old::Soa,
        New::Caa => Old::Caa,
        New::Srv => Old::Srv,
        New::Ptr | New::Dnskey | New::Ds | New::Https | New::Svcb => return None,
    })
}

impl From<v02::dns::DnsAnswer> for v01::dns::DnsAnswer {
    /// The answer section in 0.1.0's terms: records of types it does not
    /// know are left out, as 0.1.0 documents.
    fn from(a: v02::dns::DnsAnswer) -> Self {
        v01::dns::DnsAnswer {
            rcode: a.rcode,
            records: a
                .records
                .into_iter()
                .filter_map(|r| {
                    Some(v01::dns::DnsRecord {
                        record_type: record_type_v01(r.record_type)?,
                        name: r.name,
                        ttl: r.ttl,
                        data: r.data,
                    })
                })
                .collect(),
            server: a.server,
            duration_ms: a.duration_ms,
        }
    }
}

// The world's exports: what the runtime gives a 0.1.0 component's `run`
// (0.2.0 → 0.1.0) and takes from its `describe` and `run` (0.1.0 → 0.2.0).

variant!(v02::common::Mode => v01::types::Mode { Edge, Restore });
record!(v02::common::RunContext => v01::types::RunContext {
    check_name, targets, config, location, mode, timeout_ms, run_id,
});
variant!(v01::types::Mode => v02::common::Mode { Edge, Restore });
variant!(v01::types::Status => v02::common::Status { Pass, Degraded, Fail });
record!(v01::types::Measurement => v02::common::Measurement { name, value, unit };
    labels: Vec::new(),
);
record!(v01::types::CheckResult => v02::common::CheckResult {
    status, summary, assertions, measurements, labels,
});
record!(v01::types::Capabilities => v02::common::Capabilities { outbound, secrets });
record!(v01::types::ConfigKey => v02::common::ConfigKey { key, description, default, required };
    value_type: v02::common::ValueType::Text,
    repeated: false,
    sensitive: false,
);
record!(v01::types::Metadata => v02::common::Metadata {
    name, version, description, capabilities, config, modes,
});

impl From<v01::types::Assertion> for v02::common::Assertion {
    fn from(a: v01::types::Assertion) -> Self {
        v02::common::Assertion {
            name: a.name,
            state: if a.passed {
                v02::common::AssertionState::Pass
            } else {
                v02::common::AssertionState::Fail
            },
            detail: a.detail,
            duration_ms: a.duration_ms,
        }
    }
}

impl Adapt<v02::common::Assertion> for v01::types::Assertion {
    fn adapt(self) -> v02::common::Assertion {
        self.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp_request(read_banner: bool, send: Option<&[u8]>) -> v01::tcp::TcpRequest {
        v01::tcp::TcpRequest {
            host: "127.0.0.1".into(),
            port: 25,
            send: send.map(<[u8]>::to_vec),
            read_banner,
            expect: Some("^220".into()),
            starttls: None,
            tls: false,
            timeout_ms: Some(1000),
        }
    }

    #[test]
    fn compat_tcp_conversations_become_read_and_send_steps() {
        use v02::tcp::TcpStep::{Read, Send};
        let steps = |r: v01::tcp::TcpRequest| v02::tcp::TcpRequest::from(r).steps;
        assert!(steps(tcp_request(false, None)).is_empty());
        assert!(matches!(steps(tcp_request(true, None)).as_slice(), [Read]));
        assert!(matches!(
            steps(tcp_request(true, Some(b"PING\r\n"))).as_slice(),
            [Read, Send(b), Read] if b == b"PING\r\n"
        ));
        // With STARTTLS the dialogue reads the greeting: no banner step.
        let mut starttls = tcp_request(true, Some(b"NOOP\r\n"));
        starttls.starttls = Some(v01::tcp::Starttls::Smtp);
        let converted = v02::tcp::TcpRequest::from(starttls);
        assert!(matches!(converted.steps.as_slice(), [Send(_), Read]));
        assert!(matches!(converted.starttls, Some(v02::tcp::Starttls::Smtp)));
        // `expect` never becomes a step: it is matched on what was received.
        assert!(
            !steps(tcp_request(true, Some(b"x")))
                .iter()
                .any(|s| matches!(s, v02::tcp::TcpStep::Expect(_)))
        );
    }

    #[test]
    fn compat_http_tls_fields_move_into_tls_options() {
        let request = v01::http::Request {
            method: "GET".into(),
            url: "https://127.0.0.1/".into(),
            headers: vec![("a".into(), "b".into())],
            body: Some(b"x".to_vec()),
            timeout_ms: Some(5),
            follow_redirects: true,
            max_redirects: Some(3),
            max_body_bytes: Some(7),
            insecure: true,
            client_cert_secret: Some("client".into()),
        };
        let r = v02::http::Request::from(request);
        assert!(r.tls.insecure);
        assert_eq!(r.tls.client_cert_secret.as_deref(), Some("client"));
        assert_eq!((r.tls.server_name, r.tls.ca_bundle_pem), (None, None));
        assert_eq!((r.max_redirects, r.max_body_bytes), (Some(3), Some(7)));
        assert_eq!(r.headers, vec![("a".to_string(), "b".to_string())]);
        assert!(r.http2 && r.proxy.is_none() && r.compression.is_none());
        assert!(r.ip.preferred.is_none());
    }

    #[test]
    fn compat_errors_and_answers_go_back_in_0_1_terms() {
        let e: v01::types::NetError = v02::common::NetError::TooManyRedirects(2).into();
        assert!(matches!(e, v01::types::NetError::TooManyRedirects(2)));
        let e: v01::types::NetError = v02::common::NetError::Denied("rule".into()).into();
        assert!(matches!(e, v01::types::NetError::Denied(s) if s == "rule"));
        let e: v01::secrets::SecretError =
            v02::secrets::SecretError::NotGranted("token".into()).into();
        assert!(matches!(e, v01::secrets::SecretError::NotGranted(s) if s == "token"));

        let record = |t, data: &str| v02::dns::DnsRecord {
            name: "x.test.".into(),
            record_type: t,
            ttl: 60,
            data: data.into(),
        };
        let answer = v01::dns::DnsAnswer::from(v02::dns::DnsAnswer {
            rcode: "NOERROR".into(),
            records: vec![
                record(v02::dns::RecordType::Cname, "y.test."),
                record(v02::dns::RecordType::Https, "1 . alpn=h2"),
                record(v02::dns::RecordType::A, "192.0.2.1"),
            ],
            authority: vec![record(v02::dns::RecordType::Ns, "ns.test.")],
            additional: Vec::new(),
            server: "127.0.0.1:53".into(),
            duration_ms: 1.5,
        });
        // Types 0.1.0 does not know are left out, as it documents.
        let data: Vec<&str> = answer.records.iter().map(|r| r.data.as_str()).collect();
        assert_eq!(data, ["y.test.", "192.0.2.1"]);
        assert_eq!(answer.server, "127.0.0.1:53");
    }

    #[test]
    fn compat_results_take_0_2_shape() {
        let result = v02::common::CheckResult::from(v01::types::CheckResult {
            status: v01::types::Status::Degraded,
            summary: "s".into(),
            assertions: vec![
                v01::types::Assertion {
                    name: "held".into(),
                    passed: true,
                    detail: String::new(),
                    duration_ms: Some(1.0),
                },
                v01::types::Assertion {
                    name: "broke".into(),
                    passed: false,
                    detail: "got 500".into(),
                    duration_ms: None,
                },
            ],
            measurements: vec![v01::types::Measurement {
                name: "latency".into(),
                value: 3.0,
                unit: "ms".into(),
            }],
            labels: vec![("k".into(), "v".into())],
        });
        assert!(matches!(result.status, v02::common::Status::Degraded));
        let states: Vec<_> = result.assertions.iter().map(|a| a.state).collect();
        assert_eq!(
            states,
            [
                v02::common::AssertionState::Pass,
                v02::common::AssertionState::Fail
            ]
        );
        assert_eq!(result.assertions[0].duration_ms, Some(1.0));
        assert!(result.measurements[0].labels.is_empty());
        assert_eq!(result.labels, vec![("k".to_string(), "v".to_string())]);

        let key = v02::common::ConfigKey::from(v01::types::ConfigKey {
            key: "expect.status".into(),
            description: "d".into(),
            default: Some("200".into()),
            required: false,
        });
        assert!(matches!(key.value_type, v02::common::ValueType::Text));
        assert_eq!(key.default.as_deref(), Some("200"));
        assert!(!key.sensitive);
    }
}
