//! The target every probe fetches: a separate process (`vantage-bench
//! target`, so its CPU is never counted as the prober's) serving a small
//! fixed JSON body over HTTP/1.1 and HTTPS (TLS 1.3, ECDSA P-256 leaf signed
//! by a test CA, ALPN `http/1.1` only, so every client speaks the same
//! protocol) on 127.0.0.1. `GET /__stats` answers
//! `<connections> <requests>` accepted so far, so the benchmark can prove
//! each probe opened its own connection.

use std::convert::Infallible;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;

use crate::sys::{ChildGuard, TempDir};

/// The body served: small and fixed.
pub const BODY: &str = r#"{"status": "ok", "service": "vantage-bench", "version": "1.0.0"}"#;

/// The regular expression every prober asserts on the body.
pub const BODY_REGEX: &str = r#""status":\s*"ok""#;

/// A running target process and what a client needs to reach it.
pub struct Target {
    _process: ChildGuard,
    /// `http://127.0.0.1:PORT`
    pub http: String,
    /// `https://127.0.0.1:PORT`
    pub https: String,
    /// The test CA (PEM file) that signed the HTTPS certificate.
    pub ca_file: PathBuf,
    /// Process id.
    pub pid: u32,
    _certs: TempDir,
}

impl Target {
    /// Generate the certificates (openssl) and start the target process.
    pub fn start() -> anyhow::Result<Target> {
        let certs = TempDir::new("certs")?;
        make_certs(certs.path())?;
        let exe = std::env::current_exe()?;
        let mut command = Command::new(exe);
        command
            .arg("target")
            .arg("--cert-dir")
            .arg(certs.path())
            .stdout(Stdio::piped());
        let mut process = ChildGuard::spawn("target", &mut command)?;
        let stdout = process.child.stdout.take().context("target stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let ports: Vec<u16> = line
            .strip_prefix("READY ")
            .with_context(|| format!("target said {line:?}"))?
            .split_whitespace()
            .map(str::parse)
            .collect::<Result<_, _>>()?;
        let pid = process.pid();
        Ok(Target {
            _process: process,
            http: format!("http://127.0.0.1:{}", ports[0]),
            https: format!("https://127.0.0.1:{}", ports[1]),
            ca_file: certs.path().join("ca.pem"),
            pid,
            _certs: certs,
        })
    }

    /// Connections and requests the target has accepted so far (over
    /// HTTP; this query counts as one of each).
    pub async fn counters(&self) -> anyhow::Result<(u64, u64)> {
        let client = reqwest::Client::builder().no_proxy().build()?;
        let text = client
            .get(format!("{}/__stats", self.http))
            .send()
            .await?
            .text()
            .await?;
        let mut it = text.split_whitespace().map(str::parse::<u64>);
        match (it.next(), it.next()) {
            (Some(Ok(c)), Some(Ok(r))) => Ok((c, r)),
            _ => anyhow::bail!("bad /__stats answer {text:?}"),
        }
    }
}

/// A test CA and a leaf for 127.0.0.1 / localhost, ECDSA P-256, with
/// openssl (`ca.pem`, `leaf.pem`, `leaf.key` in `dir`).
fn make_certs(dir: &Path) -> anyhow::Result<()> {
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=critical,CA:FALSE\n\
         keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
    )?;
    let steps: [&[&str]; 5] = [
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            "ca.key",
        ],
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            "ca.key",
            "-subj",
            "/CN=vantage-bench test CA",
            "-days",
            "7",
            "-out",
            "ca.pem",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            "leaf.key",
        ],
        &[
            "req",
            "-new",
            "-key",
            "leaf.key",
            "-subj",
            "/CN=127.0.0.1",
            "-out",
            "leaf.csr",
        ],
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "7",
            "-extfile",
            "leaf.ext",
            "-out",
            "leaf.pem",
        ],
    ];
    for args in steps {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .context("cannot run openssl (apt-get install openssl)")?;
        anyhow::ensure!(
            out.status.success(),
            "openssl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// `vantage-bench target`: serve until stdin closes (the parent exited).
pub async fn serve(cert_dir: &Path) -> anyhow::Result<()> {
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(cert_dir.join("leaf.pem"))?.collect::<Result<_, _>>()?;
    let key = PrivateKeyDer::from_pem_file(cert_dir.join("leaf.key"))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));

    let http = TcpListener::bind("127.0.0.1:0").await?;
    let https = TcpListener::bind("127.0.0.1:0").await?;
    println!(
        "READY {} {}",
        http.local_addr()?.port(),
        https.local_addr()?.port()
    );
    let counters = Arc::new((AtomicU64::new(0), AtomicU64::new(0)));

    let plain = {
        let counters = counters.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = http.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                counters.0.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(serve_connection(stream, counters.clone()));
            }
        })
    };
    let secure = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = https.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            counters.0.fetch_add(1, Ordering::Relaxed);
            let (acceptor, counters) = (acceptor.clone(), counters.clone());
            tokio::spawn(async move {
                if let Ok(stream) = acceptor.accept(stream).await {
                    serve_connection(stream, counters).await;
                }
            });
        }
    });
    // Exit when the parent goes away (it holds our stdin).
    tokio::task::spawn_blocking(|| {
        let mut sink = String::new();
        while std::io::stdin().read_line(&mut sink).is_ok_and(|n| n > 0) {}
    })
    .await?;
    plain.abort();
    secure.abort();
    Ok(())
}

async fn serve_connection<S>(stream: S, counters: Arc<(AtomicU64, AtomicU64)>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let requests = counters.1.fetch_add(1, Ordering::Relaxed) + 1;
        let body = if req.uri().path() == "/__stats" {
            format!("{} {requests}", counters.0.load(Ordering::Relaxed))
        } else {
            BODY.to_string()
        };
        async move {
            Ok::<_, Infallible>(
                Response::builder()
                    .header("content-type", "application/json")
                    .body(Full::new(Bytes::from(body)))
                    .expect("a valid response"),
            )
        }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await;
}
