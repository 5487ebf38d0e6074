//! TLS inspection: the handshake, the presented chain and its verification,
//! as data.
//!
//! ```no_run
//! use vantage_sdk::tls;
//! let report = tls::inspect(&tls::TlsRequest::new("example.com", 443).alpn("h2"))?;
//! if let Some(days) = report.info.days_left(vantage_sdk::clock::now_unix_ms()) {
//!     println!("{} days left, verdict {:?}", days, report.info.verdict);
//! }
//! # Ok::<(), vantage_sdk::NetError>(())
//! ```
//!
//! A certificate problem is reported in [`TlsInfo::verdict`], not as an error.

use std::fmt;
use std::time::Duration;

use crate::NetError;
use crate::bindings::vantage::check::tls as raw;

pub use raw::{Certificate, TlsInfo, TlsReport, TlsRequest, TlsTimings, Verdict};

/// Connect to `host:port`, complete a handshake and report what was presented.
pub fn inspect(request: &TlsRequest) -> Result<TlsReport, NetError> {
    raw::inspect(request).map_err(NetError::from)
}

impl TlsRequest {
    /// Inspect `host:port` with SNI `host`, no ALPN, the system roots and the
    /// default timeout.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Self {
            host: host.into(),
            port,
            server_name: None,
            alpn: Vec::new(),
            ca_bundle_pem: None,
            client_cert_secret: None,
            timeout_ms: None,
        }
    }

    /// Send and verify against this name instead of `host`.
    pub fn server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }

    /// Offer an ALPN protocol (call repeatedly, in preference order).
    pub fn alpn(mut self, protocol: impl Into<String>) -> Self {
        self.alpn.push(protocol.into());
        self
    }

    /// Verify against this PEM bundle instead of the system roots.
    pub fn ca_bundle_pem(mut self, pem: impl Into<String>) -> Self {
        self.ca_bundle_pem = Some(pem.into());
        self
    }

    /// Present the client certificate and key held by this granted secret.
    pub fn client_cert_secret(mut self, secret: impl Into<String>) -> Self {
        self.client_cert_secret = Some(secret.into());
        self
    }

    /// Timeout for the whole inspection (capped by the run's deadline).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout_ms = Some(crate::util::duration_ms_u64(timeout));
        self
    }
}

impl TlsInfo {
    /// Days until the earliest certificate of the chain expires, relative to
    /// `now_unix_ms` (negative once expired); `None` if the host could not
    /// read the chain.
    pub fn days_left(&self, now_unix_ms: u64) -> Option<f64> {
        let expiry = self.earliest_expiry_unix_ms?;
        Some((expiry as f64 - now_unix_ms as f64) / 86_400_000.0)
    }
}

impl Verdict {
    /// Whether the chain verified and the name matched.
    pub fn is_valid(&self) -> bool {
        matches!(self, Verdict::Valid)
    }

    /// The verdict's name in the contract: `valid`, `expired`,
    /// `not-yet-valid`, `unknown-issuer`, `hostname-mismatch`,
    /// `incomplete-chain`, `revoked` or `other` (see [`Display`](fmt::Display)
    /// for the reason of an `other`).
    pub fn as_str(&self) -> &'static str {
        match self {
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
}

impl fmt::Display for Verdict {
    /// The name from [`Verdict::as_str`]; `other: <reason>` for
    /// [`Verdict::Other`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Other(why) => write!(f, "other: {why}"),
            verdict => f.write_str(verdict.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_show_their_contract_names() {
        assert_eq!(Verdict::Valid.to_string(), "valid");
        assert_eq!(Verdict::NotYetValid.to_string(), "not-yet-valid");
        assert_eq!(Verdict::UnknownIssuer.as_str(), "unknown-issuer");
        assert_eq!(Verdict::HostnameMismatch.to_string(), "hostname-mismatch");
        assert_eq!(Verdict::IncompleteChain.to_string(), "incomplete-chain");
        let other = Verdict::Other("bad signature".into());
        assert_eq!(other.as_str(), "other");
        assert_eq!(other.to_string(), "other: bad signature");
    }
}
