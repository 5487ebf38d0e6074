//! A real, authoritative DNS server for the tests, on 127.0.0.1 (UDP and TCP
//! on the same random port), serving the in-memory zone `vantage.test.`.
//!
//! Hand-rolled on `hickory-proto` message types rather than `hickory-server`,
//! for full control over the odd answers the tests need: a name whose
//! address changes on every query (DNS rebinding), SERVFAIL, and a reply too
//! large for UDP (truncated, so the client must retry over TCP).
//!
//! The zone:
//!
//! | name | type | data |
//! |---|---|---|
//! | `vantage.test.` | A | 93.184.216.34 |
//! | `vantage.test.` | AAAA | 2001:db8::34 |
//! | `vantage.test.` | MX | 10 mail.vantage.test., 20 backup.vantage.test. |
//! | `vantage.test.` | TXT | "v=spf1 -all"; "hello" "world" |
//! | `vantage.test.` | NS | ns1.vantage.test., ns2.vantage.test. |
//! | `vantage.test.` | SOA | ns1.vantage.test. hostmaster.vantage.test. 2026112701 7200 3600 1209600 300 |
//! | `vantage.test.` | CAA | 0 issue "letsencrypt.org" |
//! | `www.vantage.test.` | CNAME | vantage.test. |
//! | `_sip._tcp.vantage.test.` | SRV | 10 5 5060 sip.vantage.test. |
//! | `private.vantage.test.` | A | 10.0.0.5 |
//! | `local.vantage.test.` | A | 127.0.0.1 |
//! | `metadata.vantage.test.` | A | 169.254.169.254 |
//! | `rebind.vantage.test.` | A | 93.184.216.34, then 127.0.0.1, alternating per A query (TTL 0) |
//! | `servfail.vantage.test.` | any | SERVFAIL |
//! | `big.vantage.test.` | TXT | 40 strings of 200 bytes (> 4096 bytes: truncated over UDP) |
//!
//! Other names below `vantage.test.` are NXDOMAIN (with the SOA in the
//! authority section); names outside the zone are REFUSED. TTLs are 300
//! unless noted.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use hickory_proto::op::{Edns, Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, CAA, CNAME, MX, NS, SOA, SRV, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

/// The public address the zone's apex (and the first rebinding answer) points at.
pub const PUBLIC: Ipv4Addr = Ipv4Addr::new(93, 184, 216, 34);

/// A running test DNS server.
pub struct DnsServer {
    /// UDP and TCP address.
    pub addr: SocketAddr,
    /// A queries answered for `rebind.vantage.test` so far.
    pub rebind_queries: Arc<AtomicUsize>,
    /// Queries answered over TCP so far.
    pub tcp_queries: Arc<AtomicUsize>,
}

impl DnsServer {
    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        self.addr.to_string()
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

/// Start a server (UDP and TCP on one random port of 127.0.0.1).
pub async fn start() -> DnsServer {
    let (udp, tcp) = loop {
        let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = udp.local_addr().unwrap();
        if let Ok(tcp) = TcpListener::bind(addr).await {
            break (udp, tcp);
        }
    };
    let addr = udp.local_addr().unwrap();
    let zone = Arc::new(Zone {
        rebind: Arc::new(AtomicUsize::new(0)),
    });
    let server = DnsServer {
        addr,
        rebind_queries: zone.rebind.clone(),
        tcp_queries: Arc::new(AtomicUsize::new(0)),
    };
    let udp_zone = zone.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65535];
        loop {
            let Ok((n, peer)) = udp.recv_from(&mut buf).await else {
                continue;
            };
            if let Some(reply) = udp_zone.reply(&buf[..n], true) {
                let _ = udp.send_to(&reply, peer).await;
            }
        }
    });
    let tcp_count = server.tcp_queries.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = tcp.accept().await else {
                continue;
            };
            let zone = zone.clone();
            let tcp_count = tcp_count.clone();
            tokio::spawn(async move {
                loop {
                    let mut len = [0u8; 2];
                    if stream.read_exact(&mut len).await.is_err() {
                        return;
                    }
                    let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
                    if stream.read_exact(&mut buf).await.is_err() {
                        return;
                    }
                    tcp_count.fetch_add(1, Ordering::SeqCst);
                    let Some(reply) = zone.reply(&buf, false) else {
                        return;
                    };
                    let mut framed = (reply.len() as u16).to_be_bytes().to_vec();
                    framed.extend_from_slice(&reply);
                    if stream.write_all(&framed).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    server
}

struct Zone {
    rebind: Arc<AtomicUsize>,
}

fn name(s: &str) -> Name {
    Name::from_ascii(s).unwrap()
}

fn rec(owner: &str, ttl: u32, data: RData) -> Record {
    Record::from_rdata(name(owner), ttl, data)
}

impl Zone {
    /// The reply to one wire-format query, or `None` to drop it.
    fn reply(&self, query: &[u8], udp: bool) -> Option<Vec<u8>> {
        let request = Message::from_vec(query).ok()?;
        if request.metadata.message_type != MessageType::Query {
            return None;
        }
        let mut reply = Message::response(request.metadata.id, request.metadata.op_code);
        reply.metadata.recursion_desired = request.metadata.recursion_desired;
        reply.add_queries(request.queries.clone());
        let payload = request.edns.as_ref().map(|e| e.max_payload().max(512));
        if let Some(payload) = payload {
            let mut edns = Edns::new();
            edns.set_max_payload(payload);
            reply.set_edns(edns);
        }
        let Some(q) = request.queries.first() else {
            reply.metadata.response_code = ResponseCode::FormErr;
            return reply.to_vec().ok();
        };
        let qname = q.name().to_ascii().to_ascii_lowercase();
        let qname = qname.trim_end_matches('.').to_string();
        self.answer(&qname, q.query_type(), &mut reply);
        let bytes = reply.to_vec().ok()?;
        let limit = payload.unwrap_or(512) as usize;
        if udp && bytes.len() > limit {
            // Too large for UDP: an empty, truncated reply.
            reply.answers.clear();
            reply.authorities.clear();
            reply.metadata.truncation = true;
            return reply.to_vec().ok();
        }
        Some(bytes)
    }

    fn answer(&self, qname: &str, qtype: RecordType, reply: &mut Message) {
        if qname != "vantage.test" && !qname.ends_with(".vantage.test") {
            reply.metadata.response_code = ResponseCode::Refused;
            return;
        }
        reply.metadata.authoritative = true;
        if qname == "servfail.vantage.test" {
            reply.metadata.response_code = ResponseCode::ServFail;
            reply.metadata.authoritative = false;
            return;
        }
        let mut owner = qname.to_string();
        if let Some(target) = self.cname(&owner) {
            reply.add_answer(rec(
                &format!("{owner}."),
                300,
                RData::CNAME(CNAME(name(&format!("{target}.")))),
            ));
            if qtype == RecordType::CNAME {
                return;
            }
            owner = target;
        }
        match self.records(&owner, qtype) {
            Some(records) => {
                reply.add_answers(records);
            }
            None if reply.answers.is_empty() => {
                reply.metadata.response_code = ResponseCode::NXDomain;
                reply.add_authority(self.soa());
            }
            None => {}
        }
        if reply.answers.is_empty() && reply.metadata.response_code == ResponseCode::NoError {
            reply.add_authority(self.soa());
        }
    }

    fn cname(&self, owner: &str) -> Option<String> {
        (owner == "www.vantage.test").then(|| "vantage.test".to_string())
    }

    fn soa(&self) -> Record {
        rec(
            "vantage.test.",
            300,
            RData::SOA(SOA::new(
                name("ns1.vantage.test."),
                name("hostmaster.vantage.test."),
                2026112701,
                7200,
                3600,
                1209600,
                300,
            )),
        )
    }

    /// The records of `owner` of type `qtype`; `None` if the name does not exist.
    fn records(&self, owner: &str, qtype: RecordType) -> Option<Vec<Record>> {
        use RecordType as T;
        let o = format!("{owner}.");
        let a = |ip: Ipv4Addr, ttl: u32| rec(&o, ttl, RData::A(A(ip)));
        let only = |t: RecordType, records: Vec<Record>| {
            if qtype == t { records } else { Vec::new() }
        };
        Some(match owner {
            "vantage.test" => match qtype {
                T::A => vec![a(PUBLIC, 300)],
                T::AAAA => vec![rec(
                    &o,
                    300,
                    RData::AAAA(AAAA("2001:db8::34".parse::<Ipv6Addr>().unwrap())),
                )],
                T::MX => vec![
                    rec(&o, 300, RData::MX(MX::new(10, name("mail.vantage.test.")))),
                    rec(
                        &o,
                        300,
                        RData::MX(MX::new(20, name("backup.vantage.test."))),
                    ),
                ],
                T::TXT => vec![
                    rec(&o, 300, RData::TXT(TXT::new(vec!["v=spf1 -all".into()]))),
                    rec(
                        &o,
                        300,
                        RData::TXT(TXT::new(vec!["hello".into(), "world".into()])),
                    ),
                ],
                T::NS => vec![
                    rec(&o, 3600, RData::NS(NS(name("ns1.vantage.test.")))),
                    rec(&o, 3600, RData::NS(NS(name("ns2.vantage.test.")))),
                ],
                T::SOA => vec![self.soa()],
                T::CAA => vec![rec(
                    &o,
                    300,
                    RData::CAA(CAA::new_issue(false, Some(name("letsencrypt.org")), vec![])),
                )],
                _ => Vec::new(),
            },
            "_sip._tcp.vantage.test" => only(
                T::SRV,
                vec![rec(
                    &o,
                    300,
                    RData::SRV(SRV::new(10, 5, 5060, name("sip.vantage.test."))),
                )],
            ),
            "private.vantage.test" => only(T::A, vec![a(Ipv4Addr::new(10, 0, 0, 5), 300)]),
            "local.vantage.test" => only(T::A, vec![a(Ipv4Addr::LOCALHOST, 300)]),
            "metadata.vantage.test" => only(T::A, vec![a(Ipv4Addr::new(169, 254, 169, 254), 300)]),
            "rebind.vantage.test" if qtype == T::A => {
                let n = self.rebind.fetch_add(1, Ordering::SeqCst);
                let ip = if n.is_multiple_of(2) {
                    PUBLIC
                } else {
                    Ipv4Addr::LOCALHOST
                };
                vec![a(ip, 0)]
            }
            "rebind.vantage.test" => Vec::new(),
            "big.vantage.test" => only(
                T::TXT,
                (0..40)
                    .map(|i| {
                        let text = format!("{i:03}{}", "x".repeat(197));
                        rec(&o, 300, RData::TXT(TXT::new(vec![text])))
                    })
                    .collect(),
            ),
            "mail.vantage.test"
            | "backup.vantage.test"
            | "ns1.vantage.test"
            | "ns2.vantage.test"
            | "sip.vantage.test" => only(T::A, vec![a(PUBLIC, 300)]),
            _ => return None,
        })
    }
}
