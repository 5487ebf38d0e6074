//! The `dns` interface: one DNS question per call, answered with the
//! response code, the answer section (owner name, type, TTL, data in
//! presentation format), the server that answered and the time taken.
//!
//! # What a call does
//!
//! The host builds the query itself (recursion desired unless the query
//! clears `recursion-desired`, EDNS0 with a 4096 byte payload) and sends it
//! over UDP, retrying over TCP when the answer is truncated, or over TCP
//! only (`transport: tcp`). The answer, authority and additional sections
//! are reported. There is no cache: every call asks the server. NXDOMAIN,
//! SERVFAIL, REFUSED, … are answers (`rcode`), not errors; errors are for
//! calls that produced no answer (denied, timeout, unreachable server,
//! malformed reply). Records of types outside the WIT `record-type` enum
//! (RRSIG, DNAME, …) are left out of `records`.
//!
//! Each call counts as one connection against the run's budget (the slot is
//! held while the query runs) and its reply bytes against the byte cap. The
//! timeout is `timeout-ms` (default 5 s), capped by the run's deadline; when
//! it expires the call fails with `timeout("resolve")`.
//!
//! # Policy
//!
//! A query needs a `dns://` allow pattern (deny by default):
//!
//! - **With a `server`** (`ip` or `ip:port`, default port 53): the server is
//!   checked like any connection, `dns://IP:PORT` against the allow list and
//!   then as an address ([`AllowList::check_addr`]), so a loopback, private
//!   or link-local nameserver needs a literal opt-in such as
//!   `dns://127.0.0.1:5353` or `dns://10.0.0.0/8`. `dns://*` allows any public
//!   nameserver on port 53. The queried name is not restricted: a check
//!   allowed to ask `9.9.9.9` may ask it about any name.
//! - **Without a `server`** (the system resolver, from `/etc/resolv.conf`):
//!   the queried *name* must match a `dns://` pattern's host on port 53
//!   (`dns://api.example.com`, `dns://*.example.com`, `dns://*`). The system
//!   nameservers themselves are operator configuration and are not checked
//!   (they are often on loopback, e.g. `127.0.0.53`).
//!
//! A refused call fails with `denied(rule)`, the rule naming the pattern
//! needed, e.g. `dns://api.evil.com:53 is not in the allow list [dns://9.9.9.9]`.
//!
//! [`AllowList::check_addr`]: crate::policy::AllowList::check_addr

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, MessageType, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use wasmtime::component::{HasSelf, Linker};

use super::net::{Net, NetBudget};
use crate::bindings::vantage::check::common::NetError;
use crate::bindings::vantage::check::dns as wit;
use crate::capabilities::CapabilitiesView;
use crate::policy::AllowList;

/// Timeout of a query that does not ask for one.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// EDNS0 UDP payload size advertised in queries.
const EDNS_PAYLOAD: u16 = 4096;

/// Per-run `dns` state.
#[derive(Debug)]
pub struct DnsState {
    net: Net,
}

impl DnsState {
    /// State for one run.
    pub fn new(net: Net) -> Self {
        DnsState { net }
    }
}

impl wit::Host for DnsState {
    async fn resolve(
        &mut self,
        query: wit::DnsQuery,
    ) -> wasmtime::Result<Result<wit::DnsAnswer, NetError>> {
        let (net, live_net) = (self.net.clone(), self.net.clone());
        let result = net
            .tape
            .exchange(
                "dns.resolve",
                |q: &wit::DnsQuery| {
                    let server = q.server.as_deref().unwrap_or("system");
                    let kind = serde_json::to_value(q.record_type).unwrap_or_default();
                    format!("{} {} @ {server}", kind.as_str().unwrap_or("?"), q.name)
                },
                query,
                Some(&net),
                move |q| async move { resolve(&live_net, &q).await },
            )
            .await?;
        self.net.note(&result);
        Ok(result)
    }
}

/// Register the `dns` interface.
pub fn add_to_linker<T: CapabilitiesView>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    wit::add_to_linker::<T, HasSelf<DnsState>>(linker, |s| &mut s.caps().dns)
}

/// Parse a nameserver as written by a check or an operator: `ip`, `ip:port`,
/// `[ipv6]` or `[ipv6]:port`; the port defaults to 53.
pub fn parse_server(server: &str) -> Result<SocketAddr, String> {
    let s = server.trim();
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let bare = s
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(s);
    bare.parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| {
            format!(
                "nameserver {server:?} is not an IP address with an optional port \
                 (e.g. 9.9.9.9, 127.0.0.1:5353, [2620:fe::fe]:53)"
            )
        })
}

/// The policy for a query to an explicit nameserver: `dns://IP:PORT` must be
/// allowed, and a special address (loopback, private, …) must be named
/// literally by the pattern.
pub fn check_server(allow: &AllowList, server: SocketAddr) -> Result<(), NetError> {
    let ip = server.ip().to_canonical();
    allow
        .check_addr("dns", &ip.to_string(), server.port(), ip)
        .map_err(|d| NetError::Denied(format!("nameserver {server}: {d}")))
}

/// The policy for a query through the system resolver: the queried name must
/// match a `dns://` pattern on port 53.
pub fn check_name(allow: &AllowList, name: &str) -> Result<(), NetError> {
    allow
        .check_target("dns", name, 53)
        .map(|_| ())
        .map_err(|d| {
            NetError::Denied(format!(
                "query for {name} through the system resolver: {d} \
             (allow the name with dns://{name}, or ask a nameserver allowed by a dns://IP pattern)"
            ))
        })
}

/// Ask one question, under the run's policy, budget and deadline.
pub async fn resolve(net: &Net, query: &wit::DnsQuery) -> Result<wit::DnsAnswer, NetError> {
    let name = query_name(&query.name)?;
    let shown = name.trim_end_matches('.').to_string();
    let servers = match &query.server {
        Some(server) => {
            let addr = parse_server(server).map_err(NetError::InvalidRequest)?;
            check_server(&net.allow, addr)?;
            vec![addr]
        }
        None => {
            check_name(&net.allow, &shown)?;
            system_nameservers()?
        }
    };
    let timeout = net.timeout(query.timeout_ms, DEFAULT_TIMEOUT);
    let _slot = net.budget.open_connection()?;
    let request = build_query(
        &name,
        record_type(query.record_type),
        query.recursion_desired,
    )?;
    let tcp = query.transport == wit::DnsTransport::Tcp;
    let started = Instant::now();
    let (server, response) = match tokio::time::timeout(
        timeout,
        ask_any(&servers, &request, tcp, timeout, &net.budget),
    )
    .await
    {
        Ok(result) => result?,
        Err(_) => return Err(NetError::Timeout("resolve".into())),
    };
    let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    Ok(answer(&response, server, duration_ms))
}

/// The name to ask for, as an absolute ASCII name (`api.example.com.`).
fn query_name(name: &str) -> Result<String, NetError> {
    let trimmed = name.trim();
    let invalid = |why: &str| NetError::InvalidRequest(format!("name {name:?} {why}"));
    if trimmed.is_empty() || trimmed == "." {
        return Err(invalid("is empty"));
    }
    let bare = trimmed.trim_end_matches('.');
    if bare
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .is_ok()
    {
        return Err(invalid("is an IP address, not a name to look up"));
    }
    let ascii = if bare.is_ascii() {
        bare.to_ascii_lowercase()
    } else {
        match url::Host::parse(bare) {
            Ok(url::Host::Domain(d)) => d,
            _ => return Err(invalid("is not a valid domain name")),
        }
    };
    let absolute = format!("{ascii}.");
    Name::from_ascii(&absolute)
        .map_err(|e| invalid(&format!("is not a valid domain name: {e}")))?;
    Ok(absolute)
}

/// The nameservers of the system configuration, in order.
fn system_nameservers() -> Result<Vec<SocketAddr>, NetError> {
    let (config, _) = hickory_resolver::system_conf::read_system_conf()
        .map_err(|e| NetError::Dns(format!("reading the system resolver configuration: {e}")))?;
    let mut servers: Vec<SocketAddr> = Vec::new();
    for ns in config.name_servers() {
        let port = ns.connections.first().map_or(53, |c| c.port);
        let addr = SocketAddr::new(ns.ip, port);
        if !servers.contains(&addr) {
            servers.push(addr);
        }
    }
    if servers.is_empty() {
        return Err(NetError::Dns(
            "the system resolver configuration names no nameserver".into(),
        ));
    }
    Ok(servers)
}

fn build_query(
    name: &str,
    record_type: RecordType,
    recursion_desired: bool,
) -> Result<Message, NetError> {
    let name = Name::from_ascii(name).map_err(|e| NetError::InvalidRequest(e.to_string()))?;
    let mut query = Query::query(name, record_type);
    query.set_query_class(DNSClass::IN);
    let mut message = Message::query();
    message.metadata.recursion_desired = recursion_desired;
    message.add_query(query);
    let mut edns = Edns::new();
    edns.set_max_payload(EDNS_PAYLOAD);
    message.set_edns(edns);
    Ok(message)
}

/// Ask each server in turn (over TCP only when `tcp`) until one answers;
/// each gets an equal share of what is left of `timeout`.
async fn ask_any(
    servers: &[SocketAddr],
    request: &Message,
    tcp: bool,
    timeout: Duration,
    budget: &NetBudget,
) -> Result<(SocketAddr, Message), NetError> {
    let started = Instant::now();
    let mut last = None;
    for (i, &server) in servers.iter().enumerate() {
        let left = timeout.saturating_sub(started.elapsed());
        let share = left / (servers.len() - i) as u32;
        let attempt = if i + 1 == servers.len() {
            // The last server may use everything left (the caller's timeout
            // still applies).
            ask(server, request, tcp, budget).await
        } else {
            match tokio::time::timeout(share, ask(server, request, tcp, budget)).await {
                Ok(r) => r,
                Err(_) => Err(NetError::Timeout("resolve".into())),
            }
        };
        match attempt {
            Ok(response) => return Ok((server, response)),
            Err(e @ (NetError::LimitExceeded(_) | NetError::InvalidRequest(_))) => return Err(e),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| NetError::Dns("no nameserver to ask".into())))
}

/// One exchange with one server: UDP, then TCP if the reply is truncated;
/// TCP only when `tcp`.
async fn ask(
    server: SocketAddr,
    request: &Message,
    tcp: bool,
    budget: &NetBudget,
) -> Result<Message, NetError> {
    let bytes = request
        .to_vec()
        .map_err(|e| NetError::InvalidRequest(format!("encoding the query: {e}")))?;
    if tcp {
        return ask_tcp(server, request, &bytes, budget).await;
    }
    let response = ask_udp(server, request, &bytes, budget).await?;
    if response.metadata.truncation {
        return ask_tcp(server, request, &bytes, budget).await;
    }
    Ok(response)
}

async fn ask_udp(
    server: SocketAddr,
    request: &Message,
    bytes: &[u8],
    budget: &NetBudget,
) -> Result<Message, NetError> {
    let connect = |e: std::io::Error| NetError::Connect(format!("{server} (udp): {e}"));
    let local: SocketAddr = if server.is_ipv4() {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(local).await.map_err(connect)?;
    socket.connect(server).await.map_err(connect)?;
    socket.send(bytes).await.map_err(connect)?;
    let mut buf = vec![0u8; 65535];
    loop {
        let n = socket.recv(&mut buf).await.map_err(connect)?;
        budget.read_bytes(n as u64)?;
        let response = Message::from_vec(&buf[..n])
            .map_err(|e| NetError::Protocol(format!("{server}: malformed DNS reply: {e}")))?;
        // A late reply to an earlier query on a reused port: keep waiting.
        if is_reply_to(&response, request) {
            return Ok(response);
        }
    }
}

async fn ask_tcp(
    server: SocketAddr,
    request: &Message,
    bytes: &[u8],
    budget: &NetBudget,
) -> Result<Message, NetError> {
    let connect = |e: std::io::Error| NetError::Connect(format!("{server} (tcp): {e}"));
    let protocol = |e: std::io::Error| NetError::Protocol(format!("{server} (tcp): {e}"));
    let mut stream = TcpStream::connect(server).await.map_err(connect)?;
    let len = u16::try_from(bytes.len())
        .map_err(|_| NetError::InvalidRequest("query too large".into()))?;
    let mut framed = Vec::with_capacity(bytes.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(bytes);
    stream.write_all(&framed).await.map_err(protocol)?;
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).await.map_err(protocol)?;
    let len = u16::from_be_bytes(len) as usize;
    budget.read_bytes(len as u64 + 2)?;
    let mut buf = vec![0u8; len];
    stream.read_exact(&mut buf).await.map_err(protocol)?;
    let response = Message::from_vec(&buf)
        .map_err(|e| NetError::Protocol(format!("{server}: malformed DNS reply: {e}")))?;
    if !is_reply_to(&response, request) {
        return Err(NetError::Protocol(format!(
            "{server}: the TCP reply does not answer the query"
        )));
    }
    Ok(response)
}

fn is_reply_to(response: &Message, request: &Message) -> bool {
    response.metadata.id == request.metadata.id
        && response.metadata.message_type == MessageType::Response
        && (response.queries.is_empty() || response.queries == request.queries)
}

/// The WIT answer of a reply.
fn answer(response: &Message, server: SocketAddr, duration_ms: f64) -> wit::DnsAnswer {
    wit::DnsAnswer {
        rcode: rcode_name(response.metadata.response_code),
        records: response.answers.iter().filter_map(record).collect(),
        authority: response.authorities.iter().filter_map(record).collect(),
        additional: response.additionals.iter().filter_map(record).collect(),
        server: server.to_string(),
        duration_ms,
    }
}

/// One answer record, if its type is one the WIT knows.
fn record(r: &Record) -> Option<wit::DnsRecord> {
    if r.dns_class != DNSClass::IN {
        return None;
    }
    Some(wit::DnsRecord {
        name: absolute(&r.name),
        record_type: wit_record_type(r.record_type())?,
        ttl: r.ttl,
        data: presentation(&r.data),
    })
}

/// The mnemonic of a response code, as `dig` shows it (`NOERROR`,
/// `NXDOMAIN`, …); `RCODE<n>` for codes without one.
pub fn rcode_name(code: ResponseCode) -> String {
    let n = u16::from(code);
    let name = match n {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        16 => "BADVERS",
        17 => "BADKEY",
        18 => "BADTIME",
        19 => "BADMODE",
        20 => "BADNAME",
        21 => "BADALG",
        22 => "BADTRUNC",
        23 => "BADCOOKIE",
        _ => return format!("RCODE{n}"),
    };
    name.to_string()
}

fn record_type(t: wit::RecordType) -> RecordType {
    match t {
        wit::RecordType::A => RecordType::A,
        wit::RecordType::Aaaa => RecordType::AAAA,
        wit::RecordType::Cname => RecordType::CNAME,
        wit::RecordType::Mx => RecordType::MX,
        wit::RecordType::Txt => RecordType::TXT,
        wit::RecordType::Ns => RecordType::NS,
        wit::RecordType::Soa => RecordType::SOA,
        wit::RecordType::Caa => RecordType::CAA,
        wit::RecordType::Srv => RecordType::SRV,
        wit::RecordType::Ptr => RecordType::PTR,
        wit::RecordType::Dnskey => RecordType::DNSKEY,
        wit::RecordType::Ds => RecordType::DS,
        wit::RecordType::Https => RecordType::HTTPS,
        wit::RecordType::Svcb => RecordType::SVCB,
    }
}

fn wit_record_type(t: RecordType) -> Option<wit::RecordType> {
    Some(match t {
        RecordType::A => wit::RecordType::A,
        RecordType::AAAA => wit::RecordType::Aaaa,
        RecordType::CNAME => wit::RecordType::Cname,
        RecordType::MX => wit::RecordType::Mx,
        RecordType::TXT => wit::RecordType::Txt,
        RecordType::NS => wit::RecordType::Ns,
        RecordType::SOA => wit::RecordType::Soa,
        RecordType::CAA => wit::RecordType::Caa,
        RecordType::SRV => wit::RecordType::Srv,
        RecordType::PTR => wit::RecordType::Ptr,
        RecordType::DNSKEY => wit::RecordType::Dnskey,
        RecordType::DS => wit::RecordType::Ds,
        RecordType::HTTPS => wit::RecordType::Https,
        RecordType::SVCB => wit::RecordType::Svcb,
        _ => return None,
    })
}

/// A name in absolute ASCII form, with its trailing dot (`mail.example.com.`).
fn absolute(name: &Name) -> String {
    let mut s = name.to_ascii();
    if !s.ends_with('.') {
        s.push('.');
    }
    s
}

/// Record data in presentation (zone file) format, as `dig` prints it:
/// `10 mail.example.com.` for MX, `"v=spf1 -all"` for TXT (each string
/// quoted), `0 issue "letsencrypt.org"` for CAA, `10 5 5060 sip.example.com.`
/// for SRV, `mname rname serial refresh retry expire minimum` for SOA.
pub fn presentation(data: &RData) -> String {
    match data {
        RData::A(a) => a.0.to_string(),
        RData::AAAA(a) => a.0.to_string(),
        RData::CNAME(n) => absolute(&n.0),
        RData::NS(n) => absolute(&n.0),
        RData::PTR(n) => absolute(&n.0),
        RData::MX(mx) => format!("{} {}", mx.preference, absolute(&mx.exchange)),
        RData::TXT(txt) => txt
            .txt_data
            .iter()
            .map(|s| quoted(s))
            .collect::<Vec<_>>()
            .join(" "),
        RData::SOA(soa) => format!(
            "{} {} {} {} {} {} {}",
            absolute(&soa.mname),
            absolute(&soa.rname),
            soa.serial,
            soa.refresh,
            soa.retry,
            soa.expire,
            soa.minimum
        ),
        RData::CAA(caa) => format!("{} {} {}", caa.flags(), caa.tag, quoted(&caa.value)),
        RData::SRV(srv) => format!(
            "{} {} {} {}",
            srv.priority,
            srv.weight,
            srv.port,
            absolute(&srv.target)
        ),
        other => other.to_string(),
    }
}

/// A character-string in quotes, `"` and `\` escaped, bytes outside printable
/// ASCII as `\DDD` (RFC 1035 §5.1).
fn quoted(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() + 2);
    s.push('"');
    for &b in bytes {
        match b {
            b'"' | b'\\' => {
                s.push('\\');
                s.push(b as char);
            }
            0x20..=0x7e => s.push(b as char),
            _ => s.push_str(&format!("\\{b:03}")),
        }
    }
    s.push('"');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::{CAA, CNAME, MX, NS, SOA, SRV, TXT};

    fn allow(patterns: &[&str]) -> AllowList {
        AllowList::parse(patterns).unwrap()
    }

    fn n(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    fn net(patterns: &[&str], max_connections: u32) -> Net {
        use super::super::net::{HostResolver, NetLimits};
        Net {
            allow: std::sync::Arc::new(allow(patterns)),
            budget: std::sync::Arc::new(NetBudget::new(NetLimits {
                max_connections,
                ..NetLimits::default()
            })),
            resolver: std::sync::Arc::new(HostResolver::default()),
            deadline: Instant::now() + Duration::from_secs(10),
            denials: std::sync::Arc::default(),
            tls: std::sync::Arc::default(),
            http: std::sync::Arc::default(),
            tape: Default::default(),
        }
    }

    fn question(name: &str, server: Option<String>, timeout_ms: Option<u64>) -> wit::DnsQuery {
        wit::DnsQuery {
            name: name.into(),
            record_type: wit::RecordType::A,
            server,
            timeout_ms,
            transport: wit::DnsTransport::Udp,
            recursion_desired: true,
        }
    }

    /// A DNS server on 127.0.0.1 speaking TCP only: answers one query with
    /// an A record, an NS record in the authority section and its address
    /// in the additional section; reports the RD bit it received.
    async fn tcp_only_server() -> (SocketAddr, tokio::sync::oneshot::Receiver<bool>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut len = [0u8; 2];
            stream.read_exact(&mut len).await.unwrap();
            let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
            stream.read_exact(&mut buf).await.unwrap();
            let request = Message::from_vec(&buf).unwrap();
            let _ = tx.send(request.metadata.recursion_desired);
            let mut reply = Message::response(request.metadata.id, request.metadata.op_code);
            reply.add_queries(request.queries.clone());
            reply.add_answer(Record::from_rdata(
                n("www.example.test."),
                60,
                RData::A("192.0.2.1".parse::<std::net::Ipv4Addr>().unwrap().into()),
            ));
            reply.add_authority(Record::from_rdata(
                n("example.test."),
                3600,
                RData::NS(NS(n("ns1.example.test."))),
            ));
            reply.add_additional(Record::from_rdata(
                n("ns1.example.test."),
                3600,
                RData::A("192.0.2.53".parse::<std::net::Ipv4Addr>().unwrap().into()),
            ));
            let bytes = reply.to_vec().unwrap();
            let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
            framed.extend_from_slice(&bytes);
            stream.write_all(&framed).await.unwrap();
        });
        (addr, rx)
    }

    #[tokio::test]
    async fn a_tcp_query_without_recursion_reports_authority_and_additional_sections() {
        let (server, rd) = tcp_only_server().await;
        let net = net(&["dns://127.0.0.1:*"], 4);
        let mut q = question("www.example.test", Some(server.to_string()), Some(2000));
        q.transport = wit::DnsTransport::Tcp;
        q.recursion_desired = false;
        let answer = resolve(&net, &q).await.unwrap();
        assert!(!rd.await.unwrap(), "the RD bit was set");
        assert_eq!(answer.rcode, "NOERROR");
        assert_eq!(answer.records.len(), 1);
        assert_eq!(answer.records[0].data, "192.0.2.1");
        assert_eq!(answer.authority.len(), 1);
        assert_eq!(answer.authority[0].data, "ns1.example.test.");
        assert!(matches!(
            answer.authority[0].record_type,
            wit::RecordType::Ns
        ));
        assert_eq!(answer.additional.len(), 1);
        assert_eq!(answer.additional[0].name, "ns1.example.test.");
        assert_eq!(answer.additional[0].data, "192.0.2.53");
    }

    #[tokio::test]
    async fn a_silent_server_times_out_and_each_query_counts_against_the_budget() {
        // Bound but never read: queries go unanswered.
        let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let server = silent.local_addr().unwrap().to_string();
        let net = net(&["dns://127.0.0.1:*"], 1);
        let started = Instant::now();
        match resolve(
            &net,
            &question("example.com", Some(server.clone()), Some(200)),
        )
        .await
        {
            Err(NetError::Timeout(phase)) => assert_eq!(phase, "resolve"),
            other => panic!("expected a timeout, got {other:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(2));
        match resolve(&net, &question("example.com", Some(server), Some(200))).await {
            Err(NetError::LimitExceeded(cap)) => assert!(cap.starts_with("connections"), "{cap}"),
            other => panic!("expected the budget to be spent, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn denied_and_malformed_queries_fail_before_sending_anything() {
        let net = net(&["dns://9.9.9.9"], 1);
        assert!(matches!(
            resolve(
                &net,
                &question("example.com", Some("127.0.0.1".into()), None)
            )
            .await,
            Err(NetError::Denied(_))
        ));
        assert!(matches!(
            resolve(&net, &question("example.com", None, None)).await,
            Err(NetError::Denied(_))
        ));
        assert!(matches!(
            resolve(
                &net,
                &question("example.com", Some("nameserver".into()), None)
            )
            .await,
            Err(NetError::InvalidRequest(_))
        ));
        assert!(matches!(
            resolve(&net, &question("", Some("9.9.9.9".into()), None)).await,
            Err(NetError::InvalidRequest(_))
        ));
        // None of these took a connection from the budget.
        assert!(net.budget.open_connection().is_ok());
    }

    #[test]
    fn servers_parse_with_default_port() {
        assert_eq!(
            parse_server("9.9.9.9").unwrap(),
            "9.9.9.9:53".parse().unwrap()
        );
        assert_eq!(
            parse_server("127.0.0.1:5353").unwrap(),
            "127.0.0.1:5353".parse().unwrap()
        );
        assert_eq!(parse_server("[::1]").unwrap(), "[::1]:53".parse().unwrap());
        assert_eq!(
            parse_server("[2620:fe::fe]:5353").unwrap(),
            "[2620:fe::fe]:5353".parse().unwrap()
        );
        assert!(parse_server("dns.quad9.net").is_err());
        assert!(parse_server("9.9.9.9:x").is_err());
    }

    #[test]
    fn a_named_server_must_be_allowed_and_special_ones_named_literally() {
        let public = parse_server("9.9.9.9").unwrap();
        assert!(check_server(&allow(&["dns://9.9.9.9"]), public).is_ok());
        assert!(check_server(&allow(&["dns://*"]), public).is_ok());
        // Wrong port, wrong scheme, nothing at all.
        assert!(check_server(&allow(&["dns://9.9.9.9:5353"]), public).is_err());
        assert!(check_server(&allow(&["https://*"]), public).is_err());
        match check_server(&AllowList::deny_all(), public) {
            Err(NetError::Denied(rule)) => {
                assert!(rule.contains("dns://9.9.9.9:53"), "{rule}")
            }
            other => panic!("{other:?}"),
        }
        // A loopback nameserver needs a literal opt-in; a wildcard is not one.
        let local = parse_server("127.0.0.1:5353").unwrap();
        assert!(check_server(&allow(&["dns://127.0.0.1:5353"]), local).is_ok());
        assert!(check_server(&allow(&["dns://127.0.0.0/8:*"]), local).is_ok());
        match check_server(&allow(&["dns://*:*"]), local) {
            Err(NetError::Denied(rule)) => {
                assert!(rule.contains("loopback"), "{rule}");
                assert!(rule.contains("dns://127.0.0.1:5353"), "{rule}");
            }
            other => panic!("{other:?}"),
        }
        let metadata = parse_server("169.254.169.254").unwrap();
        assert!(check_server(&allow(&["dns://*"]), metadata).is_err());
    }

    #[test]
    fn the_system_resolver_needs_the_name_allowed() {
        let list = allow(&["dns://*.example.com", "dns://9.9.9.9"]);
        assert!(check_name(&list, "api.example.com").is_ok());
        assert!(check_name(&allow(&["dns://*"]), "anything.test").is_ok());
        match check_name(&list, "example.com") {
            Err(NetError::Denied(rule)) => {
                assert!(rule.contains("subdomains only"), "{rule}");
                assert!(rule.contains("system resolver"), "{rule}");
            }
            other => panic!("{other:?}"),
        }
        // A server pattern does not allow names through the system resolver,
        // and a name pattern on another port does not either.
        assert!(check_name(&allow(&["dns://9.9.9.9"]), "example.com").is_err());
        assert!(check_name(&allow(&["dns://example.com:5353"]), "example.com").is_err());
        assert!(check_name(&allow(&["https://example.com"]), "example.com").is_err());
    }

    #[test]
    fn query_names_are_normalized() {
        assert_eq!(query_name("API.Example.com").unwrap(), "api.example.com.");
        assert_eq!(query_name("example.com.").unwrap(), "example.com.");
        assert_eq!(
            query_name("_sip._tcp.example.com").unwrap(),
            "_sip._tcp.example.com."
        );
        assert_eq!(query_name("bücher.de").unwrap(), "xn--bcher-kva.de.");
        for bad in ["", ".", "a..b", "1.2.3.4", "[::1]"] {
            assert!(
                matches!(query_name(bad), Err(NetError::InvalidRequest(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn rcodes_have_dig_names() {
        assert_eq!(rcode_name(ResponseCode::NoError), "NOERROR");
        assert_eq!(rcode_name(ResponseCode::NXDomain), "NXDOMAIN");
        assert_eq!(rcode_name(ResponseCode::ServFail), "SERVFAIL");
        assert_eq!(rcode_name(ResponseCode::Refused), "REFUSED");
        assert_eq!(rcode_name(ResponseCode::FormErr), "FORMERR");
        assert_eq!(rcode_name(ResponseCode::NotImp), "NOTIMP");
        assert_eq!(rcode_name(ResponseCode::Unknown(3841)), "RCODE3841");
    }

    #[test]
    fn records_print_in_presentation_format() {
        assert_eq!(
            presentation(&RData::A(
                "93.184.216.34"
                    .parse::<std::net::Ipv4Addr>()
                    .unwrap()
                    .into()
            )),
            "93.184.216.34"
        );
        assert_eq!(
            presentation(&RData::AAAA(
                "2001:db8::1".parse::<std::net::Ipv6Addr>().unwrap().into()
            )),
            "2001:db8::1"
        );
        assert_eq!(
            presentation(&RData::CNAME(CNAME(n("www.example.com.")))),
            "www.example.com."
        );
        assert_eq!(
            presentation(&RData::NS(NS(n("ns1.example.com.")))),
            "ns1.example.com."
        );
        assert_eq!(
            presentation(&RData::MX(MX::new(10, n("mail.example.com.")))),
            "10 mail.example.com."
        );
        assert_eq!(
            presentation(&RData::TXT(TXT::new(vec![
                "v=spf1 -all".into(),
                "say \"hi\" \\ bye".into()
            ]))),
            r#""v=spf1 -all" "say \"hi\" \\ bye""#
        );
        assert_eq!(
            presentation(&RData::TXT(TXT::from_bytes(vec![&b"tab\there\xff"[..]]))),
            r#""tab\009here\255""#
        );
        assert_eq!(
            presentation(&RData::SOA(SOA::new(
                n("ns1.example.com."),
                n("hostmaster.example.com."),
                2024010101,
                7200,
                3600,
                1209600,
                300
            ))),
            "ns1.example.com. hostmaster.example.com. 2024010101 7200 3600 1209600 300"
        );
        assert_eq!(
            presentation(&RData::CAA(CAA::new_issue(
                false,
                Some(n("letsencrypt.org")),
                vec![]
            ))),
            r#"0 issue "letsencrypt.org""#
        );
        assert_eq!(
            presentation(&RData::SRV(SRV::new(10, 5, 5060, n("sip.example.com.")))),
            "10 5 5060 sip.example.com."
        );
    }

    #[test]
    fn replies_become_wit_answers() {
        let request = build_query("example.com.", RecordType::MX, true).unwrap();
        assert!(request.metadata.recursion_desired);
        assert_eq!(request.edns.as_ref().unwrap().max_payload(), EDNS_PAYLOAD);
        let mut reply = Message::response(request.metadata.id, request.metadata.op_code);
        reply.metadata.response_code = ResponseCode::NoError;
        reply.add_queries(request.queries.clone());
        reply.add_answer(Record::from_rdata(
            n("example.com."),
            300,
            RData::MX(MX::new(10, n("mail.example.com."))),
        ));
        // A type the WIT does not know is left out.
        reply.add_answer(Record::from_rdata(
            n("example.com."),
            300,
            RData::NULL(hickory_proto::rr::rdata::NULL::with(vec![1, 2, 3])),
        ));
        let reply = Message::from_vec(&reply.to_vec().unwrap()).unwrap();
        assert!(is_reply_to(&reply, &request));
        let answer = answer(&reply, "127.0.0.1:5353".parse().unwrap(), 1.5);
        assert_eq!(answer.rcode, "NOERROR");
        assert_eq!(answer.server, "127.0.0.1:5353");
        assert_eq!(answer.records.len(), 1);
        let r = &answer.records[0];
        assert_eq!(
            (r.name.as_str(), r.record_type, r.ttl, r.data.as_str()),
            (
                "example.com.",
                wit::RecordType::Mx,
                300,
                "10 mail.example.com."
            )
        );
        let mut other = request.clone();
        other.metadata.id = other.metadata.id.wrapping_add(1);
        assert!(!is_reply_to(&reply, &other));
    }
}
