//! Special-purpose address ranges and IP networks (CIDR blocks).
//!
//! A check must never reach the host's own loopback, the cloud metadata
//! service, or a private network by accident: an address in one of the ranges
//! below is refused after name resolution unless the allow list names it (or a
//! network containing it) literally. See [`AllowList::check_addr`].
//!
//! [`AllowList::check_addr`]: super::AllowList::check_addr

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An IP network: an address and a prefix length, with no host bits set
/// (`10.0.0.0/8`, `fd00::/8`). IPv4-mapped IPv6 networks are stored as IPv4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// The network `addr/prefix`.
    ///
    /// Fails when the prefix is longer than the address (32 bits for IPv4,
    /// 128 for IPv6) or when `addr` has bits set beyond the prefix; the error
    /// names the network that was probably meant (`10.0.0.0/8` for
    /// `10.1.2.3/8`).
    pub fn new(addr: IpAddr, prefix: u8) -> Result<Self, String> {
        // `[::ffff:10.0.0.0]/104` is `10.0.0.0/8`: connections to mapped
        // addresses are IPv4 connections.
        let (addr, prefix) = match addr {
            IpAddr::V6(v6) if prefix >= 96 => match v6.to_ipv4_mapped() {
                Some(v4) => (IpAddr::V4(v4), prefix - 96),
                None => (addr, prefix),
            },
            other => (other, prefix),
        };
        let max = max_prefix(addr);
        if prefix > max {
            return Err(format!(
                "prefix /{prefix} is too long: an {} network has at most /{max}",
                family(addr)
            ));
        }
        let network = mask(addr, prefix);
        if network != addr {
            return Err(format!(
                "{addr}/{prefix} has host bits set: the network is {}",
                IpNet {
                    addr: network,
                    prefix
                }
            ));
        }
        Ok(IpNet { addr, prefix })
    }

    /// The network address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length in bits.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether `addr` is inside this network (IPv4-mapped IPv6 addresses count
    /// as their IPv4 address).
    pub fn contains(&self, addr: IpAddr) -> bool {
        let addr = addr.to_canonical();
        same_family(self.addr, addr) && mask(addr, self.prefix) == self.addr
    }

    /// Whether every address of `other` is inside this network.
    pub fn contains_net(&self, other: &IpNet) -> bool {
        other.prefix >= self.prefix && self.contains(other.addr)
    }

    /// Whether the two networks share at least one address.
    pub fn overlaps(&self, other: &IpNet) -> bool {
        self.contains_net(other) || other.contains_net(self)
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

fn max_prefix(addr: IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

fn family(addr: IpAddr) -> &'static str {
    match addr {
        IpAddr::V4(_) => "IPv4",
        IpAddr::V6(_) => "IPv6",
    }
}

fn same_family(a: IpAddr, b: IpAddr) -> bool {
    a.is_ipv4() == b.is_ipv4()
}

/// `addr` with every bit past `prefix` cleared.
fn mask(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let bits = a.to_bits();
            let m = u32::MAX
                .checked_shl(32 - u32::from(prefix.min(32)))
                .unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from_bits(bits & m))
        }
        IpAddr::V6(a) => {
            let bits = a.to_bits();
            let m = u128::MAX
                .checked_shl(128 - u32::from(prefix.min(128)))
                .unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from_bits(bits & m))
        }
    }
}

const fn v4(a: u8, b: u8, c: u8, d: u8) -> u32 {
    Ipv4Addr::new(a, b, c, d).to_bits()
}

#[allow(clippy::too_many_arguments)]
const fn v6(a: u16, b: u16, c: u16, d: u16, e: u16, f: u16, g: u16, h: u16) -> u128 {
    Ipv6Addr::new(a, b, c, d, e, f, g, h).to_bits()
}

/// Special IPv4 ranges, most specific first (the first match names the range).
/// Sources: the IANA IPv4 Special-Purpose Address Registry, RFC 6890.
const SPECIAL_V4: &[(u32, u8, &str)] = &[
    (v4(0, 0, 0, 0), 32, "unspecified"),
    (v4(0, 0, 0, 0), 8, "\"this network\""),
    (v4(10, 0, 0, 0), 8, "private (RFC 1918)"),
    (v4(100, 64, 0, 0), 10, "shared address space (CGNAT)"),
    (v4(127, 0, 0, 0), 8, "loopback"),
    (v4(169, 254, 0, 0), 16, "link-local (cloud metadata)"),
    (v4(172, 16, 0, 0), 12, "private (RFC 1918)"),
    (v4(192, 0, 0, 0), 24, "IETF protocol assignments"),
    (v4(192, 0, 2, 0), 24, "documentation"),
    (v4(192, 88, 99, 0), 24, "6to4 relay anycast (deprecated)"),
    (v4(192, 168, 0, 0), 16, "private (RFC 1918)"),
    (v4(198, 18, 0, 0), 15, "benchmarking"),
    (v4(198, 51, 100, 0), 24, "documentation"),
    (v4(203, 0, 113, 0), 24, "documentation"),
    (v4(224, 0, 0, 0), 4, "multicast"),
    (v4(255, 255, 255, 255), 32, "broadcast"),
    (v4(240, 0, 0, 0), 4, "reserved"),
];

/// AWS's IPv6 instance metadata address, inside the unique-local range.
const AWS_METADATA_V6: u128 = v6(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254);

/// The NAT64 well-known prefix `64:ff9b::/96`: the last 32 bits are an IPv4
/// address, judged as that address.
const NAT64_WKP: (u128, u8) = (v6(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96);

/// IPv4-mapped IPv6 addresses `::ffff:0:0/96`, judged as their IPv4 address.
const MAPPED: (u128, u8) = (v6(0, 0, 0, 0, 0, 0xffff, 0, 0), 96);

/// Special IPv6 ranges, most specific first (the first match names the range).
/// Sources: the IANA IPv6 Special-Purpose Address Registry, RFC 6890.
const SPECIAL_V6: &[(u128, u8, &str)] = &[
    (v6(0, 0, 0, 0, 0, 0, 0, 0), 128, "unspecified"),
    (v6(0, 0, 0, 0, 0, 0, 0, 1), 128, "loopback"),
    (
        v6(0, 0, 0, 0, 0, 0, 0, 0),
        96,
        "IPv4-compatible (deprecated)",
    ),
    (v6(0x64, 0xff9b, 1, 0, 0, 0, 0, 0), 48, "NAT64 local-use"),
    (v6(0x100, 0, 0, 0, 0, 0, 0, 0), 64, "discard-only"),
    (v6(0x2001, 0, 0, 0, 0, 0, 0, 0), 32, "Teredo tunnelling"),
    (v6(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32, "documentation"),
    (
        v6(0x2001, 0, 0, 0, 0, 0, 0, 0),
        23,
        "IETF protocol assignments",
    ),
    (v6(0x2002, 0, 0, 0, 0, 0, 0, 0), 16, "6to4 (deprecated)"),
    (v6(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20, "documentation"),
    (v6(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7, "unique-local"),
    (v6(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10, "link-local"),
    (
        v6(0xfec0, 0, 0, 0, 0, 0, 0, 0),
        10,
        "site-local (deprecated)",
    ),
    (v6(0xff00, 0, 0, 0, 0, 0, 0, 0), 8, "multicast"),
];

fn in_v6(bits: u128, (net, prefix): (u128, u8)) -> bool {
    let m = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
    bits & m == net
}

/// The name of the special-purpose range `addr` is in, or `None` for an
/// ordinary, globally reachable address.
///
/// Special ranges: unspecified, "this network", loopback, private (RFC 1918),
/// shared address space (CGNAT, `100.64.0.0/10`), link-local (including
/// `169.254.169.254`, the cloud metadata service, and `fe80::/10`),
/// unique-local (`fc00::/7`), IETF protocol assignments, documentation,
/// benchmarking, 6to4, Teredo, discard-only, multicast, broadcast and
/// reserved. An IPv4-mapped IPv6 address (`::ffff:127.0.0.1`) or a NAT64
/// address (`64:ff9b::7f00:1`) is judged by the IPv4 address it carries.
///
/// ```
/// # use std::net::IpAddr;
/// # use vantage_core::policy::is_special;
/// let metadata: IpAddr = "169.254.169.254".parse().unwrap();
/// assert_eq!(is_special(metadata), Some("link-local (cloud metadata)"));
/// assert_eq!(is_special("93.184.216.34".parse().unwrap()), None);
/// ```
pub fn is_special(addr: IpAddr) -> Option<&'static str> {
    match addr.to_canonical() {
        IpAddr::V4(a) => {
            let bits = a.to_bits();
            SPECIAL_V4.iter().find_map(|&(net, prefix, name)| {
                let m = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
                (bits & m == net).then_some(name)
            })
        }
        IpAddr::V6(a) => {
            let bits = a.to_bits();
            if bits == AWS_METADATA_V6 {
                return Some("unique-local (cloud metadata)");
            }
            if in_v6(bits, NAT64_WKP) {
                // Truncation is the point: the low 32 bits are the IPv4 address.
                return is_special(IpAddr::V4(Ipv4Addr::from_bits(bits as u32)));
            }
            SPECIAL_V6
                .iter()
                .find_map(|&(net, prefix, name)| in_v6(bits, (net, prefix)).then_some(name))
        }
    }
}

/// Whether `net` shares any address with a special range. Conservative: a
/// network overlapping the NAT64 or IPv4-mapped prefixes counts as special,
/// since it may carry special IPv4 addresses.
pub(crate) fn overlaps_special(net: &IpNet) -> bool {
    match net.addr() {
        IpAddr::V4(_) => SPECIAL_V4.iter().any(|&(bits, prefix, _)| {
            let special = IpNet {
                addr: IpAddr::V4(Ipv4Addr::from_bits(bits)),
                prefix,
            };
            special.overlaps(net)
        }),
        IpAddr::V6(_) => SPECIAL_V6
            .iter()
            .map(|&(bits, prefix, _)| (bits, prefix))
            .chain([NAT64_WKP, MAPPED])
            .any(|(bits, prefix)| {
                let special = IpNet {
                    addr: IpAddr::V6(Ipv6Addr::from_bits(bits)),
                    prefix,
                };
                special.overlaps(net)
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn net(s: &str) -> IpNet {
        let (a, p) = s.rsplit_once('/').unwrap();
        IpNet::new(ip(a), p.parse().unwrap()).unwrap()
    }

    #[test]
    fn special_ipv4_ranges_are_named() {
        for (addr, name) in [
            ("0.0.0.0", "unspecified"),
            ("0.1.2.3", "\"this network\""),
            ("127.0.0.1", "loopback"),
            ("127.255.255.254", "loopback"),
            ("10.1.2.3", "private (RFC 1918)"),
            ("172.16.0.1", "private (RFC 1918)"),
            ("172.31.255.255", "private (RFC 1918)"),
            ("192.168.1.1", "private (RFC 1918)"),
            ("169.254.169.254", "link-local (cloud metadata)"),
            ("100.64.0.1", "shared address space (CGNAT)"),
            ("100.127.255.255", "shared address space (CGNAT)"),
            ("192.0.0.192", "IETF protocol assignments"),
            ("192.0.2.10", "documentation"),
            ("198.51.100.7", "documentation"),
            ("203.0.113.99", "documentation"),
            ("198.19.0.1", "benchmarking"),
            ("224.0.0.251", "multicast"),
            ("239.255.255.250", "multicast"),
            ("255.255.255.255", "broadcast"),
            ("240.0.0.1", "reserved"),
        ] {
            assert_eq!(is_special(ip(addr)), Some(name), "{addr}");
        }
    }

    #[test]
    fn ordinary_ipv4_addresses_are_not_special() {
        for addr in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.216.34",
            "172.15.255.255",
            "172.32.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "169.253.255.255",
            "192.169.0.1",
            "223.255.255.255",
        ] {
            assert_eq!(is_special(ip(addr)), None, "{addr}");
        }
    }

    #[test]
    fn special_ipv6_ranges_are_named() {
        for (addr, name) in [
            ("::", "unspecified"),
            ("::1", "loopback"),
            ("fe80::1", "link-local"),
            ("febf:ffff::1", "link-local"),
            ("fc00::1", "unique-local"),
            ("fd12:3456::1", "unique-local"),
            ("fd00:ec2::254", "unique-local (cloud metadata)"),
            ("ff02::1", "multicast"),
            ("2001:db8::1", "documentation"),
            ("3fff::1", "documentation"),
            ("2001::1", "Teredo tunnelling"),
            ("2001:2::1", "IETF protocol assignments"),
            ("2002:c000:0204::1", "6to4 (deprecated)"),
            ("100::1", "discard-only"),
            ("::1.2.3.4", "IPv4-compatible (deprecated)"),
            ("64:ff9b:1::1", "NAT64 local-use"),
            ("fec0::1", "site-local (deprecated)"),
        ] {
            assert_eq!(is_special(ip(addr)), Some(name), "{addr}");
        }
        for addr in [
            "2606:4700:4700::1111",
            "2a00:1450:4001::200e",
            "2001:4860::8888",
        ] {
            assert_eq!(is_special(ip(addr)), None, "{addr}");
        }
    }

    #[test]
    fn embedded_ipv4_is_judged_as_ipv4() {
        assert_eq!(is_special(ip("::ffff:127.0.0.1")), Some("loopback"));
        assert_eq!(
            is_special(ip("::ffff:169.254.169.254")),
            Some("link-local (cloud metadata)")
        );
        assert_eq!(
            is_special(ip("::ffff:10.0.0.1")),
            Some("private (RFC 1918)")
        );
        assert_eq!(is_special(ip("::ffff:8.8.8.8")), None);
        assert_eq!(is_special(ip("64:ff9b::7f00:1")), Some("loopback"));
        assert_eq!(
            is_special(ip("64:ff9b::a9fe:a9fe")),
            Some("link-local (cloud metadata)")
        );
        assert_eq!(is_special(ip("64:ff9b::808:808")), None);
    }

    #[test]
    fn networks_contain_and_overlap() {
        let ten = net("10.0.0.0/8");
        assert!(ten.contains(ip("10.255.0.1")));
        assert!(ten.contains(ip("::ffff:10.0.0.1")));
        assert!(!ten.contains(ip("11.0.0.0")));
        assert!(!ten.contains(ip("::1")));
        assert!(ten.contains_net(&net("10.1.0.0/16")));
        assert!(!net("10.1.0.0/16").contains_net(&ten));
        assert!(ten.overlaps(&net("10.1.0.0/16")));
        assert!(!ten.overlaps(&net("11.0.0.0/8")));
        let all = net("0.0.0.0/0");
        assert!(all.contains(ip("255.255.255.255")));
        assert!(!all.contains(ip("::")));
        let ula = net("fd00::/8");
        assert!(ula.contains(ip("fd00::1")));
        assert!(!ula.contains(ip("fc00::1")));
        assert!(net("::/0").contains(ip("2001:db8::1")));
        assert!(net("1.2.3.4/32").contains(ip("1.2.3.4")));
        assert!(!net("1.2.3.4/32").contains(ip("1.2.3.5")));
    }

    #[test]
    fn network_constructor_rejects_host_bits_and_long_prefixes() {
        let err = IpNet::new(ip("10.1.2.3"), 8).unwrap_err();
        assert!(err.contains("the network is 10.0.0.0/8"), "{err}");
        let err = IpNet::new(ip("10.0.0.0"), 33).unwrap_err();
        assert!(err.contains("at most /32"), "{err}");
        let err = IpNet::new(ip("fd00::1"), 8).unwrap_err();
        assert!(err.contains("fd00::/8"), "{err}");
        assert!(IpNet::new(ip("::"), 129).is_err());
    }

    #[test]
    fn mapped_networks_become_ipv4() {
        let n = IpNet::new(ip("::ffff:10.0.0.0"), 104).unwrap();
        assert_eq!(n.to_string(), "10.0.0.0/8");
        let n = IpNet::new(ip("::ffff:10.0.0.1"), 128).unwrap();
        assert_eq!(n.to_string(), "10.0.0.1/32");
    }

    #[test]
    fn overlap_with_special_ranges() {
        assert!(overlaps_special(&net("0.0.0.0/0")));
        assert!(overlaps_special(&net("10.2.0.0/16")));
        assert!(overlaps_special(&net("169.254.169.254/32")));
        assert!(!overlaps_special(&net("93.184.216.0/24")));
        assert!(!overlaps_special(&net("8.8.8.8/32")));
        assert!(overlaps_special(&net("::/0")));
        assert!(overlaps_special(&net("fd00::/8")));
        assert!(overlaps_special(&net("64:ff9b::/96")));
        assert!(!overlaps_special(&net("2606:4700::/32")));
    }
}
