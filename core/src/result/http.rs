//! What the host saw of a run's HTTP exchanges: part of the result.

use serde::Serialize;

/// One exchange as the host saw it, for the run's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HttpTrace {
    /// Method.
    pub method: String,
    /// Requested URL.
    pub url: String,
    /// Final status, if a response arrived.
    pub status: Option<u16>,
    /// Address of the final hop, if connected.
    pub remote_addr: Option<String>,
    /// Redirects followed.
    pub redirects: u32,
    /// Per-phase timings (summed over redirects).
    #[serde(flatten)]
    pub timings: Timings,
    /// Why the exchange failed, if it did.
    pub error: Option<String>,
    /// Expiry of the earliest-expiring certificate the server presented
    /// (unix ms), for HTTPS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_earliest_expiry_unix_ms: Option<i64>,
    /// What the TLS handshake of the final hop showed (also when
    /// verification is what failed), for blackbox_exporter's TLS metrics.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsTrace>,
}

/// The TLS facts of one exchange behind blackbox_exporter's
/// `probe_tls_version_info`, `probe_ssl_earliest_cert_expiry`,
/// `probe_ssl_last_chain_expiry_timestamp_seconds` and
/// `probe_ssl_last_chain_info`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TlsTrace {
    /// Negotiated protocol version, e.g. `TLSv1.3` (empty when the handshake
    /// failed).
    pub version: String,
    /// The verification verdict: `valid`, `expired`, `unknown-issuer`…
    pub verdict: String,
    /// Earliest `not-after` of the presented chain, unix ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub earliest_expiry_unix_ms: Option<i64>,
    /// Earliest `not-after` of the chain as verified (leaf to trust
    /// anchor), unix ms; none when verification failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified_expiry_unix_ms: Option<i64>,
    /// The server's certificate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leaf: Option<TlsLeaf>,
}

/// The server's certificate, as `probe_ssl_last_chain_info` labels it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TlsLeaf {
    /// Subject, RFC 4514.
    pub subject: String,
    /// Issuer, RFC 4514.
    pub issuer: String,
    /// Subject alternative names.
    pub sans: Vec<String>,
    /// Serial number, lowercase hex with every byte kept (leading zeros).
    pub serial: String,
    /// SHA-256 fingerprint of the DER, lowercase hex.
    pub sha256_fingerprint: String,
}

/// Per-phase durations in milliseconds, summed over redirect hops.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Timings {
    /// Name resolution.
    pub resolve_ms: f64,
    /// TCP connect.
    pub connect_ms: f64,
    /// TLS handshake.
    pub tls_ms: f64,
    /// Request sent to response headers received.
    pub processing_ms: f64,
    /// Reading the body.
    pub transfer_ms: f64,
    /// The whole exchange.
    pub total_ms: f64,
}
