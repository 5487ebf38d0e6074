//! The `tcp` interface: connect, optionally read a banner, send, match a
//! reply, and upgrade to TLS (from the first byte or with STARTTLS for SMTP,
//! IMAP and POP3), reporting the TLS session as `tls.inspect` does.
//!
//! # Policy
//!
//! A probe connects with scheme `tcp`: `tcp://host:port` patterns allow it.
//! A probe that asks for TLS (`tls` or `starttls`) is also allowed by a
//! `tls://host:port` pattern.
//!
//! # Conversation
//!
//! - plain: banner (if `read-banner`) → `send` → reply;
//! - `tls`: handshake → banner (if `read-banner`) → `send` → reply, over TLS;
//! - `starttls`: greeting → (SMTP: `EHLO`) → `STARTTLS`/`a1 STARTTLS`/`STLS`
//!   → handshake → `send` → reply, over TLS. The plain-text dialogue is part
//!   of `received`.
//!
//! Reads stop at the end of a line (for SMTP, at the last line of a
//! multi-line reply), after 2 s of silence, or at 64 KiB; every byte read
//! counts against the run's byte budget. `expect` is matched against
//! everything received (as lossy UTF-8).

use std::time::{Duration, Instant};

use regex::Regex;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use wasmtime::component::{HasSelf, Linker};

use super::net::{Net, Phase};
use super::tls::{TlsOptions, handshake};
use crate::bindings::vantage::check::common::NetError;
use crate::bindings::vantage::check::tcp as wit;
use crate::bindings::vantage::check::tls::TlsInfo;
use crate::capabilities::CapabilitiesView;
use crate::config::SecretSource;

/// Timeout of a probe when the request does not set one.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Most bytes a probe keeps.
pub const MAX_RECEIVED: usize = 64 * 1024;
/// Silence after which a read is considered complete.
pub const READ_IDLE: Duration = Duration::from_secs(2);

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Per-run `tcp` state.
#[derive(Debug)]
pub struct TcpState {
    net: Net,
    #[allow(dead_code)]
    secrets: Vec<(String, SecretSource)>,
}

impl TcpState {
    /// State for one run.
    pub fn new(net: Net, secrets: &[(String, SecretSource)]) -> Self {
        TcpState {
            net,
            secrets: secrets.to_vec(),
        }
    }

    async fn probe(&self, req: wit::TcpRequest) -> Result<wit::TcpReport, NetError> {
        let Script {
            read_banner,
            send,
            expect,
        } = Script::from_steps(&req.steps)?;
        let expect = match &expect {
            Some(p) => Some(
                Regex::new(p)
                    .map_err(|e| NetError::InvalidRequest(format!("bad expect regex: {e}")))?,
            ),
            None => None,
        };
        let wants_tls = req.tls || req.starttls.is_some();
        let host = req.host.trim_start_matches('[').trim_end_matches(']');
        let scheme = if wants_tls
            && self.net.allow.check_target("tcp", host, req.port).is_err()
            && self.net.allow.check_target("tls", host, req.port).is_ok()
        {
            "tls"
        } else {
            "tcp"
        };
        let timeout = self.net.timeout(req.timeout_ms, DEFAULT_TIMEOUT);
        let started = Instant::now();
        let mut phase = Phase::Resolve;
        let work = async {
            let conn = self.net.connect(scheme, host, req.port, &mut phase).await?;
            let mut talk = Talk {
                net: &self.net,
                received: Vec::new(),
            };
            let mut stream = conn.stream;
            let tls_options = || TlsOptions::from_wit(&req.tls_options, host, &self.secrets, false);
            let mut tls_info: Option<TlsInfo> = None;
            if let Some(proto) = req.starttls {
                phase = Phase::Processing;
                talk.starttls(&mut stream, proto).await?;
                phase = Phase::Tls;
                let (mut tls, info) =
                    handshake(&mut stream, host, tls_options()?.config()?).await?;
                tls_info = Some(info);
                phase = Phase::Processing;
                talk.converse(&mut tls, false, send.as_deref()).await?;
            } else if req.tls {
                phase = Phase::Tls;
                let (mut tls, info) =
                    handshake(&mut stream, host, tls_options()?.config()?).await?;
                tls_info = Some(info);
                phase = Phase::Processing;
                talk.converse(&mut tls, read_banner, send.as_deref())
                    .await?;
            } else {
                phase = Phase::Processing;
                talk.converse(&mut stream, read_banner, send.as_deref())
                    .await?;
            }
            let matched = expect
                .as_ref()
                .map(|re| re.is_match(&String::from_utf8_lossy(&talk.received)));
            Ok::<_, NetError>(wit::TcpReport {
                remote_addr: conn.remote_addr.to_string(),
                resolve_ms: ms(conn.resolve),
                connect_ms: ms(conn.connect),
                received: talk.received,
                failed_step: None,
                matched,
                tls: tls_info,
                total_ms: 0.0,
            })
        };
        match tokio::time::timeout(timeout, work).await {
            Ok(Ok(mut report)) => {
                report.total_ms = ms(started.elapsed());
                Ok(report)
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(NetError::Timeout(phase.as_str().to_string())),
        }
    }
}

/// The exchange this host runs: read a banner, send, match what was
/// received. (`tcp-step` lists of other shapes are refused as unsupported.)
struct Script {
    read_banner: bool,
    send: Option<Vec<u8>>,
    expect: Option<String>,
}

impl Script {
    /// `[read | expect] [send] [expect]` as a banner read, a send and a
    /// pattern matched against everything received.
    fn from_steps(steps: &[wit::TcpStep]) -> Result<Self, NetError> {
        let mut script = Script {
            read_banner: false,
            send: None,
            expect: None,
        };
        let mut rest = steps;
        match rest.first() {
            Some(wit::TcpStep::Read) => {
                script.read_banner = true;
                rest = &rest[1..];
            }
            Some(wit::TcpStep::Expect(p))
                if rest.len() == 1
                    || matches!(rest.get(1), Some(wit::TcpStep::Send(_))) && rest.len() == 2 =>
            {
                script.read_banner = true;
                script.expect = Some(p.clone());
                rest = &rest[1..];
            }
            _ => {}
        }
        if let Some(wit::TcpStep::Send(bytes)) = rest.first() {
            script.send = Some(bytes.clone());
            rest = &rest[1..];
            // `send` `read`: the reply this script reads after a send anyway
            // (how 0.1.0 probes arrive, see `compat_v0_1`).
            if let Some(wit::TcpStep::Read) = rest.first() {
                rest = &rest[1..];
            }
        }
        if let Some(wit::TcpStep::Expect(p)) = rest.first()
            && script.expect.is_none()
        {
            script.expect = Some(p.clone());
            rest = &rest[1..];
        }
        if !rest.is_empty() {
            return Err(NetError::Unsupported(
                "this host runs tcp steps of the form [read] [send] [expect] only".into(),
            ));
        }
        Ok(script)
    }
}

/// A conversation's received bytes.
struct Talk<'a> {
    net: &'a Net,
    received: Vec<u8>,
}

/// When a read is complete.
#[derive(Clone, Copy)]
enum Until {
    /// The end of the first line.
    Line,
    /// The last line of an SMTP-style reply (`250 ` rather than `250-`).
    SmtpReply,
}

impl Talk<'_> {
    /// Banner, then `send`, then the reply.
    async fn converse<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        s: &mut S,
        read_banner: bool,
        send: Option<&[u8]>,
    ) -> Result<(), NetError> {
        if read_banner {
            self.read(s, Until::Line).await?;
        }
        if let Some(bytes) = send {
            s.write_all(bytes).await.map_err(io_error)?;
            s.flush().await.map_err(io_error)?;
            self.read(s, Until::Line).await?;
        }
        Ok(())
    }

    /// The plain-text dialogue that asks for TLS.
    async fn starttls<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        s: &mut S,
        proto: wit::Starttls,
    ) -> Result<(), NetError> {
        let refused = |what: &str, got: &[u8]| {
            NetError::Protocol(format!(
                "{what}: {:?}",
                String::from_utf8_lossy(got).trim_end()
            ))
        };
        match proto {
            wit::Starttls::Smtp => {
                let greeting = self.read(s, Until::SmtpReply).await?;
                if !greeting.starts_with(b"220") {
                    return Err(refused("SMTP greeting is not 220", &greeting));
                }
                self.write(s, b"EHLO vantage.invalid\r\n").await?;
                let ehlo = self.read(s, Until::SmtpReply).await?;
                if !ehlo.starts_with(b"250") {
                    return Err(refused("EHLO refused", &ehlo));
                }
                self.write(s, b"STARTTLS\r\n").await?;
                let reply = self.read(s, Until::SmtpReply).await?;
                if !reply.starts_with(b"220") {
                    return Err(refused("STARTTLS refused", &reply));
                }
            }
            wit::Starttls::Imap => {
                let greeting = self.read(s, Until::Line).await?;
                if !greeting.starts_with(b"* OK") {
                    return Err(refused("IMAP greeting is not * OK", &greeting));
                }
                self.write(s, b"a1 STARTTLS\r\n").await?;
                // Untagged lines may come first; read until the tagged answer.
                loop {
                    let line = self.read(s, Until::Line).await?;
                    if line.is_empty() {
                        return Err(refused("no answer to STARTTLS", &line));
                    }
                    if line.starts_with(b"a1 ") {
                        if !line.starts_with(b"a1 OK") {
                            return Err(refused("STARTTLS refused", &line));
                        }
                        break;
                    }
                }
            }
            wit::Starttls::Pop3 => {
                let greeting = self.read(s, Until::Line).await?;
                if !greeting.starts_with(b"+OK") {
                    return Err(refused("POP3 greeting is not +OK", &greeting));
                }
                self.write(s, b"STLS\r\n").await?;
                let reply = self.read(s, Until::Line).await?;
                if !reply.starts_with(b"+OK") {
                    return Err(refused("STLS refused", &reply));
                }
            }
        }
        Ok(())
    }

    async fn write<S: AsyncWrite + Unpin>(&mut self, s: &mut S, b: &[u8]) -> Result<(), NetError> {
        s.write_all(b).await.map_err(io_error)?;
        s.flush().await.map_err(io_error)
    }

    /// Read one reply (see [`Until`]), byte by byte so that nothing past it
    /// is consumed (a STARTTLS handshake follows). Returns what was read and
    /// appends it to `received` (within the cap).
    async fn read<S: AsyncRead + Unpin>(
        &mut self,
        s: &mut S,
        until: Until,
    ) -> Result<Vec<u8>, NetError> {
        let mut got = Vec::new();
        let mut line_start = 0;
        loop {
            if got.len() >= MAX_RECEIVED {
                break;
            }
            let mut byte = [0u8; 1];
            match tokio::time::timeout(READ_IDLE, s.read(&mut byte)).await {
                Err(_) => break,
                Ok(Ok(0)) => break,
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    if got.is_empty() {
                        return Err(io_error(e));
                    }
                    break;
                }
            }
            self.net.budget.read_bytes(1)?;
            got.push(byte[0]);
            if byte[0] == b'\n' {
                let line = &got[line_start..];
                let done = match until {
                    Until::Line => true,
                    Until::SmtpReply => line.get(3) != Some(&b'-'),
                };
                if done {
                    break;
                }
                line_start = got.len();
            }
        }
        let room = MAX_RECEIVED.saturating_sub(self.received.len());
        self.received.extend_from_slice(&got[..got.len().min(room)]);
        Ok(got)
    }
}

fn io_error(e: std::io::Error) -> NetError {
    NetError::Protocol(e.to_string())
}

impl wit::Host for TcpState {
    async fn probe(
        &mut self,
        request: wit::TcpRequest,
    ) -> wasmtime::Result<Result<wit::TcpReport, NetError>> {
        let result = TcpState::probe(self, request).await;
        self.net.note(&result);
        Ok(result)
    }
}

/// Register the `tcp` interface.
pub fn add_to_linker<T: CapabilitiesView>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    wit::add_to_linker::<T, HasSelf<TcpState>>(linker, |s| &mut s.caps().tcp)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::io::AsyncWriteExt;

    use super::*;
    use crate::capabilities::net::{HostResolver, NetBudget, NetLimits};
    use crate::policy::AllowList;

    fn net(max_bytes: u64) -> Net {
        Net {
            allow: Arc::new(AllowList::parse(["tcp://127.0.0.1:1"]).unwrap()),
            budget: Arc::new(NetBudget::new(NetLimits {
                max_bytes,
                ..NetLimits::default()
            })),
            resolver: Arc::new(HostResolver::default()),
            deadline: Instant::now() + Duration::from_secs(5),
            denials: Arc::default(),
        }
    }

    #[tokio::test]
    async fn an_smtp_reply_ends_at_its_last_line_and_nothing_more_is_read() {
        let (mut client, mut server) = tokio::io::duplex(1024);
        server
            .write_all(b"250-mail.test\r\n250-SIZE 1\r\n250 STARTTLS\r\nNEXT")
            .await
            .unwrap();
        let net = net(1 << 20);
        let mut talk = Talk {
            net: &net,
            received: Vec::new(),
        };
        let got = talk.read(&mut client, Until::SmtpReply).await.unwrap();
        assert_eq!(got, b"250-mail.test\r\n250-SIZE 1\r\n250 STARTTLS\r\n");
        let line = talk.read(&mut client, Until::Line);
        drop(server);
        assert_eq!(line.await.unwrap(), b"NEXT");
        assert_eq!(
            talk.received,
            b"250-mail.test\r\n250-SIZE 1\r\n250 STARTTLS\r\nNEXT"
        );
    }

    #[tokio::test]
    async fn reads_count_against_the_byte_budget() {
        let (mut client, mut server) = tokio::io::duplex(1024);
        server.write_all(b"0123456789\n").await.unwrap();
        let net = net(4);
        let mut talk = Talk {
            net: &net,
            received: Vec::new(),
        };
        assert!(matches!(
            talk.read(&mut client, Until::Line).await,
            Err(NetError::LimitExceeded(_))
        ));
    }
}
