//! The `dns` interface. Not implemented yet: every call returns
//! `net-error::unsupported`, which a check sees as a typed error.

use wasmtime::component::{HasSelf, Linker};

use super::net::Net;
use crate::runtime::RunState;
use crate::runtime::bindings::vantage::check::dns as wit;
use crate::runtime::bindings::vantage::check::types::NetError;

/// Per-run `dns` state.
#[derive(Debug)]
#[allow(dead_code)]
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
        _query: wit::DnsQuery,
    ) -> wasmtime::Result<Result<wit::DnsAnswer, NetError>> {
        Ok(Err(NetError::Unsupported(
            "dns.resolve is not implemented by this host yet".into(),
        )))
    }
}

/// Register the `dns` interface.
pub fn add_to_linker(linker: &mut Linker<RunState>) -> wasmtime::Result<()> {
    wit::add_to_linker::<RunState, HasSelf<DnsState>>(linker, |s| &mut s.caps.dns)
}
