//! The `tcp` interface: connect, upgrade to TLS (from the first byte or
//! with STARTTLS for SMTP, IMAP and POP3), run a script of steps (expect,
//! send, read, starttls), and report what was received and the TLS session
//! as `tls.inspect` does.
//!
//! # Policy
//!
//! A probe connects with scheme `tcp`: `tcp://host:port` patterns allow it.
//! A probe that asks for TLS (`tls`, `starttls` or a `starttls` step) is
//! also allowed by a `tls://host:port` pattern.
//!
//! # Conversation
//!
//! - `tls`: handshake first;
//! - `starttls`: greeting → (SMTP: `EHLO`) → `STARTTLS`/`a1 STARTTLS`/`STLS`
//!   → handshake; the plain-text dialogue is part of `received`;
//! - then the `steps`, in order (blackbox_exporter's `query_response`):
//!   `expect` reads lines until one matches (its groups feed the next
//!   `send`'s `${1}`…), `send` writes, `read` reads one line (or 2 s of
//!   silence), `starttls` upgrades the connection with the request's
//!   `tls-options`. The first step that fails ends the script and is
//!   reported (`failed-step`), the probe itself still succeeds.
//!
//! Reads never consume past the end of a line (a STARTTLS handshake may
//! follow); at most 64 KiB are kept; every byte read counts against the
//! run's byte budget. The probe's timeout covers everything: one that
//! passes during the steps fails the step it cut.

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

/// A connection's byte stream, plain or TLS.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Per-run `tcp` state.
#[derive(Debug)]
pub struct TcpState {
    net: Net,
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

    /// Run one probe (see the module docs).
    pub async fn probe(&self, req: wit::TcpRequest) -> Result<wit::TcpReport, NetError> {
        // Compile every `expect` first: a bad pattern is the request's fault.
        let mut patterns = Vec::new();
        for (i, step) in req.steps.iter().enumerate() {
            if let wit::TcpStep::Expect(p) = step {
                let re = Regex::new(p).map_err(|e| {
                    NetError::InvalidRequest(format!("bad expect regex in step {i}: {e}"))
                })?;
                patterns.push(Some(re));
            } else {
                patterns.push(None);
            }
        }
        let starttls_step = req
            .steps
            .iter()
            .any(|s| matches!(s, wit::TcpStep::Starttls));
        let wants_tls = req.tls || req.starttls.is_some() || starttls_step;
        let host = req.host.trim_start_matches('[').trim_end_matches(']');
        let scheme = if wants_tls
            && self.net.allow.check_target("tcp", host, req.port).is_err()
            && self.net.allow.check_target("tls", host, req.port).is_ok()
        {
            "tls"
        } else {
            "tcp"
        };
        let tls_options =
            TlsOptions::from_wit(&req.tls_options, host, &self.secrets, Vec::new(), false)?;
        // Refuse a bad CA bundle or version range before connecting.
        let _ = tls_options.config()?;
        let timeout = self.net.timeout(req.timeout_ms, DEFAULT_TIMEOUT);
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + timeout;
        let mut phase = Phase::Resolve;
        let setup = async {
            let ip = super::http::ip_preference(&req.ip);
            let conn = self
                .net
                .connect_prefer(scheme, host, req.port, &mut phase, ip)
                .await?;
            let mut talk = Talk {
                net: &self.net,
                received: Vec::new(),
            };
            let mut stream: Box<dyn Io> = Box::new(conn.stream);
            let mut tls_info: Option<TlsInfo> = None;
            if let Some(proto) = req.starttls {
                phase = Phase::Processing;
                talk.starttls(&mut stream, proto).await?;
            }
            if req.tls || req.starttls.is_some() {
                phase = Phase::Tls;
                let (tls, info) =
                    handshake(stream, &tls_options.server_name, tls_options.config()?).await?;
                tls_info = Some(info);
                stream = Box::new(tls);
            }
            Ok::<_, NetError>((
                conn.remote_addr,
                conn.resolve,
                conn.connect,
                talk,
                stream,
                tls_info,
            ))
        };
        let (remote_addr, resolve, connect, mut talk, mut stream, mut tls_info) =
            match tokio::time::timeout_at(deadline, setup).await {
                Ok(r) => r?,
                Err(_) => return Err(NetError::Timeout(phase.as_str().to_string())),
            };
        let failed_step = run_steps(
            &req.steps,
            &patterns,
            &mut talk,
            &mut stream,
            &tls_options,
            &mut tls_info,
            deadline,
        )
        .await?;
        if let Some(info) = &tls_info {
            self.net
                .record_tls("tcp", format!("{}:{}", req.host, req.port), info);
        }
        Ok(wit::TcpReport {
            remote_addr: remote_addr.to_string(),
            resolve_ms: ms(resolve),
            connect_ms: ms(connect),
            received: talk.received,
            matched: (!req.steps.is_empty()).then_some(failed_step.is_none()),
            failed_step,
            tls: tls_info,
            total_ms: ms(started.elapsed()),
        })
    }
}

/// Run `steps` over `stream` until one fails (returned, with why) or the
/// script ends. A step that runs out of time fails; only the run's byte
/// budget ends the probe with an error.
async fn run_steps(
    steps: &[wit::TcpStep],
    patterns: &[Option<Regex>],
    talk: &mut Talk<'_>,
    stream: &mut Box<dyn Io>,
    tls_options: &TlsOptions,
    tls_info: &mut Option<TlsInfo>,
    deadline: tokio::time::Instant,
) -> Result<Option<(u32, String)>, NetError> {
    let mut groups: Vec<Option<Vec<u8>>> = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let fail = |why: String| Ok(Some((i as u32, why)));
        let outcome = tokio::time::timeout_at(deadline, async {
            match step {
                wit::TcpStep::Expect(pattern) => {
                    let Some(re) = patterns.get(i).and_then(Option::as_ref) else {
                        return Ok(Err(format!("expect {pattern:?}: no pattern")));
                    };
                    loop {
                        let line = talk.read(stream, Until::LineWaiting).await?;
                        if line.is_empty() {
                            return Ok(Err(format!(
                                "expect {pattern:?}: the peer closed or went silent without a matching line"
                            )));
                        }
                        let text = String::from_utf8_lossy(&line);
                        let text = text.trim_end_matches(['\r', '\n']);
                        if let Some(caps) = re.captures(text) {
                            groups = caps
                                .iter()
                                .map(|m| m.map(|m| m.as_str().as_bytes().to_vec()))
                                .collect();
                            return Ok(Ok(()));
                        }
                        if talk.received.len() >= MAX_RECEIVED {
                            return Ok(Err(format!(
                                "expect {pattern:?}: no match in the first {MAX_RECEIVED} bytes"
                            )));
                        }
                    }
                }
                wit::TcpStep::Send(bytes) => {
                    let bytes = substitute(bytes, &groups);
                    Ok(talk
                        .write(stream, &bytes)
                        .await
                        .map_err(|e| format!("send: {}", super::net::describe(&e))))
                }
                wit::TcpStep::Read => {
                    talk.read(stream, Until::Line).await?;
                    Ok(Ok(()))
                }
                wit::TcpStep::Starttls => {
                    if tls_info.is_some() {
                        return Ok(Err("starttls: the connection is already TLS".into()));
                    }
                    let plain = std::mem::replace(stream, Box::new(tokio::io::duplex(1).0));
                    match handshake(plain, &tls_options.server_name, tls_options.config()?).await {
                        Ok((tls, info)) => {
                            *tls_info = Some(info);
                            *stream = Box::new(tls);
                            Ok(Ok(()))
                        }
                        Err(e) => Ok(Err(format!("starttls: {}", super::net::describe(&e)))),
                    }
                }
            }
        })
        .await;
        match outcome {
            Err(_) => return fail("timed out".to_string()),
            Ok(Err(e @ NetError::LimitExceeded(_))) => return Err(e),
            Ok(Err(e)) => return fail(super::net::describe(&e)),
            Ok(Ok(Err(why))) => return fail(why),
            Ok(Ok(Ok(()))) => {}
        }
    }
    Ok(None)
}

/// `bytes` with `${N}` replaced by group `N` of the last `expect` match
/// (an unknown or unmatched group becomes nothing, as blackbox_exporter's
/// `Expand` does).
fn substitute(bytes: &[u8], groups: &[Option<Vec<u8>>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i..].starts_with(b"${")
            && let Some(close) = bytes[i + 2..].iter().position(|b| *b == b'}')
            && close > 0
            && bytes[i + 2..i + 2 + close].iter().all(u8::is_ascii_digit)
        {
            let n: usize = std::str::from_utf8(&bytes[i + 2..i + 2 + close])
                .ok()
                .and_then(|d| d.parse().ok())
                .unwrap_or(usize::MAX);
            if let Some(Some(g)) = groups.get(n) {
                out.extend_from_slice(g);
            }
            i += 2 + close + 1;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// A conversation's received bytes.
struct Talk<'a> {
    net: &'a Net,
    received: Vec<u8>,
}

/// When a read is complete.
#[derive(Clone, Copy)]
enum Until {
    /// The end of the first line, or 2 s of silence.
    Line,
    /// The end of the first line, however long it takes (the caller's
    /// timeout bounds it).
    LineWaiting,
    /// The last line of an SMTP-style reply (`250 ` rather than `250-`).
    SmtpReply,
}

impl Talk<'_> {
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
            let read = async {
                if matches!(until, Until::LineWaiting) {
                    Ok(s.read(&mut byte).await)
                } else {
                    tokio::time::timeout(READ_IDLE, s.read(&mut byte)).await
                }
            };
            match read.await {
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
                    Until::Line | Until::LineWaiting => true,
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
        let (tape, net) = (self.net.tape.clone(), self.net.clone());
        let result = tape
            .exchange(
                "tcp.probe",
                |r: &wit::TcpRequest| format!("{}:{}", r.host, r.port),
                request,
                Some(&net),
                |r| TcpState::probe(self, r),
            )
            .await?;
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
            tls: Arc::default(),
            http: Arc::default(),
            tape: Default::default(),
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

    use crate::capabilities::tls::tls_servers;

    fn state() -> TcpState {
        let mut net = net(1 << 20);
        net.allow = Arc::new(AllowList::parse(["tcp://127.0.0.1:*"]).unwrap());
        TcpState::new(net, &[])
    }

    fn request(port: u16, steps: Vec<wit::TcpStep>) -> wit::TcpRequest {
        wit::TcpRequest {
            host: "127.0.0.1".into(),
            port,
            steps,
            starttls: None,
            tls: false,
            tls_options: crate::bindings::vantage::check::tls::TlsOptions {
                server_name: None,
                ca_bundle_pem: None,
                client_cert_secret: None,
                insecure: false,
                min_version: None,
                max_version: None,
            },
            timeout_ms: Some(3000),
            ip: crate::bindings::vantage::check::http::IpPreference {
                preferred: None,
                fallback: true,
            },
        }
    }

    /// Sends a token, wants it back in `AUTH <token>`, then closes.
    async fn token_server() -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut tcp, _)) = listener.accept().await {
                tokio::spawn(async move {
                    tcp.write_all(b"220 hello\r\n220 token=abc42 ready\r\n")
                        .await
                        .unwrap();
                    let mut line = Vec::new();
                    let mut b = [0u8; 1];
                    while !line.ends_with(b"\n") && tcp.read(&mut b).await.unwrap_or(0) == 1 {
                        line.push(b[0]);
                    }
                    let reply: &[u8] = if line == b"AUTH abc42\r\n" {
                        b"235 welcome\r\n"
                    } else {
                        b"535 who are you\r\n"
                    };
                    let _ = tcp.write_all(reply).await;
                });
            }
        });
        port
    }

    #[tokio::test]
    async fn tcp_steps_expect_and_send_with_the_groups_of_the_last_match() {
        let port = token_server().await;
        let steps = vec![
            wit::TcpStep::Expect("token=(\\w+)".into()),
            wit::TcpStep::Send(b"AUTH ${1}\r\n".to_vec()),
            wit::TcpStep::Expect("^235 ".into()),
        ];
        let report = state().probe(request(port, steps)).await.unwrap();
        assert_eq!(report.failed_step, None);
        assert_eq!(report.matched, Some(true));
        assert_eq!(
            report.received,
            b"220 hello\r\n220 token=abc42 ready\r\n235 welcome\r\n"
        );

        // The same script with a wrong expectation fails at that step, and
        // the probe itself succeeds (the peer closed: no waiting).
        let steps = vec![
            wit::TcpStep::Expect("token=(\\w+)".into()),
            wit::TcpStep::Send(b"AUTH ${2}\r\n".to_vec()),
            wit::TcpStep::Expect("^235 ".into()),
        ];
        let started = Instant::now();
        let report = state().probe(request(port, steps)).await.unwrap();
        assert_eq!(report.matched, Some(false));
        let (step, why) = report.failed_step.unwrap();
        assert_eq!(step, 2);
        assert!(why.contains("^235"), "{why}");
        assert!(started.elapsed() < Duration::from_secs(2));
        // A bad pattern is the request's fault.
        assert!(matches!(
            state()
                .probe(request(port, vec![wit::TcpStep::Expect("(".into())]))
                .await,
            Err(NetError::InvalidRequest(_))
        ));
    }

    #[test]
    fn tcp_substitution_replaces_known_groups_only() {
        let groups = vec![Some(b"all".to_vec()), Some(b"one".to_vec()), None];
        assert_eq!(
            substitute(b"a ${1} b ${0}${2}${9} ${x}", &groups),
            b"a one b all ${x}"
        );
    }

    #[tokio::test]
    async fn tcp_a_starttls_step_upgrades_with_the_request_tls_options() {
        let ca = tls_servers::root("Steps Root");
        let leaf = tls_servers::leaf(tls_servers::LOCAL, &ca, -1, 10);
        let port = tls_servers::start_starttls(&tls_servers::SMTP, vec![leaf.der], leaf.key).await;
        let steps = vec![
            wit::TcpStep::Expect("^220 ".into()),
            wit::TcpStep::Send(b"EHLO prober\r\n".to_vec()),
            wit::TcpStep::Expect("^250 STARTTLS".into()),
            wit::TcpStep::Send(b"STARTTLS\r\n".to_vec()),
            wit::TcpStep::Expect("^220 ".into()),
            wit::TcpStep::Starttls,
            wit::TcpStep::Send(b"NOOP\r\n".to_vec()),
            wit::TcpStep::Expect("^250 ok NOOP".into()),
        ];
        let mut req = request(port, steps);
        req.tls_options.ca_bundle_pem = Some(ca.pem.clone());
        let report = state().probe(req).await.unwrap();
        assert_eq!(
            report.failed_step,
            None,
            "{:?}",
            String::from_utf8_lossy(&report.received)
        );
        let tls = report.tls.unwrap();
        assert!(matches!(
            tls.verdict,
            crate::bindings::vantage::check::tls::Verdict::Valid
        ));
        assert_eq!(tls.verified_chain.len(), 2);
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
