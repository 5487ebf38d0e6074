//! `tcp`: connect to `host:port` targets, optionally talk, match and upgrade.
//!
//! For each target (`host:port` or `tcp://host:port`), connects; optionally
//! reads the banner, sends bytes, matches what came back against a regular
//! expression, and speaks TLS from the first byte or upgrades with STARTTLS
//! (SMTP, IMAP, POP3), reporting the certificate verdict.
//!
//! In a configuration file (`example.toml` in this crate; the end-to-end test
//! `check_examples` proves `vantage validate` accepts it and the check takes
//! its configuration):
//!
#![doc = concat!("```toml\n", include_str!("../example.toml"), "```")]

use vantage_sdk::tcp::{self, Starttls, TcpRequest};
use vantage_sdk::{Check, ConfigKey, Context, Error, Metadata, Outcome, TARGET, format_duration};

struct Tcp;

impl Check for Tcp {
    fn describe() -> Metadata {
        let key = ConfigKey::new;
        Metadata::new("tcp")
            .description(
                "Connects to each `host:port` target and, if configured, reads the banner, sends \
                 bytes, matches the answer against a regular expression, and speaks TLS (from \
                 the first byte or with STARTTLS for SMTP, IMAP or POP3), requiring a valid \
                 certificate.",
            )
            .outbound(TARGET)
            .config_key(key(
                "targets",
                "More `host:port` targets to probe (list), in addition to the run's targets; \
                 each must be allowed outbound.",
            ))
            .config_key(key("read_banner", "Read what the server says first.").default("false"))
            .config_key(key(
                "send",
                "Text to send after connecting (`\\r\\n` and `\\n` escapes are understood).",
            ))
            .config_key(key(
                "expect",
                "Regular expression the banner or reply must match.",
            ))
            .config_key(key("tls", "Speak TLS from the first byte.").default("false"))
            .config_key(key(
                "starttls",
                "Upgrade with STARTTLS: `smtp`, `imap` or `pop3`.",
            ))
            .config_key(key("timeout", "Timeout of each probe, e.g. `5s`.").default("10s"))
    }

    fn run(ctx: &Context) -> Result<Outcome, Error> {
        let read_banner = ctx.config_bool("read_banner")?.unwrap_or(false);
        let use_tls = ctx.config_bool("tls")?.unwrap_or(false);
        let timeout = ctx.config_duration("timeout")?;
        let starttls = match ctx
            .config("starttls")
            .map(|s| s.trim().to_ascii_lowercase())
        {
            None => None,
            Some(s) if s == "smtp" => Some(Starttls::Smtp),
            Some(s) if s == "imap" => Some(Starttls::Imap),
            Some(s) if s == "pop3" => Some(Starttls::Pop3),
            Some(s) => {
                return Err(Error::config(format!(
                    "config starttls = {s:?}: expected smtp, imap or pop3"
                )));
            }
        };
        let mut targets: Vec<String> = ctx.targets().to_vec();
        targets.extend(ctx.config_list("targets").into_iter().map(str::to_string));
        if targets.is_empty() {
            return Err(Error::no_target(
                "configure `host:port` or `tcp://host:port` targets",
            ));
        }
        let mut outcome = Outcome::new();
        let several = targets.len() > 1;
        let headlines = outcome.for_each_target("target", &targets, |target, outcome| {
            let Some((host, port)) = parse_target(target) else {
                outcome.assert(
                    "target is host:port",
                    false,
                    format!("cannot read {target:?} as host:port or tcp://host:port"),
                );
                // Unlike the others, this headline names its target even alone.
                return if several {
                    "bad target".to_string()
                } else {
                    format!("{target}: bad target")
                };
            };
            let mut req = TcpRequest::new(host, port);
            if read_banner {
                req = req.read_banner();
            }
            if let Some(send) = ctx.config("send") {
                req = req.send(unescape(send).into_bytes());
            }
            if let Some(expect) = ctx.config("expect") {
                req = req.expect(expect);
            }
            if use_tls {
                req = req.tls();
            }
            if let Some(p) = starttls {
                req = req.starttls(p);
            }
            if let Some(t) = timeout {
                req = req.timeout(t);
            }
            match tcp::probe(&req) {
                Err(e) => {
                    outcome.assert("connected", false, e.to_string());
                    format!("failed: {e}")
                }
                Ok(report) => {
                    outcome
                        .assert(
                            "connected",
                            true,
                            format!(
                                "{} in {}",
                                report.remote_addr,
                                format_duration(report.connect_ms)
                            ),
                        )
                        .measure("tcp_connect_ms", report.connect_ms, "ms")
                        .measure("tcp_total_ms", report.total_ms, "ms")
                        .measure("tcp_received_bytes", report.received.len() as f64, "bytes");
                    let text = String::from_utf8_lossy(&report.received);
                    let shown: String = text.trim_end().chars().take(200).collect();
                    if let Some(matched) = report.matched {
                        outcome.assert(
                            format!("answer matches {}", ctx.config("expect").unwrap_or("")),
                            matched,
                            format!("received {shown:?}"),
                        );
                    }
                    if let Some(info) = &report.tls {
                        outcome.assert(
                            "certificate chain is valid",
                            info.verdict.is_valid(),
                            format!(
                                "verdict {}, {} {}",
                                info.verdict, info.version, info.cipher_suite
                            ),
                        );
                        outcome.label("tls_version", info.version.clone());
                    }
                    format!(
                        "connected to {} in {}",
                        report.remote_addr,
                        format_duration(report.total_ms)
                    )
                }
            }
        });
        outcome.headline(headlines.per_target());
        Ok(outcome)
    }
}

/// `host:port` or `tcp://host:port` (also `tls://`).
fn parse_target(target: &str) -> Option<(String, u16)> {
    let t = target.trim();
    let rest = t
        .strip_prefix("tcp://")
        .or_else(|| t.strip_prefix("tls://"))
        .unwrap_or(t);
    let authority = rest.split('/').next()?;
    let (host, port) = authority.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return None;
    }
    Some((host.to_string(), port.parse().ok()?))
}

/// `\r`, `\n`, `\t` and `\\` escapes.
fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('r') => out.push('\r'),
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

vantage_sdk::export_check!(Tcp);
