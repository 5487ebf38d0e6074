//! TCP probes: connect, optionally talk, optionally upgrade to TLS.
//!
//! A probe runs its [`TcpStep`]s in order after connecting, like
//! blackbox_exporter's `query_response`: read lines until one matches
//! ([`TcpStep::Expect`]), send bytes ([`TcpStep::Send`], with `${1}` standing
//! for a group of the last match), read a banner ([`TcpStep::Read`]) or
//! upgrade to TLS ([`TcpStep::Starttls`]).
//!
//! ```no_run
//! use vantage_sdk::tcp::{self, TcpRequest};
//! let report = tcp::probe(
//!     &TcpRequest::new("mail.example.com", 25)
//!         .expect("^220 ")
//!         .send("EHLO prober\r\n")
//!         .expect("^250-STARTTLS")
//!         .send("STARTTLS\r\n")
//!         .expect("^220 ")
//!         .starttls_step(),
//! )?;
//! assert_eq!(report.matched, Some(true));
//! # Ok::<(), vantage_sdk::NetError>(())
//! ```

use std::fmt;
use std::time::Duration;

use crate::NetError;
use crate::bindings::vantage::check::tcp as raw;
use crate::tls::TlsOptions;

pub use raw::{Starttls, TcpReport, TcpRequest, TcpStep};

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
            steps: Vec::new(),
            starttls: None,
            tls: false,
            tls_options: TlsOptions::default(),
            timeout_ms: None,
            ip: crate::http::IpPreference {
                preferred: None,
                fallback: true,
            },
        }
    }

    /// Add a step to the exchange (steps run in the order added).
    pub fn step(mut self, step: TcpStep) -> Self {
        self.steps.push(step);
        self
    }

    /// Read what the server says (a banner), with no condition.
    pub fn read_banner(self) -> Self {
        self.step(TcpStep::Read)
    }

    /// Send these bytes.
    pub fn send(self, bytes: impl Into<Vec<u8>>) -> Self {
        self.step(TcpStep::Send(bytes.into()))
    }

    /// Read lines until one matches the regular expression `pattern` (see
    /// [`TcpReport::matched`] and [`TcpReport::failed_step`]).
    pub fn expect(self, pattern: impl Into<String>) -> Self {
        self.step(TcpStep::Expect(pattern.into()))
    }

    /// Upgrade the connection to TLS at this point of the exchange.
    pub fn starttls_step(self) -> Self {
        self.step(TcpStep::Starttls)
    }

    /// Run the usual STARTTLS dialogue of `protocol` before the steps, and
    /// inspect the TLS session.
    pub fn starttls(mut self, protocol: Starttls) -> Self {
        self.starttls = Some(protocol);
        self
    }

    /// Speak TLS from the first byte (e.g. port 993) and inspect it.
    pub fn tls(mut self) -> Self {
        self.tls = true;
        self
    }

    /// Server name, trusted CAs, client certificate and versions for the TLS
    /// session.
    pub fn tls_options(mut self, options: TlsOptions) -> Self {
        self.tls_options = options;
        self
    }

    /// Connect over `family` first; with `fallback`, over the other family
    /// when `family` has no address (blackbox_exporter's
    /// `preferred_ip_protocol` and `ip_protocol_fallback`).
    pub fn prefer_ip(mut self, family: crate::http::IpFamily, fallback: bool) -> Self {
        self.ip = crate::http::IpPreference {
            preferred: Some(family),
            fallback,
        };
        self
    }

    /// Timeout for the whole probe (default 10 s, capped by the run's deadline).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout_ms = Some(crate::util::duration_ms_u64(timeout));
        self
    }
}

impl fmt::Display for TcpStep {
    /// `expect /^220 /`, `send "EHLO x\r\n"`, `read`, `starttls`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TcpStep::Expect(pattern) => write!(f, "expect /{pattern}/"),
            TcpStep::Send(bytes) => write!(f, "send {:?}", String::from_utf8_lossy(bytes)),
            TcpStep::Read => f.write_str("read"),
            TcpStep::Starttls => f.write_str("starttls"),
        }
    }
}

impl Starttls {
    /// Parse `smtp`, `imap` or `pop3` (case-insensitive).
    pub fn parse(text: &str) -> Option<Starttls> {
        match text.trim().to_ascii_lowercase().as_str() {
            "smtp" => Some(Starttls::Smtp),
            "imap" => Some(Starttls::Imap),
            "pop3" => Some(Starttls::Pop3),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_keep_their_order() {
        let r = TcpRequest::new("mail.test", 25)
            .read_banner()
            .send("EHLO x\r\n")
            .expect("^250")
            .starttls_step()
            .tls_options(TlsOptions::new().server_name("mx.test"));
        assert_eq!(
            r.steps,
            [
                TcpStep::Read,
                TcpStep::Send(b"EHLO x\r\n".to_vec()),
                TcpStep::Expect("^250".into()),
                TcpStep::Starttls,
            ]
        );
        let shown: Vec<String> = r.steps.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            ["read", "send \"EHLO x\\r\\n\"", "expect /^250/", "starttls"]
        );
        assert_eq!(r.tls_options.server_name.as_deref(), Some("mx.test"));
        assert_eq!(Starttls::parse("IMAP"), Some(Starttls::Imap));
        assert_eq!(Starttls::parse("ftp"), None);
    }
}
