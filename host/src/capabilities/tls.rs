//! The `tls` interface. Not implemented yet: every call returns
//! `net-error::unsupported`, which a check sees as a typed error.

use wasmtime::component::{HasSelf, Linker};

use super::net::Net;
use crate::config::SecretSource;
use crate::runtime::RunState;
use crate::runtime::bindings::vantage::check::tls as wit;
use crate::runtime::bindings::vantage::check::types::NetError;

/// Per-run `tls` state.
#[derive(Debug)]
#[allow(dead_code)]
pub struct TlsState {
    net: Net,
    secrets: Vec<(String, SecretSource)>,
}

impl TlsState {
    /// State for one run.
    pub fn new(net: Net, secrets: &[(String, SecretSource)]) -> Self {
        TlsState {
            net,
            secrets: secrets.to_vec(),
        }
    }
}

impl wit::Host for TlsState {
    async fn inspect(
        &mut self,
        _request: wit::TlsRequest,
    ) -> wasmtime::Result<Result<wit::TlsReport, NetError>> {
        Ok(Err(NetError::Unsupported(
            "tls.inspect is not implemented by this host yet".into(),
        )))
    }
}

/// Register the `tls` interface.
pub fn add_to_linker(linker: &mut Linker<RunState>) -> wasmtime::Result<()> {
    wit::add_to_linker::<RunState, HasSelf<TlsState>>(linker, |s| &mut s.caps.tls)
}
