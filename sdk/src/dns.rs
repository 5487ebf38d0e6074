//! DNS lookups with response codes, TTLs and timing.
//!
//! ```no_run
//! use vantage_sdk::dns::{self, DnsQuery, DnsTransport, RecordType};
//! let answer = dns::resolve(
//!     &DnsQuery::new("example.com", RecordType::A)
//!         .server("9.9.9.9")
//!         .transport(DnsTransport::Tcp)
//!         .recursion_desired(true),
//! )?;
//! assert_eq!(answer.rcode, "NOERROR");
//! # Ok::<(), vantage_sdk::NetError>(())
//! ```
//!
//! NXDOMAIN and SERVFAIL are answers (see [`DnsAnswer::rcode`]), not errors.

use std::time::Duration;

use crate::NetError;
use crate::bindings::vantage::check::dns as raw;

pub use raw::{DnsAnswer, DnsQuery, DnsRecord, DnsTransport, RecordType};

/// Ask one question.
pub fn resolve(query: &DnsQuery) -> Result<DnsAnswer, NetError> {
    raw::resolve(query).map_err(NetError::from)
}

impl DnsQuery {
    /// Ask the system resolver for `record_type` records of `name`, over UDP
    /// (TCP when truncated), with recursion desired.
    pub fn new(name: impl Into<String>, record_type: RecordType) -> Self {
        Self {
            name: name.into(),
            record_type,
            server: None,
            timeout_ms: None,
            transport: DnsTransport::Udp,
            recursion_desired: true,
        }
    }

    /// Ask this nameserver (`ip` or `ip:port`); it must be allowed by a
    /// `dns://` outbound pattern.
    pub fn server(mut self, server: impl Into<String>) -> Self {
        self.server = Some(server.into());
        self
    }

    /// Timeout (default 5 s, capped by the run's deadline).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout_ms = Some(crate::util::duration_ms_u64(timeout));
        self
    }

    /// UDP (the default, falling back to TCP when truncated) or TCP only.
    pub fn transport(mut self, transport: DnsTransport) -> Self {
        self.transport = transport;
        self
    }

    /// Set or clear the RD (recursion desired) bit (default: set).
    pub fn recursion_desired(mut self, desired: bool) -> Self {
        self.recursion_desired = desired;
        self
    }
}

impl DnsTransport {
    /// Parse `udp` or `tcp` (case-insensitive).
    pub fn parse(text: &str) -> Option<DnsTransport> {
        match text.trim().to_ascii_lowercase().as_str() {
            "udp" => Some(DnsTransport::Udp),
            "tcp" => Some(DnsTransport::Tcp),
            _ => None,
        }
    }
}
