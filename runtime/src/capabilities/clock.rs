//! The `clock` interface: wall time, a monotonic clock, and a sleep that
//! never outlives the run's deadline.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use wasmtime::component::{HasSelf, Linker};

use super::tape::Tape;
use crate::bindings::vantage::check::clock as wit;
use crate::capabilities::CapabilitiesView;

/// Per-run clock state.
#[derive(Debug)]
pub struct ClockState {
    origin: Instant,
    deadline: Instant,
    /// Readings and sleeps are recorded, or replayed (a replayed sleep
    /// returns at once).
    tape: Tape,
}

impl ClockState {
    /// A clock for a run that must end by `deadline`.
    pub fn new(deadline: Instant, tape: Tape) -> Self {
        ClockState {
            origin: Instant::now(),
            deadline,
            tape,
        }
    }
}

impl wit::Host for ClockState {
    async fn wall_now_unix_ms(&mut self) -> wasmtime::Result<u64> {
        let now = || async {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0)
        };
        self.tape
            .exchange("clock.wall-now", |_| String::new(), (), None, |_| now())
            .await
    }

    async fn monotonic_now_ns(&mut self) -> wasmtime::Result<u64> {
        let origin = self.origin;
        self.tape
            .exchange(
                "clock.monotonic-now",
                |_| String::new(),
                (),
                None,
                |_| async move { origin.elapsed().as_nanos() as u64 },
            )
            .await
    }

    async fn sleep(&mut self, duration_ms: u64) -> wasmtime::Result<()> {
        let deadline = self.deadline;
        self.tape
            .exchange(
                "clock.sleep",
                |ms: &u64| format!("{ms} ms"),
                duration_ms,
                None,
                |ms| async move {
                    let until = Instant::now() + Duration::from_millis(ms);
                    tokio::time::sleep_until(until.min(deadline).into()).await;
                },
            )
            .await
    }
}

/// Register the `clock` interface.
pub fn add_to_linker<T: CapabilitiesView>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    wit::add_to_linker::<T, HasSelf<ClockState>>(linker, |s| &mut s.caps().clock)
}
