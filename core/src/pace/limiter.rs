//! Rate-limited logging for errors on hot paths.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Decides when a repeating event is logged: the first time, whenever its
/// message changes, and otherwise at most once per `every`, with the number
/// of occurrences suppressed since the last line. One per log site (a queue
/// that overflows, a shipper that stalls), so a failure repeated thousands
/// of times a second writes a line a minute, not thousands.
#[derive(Debug)]
pub struct LogLimiter {
    every: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    last: Option<(String, Instant)>,
    suppressed: u64,
}

impl LogLimiter {
    /// A limiter letting one line through per `every` (per message).
    pub const fn new(every: Duration) -> Self {
        LogLimiter {
            every,
            state: Mutex::new(State {
                last: None,
                suppressed: 0,
            }),
        }
    }

    /// Whether to log `message` now: `Some(n)` with the number of
    /// occurrences suppressed since the last logged one, `None` to stay
    /// quiet (the occurrence is counted).
    pub fn check(&self, message: &str) -> Option<u64> {
        self.check_at(message, Instant::now())
    }

    fn check_at(&self, message: &str, now: Instant) -> Option<u64> {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let due = match &s.last {
            Some((m, at)) => m != message || now.duration_since(*at) >= self.every,
            None => true,
        };
        if due {
            s.last = Some((message.to_string(), now));
            Some(std::mem::take(&mut s.suppressed))
        } else {
            s.suppressed += 1;
            None
        }
    }

    /// Forget the last message (the condition cleared): the next occurrence
    /// is logged at once. Returns whether something had been logged.
    pub fn reset(&self) -> bool {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.suppressed = 0;
        s.last.take().is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_first_on_change_and_once_per_interval_with_the_count() {
        let l = LogLimiter::new(Duration::from_secs(60));
        let t0 = Instant::now();
        assert_eq!(l.check_at("full", t0), Some(0));
        for i in 1..=5 {
            assert_eq!(l.check_at("full", t0 + Duration::from_secs(i)), None);
        }
        assert_eq!(l.check_at("full", t0 + Duration::from_secs(61)), Some(5));
        assert_eq!(l.check_at("other", t0 + Duration::from_secs(62)), Some(0));
        assert!(l.reset());
        assert!(!l.reset());
        assert_eq!(l.check_at("other", t0 + Duration::from_secs(63)), Some(0));
    }
}
