//! The `tls` interface: connect, complete a handshake, and report what the
//! server presented — the chain, parsed, and the verification verdict — as
//! data.
//!
//! The same machinery serves `http.fetch` over https (which requires a valid
//! verdict unless `insecure`) and `tcp.probe` with `tls`/`starttls` (which
//! reports it): a [`RecordingVerifier`] verifies the presented chain with
//! webpki ([`verify`]), records it, the verdict and the path as verified,
//! and — in inspection mode — lets the handshake complete whatever the
//! verdict, so the chain can be read. The handshake signatures
//! (`verify_tls12_signature`/`verify_tls13_signature`) are always verified
//! for real: inspection never talks to a server that does not hold the key
//! of the certificate it presented.
//!
//! # Options
//!
//! Every caller takes the WIT `tls-options`: `server-name` (SNI and the
//! name verified; the connected host by default), `ca-bundle-pem` (trust
//! these CAs instead of the built-in webpki roots; a self-signed leaf
//! listed there is pinned, see [`verify`]), `client-cert-secret`,
//! `min-version`/`max-version` (TLS 1.2 and 1.3) and `insecure`.
//!
//! # Verdicts
//!
//! The first failure webpki reports decides the verdict (`Expired`,
//! `NotValidYet`, `NotValidForName`, `Revoked`, `UnknownIssuer`, anything
//! else is `other` with the reason in words). `UnknownIssuer` becomes
//! `incomplete-chain` when the top presented certificate (the last one) is
//! an end-entity certificate (not a CA, not self-signed) whose issuer is not
//! among the presented certificates: the server did not send the
//! intermediate. A chain whose top certificate is a CA (an intermediate of
//! an untrusted or private root) stays `unknown-issuer`, as does a
//! self-signed certificate.
//!
//! Every failure reads as words (`hostname-mismatch: certificate not valid
//! for name a.test (it covers localhost)`), never as a Rust debug string.

pub mod verify;

/// The e2e suite's TLS servers and certificates (`tests/e2e/tls_servers.rs`),
/// shared by the capabilities' tests.
#[cfg(test)]
#[allow(dead_code)]
#[path = "../../../tests/e2e/tls_servers.rs"]
pub(crate) mod tls_servers;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, CipherSuite, DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::client::TlsStream;
use wasmtime::component::{HasSelf, Linker};

use self::verify::{Trust, camel_words};
use super::net::{Net, Phase};
use crate::bindings::vantage::check::common::NetError;
use crate::bindings::vantage::check::tls as wit;
use crate::bindings::vantage::check::tls::{Certificate, TlsInfo, Verdict};
use crate::capabilities::CapabilitiesView;
use crate::config::SecretSource;

/// Timeout of an inspection when the request does not set one.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Per-run `tls` state.
#[derive(Debug)]
pub struct TlsState {
    net: Net,
    secrets: Vec<(String, SecretSource)>,
}

impl TlsState {
    /// State for one run.
    pub fn new(net: Net, secrets: &[(String, SecretSource)]) -> Self {
        TlsState {
            net,
            secrets: secrets.to_vec(),
        }
    }

    async fn inspect(&self, req: wit::TlsRequest) -> Result<wit::TlsReport, NetError> {
        let alpn = req.alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
        let options = TlsOptions::from_wit(&req.options, &req.host, &self.secrets, alpn, false)?;
        let config = options.config()?;
        let timeout = self.net.timeout(req.timeout_ms, DEFAULT_TIMEOUT);
        let mut phase = Phase::Resolve;
        let work = async {
            let conn = self
                .net
                .connect("tls", &req.host, req.port, &mut phase)
                .await?;
            phase = Phase::Tls;
            let t = Instant::now();
            let (_stream, info) = handshake(conn.stream, &options.server_name, config).await?;
            let server = format!("{}:{}", req.host, req.port);
            self.net.record_tls("tls", server, &info);
            Ok::<_, NetError>(wit::TlsReport {
                info,
                remote_addr: conn.remote_addr.to_string(),
                timings: wit::TlsTimings {
                    resolve_ms: ms(conn.resolve),
                    connect_ms: ms(conn.connect),
                    handshake_ms: ms(t.elapsed()),
                },
            })
        };
        match tokio::time::timeout(timeout, work).await {
            Ok(r) => r,
            Err(_) => Err(NetError::Timeout(phase.as_str().to_string())),
        }
    }
}

impl wit::Host for TlsState {
    async fn inspect(
        &mut self,
        request: wit::TlsRequest,
    ) -> wasmtime::Result<Result<wit::TlsReport, NetError>> {
        let (tape, net) = (self.net.tape.clone(), self.net.clone());
        let result = tape
            .exchange(
                "tls.inspect",
                |r: &wit::TlsRequest| format!("{}:{}", r.host, r.port),
                request,
                Some(&net),
                |r| TlsState::inspect(self, r),
            )
            .await?;
        self.net.note(&result);
        Ok(result)
    }
}

/// Register the `tls` interface.
pub fn add_to_linker<T: CapabilitiesView>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    wit::add_to_linker::<T, HasSelf<TlsState>>(linker, |s| &mut s.caps().tls)
}

/// A client certificate chain and its key.
pub type ClientCert = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

/// Read the granted secret `name` and parse it as PEM certificate chain + key.
pub fn client_cert(secrets: &[(String, SecretSource)], name: &str) -> Result<ClientCert, NetError> {
    let source = secrets
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, s)| s)
        .ok_or_else(|| NetError::Denied(format!("secret {name:?} is not granted to this check")))?;
    let pem = super::secrets::read_source(source)
        .map_err(|e| NetError::InvalidRequest(format!("client certificate secret {name}: {e}")))?;
    let chain = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            NetError::InvalidRequest(format!("client certificate secret {name}: bad PEM: {e}"))
        })?;
    if chain.is_empty() {
        return Err(NetError::InvalidRequest(format!(
            "client certificate secret {name} holds no CERTIFICATE block"
        )));
    }
    let key = PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|e| {
        NetError::InvalidRequest(format!(
            "client certificate secret {name}: no private key: {e}"
        ))
    })?;
    Ok((chain, key))
}

/// How to set up one TLS client handshake.
pub struct TlsOptions {
    /// SNI and the name verified.
    pub server_name: String,
    /// ALPN protocols offered.
    pub alpn: Vec<Vec<u8>>,
    /// Roots to verify against instead of webpki-roots (each certificate
    /// also pinned as a leaf).
    pub ca_bundle_pem: Option<String>,
    /// Client certificate to present.
    pub client_cert: Option<ClientCert>,
    /// Fail the handshake unless the verdict is `valid` (http); otherwise
    /// complete it and report the verdict (inspection).
    pub require_valid: bool,
    /// Lowest protocol version offered (TLS 1.2 by default).
    pub min_version: Option<wit::TlsVersion>,
    /// Highest protocol version offered (TLS 1.3 by default).
    pub max_version: Option<wit::TlsVersion>,
}

impl TlsOptions {
    /// The host's options from a request's WIT `tls-options`, for a
    /// connection to `host`: the server name defaults to `host`, the client
    /// certificate is read from its granted secret. `insecure` is the
    /// caller's business (it decides `require_valid`).
    pub fn from_wit(
        options: &wit::TlsOptions,
        host: &str,
        secrets: &[(String, SecretSource)],
        alpn: Vec<Vec<u8>>,
        require_valid: bool,
    ) -> Result<TlsOptions, NetError> {
        let server_name = match &options.server_name {
            Some(name) if name.trim().is_empty() => {
                return Err(NetError::InvalidRequest("tls server-name is empty".into()));
            }
            Some(name) => name.trim().to_string(),
            None => host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
        };
        let client_cert = match &options.client_cert_secret {
            Some(name) => Some(client_cert(secrets, name)?),
            None => None,
        };
        Ok(TlsOptions {
            server_name,
            alpn,
            ca_bundle_pem: options.ca_bundle_pem.clone(),
            client_cert,
            require_valid,
            min_version: options.min_version,
            max_version: options.max_version,
        })
    }
}

/// A client configuration for one connection, and the verifier that
/// records what that connection's server presented.
pub struct HandshakeConfig {
    config: Arc<rustls::ClientConfig>,
    verifier: Arc<RecordingVerifier>,
}

/// aws-lc-rs with rustls' defaults, except that AES-256-GCM/SHA-384 suites
/// come after the others (AES-128-GCM/SHA-256 first, as browsers and Go
/// order them; servers that follow the client's order, rustls' do, then pick
/// it).
///
/// Why: the handshake's transcript hash and key schedule (HKDF) then run on
/// SHA-256, which this CPU family computes in hardware (SHA-NI); SHA-384 has
/// no such instructions. Measured on the 2-core build machine (`vantage-bench
/// profile --fetch https --in-flight 8`): SHA-512 blocks were 9 % of the
/// prober's CPU per HTTPS probe with rustls' order.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    static PROVIDER: OnceLock<Arc<rustls::crypto::CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| {
            let mut provider = rustls::crypto::aws_lc_rs::default_provider();
            provider.cipher_suites.sort_by_key(|s| {
                matches!(
                    s.suite(),
                    CipherSuite::TLS13_AES_256_GCM_SHA384
                        | CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
                        | CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
                )
            });
            Arc::new(provider)
        })
        .clone()
}

/// Build the process-wide TLS state (crypto provider, the webpki roots)
/// now, so that no run pays for it inside a timed phase.
pub fn warm_up() {
    let _ = default_trust();
    // The first use of the crypto library initialises it (tens of ms):
    // draw random bytes and start one key exchange of each group now.
    let provider = provider();
    let _ = provider.secure_random.fill(&mut [0u8; 32]);
    for group in provider.kx_groups.iter() {
        let _ = group.start();
    }
}

/// Trust in the webpki-roots, built once.
fn default_trust() -> Arc<Trust> {
    static TRUST: OnceLock<Arc<Trust>> = OnceLock::new();
    TRUST
        .get_or_init(|| {
            Arc::new(Trust {
                anchors: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
                certs: Vec::new(),
                name: "the built-in roots",
            })
        })
        .clone()
}

/// The protocol versions from `min` to `max` (TLS 1.2 and 1.3 by default).
fn versions(
    min: Option<wit::TlsVersion>,
    max: Option<wit::TlsVersion>,
) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, NetError> {
    let rank = |v: wit::TlsVersion| match v {
        wit::TlsVersion::Tls12 => 0,
        wit::TlsVersion::Tls13 => 1,
    };
    let (lo, hi) = (min.map_or(0, rank), max.map_or(1, rank));
    if lo > hi {
        return Err(NetError::InvalidRequest(
            "tls min-version is above max-version".into(),
        ));
    }
    Ok([&rustls::version::TLS12, &rustls::version::TLS13][lo..=hi].to_vec())
}

impl TlsOptions {
    /// Build the client configuration (and a fresh recording verifier).
    pub fn config(&self) -> Result<HandshakeConfig, NetError> {
        let trust = match &self.ca_bundle_pem {
            None => default_trust(),
            Some(pem) => Arc::new(Trust::from_pem(pem).map_err(NetError::InvalidRequest)?),
        };
        let verifier = Arc::new(RecordingVerifier {
            trust,
            provider: provider(),
            require_valid: self.require_valid,
            seen: Mutex::new(None),
        });
        let builder = rustls::ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&versions(self.min_version, self.max_version)?)
            .map_err(|e| NetError::InvalidRequest(format!("tls versions: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(verifier.clone());
        let mut config = match &self.client_cert {
            None => builder.with_no_client_auth(),
            Some((chain, key)) => builder
                .with_client_auth_cert(chain.clone(), key.clone_key())
                .map_err(|e| {
                    NetError::InvalidRequest(format!("client certificate: {}", tls_words(&e)))
                })?,
        };
        config.alpn_protocols = self.alpn.clone();
        Ok(HandshakeConfig {
            config: Arc::new(config),
            verifier,
        })
    }
}

/// A handshake that did not complete: why, and what the server had
/// presented by then (the chain and its verdict, when verification is what
/// failed).
#[derive(Debug)]
pub struct HandshakeFailed {
    /// The error (`net-error::tls` with a readable message).
    pub error: NetError,
    /// What was seen of the server's certificates.
    pub info: Option<TlsInfo>,
}

/// Complete a TLS handshake over `stream` and summarise it. With a
/// `require_valid` configuration, a certificate problem fails with
/// `net-error::tls("<verdict>: <reason>")`; otherwise it is reported in the
/// verdict.
pub async fn handshake<S>(
    stream: S,
    server_name: &str,
    config: HandshakeConfig,
) -> Result<(TlsStream<S>, TlsInfo), NetError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    handshake_detailed(stream, server_name, config)
        .await
        .map_err(|f| f.error)
}

/// [`handshake`], keeping what was seen of a failed handshake.
pub async fn handshake_detailed<S>(
    stream: S,
    server_name: &str,
    config: HandshakeConfig,
) -> Result<(TlsStream<S>, TlsInfo), HandshakeFailed>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let bare = server_name.trim_start_matches('[').trim_end_matches(']');
    let name = ServerName::try_from(bare.to_string()).map_err(|_| HandshakeFailed {
        error: NetError::InvalidRequest(format!(
            "bad TLS server name {bare:?}: neither a DNS name nor an IP address"
        )),
        info: None,
    })?;
    let result = tokio_rustls::TlsConnector::from(config.config)
        .connect(name, stream)
        .await;
    let seen = config
        .verifier
        .seen
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    let stream = match result {
        Ok(s) => s,
        Err(e) => {
            let message = match &seen {
                Some(s) if !matches!(s.verdict, Verdict::Valid) => {
                    format!("{}: {}", verdict_label(&s.verdict), s.detail)
                }
                _ => handshake_error_words(&e),
            };
            return Err(HandshakeFailed {
                error: NetError::Tls(message),
                info: seen.map(|s| summary(s, String::new(), String::new(), None)),
            });
        }
    };
    let seen = seen.unwrap_or_else(|| Seen {
        chain: Vec::new(),
        verdict: Verdict::Other("the server presented no certificate".into()),
        detail: "the server presented no certificate".into(),
        verified: Vec::new(),
    });
    let (_, conn) = stream.get_ref();
    let version = conn
        .protocol_version()
        .map(|v| match v {
            rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".to_string(),
            rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".to_string(),
            other => camel_words(&format!("{other:?}")),
        })
        .unwrap_or_default();
    let cipher = conn
        .negotiated_cipher_suite()
        .map(|s| {
            s.suite()
                .as_str()
                .map_or_else(|| format!("{:?}", s.suite()), str::to_string)
        })
        .unwrap_or_default();
    let alpn = conn
        .alpn_protocol()
        .map(|p| String::from_utf8_lossy(p).into_owned());
    let info = summary(seen, version, cipher, alpn);
    Ok((stream, info))
}

fn summary(seen: Seen, version: String, cipher_suite: String, alpn: Option<String>) -> TlsInfo {
    let parse = |ders: &[CertificateDer<'static>]| -> Vec<Certificate> {
        ders.iter().filter_map(|c| parse_cert(c).ok()).collect()
    };
    let chain = parse(&seen.chain);
    let verified_chain = parse(&seen.verified);
    TlsInfo {
        version,
        cipher_suite,
        alpn,
        earliest_expiry_unix_ms: chain.iter().map(|c| c.not_after_unix_ms).min(),
        verified_expiry_unix_ms: verified_chain.iter().map(|c| c.not_after_unix_ms).min(),
        chain,
        verified_chain,
        verdict: seen.verdict,
    }
}

/// A failed handshake in words: the rustls error inside the I/O error, or
/// the I/O error itself.
fn handshake_error_words(e: &std::io::Error) -> String {
    if let Some(inner) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        return tls_words(inner);
    }
    match e.kind() {
        std::io::ErrorKind::UnexpectedEof => {
            "the server closed the connection during the TLS handshake".into()
        }
        std::io::ErrorKind::ConnectionReset => {
            "the server reset the connection during the TLS handshake".into()
        }
        _ => format!("handshake failed: {e}"),
    }
}

/// A rustls error in words, never a debug string.
pub fn tls_words(e: &rustls::Error) -> String {
    use rustls::Error as E;
    match e {
        E::AlertReceived(alert) => format!(
            "the server ended the handshake with alert \"{}\"",
            camel_words(&format!("{alert:?}"))
        ),
        E::PeerIncompatible(why) => format!(
            "the server is incompatible: {}",
            camel_words(&format!("{why:?}"))
        ),
        E::PeerMisbehaved(why) => format!(
            "the server broke the TLS protocol: {}",
            camel_words(&format!("{why:?}"))
        ),
        E::InvalidMessage(why) => format!(
            "the server sent an invalid TLS message: {}",
            camel_words(&format!("{why:?}"))
        ),
        E::NoCertificatesPresented => "the server presented no certificate".into(),
        E::InvalidCertificate(ce) => cert_error_words(ce),
        E::General(m) => m.clone(),
        E::HandshakeNotComplete => "the handshake did not complete".into(),
        E::PeerSentOversizedRecord => "the server sent an oversized TLS record".into(),
        E::DecryptError => "a TLS record could not be decrypted".into(),
        E::EncryptError => "a TLS record could not be encrypted".into(),
        E::NoApplicationProtocol => "the server supports none of the offered ALPN protocols".into(),
        other => camel_words(&format!("{other:?}")),
    }
}

/// A certificate error in words.
fn cert_error_words(e: &CertificateError) -> String {
    match e {
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            "certificate expired".into()
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "certificate not valid yet".into()
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            "certificate not valid for the requested name".into()
        }
        CertificateError::UnknownIssuer => "unknown issuer".into(),
        CertificateError::Revoked => "certificate revoked".into(),
        CertificateError::Other(other) => match other.0.downcast_ref::<webpki::Error>() {
            Some(w) => verify::webpki_words(w),
            None => other.0.to_string(),
        },
        other => camel_words(&format!("{other:?}")),
    }
}

/// What the result keeps of a handshake (see [`crate::result::TlsTrace`]).
pub fn trace(via: &'static str, server: String, info: &TlsInfo) -> crate::result::TlsTrace {
    crate::result::TlsTrace {
        via: via.to_string(),
        server,
        version: info.version.clone(),
        verdict: verdict_name(&info.verdict),
        earliest_expiry_unix_ms: info.earliest_expiry_unix_ms,
        verified_expiry_unix_ms: info.verified_expiry_unix_ms,
        leaf: info.chain.first().map(|c| crate::result::LeafCertificate {
            subject: c.subject.clone(),
            issuer: c.issuer.clone(),
            sans: c.sans.iter().filter(|n| is_dns_name(n)).cloned().collect(),
            serial: c.serial.clone(),
            sha256_fingerprint: c.sha256_fingerprint.clone(),
        }),
    }
}

/// Whether a subject alternative name as [`parse_cert`] writes it is a DNS
/// name (not an IP address, `email:`, `uri:` or another kind):
/// blackbox_exporter's `subjectalternative` label lists the DNS names only.
fn is_dns_name(name: &str) -> bool {
    name.parse::<std::net::IpAddr>().is_err() && !name.contains([':', ' ', '(', '='])
}

/// The verdict's WIT name, e.g. `unknown-issuer`; `other: <why>`.
pub fn verdict_name(v: &Verdict) -> String {
    match v {
        Verdict::Other(why) => format!("other: {why}"),
        v => verdict_label(v).into(),
    }
}

/// The verdict's WIT case name alone (`other` for any other failure).
pub fn verdict_label(v: &Verdict) -> &'static str {
    match v {
        Verdict::Valid => "valid",
        Verdict::Expired => "expired",
        Verdict::NotYetValid => "not-yet-valid",
        Verdict::UnknownIssuer => "unknown-issuer",
        Verdict::HostnameMismatch => "hostname-mismatch",
        Verdict::IncompleteChain => "incomplete-chain",
        Verdict::Revoked => "revoked",
        Verdict::Other(_) => "other",
    }
}

/// What one handshake's verifier saw.
#[derive(Debug)]
struct Seen {
    chain: Vec<CertificateDer<'static>>,
    verdict: Verdict,
    detail: String,
    verified: Vec<CertificateDer<'static>>,
}

/// Verifies the presented chain with webpki ([`verify::verify`]), records
/// it, the verdict and the verified path, and in inspection mode accepts any
/// chain (handshake signatures stay verified).
#[derive(Debug)]
pub struct RecordingVerifier {
    trust: Arc<Trust>,
    provider: Arc<rustls::crypto::CryptoProvider>,
    require_valid: bool,
    seen: Mutex<Option<Seen>>,
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let outcome = verify::verify(
            &self.trust,
            self.provider.signature_verification_algorithms.all,
            end_entity,
            intermediates,
            server_name,
            now,
        );
        let chain: Vec<CertificateDer<'static>> = std::iter::once(end_entity)
            .chain(intermediates)
            .map(|c| c.clone().into_owned())
            .collect();
        let error = match &outcome.verdict {
            Verdict::Valid => None,
            Verdict::Expired => Some(CertificateError::Expired),
            Verdict::NotYetValid => Some(CertificateError::NotValidYet),
            Verdict::UnknownIssuer | Verdict::IncompleteChain => {
                Some(CertificateError::UnknownIssuer)
            }
            Verdict::HostnameMismatch => Some(CertificateError::NotValidForName),
            Verdict::Revoked => Some(CertificateError::Revoked),
            Verdict::Other(_) => Some(CertificateError::BadEncoding),
        };
        *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = Some(Seen {
            chain,
            verdict: outcome.verdict,
            detail: outcome.detail,
            verified: outcome.verified,
        });
        match error {
            Some(e) if self.require_valid => Err(rustls::Error::InvalidCertificate(e)),
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Map a rustls verification error to a verdict (see the module docs).
pub fn verdict_of(e: &rustls::Error, chain: &[CertificateDer<'_>]) -> Verdict {
    let rustls::Error::InvalidCertificate(ce) = e else {
        return Verdict::Other(tls_words(e));
    };
    match ce {
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => Verdict::Expired,
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            Verdict::NotYetValid
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            Verdict::HostnameMismatch
        }
        CertificateError::Revoked => Verdict::Revoked,
        CertificateError::UnknownIssuer if looks_incomplete(chain) => Verdict::IncompleteChain,
        CertificateError::UnknownIssuer => Verdict::UnknownIssuer,
        other => Verdict::Other(cert_error_words(other)),
    }
}

/// The top presented certificate is an end-entity certificate, not
/// self-signed, and none of the presented certificates issued it.
fn looks_incomplete(chain: &[CertificateDer<'_>]) -> bool {
    use x509_parser::prelude::*;
    let parsed: Vec<X509Certificate<'_>> = chain
        .iter()
        .filter_map(|c| X509Certificate::from_der(c).ok().map(|(_, c)| c))
        .collect();
    let Some(top) = parsed.last() else {
        return false;
    };
    let self_signed = top.issuer().as_raw() == top.subject().as_raw();
    let issuer_presented = parsed
        .iter()
        .any(|c| c.subject().as_raw() == top.issuer().as_raw());
    !top.is_ca() && !self_signed && !issuer_presented
}

/// Parse one DER certificate into the WIT summary.
pub fn parse_cert(der: &[u8]) -> Result<Certificate, String> {
    use x509_parser::prelude::*;
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| e.to_string())?;
    let registry = x509_parser::objects::oid_registry();
    let mut sans = Vec::new();
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        for name in &ext.value.general_names {
            sans.push(match name {
                GeneralName::DNSName(d) => d.to_string(),
                GeneralName::IPAddress(b) => ip_string(b),
                GeneralName::RFC822Name(m) => format!("email:{m}"),
                GeneralName::URI(u) => format!("uri:{u}"),
                other => format!("{other}"),
            });
        }
    }
    let spki = cert.public_key();
    let key_oid = &spki.algorithm.algorithm;
    let (key_type, key_bits) = match spki.parsed() {
        Ok(x509_parser::public_key::PublicKey::RSA(k)) => ("RSA".to_string(), k.key_size()),
        Ok(x509_parser::public_key::PublicKey::EC(k)) => ("EC".to_string(), k.key_size()),
        Ok(x509_parser::public_key::PublicKey::DSA(y)) => ("DSA".to_string(), y.len() * 8),
        _ if *key_oid == x509_parser::oid_registry::OID_SIG_ED25519 => ("Ed25519".into(), 256),
        _ if *key_oid == x509_parser::oid_registry::OID_SIG_ED448 => ("Ed448".into(), 456),
        _ => (
            x509_parser::objects::oid2sn(key_oid, registry)
                .map(str::to_string)
                .unwrap_or_else(|_| key_oid.to_id_string()),
            0,
        ),
    };
    let sig_oid = &cert.signature_algorithm.algorithm;
    Ok(Certificate {
        subject: rfc4514(cert.subject()),
        issuer: rfc4514(cert.issuer()),
        sans,
        serial: hex::encode(cert.raw_serial()),
        not_before_unix_ms: cert.validity().not_before.timestamp() * 1000,
        not_after_unix_ms: cert.validity().not_after.timestamp() * 1000,
        signature_algorithm: x509_parser::objects::oid2sn(sig_oid, registry)
            .map(str::to_string)
            .unwrap_or_else(|_| sig_oid.to_id_string()),
        key_type,
        key_bits: key_bits as u32,
        sha256_fingerprint: hex::encode(Sha256::digest(der)),
    })
}

fn ip_string(b: &[u8]) -> String {
    match b.len() {
        4 => std::net::Ipv4Addr::from(<[u8; 4]>::try_from(b).unwrap()).to_string(),
        16 => std::net::Ipv6Addr::from(<[u8; 16]>::try_from(b).unwrap()).to_string(),
        _ => hex::encode(b),
    }
}

/// A distinguished name as blackbox_exporter writes it (Go's
/// `pkix.Name.String()`): RFC 4514 text, most specific first, with the
/// known attributes in Go's fixed order (`CN`, `OU`, `O`, `POSTALCODE`,
/// `STREET`, `L`, `ST`, `C`, whatever order the certificate has them in);
/// other attributes come first, multi-valued RDNs are joined with `+`,
/// special characters escaped. The same subject gives the same
/// `probe_ssl_last_chain_info` label on both.
fn rfc4514(name: &x509_parser::x509::X509Name<'_>) -> String {
    let registry = x509_parser::objects::oid_registry();
    let mut rdns: Vec<(usize, String)> = name
        .iter_rdn()
        .map(|rdn| {
            let rank = rdn.iter().next().map_or(GO_ORDER.len(), |atv| {
                go_rank(&atv.attr_type().to_id_string())
            });
            let text = rdn
                .iter()
                .map(|atv| {
                    let oid = atv.attr_type().to_id_string();
                    let ty = GO_ORDER
                        .iter()
                        .find(|(id, _)| *id == oid)
                        .map(|(_, name)| name.to_string())
                        .or_else(|| {
                            x509_parser::objects::oid2abbrev(atv.attr_type(), registry)
                                .ok()
                                .map(str::to_string)
                        })
                        .unwrap_or(oid);
                    let value = match atv.as_str() {
                        Ok(s) => escape_rfc4514(s),
                        Err(_) => format!("#{}", hex::encode(atv.attr_value().data)),
                    };
                    format!("{ty}={value}")
                })
                .collect::<Vec<_>>()
                .join("+");
            (rank, text)
        })
        .collect();
    // Go appends the known attributes in its order, then the others, and
    // prints the sequence last-first.
    rdns.sort_by_key(|(rank, _)| *rank);
    rdns.into_iter()
        .rev()
        .map(|(_, text)| text)
        .collect::<Vec<_>>()
        .join(",")
}

/// The attributes Go's `pkix.Name` knows, in the order it appends them,
/// with the names it prints.
const GO_ORDER: [(&str, &str); 9] = [
    ("2.5.4.6", "C"),
    ("2.5.4.8", "ST"),
    ("2.5.4.7", "L"),
    ("2.5.4.9", "STREET"),
    ("2.5.4.17", "POSTALCODE"),
    ("2.5.4.10", "O"),
    ("2.5.4.11", "OU"),
    ("2.5.4.3", "CN"),
    ("2.5.4.5", "SERIALNUMBER"),
];

/// Where an attribute goes in Go's order (others after all of them).
fn go_rank(oid: &str) -> usize {
    GO_ORDER
        .iter()
        .position(|(id, _)| *id == oid)
        .unwrap_or(GO_ORDER.len())
}

fn escape_rfc4514(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let last = s.chars().count().saturating_sub(1);
    for (i, c) in s.chars().enumerate() {
        let special = matches!(c, '"' | '+' | ',' | ';' | '<' | '>' | '\\')
            || (i == 0 && (c == ' ' || c == '#'))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        if c == '\0' {
            out.push_str("\\00");
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

    fn ca(cn: &str) -> (CertificateParams, KeyPair) {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        (p, KeyPair::generate().unwrap())
    }

    fn leaf(issuer: &Issuer<'_, KeyPair>) -> CertificateDer<'static> {
        let mut p = CertificateParams::new(vec!["a.test".to_string()]).unwrap();
        p.distinguished_name.push(DnType::CommonName, "a.test");
        p.distinguished_name
            .push(DnType::OrganizationName, "Acme, Inc.");
        p.subject_alt_names
            .push(rcgen::SanType::IpAddress("127.0.0.1".parse().unwrap()));
        p.signed_by(&KeyPair::generate().unwrap(), issuer)
            .unwrap()
            .der()
            .clone()
    }

    #[test]
    fn names_are_written_in_go_order_whatever_the_certificates_order() {
        // blackbox_exporter prints CN, OU, O, L, ST, C (Go's pkix.Name);
        // the certificate lists them O, C, CN here.
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name
            .push(DnType::OrganizationName, "Vantage Tests");
        p.distinguished_name.push(DnType::CountryName, "DE");
        p.distinguished_name
            .push(DnType::CommonName, "self-signed-ca");
        p.distinguished_name.push(DnType::LocalityName, "Berlin");
        let k = KeyPair::generate().unwrap();
        let c = parse_cert(p.self_signed(&k).unwrap().der()).unwrap();
        assert_eq!(c.subject, "CN=self-signed-ca,O=Vantage Tests,L=Berlin,C=DE");
    }

    #[test]
    fn parses_a_certificate() {
        let (p, k) = ca("Test Root");
        let root = p.self_signed(&k).unwrap();
        let issuer = Issuer::new(p, k);
        let der = leaf(&issuer);
        let c = parse_cert(&der).unwrap();
        assert_eq!(c.subject, "CN=a.test,O=Acme\\, Inc.");
        assert_eq!(c.issuer, "CN=Test Root");
        assert_eq!(c.sans, vec!["a.test".to_string(), "127.0.0.1".to_string()]);
        assert_eq!(c.key_type, "EC");
        assert_eq!(c.key_bits, 256);
        assert_eq!(c.signature_algorithm, "ecdsa-with-SHA256");
        assert_eq!(c.sha256_fingerprint.len(), 64);
        assert!(!c.serial.is_empty() && c.serial.chars().all(|c| c.is_ascii_hexdigit()));
        assert!(c.not_after_unix_ms > c.not_before_unix_ms);
        let r = parse_cert(root.der()).unwrap();
        assert_eq!(r.subject, r.issuer);
    }

    #[test]
    fn a_traced_leaf_lists_its_dns_names_only() {
        for (name, dns) in [
            ("a.test", true),
            ("*.a.test", true),
            ("127.0.0.1", false),
            ("::1", false),
            ("email:x@a.test", false),
            ("uri:https://a.test/", false),
        ] {
            assert_eq!(is_dns_name(name), dns, "{name}");
        }
    }

    fn bad(e: CertificateError) -> rustls::Error {
        rustls::Error::InvalidCertificate(e)
    }

    #[test]
    fn maps_errors_to_verdicts() {
        let (p, k) = ca("Test Root");
        let root = p.self_signed(&k).unwrap().der().clone();
        let (ip, ik) = ca("Test Intermediate");
        let root_issuer = Issuer::new(p, k);
        let inter = ip.signed_by(&ik, &root_issuer).unwrap().der().clone();
        let inter_issuer = Issuer::new(ip, ik);
        let leaf = leaf(&inter_issuer);
        let v = |e, chain: &[CertificateDer<'_>]| verdict_of(&bad(e), chain);
        assert_eq!(verdict_name(&v(CertificateError::Expired, &[])), "expired");
        assert_eq!(
            verdict_name(&v(CertificateError::NotValidYet, &[])),
            "not-yet-valid"
        );
        assert_eq!(
            verdict_name(&v(CertificateError::NotValidForName, &[])),
            "hostname-mismatch"
        );
        assert_eq!(verdict_name(&v(CertificateError::Revoked, &[])), "revoked");
        // Leaf alone, its issuer not presented: the intermediate is missing.
        assert_eq!(
            verdict_name(&v(
                CertificateError::UnknownIssuer,
                std::slice::from_ref(&leaf)
            )),
            "incomplete-chain"
        );
        // Leaf + intermediate of an untrusted root.
        assert_eq!(
            verdict_name(&v(CertificateError::UnknownIssuer, &[leaf, inter])),
            "unknown-issuer"
        );
        // Self-signed.
        assert_eq!(
            verdict_name(&v(CertificateError::UnknownIssuer, &[root])),
            "unknown-issuer"
        );
        assert!(
            verdict_name(&verdict_of(&rustls::Error::General("x".into()), &[]))
                .starts_with("other")
        );
    }

    /// A server on one end of an in-memory pipe presenting `chain`.
    fn serve(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> tokio::io::DuplexStream {
        let (client, server) = tokio::io::duplex(64 * 1024);
        let config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        tokio::spawn(async move {
            if let Ok(mut tls) = acceptor.accept(server).await {
                use tokio::io::AsyncReadExt;
                let mut buf = [0u8; 16];
                let _ = tls.read(&mut buf).await;
            }
        });
        client
    }

    fn options(ca: Option<String>, require_valid: bool) -> TlsOptions {
        TlsOptions {
            server_name: "a.test".into(),
            alpn: Vec::new(),
            ca_bundle_pem: ca,
            client_cert: None,
            require_valid,
            min_version: None,
            max_version: None,
        }
    }

    #[tokio::test]
    async fn require_valid_reports_the_chain_or_fails_with_the_verdict() {
        let (p, k) = ca("Test Root");
        let root = p.self_signed(&k).unwrap();
        let (root_pem, root_der) = (root.pem(), root.der().clone());
        let issuer = Issuer::new(p, k);
        let key = KeyPair::generate().unwrap();
        let mut lp = CertificateParams::new(vec!["a.test".to_string()]).unwrap();
        lp.distinguished_name.push(DnType::CommonName, "a.test");
        let leaf = lp.signed_by(&key, &issuer).unwrap().der().clone();
        let key_der = || PrivateKeyDer::Pkcs8(key.serialize_der().into());

        // Trusted (as `http.fetch` would with a trusted chain): full summary.
        let io = serve(vec![leaf.clone()], key_der());
        let config = options(Some(root_pem), true).config().unwrap();
        let (_, info) = handshake(io, "a.test", config).await.unwrap();
        assert!(matches!(info.verdict, Verdict::Valid));
        assert_eq!(info.version, "TLSv1.3");
        assert_eq!(info.chain.len(), 1);
        assert_eq!(info.chain[0].subject, "CN=a.test");
        assert_eq!(
            info.earliest_expiry_unix_ms,
            Some(info.chain[0].not_after_unix_ms)
        );

        // Untrusted (the server also sends its root): the handshake fails,
        // naming the verdict.
        let io = serve(vec![leaf.clone(), root_der.clone()], key_der());
        let config = options(None, true).config().unwrap();
        match handshake(io, "a.test", config).await {
            Err(NetError::Tls(m)) => assert!(m.starts_with("unknown-issuer: "), "{m}"),
            other => panic!("expected a tls error, got {other:?}"),
        }

        // Inspection mode: the same chain completes, with the verdict as data.
        let io = serve(vec![leaf.clone(), root_der], key_der());
        let config = options(None, false).config().unwrap();
        let (_, info) = handshake(io, "a.test", config).await.unwrap();
        assert!(matches!(info.verdict, Verdict::UnknownIssuer));
        assert_eq!(info.chain.len(), 2);

        // The leaf alone, its issuer neither presented nor trusted.
        let io = serve(vec![leaf], key_der());
        let config = options(None, false).config().unwrap();
        let (_, info) = handshake(io, "a.test", config).await.unwrap();
        assert!(matches!(info.verdict, Verdict::IncompleteChain));
    }

    #[tokio::test]
    async fn tls_inspect_pins_a_self_signed_ca_certificate_and_names_every_failure_in_words() {
        use crate::capabilities::net::{HostResolver, NetBudget, NetLimits};
        // What `openssl req -x509` makes: self-signed, marked as a CA.
        let mut p =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        p.distinguished_name.push(DnType::CommonName, "localhost");
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().unwrap();
        let cert = p.self_signed(&key).unwrap();
        let port = tls_servers::start_tls(
            vec![cert.der().clone()],
            PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .await;
        let net = Net {
            allow: Arc::new(crate::policy::AllowList::parse(["tls://127.0.0.1:*"]).unwrap()),
            budget: Arc::new(NetBudget::new(NetLimits::default())),
            resolver: Arc::new(HostResolver::default()),
            deadline: Instant::now() + Duration::from_secs(10),
            denials: Arc::default(),
            tls: Arc::default(),
            http: Arc::default(),
            tape: Default::default(),
        };
        let state = TlsState::new(net, &[]);
        let request = |ca: Option<String>, name: Option<&str>| wit::TlsRequest {
            host: "127.0.0.1".into(),
            port,
            alpn: Vec::new(),
            options: wit::TlsOptions {
                server_name: name.map(str::to_string),
                ca_bundle_pem: ca,
                client_cert_secret: None,
                insecure: false,
                min_version: None,
                max_version: Some(wit::TlsVersion::Tls12),
            },
            timeout_ms: Some(3000),
        };
        let report = state
            .inspect(request(Some(cert.pem()), None))
            .await
            .unwrap();
        assert!(matches!(report.info.verdict, Verdict::Valid));
        assert_eq!(report.info.version, "TLSv1.2");
        assert_eq!(report.info.verified_chain.len(), 1);
        for (ca, name, want) in [
            (None, None, "unknown-issuer"),
            (Some(cert.pem()), Some("other.test"), "hostname-mismatch"),
        ] {
            let report = state.inspect(request(ca, name)).await.unwrap();
            assert_eq!(verdict_label(&report.info.verdict), want);
            assert!(report.info.verified_chain.is_empty());
            assert_eq!(report.info.chain.len(), 1);
        }
        // Before the fix, webpki's own refusal reached the verdict as
        // `Other(OtherError(CaUsedAsEndEntity))`.
        let other = CertificateError::Other(rustls::OtherError(Arc::new(
            webpki::Error::CaUsedAsEndEntity,
        )));
        let words = verdict_name(&verdict_of(&rustls::Error::InvalidCertificate(other), &[]));
        assert_eq!(words, "other: ca used as end entity");
    }

    /// The e2e suite's defect cases (`tests/e2e/tls.rs`), through
    /// `tls.inspect` with the test root as the bundle: one verdict each.
    #[tokio::test]
    async fn tls_every_certificate_defect_is_its_verdict() {
        use crate::capabilities::net::{HostResolver, NetBudget, NetLimits};
        use tls_servers::{LOCAL, intermediate, leaf, root, self_signed, start_tls};
        let ca = root("Defects Root");
        let inter = intermediate("Defects Intermediate", &ca, -1, 1000);
        let old_inter = intermediate("Expired Intermediate", &ca, -30, -1);
        let expired = leaf(LOCAL, &inter, -30, -1);
        let not_yet = leaf(LOCAL, &inter, 10, 100);
        let wrong_name = leaf(&["other.example"], &inter, -1, 90);
        let missing = leaf(LOCAL, &inter, -1, 90);
        let own = self_signed(LOCAL);
        let under_old = leaf(LOCAL, &old_inter, -1, 90);
        let good = leaf(LOCAL, &inter, -1, 90);
        let cases = [
            ("expired", vec![expired.der, inter.der.clone()], expired.key),
            (
                "not-yet-valid",
                vec![not_yet.der, inter.der.clone()],
                not_yet.key,
            ),
            (
                "hostname-mismatch",
                vec![wrong_name.der, inter.der.clone()],
                wrong_name.key,
            ),
            ("incomplete-chain", vec![missing.der], missing.key),
            ("unknown-issuer", vec![own.der], own.key),
            (
                "expired",
                vec![under_old.der, old_inter.der.clone()],
                under_old.key,
            ),
            ("valid", vec![good.der, inter.der.clone()], good.key),
        ];
        let net = Net {
            allow: Arc::new(crate::policy::AllowList::parse(["tls://127.0.0.1:*"]).unwrap()),
            budget: Arc::new(NetBudget::new(NetLimits::default())),
            resolver: Arc::new(HostResolver::default()),
            deadline: Instant::now() + Duration::from_secs(10),
            denials: Arc::default(),
            tls: Arc::default(),
            http: Arc::default(),
            tape: Default::default(),
        };
        let state = TlsState::new(net, &[]);
        for (expected, chain, key) in cases {
            let port = start_tls(chain, key).await;
            let report = state
                .inspect(wit::TlsRequest {
                    host: "127.0.0.1".into(),
                    port,
                    alpn: Vec::new(),
                    options: wit::TlsOptions {
                        server_name: None,
                        ca_bundle_pem: Some(ca.pem.clone()),
                        client_cert_secret: None,
                        insecure: false,
                        min_version: None,
                        max_version: None,
                    },
                    timeout_ms: Some(3000),
                })
                .await
                .unwrap();
            assert_eq!(verdict_label(&report.info.verdict), expected);
            if expected == "valid" {
                // Leaf, intermediate, and the root from the bundle.
                assert_eq!(report.info.verified_chain.len(), 3);
                assert_eq!(
                    report.info.verified_chain[2].subject,
                    "CN=Defects Root,O=Vantage Tests"
                );
            } else {
                assert!(report.info.verified_chain.is_empty(), "{expected}");
                assert_eq!(report.info.verified_expiry_unix_ms, None);
            }
        }
    }

    #[test]
    fn escapes_rfc4514_specials() {
        assert_eq!(escape_rfc4514(" a,b+c "), "\\ a\\,b\\+c\\ ");
        assert_eq!(escape_rfc4514("#x"), "\\#x");
    }
}
