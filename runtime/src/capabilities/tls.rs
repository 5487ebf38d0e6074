//! The `tls` interface: connect, complete a handshake, and report what the
//! server presented — the chain, parsed, and the verification verdict — as
//! data.
//!
//! The same machinery serves `http.fetch` over https (which requires a valid
//! verdict) and `tcp.probe` with `tls`/`starttls` (which reports it): a
//! [`RecordingVerifier`] wraps rustls' `WebPkiServerVerifier`, records the
//! presented chain and the verdict, and — in inspection mode — lets the
//! handshake complete whatever the verdict, so the chain can be read. The
//! handshake signatures (`verify_tls12_signature`/`verify_tls13_signature`)
//! are always verified for real: inspection never talks to a server that does
//! not hold the key of the certificate it presented.
//!
//! # Verdicts
//!
//! The first failure webpki reports decides the verdict (`Expired`,
//! `NotValidYet`, `NotValidForName`, `Revoked`, `UnknownIssuer`, anything
//! else is `other`). `UnknownIssuer` becomes `incomplete-chain` when the top
//! presented certificate (the last one) is an end-entity certificate (not a
//! CA, not self-signed) whose issuer is not among the presented certificates:
//! the server did not send the intermediate. A chain whose top certificate is
//! a CA (an intermediate of an untrusted or private root) stays
//! `unknown-issuer`, as does a self-signed certificate.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, CipherSuite, DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::client::TlsStream;
use wasmtime::component::{HasSelf, Linker};

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
        let mut options = TlsOptions::from_wit(&req.options, &req.host, &self.secrets, false)?;
        options.alpn = req.alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
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
        let result = TlsState::inspect(self, request).await;
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
    /// Roots to verify against instead of webpki-roots.
    pub ca_bundle_pem: Option<String>,
    /// Client certificate to present.
    pub client_cert: Option<ClientCert>,
    /// Fail the handshake unless the verdict is `valid` (http); otherwise
    /// complete it and report the verdict (inspection).
    pub require_valid: bool,
}

impl TlsOptions {
    /// The options a guest asked for in `options`, for a connection to
    /// `host`, with client certificates read from the granted `secrets`; no
    /// ALPN. `require_valid`: fail the handshake on a bad certificate.
    pub fn from_wit(
        options: &wit::TlsOptions,
        host: &str,
        secrets: &[(String, SecretSource)],
        require_valid: bool,
    ) -> Result<Self, NetError> {
        if options.min_version.is_some() || options.max_version.is_some() {
            return Err(NetError::Unsupported(
                "this host does not support choosing TLS versions yet".into(),
            ));
        }
        Ok(TlsOptions {
            server_name: options
                .server_name
                .clone()
                .unwrap_or_else(|| host.to_string()),
            alpn: Vec::new(),
            ca_bundle_pem: options.ca_bundle_pem.clone(),
            client_cert: match &options.client_cert_secret {
                Some(name) => Some(client_cert(secrets, name)?),
                None => None,
            },
            require_valid,
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

/// Build the process-wide TLS state (crypto provider, the verifier over the
/// webpki roots) now, so that no run pays for it inside a timed phase.
pub fn warm_up() {
    let _ = default_webpki();
    // The first use of the crypto library initialises it (tens of ms):
    // draw random bytes and start one key exchange of each group now.
    let provider = provider();
    let _ = provider.secure_random.fill(&mut [0u8; 32]);
    for group in provider.kx_groups.iter() {
        let _ = group.start();
    }
}

/// The webpki verifier over the webpki-roots, built once.
fn default_webpki() -> Arc<WebPkiServerVerifier> {
    static VERIFIER: OnceLock<Arc<WebPkiServerVerifier>> = OnceLock::new();
    VERIFIER
        .get_or_init(|| {
            let roots =
                rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .expect("webpki-roots is not empty")
        })
        .clone()
}

impl TlsOptions {
    /// Build the client configuration (and a fresh recording verifier).
    pub fn config(&self) -> Result<HandshakeConfig, NetError> {
        let inner = match &self.ca_bundle_pem {
            None => default_webpki(),
            Some(pem) => {
                let mut roots = rustls::RootCertStore::empty();
                for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                    let cert = cert
                        .map_err(|e| NetError::InvalidRequest(format!("bad CA bundle PEM: {e}")))?;
                    roots.add(cert).map_err(|e| {
                        NetError::InvalidRequest(format!("bad CA certificate in bundle: {e}"))
                    })?;
                }
                if roots.is_empty() {
                    return Err(NetError::InvalidRequest(
                        "the CA bundle holds no certificate".into(),
                    ));
                }
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
                    .build()
                    .map_err(|e| NetError::InvalidRequest(format!("CA bundle: {e}")))?
            }
        };
        let verifier = Arc::new(RecordingVerifier {
            inner,
            require_valid: self.require_valid,
            seen: Mutex::new(None),
        });
        let builder = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("aws-lc-rs supports the default protocol versions")
            .dangerous()
            .with_custom_certificate_verifier(verifier.clone());
        let mut config = match &self.client_cert {
            None => builder.with_no_client_auth(),
            Some((chain, key)) => builder
                .with_client_auth_cert(chain.clone(), key.clone_key())
                .map_err(|e| NetError::InvalidRequest(format!("client certificate: {e}")))?,
        };
        config.alpn_protocols = self.alpn.clone();
        Ok(HandshakeConfig {
            config: Arc::new(config),
            verifier,
        })
    }
}

/// Complete a TLS handshake over `stream` and summarise it. With a
/// `require_valid` configuration, a certificate problem fails with
/// `net-error::tls("<verdict>: …")`; otherwise it is reported in the verdict.
pub async fn handshake<S>(
    stream: S,
    server_name: &str,
    config: HandshakeConfig,
) -> Result<(TlsStream<S>, TlsInfo), NetError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let bare = server_name.trim_start_matches('[').trim_end_matches(']');
    let name = ServerName::try_from(bare.to_string())
        .map_err(|e| NetError::InvalidRequest(format!("bad TLS server name {bare}: {e}")))?;
    let result = tokio_rustls::TlsConnector::from(config.config)
        .connect(name, stream)
        .await;
    let seen = config.verifier.seen.lock().unwrap().take();
    let stream = match result {
        Ok(s) => s,
        Err(e) => {
            return Err(NetError::Tls(match seen {
                Some((_, verdict)) if !matches!(verdict, Verdict::Valid) => {
                    format!("{}: {e}", verdict_name(&verdict))
                }
                _ => e.to_string(),
            }));
        }
    };
    let (chain_der, verdict) = seen.unwrap_or_else(|| {
        (
            Vec::new(),
            Verdict::Other("the server presented no certificate".into()),
        )
    });
    let (_, conn) = stream.get_ref();
    let chain: Vec<Certificate> = chain_der
        .iter()
        .filter_map(|c| parse_cert(c).ok())
        .collect();
    let info = TlsInfo {
        version: conn
            .protocol_version()
            .map(|v| match v {
                rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".to_string(),
                rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".to_string(),
                other => format!("{other:?}"),
            })
            .unwrap_or_default(),
        cipher_suite: conn
            .negotiated_cipher_suite()
            .map(|s| format!("{:?}", s.suite()))
            .unwrap_or_default(),
        alpn: conn
            .alpn_protocol()
            .map(|p| String::from_utf8_lossy(p).into_owned()),
        earliest_expiry_unix_ms: chain.iter().map(|c| c.not_after_unix_ms).min(),
        chain,
        verdict,
        verified_chain: Vec::new(),
        verified_expiry_unix_ms: None,
    };
    Ok((stream, info))
}

/// What the result keeps of a handshake (see [`crate::result::TlsTrace`]).
pub fn trace(via: &'static str, server: String, info: &TlsInfo) -> crate::result::TlsTrace {
    crate::result::TlsTrace {
        via,
        server,
        version: info.version.clone(),
        verdict: verdict_name(&info.verdict),
        earliest_expiry_unix_ms: info.earliest_expiry_unix_ms,
        verified_expiry_unix_ms: info.verified_expiry_unix_ms,
        leaf: info.chain.first().map(|c| crate::result::LeafCertificate {
            subject: c.subject.clone(),
            issuer: c.issuer.clone(),
            sans: c.sans.clone(),
            serial: c.serial.clone(),
            sha256_fingerprint: c.sha256_fingerprint.clone(),
        }),
    }
}

/// The verdict's WIT name, e.g. `unknown-issuer`; `other: <why>`.
pub fn verdict_name(v: &Verdict) -> String {
    match v {
        Verdict::Valid => "valid".into(),
        Verdict::Expired => "expired".into(),
        Verdict::NotYetValid => "not-yet-valid".into(),
        Verdict::UnknownIssuer => "unknown-issuer".into(),
        Verdict::HostnameMismatch => "hostname-mismatch".into(),
        Verdict::IncompleteChain => "incomplete-chain".into(),
        Verdict::Revoked => "revoked".into(),
        Verdict::Other(why) => format!("other: {why}"),
    }
}

/// A chain and the verdict on it.
type Seen = (Vec<CertificateDer<'static>>, Verdict);

/// Wraps webpki: records the presented chain and the verdict, and in
/// inspection mode accepts any chain (handshake signatures stay verified).
#[derive(Debug)]
pub struct RecordingVerifier {
    inner: Arc<WebPkiServerVerifier>,
    require_valid: bool,
    seen: Mutex<Option<Seen>>,
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let result = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        let chain: Vec<CertificateDer<'static>> = std::iter::once(end_entity)
            .chain(intermediates)
            .map(|c| c.clone().into_owned())
            .collect();
        let verdict = match &result {
            Ok(_) => Verdict::Valid,
            Err(e) => verdict_of(e, &chain),
        };
        *self.seen.lock().unwrap() = Some((chain, verdict));
        match result {
            Err(e) if self.require_valid => Err(e),
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Map a webpki verification error to a verdict (see the module docs).
pub fn verdict_of(e: &rustls::Error, chain: &[CertificateDer<'_>]) -> Verdict {
    let rustls::Error::InvalidCertificate(ce) = e else {
        return Verdict::Other(e.to_string());
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
        CertificateError::ExpiredRevocationList
        | CertificateError::ExpiredRevocationListContext { .. } => {
            Verdict::Other("expired revocation list".into())
        }
        other => Verdict::Other(format!("{other:?}")),
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
        serial: format!("{:x}", cert.serial),
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

/// A distinguished name in RFC 4514 form: RDNs last-first, `,`-separated,
/// multi-valued RDNs joined with `+`, special characters escaped.
fn rfc4514(name: &x509_parser::x509::X509Name<'_>) -> String {
    let registry = x509_parser::objects::oid_registry();
    let rdns: Vec<String> = name
        .iter_rdn()
        .map(|rdn| {
            rdn.iter()
                .map(|atv| {
                    let ty = x509_parser::objects::oid2abbrev(atv.attr_type(), registry)
                        .map(str::to_string)
                        .unwrap_or_else(|_| atv.attr_type().to_id_string());
                    let value = match atv.as_str() {
                        Ok(s) => escape_rfc4514(s),
                        Err(_) => format!("#{}", hex::encode(atv.attr_value().data)),
                    };
                    format!("{ty}={value}")
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect();
    rdns.into_iter().rev().collect::<Vec<_>>().join(",")
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
    fn parses_a_certificate() {
        let (p, k) = ca("Test Root");
        let root = p.self_signed(&k).unwrap();
        let issuer = Issuer::new(p, k);
        let der = leaf(&issuer);
        let c = parse_cert(&der).unwrap();
        assert_eq!(c.subject, "O=Acme\\, Inc.,CN=a.test");
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

    #[test]
    fn escapes_rfc4514_specials() {
        assert_eq!(escape_rfc4514(" a,b+c "), "\\ a\\,b\\+c\\ ");
        assert_eq!(escape_rfc4514("#x"), "\\#x");
    }
}
