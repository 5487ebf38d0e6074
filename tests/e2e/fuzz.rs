//! Property tests of the parsers that take untrusted text: the configuration
//! file, and the host functions that take guest-supplied data (the outbound
//! policy every URL, host and address a check asks for goes through; the
//! headers of `http.fetch`; the nameserver of `dns.resolve`). Bounded: 256
//! cases per property.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use proptest::prelude::*;
use vantage::capabilities::dns::parse_server;
use vantage::capabilities::http::client::header_map;
use vantage::config::{self, Config, ConfigError};
use vantage::policy::{AllowList, is_special};

const FILE: &str = "fuzz/vantage.toml";

/// A valid file using most of the format.
const VALID: &str = r#"# a comment
[global]
location = "eu-west-1"
allow_ceiling = ["https://*", "http://*", "tls://*"]

[defaults]
timeout = "10s"
memory = "64MiB"

[[check]]
name = "api-health"
component = "checks/http.wasm"
every = "1m"
jitter = "5s"
targets = ["https://api.example.com/healthz"]
allow = ["{target}"]
timeout = "5s"
retries = 1
[check.secrets]
token = "env:API_TOKEN"
[check.config]
expect.status = [200]
headers.Authorization = "Bearer {{secret.token}}"

[[check]]
name = "nightly-tls"
component = "checks/tls.wasm"
cron = "0 2 * * *"
timezone = "Europe/Berlin"
targets = ["api.example.com:443"]
allow = ["tls://api.example.com:443"]
memory = "32MiB"
"#;

fn cases() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn load(text: &str) -> Result<Config, ConfigError> {
    config::from_str(text, Path::new(FILE))
}

/// An error has at least one diagnostic, and each names a line of the text
/// (and a column) and is shown as `file:line:col: …`.
fn errors_name_a_line(
    text: &str,
    result: Result<Config, ConfigError>,
) -> Result<(), TestCaseError> {
    let Err(e) = result else { return Ok(()) };
    prop_assert!(!e.diagnostics().is_empty(), "no diagnostic: {e}");
    let lines = text.lines().count() + 1;
    for d in e.diagnostics() {
        prop_assert!(
            (1..=lines).contains(&d.line),
            "line {} of {lines}: {d}",
            d.line
        );
        prop_assert!(d.column >= 1, "{d}");
        let place = format!("{FILE}:{}:{}: ", d.line, d.column);
        prop_assert!(d.to_string().starts_with(&place), "{d}");
    }
    Ok(())
}

/// TOML's building blocks, the file's own keys and values that test the
/// validators' edges.
fn token() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "[global]",
        "[defaults]",
        "[alerts]",
        "[[check]]",
        "[check.config]",
        "[check.secrets]",
        "[[maintenance]]",
        "name",
        "component",
        "every",
        "cron",
        "targets",
        "allow",
        "timeout",
        "memory",
        "fuel",
        "mode",
        "jitter",
        "retries",
        "location",
        "allow_ceiling",
        "timezone",
        "secrets.token",
        "config.a.b",
        " = ",
        "=",
        "\"",
        "'",
        "'''",
        "[",
        "]",
        "{",
        "}",
        ",",
        ".",
        "#",
        "\n",
        "\r\n",
        "\\",
        "\\u",
        "\"1m\"",
        "\"0s\"",
        "\"-1s\"",
        "\"1x\"",
        "\"4GiB\"",
        "\"99999999999999999999GiB\"",
        "18446744073709551616",
        "-1",
        "0",
        "1e308",
        "nan",
        "inf",
        "true",
        "\"{target}\"",
        "\"http://*\"",
        "\"http://*:*\"",
        "\"tcp://10.0.0.0/8\"",
        "\"env:\"",
        "\"file:\"",
        "\"file:../../etc/passwd\"",
        "\"{{secret.x}}\"",
        "\"*/0 * * * *\"",
        "\"60 * * * *\"",
        "\"edge\"",
        "\"oci://\"",
        "\"é€𝄞\"",
        "1979-05-27T07:32:00Z",
    ])
    .prop_map(String::from)
}

fn toml_ish() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![4 => token(), 1 => "[ -~]{0,12}", 1 => "\\PC{0,4}"],
        0..80,
    )
    .prop_map(|parts| parts.concat())
}

/// One edit of a text, positions taken modulo its length.
#[derive(Debug, Clone)]
enum Edit {
    Delete(usize, usize),
    Insert(usize, String),
    Replace(usize, char),
    DuplicateLine(usize),
    SwapLines(usize, usize),
    Truncate(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), 1..12usize).prop_map(|(at, n)| Edit::Delete(at, n)),
        (any::<usize>(), prop_oneof![token(), "\\PC{0,3}"]).prop_map(|(at, s)| Edit::Insert(at, s)),
        (any::<usize>(), any::<char>()).prop_map(|(at, c)| Edit::Replace(at, c)),
        any::<usize>().prop_map(Edit::DuplicateLine),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::SwapLines(a, b)),
        any::<usize>().prop_map(Edit::Truncate),
    ]
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for e in edits {
        if chars.is_empty() && !matches!(e, Edit::Insert(..)) {
            continue;
        }
        let n = chars.len().max(1);
        match e {
            Edit::Delete(at, len) => {
                let at = at % n;
                let end = (at + len).min(chars.len());
                chars.drain(at.min(end)..end);
            }
            Edit::Insert(at, s) => {
                let at = at % (chars.len() + 1);
                chars.splice(at..at, s.chars());
            }
            Edit::Replace(at, c) => chars[at % n] = *c,
            Edit::DuplicateLine(i) => {
                let text: String = chars.iter().collect();
                let mut lines: Vec<&str> = text.lines().collect();
                let line = lines[i % lines.len()];
                lines.insert(i % lines.len(), line);
                chars = lines.join("\n").chars().collect();
            }
            Edit::SwapLines(a, b) => {
                let text: String = chars.iter().collect();
                let mut lines: Vec<&str> = text.lines().collect();
                let len = lines.len();
                lines.swap(a % len, b % len);
                chars = lines.join("\n").chars().collect();
            }
            Edit::Truncate(at) => chars.truncate(at % n),
        }
    }
    chars.into_iter().collect()
}

#[test]
fn the_valid_config_loads() {
    load(VALID).unwrap_or_else(|e| panic!("{e}"));
}

proptest! {
    #![proptest_config(cases())]

    /// Arbitrary TOML-ish text never panics the parser; errors name a line.
    #[test]
    fn config_parser_never_panics_on_toml_ish_text(text in toml_ish()) {
        let result = load(&text);
        errors_name_a_line(&text, result)?;
    }

    /// A valid file with a few random edits never panics the parser; errors
    /// name a line.
    #[test]
    fn config_parser_never_panics_on_mutated_valid_files(
        edits in prop::collection::vec(edit(), 1..6)
    ) {
        let text = apply(VALID, &edits);
        let result = load(&text);
        errors_name_a_line(&text, result)?;
    }
}

/// Addresses, mostly in or near the special ranges (and their IPv4-mapped
/// and NAT64 forms), some anywhere.
fn address() -> impl Strategy<Value = IpAddr> {
    let v4_special = prop::sample::select(vec![
        (0x7f00_0000u32, 8u32), // loopback
        (0x0a00_0000, 8),       // 10/8
        (0xac10_0000, 12),      // 172.16/12
        (0xc0a8_0000, 16),      // 192.168/16
        (0xa9fe_0000, 16),      // link-local, metadata
        (0x6440_0000, 10),      // CGNAT
        (0x0000_0000, 8),       // "this network"
        (0xe000_0000, 4),       // multicast
        (0xffff_ffff, 32),      // broadcast
    ]);
    let v4 = prop_oneof![
        any::<u32>(),
        (v4_special, any::<u32>()).prop_map(|((net, prefix), low)| {
            net | (low & (u32::MAX.checked_shr(prefix).unwrap_or(0)))
        }),
    ];
    let v6_special = prop::sample::select(vec![
        (0u128, 128u32),         // ::
        (1, 128),                // ::1
        (0xfc00u128 << 112, 7),  // unique-local
        (0xfe80u128 << 112, 10), // link-local
        (0xff00u128 << 112, 8),  // multicast
    ]);
    prop_oneof![
        v4.clone().prop_map(|a| IpAddr::V4(Ipv4Addr::from_bits(a))),
        v4.clone()
            .prop_map(|a| IpAddr::V6(Ipv4Addr::from_bits(a).to_ipv6_mapped())),
        v4.prop_map(|a| IpAddr::V6(Ipv6Addr::from_bits((0x0064_ff9bu128 << 96) | u128::from(a)))),
        (v6_special, any::<u128>()).prop_map(|((net, prefix), low)| {
            IpAddr::V6(Ipv6Addr::from_bits(
                net | (low & u128::MAX.checked_shr(prefix).unwrap_or(0)),
            ))
        }),
        any::<u128>().prop_map(|a| IpAddr::V6(Ipv6Addr::from_bits(a))),
    ]
}

/// Allow lists an operator might write that name no address or network.
fn wildcard_list() -> impl Strategy<Value = AllowList> {
    prop::sample::subsequence(
        vec![
            "http://*",
            "https://*",
            "http://*:*",
            "https://*:*",
            "tcp://*:*",
            "tls://*:*",
            "dns://*",
            "https://*.example.com",
            "http://api.example.com:8080",
            "tcp://*:5432",
        ],
        1..5,
    )
    .prop_map(|patterns| AllowList::parse(patterns).unwrap())
}

fn scheme() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "http", "https", "tcp", "tls", "dns", "ftp", "", "HTTP",
    ])
}

/// Host strings a guest might send: names, literal addresses (bracketed or
/// not), and junk.
fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9-]{1,10}(\\.[a-z0-9-]{1,10}){0,3}",
        address().prop_map(|a| a.to_string()),
        address().prop_map(|a| format!("[{a}]")),
        "\\PC{0,24}",
        Just(String::new()),
        Just("*".to_string()),
        Just("localhost".to_string()),
    ]
}

proptest! {
    #![proptest_config(cases())]

    /// The guest-facing policy checks never panic, whatever the scheme, host,
    /// port or address; an address allowed implies its target is.
    #[test]
    fn policy_checks_never_panic(
        list in wildcard_list(),
        scheme in scheme(),
        host in host(),
        port in any::<u16>(),
        addr in address(),
    ) {
        let target = list.check_target(scheme, &host, port);
        let connect = list.check_addr(scheme, &host, port, addr);
        if connect.is_ok() {
            prop_assert!(target.is_ok());
        }
        if let Err(denied) = &target {
            prop_assert!(!denied.rule.is_empty());
        }
    }

    /// No allow list without a literal address ever reaches a special one,
    /// by name or by literal address, in any of its forms.
    #[test]
    fn wildcards_never_reach_special_addresses(
        list in wildcard_list(),
        scheme in scheme(),
        by_name in any::<bool>(),
        port in any::<u16>(),
        addr in address(),
    ) {
        let host = if by_name { "api.example.com".to_string() } else { addr.to_string() };
        let result = list.check_addr(scheme, &host, port, addr);
        if let Some(range) = is_special(addr) {
            let denied = result.err();
            prop_assert!(denied.is_some(), "{list} let {host} reach {addr} ({range})");
        }
    }

    /// Pattern text never panics the parser.
    #[test]
    fn allow_patterns_never_panic(pattern in prop_oneof!["\\PC{0,40}", "(https?|tcp|tls|dns)://[*a-z0-9.:\\[\\]/-]{0,30}"]) {
        let _ = AllowList::parse([pattern.as_str()]);
    }

    /// Guest-supplied headers: never a panic, and a map exactly when every
    /// name and value is valid HTTP.
    #[test]
    fn guest_headers_never_panic(headers in prop::collection::vec(("\\PC{0,12}", "\\PC{0,24}"), 0..6)) {
        let all_valid = headers.iter().all(|(k, v)| {
            http::HeaderName::from_bytes(k.as_bytes()).is_ok() && http::HeaderValue::from_str(v).is_ok()
        });
        prop_assert_eq!(header_map(&headers).is_ok(), all_valid);
    }

    /// Guest-supplied nameservers (`ip` or `ip:port`): never a panic.
    #[test]
    fn guest_nameservers_never_panic(server in prop_oneof!["\\PC{0,40}", address().prop_map(|a| a.to_string()), (address(), any::<u16>()).prop_map(|(a, p)| std::net::SocketAddr::new(a, p).to_string())]) {
        let _ = parse_server(&server);
    }
}
