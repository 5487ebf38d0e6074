//! An ordered allow list, the two checks every connection passes, and the
//! operator's ceiling.

use std::fmt;
use std::net::IpAddr;

use super::pattern::{AllowPattern, HostPattern, PatternError, Scheme, TargetHost};
use super::special::is_special;

/// The outbound allow list of one check: ordered patterns, deny by default.
///
/// Every connection a capability makes passes two checks:
/// 1. [`check_target`](Self::check_target) before name resolution: some
///    pattern must match the scheme, host and port the check asked for;
/// 2. [`check_addr`](Self::check_addr) on each resolved address, before
///    connecting: an address in a special range (loopback, private, link-local
///    and cloud metadata, …; see [`is_special`]) is refused unless a pattern
///    names that address or a network containing it. `http://*` never reaches
///    `localhost` or `169.254.169.254`.
///
/// ```
/// # use vantage_core::policy::AllowList;
/// let allow = AllowList::parse(["https://*.example.com", "tcp://10.0.0.0/8:5432"]).unwrap();
/// assert!(allow.check_target("https", "api.example.com", 443).is_ok());
/// assert!(allow.check_target("https", "api.evil.com", 443).is_err());
/// // A name may be allowed, yet resolve to a special address:
/// let loopback = "127.0.0.1".parse().unwrap();
/// assert!(allow.check_addr("https", "api.example.com", 443, loopback).is_err());
/// // Private addresses named literally are an explicit opt-in:
/// let db = "10.1.2.3".parse().unwrap();
/// assert!(allow.check_addr("tcp", "10.1.2.3", 5432, db).is_ok());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct AllowList {
    patterns: Vec<AllowPattern>,
}

/// Why the policy refused a connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{rule}")]
pub struct Denied {
    /// One line naming the rule that refused, e.g.
    /// `https://api.evil.com:443 is not in the allow list [https://*.example.com]`.
    pub rule: String,
    /// The special range of the refused address, when that was the reason
    /// (e.g. `loopback`); `None` when no pattern matched the target.
    pub range: Option<&'static str>,
}

impl Denied {
    fn rule(rule: String) -> Self {
        Denied { rule, range: None }
    }
}

impl AllowList {
    /// The empty list: every connection is denied.
    pub fn deny_all() -> Self {
        AllowList::default()
    }

    /// Parse patterns (see [`AllowPattern`]), keeping their order. Stops at
    /// the first invalid pattern; the error names it and shows the correct
    /// form. `{target}` is not expanded here.
    pub fn parse<I, S>(patterns: I) -> Result<Self, PatternError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        patterns
            .into_iter()
            .map(|p| p.as_ref().parse())
            .collect::<Result<Vec<_>, _>>()
            .map(AllowList::from)
    }

    /// The patterns, in order.
    pub fn patterns(&self) -> &[AllowPattern] {
        &self.patterns
    }

    /// Whether the list is empty (denies everything).
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Before resolution: is a `scheme` connection to `host:port` allowed?
    ///
    /// `scheme` is one of `http`, `https`, `tcp`, `tls`, `dns`
    /// (case-insensitive); `host` is a name or an IP address (IPv6 with or
    /// without brackets). Returns the first pattern that matches; the error
    /// names the target and the list, e.g.
    /// `https://api.evil.com:443 is not in the allow list [https://*.example.com]`.
    pub fn check_target(
        &self,
        scheme: &str,
        host: &str,
        port: u16,
    ) -> Result<&AllowPattern, Denied> {
        let (scheme, target) = self.target(scheme, host, port)?;
        let target_shown = format!("{scheme}://{target}:{port}");
        if self.patterns.is_empty() {
            return Err(Denied::rule(format!(
                "{target_shown} is denied: the allow list is empty (no outbound access)"
            )));
        }
        if let Some(p) = self
            .patterns
            .iter()
            .find(|p| p.matches_target(scheme, &target, port))
        {
            return Ok(p);
        }
        let mut rule = format!("{target_shown} is not in the allow list {self}");
        if let TargetHost::Name(name) = &target {
            let apex_only = self.patterns.iter().find(|p| {
                matches!(p.host(), HostPattern::Subdomains(d) if d == name)
                    && p.reaches(scheme)
                    && p.matches_target(scheme, &TargetHost::Name(format!("x.{name}")), port)
            });
            if let Some(p) = apex_only {
                rule.push_str(&format!(
                    " ({p} matches subdomains only, not {name} itself; add {scheme}://{name}{})",
                    port_suffix(scheme, port)
                ));
            }
        }
        Err(Denied::rule(rule))
    }

    /// After resolution, on each address about to be connected to.
    ///
    /// First repeats [`check_target`](Self::check_target), so callers cannot
    /// skip it. Then, if `addr` is in a special range (see [`is_special`]:
    /// loopback, private, link-local including cloud metadata, unique-local,
    /// CGNAT, unspecified, broadcast, multicast, documentation, …, and
    /// IPv4-mapped forms of these), it is refused unless a pattern that
    /// matches `scheme` and `port` names `addr` or a network containing it
    /// (`http://127.0.0.1:8080`, `tcp://10.0.0.0/8:5432`): an explicit
    /// opt-in. A wildcard or host-name pattern is never an opt-in, so a name
    /// that resolves (or is rebound) to `169.254.169.254` is refused.
    pub fn check_addr(
        &self,
        scheme: &str,
        host: &str,
        port: u16,
        addr: IpAddr,
    ) -> Result<(), Denied> {
        self.check_target(scheme, host, port)?;
        let (scheme, target) = self.target(scheme, host, port)?;
        let addr = addr.to_canonical();
        let Some(range) = is_special(addr) else {
            return Ok(());
        };
        if self.patterns.iter().any(|p| p.opts_in(scheme, port, addr)) {
            return Ok(());
        }
        let addr_shown = HostPattern::Ip(addr);
        let via = match &target {
            TargetHost::Ip(ip) if *ip == addr => String::new(),
            other => format!(" (resolved from {other})"),
        };
        Err(Denied {
            rule: format!(
                "{addr}{via} is refused: {range} addresses are reachable only when the allow list \
                 names them; to allow it on purpose, add {scheme}://{addr_shown}{}",
                port_suffix(scheme, port)
            ),
            range: Some(range),
        })
    }

    /// Whether, as a ceiling, this list covers `pattern`: every connection
    /// `pattern` allows is allowed by this list, with the rule below.
    ///
    /// For each scheme `pattern` can reach (all five for `*://`), a single
    /// ceiling pattern must cover it: same or `*` scheme, a port set
    /// containing the pattern's ports, and a host set containing the
    /// pattern's hosts (`*` ⊇ `*.example.com` ⊇ `api.example.com`;
    /// `10.0.0.0/8` ⊇ `10.1.0.0/16` ⊇ `10.1.2.3`). A wildcard or name in
    /// the ceiling never covers a literal address or network that touches a
    /// special range: only a ceiling that names such addresses itself lets a
    /// check opt in to them.
    pub fn covers(&self, pattern: &AllowPattern) -> Result<(), PatternError> {
        let uncovered: Vec<Scheme> = Scheme::ALL
            .into_iter()
            .filter(|&s| pattern.reaches(s))
            .filter(|&s| !self.patterns.iter().any(|c| c.covers(pattern, s)))
            .collect();
        if uncovered.is_empty() {
            return Ok(());
        }
        let hint = if pattern.scheme().is_none() && uncovered.len() < reach_count(pattern) {
            let names: Vec<&str> = uncovered.iter().map(|s| s.as_str()).collect();
            format!(
                ": it is not covered for {}; name only the schemes you need, e.g. {}",
                names.join(", "),
                with_scheme(pattern, first_covered(self, pattern))
            )
        } else if pattern.host().is_literal()
            && self.patterns.iter().any(|c| !c.host().is_literal())
        {
            ": a wildcard or name in the ceiling never covers special addresses; \
             the ceiling must name the address or its network"
                .to_string()
        } else {
            ": narrow the pattern, or ask the operator to widen allow_ceiling".to_string()
        };
        Err(PatternError::OutsideCeiling {
            pattern: pattern.to_string(),
            ceiling: self.to_string(),
            hint,
        })
    }

    /// This list, limited by an operator-wide `ceiling`.
    ///
    /// Rule: every pattern must be within the ceiling (see
    /// [`covers`](Self::covers)); the result then holds the same patterns, in
    /// order. A pattern that reaches beyond the ceiling, even in part, is an
    /// error naming it, rather than being narrowed or dropped silently: a
    /// check's allow list always means what it says.
    pub fn restrict_to(&self, ceiling: &AllowList) -> Result<AllowList, PatternError> {
        for p in &self.patterns {
            ceiling.covers(p)?;
        }
        Ok(self.clone())
    }

    fn target(&self, scheme: &str, host: &str, port: u16) -> Result<(Scheme, TargetHost), Denied> {
        let Some(s) = Scheme::parse(scheme) else {
            return Err(Denied::rule(format!(
                "scheme {scheme:?} is not one the allow list knows (http, https, tcp, tls, dns)"
            )));
        };
        let Some(target) = TargetHost::parse(host) else {
            return Err(Denied::rule(format!(
                "{s}://{host}:{port} is denied: {host:?} is neither a valid host name nor an IP address"
            )));
        };
        Ok((s, target))
    }
}

fn reach_count(pattern: &AllowPattern) -> usize {
    Scheme::ALL
        .into_iter()
        .filter(|&s| pattern.reaches(s))
        .count()
}

fn first_covered(ceiling: &AllowList, pattern: &AllowPattern) -> Scheme {
    Scheme::ALL
        .into_iter()
        .find(|&s| pattern.reaches(s) && ceiling.patterns.iter().any(|c| c.covers(pattern, s)))
        .unwrap_or(Scheme::Https)
}

/// `pattern` with its `*` scheme replaced by `scheme`, in canonical form.
fn with_scheme(pattern: &AllowPattern, scheme: Scheme) -> String {
    let text = pattern.to_string();
    let rest = text.strip_prefix("*://").unwrap_or(&text);
    let concrete = format!("{scheme}://{rest}");
    concrete
        .parse::<AllowPattern>()
        .map_or(concrete, |p| p.to_string())
}

/// `:port`, or nothing when `port` is the scheme's default.
fn port_suffix(scheme: Scheme, port: u16) -> String {
    if scheme.default_port() == Some(port) {
        String::new()
    } else {
        format!(":{port}")
    }
}

impl From<Vec<AllowPattern>> for AllowList {
    fn from(patterns: Vec<AllowPattern>) -> Self {
        AllowList { patterns }
    }
}

impl FromIterator<AllowPattern> for AllowList {
    fn from_iter<T: IntoIterator<Item = AllowPattern>>(iter: T) -> Self {
        AllowList {
            patterns: iter.into_iter().collect(),
        }
    }
}

impl fmt::Display for AllowList {
    /// `[pattern, pattern]`, canonical forms in order.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, p) in self.patterns.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{p}")?;
        }
        f.write_str("]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(patterns: &[&str]) -> AllowList {
        AllowList::parse(patterns).unwrap_or_else(|e| panic!("{e}"))
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn empty_list_denies_everything() {
        let deny = AllowList::deny_all();
        assert!(deny.is_empty());
        let err = deny
            .check_target("https", "api.example.com", 443)
            .unwrap_err();
        assert_eq!(
            err.rule,
            "https://api.example.com:443 is denied: the allow list is empty (no outbound access)"
        );
        assert!(
            deny.check_addr("https", "x.com", 443, ip("8.8.8.8"))
                .is_err()
        );
    }

    #[test]
    fn parse_keeps_order_and_reports_the_bad_pattern() {
        let l = list(&["https://b.com", "http://a.com:8080"]);
        let shown: Vec<String> = l.patterns().iter().map(|p| p.to_string()).collect();
        assert_eq!(shown, ["https://b.com", "http://a.com:8080"]);
        assert_eq!(l.to_string(), "[https://b.com, http://a.com:8080]");
        let err = AllowList::parse(["https://ok.com", "https://bad.com/path"]).unwrap_err();
        assert_eq!(err.pattern(), "https://bad.com/path");
        let owned = vec!["https://a.com".to_string()];
        assert_eq!(AllowList::parse(&owned).unwrap().patterns().len(), 1);
    }

    #[test]
    fn check_target_returns_the_first_matching_pattern() {
        let l = list(&[
            "https://api.example.com",
            "https://*.example.com",
            "https://*",
        ]);
        let hit = l.check_target("https", "api.example.com", 443).unwrap();
        assert_eq!(hit.to_string(), "https://api.example.com");
        let hit = l.check_target("https", "www.example.com", 443).unwrap();
        assert_eq!(hit.to_string(), "https://*.example.com");
        let hit = l.check_target("https", "other.net", 443).unwrap();
        assert_eq!(hit.to_string(), "https://*");
    }

    #[test]
    fn denial_names_the_target_and_the_list() {
        let l = list(&["https://*.example.com"]);
        let err = l.check_target("https", "api.evil.com", 443).unwrap_err();
        assert_eq!(
            err.to_string(),
            "https://api.evil.com:443 is not in the allow list [https://*.example.com]"
        );
        assert_eq!(err.range, None);
        let err = l.check_target("https", "[2001:db8::1]", 443).unwrap_err();
        assert!(
            err.rule.starts_with("https://[2001:db8::1]:443 is not"),
            "{err}"
        );
        let err = l.check_target("gopher", "api.example.com", 70).unwrap_err();
        assert!(err.rule.contains("scheme \"gopher\""), "{err}");
        let err = l.check_target("https", "a b.example.com", 443).unwrap_err();
        assert!(err.rule.contains("neither a valid host name"), "{err}");
    }

    #[test]
    fn denial_of_an_apex_explains_the_wildcard() {
        let l = list(&["https://*.example.com"]);
        let err = l.check_target("https", "example.com", 443).unwrap_err();
        assert!(
            err.rule.contains(
                "https://*.example.com matches subdomains only, not example.com itself; \
                 add https://example.com"
            ),
            "{err}"
        );
    }

    #[test]
    fn schemes_and_ports_are_enforced() {
        let l = list(&["https://api.example.com", "tcp://db.example.com:5432"]);
        assert!(l.check_target("http", "api.example.com", 80).is_err());
        assert!(l.check_target("https", "api.example.com", 8443).is_err());
        assert!(l.check_target("tls", "api.example.com", 443).is_err());
        assert!(l.check_target("tcp", "db.example.com", 5432).is_ok());
        assert!(l.check_target("tcp", "db.example.com", 5433).is_err());
        assert!(l.check_target("TCP", "DB.example.com", 5432).is_ok());
    }

    #[test]
    fn public_addresses_pass_check_addr() {
        let l = list(&["https://*.example.com"]);
        assert!(
            l.check_addr("https", "api.example.com", 443, ip("93.184.216.34"))
                .is_ok()
        );
        assert!(
            l.check_addr("https", "api.example.com", 443, ip("2606:2800:220:1::1"))
                .is_ok()
        );
    }

    #[test]
    fn check_addr_repeats_check_target() {
        let l = list(&["https://*.example.com"]);
        let err = l
            .check_addr("https", "api.evil.com", 443, ip("93.184.216.34"))
            .unwrap_err();
        assert!(err.rule.contains("is not in the allow list"), "{err}");
    }

    #[test]
    fn wildcards_never_reach_special_addresses() {
        let l = list(&["http://*", "https://*", "*://*:*"]);
        for (host, addr, range) in [
            ("localhost", "127.0.0.1", "loopback"),
            ("127.0.0.1", "127.0.0.1", "loopback"),
            (
                "metadata.google.internal",
                "169.254.169.254",
                "link-local (cloud metadata)",
            ),
            (
                "169.254.169.254",
                "169.254.169.254",
                "link-local (cloud metadata)",
            ),
            ("x.example.com", "10.0.0.5", "private (RFC 1918)"),
            ("x.example.com", "192.168.1.1", "private (RFC 1918)"),
            ("x.example.com", "172.20.0.1", "private (RFC 1918)"),
            (
                "x.example.com",
                "100.100.100.200",
                "shared address space (CGNAT)",
            ),
            ("x.example.com", "0.0.0.0", "unspecified"),
            ("x.example.com", "255.255.255.255", "broadcast"),
            ("x.example.com", "224.0.0.1", "multicast"),
            ("x.example.com", "::1", "loopback"),
            ("x.example.com", "::", "unspecified"),
            ("x.example.com", "fe80::1", "link-local"),
            ("x.example.com", "fd00::1", "unique-local"),
            ("x.example.com", "::ffff:127.0.0.1", "loopback"),
            (
                "x.example.com",
                "::ffff:169.254.169.254",
                "link-local (cloud metadata)",
            ),
            (
                "x.example.com",
                "64:ff9b::a9fe:a9fe",
                "link-local (cloud metadata)",
            ),
        ] {
            let err = l.check_addr("http", host, 80, ip(addr)).unwrap_err();
            assert_eq!(err.range, Some(range), "{host} {addr}");
            assert!(err.rule.contains(range), "{err}");
        }
    }

    #[test]
    fn special_denial_shows_how_to_opt_in() {
        let l = list(&["http://*"]);
        let err = l
            .check_addr("http", "localhost", 80, ip("127.0.0.1"))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "127.0.0.1 (resolved from localhost) is refused: loopback addresses are reachable \
             only when the allow list names them; to allow it on purpose, add http://127.0.0.1"
        );
        let l = list(&["tcp://*:*"]);
        let err = l.check_addr("tcp", "::1", 6379, ip("::1")).unwrap_err();
        assert!(
            err.rule.starts_with("::1 is refused: loopback addresses"),
            "{err}"
        );
        assert!(err.rule.ends_with("add tcp://[::1]:6379"), "{err}");
    }

    #[test]
    fn host_name_patterns_are_not_an_opt_in() {
        let l = list(&["http://localhost:8080"]);
        assert!(l.check_target("http", "localhost", 8080).is_ok());
        let err = l
            .check_addr("http", "localhost", 8080, ip("127.0.0.1"))
            .unwrap_err();
        assert_eq!(err.range, Some("loopback"));
        let l = list(&["http://metadata.google.internal"]);
        assert!(
            l.check_addr(
                "http",
                "metadata.google.internal",
                80,
                ip("169.254.169.254")
            )
            .is_err()
        );
    }

    #[test]
    fn literal_addresses_and_networks_opt_in() {
        let l = list(&["http://127.0.0.1:8080"]);
        assert!(
            l.check_addr("http", "127.0.0.1", 8080, ip("127.0.0.1"))
                .is_ok()
        );
        assert!(
            l.check_addr("http", "[::ffff:127.0.0.1]", 8080, ip("::ffff:127.0.0.1"))
                .is_ok()
        );
        // Same address, other port: the opt-in is for scheme and port too.
        assert!(
            l.check_addr("http", "127.0.0.1", 8081, ip("127.0.0.1"))
                .is_err()
        );

        let l = list(&["tcp://db.internal:5432", "tcp://10.0.0.0/8:5432"]);
        assert!(
            l.check_addr("tcp", "db.internal", 5432, ip("10.1.2.3"))
                .is_ok()
        );
        assert!(
            l.check_addr("tcp", "db.internal", 5432, ip("192.168.0.3"))
                .is_err()
        );

        let l = list(&["tcp://db.internal:5432", "tcp://10.0.0.0/8:6379"]);
        let err = l
            .check_addr("tcp", "db.internal", 5432, ip("10.1.2.3"))
            .unwrap_err();
        assert_eq!(err.range, Some("private (RFC 1918)"));

        let l = list(&["http://[::1]:8080", "https://[fd00::]/8"]);
        assert!(l.check_addr("http", "::1", 8080, ip("::1")).is_ok());
        assert!(
            l.check_addr("https", "[fd00::7]", 443, ip("fd00::7"))
                .is_ok()
        );
        assert!(
            l.check_addr("https", "[fd00::7]", 8443, ip("fd00::7"))
                .is_err()
        );

        let l = list(&["http://169.254.169.254"]);
        assert!(
            l.check_addr("http", "169.254.169.254", 80, ip("169.254.169.254"))
                .is_ok()
        );
    }

    #[test]
    fn ceiling_covers_narrower_patterns() {
        let ceiling = list(&["https://*", "http://*"]);
        for inside in [
            "https://api.example.com",
            "https://*.example.com",
            "https://*",
            "http://x.com",
            "https://93.184.216.34",
            "https://93.184.216.0/24",
            "https://[2606:2800::]/32",
        ] {
            let l = list(&[inside]);
            assert_eq!(l.restrict_to(&ceiling).unwrap(), l, "{inside}");
        }
        let ceiling = list(&[
            "https://*.example.com",
            "tcp://*.internal:*",
            "tcp://10.0.0.0/8:*",
        ]);
        for inside in [
            "https://api.example.com",
            "https://*.eu.example.com",
            "tcp://db.internal:5432",
            "tcp://*.internal:*",
            "tcp://10.0.0.0/16:5432",
            "tcp://10.1.2.3:22",
        ] {
            assert!(ceiling.covers(&inside.parse().unwrap()).is_ok(), "{inside}");
        }
    }

    #[test]
    fn ceiling_rejects_wider_patterns_naming_them() {
        let ceiling = list(&["https://*.example.com", "tcp://db.internal:5432"]);
        for outside in [
            "https://example.com",
            "https://*",
            "http://api.example.com",
            "https://api.example.com:8443",
            "https://*.com",
            "tcp://db.internal:*",
            "tcp://db.internal:5433",
            "*://api.example.com",
            "https://93.184.216.34",
        ] {
            let l = list(&[outside]);
            let err = l.restrict_to(&ceiling).unwrap_err();
            let shown = outside.parse::<AllowPattern>().unwrap().to_string();
            assert_eq!(err.pattern(), shown, "{outside}");
            assert!(
                err.to_string().contains(&format!(
                    "allow pattern {shown} is outside the operator's allow ceiling \
                     [https://*.example.com, tcp://db.internal:5432]"
                )),
                "{err}"
            );
        }
    }

    #[test]
    fn ceiling_with_any_scheme_pattern_checks_each_scheme() {
        let ceiling = list(&["https://*", "http://*"]);
        let err = ceiling
            .covers(&"*://api.example.com".parse().unwrap())
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("not covered for tls, dns"), "{msg}");
        assert!(msg.contains("e.g. http://api.example.com"), "{msg}");
        // `*://host` reaches no tcp port, so tcp needs no cover.
        let ceiling = list(&["http://*", "https://*", "tls://*", "dns://*"]);
        assert!(
            ceiling
                .covers(&"*://api.example.com".parse().unwrap())
                .is_ok()
        );
        assert!(
            ceiling
                .covers(&"*://api.example.com:*".parse().unwrap())
                .is_err()
        );
        let all = list(&["*://*:*"]);
        assert!(
            all.covers(&"*://api.example.com:*".parse().unwrap())
                .is_ok()
        );
    }

    #[test]
    fn wildcard_ceiling_never_passes_on_special_opt_ins() {
        let ceiling = list(&["http://*", "https://*", "tcp://*:*"]);
        for opt_in in [
            "http://127.0.0.1:8080",
            "http://169.254.169.254",
            "tcp://10.0.0.0/8:5432",
            "tcp://0.0.0.0/0:*",
            "https://[::1]",
            "https://[fd00::]/8",
            "https://[::]/0",
        ] {
            let err = ceiling.covers(&opt_in.parse().unwrap()).unwrap_err();
            assert!(
                err.to_string().contains("never covers special addresses"),
                "{err}"
            );
        }
        let ceiling = list(&["tcp://10.0.0.0/8:*", "http://127.0.0.1:*"]);
        assert!(
            ceiling
                .covers(&"tcp://10.1.0.0/16:5432".parse().unwrap())
                .is_ok()
        );
        assert!(
            ceiling
                .covers(&"http://127.0.0.1:8080".parse().unwrap())
                .is_ok()
        );
        assert!(
            ceiling
                .covers(&"http://127.0.0.2:8080".parse().unwrap())
                .is_err()
        );
        assert!(
            ceiling
                .covers(&"tcp://db.internal:5432".parse().unwrap())
                .is_err()
        );
    }

    #[test]
    fn empty_ceiling_allows_nothing_but_an_empty_list() {
        let ceiling = AllowList::deny_all();
        assert!(
            AllowList::deny_all()
                .restrict_to(&ceiling)
                .unwrap()
                .is_empty()
        );
        assert!(list(&["https://x.com"]).restrict_to(&ceiling).is_err());
    }

    #[test]
    fn lists_can_be_built_from_patterns() {
        let patterns: Vec<AllowPattern> = vec!["https://a.com".parse().unwrap()];
        let a = AllowList::from(patterns.clone());
        let b: AllowList = patterns.into_iter().collect();
        assert_eq!(a, b);
    }
}
