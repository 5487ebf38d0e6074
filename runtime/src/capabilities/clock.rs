//! The `clock` interface: wall time, a monotonic clock, and a sleep that
//! never outlives the run's deadline.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use wasmtime::component::{HasSelf, Linker};

use crate::bindings::vantage::check::clock as wit;
use crate::capabilities::CapabilitiesView;

/// Per-run clock state.
#[derive(Debug)]
pub struct ClockState {
    origin: Instant,
    deadline: Instant,
}

impl ClockState {
    /// A clock for a run that must end by `deadline`.
    pub fn new(deadline: Instant) -> Self {
        ClockState {
            origin: Instant::now(),
            deadline,
        }
    }
}

impl wit::Host for ClockState {
    async fn wall_now_unix_ms(&mut self) -> wasmtime::Result<u64> {
        Ok(SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0))
    }

    async fn monotonic_now_ns(&mut self) -> wasmtime::Result<u64> {
        Ok(self.origin.elapsed().as_nanos() as u64)
    }

    async fn sleep(&mut self, duration_ms: u64) -> wasmtime::Result<()> {
        let until = Instant::now() + Duration::from_millis(duration_ms);
        tokio::time::sleep_until(until.min(self.deadline).into()).await;
        Ok(())
    }
}

/// Register the `clock` interface.
pub fn add_to_linker<T: CapabilitiesView>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    wit::add_to_linker::<T, HasSelf<ClockState>>(linker, |s| &mut s.caps().clock)
}
