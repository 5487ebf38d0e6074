//! Host capabilities: one module per WIT interface, each owning its per-run
//! state, its configuration and its slice of the outbound policy.
//!
//! Adding a capability means writing its module (a state type implementing
//! the interface's generated `Host` trait plus an `add_to_linker` function)
//! and adding one line to [`add_to_linker`] and one field to
//! [`Capabilities`].

pub mod clock;
pub mod compat_v0_1;
pub mod dns;
pub mod http;
pub mod log;
pub mod net;
pub mod secrets;
pub mod tape;
pub mod tcp;
pub mod tls;
pub mod wasi_http;

use std::sync::Arc;
use std::time::Instant;

use wasmtime::component::Linker;

use wasmtime_wasi::WasiView;
use wasmtime_wasi_http::WasiHttpView;

use crate::config::SecretSource;
use crate::policy::AllowList;

/// What the operator granted one run: the inputs every capability builds
/// its per-run state from.
#[derive(Debug, Clone)]
pub struct Grant {
    /// The check's configured name (for log attribution).
    pub check_name: String,
    /// Outbound allow list, already limited by the operator's ceiling.
    pub allow: Arc<AllowList>,
    /// Secrets the check may read, by name.
    pub secrets: Vec<(String, SecretSource)>,
    /// When the run must be over.
    pub deadline: Instant,
    /// Caps on the run's outbound activity.
    pub net_limits: net::NetLimits,
    /// How host names are resolved.
    pub resolver: Arc<net::HostResolver>,
    /// Whether the check may make `insecure` TLS requests.
    pub allow_insecure: bool,
    /// Live, recording or replaying the run's host calls.
    pub tape: tape::Tape,
}

/// The per-run state of every capability; lives in the run's `Store`.
pub struct Capabilities {
    /// The network layer all network capabilities share (policy, budget,
    /// and the run's record of refusals).
    pub net: net::Net,
    /// `log` interface state: captured lines.
    pub log: log::LogState,
    /// `clock` interface state.
    pub clock: clock::ClockState,
    /// `secrets` interface state: granted sources and values read.
    pub secrets: secrets::SecretsState,
    /// `http` interface state: policy, caps and the trace of exchanges.
    pub http: http::HttpState,
    /// `tls` interface state.
    pub tls: tls::TlsState,
    /// `dns` interface state.
    pub dns: dns::DnsState,
    /// `tcp` interface state.
    pub tcp: tcp::TcpState,
    /// `wasi:http` state.
    pub wasi_http: wasi_http::WasiHttpState,
}

impl Capabilities {
    /// Fresh per-run state for every capability, from the run's grant.
    pub fn new(grant: &Grant) -> Self {
        let net = net::Net {
            allow: grant.allow.clone(),
            budget: Arc::new(net::NetBudget::new(grant.net_limits)),
            resolver: grant.resolver.clone(),
            deadline: grant.deadline,
            denials: Arc::default(),
            tls: Arc::default(),
            http: Arc::default(),
            tape: grant.tape.clone(),
        };
        let secrets = secrets::SecretsState::new(&grant.secrets).with_tape(grant.tape.clone());
        Capabilities {
            log: log::LogState::new(&grant.check_name).redacting(secrets.revealed()),
            clock: clock::ClockState::new(grant.deadline, grant.tape.clone()),
            secrets,
            http: http::HttpState::new(net.clone(), &grant.secrets, grant.allow_insecure),
            tls: tls::TlsState::new(net.clone(), &grant.secrets),
            dns: dns::DnsState::new(net.clone()),
            tcp: tcp::TcpState::new(net.clone(), &grant.secrets),
            wasi_http: wasi_http::WasiHttpState::new(net.clone()),
            net,
        }
    }
}

/// What a finished run's capabilities hand to its result.
pub struct Finished {
    /// The captured log: the guest's lines, then its stdout (info) and
    /// stderr (warn, when given), then every refused connection and a note
    /// of untraced HTTP exchanges.
    pub logs: Vec<log::LogLine>,
    /// The traced HTTP exchanges.
    pub http: Vec<crate::result::HttpTrace>,
    /// The completed TLS handshakes.
    pub tls: Vec<crate::result::TlsTrace>,
    /// The secret values the run read, to redact the result with.
    pub revealed: secrets::Revealed,
}

impl Capabilities {
    /// End the run: gather what the result needs from every capability.
    /// `stderr` is `None` when it was already used to explain a panic.
    pub fn finish(mut self, stdout: &str, stderr: Option<&str>) -> Finished {
        for line in stdout.lines() {
            self.log.push(log::Level::Info, line);
        }
        for line in stderr.unwrap_or_default().lines() {
            self.log.push(log::Level::Warn, line);
        }
        for denial in &self.net.denials() {
            self.log
                .push(log::Level::Warn, &format!("denied: {denial}"));
        }
        let (http, dropped) = self.net.http_traces();
        if dropped > 0 {
            let message = format!(
                "{dropped} more HTTP exchanges not traced (limit {} per run)",
                net::MAX_HTTP_TRACES
            );
            self.log.push(log::Level::Warn, &message);
        }
        Finished {
            logs: self.log.finish(),
            http,
            tls: self.net.tls_traces(),
            revealed: self.secrets.revealed(),
        }
    }
}

/// How a capability reaches its per-run state in the store's data, without
/// knowing the runtime that owns the store (as wasmtime's `WasiView`): the
/// runtime's per-run state implements it, and every capability's
/// `add_to_linker` is generic over it.
pub trait CapabilitiesView: WasiView + WasiHttpView + Send + 'static {
    /// The run's capability state.
    fn caps(&mut self) -> &mut Capabilities;
}

/// Register every capability (and the WASI basics guests' standard libraries
/// need: clocks, random, the bounded stdio of the store's `WasiCtx`) with the
/// linker. This is the one place capabilities are registered: a new
/// capability adds its module above and one line here.
pub fn add_to_linker<T: CapabilitiesView>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    log::add_to_linker(linker)?;
    clock::add_to_linker(linker)?;
    secrets::add_to_linker(linker)?;
    http::add_to_linker(linker)?;
    tls::add_to_linker(linker)?;
    dns::add_to_linker(linker)?;
    tcp::add_to_linker(linker)?;
    wasi_http::add_to_linker(linker)?;
    compat_v0_1::add_to_linker(linker)?;
    Ok(())
}
