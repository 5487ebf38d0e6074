//! TCP probes: connect, optionally talk, optionally upgrade to TLS.
//!
//! ```no_run
//! use vantage_sdk::tcp::{self, TcpRequest};
//! let report = tcp::probe(&TcpRequest::new("mail.example.com", 25).read_banner().expect("^220 "))?;
//! assert_eq!(report.matched, Some(true));
//! # Ok::<(), vantage_sdk::NetError>(())
//! ```

use std::time::Duration;

use crate::NetError;
use crate::bindings::vantage::check::tcp as raw;

pub use raw::{Starttls, TcpReport, TcpRequest};

/// Run one probe.
pub fn probe(request: &TcpRequest) -> Result<TcpReport, NetError> {
    raw::probe(request).map_err(NetError::from)
}

impl TcpRequest {
    /// Connect to `host:port` and close; nothing sent, nothing read.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Self {
            host: host.into(),
            port,
            send: None,
            read_banner: false,
            expect: None,
            starttls: None,
            tls: false,
            timeout_ms: None,
        }
    }

    /// Read what the server says first (SMTP/FTP/SSH banners).
    pub fn read_banner(mut self) -> Self {
        self.read_banner = true;
        self
    }

    /// Send these bytes after connecting (and after the banner, if read).
    pub fn send(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.send = Some(bytes.into());
        self
    }

    /// A regular expression the banner or reply must match (see
    /// [`TcpReport::matched`]).
    pub fn expect(mut self, pattern: impl Into<String>) -> Self {
        self.expect = Some(pattern.into());
        self
    }

    /// Upgrade with STARTTLS and inspect the TLS session.
    pub fn starttls(mut self, protocol: Starttls) -> Self {
        self.starttls = Some(protocol);
        self
    }

    /// Speak TLS from the first byte (e.g. port 993) and inspect it.
    pub fn tls(mut self) -> Self {
        self.tls = true;
        self
    }

    /// Timeout for the whole probe (default 10 s, capped by the run's deadline).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout_ms = Some(crate::util::duration_ms_u64(timeout));
        self
    }
}
