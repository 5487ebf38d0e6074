//! The `tcp` interface. Not implemented yet: every call returns
//! `net-error::unsupported`, which a check sees as a typed error.

use wasmtime::component::{HasSelf, Linker};

use super::net::Net;
use crate::config::SecretSource;
use crate::runtime::RunState;
use crate::runtime::bindings::vantage::check::tcp as wit;
use crate::runtime::bindings::vantage::check::types::NetError;

/// Per-run `tcp` state.
#[derive(Debug)]
#[allow(dead_code)]
pub struct TcpState {
    net: Net,
    secrets: Vec<(String, SecretSource)>,
}

impl TcpState {
    /// State for one run.
    pub fn new(net: Net, secrets: &[(String, SecretSource)]) -> Self {
        TcpState {
            net,
            secrets: secrets.to_vec(),
        }
    }
}

impl wit::Host for TcpState {
    async fn probe(
        &mut self,
        _request: wit::TcpRequest,
    ) -> wasmtime::Result<Result<wit::TcpReport, NetError>> {
        Ok(Err(NetError::Unsupported(
            "tcp.probe is not implemented by this host yet".into(),
        )))
    }
}

/// Register the `tcp` interface.
pub fn add_to_linker(linker: &mut Linker<RunState>) -> wasmtime::Result<()> {
    wit::add_to_linker::<RunState, HasSelf<TcpState>>(linker, |s| &mut s.caps.tcp)
}
