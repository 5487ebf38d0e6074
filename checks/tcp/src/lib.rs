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

use vantage_sdk::http::ClientSettings;
use vantage_sdk::tcp::{self, Starttls, TcpReport, TcpRequest, TcpStep};
use vantage_sdk::tls::TlsOptions;
use vantage_sdk::{
    Check, ConfigError, ConfigKey, Context, Error, Metadata, Outcome, TARGET, ValueType,
    format_duration,
};

struct Tcp;

impl Check for Tcp {
    fn describe() -> Metadata {
        let key = ConfigKey::new;
        let metadata = Metadata::new("tcp")
            .description(
                "Connects to each `host:port` target and, if configured, runs a scripted \
                 exchange (blackbox_exporter's `query_response`: expect a line, send, upgrade \
                 with STARTTLS), and speaks TLS (from the first byte or with STARTTLS for SMTP, \
                 IMAP or POP3), requiring a valid certificate.",
            )
            .outbound(TARGET)
            .config_key(
                key(
                    "targets",
                    "More `host:port` targets to probe (list), in addition to the run's targets; \
                     each must be allowed outbound.",
                )
                .typed(ValueType::HostPort)
                .repeated(),
            )
            .config_key(key(
                "query_response.<n>",
                "The exchange, in order, as blackbox_exporter's `query_response`: each item \
                     (`query_response.0.expect`, `.send`, `.starttls`) waits for a line matching \
                     `expect` (a regular expression), then sends `send` (`${1}` stands for a group \
                     of that match; `\\r\\n` escapes are understood), then upgrades to TLS when \
                     `starttls = true`.",
            ))
            .config_key(
                key("read_banner", "Read what the server says first.")
                    .typed(ValueType::Boolean)
                    .default("false"),
            )
            .config_key(key(
                "send",
                "Text to send after connecting (and after the banner, with `read_banner`); \
                 `\\r\\n` and `\\n` escapes are understood.",
            ))
            .config_key(
                key(
                    "expect",
                    "Regular expression the banner or reply must match.",
                )
                .typed(ValueType::Regex),
            )
            .config_key(
                key("tls", "Speak TLS from the first byte.")
                    .typed(ValueType::Boolean)
                    .default("false"),
            )
            .config_key(
                key(
                    "starttls",
                    "Upgrade with the STARTTLS dialogue of `smtp`, `imap` or `pop3`.",
                )
                .typed(ValueType::choice(["smtp", "imap", "pop3"])),
            )
            .config_key(
                key("timeout", "Timeout of each probe, e.g. `5s`.")
                    .typed(ValueType::Duration)
                    .default("10s"),
            );
        TlsOptions::config_keys()
            .into_iter()
            .chain(ClientSettings::ip_config_keys())
            .fold(metadata, Metadata::config_key)
    }

    fn run(ctx: &Context) -> Result<Outcome, Error> {
        let use_tls = ctx.config_bool("tls")?.unwrap_or(false);
        let timeout = ctx.config_duration("timeout")?;
        let tls_options = TlsOptions::from_context(ctx)?;
        let ip = ClientSettings::ip_from_context(ctx)?;
        let mut steps = steps(ctx)?;
        let starttls = ctx
            .config("starttls")
            .map(|s| {
                Starttls::parse(s)
                    .ok_or_else(|| ConfigError::new("starttls", s, "expected smtp, imap or pop3"))
            })
            .transpose()?;
        // With a STARTTLS dialogue, the host reads the greeting itself: the
        // shorthand `expect` (nothing sent) is matched against what it
        // received, here, instead of waiting for another line.
        let mut greeting = None;
        if starttls.is_some()
            && ctx.config("send").is_none()
            && let Some(pattern) = ctx.config("expect")
            && let [TcpStep::Expect(_)] = steps.as_slice()
        {
            greeting =
                Some(vantage_sdk::regex_lite::Regex::new(pattern).map_err(|e| {
                    ConfigError::new("expect", pattern, format!("invalid regex: {e}"))
                })?);
            steps.clear();
        }
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
            let mut req = TcpRequest::new(host, port).tls_options(tls_options.clone());
            req.steps = steps.clone();
            if use_tls {
                req = req.tls();
            }
            if let Some(p) = starttls {
                req = req.starttls(p);
            }
            if let Some((family, fallback)) = ip {
                req = req.prefer_ip(family, fallback);
            }
            req = req.timeout(ctx.call_timeout(timeout));
            match tcp::probe(&req) {
                Err(e) => {
                    outcome.assert("connected", false, e.to_string());
                    format!("failed: {e}")
                }
                Ok(report) => {
                    if let Some(re) = &greeting {
                        let text = String::from_utf8_lossy(&report.received);
                        let shown: String = text.trim_end().chars().take(200).collect();
                        outcome.assert(
                            format!("greeting matches /{}/", re.as_str()),
                            re.is_match(&text),
                            format!("received {shown:?}"),
                        );
                    }
                    judge(&req, &report, outcome)
                }
            }
        });
        outcome.headline(headlines.per_target());
        Ok(outcome)
    }
}

/// The assertions and measurements of one probe; returns its headline.
fn judge(req: &TcpRequest, report: &TcpReport, outcome: &mut Outcome) -> String {
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
        .measure("tcp_resolve_ms", report.resolve_ms, "ms")
        .measure("tcp_connect_ms", report.connect_ms, "ms")
        .measure("tcp_total_ms", report.total_ms, "ms")
        .measure("tcp_received_bytes", report.received.len() as f64, "bytes");
    let text = String::from_utf8_lossy(&report.received);
    let shown: String = text.trim_end().chars().take(200).collect();
    if let Some(matched) = report.matched {
        let detail = match &report.failed_step {
            Some((index, why)) => {
                let step = req
                    .steps
                    .get(*index as usize)
                    .map(ToString::to_string)
                    .unwrap_or_default();
                format!(
                    "step {} ({step}) failed: {why}; received {shown:?}",
                    index + 1
                )
            }
            None => format!("{} step(s); received {shown:?}", req.steps.len()),
        };
        outcome.assert("exchange completed as scripted", matched, detail);
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
        outcome.measure_tls(info);
        outcome.label("tls_version", info.version.clone());
    }
    format!(
        "connected to {} in {}",
        report.remote_addr,
        format_duration(report.total_ms)
    )
}

/// The scripted exchange: `query_response.<n>.{expect,send,starttls}` in
/// index order, or the shorthand `read_banner` / `send` / `expect`.
fn steps(ctx: &Context) -> Result<Vec<TcpStep>, ConfigError> {
    let mut items: Vec<(usize, &str, &str)> = Vec::new();
    for (rest, value) in ctx.config_table("query_response") {
        let key = format!("query_response.{rest}");
        let (index, field) = rest
            .split_once('.')
            .and_then(|(i, f)| Some((i.parse::<usize>().ok()?, f)))
            .ok_or_else(|| {
                ConfigError::hidden(
                    &key,
                    "expected query_response.<n>.expect, .send or .starttls",
                )
            })?;
        if !matches!(field, "expect" | "send" | "starttls") {
            return Err(ConfigError::hidden(
                &key,
                "expected expect, send or starttls",
            ));
        }
        items.push((index, field, value));
    }
    if !items.is_empty() {
        if ctx.has_config("send") || ctx.has_config("expect") || ctx.has_config("read_banner") {
            return Err(ConfigError::hidden(
                "query_response",
                "use either query_response or send/expect/read_banner, not both",
            ));
        }
        items.sort_by_key(|(index, _, _)| *index);
        let order = |field: &str| match field {
            "expect" => 0,
            "send" => 1,
            _ => 2,
        };
        items.sort_by_key(|(index, field, _)| (*index, order(field)));
        let mut steps = Vec::new();
        for (index, field, value) in items {
            let key = format!("query_response.{index}.{field}");
            match field {
                "expect" => {
                    vantage_sdk::regex_lite::Regex::new(value).map_err(|e| {
                        ConfigError::new(&key, value, format!("invalid regex: {e}"))
                    })?;
                    steps.push(TcpStep::Expect(value.to_string()));
                }
                "send" => steps.push(TcpStep::Send(unescape(value).into_bytes())),
                _ => {
                    let on = ctx.config_bool(&key)?.unwrap_or(false);
                    if on {
                        steps.push(TcpStep::Starttls);
                    }
                }
            }
        }
        return Ok(steps);
    }
    // The shorthand: banner, then what to send, then what the answer
    // must match (the banner itself when nothing is sent).
    let mut steps = Vec::new();
    let send = ctx.config("send");
    let expect = ctx.config("expect");
    if ctx.config_bool("read_banner")?.unwrap_or(false) && !(send.is_none() && expect.is_some()) {
        steps.push(TcpStep::Read);
    }
    if let Some(send) = send {
        steps.push(TcpStep::Send(unescape(send).into_bytes()));
    }
    if let Some(expect) = expect {
        vantage_sdk::regex_lite::Regex::new(expect)
            .map_err(|e| ConfigError::new("expect", expect, format!("invalid regex: {e}")))?;
        steps.push(TcpStep::Expect(expect.to_string()));
    }
    Ok(steps)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(entries: &[(&str, &str)]) -> Context {
        Context::builder().configs(entries.iter().copied()).build()
    }

    #[test]
    fn query_response_items_run_expect_send_starttls_in_order() {
        let steps = steps(&ctx(&[
            ("query_response.1.send", "STARTTLS\\r\\n"),
            ("query_response.0.send", "EHLO prober\\r\\n"),
            ("query_response.0.expect", "^220 "),
            ("query_response.1.expect", "^250-STARTTLS"),
            ("query_response.2.expect", "^220"),
            ("query_response.2.starttls", "true"),
        ]))
        .unwrap();
        assert_eq!(
            steps,
            [
                TcpStep::Expect("^220 ".into()),
                TcpStep::Send(b"EHLO prober\r\n".to_vec()),
                TcpStep::Expect("^250-STARTTLS".into()),
                TcpStep::Send(b"STARTTLS\r\n".to_vec()),
                TcpStep::Expect("^220".into()),
                TcpStep::Starttls,
            ]
        );
    }

    #[test]
    fn the_shorthand_keeps_its_meaning() {
        let s = |entries: &[(&str, &str)]| steps(&ctx(entries)).unwrap();
        assert!(s(&[]).is_empty());
        assert_eq!(s(&[("read_banner", "true")]), [TcpStep::Read]);
        // Without anything sent, `expect` matches the banner itself.
        assert_eq!(
            s(&[("read_banner", "true"), ("expect", "^SSH-")]),
            [TcpStep::Expect("^SSH-".into())]
        );
        assert_eq!(
            s(&[
                ("read_banner", "true"),
                ("send", "PING\\n"),
                ("expect", "PONG")
            ]),
            [
                TcpStep::Read,
                TcpStep::Send(b"PING\n".to_vec()),
                TcpStep::Expect("PONG".into())
            ]
        );
    }

    #[test]
    fn bad_steps_name_their_key() {
        let key = |entries: &[(&str, &str)]| steps(&ctx(entries)).unwrap_err().key;
        assert_eq!(
            key(&[("query_response.0.expect", "(")]),
            "query_response.0.expect"
        );
        assert_eq!(
            key(&[("query_response.x.send", "a")]),
            "query_response.x.send"
        );
        assert_eq!(
            key(&[("query_response.0.wait", "1")]),
            "query_response.0.wait"
        );
        assert_eq!(
            key(&[("query_response.0.send", "a"), ("send", "b")]),
            "query_response"
        );
        assert_eq!(key(&[("expect", "[")]), "expect");
    }

    #[test]
    fn declared_defaults_are_valid() {
        for key in Tcp::describe().config {
            if let Some(default) = &key.default {
                assert!(key.value_type.check(default).is_ok(), "{}", key.key);
            }
        }
    }
}
