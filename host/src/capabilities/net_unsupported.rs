//! `tls`, `dns` and `tcp`: designed in the WIT world, not implemented by the
//! host yet. Every call returns `net-error::unsupported`, which a check sees as
//! a typed error (never a trap).

use wasmtime::component::{HasSelf, Linker};

use crate::runtime::RunState;
use crate::runtime::bindings::vantage::check::{dns, tcp, tls, types::NetError};

/// Marker state for the unimplemented network interfaces.
#[derive(Debug, Default)]
pub struct Unsupported;

fn unsupported(what: &str) -> NetError {
    NetError::Unsupported(format!("{what} is not implemented by this host yet"))
}

impl tls::Host for Unsupported {
    async fn inspect(
        &mut self,
        _request: tls::TlsRequest,
    ) -> wasmtime::Result<Result<tls::TlsReport, NetError>> {
        Ok(Err(unsupported("tls.inspect")))
    }
}

impl dns::Host for Unsupported {
    async fn resolve(
        &mut self,
        _query: dns::DnsQuery,
    ) -> wasmtime::Result<Result<dns::DnsAnswer, NetError>> {
        Ok(Err(unsupported("dns.resolve")))
    }
}

impl tcp::Host for Unsupported {
    async fn probe(
        &mut self,
        _request: tcp::TcpRequest,
    ) -> wasmtime::Result<Result<tcp::TcpReport, NetError>> {
        Ok(Err(unsupported("tcp.probe")))
    }
}

/// Register `tls`, `dns` and `tcp`.
pub fn add_to_linker(linker: &mut Linker<RunState>) -> wasmtime::Result<()> {
    tls::add_to_linker::<RunState, HasSelf<Unsupported>>(linker, |s| &mut s.caps.net)?;
    dns::add_to_linker::<RunState, HasSelf<Unsupported>>(linker, |s| &mut s.caps.net)?;
    tcp::add_to_linker::<RunState, HasSelf<Unsupported>>(linker, |s| &mut s.caps.net)?;
    Ok(())
}
