//! Time, as a check may see it.
//!
//! `std::time` works too (WASI clocks); these go through the Vantage host and
//! [`sleep`] ends early, with the run, when the run's deadline expires.

use std::time::Duration;

use crate::bindings::vantage::check::clock as raw;

/// Wall-clock time, in unix milliseconds. Use for timestamps and expiry
/// arithmetic, never for measuring durations (see [`monotonic`]).
pub fn now_unix_ms() -> u64 {
    raw::wall_now_unix_ms()
}

/// A monotonic reading, for measuring durations: only differences are
/// meaningful.
///
/// ```no_run
/// use vantage_sdk::clock;
/// let start = clock::monotonic();
/// // ... do something ...
/// let took = clock::monotonic().saturating_sub(start);
/// ```
pub fn monotonic() -> Duration {
    Duration::from_nanos(raw::monotonic_now_ns())
}

/// Sleep for `duration` (e.g. between retries of a flow). Returns early when
/// the run's deadline expires.
pub fn sleep(duration: Duration) {
    raw::sleep(crate::util::duration_ms_u64(duration));
}
