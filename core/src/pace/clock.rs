//! Wall-clock time for the scheduler and everything it plans.

use std::time::SystemTime;

/// Where the daemon reads the wall clock. The daemon uses the system
/// clock; tests use [`Clock::tokio`], which follows tokio's clock from a
/// fixed origin, so that with `#[tokio::test(start_paused = true)]` a
/// schedule of minutes runs in milliseconds, deterministically. Sleeps are
/// always tokio sleeps, so both clocks agree with them.
#[derive(Debug, Clone, Copy, Default)]
pub struct Clock {
    /// `None`: the system clock. `Some`: this wall time at this tokio instant.
    origin: Option<(SystemTime, tokio::time::Instant)>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Clock { origin: None }
    }

    /// A clock that reads `origin` now and advances with tokio's clock
    /// (paused or not). Call it inside a tokio runtime.
    pub fn tokio(origin: SystemTime) -> Self {
        Clock {
            origin: Some((origin, tokio::time::Instant::now())),
        }
    }

    /// The current wall time.
    pub fn now(&self) -> SystemTime {
        match self.origin {
            None => SystemTime::now(),
            Some((wall, at)) => wall + at.elapsed(),
        }
    }

    /// Sleep until the wall time `t` (at once if it has passed).
    pub async fn sleep_until(&self, t: SystemTime) {
        let delay = t.duration_since(self.now()).unwrap_or_default();
        tokio::time::sleep(delay).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[tokio::test(start_paused = true)]
    async fn a_tokio_clock_advances_with_paused_time() {
        let origin = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let clock = Clock::tokio(origin);
        assert_eq!(clock.now(), origin);
        clock.sleep_until(origin + Duration::from_secs(3600)).await;
        assert_eq!(clock.now(), origin + Duration::from_secs(3600));
        // A time in the past does not wait.
        clock.sleep_until(origin).await;
        assert_eq!(clock.now(), origin + Duration::from_secs(3600));
    }
}
