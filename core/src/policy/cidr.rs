//! CIDR blocks as the configuration writes them (`10.0.0.0/8`), and the
//! cloud metadata addresses no egress rule may open.

use super::IpNet;

/// Cloud instance-metadata addresses (AWS, GCP, Azure, ...: IPv4; AWS
/// Nitro: IPv6), excepted from every egress block containing them.
pub const METADATA_ADDRESSES: [&str; 2] = ["169.254.169.254/32", "fd00:ec2::254/128"];

/// The metadata addresses inside `cidr` (to except from it). A block that
/// does not parse yields none (validation has refused it already).
pub fn metadata_inside(cidr: &str) -> Vec<String> {
    let Some(net) = parse_net(cidr) else {
        return Vec::new();
    };
    METADATA_ADDRESSES
        .iter()
        .filter(|m| parse_net(m).is_some_and(|m| net.contains_net(&m)))
        .map(|m| m.to_string())
        .collect()
}

/// `addr/prefix` as a network (host bits cleared); None when it does not
/// parse.
pub fn parse_net(cidr: &str) -> Option<IpNet> {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    let (addr, prefix) = cidr.split_once('/')?;
    let addr: IpAddr = addr.parse().ok()?;
    let prefix: u32 = prefix.parse().ok()?;
    let network = match addr {
        IpAddr::V4(a) => {
            let host_bits = 32u32.checked_sub(prefix)?;
            let mask = u32::MAX.checked_shl(host_bits).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask))
        }
        IpAddr::V6(a) => {
            let host_bits = 128u32.checked_sub(prefix)?;
            let mask = u128::MAX.checked_shl(host_bits).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask))
        }
    };
    IpNet::new(network, u8::try_from(prefix).ok()?).ok()
}
