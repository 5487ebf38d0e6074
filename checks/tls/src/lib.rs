//! `tls`: certificate and handshake inspection.
//!
//! For each target (`host:port`, `tls://host:port` or an `https://` URL),
//! completes a TLS handshake and reports the presented chain: the
//! verification verdict, and the days left until the earliest expiry in the
//! chain (intermediates included). Degraded under `days.degraded` days,
//! failed under `days.fail` days or for any verdict other than `valid`.
//!
//! In a configuration file (`example.toml` in this crate; the end-to-end test
//! `check_examples` proves `vantage validate` accepts it and the check takes
//! its configuration):
//!
#![doc = concat!("```toml\n", include_str!("../example.toml"), "```")]

use vantage_sdk::tls::{self, TlsOptions, TlsReport, TlsRequest};
use vantage_sdk::{
    Check, ConfigKey, Context, Error, Metadata, Outcome, TARGET, ValueType, clock, format_duration,
};

const DEFAULT_DEGRADED_DAYS: f64 = 21.0;
const DEFAULT_FAIL_DAYS: f64 = 7.0;

struct Tls;

impl Check for Tls {
    fn describe() -> Metadata {
        let key = ConfigKey::new;
        let metadata = Metadata::new("tls")
            .description(
                "Completes a TLS handshake with each target (`host:port`, `tls://host:port` or \
                 an `https://` URL) and proves its certificate chain verifies, matches the name \
                 and does not expire soon (the earliest expiry in the chain counts, \
                 intermediates included). Reports the chain, protocol version, cipher suite and \
                 handshake time.",
            )
            .outbound(TARGET)
            .config_key(
                key(
                    "days.degraded",
                    "Degraded (a warning) when the chain expires in fewer days than this.",
                )
                .typed(ValueType::Number)
                .default("21"),
            )
            .config_key(
                key(
                    "days.fail",
                    "Fail when the chain expires in fewer days than this.",
                )
                .typed(ValueType::Number)
                .default("7"),
            )
            .config_key(key("alpn", "ALPN protocols to offer (list), e.g. `h2`.").repeated())
            .config_key(
                key("timeout", "Timeout of each inspection, e.g. `5s`.")
                    .typed(ValueType::Duration)
                    .default("10s"),
            );
        // Server name, CAs, client certificate and versions, as the other
        // checks name them; not `insecure`: an inspection never fails on a
        // bad certificate, it reports it.
        TlsOptions::config_keys()
            .into_iter()
            .filter(|k| k.key != "insecure")
            .fold(metadata, Metadata::config_key)
    }

    fn run(ctx: &Context) -> Result<Outcome, Error> {
        let degraded_days = ctx
            .config_parse::<f64>("days.degraded")?
            .unwrap_or(DEFAULT_DEGRADED_DAYS);
        let fail_days = ctx
            .config_parse::<f64>("days.fail")?
            .unwrap_or(DEFAULT_FAIL_DAYS);
        let timeout = ctx.config_duration("timeout")?;
        let options = TlsOptions::from_context(ctx)?;
        let targets =
            ctx.require_targets("configure `host:port`, `tls://host:port` or `https://` targets")?;
        let mut outcome = Outcome::new();
        let several = targets.len() > 1;
        let headlines = outcome.for_each_target("target", targets, |target, outcome| {
            let Some((host, port)) = parse_target(target) else {
                outcome.assert(
                    "target is host:port",
                    false,
                    format!(
                        "cannot read {target:?} as host:port, tls://host:port or an https:// URL"
                    ),
                );
                // Unlike the others, this headline names its target even alone.
                return if several {
                    "bad target".to_string()
                } else {
                    format!("{target}: bad target")
                };
            };
            let mut req = TlsRequest::new(host.clone(), port).options(options.clone());
            for p in ctx.config_list("alpn") {
                req = req.alpn(p);
            }
            req = req.timeout(ctx.call_timeout(timeout));
            match tls::inspect(&req) {
                Ok(report) => judge(&report, degraded_days, fail_days, outcome),
                Err(e) => {
                    outcome.assert("handshake completed", false, e.to_string());
                    format!("handshake failed: {e}")
                }
            }
        });
        outcome.headline(headlines.per_target());
        Ok(outcome)
    }
}

/// Record the assertions about one report; returns its headline.
fn judge(report: &TlsReport, degraded_days: f64, fail_days: f64, outcome: &mut Outcome) -> String {
    let info = &report.info;
    outcome.assert(
        "handshake completed",
        true,
        format!(
            "{} {} with {} in {}",
            info.version,
            info.cipher_suite,
            report.remote_addr,
            format_duration(report.timings.handshake_ms)
        ),
    );
    let verdict = info.verdict.to_string();
    outcome.assert(
        "certificate chain is valid",
        info.verdict.is_valid(),
        format!("verdict {verdict}"),
    );
    outcome
        .measure("tls_handshake_ms", report.timings.handshake_ms, "ms")
        .measure("tls_resolve_ms", report.timings.resolve_ms, "ms")
        .measure("tls_connect_ms", report.timings.connect_ms, "ms")
        .label("tls_verdict", verdict.clone())
        .label("tls_version", info.version.clone())
        .label("tls_cipher_suite", info.cipher_suite.clone());
    if let Some(alpn) = &info.alpn {
        outcome.label("tls_alpn", alpn.clone());
    }
    let chain: Vec<String> = info
        .chain
        .iter()
        .enumerate()
        .map(|(i, c)| {
            format!(
                "#{i} subject {}; issuer {}; sans [{}]; serial {}; valid {} .. {}; {}; {} {} bits; sha256 {}",
                c.subject,
                c.issuer,
                c.sans.join(", "),
                c.serial,
                date(c.not_before_unix_ms),
                date(c.not_after_unix_ms),
                c.signature_algorithm,
                c.key_type,
                c.key_bits,
                c.sha256_fingerprint
            )
        })
        .collect();
    outcome.assert(
        "chain presented",
        !chain.is_empty(),
        format!("{} certificate(s): {}", chain.len(), chain.join(" | ")),
    );
    outcome.measure_tls(info);
    let days = info.days_left(clock::now_unix_ms());
    if let Some(days) = days {
        outcome.measure("tls_cert_days_left", days, "days");
        let which = info
            .chain
            .iter()
            .find(|c| Some(c.not_after_unix_ms) == info.earliest_expiry_unix_ms)
            .map(|c| c.subject.clone())
            .unwrap_or_default();
        outcome.assert(
            format!("chain valid for at least {fail_days} days"),
            days >= fail_days,
            format!("{days:.1} days left (earliest expiry: {which})"),
        );
        if days >= fail_days {
            outcome.assert_or_warn(
                format!("chain valid for at least {degraded_days} days"),
                days >= degraded_days,
                format!("{days:.1} days left (earliest expiry: {which})"),
            );
        }
    }
    match days {
        Some(days) => format!("{verdict}, {days:.1} days left, {}", info.version),
        None => format!("{verdict}, {}", info.version),
    }
}

/// `host:port`, `tls://host:port`, `https://host[:port]/…` (default 443).
fn parse_target(target: &str) -> Option<(String, u16)> {
    let t = target.trim();
    let (rest, default_port) = match t.split_once("://") {
        Some(("https" | "tls", r)) => (r, Some(443)),
        Some((_, r)) => (r, None),
        None => (t, None),
    };
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit('@').next()?;
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => default_port?,
            None => return None,
        };
        (h.to_string(), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p.parse().ok()?),
            None => (authority.to_string(), default_port?),
        }
    };
    if host.is_empty() {
        return None;
    }
    Some((host, port))
}

/// A unix-ms timestamp as `YYYY-MM-DD` (UTC).
fn date(unix_ms: i64) -> String {
    let days = unix_ms.div_euclid(86_400_000);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    format!("{y:04}-{m:02}-{d:02}")
}

vantage_sdk::export_check!(Tls);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(parse_target("a.test:8443"), Some(("a.test".into(), 8443)));
        assert_eq!(parse_target("tls://a.test"), Some(("a.test".into(), 443)));
        assert_eq!(
            parse_target("https://a.test:9/x?y"),
            Some(("a.test".into(), 9))
        );
        assert_eq!(parse_target("[::1]:443"), Some(("::1".into(), 443)));
        assert_eq!(parse_target("a.test"), None);
    }

    #[test]
    fn declared_keys() {
        let m = Tls::describe();
        let keys: Vec<&str> = m.config.iter().map(|k| k.key.as_str()).collect();
        for key in [
            "ca_bundle",
            "server_name",
            "min_tls_version",
            "max_tls_version",
        ] {
            assert!(keys.contains(&key), "{key}");
        }
        assert!(!keys.contains(&"insecure"));
        for key in &m.config {
            if let Some(default) = &key.default {
                assert!(key.value_type.check(default).is_ok(), "{}", key.key);
            }
        }
    }

    #[test]
    fn dates() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(1_709_251_200_000), "2024-03-01");
    }
}
