//! One outbound allow pattern, `scheme://host[:port]`, and its strict parser.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use super::special::{IpNet, is_special, overlaps_special};

/// The general form of a pattern, shown in error messages.
const FORM: &str = "scheme://host[:port], e.g. https://api.example.com";

/// A protocol a check can use outbound. Each capability asks for its own:
/// `http` and `https` for HTTP requests, `tls` for TLS inspection, `dns` for
/// queries to a chosen nameserver, `tcp` for TCP probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// Plain HTTP (default port 80).
    Http,
    /// HTTP over TLS (default port 443).
    Https,
    /// A raw TCP connection (no default port: patterns must name one).
    Tcp,
    /// A TLS handshake (default port 443).
    Tls,
    /// A DNS query to a nameserver (default port 53).
    Dns,
}

impl Scheme {
    /// Every scheme, in the order error messages list them.
    pub const ALL: [Scheme; 5] = [
        Scheme::Http,
        Scheme::Https,
        Scheme::Tcp,
        Scheme::Tls,
        Scheme::Dns,
    ];

    /// The scheme called `name` (case-insensitive), if Vantage knows it.
    pub fn parse(name: &str) -> Option<Scheme> {
        Scheme::ALL
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(name))
    }

    /// The lowercase name, as written in patterns.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
            Scheme::Tcp => "tcp",
            Scheme::Tls => "tls",
            Scheme::Dns => "dns",
        }
    }

    /// The port a pattern without `:port` stands for: http 80, https 443,
    /// tls 443, dns 53. `tcp` has none.
    pub fn default_port(self) -> Option<u16> {
        match self {
            Scheme::Http => Some(80),
            Scheme::Https | Scheme::Tls => Some(443),
            Scheme::Dns => Some(53),
            Scheme::Tcp => None,
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which hosts a pattern matches.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HostPattern {
    /// `*`: any host name or IP address. Never an opt-in to special address
    /// ranges (see [`AllowList::check_addr`](super::AllowList::check_addr)).
    Any,
    /// `api.example.com`: exactly this name (stored lowercase, in ASCII
    /// form, without a trailing dot).
    Name(String),
    /// `*.example.com`: any name below `example.com`, at any depth, but not
    /// `example.com` itself. Holds the parent domain (`example.com`).
    Subdomains(String),
    /// `203.0.113.7`, `[2001:db8::1]`: exactly this address.
    Ip(IpAddr),
    /// `10.0.0.0/8`, `[fd00::]/8`: any address in this network.
    Net(IpNet),
}

impl HostPattern {
    /// Whether this pattern names addresses literally (an IP or a network),
    /// the only kind that can opt in to special address ranges.
    pub fn is_literal(&self) -> bool {
        matches!(self, HostPattern::Ip(_) | HostPattern::Net(_))
    }

    fn matches(&self, target: &TargetHost) -> bool {
        match (self, target) {
            (HostPattern::Any, _) => true,
            (HostPattern::Name(n), TargetHost::Name(t)) => n == t,
            (HostPattern::Subdomains(d), TargetHost::Name(t)) => is_below(t, d),
            (HostPattern::Ip(a), TargetHost::Ip(b)) => a == b,
            (HostPattern::Net(n), TargetHost::Ip(b)) => n.contains(*b),
            _ => false,
        }
    }

    /// Whether the address is named literally by this pattern.
    fn names_addr(&self, addr: IpAddr) -> bool {
        match self {
            HostPattern::Ip(a) => *a == addr.to_canonical(),
            HostPattern::Net(n) => n.contains(addr),
            _ => false,
        }
    }

    /// Whether every host `inner` matches is matched by `self`. A wildcard or
    /// name never covers a literal address in a special range, so a wildcard
    /// ceiling cannot pass on an opt-in it does not grant itself.
    fn covers(&self, inner: &HostPattern) -> bool {
        use HostPattern::*;
        match (self, inner) {
            (Any, Any | Name(_) | Subdomains(_)) => true,
            (Any, Ip(a)) => is_special(*a).is_none(),
            (Any, Net(n)) => !overlaps_special(n),
            (Name(a), Name(b)) => a == b,
            (Subdomains(d), Name(n)) => is_below(n, d),
            (Subdomains(d), Subdomains(e)) => d == e || is_below(e, d),
            (Ip(a), Ip(b)) => a == b,
            (Ip(a), Net(n)) => n.contains_net(&single(*a)),
            (Net(n), Ip(a)) => n.contains(*a),
            (Net(n), Net(m)) => n.contains_net(m),
            _ => false,
        }
    }
}

fn single(addr: IpAddr) -> IpNet {
    let prefix = if addr.is_ipv4() { 32 } else { 128 };
    // A full-length prefix never has host bits, so this cannot fail.
    IpNet::new(addr, prefix).unwrap_or_else(|_| unreachable!("full-length prefix"))
}

/// Whether `name` is a strict subdomain of `domain` (both normalized).
fn is_below(name: &str, domain: &str) -> bool {
    name.len() > domain.len() + 1
        && name.ends_with(domain)
        && name.as_bytes()[name.len() - domain.len() - 1] == b'.'
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostPattern::Any => f.write_str("*"),
            HostPattern::Name(n) => f.write_str(n),
            HostPattern::Subdomains(d) => write!(f, "*.{d}"),
            HostPattern::Ip(IpAddr::V4(a)) => write!(f, "{a}"),
            HostPattern::Ip(IpAddr::V6(a)) => write!(f, "[{a}]"),
            HostPattern::Net(n) => match n.addr() {
                IpAddr::V4(a) => write!(f, "{a}/{}", n.prefix()),
                IpAddr::V6(a) => write!(f, "[{a}]/{}", n.prefix()),
            },
        }
    }
}

/// Which ports a pattern matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PortPattern {
    /// `:*`: any port.
    Any,
    /// `:8443`; also what a pattern with a scheme and no port means (the
    /// scheme's default port: `https://x` is `https://x:443`).
    Port(u16),
    /// No port, with scheme `*`: the default port of whichever scheme is used
    /// (http 80, https 443, tls 443, dns 53; no `tcp` connection matches).
    SchemeDefault,
}

impl PortPattern {
    fn ports_for(self, scheme: Scheme) -> PortSet {
        match self {
            PortPattern::Any => PortSet::All,
            PortPattern::Port(p) => PortSet::One(p),
            PortPattern::SchemeDefault => scheme.default_port().map_or(PortSet::None, PortSet::One),
        }
    }
}

/// The ports a pattern matches for one scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PortSet {
    None,
    One(u16),
    All,
}

/// A parsed outbound allow pattern: `scheme://host[:port]`.
///
/// - scheme: `http`, `https`, `tcp`, `tls`, `dns`, or `*` for any;
/// - host: a name (`api.example.com`, case-insensitive), `*.example.com` (any
///   subdomain at any depth, not the apex), `*` (any host), an IP address
///   (`203.0.113.7`, `[2001:db8::1]`) or a network (`10.0.0.0/8`,
///   `[fd00::]/8`);
/// - port: a number, `*`, or nothing for the scheme's default (http 80,
///   https 443, tls 443, dns 53; `tcp` patterns must name a port).
///
/// Paths, queries, fragments, user info, `*` inside a name (`api.*.com`),
/// zone ids and port ranges are rejected rather than ignored: a pattern never
/// says more than is enforced. Parse with [`str::parse`]; [`Display`]
/// prints the canonical form (`HTTPS://API.Example.com:443` prints as
/// `https://api.example.com`).
///
/// ```
/// # use vantage_core::policy::AllowPattern;
/// let p: AllowPattern = "https://*.example.com".parse().unwrap();
/// assert!(p.matches("https", "api.eu.example.com", 443));
/// assert!(!p.matches("https", "example.com", 443));
/// assert!("https://example.com/v1".parse::<AllowPattern>().is_err());
/// ```
///
/// [`Display`]: fmt::Display
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AllowPattern {
    scheme: Option<Scheme>,
    host: HostPattern,
    port: PortPattern,
}

impl AllowPattern {
    /// The scheme, or `None` for `*` (any scheme).
    pub fn scheme(&self) -> Option<Scheme> {
        self.scheme
    }

    /// The hosts matched.
    pub fn host(&self) -> &HostPattern {
        &self.host
    }

    /// The ports matched.
    pub fn port(&self) -> PortPattern {
        self.port
    }

    /// Whether a connection with this scheme to this host and port matches.
    /// `host` is a name or an IP address (IPv6 with or without brackets);
    /// an unknown scheme or a malformed host never matches.
    pub fn matches(&self, scheme: &str, host: &str, port: u16) -> bool {
        match (Scheme::parse(scheme), TargetHost::parse(host)) {
            (Some(scheme), Some(host)) => self.matches_target(scheme, &host, port),
            _ => false,
        }
    }

    pub(crate) fn matches_target(&self, scheme: Scheme, host: &TargetHost, port: u16) -> bool {
        self.matches_scheme_port(scheme, port) && self.host.matches(host)
    }

    fn matches_scheme_port(&self, scheme: Scheme, port: u16) -> bool {
        self.scheme.is_none_or(|s| s == scheme)
            && match self.port.ports_for(scheme) {
                PortSet::All => true,
                PortSet::One(p) => p == port,
                PortSet::None => false,
            }
    }

    /// Whether this pattern explicitly opts in to connecting to `addr` (which
    /// may be in a special range) with this scheme and port: it must match
    /// the scheme and port and name the address or a network containing it.
    pub(crate) fn opts_in(&self, scheme: Scheme, port: u16, addr: IpAddr) -> bool {
        self.matches_scheme_port(scheme, port) && self.host.names_addr(addr)
    }

    /// Whether the pattern matches any connection with `scheme` at all
    /// (`*://host` matches no `tcp` connection: tcp has no default port).
    pub(crate) fn reaches(&self, scheme: Scheme) -> bool {
        self.scheme.is_none_or(|s| s == scheme) && self.port.ports_for(scheme) != PortSet::None
    }

    /// Whether every `scheme` connection that `inner` matches is also matched
    /// by `self` (see [`AllowList::covers`](super::AllowList::covers)).
    pub(crate) fn covers(&self, inner: &AllowPattern, scheme: Scheme) -> bool {
        if self.scheme.is_some_and(|s| s != scheme) {
            return false;
        }
        let ports = match (self.port.ports_for(scheme), inner.port.ports_for(scheme)) {
            (_, PortSet::None) | (PortSet::All, _) => true,
            (PortSet::One(a), PortSet::One(b)) => a == b,
            _ => false,
        };
        ports && self.host.covers(&inner.host)
    }
}

impl fmt::Display for AllowPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = self.scheme.map_or("*", Scheme::as_str);
        write!(f, "{scheme}://{}", self.host)?;
        match self.port {
            PortPattern::Any => f.write_str(":*"),
            PortPattern::Port(p) if self.scheme.and_then(Scheme::default_port) == Some(p) => Ok(()),
            PortPattern::Port(p) => write!(f, ":{p}"),
            PortPattern::SchemeDefault => Ok(()),
        }
    }
}

impl FromStr for AllowPattern {
    type Err = PatternError;

    fn from_str(input: &str) -> Result<Self, PatternError> {
        parse(input).map_err(|reason| PatternError::Invalid {
            pattern: input.to_string(),
            reason,
        })
    }
}

/// Why a pattern was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// The text is not a valid pattern. `reason` says why and shows the
    /// correct form.
    #[error("invalid allow pattern {pattern:?}: {reason}")]
    Invalid {
        /// The text as given.
        pattern: String,
        /// Why it is invalid, with the form to write instead.
        reason: String,
    },
    /// A valid pattern reaches beyond the operator's ceiling
    /// (`global.allow_ceiling`).
    #[error("allow pattern {pattern} is outside the operator's allow ceiling {ceiling}{hint}")]
    OutsideCeiling {
        /// The pattern, in canonical form.
        pattern: String,
        /// The ceiling, as `[a, b]`.
        ceiling: String,
        /// Which part is not covered and what to do, starting with `: `, or
        /// empty.
        hint: String,
    },
}

impl PatternError {
    /// The offending pattern.
    pub fn pattern(&self) -> &str {
        match self {
            PatternError::Invalid { pattern, .. }
            | PatternError::OutsideCeiling { pattern, .. } => pattern,
        }
    }
}

/// A host a check asks to connect to, normalized for matching.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TargetHost {
    /// A host name: lowercase ASCII, no trailing dot.
    Name(String),
    /// An IP address (IPv4-mapped IPv6 turned into IPv4).
    Ip(IpAddr),
}

impl TargetHost {
    /// Normalize a host as a capability received it; `None` if it is neither
    /// a valid host name nor an IP address (such a host is never allowed).
    pub(crate) fn parse(host: &str) -> Option<TargetHost> {
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Some(TargetHost::Ip(ip.to_canonical()));
        }
        if bare.len() != host.len() {
            return None;
        }
        normalize_name(bare).ok().map(TargetHost::Name)
    }
}

impl fmt::Display for TargetHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetHost::Name(n) => f.write_str(n),
            TargetHost::Ip(IpAddr::V4(a)) => write!(f, "{a}"),
            TargetHost::Ip(IpAddr::V6(a)) => write!(f, "[{a}]"),
        }
    }
}

/// The pieces of `host[:port]` (after `scheme://`), as written.
struct Parts<'a> {
    /// Host, without brackets.
    host: &'a str,
    bracketed: bool,
    /// The digits after `/` of a network.
    prefix: Option<&'a str>,
    /// The text after `:`.
    port: Option<&'a str>,
    /// `host[/prefix][:port]` as written.
    authority: &'a str,
    /// What follows the authority: a path, query or fragment (must be empty).
    rest: &'a str,
}

fn split(s: &str) -> Parts<'_> {
    let stop = |c: char| matches!(c, '/' | '?' | '#');
    let (host, bracketed, mut i) = if let Some(inner) = s.strip_prefix('[') {
        match inner.find(']') {
            Some(j) => (&inner[..j], true, j + 2),
            None => {
                let end = inner.find(stop).unwrap_or(inner.len());
                (&inner[..end], true, end + 1)
            }
        }
    } else {
        let end = s.find(|c: char| c == ':' || stop(c)).unwrap_or(s.len());
        (&s[..end], false, end)
    };
    let mut prefix = None;
    let may_have_prefix = bracketed || host.parse::<Ipv4Addr>().is_ok();
    if may_have_prefix && s[i..].starts_with('/') {
        let digits = s[i + 1..]
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(s.len() - i - 1);
        let after = &s[i + 1 + digits..];
        if digits > 0 && (after.is_empty() || after.starts_with(|c: char| c == ':' || stop(c))) {
            prefix = Some(&s[i + 1..i + 1 + digits]);
            i += 1 + digits;
        }
    }
    let mut port = None;
    if let Some(after) = s.get(i..).and_then(|r| r.strip_prefix(':')) {
        let end = after.find(stop).unwrap_or(after.len());
        port = Some(&after[..end]);
        i += 1 + end;
    }
    let i = i.min(s.len());
    Parts {
        host,
        bracketed,
        prefix,
        port,
        authority: &s[..i],
        rest: &s[i..],
    }
}

fn parse(input: &str) -> Result<AllowPattern, String> {
    let s = input.trim();
    if s.is_empty() {
        return Err(format!("the pattern is empty: write {FORM}"));
    }
    if s.contains("{target}") {
        return Err(
            "`{target}` must be a whole entry of a check's `allow` list, \
                    where it stands for each target's scheme://host:port"
                .into(),
        );
    }
    if s.contains(char::is_whitespace) {
        return Err(format!(
            "whitespace is not allowed: write one pattern per entry, as {FORM}"
        ));
    }
    let Some((scheme_text, rest)) = s.split_once("://") else {
        return Err(missing_scheme(s));
    };
    let scheme = match scheme_text {
        "*" => None,
        text => Some(Scheme::parse(text).ok_or_else(|| {
            format!(
                "unknown scheme {text:?}: use http, https, tcp, tls, dns or * (any scheme), \
                 e.g. https://{}",
                split(rest).authority
            )
        })?),
    };
    let scheme_shown = scheme.map_or("*", Scheme::as_str);
    let before_path = rest.split(['/', '?', '#']).next().unwrap_or("");
    if let Some(at) = before_path.rfind('@') {
        return Err(format!(
            "user info (`…@`) is not allowed: credentials belong in the check's secrets; \
             write {scheme_shown}://{}",
            split(&rest[at + 1..]).authority
        ));
    }
    let looks_like_ipv6 = before_path.contains("::")
        || before_path.parse::<Ipv6Addr>().is_ok()
        || before_path
            .rsplit_once(':')
            .is_some_and(|(addr, _)| addr.parse::<Ipv6Addr>().is_ok());
    if !before_path.starts_with('[') && looks_like_ipv6 {
        return Err(unbracketed_ipv6(scheme_shown, rest));
    }
    let parts = split(rest);
    if !parts.rest.is_empty() {
        let what = match parts.rest.as_bytes()[0] {
            b'?' => "a query (`?…`)",
            b'#' => "a fragment (`#…`)",
            _ if parts.rest == "/" => "a trailing `/`",
            _ => "a path",
        };
        let fixed = format!("{scheme_shown}://{}", parts.authority);
        return Err(if parts.authority.is_empty() {
            format!("{what} is not allowed and the host is empty: write {FORM}")
        } else {
            format!(
                "{what} is not allowed: a pattern matches scheme, host and port only; write {fixed}"
            )
        });
    }
    let host = parse_host(&parts, scheme_shown)?;
    let port = parse_port(parts.port, scheme, &host)?;
    Ok(AllowPattern { scheme, host, port })
}

fn missing_scheme(s: &str) -> String {
    let looks_like_host_port = s
        .rsplit_once(':')
        .is_some_and(|(h, p)| !h.is_empty() && !h.contains(':') && p.parse::<u16>().is_ok());
    let scheme_typo = s.split_once(':').filter(|(scheme, after)| {
        !scheme.is_empty()
            && scheme.bytes().all(|b| b.is_ascii_alphabetic())
            && after.starts_with('/')
    });
    let example = if looks_like_host_port {
        format!("tcp://{s} (or https://{s})")
    } else if let Some((scheme, after)) = scheme_typo {
        format!("{scheme}://{}", after.trim_start_matches('/'))
    } else {
        let host = s.split(['/', '?', '#']).next().unwrap_or(s);
        let host = if host.is_empty() {
            "api.example.com"
        } else {
            host
        };
        format!("https://{host}")
    };
    // Suggest only what would parse.
    let first = example.split(' ').next().unwrap_or("");
    let example = if first.parse::<AllowPattern>().is_ok() {
        example
    } else {
        FORM.to_string()
    };
    format!(
        "the scheme is missing: write {example}; schemes are http, https, tcp, tls, dns and * (any)"
    )
}

fn unbracketed_ipv6(scheme: &str, rest: &str) -> String {
    let authority = rest.split(['?', '#']).next().unwrap_or("");
    let (addr, prefix) = match authority.split_once('/') {
        Some((a, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => (a, Some(p)),
        _ => (authority, None),
    };
    let example = match (addr.parse::<Ipv6Addr>(), prefix) {
        (Ok(a), Some(p)) => format!("{scheme}://[{a}]/{p}"),
        (Ok(a), None) => format!("{scheme}://[{a}]"),
        (Err(_), _) => format!("{scheme}://[2001:db8::1]:8443"),
    };
    format!("an IPv6 address must be in brackets, with the port after them: write {example}")
}

fn parse_host(parts: &Parts<'_>, scheme: &str) -> Result<HostPattern, String> {
    let host = parts.host;
    let prefix = match parts.prefix {
        None => None,
        Some(p) => Some(
            p.parse::<u8>()
                .map_err(|_| format!("network prefix /{p} is too long"))?,
        ),
    };
    if parts.bracketed {
        if !parts.authority.contains(']') {
            return Err(format!("`[` is not closed: write {scheme}://[{host}]"));
        }
        if host.contains('%') {
            return Err(format!(
                "zone ids (`%eth0`) are not allowed: write {scheme}://[{}]",
                host.split('%').next().unwrap_or("")
            ));
        }
        let addr = host.parse::<Ipv6Addr>().map_err(|_| {
            format!("[{host}] is not an IPv6 address: brackets are only for IPv6, e.g. {scheme}://[2001:db8::1]")
        })?;
        return Ok(match prefix {
            Some(p) => HostPattern::Net(IpNet::new(IpAddr::V6(addr), p)?),
            None => HostPattern::Ip(IpAddr::V6(addr).to_canonical()),
        });
    }
    if host.is_empty() {
        return Err(format!("the host is empty: write {FORM}"));
    }
    if host == "*" {
        return Ok(HostPattern::Any);
    }
    if host.contains('*') {
        return match host.strip_prefix("*.") {
            Some(domain) if !domain.contains('*') => {
                Ok(HostPattern::Subdomains(normalize_name(domain)?))
            }
            _ => Err(format!(
                "`*` must be the whole host (`{scheme}://*`) or the whole first label \
                 (`{scheme}://*.example.com`, any subdomain at any depth); {host:?} is neither"
            )),
        };
    }
    if let Ok(addr) = host.parse::<Ipv4Addr>() {
        return Ok(match prefix {
            Some(p) => HostPattern::Net(IpNet::new(IpAddr::V4(addr), p)?),
            None => HostPattern::Ip(IpAddr::V4(addr)),
        });
    }
    Ok(HostPattern::Name(normalize_name(host)?))
}

fn parse_port(
    port: Option<&str>,
    scheme: Option<Scheme>,
    host: &HostPattern,
) -> Result<PortPattern, String> {
    let scheme_shown = scheme.map_or("*", Scheme::as_str);
    match port {
        None => match scheme {
            None => Ok(PortPattern::SchemeDefault),
            Some(s) => s.default_port().map(PortPattern::Port).ok_or_else(|| {
                format!(
                    "a {s} pattern needs a port: write {s}://{host}:5432, or {s}://{host}:* for any port"
                )
            }),
        },
        Some("") => Err(format!(
            "the port after `:` is empty: write {scheme_shown}://{host}:8443, \
             or leave out `:` for the scheme's default port"
        )),
        Some("*") => Ok(PortPattern::Any),
        Some(p) if p.bytes().all(|b| b.is_ascii_digit()) => match p.parse::<u16>() {
            Ok(n) if n > 0 => Ok(PortPattern::Port(n)),
            _ => Err(format!(
                "port {p} is out of range: write a port from 1 to 65535, or * for any port"
            )),
        },
        Some(p) => Err(format!(
            "port {p:?} is not a number: write a port from 1 to 65535 \
             (e.g. {scheme_shown}://{host}:8443), or * for any port; ranges are not supported"
        )),
    }
}

/// Normalize a host name: ASCII (IDNA for non-ASCII names), lowercase, no
/// trailing dot, labels of letters, digits, `-` and `_`.
pub(crate) fn normalize_name(name: &str) -> Result<String, String> {
    let ascii = if name.is_ascii() {
        name.to_ascii_lowercase()
    } else {
        match url::Host::parse(name) {
            Ok(url::Host::Domain(d)) => d,
            _ => return Err(format!("{name:?} is not a valid host name")),
        }
    };
    let trimmed = ascii.strip_suffix('.').unwrap_or(&ascii);
    if trimmed.is_empty() {
        return Err(format!("{name:?} is not a valid host name"));
    }
    if trimmed.len() > 253 {
        return Err(format!("host name {name:?} is longer than 253 characters"));
    }
    for label in trimmed.split('.') {
        if label.is_empty() {
            return Err(format!(
                "host name {name:?} has an empty label (`..` or a leading `.`)"
            ));
        }
        if label.len() > 63 {
            return Err(format!(
                "host name {name:?} has a label longer than 63 characters"
            ));
        }
        if let Some(c) = label
            .chars()
            .find(|&c| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        {
            return Err(format!(
                "invalid character {c:?} in host name {name:?}: names use letters, digits, `-` and `_`"
            ));
        }
    }
    let last = trimmed.rsplit('.').next().unwrap_or(trimmed);
    if last.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "{name:?} is neither a host name nor a valid IPv4 address (like 203.0.113.7)"
        ));
    }
    Ok(trimmed.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> AllowPattern {
        s.parse()
            .unwrap_or_else(|e| panic!("{s:?} should parse: {e}"))
    }

    fn reject(s: &str) -> String {
        match s.parse::<AllowPattern>() {
            Ok(p) => panic!("{s:?} should be rejected, parsed as {p}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn accepts_and_prints_canonical_forms() {
        for (input, canonical) in [
            ("https://api.example.com", "https://api.example.com"),
            ("https://api.example.com:443", "https://api.example.com"),
            ("HTTPS://API.Example.COM", "https://api.example.com"),
            ("https://api.example.com.", "https://api.example.com"),
            ("http://api.example.com:8080", "http://api.example.com:8080"),
            ("http://localhost", "http://localhost"),
            ("https://*.example.com", "https://*.example.com"),
            ("https://*", "https://*"),
            ("*://*:*", "*://*:*"),
            ("*://api.example.com", "*://api.example.com"),
            ("*://api.example.com:443", "*://api.example.com:443"),
            ("tcp://db.internal:5432", "tcp://db.internal:5432"),
            ("tcp://db.internal:*", "tcp://db.internal:*"),
            ("tls://mail.example.com:993", "tls://mail.example.com:993"),
            ("dns://9.9.9.9", "dns://9.9.9.9"),
            ("dns://9.9.9.9:53", "dns://9.9.9.9"),
            ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
            ("http://[::1]:8080", "http://[::1]:8080"),
            ("http://[0:0::1]", "http://[::1]"),
            ("http://[::ffff:10.0.0.1]", "http://10.0.0.1"),
            ("tcp://10.0.0.0/8:5432", "tcp://10.0.0.0/8:5432"),
            ("https://10.0.0.0/8", "https://10.0.0.0/8"),
            ("https://[fd00::]/8", "https://[fd00::]/8"),
            ("tcp://[fd00::]/8:*", "tcp://[fd00::]/8:*"),
            ("http://[::ffff:10.0.0.0]/104", "http://10.0.0.0/8"),
            ("  https://api.example.com  ", "https://api.example.com"),
            ("https://_acme.example.com", "https://_acme.example.com"),
            ("https://bücher.example", "https://xn--bcher-kva.example"),
            ("https://*.com", "https://*.com"),
        ] {
            assert_eq!(p(input).to_string(), canonical, "{input}");
            // The canonical form parses to the same pattern.
            assert_eq!(p(canonical), p(input), "{input}");
        }
    }

    #[test]
    fn parts_are_exposed() {
        let pat = p("https://API.example.com");
        assert_eq!(pat.scheme(), Some(Scheme::Https));
        assert_eq!(pat.host(), &HostPattern::Name("api.example.com".into()));
        assert_eq!(pat.port(), PortPattern::Port(443));
        let pat = p("*://*.example.com");
        assert_eq!(pat.scheme(), None);
        assert_eq!(pat.host(), &HostPattern::Subdomains("example.com".into()));
        assert_eq!(pat.port(), PortPattern::SchemeDefault);
        assert!(p("http://10.0.0.0/8").host().is_literal());
        assert!(!p("http://*").host().is_literal());
    }

    #[test]
    fn rejects_paths_queries_and_fragments_showing_the_fix() {
        let e = reject("https://api.example.com/v1/health");
        assert!(e.contains("a path is not allowed"), "{e}");
        assert!(e.contains("write https://api.example.com"), "{e}");
        let e = reject("https://api.example.com:8443/v1");
        assert!(e.contains("write https://api.example.com:8443"), "{e}");
        let e = reject("https://api.example.com/");
        assert!(e.contains("a trailing `/` is not allowed"), "{e}");
        let e = reject("https://api.example.com?x=1");
        assert!(e.contains("a query"), "{e}");
        assert!(e.contains("write https://api.example.com"), "{e}");
        let e = reject("https://api.example.com#top");
        assert!(e.contains("a fragment"), "{e}");
        let e = reject("http://10.0.0.0/8/x");
        assert!(e.contains("a path"), "{e}");
        assert!(e.contains("write http://10.0.0.0/8"), "{e}");
        let e = reject("https://example.com/8");
        assert!(e.contains("a path"), "{e}");
    }

    #[test]
    fn rejects_user_info() {
        let e = reject("https://user:pw@api.example.com");
        assert!(e.contains("user info"), "{e}");
        assert!(e.contains("write https://api.example.com"), "{e}");
        assert!(!e.contains("write https://user"), "{e}");
    }

    #[test]
    fn rejects_missing_or_unknown_schemes() {
        let e = reject("api.example.com");
        assert!(e.contains("the scheme is missing"), "{e}");
        assert!(e.contains("write https://api.example.com"), "{e}");
        let e = reject("db.internal:5432");
        assert!(e.contains("tcp://db.internal:5432"), "{e}");
        let e = reject("api.*.example.com");
        assert!(
            e.contains("write scheme://host[:port], e.g. https://api.example.com"),
            "{e}"
        );
        let e = reject("ftp://files.example.com");
        assert!(e.contains("unknown scheme \"ftp\""), "{e}");
        assert!(e.contains("https://files.example.com"), "{e}");
        let e = reject("https:/api.example.com");
        assert!(e.contains("the scheme is missing"), "{e}");
        assert!(e.contains("write https://api.example.com"), "{e}");
        let e = reject("https://x.com/@user");
        assert!(e.contains("a path"), "{e}");
        reject("://api.example.com");
    }

    #[test]
    fn rejects_empty_hosts_and_patterns() {
        assert!(reject("").contains("empty"));
        assert!(reject("   ").contains("empty"));
        assert!(reject("https://").contains("the host is empty"));
        assert!(reject("https://:443").contains("the host is empty"));
        assert!(reject("https:///path").contains("the host is empty"));
    }

    #[test]
    fn rejects_misplaced_wildcards() {
        for bad in [
            "https://api.*.com",
            "https://api.example.*",
            "https://*example.com",
            "https://**.example.com",
            "https://*.*.example.com",
            "https://a*.example.com",
        ] {
            let e = reject(bad);
            assert!(e.contains("`*` must be the whole host"), "{bad}: {e}");
            assert!(e.contains("*.example.com"), "{bad}: {e}");
        }
        assert!(reject("https://10.0.0.0/8*").contains("a path"));
    }

    #[test]
    fn rejects_bad_ports() {
        let e = reject("https://api.example.com:0");
        assert!(e.contains("out of range"), "{e}");
        let e = reject("https://api.example.com:65536");
        assert!(e.contains("out of range"), "{e}");
        let e = reject("https://api.example.com:99999999999999999999");
        assert!(e.contains("out of range"), "{e}");
        let e = reject("https://api.example.com:http");
        assert!(e.contains("not a number"), "{e}");
        let e = reject("https://api.example.com:8000-8100");
        assert!(e.contains("ranges are not supported"), "{e}");
        let e = reject("https://api.example.com:+443");
        assert!(e.contains("not a number"), "{e}");
        let e = reject("https://api.example.com:");
        assert!(e.contains("the port after `:` is empty"), "{e}");
        let e = reject("tcp://db.internal");
        assert!(e.contains("a tcp pattern needs a port"), "{e}");
        assert!(e.contains("tcp://db.internal:5432"), "{e}");
        let e = reject("https://api.example.com:443:443");
        assert!(e.contains("not a number"), "{e}");
    }

    #[test]
    fn rejects_bad_hosts() {
        let e = reject("http://::1");
        assert!(e.contains("must be in brackets"), "{e}");
        assert!(e.contains("http://[::1]"), "{e}");
        let e = reject("http://fd00::/8");
        assert!(e.contains("http://[fd00::]/8"), "{e}");
        let e = reject("http://2001:db8::1:8080");
        assert!(e.contains("must be in brackets"), "{e}");
        let e = reject("http://2001:db8:0:0:0:0:0:1");
        assert!(e.contains("http://[2001:db8::1]"), "{e}");
        let e = reject("http://[::1");
        assert!(e.contains("not closed"), "{e}");
        let e = reject("http://[api.example.com]");
        assert!(e.contains("brackets are only for IPv6"), "{e}");
        let e = reject("http://[fe80::1%eth0]");
        assert!(e.contains("zone ids"), "{e}");
        let e = reject("http://10.0.0.1/8");
        assert!(e.contains("the network is 10.0.0.0/8"), "{e}");
        let e = reject("http://10.0.0.0/33");
        assert!(e.contains("at most /32"), "{e}");
        let e = reject("http://10.0.0.0/300");
        assert!(e.contains("too long"), "{e}");
        let e = reject("http://[fd00::1]/8");
        assert!(e.contains("the network is fd00::/8"), "{e}");
        let e = reject("http://10.0.0.256");
        assert!(e.contains("valid IPv4 address"), "{e}");
        let e = reject("http://1.2.3");
        assert!(e.contains("valid IPv4 address"), "{e}");
        let e = reject("http://api..example.com");
        assert!(e.contains("empty label"), "{e}");
        let e = reject("http://.example.com");
        assert!(e.contains("empty label"), "{e}");
        let e = reject("http://api.exa$mple.com");
        assert!(e.contains("invalid character '$'"), "{e}");
        let e = reject("http://api.example.com%2f");
        assert!(e.contains("invalid character"), "{e}");
        let long_label = format!("http://{}.com", "a".repeat(64));
        assert!(reject(&long_label).contains("longer than 63"));
        let long_name = format!("http://{}com", "abcdefghi.".repeat(26));
        assert!(reject(&long_name).contains("longer than 253"));
        assert!(reject("http://a b.com").contains("whitespace"));
        assert!(reject("https://{target}").contains("whole entry"));
        assert!(reject("{target}").contains("whole entry"));
        assert!(reject("http://*/8").contains("a path"));
    }

    #[test]
    fn error_names_the_pattern() {
        let err = "https://x.com/a".parse::<AllowPattern>().unwrap_err();
        assert_eq!(err.pattern(), "https://x.com/a");
        assert!(
            err.to_string()
                .starts_with("invalid allow pattern \"https://x.com/a\": ")
        );
    }

    #[test]
    fn matches_exact_names_case_insensitively() {
        let pat = p("https://api.example.com");
        assert!(pat.matches("https", "api.example.com", 443));
        assert!(pat.matches("HTTPS", "API.EXAMPLE.COM", 443));
        assert!(pat.matches("https", "api.example.com.", 443));
        assert!(!pat.matches("https", "api.example.com", 8443));
        assert!(!pat.matches("http", "api.example.com", 443));
        assert!(!pat.matches("https", "www.example.com", 443));
        assert!(!pat.matches("https", "sub.api.example.com", 443));
        assert!(!pat.matches("https", "api.example.com.evil.net", 443));
        assert!(!pat.matches("ftp", "api.example.com", 443));
    }

    #[test]
    fn subdomain_wildcards_match_any_depth_but_not_the_apex() {
        let pat = p("https://*.example.com");
        assert!(pat.matches("https", "api.example.com", 443));
        assert!(pat.matches("https", "a.b.c.example.com", 443));
        assert!(!pat.matches("https", "example.com", 443));
        assert!(!pat.matches("https", "badexample.com", 443));
        assert!(!pat.matches("https", "example.com.evil.net", 443));
        assert!(!pat.matches("https", "93.184.216.34", 443));
    }

    #[test]
    fn any_host_matches_names_and_addresses() {
        let pat = p("http://*");
        assert!(pat.matches("http", "anything.example", 80));
        assert!(pat.matches("http", "203.0.113.7", 80));
        assert!(pat.matches("http", "[2001:db8::1]", 80));
        assert!(!pat.matches("http", "anything.example", 8080));
        assert!(!pat.matches("http", "bad host", 80));
        assert!(!pat.matches("http", "", 80));
        assert!(!pat.matches("http", "[not-ip]", 80));
    }

    #[test]
    fn ports_default_per_scheme() {
        assert!(p("http://x.com").matches("http", "x.com", 80));
        assert!(p("https://x.com").matches("https", "x.com", 443));
        assert!(p("tls://x.com").matches("tls", "x.com", 443));
        assert!(p("dns://9.9.9.9").matches("dns", "9.9.9.9", 53));
        assert!(!p("dns://9.9.9.9").matches("dns", "9.9.9.9", 5353));
        let any_scheme = p("*://x.com");
        assert!(any_scheme.matches("http", "x.com", 80));
        assert!(any_scheme.matches("https", "x.com", 443));
        assert!(any_scheme.matches("dns", "x.com", 53));
        assert!(!any_scheme.matches("http", "x.com", 443));
        assert!(!any_scheme.matches("tcp", "x.com", 80));
        let any_port = p("tcp://x.com:*");
        assert!(any_port.matches("tcp", "x.com", 1));
        assert!(any_port.matches("tcp", "x.com", 65535));
        let fixed = p("*://x.com:8443");
        assert!(fixed.matches("tcp", "x.com", 8443));
        assert!(fixed.matches("https", "x.com", 8443));
        assert!(!fixed.matches("https", "x.com", 443));
    }

    #[test]
    fn matches_ip_literals_and_networks() {
        let v4 = p("http://203.0.113.7");
        assert!(v4.matches("http", "203.0.113.7", 80));
        assert!(v4.matches("http", "::ffff:203.0.113.7", 80));
        assert!(!v4.matches("http", "203.0.113.8", 80));
        let v6 = p("http://[2001:db8::1]");
        assert!(v6.matches("http", "[2001:db8::1]", 80));
        assert!(v6.matches("http", "2001:db8:0::1", 80));
        assert!(!v6.matches("http", "2001:db8::2", 80));
        let net = p("tcp://10.0.0.0/8:5432");
        assert!(net.matches("tcp", "10.1.2.3", 5432));
        assert!(!net.matches("tcp", "11.1.2.3", 5432));
        assert!(!net.matches("tcp", "db.internal", 5432));
        let net6 = p("tcp://[fd00::]/8:*");
        assert!(net6.matches("tcp", "fd00::5", 22));
        assert!(!net6.matches("tcp", "fe80::5", 22));
        // A name pattern never matches an address, nor the reverse.
        assert!(!p("http://localhost").matches("http", "127.0.0.1", 80));
        assert!(!p("http://127.0.0.1").matches("http", "localhost", 80));
    }

    #[test]
    fn scheme_helpers() {
        assert_eq!(Scheme::parse("TLS"), Some(Scheme::Tls));
        assert_eq!(Scheme::parse("ftp"), None);
        assert_eq!(Scheme::Tcp.default_port(), None);
        assert_eq!(Scheme::Dns.to_string(), "dns");
    }
}
