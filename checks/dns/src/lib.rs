//! `dns`: asks one DNS question per name and asserts the answer.
//!
//! The names come from `name` and from the targets (a target may be a bare
//! name, `api.example.com`, or `dns://api.example.com`, which also allows the
//! query through `{target}`). Each name is asked for `type` records (default
//! `A`), through `server` when set, else through the system resolver.
//!
//! Assertions, per name:
//! - `lookup completed`: only when the host returned no answer at all (the
//!   detail is the typed error, e.g. `denied: …` or `timeout: …`);
//! - `rcode is NOERROR` (or `rcode in …` for the `expect.rcode` list): NXDOMAIN or SERVFAIL are answers,
//!   which pass when expected;
//! - `has A records`: when `expect.rcode` is NOERROR and `expect.count` is not
//!   set, an empty answer (NODATA) fails;
//! - `answer contains V` for each of `expect.values`: some answer record's data
//!   equals `V`, compared in presentation format without case, quotes or
//!   trailing dots (`10 mail.example.com` matches `10 mail.example.com.`); a
//!   single-word value also matches an MX, SRV or CNAME target, and a TXT value
//!   matches the record's strings joined;
//! - `TTL at least N` / `TTL at most N` (`expect.min_ttl` / `expect.max_ttl`):
//!   on every record of the asked type;
//! - `answer count is N` (`expect.count`): records of the asked type (a CNAME
//!   leading to them is not counted).
//!
//! - `<section> records do not match /re/` … for blackbox_exporter's
//!   `validate_answer_rrs`, `validate_authority_rrs` and
//!   `validate_additional_rrs` (`fail_if_matches_regexp`,
//!   `fail_if_all_match_regexp`, `fail_if_not_matches_regexp`,
//!   `fail_if_none_matches_regexp`), with blackbox_exporter's semantics: each
//!   record is matched as one line, `name TTL IN TYPE data`, tab-separated
//!   (`vantage.test.\t300\tIN\tA\t127.0.0.1`).
//!
//! `expect.rcode` may list several codes (blackbox_exporter's
//! `valid_rcodes`); `transport` (`udp`, `tcp`) and `recursion_desired`
//! (default `true`) shape the query.
//!
//! Measurements: `dns_lookup_ms`, `dns_answer_count`, `dns_authority_count`,
//! `dns_additional_count`; labels `rcode`, `server`.
//!
//! In a configuration file, blackbox_exporter's `dns` module settings under
//! the same names:
//!
//! ```toml
//! [[check]]
//! name = "mx"
//! component = "dns.wasm"
//! every = "5m"
//! allow = ["dns://127.0.0.1:53"]
//!
//! [check.config]
//! name = "example.com"
//! type = "MX"
//! server = "127.0.0.1:53"
//! transport = "tcp"
//! recursion_desired = false
//! expect.rcode = ["NOERROR"]
//! validate_answer_rrs.fail_if_not_matches_regexp = ['example\.com\.\t\d+\tIN\tMX\t10 mail\.example\.com\.']
//! validate_authority_rrs.fail_if_matches_regexp = ['.*\tIN\tNS\t.*\.isp\.net\.$']
//! ```

use vantage_sdk::dns::{self, DnsAnswer, DnsQuery, DnsRecord, DnsTransport, RecordType};
use vantage_sdk::regex_lite::Regex;
use vantage_sdk::{
    Check, ConfigError, ConfigKey, Context, Error, ErrorKind, Metadata, Outcome, TARGET, ValueType,
    format_duration,
};

/// The sections a `validate_*_rrs` rule applies to, by config prefix.
const SECTIONS: [(&str, &str); 3] = [
    ("validate_answer_rrs", "answer"),
    ("validate_authority_rrs", "authority"),
    ("validate_additional_rrs", "additional"),
];

/// The four rule kinds of a `validate_*_rrs` section.
const RULES: [&str; 4] = [
    "fail_if_matches_regexp",
    "fail_if_all_match_regexp",
    "fail_if_not_matches_regexp",
    "fail_if_none_matches_regexp",
];

struct Dns;

impl Check for Dns {
    fn describe() -> Metadata {
        let key = ConfigKey::new;
        let metadata = Metadata::new("dns")
            .description(
                "Asks one DNS question per name (from `name` or the targets) and asserts the \
                 response code, that the expected values are in the answer, the TTLs and the \
                 number of records. NXDOMAIN and SERVFAIL are answers: they pass when expected.",
            )
            .outbound(TARGET)
            .config_key(key(
                "name",
                "The name to look up; targets are looked up too (bare names or dns://NAME).",
            ))
            .config_key(
                key(
                    "type",
                    "Record type: A, AAAA, CNAME, MX, TXT, NS, SOA, CAA, SRV, PTR, DNSKEY, DS, \
                     HTTPS or SVCB.",
                )
                .typed(ValueType::choice(TYPES))
                .default("A"),
            )
            .config_key(
                key(
                    "transport",
                    "`udp` (falling back to TCP when truncated) or `tcp`.",
                )
                .typed(ValueType::choice(["udp", "tcp"]))
                .default("udp"),
            )
            .config_key(
                key("recursion_desired", "Set the RD (recursion desired) bit.")
                    .typed(ValueType::Boolean)
                    .default("true"),
            )
            .config_key(key(
                "server",
                "Ask this nameserver (`ip` or `ip:port`) instead of the system resolver; \
                 needs a `dns://IP[:PORT]` allow pattern.",
            ))
            .config_key(
                key("timeout", "Timeout of each query, e.g. `2s`.")
                    .typed(ValueType::Duration)
                    .default("5s"),
            )
            .config_key(
                key(
                    "expect.rcode",
                    "Acceptable response codes (list), e.g. NOERROR, NXDOMAIN, SERVFAIL.",
                )
                .repeated()
                .default("NOERROR"),
            )
            .config_key(key(
                "expect.values",
                "Values that must be in the answer, in presentation format (list), e.g. \
                 `93.184.216.34`, `10 mail.example.com`, `v=spf1 -all`.",
            ))
            .config_key(
                key(
                    "expect.min_ttl",
                    "Lowest acceptable TTL of the records, in seconds.",
                )
                .typed(ValueType::integer(Some(0), Some(i64::from(u32::MAX)))),
            )
            .config_key(
                key(
                    "expect.max_ttl",
                    "Highest acceptable TTL of the records, in seconds.",
                )
                .typed(ValueType::integer(Some(0), Some(i64::from(u32::MAX)))),
            )
            .config_key(
                key("expect.count", "Exact number of records of the asked type.")
                    .typed(ValueType::integer(Some(0), None)),
            );
        let mut metadata = metadata;
        for (prefix, section) in SECTIONS {
            for rule in RULES {
                let what = match rule {
                    "fail_if_matches_regexp" => "fail when any record matches one of these",
                    "fail_if_all_match_regexp" => "fail when every record matches one of these",
                    "fail_if_not_matches_regexp" => {
                        "fail when a record does not match one of these"
                    }
                    _ => "fail when no record matches one of these",
                };
                metadata = metadata.config_key(
                    ConfigKey::new(
                        format!("{prefix}.{rule}"),
                        format!(
                            "Regular expressions over the {section} section's records, each as \
                             `name TTL IN TYPE data`: {what} (list)."
                        ),
                    )
                    .typed(ValueType::Regex)
                    .repeated(),
                );
            }
        }
        metadata
    }

    fn run(ctx: &Context) -> Result<Outcome, Error> {
        let spec = Spec::from_context(ctx)?;
        let names = names(ctx);
        if names.is_empty() {
            return Err(Error::new(
                ErrorKind::NoTarget,
                "no name: set `name` or configure the names to look up as targets",
            ));
        }
        let mut outcome = Outcome::new();
        // Each name's headline already starts with the name.
        let headlines = outcome.for_each_target("name", &names, |name, outcome| {
            probe(ctx, &spec, name, outcome)
        });
        outcome.headline(headlines.joined());
        Ok(outcome)
    }
}

/// The configuration, parsed.
#[derive(Debug, Clone, PartialEq)]
struct Spec {
    record_type: RecordType,
    server: Option<String>,
    timeout: Option<std::time::Duration>,
    transport: DnsTransport,
    recursion_desired: bool,
    /// Acceptable response codes, uppercase.
    rcodes: Vec<String>,
    /// `(section, rule, pattern)`, in configuration order.
    validations: Vec<(&'static str, &'static str, RegexRule)>,
    values: Vec<String>,
    min_ttl: Option<u32>,
    max_ttl: Option<u32>,
    count: Option<usize>,
}

/// A compiled pattern that compares by its text (for `Spec: PartialEq`).
#[derive(Debug, Clone)]
struct RegexRule(Regex);

impl PartialEq for RegexRule {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

impl Spec {
    fn from_context(ctx: &Context) -> Result<Self, ConfigError> {
        let type_text = ctx.config_or("type", "A");
        let record_type = parse_type(type_text).ok_or_else(|| {
            ConfigError::new(
                "type",
                type_text,
                format!("unknown record type; use {}", TYPES.join(", ")),
            )
        })?;
        let server = ctx
            .config("server")
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from);
        let transport = ctx
            .config("transport")
            .map(|t| {
                DnsTransport::parse(t)
                    .ok_or_else(|| ConfigError::new("transport", t, "expected udp or tcp"))
            })
            .transpose()?
            .unwrap_or(DnsTransport::Udp);
        let mut rcodes: Vec<String> = ctx
            .config_list("expect.rcode")
            .into_iter()
            .map(|r| r.trim().to_ascii_uppercase())
            .filter(|r| !r.is_empty())
            .collect();
        if rcodes.is_empty() {
            rcodes.push("NOERROR".to_string());
        }
        let mut validations = Vec::new();
        for (prefix, section) in SECTIONS {
            for rule in RULES {
                let key = format!("{prefix}.{rule}");
                for pattern in ctx.config_list(&key) {
                    let re = Regex::new(pattern).map_err(|e| {
                        ConfigError::new(&key, pattern, format!("invalid regex: {e}"))
                    })?;
                    validations.push((section, rule, RegexRule(re)));
                }
            }
        }
        Ok(Spec {
            record_type,
            server,
            timeout: ctx.config_duration("timeout")?,
            transport,
            recursion_desired: ctx.config_bool("recursion_desired")?.unwrap_or(true),
            rcodes,
            validations,
            values: ctx
                .config_list("expect.values")
                .into_iter()
                .map(String::from)
                .collect(),
            min_ttl: ctx.config_parse("expect.min_ttl")?,
            max_ttl: ctx.config_parse("expect.max_ttl")?,
            count: ctx.config_parse("expect.count")?,
        })
    }
}

/// The record types a query may ask for, as configured.
const TYPES: [&str; 14] = [
    "A", "AAAA", "CNAME", "MX", "TXT", "NS", "SOA", "CAA", "SRV", "PTR", "DNSKEY", "DS", "HTTPS",
    "SVCB",
];

fn parse_type(text: &str) -> Option<RecordType> {
    Some(match text.trim().to_ascii_uppercase().as_str() {
        "A" => RecordType::A,
        "AAAA" => RecordType::Aaaa,
        "CNAME" => RecordType::Cname,
        "MX" => RecordType::Mx,
        "TXT" => RecordType::Txt,
        "NS" => RecordType::Ns,
        "SOA" => RecordType::Soa,
        "CAA" => RecordType::Caa,
        "SRV" => RecordType::Srv,
        "PTR" => RecordType::Ptr,
        "DNSKEY" => RecordType::Dnskey,
        "DS" => RecordType::Ds,
        "HTTPS" => RecordType::Https,
        "SVCB" => RecordType::Svcb,
        _ => return None,
    })
}

fn type_name(t: RecordType) -> &'static str {
    match t {
        RecordType::A => "A",
        RecordType::Aaaa => "AAAA",
        RecordType::Cname => "CNAME",
        RecordType::Mx => "MX",
        RecordType::Txt => "TXT",
        RecordType::Ns => "NS",
        RecordType::Soa => "SOA",
        RecordType::Caa => "CAA",
        RecordType::Srv => "SRV",
        RecordType::Ptr => "PTR",
        RecordType::Dnskey => "DNSKEY",
        RecordType::Ds => "DS",
        RecordType::Https => "HTTPS",
        RecordType::Svcb => "SVCB",
    }
}

/// `name`, then each target as a name (`dns://` and any `:port` or path
/// stripped), without duplicates.
fn names(ctx: &Context) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let from_targets = ctx.targets().iter().map(|t| target_name(t));
    for name in ctx
        .config("name")
        .map(String::from)
        .into_iter()
        .chain(from_targets)
    {
        let name = name.trim().to_string();
        if !name.is_empty() && !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

fn target_name(target: &str) -> String {
    let t = target.trim();
    let Some(rest) = t.split_once("://").map(|(_, rest)| rest) else {
        return t.to_string();
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    match host.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h.to_string(),
        _ => host.to_string(),
    }
}

/// Ask about one name and record its assertions; returns its headline.
fn probe(ctx: &Context, spec: &Spec, name: &str, outcome: &mut Outcome) -> String {
    let type_name = type_name(spec.record_type);
    let mut query = DnsQuery::new(name, spec.record_type);
    if let Some(server) = &spec.server {
        query = query.server(server.clone());
    }
    // The host's default is 5 s; never the whole run's budget.
    let wanted = spec.timeout.unwrap_or(std::time::Duration::from_secs(5));
    query = query.timeout(ctx.call_timeout(Some(wanted)));
    query = query
        .transport(spec.transport)
        .recursion_desired(spec.recursion_desired);
    match dns::resolve(&query) {
        Ok(answer) => {
            evaluate(spec, &answer, outcome);
            format!(
                "{name} {type_name}: {}, {} from {} in {}",
                answer.rcode,
                plural(relevant(spec, &answer).len(), "record"),
                answer.server,
                format_duration(answer.duration_ms)
            )
        }
        Err(error) => {
            outcome.assert("lookup completed", false, error.to_string());
            format!("{name} {type_name}: lookup failed ({})", error.kind())
        }
    }
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// The records of the asked type.
fn relevant<'a>(spec: &Spec, answer: &'a DnsAnswer) -> Vec<&'a DnsRecord> {
    answer
        .records
        .iter()
        .filter(|r| r.record_type == spec.record_type)
        .collect()
}

/// The assertions and measurements of one answer.
fn evaluate(spec: &Spec, answer: &DnsAnswer, outcome: &mut Outcome) {
    let type_name = type_name(spec.record_type);
    let records = relevant(spec, answer);
    outcome
        .measure("dns_lookup_ms", answer.duration_ms, "ms")
        .measure("dns_answer_count", records.len() as f64, "")
        .measure("dns_authority_count", answer.authority.len() as f64, "")
        .measure("dns_additional_count", answer.additional.len() as f64, "")
        .label("rcode", answer.rcode.as_str())
        .label("server", answer.server.as_str());
    let rcode_ok = spec
        .rcodes
        .iter()
        .any(|r| answer.rcode.eq_ignore_ascii_case(r));
    let name = match spec.rcodes.as_slice() {
        [one] => format!("rcode is {one}"),
        many => format!("rcode in {}", many.join(", ")),
    };
    outcome.assert(name, rcode_ok, format!("got {}", answer.rcode));
    if spec.rcodes == ["NOERROR"] && spec.count.is_none() {
        outcome.assert(
            format!("has {type_name} records"),
            !records.is_empty(),
            describe_records(&records),
        );
    }
    for value in &spec.values {
        let found = answer.records.iter().any(|r| value_matches(value, r));
        outcome.assert(
            format!("answer contains {value}"),
            found,
            if found {
                "present".to_string()
            } else if answer.records.is_empty() {
                "the answer has no records".to_string()
            } else {
                format!(
                    "not in {}",
                    describe_records(&answer.records.iter().collect::<Vec<_>>())
                )
            },
        );
    }
    let ttls = || records.iter().map(|r| r.ttl);
    if let Some(min) = spec.min_ttl {
        let lowest = ttls().min();
        outcome.assert(
            format!("TTL at least {min}"),
            lowest.is_some_and(|t| t >= min),
            lowest.map_or("no records".to_string(), |t| format!("lowest TTL {t}")),
        );
    }
    if let Some(max) = spec.max_ttl {
        let highest = ttls().max();
        outcome.assert(
            format!("TTL at most {max}"),
            highest.is_some_and(|t| t <= max),
            highest.map_or("no records".to_string(), |t| format!("highest TTL {t}")),
        );
    }
    if let Some(count) = spec.count {
        outcome.assert(
            format!("answer count is {count}"),
            records.len() == count,
            format!("got {}", records.len()),
        );
    }
    for (section, rule, RegexRule(re)) in &spec.validations {
        let rrs = match *section {
            "answer" => &answer.records,
            "authority" => &answer.authority,
            _ => &answer.additional,
        };
        let (name, passed, detail) = validate(section, rule, re, rrs);
        outcome.assert(name, passed, detail);
    }
}

/// One `validate_*_rrs` rule over one section, as blackbox_exporter's
/// `validRRs`: the assertion's name, whether it held and what was seen.
fn validate(section: &str, rule: &str, re: &Regex, rrs: &[DnsRecord]) -> (String, bool, String) {
    let lines: Vec<String> = rrs.iter().map(rr_line).collect();
    let matching: Vec<&String> = lines.iter().filter(|l| re.is_match(l)).collect();
    let p = re.as_str();
    let (name, passed) = match rule {
        "fail_if_matches_regexp" => (
            format!("no {section} record matches /{p}/"),
            matching.is_empty(),
        ),
        "fail_if_all_match_regexp" => (
            format!("not every {section} record matches /{p}/"),
            // With no record, "all match" holds vacuously: blackbox fails.
            matching.len() < lines.len(),
        ),
        "fail_if_not_matches_regexp" => (
            format!("every {section} record matches /{p}/"),
            !lines.is_empty() && matching.len() == lines.len(),
        ),
        _ => (
            format!("some {section} record matches /{p}/"),
            !matching.is_empty(),
        ),
    };
    let detail = if lines.is_empty() {
        format!("no {section} records")
    } else {
        format!(
            "{} of {} match; {}",
            matching.len(),
            lines.len(),
            excerpt(&lines.join(" | "), 300)
        )
    };
    (name, passed, detail)
}

/// A record as blackbox_exporter matches it (miekg/dns's `RR.String()`):
/// `name.\tTTL\tIN\tTYPE\tdata`.
fn rr_line(rr: &DnsRecord) -> String {
    let name = if rr.name.ends_with('.') {
        rr.name.clone()
    } else {
        format!("{}.", rr.name)
    };
    format!(
        "{name}\t{}\tIN\t{}\t{}",
        rr.ttl,
        type_name(rr.record_type),
        rr.data
    )
}

fn excerpt(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_string(),
        Some((cut, _)) => format!("{}…", &text[..cut]),
    }
}

fn describe_records(records: &[&DnsRecord]) -> String {
    if records.is_empty() {
        return "no records".to_string();
    }
    let shown: Vec<String> = records
        .iter()
        .take(8)
        .map(|r| format!("{} {}", type_name(r.record_type), r.data))
        .collect();
    let more = records.len().saturating_sub(shown.len());
    if more > 0 {
        format!("[{}, … {more} more]", shown.join(", "))
    } else {
        format!("[{}]", shown.join(", "))
    }
}

/// Whether an expected value matches a record's data (see the crate docs).
fn value_matches(value: &str, record: &DnsRecord) -> bool {
    let expected = normalize(value);
    if expected.is_empty() {
        return false;
    }
    if normalize(&record.data) == expected {
        return true;
    }
    match record.record_type {
        RecordType::Txt => {
            let joined = txt_strings(&record.data).concat();
            joined == value.trim() || txt_strings(&record.data).iter().any(|s| s == value.trim())
        }
        RecordType::Mx | RecordType::Srv | RecordType::Cname | RecordType::Ns
            if !expected.contains(' ') =>
        {
            normalize(&record.data)
                .rsplit(' ')
                .next()
                .is_some_and(|target| target == expected)
        }
        _ => false,
    }
}

/// Lowercase, quotes removed, words separated by one space, trailing dots of
/// names removed.
fn normalize(text: &str) -> String {
    text.replace('"', "")
        .split_whitespace()
        .map(|w| w.trim_end_matches('.').to_ascii_lowercase())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The strings of TXT data in presentation format (`"a" "b\"c"` → `a`, `b"c`).
fn txt_strings(data: &str) -> Vec<String> {
    let mut strings = Vec::new();
    let mut chars = data.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '"' {
            continue;
        }
        let mut bytes: Vec<u8> = Vec::new();
        while let Some(c) = chars.next() {
            match c {
                '"' => break,
                '\\' => {
                    let digits: String =
                        std::iter::from_fn(|| chars.next_if(|d| d.is_ascii_digit()))
                            .take(3)
                            .collect();
                    if digits.len() == 3 {
                        bytes.push(digits.parse::<u16>().unwrap_or(0).min(255) as u8);
                    } else if let Some(escaped) = chars.next() {
                        let mut buf = [0u8; 4];
                        bytes.extend_from_slice(escaped.encode_utf8(&mut buf).as_bytes());
                    }
                }
                other => {
                    let mut buf = [0u8; 4];
                    bytes.extend_from_slice(other.encode_utf8(&mut buf).as_bytes());
                }
            }
        }
        strings.push(String::from_utf8_lossy(&bytes).into_owned());
    }
    strings
}

vantage_sdk::export_check!(Dns);

#[cfg(test)]
mod tests {
    use super::*;
    use vantage_sdk::Status;

    fn spec(entries: &[(&str, &str)]) -> Spec {
        let ctx = Context::builder().configs(entries.iter().copied()).build();
        assert!(ctx.check_config_keys(&Dns::describe()).is_ok());
        assert!(ctx.check_config_values(&Dns::describe()).is_ok());
        Spec::from_context(&ctx).unwrap()
    }

    fn rec(t: RecordType, ttl: u32, data: &str) -> DnsRecord {
        DnsRecord {
            name: "vantage.test.".into(),
            record_type: t,
            ttl,
            data: data.into(),
        }
    }

    fn answer(rcode: &str, records: Vec<DnsRecord>) -> DnsAnswer {
        DnsAnswer {
            rcode: rcode.into(),
            records,
            authority: Vec::new(),
            additional: Vec::new(),
            server: "127.0.0.1:53".into(),
            duration_ms: 1.0,
        }
    }

    #[test]
    fn config_defaults_and_errors() {
        let s = spec(&[]);
        assert_eq!(s.record_type, RecordType::A);
        assert_eq!(s.rcodes, ["NOERROR"]);
        assert_eq!(s.transport, DnsTransport::Udp);
        assert!(s.recursion_desired);
        let s = spec(&[
            ("type", "mx"),
            ("expect.rcode", "nxdomain"),
            ("expect.count", "2"),
        ]);
        assert_eq!(
            (s.record_type, s.rcodes.as_slice(), s.count),
            (RecordType::Mx, &["NXDOMAIN".to_string()][..], Some(2))
        );
        let s = spec(&[
            ("transport", "TCP"),
            ("recursion_desired", "false"),
            ("expect.rcode.0", "NOERROR"),
            ("expect.rcode.1", "NXDOMAIN"),
        ]);
        assert_eq!(s.transport, DnsTransport::Tcp);
        assert!(!s.recursion_desired);
        assert_eq!(s.rcodes, ["NOERROR", "NXDOMAIN"]);
        let ctx = Context::builder().config("type", "NAPTR").build();
        assert!(Spec::from_context(&ctx).is_err());
        let ctx = Context::builder().config("expect.min_ttl", "soon").build();
        assert!(Spec::from_context(&ctx).is_err());
    }

    #[test]
    fn names_come_from_config_and_targets() {
        let ctx = Context::builder()
            .config("name", "a.example.com")
            .target("dns://b.example.com")
            .target("dns://c.example.com:53/")
            .target("a.example.com")
            .build();
        assert_eq!(
            names(&ctx),
            ["a.example.com", "b.example.com", "c.example.com"]
        );
    }

    #[test]
    fn values_match_loosely() {
        let mx = rec(RecordType::Mx, 300, "10 mail.vantage.test.");
        assert!(value_matches("10 mail.vantage.test", &mx));
        assert!(value_matches("10 MAIL.vantage.test.", &mx));
        assert!(value_matches("mail.vantage.test", &mx));
        assert!(!value_matches("20 mail.vantage.test", &mx));
        let txt = rec(RecordType::Txt, 300, r#""hello" "world""#);
        assert!(value_matches("helloworld", &txt));
        assert!(value_matches("hello", &txt));
        assert!(value_matches(r#""hello" "world""#, &txt));
        assert!(!value_matches("bye", &txt));
        let spf = rec(RecordType::Txt, 300, r#""v=spf1 -all" "say \"hi\"\009""#);
        assert_eq!(txt_strings(&spf.data), ["v=spf1 -all", "say \"hi\"\t"]);
        assert!(value_matches("v=spf1 -all", &spf));
        let caa = rec(RecordType::Caa, 300, r#"0 issue "letsencrypt.org""#);
        assert!(value_matches("0 issue letsencrypt.org", &caa));
        let a = rec(RecordType::A, 300, "93.184.216.34");
        assert!(value_matches("93.184.216.34", &a));
        assert!(!value_matches("93.184.216.3", &a));
        assert!(!value_matches("", &a));
    }

    #[test]
    fn assertions_per_expectation() {
        let s = spec(&[
            ("type", "MX"),
            ("expect.values.0", "10 mail.vantage.test"),
            ("expect.values.1", "30 nope.vantage.test"),
            ("expect.min_ttl", "60"),
            ("expect.max_ttl", "200"),
        ]);
        let a = answer(
            "NOERROR",
            vec![
                rec(RecordType::Mx, 300, "10 mail.vantage.test."),
                rec(RecordType::Mx, 300, "20 backup.vantage.test."),
            ],
        );
        let mut o = Outcome::new();
        evaluate(&s, &a, &mut o);
        let got: Vec<(&str, bool, &str)> = o
            .assertions()
            .iter()
            .map(|a| {
                (
                    a.name.as_str(),
                    a.state == vantage_sdk::AssertionState::Pass,
                    a.detail.as_str(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("rcode is NOERROR", true, "got NOERROR"),
                (
                    "has MX records",
                    true,
                    "[MX 10 mail.vantage.test., MX 20 backup.vantage.test.]"
                ),
                ("answer contains 10 mail.vantage.test", true, "present"),
                (
                    "answer contains 30 nope.vantage.test",
                    false,
                    "not in [MX 10 mail.vantage.test., MX 20 backup.vantage.test.]"
                ),
                ("TTL at least 60", true, "lowest TTL 300"),
                ("TTL at most 200", false, "highest TTL 300"),
            ]
        );
        assert_eq!(o.status(), Status::Fail);
        let names: Vec<&str> = o.measurements().iter().map(|m| m.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "dns_lookup_ms",
                "dns_answer_count",
                "dns_authority_count",
                "dns_additional_count"
            ]
        );
        assert_eq!(o.measurements()[1].value, 2.0);
    }

    #[test]
    fn nxdomain_passes_only_when_expected() {
        let nx = answer("NXDOMAIN", vec![]);
        let mut o = Outcome::new();
        evaluate(&spec(&[("expect.rcode", "NXDOMAIN")]), &nx, &mut o);
        assert_eq!(o.status(), Status::Pass);
        assert_eq!(o.assertions().len(), 1);
        let mut o = Outcome::new();
        evaluate(&spec(&[]), &nx, &mut o);
        assert_eq!(o.status(), Status::Fail);
        assert_eq!(o.assertions()[0].detail, "got NXDOMAIN");
        // NODATA: NOERROR without records fails unless a count of 0 is expected.
        let empty = answer("NOERROR", vec![]);
        let mut o = Outcome::new();
        evaluate(&spec(&[]), &empty, &mut o);
        assert_eq!(o.status(), Status::Fail);
        let mut o = Outcome::new();
        evaluate(&spec(&[("expect.count", "0")]), &empty, &mut o);
        assert_eq!(o.status(), Status::Pass);
    }
}

#[cfg(test)]
mod validation_tests {
    use super::*;
    use vantage_sdk::AssertionState;

    fn rec(name: &str, t: RecordType, data: &str) -> DnsRecord {
        DnsRecord {
            name: name.into(),
            record_type: t,
            ttl: 300,
            data: data.into(),
        }
    }

    fn run(entries: &[(&str, &str)], answer: &DnsAnswer) -> Vec<(String, bool)> {
        let ctx = Context::builder().configs(entries.iter().copied()).build();
        assert!(ctx.check_config_keys(&Dns::describe()).is_ok());
        assert!(ctx.check_config_values(&Dns::describe()).is_ok());
        let spec = Spec::from_context(&ctx).unwrap();
        let mut o = Outcome::new();
        evaluate(&spec, answer, &mut o);
        o.assertions()
            .iter()
            .filter(|a| a.name.contains(" record "))
            .map(|a| (a.name.clone(), a.state == AssertionState::Pass))
            .collect()
    }

    /// blackbox_exporter's `validRRs` cases (prober/dns_test.go's
    /// `TestRecursiveDNSResponse`/`TestAuthoritativeDNSResponse` shapes).
    #[test]
    fn the_four_rules_follow_blackbox() {
        let answer = DnsAnswer {
            rcode: "NOERROR".into(),
            records: vec![
                rec("example.com.", RecordType::A, "127.0.0.1"),
                rec("example.com.", RecordType::A, "127.0.0.2"),
            ],
            authority: vec![rec("example.com", RecordType::Ns, "ns1.isp.net.")],
            additional: vec![],
            server: "127.0.0.1:53".into(),
            duration_ms: 1.0,
        };
        let got = run(
            &[
                ("validate_answer_rrs.fail_if_matches_regexp", ".*127.0.0.2"),
                (
                    "validate_answer_rrs.fail_if_all_match_regexp",
                    ".*127.0.0.*",
                ),
                (
                    "validate_answer_rrs.fail_if_not_matches_regexp",
                    "example.com.\t300\tIN\tA\t127.0.0.1",
                ),
                (
                    "validate_answer_rrs.fail_if_none_matches_regexp",
                    "127.0.0.3",
                ),
                (
                    "validate_authority_rrs.fail_if_not_matches_regexp",
                    "^example\\.com\\.\t300\tIN\tNS\tns1\\.isp\\.net\\.$",
                ),
                ("validate_additional_rrs.fail_if_none_matches_regexp", "."),
                ("validate_additional_rrs.fail_if_all_match_regexp", "."),
                ("validate_additional_rrs.fail_if_matches_regexp", "."),
            ],
            &answer,
        );
        let expected = [
            ("no answer record matches /.*127.0.0.2/", false),
            ("not every answer record matches /.*127.0.0.*/", false),
            (
                "every answer record matches /example.com.\t300\tIN\tA\t127.0.0.1/",
                false,
            ),
            ("some answer record matches /127.0.0.3/", false),
            (
                "every authority record matches /^example\\.com\\.\t300\tIN\tNS\tns1\\.isp\\.net\\.$/",
                true,
            ),
            // No record: "any matches" does not, "all match" holds
            // vacuously (so it fails, as in blackbox), "none matches" fails.
            ("no additional record matches /./", true),
            ("not every additional record matches /./", false),
            ("some additional record matches /./", false),
        ];
        let expected: Vec<(String, bool)> =
            expected.iter().map(|(n, p)| (n.to_string(), *p)).collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn a_bad_pattern_names_its_key() {
        let ctx = Context::builder()
            .config("validate_authority_rrs.fail_if_matches_regexp.0", "(")
            .build();
        let err = Spec::from_context(&ctx).unwrap_err();
        assert_eq!(err.key, "validate_authority_rrs.fail_if_matches_regexp");
    }

    #[test]
    fn valid_rcodes_accept_any_listed() {
        let nx = DnsAnswer {
            rcode: "NXDOMAIN".into(),
            records: vec![],
            authority: vec![],
            additional: vec![],
            server: "127.0.0.1:53".into(),
            duration_ms: 1.0,
        };
        let ctx = Context::builder()
            .config("expect.rcode.0", "NOERROR")
            .config("expect.rcode.1", "NXDOMAIN")
            .build();
        let spec = Spec::from_context(&ctx).unwrap();
        let mut o = Outcome::new();
        evaluate(&spec, &nx, &mut o);
        assert_eq!(o.assertions()[0].name, "rcode in NOERROR, NXDOMAIN");
        assert_eq!(o.status(), vantage_sdk::Status::Pass);
    }
}
