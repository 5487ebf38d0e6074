//! Pacing shared by every layer: wall-clock time behind one [`Clock`] (so
//! the scheduler can be tested on tokio's paused time), exponential
//! [`backoff`] with jitter for anything that retries, [`LogLimiter`] for
//! errors on hot paths that must not flood the log, [`AbortOnDrop`] for
//! a spawned task that ends with its owner, and [`stable_hash`] (FNV-1a)
//! for what replicas and restarts must agree on.

mod abort;
mod clock;
mod hash;
mod limiter;

pub use abort::AbortOnDrop;
pub use clock::Clock;
pub use hash::{StableHasher, stable_hash};
pub use limiter::LogLimiter;

use std::hash::BuildHasher;
use std::time::Duration;

/// A number in `[0, 1)`, different on every call (not for cryptography).
pub fn random_fraction() -> f64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let bits = std::collections::hash_map::RandomState::new().hash_one(n);
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

/// A random delay from zero to `max` (zero when `max` is zero).
pub fn up_to(max: Duration) -> Duration {
    max.mul_f64(random_fraction())
}

/// The delay before retry number `attempt` (1 for the first retry):
/// `initial` doubled for each earlier retry, capped at `max`, then lowered
/// by up to `spread` of itself at random (`spread` in `[0, 1]`, so that
/// processes that failed together do not retry in lockstep; the cap stays a
/// true upper bound).
pub fn backoff(attempt: u32, initial: Duration, max: Duration, spread: f64) -> Duration {
    let doublings = attempt.saturating_sub(1).min(31);
    let base = initial.saturating_mul(1u32 << doublings).min(max);
    base.mul_f64(1.0 - spread.clamp(0.0, 1.0) * random_fraction())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_jitter_only_lowers() {
        let s = Duration::from_secs;
        for _ in 0..100 {
            let d1 = backoff(1, s(2), s(60), 0.5);
            assert!(d1 <= s(2) && d1 >= s(1), "{d1:?}");
            let d3 = backoff(3, s(2), s(60), 0.5);
            assert!(d3 <= s(8) && d3 >= s(4), "{d3:?}");
            let d10 = backoff(10, s(2), s(60), 0.5);
            assert!(d10 <= s(60) && d10 >= s(30), "{d10:?}");
        }
        assert_eq!(backoff(4, s(1), s(60), 0.0), s(8));
        assert_eq!(backoff(u32::MAX, s(1), s(60), 0.0), s(60));
        assert_eq!(backoff(0, s(1), s(60), 0.0), s(1));
    }

    #[test]
    fn random_fractions_differ_and_stay_in_range() {
        let xs: Vec<f64> = (0..64).map(|_| random_fraction()).collect();
        assert!(xs.iter().all(|x| (0.0..1.0).contains(x)));
        let distinct: std::collections::BTreeSet<u64> = xs.iter().map(|x| x.to_bits()).collect();
        assert!(distinct.len() > 60, "{distinct:?}");
        assert!(up_to(Duration::ZERO).is_zero());
    }
}
