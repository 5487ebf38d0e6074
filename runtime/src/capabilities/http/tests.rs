//! `http.fetch` against real servers on 127.0.0.1: TLS options (private
//! CAs, pinned self-signed certificates, server names, client certificates,
//! versions) and readable TLS errors, proxies (absolute form and CONNECT),
//! compression (and a decompression bomb), and failures that keep what was
//! learned (redirect cap, body cap, timeouts).
//!
//! TLS servers and certificates come from the e2e suite's
//! `tests/e2e/tls_servers.rs`; plain HTTP servers and the proxy are here.

use std::convert::Infallible;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Frame;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;
use crate::bindings::vantage::check::tls as wit_tls;
use crate::bindings::vantage::check::tls::Verdict;
use crate::capabilities::net::{HostResolver, NetBudget, NetLimits};
use crate::policy::AllowList;

use crate::capabilities::tls::tls_servers;
use tls_servers::{LOCAL, leaf, root};

fn net_with(patterns: &[&str], run: Duration) -> Net {
    Net {
        allow: Arc::new(AllowList::parse(patterns).unwrap()),
        budget: Arc::new(NetBudget::new(NetLimits::default())),
        resolver: Arc::new(HostResolver::default()),
        deadline: Instant::now() + run,
        denials: Arc::default(),
        tls: Arc::default(),
        http: Arc::default(),
        tape: Default::default(),
    }
}

fn state() -> HttpState {
    state_with(&["http://127.0.0.1:*", "https://127.0.0.1:*"], &[])
}

fn state_with(patterns: &[&str], secrets: &[(String, SecretSource)]) -> HttpState {
    HttpState::new(net_with(patterns, Duration::from_secs(30)), secrets, false)
}

fn no_tls() -> wit_tls::TlsOptions {
    wit_tls::TlsOptions {
        server_name: None,
        ca_bundle_pem: None,
        client_cert_secret: None,
        insecure: false,
        min_version: None,
        max_version: None,
    }
}

fn get(url: &str) -> wit::Request {
    wit::Request {
        method: "GET".into(),
        url: url.into(),
        headers: Vec::new(),
        body: None,
        timeout_ms: Some(5000),
        follow_redirects: true,
        max_redirects: None,
        max_body_bytes: None,
        tls: no_tls(),
        proxy: None,
        compression: None,
        http2: true,
        ip: wit::IpPreference {
            preferred: None,
            fallback: true,
        },
    }
}

fn with_ca(url: &str, pem: &str) -> wit::Request {
    let mut r = get(url);
    r.tls.ca_bundle_pem = Some(pem.to_string());
    r
}

/// Every message a failure carries reads as words.
fn assert_readable(m: &str) {
    for debug in ["Other(", "Error(", "OtherError", "{ ", "Context"] {
        assert!(!m.contains(debug), "debug string in {m:?}");
    }
}

fn tls_message(e: &wit::FetchError) -> String {
    match &e.error {
        NetError::Tls(m) => {
            assert_readable(m);
            m.clone()
        }
        other => panic!("expected a tls error, got {other:?}"),
    }
}

/// A self-signed certificate marked as a CA, for `names`, valid from
/// `from` to `to` days from now: what `openssl req -x509` makes.
fn ca_marked_self_signed(
    names: &[&str],
    from: i64,
    to: i64,
) -> (String, CertificateDer<'static>, PrivateKeyDer<'static>) {
    let mut p =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    p.distinguished_name.push(DnType::CommonName, names[0]);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.not_before = time::OffsetDateTime::now_utc() + time::Duration::days(from);
    p.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(to);
    let key = KeyPair::generate().unwrap();
    let cert = p.self_signed(&key).unwrap();
    (
        cert.pem(),
        cert.der().clone(),
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    )
}

#[tokio::test]
async fn tls_a_pinned_self_signed_ca_certificate_verifies_with_dates_and_name_checked() {
    let (pem, der, key) = ca_marked_self_signed(LOCAL, -1, 30);
    let port = tls_servers::start_tls(vec![der.clone()], key.clone_key()).await;
    let url = format!("https://127.0.0.1:{port}/");
    let s = state();

    // Pinned: verifies, the verified chain is the certificate itself.
    let r = s.fetch(with_ca(&url, &pem)).await.unwrap();
    assert_eq!(r.status, 200);
    let tls = r.tls.unwrap();
    assert!(matches!(tls.verdict, Verdict::Valid));
    assert_eq!(tls.verified_chain.len(), 1);
    assert_eq!(
        tls.verified_expiry_unix_ms,
        Some(tls.chain[0].not_after_unix_ms)
    );

    // Not pinned: unknown issuer, in words.
    let e = s.fetch(get(&url)).await.unwrap_err();
    let m = tls_message(&e);
    assert!(m.starts_with("unknown-issuer: unknown issuer"), "{m}");
    // The chain whose verification failed is reported.
    let tls = e.tls.unwrap();
    assert!(matches!(tls.verdict, Verdict::UnknownIssuer));
    assert_eq!(tls.chain.len(), 1);
    assert!(tls.verified_chain.is_empty());

    // Pinned, but asked under another name: the name is still checked.
    let mut r = with_ca(&url, &pem);
    r.tls.server_name = Some("other.test".into());
    let m = tls_message(&s.fetch(r).await.unwrap_err());
    assert!(
        m.starts_with("hostname-mismatch: certificate not valid for name other.test"),
        "{m}"
    );

    // Pinned, but expired: the dates are still checked.
    let (pem, der, key) = ca_marked_self_signed(LOCAL, -30, -1);
    let port = tls_servers::start_tls(vec![der], key).await;
    let e = s
        .fetch(with_ca(&format!("https://127.0.0.1:{port}/"), &pem))
        .await
        .unwrap_err();
    let m = tls_message(&e);
    assert!(m.starts_with("expired: certificate expired on "), "{m}");

    // A CA certificate used as a leaf that is NOT the pinned one (its issuer
    // is in the bundle, itself not) stays refused, in words.
    let other_root = root("Other Root");
    let e = s.fetch(with_ca(&url, &other_root.pem)).await.unwrap_err();
    assert_readable(&tls_message(&e));
}

#[tokio::test]
async fn tls_a_private_ca_and_a_server_name_verify_and_report_the_verified_chain() {
    let ca = root("Private Root");
    let l = leaf(&["a.test"], &ca, -1, 20);
    let port = tls_servers::start_tls(vec![l.der.clone()], l.key).await;
    let url = format!("https://127.0.0.1:{port}/");
    let s = state();

    let mut r = with_ca(&url, &ca.pem);
    r.tls.server_name = Some("a.test".into());
    let resp = s.fetch(r).await.unwrap();
    let tls = resp.tls.unwrap();
    assert!(matches!(tls.verdict, Verdict::Valid));
    // Leaf, then the anchor (which the server did not send).
    assert_eq!(tls.chain.len(), 1);
    assert_eq!(tls.verified_chain.len(), 2);
    assert_eq!(
        tls.verified_chain[1].subject,
        "CN=Private Root,O=Vantage Tests"
    );
    assert_eq!(tls.verified_expiry_unix_ms, tls.earliest_expiry_unix_ms);
    // The trace carries the TLS facts for the metrics.
    let trace = s.net.tls_traces().last().cloned().unwrap();
    assert_eq!(
        (trace.via.as_str(), trace.verdict.as_str()),
        ("http", "valid")
    );
    assert_eq!(trace.version, "TLSv1.3");
    assert_eq!(trace.verified_expiry_unix_ms, tls.verified_expiry_unix_ms);
    assert_eq!(trace.leaf.unwrap().sans, vec!["a.test".to_string()]);

    // Without the server name, the name is 127.0.0.1: readable mismatch.
    let m = tls_message(&s.fetch(with_ca(&url, &ca.pem)).await.unwrap_err());
    assert_eq!(
        m,
        "hostname-mismatch: certificate not valid for name 127.0.0.1 (it covers a.test)"
    );
    // The built-in roots do not know the private CA (and the leaf alone
    // looks like a chain missing its intermediate).
    let m = tls_message(&s.fetch(get(&url)).await.unwrap_err());
    assert!(m.starts_with("incomplete-chain: unknown issuer: "), "{m}");
    // A bad bundle is refused before connecting.
    match s.fetch(with_ca(&url, "not a pem")).await.unwrap_err().error {
        NetError::InvalidRequest(m) => assert!(m.contains("CA bundle"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn tls_expired_and_incomplete_chains_fail_in_words() {
    let ca = root("Words Root");
    let inter = tls_servers::intermediate("Words Intermediate", &ca, -1, 100);
    let s = state();

    let old = leaf(LOCAL, &ca, -10, -1);
    let port = tls_servers::start_tls(vec![old.der], old.key).await;
    let m = tls_message(
        &s.fetch(with_ca(&format!("https://127.0.0.1:{port}/"), &ca.pem))
            .await
            .unwrap_err(),
    );
    assert!(m.starts_with("expired: certificate expired on "), "{m}");

    let l = leaf(LOCAL, &inter, -1, 10);
    let port = tls_servers::start_tls(vec![l.der], l.key).await;
    let m = tls_message(
        &s.fetch(with_ca(&format!("https://127.0.0.1:{port}/"), &ca.pem))
            .await
            .unwrap_err(),
    );
    assert!(m.starts_with("incomplete-chain: "), "{m}");
    assert!(m.contains("intermediate"), "{m}");
}

#[tokio::test]
async fn tls_a_client_certificate_comes_from_a_granted_secret() {
    let ca = root("mTLS Root");
    let l = leaf(LOCAL, &ca, -1, 10);
    let (port, presented) = tls_servers::start_mtls(vec![l.der], l.key, ca.der.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("client.pem");
    std::fs::write(&file, tls_servers::client_pem(&ca)).unwrap();
    let s = state_with(
        &["https://127.0.0.1:*"],
        &[("client".into(), SecretSource::File(file))],
    );
    let mut r = with_ca(&format!("https://127.0.0.1:{port}/"), &ca.pem);
    r.tls.client_cert_secret = Some("client".into());
    // The mTLS server closes after the handshake: what matters is that it
    // saw the certificate.
    let _ = s.fetch(r).await;
    assert!(presented.load(std::sync::atomic::Ordering::SeqCst));
    let mut r = get(&format!("https://127.0.0.1:{port}/"));
    r.tls.client_cert_secret = Some("nope".into());
    assert!(matches!(
        s.fetch(r).await.unwrap_err().error,
        NetError::Denied(_)
    ));
}

#[tokio::test]
async fn tls_versions_and_http2_follow_the_request() {
    let ca = root("Versions Root");
    let l = leaf(LOCAL, &ca, -1, 10);
    let port = tls_servers::start_tls(vec![l.der.clone()], l.key.clone_key()).await;
    let url = format!("https://127.0.0.1:{port}/");
    let s = state();
    let mut r = with_ca(&url, &ca.pem);
    r.tls.max_version = Some(wit_tls::TlsVersion::Tls12);
    assert_eq!(s.fetch(r).await.unwrap().tls.unwrap().version, "TLSv1.2");
    let mut r = with_ca(&url, &ca.pem);
    r.tls.min_version = Some(wit_tls::TlsVersion::Tls13);
    assert_eq!(s.fetch(r).await.unwrap().tls.unwrap().version, "TLSv1.3");
    let mut r = with_ca(&url, &ca.pem);
    r.tls.min_version = Some(wit_tls::TlsVersion::Tls13);
    r.tls.max_version = Some(wit_tls::TlsVersion::Tls12);
    assert!(matches!(
        s.fetch(r).await.unwrap_err().error,
        NetError::InvalidRequest(_)
    ));

    // An h2-only server: HTTP/2 when offered; without it the server finds
    // no common protocol, and says so in words.
    let h2 = tls_servers::start_h2(vec![l.der], l.key).await;
    let url = format!("https://127.0.0.1:{h2}/");
    let resp = s.fetch(with_ca(&url, &ca.pem)).await.unwrap();
    assert!(matches!(resp.version, wit::HttpVersion::Http2));
    let mut r = with_ca(&url, &ca.pem);
    r.http2 = false;
    let m = tls_message(&s.fetch(r).await.unwrap_err());
    assert!(m.contains("no application protocol"), "{m}");
}

#[test]
fn tls_serial_numbers_keep_their_leading_zeros() {
    let mut p = CertificateParams::new(vec!["a.test".to_string()]).unwrap();
    p.serial_number = Some(rcgen::SerialNumber::from_slice(&[0x00, 0x8f, 0x01, 0x02]));
    let cert = p.self_signed(&KeyPair::generate().unwrap()).unwrap();
    let c = crate::capabilities::tls::parse_cert(cert.der()).unwrap();
    assert_eq!(c.serial, "008f0102");
}

/// A plain HTTP/1.1 server on 127.0.0.1 answering with `handler`.
async fn serve<F>(handler: F) -> u16
where
    F: Fn(http::Request<hyper::body::Incoming>) -> http::Response<BoxBody> + Send + Sync + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let handler = Arc::new(handler);
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let handler = handler.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let handler = handler.clone();
                    async move { Ok::<_, Infallible>(handler(req)) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    port
}

type BoxBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

fn full(body: impl Into<Bytes>) -> BoxBody {
    Full::new(body.into()).boxed()
}

fn response(status: u16, headers: &[(&str, &str)], body: BoxBody) -> http::Response<BoxBody> {
    let mut b = http::Response::builder().status(status);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(body).unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// A response body fed by a channel (one frame per message).
struct ChannelBody(tokio::sync::mpsc::Receiver<Bytes>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b))))
    }
}

/// 1 GiB of zeros, gzipped as it is sent (chunked): the server never holds
/// more than a chunk, and stops when the client goes away. Counts the
/// compressed bytes it handed to the connection.
fn gzip_bomb(sent: Arc<std::sync::atomic::AtomicU64>) -> BoxBody {
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(2);
    std::thread::spawn(move || {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..1024 {
            e.write_all(&zeros).unwrap();
            let chunk = std::mem::take(e.get_mut());
            let n = chunk.len() as u64;
            if !chunk.is_empty() && tx.blocking_send(chunk.into()).is_err() {
                return;
            }
            sent.fetch_add(n, std::sync::atomic::Ordering::SeqCst);
        }
        let _ = tx.blocking_send(e.finish().unwrap().into());
    });
    ChannelBody(rx).boxed()
}

/// Text that compresses well.
fn text() -> Vec<u8> {
    b"compressible text, compressible text; ".repeat(500)
}

/// `/gzip`, `/deflate`, `/br`, `/zstd`: [`text`] in that encoding;
/// `/plain`: unencoded; `/bomb`: [`gzip_bomb`].
async fn compression_server(sent: Arc<std::sync::atomic::AtomicU64>) -> u16 {
    serve(move |req| {
        let t = text();
        let (encoding, body): (&str, Vec<u8>) = match req.uri().path() {
            "/gzip" => ("gzip", gzip(&t)),
            "/deflate" => {
                let mut e =
                    flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(&t).unwrap();
                ("deflate", e.finish().unwrap())
            }
            "/br" => {
                let mut out = Vec::new();
                brotli::BrotliCompress(
                    &mut &t[..],
                    &mut out,
                    &brotli::enc::BrotliEncoderParams::default(),
                )
                .unwrap();
                ("br", out)
            }
            "/zstd" => (
                "zstd",
                ruzstd::encoding::compress_to_vec(
                    &t[..],
                    ruzstd::encoding::CompressionLevel::Fastest,
                ),
            ),
            "/bomb" => {
                return response(
                    200,
                    &[("content-encoding", "gzip")],
                    gzip_bomb(sent.clone()),
                );
            }
            _ => return response(200, &[], full(t)),
        };
        response(200, &[("content-encoding", encoding)], full(body))
    })
    .await
}

#[tokio::test]
async fn compress_every_encoding_is_asked_for_and_decoded() {
    let port = compression_server(Arc::default()).await;
    let s = state();
    for (path, c) in [
        ("gzip", wit::Compression::Gzip),
        ("deflate", wit::Compression::Deflate),
        ("br", wit::Compression::Br),
        ("zstd", wit::Compression::Zstd),
    ] {
        let mut r = get(&format!("http://127.0.0.1:{port}/{path}"));
        r.compression = Some(c);
        let resp = s.fetch(r).await.unwrap();
        assert_eq!(resp.body, text(), "{path}");
        assert_eq!(resp.decoded_from, Some(c), "{path}");
        assert!(resp.wire_body_bytes < text().len() as u64 / 4, "{path}");
    }
    // Without `compression` nothing is decoded.
    let resp = s
        .fetch(get(&format!("http://127.0.0.1:{port}/plain")))
        .await
        .unwrap();
    assert_eq!(resp.decoded_from, None);
    assert_eq!(resp.wire_body_bytes, text().len() as u64);
}

#[tokio::test]
async fn compress_a_mismatched_encoding_is_a_protocol_error() {
    let port = compression_server(Arc::default()).await;
    let s = state();
    let mut r = get(&format!("http://127.0.0.1:{port}/br"));
    r.compression = Some(wit::Compression::Gzip);
    let e = s.fetch(r).await.unwrap_err();
    match &e.error {
        NetError::Protocol(m) => {
            assert_eq!(m, "asked for gzip content, the response is encoded as br")
        }
        other => panic!("{other:?}"),
    }
    // The response that came is kept.
    assert_eq!(e.response.unwrap().status, 200);
    let mut r = get(&format!("http://127.0.0.1:{port}/plain"));
    r.compression = Some(wit::Compression::Zstd);
    let e = s.fetch(r).await.unwrap_err();
    match &e.error {
        NetError::Protocol(m) => assert!(m.contains("not encoded"), "{m}"),
        other => panic!("{other:?}"),
    }
    // The plain body that came instead is kept as it came.
    assert_eq!(e.response.unwrap().body, text());
}

#[tokio::test]
async fn compress_a_decompression_bomb_ends_at_the_decoded_cap() {
    let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let port = compression_server(sent.clone()).await;
    let s = state();
    let mut r = get(&format!("http://127.0.0.1:{port}/bomb"));
    r.compression = Some(wit::Compression::Gzip);
    r.max_body_bytes = Some(1 << 20);
    let started = Instant::now();
    let e = s.fetch(r).await.unwrap_err();
    let took = started.elapsed();
    assert!(
        matches!(e.error, NetError::BodyTooLarge(n) if n == 1 << 20),
        "{:?}",
        e.error
    );
    let resp = e.response.unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body.len(), 1 << 20);
    assert!(resp.body.iter().all(|b| *b == 0));
    // 1 GiB of zeros is ~1 MiB gzipped: only the start was read.
    assert!(resp.wire_body_bytes < 256 << 10, "{}", resp.wire_body_bytes);
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[tokio::test]
async fn http_the_redirect_cap_keeps_the_last_redirect_and_the_list() {
    let port = serve(|req| {
        let n: u32 = req
            .uri()
            .path()
            .trim_start_matches("/r/")
            .parse()
            .unwrap_or(0);
        response(
            302,
            &[("location", &format!("/r/{}", n + 1))],
            full("moved"),
        )
    })
    .await;
    let s = state();
    let mut r = get(&format!("http://127.0.0.1:{port}/r/0"));
    r.max_redirects = Some(2);
    let e = s.fetch(r).await.unwrap_err();
    assert!(matches!(e.error, NetError::TooManyRedirects(2)));
    let last = e.response.unwrap();
    assert_eq!(last.status, 302);
    assert_eq!(last.url, format!("http://127.0.0.1:{port}/r/2"));
    assert_eq!(last.body, b"moved");
    assert_eq!(e.redirects.len(), 2);
    assert_eq!(e.redirects[1].location, "/r/2");
    assert!(e.timings.connect_ms > 0.0 && e.timings.total_ms > 0.0);
    let trace = s.net.http_traces().0.last().cloned().unwrap();
    assert_eq!((trace.status, trace.redirects), (Some(302), 2));
}

#[tokio::test]
async fn http_a_body_too_large_keeps_status_headers_and_the_body_cut_at_the_cap() {
    let port = serve(|_| response(201, &[("x-kind", "big")], full(vec![b'x'; 4096]))).await;
    let s = state();
    let mut r = get(&format!("http://127.0.0.1:{port}/"));
    r.max_body_bytes = Some(1000);
    let e = s.fetch(r).await.unwrap_err();
    assert!(matches!(e.error, NetError::BodyTooLarge(1000)));
    let resp = e.response.unwrap();
    assert_eq!(resp.status, 201);
    assert!(resp.headers.contains(&("x-kind".into(), "big".into())));
    assert_eq!(resp.body.len(), 1000);
}

/// A server that answers after `delay`, then sends half a body and stalls.
async fn slow_server(delay: Duration) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = tcp.read(&mut buf).await;
                tokio::time::sleep(delay).await;
                let _ = tcp
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhalf")
                    .await;
                tokio::time::sleep(Duration::from_secs(30)).await;
            });
        }
    });
    port
}

#[tokio::test]
async fn http_a_timeout_keeps_the_phases_measured_so_far() {
    // Slow to answer: the timeout cuts `processing`, which is measured.
    let port = slow_server(Duration::from_secs(30)).await;
    let s = state();
    let mut r = get(&format!("http://127.0.0.1:{port}/"));
    r.timeout_ms = Some(300);
    let e = s.fetch(r).await.unwrap_err();
    assert!(
        matches!(&e.error, NetError::Timeout(p) if p == "processing"),
        "{:?}",
        e.error
    );
    assert!(e.timings.processing_ms >= 250.0, "{:?}", e.timings);
    assert!(e.response.is_none());
    assert_eq!(
        s.net.http_traces().0.last().unwrap().timings.processing_ms,
        e.timings.processing_ms
    );

    // Answers, then stalls mid-body: the head and the half body are kept.
    let port = slow_server(Duration::from_millis(100)).await;
    let mut r = get(&format!("http://127.0.0.1:{port}/"));
    r.timeout_ms = Some(400);
    let e = s.fetch(r).await.unwrap_err();
    assert!(
        matches!(&e.error, NetError::Timeout(p) if p == "transfer"),
        "{:?}",
        e.error
    );
    let resp = e.response.unwrap();
    assert_eq!((resp.status, &resp.body[..]), (200, &b"half"[..]));
    // The server waited 100 ms, the rest of the 400 ms went to the body.
    let t = e.timings;
    assert!(t.processing_ms >= 80.0, "{t:?}");
    assert!(t.transfer_ms > 0.0, "{t:?}");
    assert!(t.processing_ms + t.transfer_ms >= 350.0, "{t:?}");
}

#[tokio::test]
async fn http_a_request_outliving_the_run_times_out_before_the_deadline() {
    let port = slow_server(Duration::from_secs(30)).await;
    let s = HttpState::new(
        net_with(&["http://127.0.0.1:*"], Duration::from_millis(1000)),
        &[],
        false,
    );
    let deadline = s.net.deadline;
    let mut r = get(&format!("http://127.0.0.1:{port}/"));
    r.timeout_ms = Some(10_000);
    let e = s.fetch(r).await.unwrap_err();
    assert!(matches!(&e.error, NetError::Timeout(p) if p == "processing"));
    // Room to report: the call ended well before the run's deadline.
    let left = deadline.saturating_duration_since(Instant::now());
    assert!(left > Duration::from_millis(20), "{left:?}");
    assert!(e.timings.processing_ms > 500.0, "{:?}", e.timings);
}

/// What a test proxy saw: request lines and the headers that came with
/// them.
type Seen = Arc<Mutex<Vec<String>>>;

/// A forwarding HTTP proxy on 127.0.0.1: `CONNECT host:port` opens a
/// tunnel (or is refused with 407 when `refuse`); an absolute-form request
/// is forwarded as is to its host. Records each request head.
async fn start_proxy(refuse: bool) -> (u16, Seen) {
    start_proxy_with(refuse, None).await
}

/// A stream a test proxy talks over (TCP, or TLS for an `https://` proxy).
trait ProxyIo: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> ProxyIo for T {}

/// [`start_proxy`], speaking TLS to its clients with `tls`.
async fn start_proxy_with(refuse: bool, tls: Option<tokio_rustls::TlsAcceptor>) -> (u16, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen: Seen = Arc::default();
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let log = log.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                let mut client: Box<dyn ProxyIo> = match tls {
                    None => Box::new(tcp),
                    Some(acceptor) => match acceptor.accept(tcp).await {
                        Ok(s) => Box::new(s),
                        Err(_) => return,
                    },
                };
                let mut head = Vec::new();
                let mut b = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if client.read(&mut b).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(b[0]);
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                log.lock().unwrap().push(head.clone());
                let line = head.lines().next().unwrap_or_default().to_string();
                let target = line
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or_default()
                    .to_string();
                if line.starts_with("CONNECT ") {
                    if refuse {
                        let _ = client
                            .write_all(b"HTTP/1.1 407 Proxy Authentication Required\r\ncontent-length: 0\r\n\r\n")
                            .await;
                        return;
                    }
                    let Ok(mut upstream) = TcpStream::connect(&target).await else {
                        let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
                        return;
                    };
                    let _ = client
                        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                        .await;
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                } else {
                    let url = url::Url::parse(&target).unwrap();
                    let addr = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap());
                    let mut upstream = TcpStream::connect(addr).await.unwrap();
                    upstream.write_all(head.as_bytes()).await.unwrap();
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                }
            });
        }
    });
    (port, seen)
}

fn via(mut r: wit::Request, proxy: u16) -> wit::Request {
    r.proxy = Some(wit::Proxy {
        url: format!("http://127.0.0.1:{proxy}"),
        headers: vec![("Proxy-Authorization".into(), "Basic dXNlcjpwdw==".into())],
    });
    r
}

#[tokio::test]
async fn proxy_plain_http_goes_in_absolute_form_with_the_proxy_headers() {
    let target = serve(|req| {
        let line = format!("{} {}", req.method(), req.uri());
        response(200, &[], full(line))
    })
    .await;
    let (proxy, seen) = start_proxy(false).await;
    let s = state();
    let resp = s
        .fetch(via(get(&format!("http://127.0.0.1:{target}/p?q=1")), proxy))
        .await
        .unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.remote_addr, format!("127.0.0.1:{proxy}"));
    let head = seen.lock().unwrap()[0].clone();
    assert!(
        head.starts_with(&format!("GET http://127.0.0.1:{target}/p?q=1 HTTP/1.1\r\n")),
        "{head}"
    );
    assert!(
        head.to_ascii_lowercase()
            .contains("proxy-authorization: basic dxnlcjpwdw=="),
        "{head}"
    );
}

#[tokio::test]
async fn proxy_https_goes_through_a_connect_tunnel_and_verifies_the_target() {
    let ca = root("Proxy Root");
    let l = leaf(LOCAL, &ca, -1, 10);
    let target = tls_servers::start_tls(vec![l.der], l.key).await;
    let (proxy, seen) = start_proxy(false).await;
    let s = state();
    let resp = s
        .fetch(via(
            with_ca(&format!("https://127.0.0.1:{target}/"), &ca.pem),
            proxy,
        ))
        .await
        .unwrap();
    assert_eq!(resp.status, 200);
    assert!(matches!(resp.tls.unwrap().verdict, Verdict::Valid));
    let head = seen.lock().unwrap()[0].clone();
    assert!(
        head.starts_with(&format!("CONNECT 127.0.0.1:{target} HTTP/1.1\r\n")),
        "{head}"
    );
    assert!(
        head.to_ascii_lowercase().contains("proxy-authorization:"),
        "{head}"
    );
    assert!(resp.timings.connect_ms > 0.0 && resp.timings.tls_ms > 0.0);

    // An https:// proxy: TLS to the proxy (verified with the same bundle),
    // then the tunnel, then TLS to the target inside it.
    let proxy_leaf = leaf(LOCAL, &ca, -1, 10);
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![proxy_leaf.der], proxy_leaf.key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let (tls_proxy, tls_seen) = start_proxy_with(false, Some(acceptor)).await;
    let mut r = with_ca(&format!("https://127.0.0.1:{target}/"), &ca.pem);
    r.proxy = Some(wit::Proxy {
        url: format!("https://127.0.0.1:{tls_proxy}"),
        headers: Vec::new(),
    });
    let resp = s.fetch(r).await.unwrap();
    assert_eq!(resp.status, 200);
    assert!(matches!(resp.tls.unwrap().verdict, Verdict::Valid));
    assert!(tls_seen.lock().unwrap()[0].starts_with("CONNECT "));
    // An https:// proxy the bundle does not vouch for is refused, naming it.
    let mut r = get(&format!("https://127.0.0.1:{target}/"));
    r.proxy = Some(wit::Proxy {
        url: format!("https://127.0.0.1:{tls_proxy}"),
        headers: Vec::new(),
    });
    match s.fetch(r).await.unwrap_err().error {
        NetError::Tls(m) => {
            assert!(
                m.starts_with(&format!("proxy https://127.0.0.1:{tls_proxy}: ")),
                "{m}"
            );
            assert_readable(&m);
        }
        other => panic!("{other:?}"),
    }

    // A proxy that refuses the tunnel: a connect error naming it.
    let (refusing, _) = start_proxy(true).await;
    let e = s
        .fetch(via(get(&format!("https://127.0.0.1:{target}/")), refusing))
        .await
        .unwrap_err();
    match e.error {
        NetError::Connect(m) => {
            assert!(
                m.contains(&format!("proxy http://127.0.0.1:{refusing}")),
                "{m}"
            );
            assert!(m.contains("407"), "{m}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn proxy_and_target_both_pass_the_outbound_policy() {
    let (proxy, seen) = start_proxy(false).await;
    // The proxy is not allowed: denied, naming the proxy, nothing sent.
    let s = state_with(&["http://127.0.0.1:1"], &[]);
    match s
        .fetch(via(get("http://127.0.0.1:1/"), proxy))
        .await
        .unwrap_err()
        .error
    {
        NetError::Denied(m) => assert!(
            m.starts_with(&format!("proxy http://127.0.0.1:{proxy}: ")),
            "{m}"
        ),
        other => panic!("{other:?}"),
    }
    // The proxy is allowed, the target is not: denied too.
    let s = state_with(&[&format!("http://127.0.0.1:{proxy}")], &[]);
    match s
        .fetch(via(get("http://example.test/"), proxy))
        .await
        .unwrap_err()
        .error
    {
        NetError::Denied(m) => assert!(m.contains("example.test"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(seen.lock().unwrap().is_empty());
    // Malformed proxy URLs are the request's fault.
    let mut r = get("http://127.0.0.1:1/");
    r.proxy = Some(wit::Proxy {
        url: "socks5://127.0.0.1:1".into(),
        headers: Vec::new(),
    });
    assert!(matches!(
        s.fetch(r).await.unwrap_err().error,
        NetError::InvalidRequest(_)
    ));
}
