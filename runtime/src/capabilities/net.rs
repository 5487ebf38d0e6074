//! What every network capability (`http`, `tls`, `tcp`, `dns`) shares: the
//! outbound policy, the per-run budget, name resolution, and the one function
//! that opens an outbound TCP connection.
//!
//! Policy is enforced here, in one place, twice per connection: on the
//! target (`scheme://host:port`) before resolving, and on the address that is
//! actually connected to, so a DNS answer pointing at a private or metadata
//! address (or changing between two lookups) cannot bypass it.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

use crate::bindings::vantage::check::common::NetError;
use crate::policy::AllowList;

/// The phase an exchange is in; named in timeout errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Resolving the host name.
    Resolve,
    /// Establishing the TCP connection.
    Connect,
    /// The TLS handshake.
    Tls,
    /// Waiting for the response headers.
    Processing,
    /// Reading the response body.
    Transfer,
}

impl Phase {
    /// Lowercase name, as blackbox_exporter's `phase` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Resolve => "resolve",
            Phase::Connect => "connect",
            Phase::Tls => "tls",
            Phase::Processing => "processing",
            Phase::Transfer => "transfer",
        }
    }
}

/// Per-run caps on outbound activity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetLimits {
    /// Outbound connections (and DNS queries) one run may open in total.
    pub max_connections: u32,
    /// Connections open at the same time.
    pub max_concurrent: u32,
    /// Bytes one run may read from the network, over all calls.
    pub max_bytes: u64,
}

impl Default for NetLimits {
    fn default() -> Self {
        NetLimits {
            max_connections: 100,
            max_concurrent: 8,
            max_bytes: 64 * 1024 * 1024,
        }
    }
}

/// The per-run budget, shared by all network capabilities of one run.
#[derive(Debug)]
pub struct NetBudget {
    limits: NetLimits,
    opened: AtomicU32,
    open: Arc<AtomicU32>,
    read: AtomicU64,
}

/// Held while a connection is open; releases its concurrency slot on drop.
#[derive(Debug)]
pub struct ConnectionSlot(Arc<AtomicU32>);

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl NetBudget {
    /// A fresh budget.
    pub fn new(limits: NetLimits) -> Self {
        NetBudget {
            limits,
            opened: AtomicU32::new(0),
            open: Arc::new(AtomicU32::new(0)),
            read: AtomicU64::new(0),
        }
    }

    /// Take one connection from the budget.
    pub fn open_connection(&self) -> Result<ConnectionSlot, NetError> {
        let n = self.opened.fetch_add(1, Ordering::SeqCst);
        if n >= self.limits.max_connections {
            return Err(NetError::LimitExceeded(format!(
                "connections: at most {} outbound connections per run",
                self.limits.max_connections
            )));
        }
        let concurrent = self.open.fetch_add(1, Ordering::SeqCst);
        let slot = ConnectionSlot(self.open.clone());
        if concurrent >= self.limits.max_concurrent {
            return Err(NetError::LimitExceeded(format!(
                "concurrent connections: at most {} at a time",
                self.limits.max_concurrent
            )));
        }
        Ok(slot)
    }

    /// The run's byte cap.
    pub fn max_bytes(&self) -> u64 {
        self.limits.max_bytes
    }

    /// Bytes that may still be read this run.
    pub fn bytes_left(&self) -> u64 {
        self.limits
            .max_bytes
            .saturating_sub(self.read.load(Ordering::SeqCst))
    }

    /// Account for `n` bytes read; fails once the run's byte cap is passed.
    pub fn read_bytes(&self, n: u64) -> Result<(), NetError> {
        let total = self.read.fetch_add(n, Ordering::SeqCst) + n;
        if total > self.limits.max_bytes {
            return Err(NetError::LimitExceeded(format!(
                "bytes: at most {} bytes read per run",
                self.limits.max_bytes
            )));
        }
        Ok(())
    }
}

/// How host names are resolved for outbound connections.
#[derive(Debug, Clone, Default)]
pub struct HostResolver {
    /// Fixed answers, like curl's `--resolve`: host name (lowercase) → addresses.
    pub overrides: HashMap<String, Vec<IpAddr>>,
    /// Resolve names through this nameserver (A, then AAAA when there is no
    /// A record; UDP with TCP fallback; no cache) instead of the system
    /// resolver, like `dig @server`. Overrides still win.
    pub nameserver: Option<SocketAddr>,
}

impl HostResolver {
    /// Resolve `host` (a name or a literal address) to addresses.
    pub async fn lookup(&self, host: &str) -> Result<Vec<IpAddr>, NetError> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        if let Some(addrs) = self.overrides.get(&bare.to_ascii_lowercase()) {
            return Ok(addrs.clone());
        }
        if let Some(nameserver) = self.nameserver {
            return lookup_via(nameserver, bare).await;
        }
        let addrs: Vec<IpAddr> = tokio::net::lookup_host((bare, 0))
            .await
            .map_err(|e| NetError::Dns(format!("{bare}: {e}")))?
            .map(|a| a.ip())
            .collect();
        if addrs.is_empty() {
            return Err(NetError::Dns(format!("{bare}: no addresses")));
        }
        Ok(addrs)
    }
}

/// Resolve `host` to its addresses through `nameserver`, with a fresh
/// resolver (no cache carried between lookups, no hosts file, no search
/// domains).
async fn lookup_via(nameserver: SocketAddr, host: &str) -> Result<Vec<IpAddr>, NetError> {
    use hickory_resolver::config::{
        ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig,
    };
    use hickory_resolver::net::runtime::TokioRuntimeProvider;

    let dns_error =
        |e: &dyn std::fmt::Display| NetError::Dns(format!("{host} via {nameserver}: {e}"));
    let connections = [ConnectionConfig::udp(), ConnectionConfig::tcp()]
        .into_iter()
        .map(|mut c| {
            c.port = nameserver.port();
            c
        })
        .collect();
    let config = ResolverConfig::from_name_servers(vec![NameServerConfig::new(
        nameserver.ip(),
        true,
        connections,
    )]);
    let mut builder = hickory_resolver::TokioResolver::builder_with_config(
        config,
        TokioRuntimeProvider::default(),
    );
    let options = builder.options_mut();
    options.cache_size = 0;
    options.use_hosts_file = ResolveHosts::Never;
    options.ndots = 0;
    options.attempts = 1;
    let resolver = builder.build().map_err(|e| dns_error(&e))?;
    let absolute = if host.ends_with('.') {
        host.to_string()
    } else {
        format!("{host}.")
    };
    let addrs: Vec<IpAddr> = resolver
        .lookup_ip(absolute)
        .await
        .map_err(|e| dns_error(&e))?
        .iter()
        .collect();
    if addrs.is_empty() {
        return Err(NetError::Dns(format!(
            "{host} via {nameserver}: no addresses"
        )));
    }
    Ok(addrs)
}

/// The time a call leaves before the run's deadline for the check to
/// report: a tenth of what remains, at least 50 ms and at most 500 ms, and
/// never more than half of what remains.
pub fn report_room(remaining: Duration) -> Duration {
    (remaining / 10)
        .clamp(Duration::from_millis(50), Duration::from_millis(500))
        .min(remaining / 2)
}

/// An IP address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpFamily {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

/// Which address family to connect over (blackbox_exporter's
/// `preferred_ip_protocol` and `ip_protocol_fallback`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IpPreference {
    /// Try this family first; `None`: the resolver's order.
    pub preferred: Option<IpFamily>,
    /// Fall back to the other family when the preferred one has no address.
    pub fallback: bool,
}

impl IpPreference {
    /// `addrs` (of `host`) in the preferred order; without `fallback`, the
    /// preferred family only (a `dns` error when it has no address).
    pub fn order(self, host: &str, mut addrs: Vec<IpAddr>) -> Result<Vec<IpAddr>, NetError> {
        let Some(family) = self.preferred else {
            return Ok(addrs);
        };
        let wanted = |a: &IpAddr| match family {
            IpFamily::V4 => a.is_ipv4(),
            IpFamily::V6 => a.is_ipv6(),
        };
        if self.fallback {
            // Stable: the preferred family first, each in the resolver's order.
            addrs.sort_by_key(|a| !wanted(a));
        } else {
            addrs.retain(wanted);
        }
        if addrs.is_empty() {
            let name = match family {
                IpFamily::V4 => "IPv4",
                IpFamily::V6 => "IPv6",
            };
            return Err(NetError::Dns(format!("{host}: no {name} address")));
        }
        Ok(addrs)
    }
}

/// Most distinct refusals one run's log lists.
pub const MAX_DENIALS: usize = 64;

/// Everything a network capability needs for one run. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Net {
    /// The outbound allow list.
    pub allow: Arc<AllowList>,
    /// The run's budget.
    pub budget: Arc<NetBudget>,
    /// Name resolution.
    pub resolver: Arc<HostResolver>,
    /// When the run must be over.
    pub deadline: Instant,
    /// Every refusal of the run (the rule that refused), for its log.
    pub denials: Arc<std::sync::Mutex<Vec<String>>>,
    /// The run's completed TLS handshakes (the first [`MAX_TLS_TRACES`]).
    pub tls: Arc<std::sync::Mutex<Vec<crate::result::TlsTrace>>>,
    /// The run's HTTP exchanges, over `http.fetch` and `wasi:http`.
    pub http: Arc<std::sync::Mutex<HttpTraces>>,
    /// The run's tape: live, recording or replaying its host calls.
    pub tape: super::tape::Tape,
}

/// The run's HTTP exchanges: the first [`MAX_HTTP_TRACES`], and how many
/// more there were.
#[derive(Debug, Default)]
pub struct HttpTraces {
    /// The exchanges kept, in order.
    pub kept: Vec<crate::result::HttpTrace>,
    /// Exchanges left out once `kept` was full.
    pub dropped: usize,
}

/// Most exchanges one run's trace keeps: a check calling `fetch` in a loop
/// (retrying a denied or failing target) must not grow the host's memory or
/// the result without bound.
pub const MAX_HTTP_TRACES: usize = 256;

/// Most TLS handshakes one run's result keeps.
pub const MAX_TLS_TRACES: usize = 64;

/// An open, policy-checked connection.
#[derive(Debug)]
pub struct Connection {
    /// The stream.
    pub stream: TcpStream,
    /// The address connected to.
    pub remote_addr: SocketAddr,
    /// Time spent resolving.
    pub resolve: Duration,
    /// Time spent connecting.
    pub connect: Duration,
    /// The budget slot, held while the connection is open.
    pub slot: ConnectionSlot,
}

impl Net {
    /// Remember a refusal in `result`, so the run's log says what was denied.
    /// Every capability passes its calls' results through here. Each rule is
    /// kept once, and at most [`MAX_DENIALS`] of them: a check retrying a
    /// denied call in a loop must not grow the host's memory.
    pub fn note<T>(&self, result: &Result<T, NetError>) {
        if let Err(e) = result {
            self.note_error(e);
        }
    }

    /// [`note`](Self::note) for an error on its own.
    pub fn note_error(&self, error: &NetError) {
        if let NetError::Denied(rule) = error
            && let Ok(mut denials) = self.denials.lock()
            && denials.len() < MAX_DENIALS
            && !denials.contains(rule)
        {
            denials.push(rule.clone());
        }
    }

    /// Remember a completed handshake with `server` (`host:port`) made by
    /// the capability `via`, for the result and the `probe_ssl_*` metrics.
    pub fn record_tls(
        &self,
        via: &'static str,
        server: String,
        info: &crate::bindings::vantage::check::tls::TlsInfo,
    ) {
        if let Ok(mut traces) = self.tls.lock()
            && traces.len() < MAX_TLS_TRACES
        {
            traces.push(super::tls::trace(via, server, info));
        }
    }

    /// Keep a finished TLS trace (a replayed one) if the run has room.
    pub fn push_tls_trace(&self, trace: crate::result::TlsTrace) {
        if let Ok(mut traces) = self.tls.lock()
            && traces.len() < MAX_TLS_TRACES
        {
            traces.push(trace);
        }
    }

    /// Keep an HTTP exchange in the run's trace if it has room, count it
    /// otherwise.
    pub fn record_http(&self, trace: crate::result::HttpTrace) {
        if let Ok(mut traces) = self.http.lock() {
            if traces.kept.len() < MAX_HTTP_TRACES {
                traces.kept.push(trace);
            } else {
                traces.dropped += 1;
            }
        }
    }

    /// The run's HTTP exchanges so far, and how many were not kept.
    pub fn http_traces(&self) -> (Vec<crate::result::HttpTrace>, usize) {
        self.http
            .lock()
            .map(|t| (t.kept.clone(), t.dropped))
            .unwrap_or_default()
    }

    /// How many HTTP and TLS traces the run holds (for a recording to take
    /// what one call adds).
    pub fn trace_lengths(&self) -> (usize, usize) {
        let http = self.http.lock().map(|t| t.kept.len()).unwrap_or(0);
        let tls = self.tls.lock().map(|t| t.len()).unwrap_or(0);
        (http, tls)
    }

    /// The HTTP and TLS traces added since [`trace_lengths`](Self::trace_lengths) gave these.
    pub fn traces_since(
        &self,
        http: usize,
        tls: usize,
    ) -> (Vec<crate::result::HttpTrace>, Vec<crate::result::TlsTrace>) {
        let http = self
            .http
            .lock()
            .map(|t| t.kept.get(http..).unwrap_or_default().to_vec())
            .unwrap_or_default();
        let tls = self
            .tls
            .lock()
            .map(|t| t.get(tls..).unwrap_or_default().to_vec())
            .unwrap_or_default();
        (http, tls)
    }

    /// The run's TLS handshakes so far.
    pub fn tls_traces(&self) -> Vec<crate::result::TlsTrace> {
        self.tls.lock().map(|t| t.clone()).unwrap_or_default()
    }

    /// The refusals of the run so far.
    pub fn denials(&self) -> Vec<String> {
        self.denials.lock().map(|d| d.clone()).unwrap_or_default()
    }

    /// The timeout of one call: `requested` (or `default`), cut so that the
    /// call ends before the run's deadline with [`report_room`] to spare:
    /// a call that would outlive the run times out early enough for the
    /// check to report it (a clean `fail` with what was measured) instead of
    /// being interrupted by the deadline.
    pub fn timeout(&self, requested: Option<u64>, default: Duration) -> Duration {
        let remaining = self.deadline.saturating_duration_since(Instant::now());
        requested
            .map(Duration::from_millis)
            .unwrap_or(default)
            .min(remaining.saturating_sub(report_room(remaining)))
    }

    /// [`Net::connect_prefer`] with no address family preference.
    pub async fn connect(
        &self,
        scheme: &str,
        host: &str,
        port: u16,
        phase: &mut Phase,
    ) -> Result<Connection, NetError> {
        self.connect_prefer(scheme, host, port, phase, IpPreference::default())
            .await
    }

    /// Open a TCP connection to `host:port` for `scheme` (`http`, `https`,
    /// `tls`, `tcp`): policy on the target, resolution, policy on each
    /// address, then connect to the first allowed address that answers, in
    /// the order `ip` asks for. `phase` follows the progress, so a caller's
    /// timeout can name it.
    pub async fn connect_prefer(
        &self,
        scheme: &str,
        host: &str,
        port: u16,
        phase: &mut Phase,
        ip: IpPreference,
    ) -> Result<Connection, NetError> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        self.allow
            .check_target(scheme, bare, port)
            .map_err(|d| NetError::Denied(d.to_string()))?;
        let slot = self.budget.open_connection()?;
        *phase = Phase::Resolve;
        let t = Instant::now();
        let addrs = ip.order(bare, self.resolver.lookup(bare).await?)?;
        let resolve = t.elapsed();
        *phase = Phase::Connect;
        let t = Instant::now();
        let mut last = None;
        for ip in addrs {
            if let Err(d) = self.allow.check_addr(scheme, bare, port, ip) {
                last = Some(NetError::Denied(d.to_string()));
                continue;
            }
            let addr = SocketAddr::new(ip, port);
            match TcpStream::connect(addr).await {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    return Ok(Connection {
                        stream,
                        remote_addr: addr,
                        resolve,
                        connect: t.elapsed(),
                        slot,
                    });
                }
                Err(e) => last = Some(NetError::Connect(format!("{addr}: {e}"))),
            }
        }
        Err(last.unwrap_or_else(|| NetError::Connect(format!("{bare}: no address to connect to"))))
    }
}

/// One line describing a network error, for logs and traces.
pub fn describe(e: &NetError) -> String {
    match e {
        NetError::InvalidRequest(m) => format!("invalid request: {m}"),
        NetError::Denied(m) => format!("denied: {m}"),
        NetError::Dns(m) => format!("dns: {m}"),
        NetError::Connect(m) => format!("connect: {m}"),
        NetError::Tls(m) => format!("tls: {m}"),
        NetError::Timeout(phase) => format!("timeout during {phase}"),
        NetError::BodyTooLarge(n) => format!("response body larger than {n} bytes"),
        NetError::TooManyRedirects(n) => format!("more than {n} redirects"),
        NetError::Protocol(m) => format!("protocol: {m}"),
        NetError::LimitExceeded(m) => format!("limit exceeded: {m}"),
        NetError::Unsupported(m) => format!("unsupported: {m}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_caps_total_and_concurrent_connections() {
        let budget = NetBudget::new(NetLimits {
            max_connections: 3,
            max_concurrent: 2,
            max_bytes: 10,
        });
        let a = budget.open_connection().unwrap();
        let _b = budget.open_connection().unwrap();
        assert!(
            matches!(budget.open_connection(), Err(NetError::LimitExceeded(m)) if m.starts_with("concurrent"))
        );
        drop(a);
        // The refused attempt counted against the total.
        assert!(
            matches!(budget.open_connection(), Err(NetError::LimitExceeded(m)) if m.starts_with("connections"))
        );
        assert!(budget.read_bytes(10).is_ok());
        assert!(
            matches!(budget.read_bytes(1), Err(NetError::LimitExceeded(m)) if m.starts_with("bytes"))
        );
    }

    #[test]
    fn ip_preference_orders_or_filters_the_addresses() {
        let v4: IpAddr = "127.0.0.1".parse().unwrap();
        let v6: IpAddr = "::1".parse().unwrap();
        let both = vec![v4, v6];
        let pref = |preferred, fallback| IpPreference {
            preferred,
            fallback,
        };
        assert_eq!(pref(None, false).order("h", both.clone()).unwrap(), both);
        assert_eq!(
            pref(Some(IpFamily::V6), true)
                .order("h", both.clone())
                .unwrap(),
            vec![v6, v4]
        );
        assert_eq!(
            pref(Some(IpFamily::V6), false)
                .order("h", both.clone())
                .unwrap(),
            vec![v6]
        );
        assert_eq!(
            pref(Some(IpFamily::V6), true).order("h", vec![v4]).unwrap(),
            vec![v4]
        );
        match pref(Some(IpFamily::V6), false).order("h.test", vec![v4]) {
            Err(NetError::Dns(m)) => assert_eq!(m, "h.test: no IPv6 address"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_call_ends_before_the_run_deadline_with_room_to_report() {
        let net = |left: Duration| Net {
            allow: Arc::new(AllowList::parse(["http://*"]).unwrap()),
            budget: Arc::new(NetBudget::new(NetLimits::default())),
            resolver: Arc::new(HostResolver::default()),
            deadline: Instant::now() + left,
            denials: Arc::default(),
            tls: Arc::default(),
            http: Arc::default(),
            tape: Default::default(),
        };
        // A 10 s request in a 2 s run ends ~200 ms before the deadline.
        let t = net(Duration::from_secs(2)).timeout(Some(10_000), Duration::from_secs(10));
        assert!(
            t <= Duration::from_millis(1800) && t > Duration::from_millis(1700),
            "{t:?}"
        );
        // A short request is left alone.
        let t = net(Duration::from_secs(2)).timeout(Some(300), Duration::from_secs(10));
        assert_eq!(t, Duration::from_millis(300));
        // A long run leaves at most 500 ms.
        let t = net(Duration::from_secs(60)).timeout(None, Duration::from_secs(60));
        assert!(t >= Duration::from_millis(59_400), "{t:?}");
        // A tiny run keeps half for the check.
        let t = net(Duration::from_millis(40)).timeout(None, Duration::from_secs(10));
        assert!(t <= Duration::from_millis(20), "{t:?}");
        assert_eq!(report_room(Duration::ZERO), Duration::ZERO);
    }

    #[tokio::test]
    async fn overrides_and_literals_resolve_without_dns() {
        let mut resolver = HostResolver::default();
        resolver.overrides.insert(
            "metadata.test".into(),
            vec!["169.254.169.254".parse().unwrap()],
        );
        assert_eq!(
            resolver.lookup("Metadata.Test").await.unwrap(),
            vec!["169.254.169.254".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(
            resolver.lookup("[::1]").await.unwrap(),
            vec!["::1".parse::<IpAddr>().unwrap()]
        );
    }

    #[tokio::test]
    async fn a_name_resolving_to_a_special_address_is_denied_even_under_a_wildcard() {
        let mut resolver = HostResolver::default();
        resolver.overrides.insert(
            "metadata.test".into(),
            vec!["169.254.169.254".parse().unwrap()],
        );
        let net = Net {
            allow: Arc::new(AllowList::parse(["http://*"]).unwrap()),
            budget: Arc::new(NetBudget::new(NetLimits::default())),
            resolver: Arc::new(resolver),
            deadline: Instant::now() + Duration::from_secs(5),
            denials: Arc::default(),
            tls: Arc::default(),
            http: Arc::default(),
            tape: Default::default(),
        };
        match net
            .connect("http", "metadata.test", 80, &mut Phase::Resolve)
            .await
        {
            Err(NetError::Denied(rule)) => assert!(rule.contains("169.254.169.254"), "{rule}"),
            other => panic!("expected a denial, got {other:?}"),
        }
        match net
            .connect("https", "metadata.test", 443, &mut Phase::Resolve)
            .await
        {
            Err(NetError::Denied(_)) => {}
            other => panic!("expected a denial, got {other:?}"),
        }
    }
}
