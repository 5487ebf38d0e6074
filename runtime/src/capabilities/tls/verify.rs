//! Server certificate verification with webpki, done here rather than by
//! rustls' `WebPkiServerVerifier` so that the host knows more than "valid or
//! not": the path as verified (leaf to trust anchor, for
//! `verified-chain`), a readable reason for every failure (never a Rust
//! debug string such as `Other(OtherError(CaUsedAsEndEntity))`), and the
//! pinned-certificate rule.
//!
//! # Pinned certificates
//!
//! A certificate listed in the CA bundle that the server presents as its
//! own leaf (a self-signed certificate made by `openssl req -x509`, which
//! marks it as a CA) is trusted as itself: webpki refuses a CA certificate
//! as an end entity (`CaUsedAsEndEntity`), curl and Python accept it. The
//! rule is narrow: the leaf's DER must equal a bundle certificate byte for
//! byte, and its validity dates and names are still checked.

use std::time::{Duration, SystemTime};

use rustls::pki_types::{CertificateDer, ServerName, TrustAnchor, UnixTime};
use webpki::EndEntityCert;

use crate::bindings::vantage::check::tls::Verdict;

/// What a server's chain is verified against.
#[derive(Debug)]
pub struct Trust {
    /// The trust anchors.
    pub anchors: Vec<TrustAnchor<'static>>,
    /// The full certificates behind `anchors`, when known (a CA bundle):
    /// pinned leaves are matched against them, and a verified path's anchor
    /// is reported from them.
    pub certs: Vec<CertificateDer<'static>>,
    /// Said in an unknown-issuer message: `the system roots`, `the CA bundle`.
    pub name: &'static str,
}

impl Trust {
    /// Trust in the certificates of a PEM bundle (each a trust anchor, and
    /// each a pinned leaf).
    pub fn from_pem(pem: &str) -> Result<Trust, String> {
        use rustls::pki_types::pem::PemObject;
        let mut certs = Vec::new();
        for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            certs.push(cert.map_err(|e| format!("bad CA bundle PEM: {e}"))?);
        }
        if certs.is_empty() {
            return Err("the CA bundle holds no certificate".into());
        }
        let anchors = certs
            .iter()
            .map(|c| {
                webpki::anchor_from_trusted_cert(c)
                    .map(|a| a.to_owned())
                    .map_err(|e| format!("bad CA certificate in bundle: {}", webpki_words(&e)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Trust {
            anchors,
            certs,
            name: "the CA bundle",
        })
    }
}

/// The result of verifying one presented chain.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The verdict.
    pub verdict: Verdict,
    /// Why, readable (`certificate expired on …`); empty when valid.
    pub detail: String,
    /// Leaf to trust anchor when the chain verified (the anchor only when
    /// its certificate is known: a bundle certificate, or one the server
    /// sent); empty otherwise.
    pub verified: Vec<CertificateDer<'static>>,
}

impl Outcome {
    fn fail(verdict: Verdict, detail: String) -> Outcome {
        Outcome {
            verdict,
            detail,
            verified: Vec::new(),
        }
    }
}

/// Verify `end_entity` (with the presented `intermediates`) for
/// `server_name` at `now` against `trust`.
pub fn verify(
    trust: &Trust,
    algs: &[&dyn rustls::pki_types::SignatureVerificationAlgorithm],
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    server_name: &ServerName<'_>,
    now: UnixTime,
) -> Outcome {
    let ee = match EndEntityCert::try_from(end_entity) {
        Ok(ee) => ee,
        Err(e) => {
            return Outcome::fail(
                Verdict::Other(format!(
                    "the server's certificate cannot be parsed: {}",
                    webpki_words(&e)
                )),
                format!(
                    "the server's certificate cannot be parsed: {}",
                    webpki_words(&e)
                ),
            );
        }
    };
    let result = ee.verify_for_usage(
        algs,
        &trust.anchors,
        intermediates,
        now,
        webpki::KeyUsage::server_auth(),
        None,
        None,
    );
    let path = match result {
        Ok(path) => path,
        Err(e) => {
            if trust
                .certs
                .iter()
                .any(|c| c.as_ref() == end_entity.as_ref())
            {
                return pinned(&ee, end_entity, server_name, now);
            }
            return failure(&e, trust, end_entity, intermediates);
        }
    };
    if let Err(e) = ee.verify_is_valid_for_subject_name(server_name) {
        return failure(&e, trust, end_entity, intermediates);
    }
    let mut verified = vec![end_entity.clone().into_owned()];
    verified.extend(
        path.intermediate_certificates()
            .map(|c| c.der().into_owned()),
    );
    let anchor = path.anchor();
    let same = |c: &&CertificateDer<'_>| {
        webpki::anchor_from_trusted_cert(c).is_ok_and(|a| {
            a.subject.as_ref() == anchor.subject.as_ref()
                && a.subject_public_key_info.as_ref() == anchor.subject_public_key_info.as_ref()
        })
    };
    if let Some(der) = trust
        .certs
        .iter()
        .find(same)
        .or_else(|| intermediates.iter().find(same))
        && verified.last().is_none_or(|l| l.as_ref() != der.as_ref())
    {
        verified.push(der.clone().into_owned());
    }
    Outcome {
        verdict: Verdict::Valid,
        detail: String::new(),
        verified,
    }
}

/// A leaf listed in the bundle: trusted as itself, dates and name checked.
fn pinned(
    ee: &EndEntityCert<'_>,
    der: &CertificateDer<'_>,
    server_name: &ServerName<'_>,
    now: UnixTime,
) -> Outcome {
    use x509_parser::prelude::*;
    let Ok((_, cert)) = X509Certificate::from_der(der) else {
        return Outcome::fail(
            Verdict::Other("the pinned certificate cannot be parsed".into()),
            "the pinned certificate cannot be parsed".into(),
        );
    };
    let now_s = now.as_secs() as i64;
    let validity = cert.validity();
    if now_s > validity.not_after.timestamp() {
        return Outcome::fail(
            Verdict::Expired,
            format!(
                "certificate expired on {}",
                date(validity.not_after.timestamp())
            ),
        );
    }
    if now_s < validity.not_before.timestamp() {
        return Outcome::fail(
            Verdict::NotYetValid,
            format!(
                "certificate not valid before {}",
                date(validity.not_before.timestamp())
            ),
        );
    }
    if ee.verify_is_valid_for_subject_name(server_name).is_err() {
        return Outcome::fail(Verdict::HostnameMismatch, name_words(server_name, der));
    }
    Outcome {
        verdict: Verdict::Valid,
        detail: String::new(),
        verified: vec![der.clone().into_owned()],
    }
}

/// The verdict and readable reason of a webpki failure.
fn failure(
    e: &webpki::Error,
    trust: &Trust,
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
) -> Outcome {
    use webpki::Error as E;
    let (verdict, detail) = match e {
        E::CertExpired { not_after, .. } => (
            Verdict::Expired,
            format!("certificate expired on {}", date(not_after.as_secs() as i64)),
        ),
        E::InvalidCertValidity => (
            Verdict::Expired,
            "certificate has an invalid validity period".into(),
        ),
        E::CertNotValidYet { not_before, .. } => (
            Verdict::NotYetValid,
            format!(
                "certificate not valid before {}",
                date(not_before.as_secs() as i64)
            ),
        ),
        E::CertNotValidForName(_) => (Verdict::HostnameMismatch, String::new()),
        E::CertRevoked => (Verdict::Revoked, "certificate revoked".into()),
        E::UnknownIssuer => {
            let chain: Vec<CertificateDer<'_>> = std::iter::once(end_entity.clone())
                .chain(intermediates.iter().cloned())
                .collect();
            if super::looks_incomplete(&chain) {
                (
                    Verdict::IncompleteChain,
                    "unknown issuer: the server did not send the intermediate certificate that issued its certificate"
                        .into(),
                )
            } else {
                (
                    Verdict::UnknownIssuer,
                    format!(
                        "unknown issuer: the chain does not lead to a CA in {}",
                        trust.name
                    ),
                )
            }
        }
        E::CaUsedAsEndEntity if is_self_signed(end_entity) => (
            Verdict::UnknownIssuer,
            "unknown issuer: the server's certificate is self-signed (pin it by listing it in the CA bundle)"
                .into(),
        ),
        E::CaUsedAsEndEntity => {
            let detail =
                "the server's certificate is a CA certificate, not a server certificate".to_string();
            (Verdict::Other(detail.clone()), detail)
        }
        other => {
            let detail = format!("certificate rejected: {}", webpki_words(other));
            (Verdict::Other(detail.clone()), detail)
        }
    };
    let detail = match e {
        E::CertNotValidForName(ctx) => name_words(&ctx.expected, end_entity),
        _ => detail,
    };
    Outcome::fail(verdict, detail)
}

fn name_words(server_name: &ServerName<'_>, end_entity: &CertificateDer<'_>) -> String {
    let sans = super::parse_cert(end_entity)
        .map(|c| c.sans)
        .unwrap_or_default();
    if sans.is_empty() {
        format!(
            "certificate not valid for name {} (it names no DNS name or address)",
            server_name_str(server_name)
        )
    } else {
        format!(
            "certificate not valid for name {} (it covers {})",
            server_name_str(server_name),
            sans.join(", ")
        )
    }
}

/// The certificate's issuer is its subject.
fn is_self_signed(der: &CertificateDer<'_>) -> bool {
    use x509_parser::prelude::*;
    X509Certificate::from_der(der).is_ok_and(|(_, c)| c.issuer().as_raw() == c.subject().as_raw())
}

/// A server name as written (`a.test`, `127.0.0.1`).
pub fn server_name_str(name: &ServerName<'_>) -> String {
    match name {
        ServerName::DnsName(d) => d.as_ref().to_string(),
        ServerName::IpAddress(ip) => std::net::IpAddr::from(*ip).to_string(),
        _ => "the requested name".into(),
    }
}

/// A unix time in seconds as an RFC 3339 date (UTC).
fn date(unix_s: i64) -> String {
    let t = SystemTime::UNIX_EPOCH + Duration::from_secs(unix_s.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// A webpki error in words: `CaUsedAsEndEntity` → `ca used as end entity`.
pub fn webpki_words(e: &webpki::Error) -> String {
    camel_words(&format!("{e:?}"))
}

/// The leading identifier of a `Debug` rendering, split into lowercase
/// words: `UnsupportedSignatureAlgorithmContext(…)` → `unsupported
/// signature algorithm context`; `HandshakeFailure` → `handshake failure`.
/// Used for enum variants that have no `Display` of their own, so that no
/// message carries a Rust debug string.
pub fn camel_words(debug: &str) -> String {
    let head: String = debug
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    let mut out = String::new();
    let mut prev_lower = false;
    for c in head.chars() {
        if c == '_' {
            out.push(' ');
            prev_lower = false;
            continue;
        }
        if c.is_ascii_uppercase() && prev_lower {
            out.push(' ');
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        out.push(c.to_ascii_lowercase());
    }
    if out.is_empty() {
        "unknown reason".into()
    } else {
        out
    }
}
