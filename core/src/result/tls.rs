//! What the host saw of a run's TLS handshakes (over `http.fetch`,
//! `tls.inspect` and `tcp.probe`): part of the result, and the source of
//! blackbox_exporter's `probe_ssl_*` and `probe_tls_*` series.

use serde::{Deserialize, Serialize};

/// One completed TLS handshake.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TlsTrace {
    /// The capability that made it: `http`, `tls` or `tcp`.
    pub via: String,
    /// `host:port` connected to.
    pub server: String,
    /// Negotiated version as the WIT reports it, e.g. `TLSv1.3`.
    pub version: String,
    /// The verification verdict, e.g. `valid`, `unknown-issuer`.
    pub verdict: String,
    /// Earliest `not-after` of the presented chain, unix ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub earliest_expiry_unix_ms: Option<i64>,
    /// Earliest `not-after` of the verified chain (to the trust anchor),
    /// unix ms; none when it did not verify.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified_expiry_unix_ms: Option<i64>,
    /// The leaf certificate, when one was presented.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leaf: Option<LeafCertificate>,
}

/// The facts of a leaf certificate that blackbox_exporter's
/// `probe_ssl_last_chain_info` labels carry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeafCertificate {
    /// Subject DN.
    pub subject: String,
    /// Issuer DN.
    pub issuer: String,
    /// The DNS names among the subject alternative names (as
    /// blackbox_exporter's `subjectalternative`: no IP addresses).
    pub sans: Vec<String>,
    /// Serial number, lowercase hex, leading zeros kept.
    pub serial: String,
    /// SHA-256 of the DER, lowercase hex.
    pub sha256_fingerprint: String,
}

impl TlsTrace {
    /// The version as blackbox_exporter's `probe_tls_version_info` labels
    /// it: `TLS 1.3`, `TLS 1.2`.
    pub fn blackbox_version(&self) -> String {
        match self.version.strip_prefix("TLSv") {
            Some(v) => format!("TLS {v}"),
            None => self.version.clone(),
        }
    }
}
