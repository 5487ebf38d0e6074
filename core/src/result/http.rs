//! What the host saw of a run's HTTP exchanges: part of the result.

use serde::{Deserialize, Serialize};

/// One exchange as the host saw it, for the run's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
}

/// Per-phase durations in milliseconds, summed over redirect hops.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
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
