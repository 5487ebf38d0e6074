//! When a check runs next: pure functions of the schedule, the check's name
//! and the clock, so they can be tested without waiting.
//!
//! Checks sharing an interval are spread across it: a check with
//! `every = "1m"` runs at the same second of every minute, and that second
//! is derived from a hash of its name, so 10,000 one-minute checks do not
//! all fire at `:00`, and a check keeps its slot across restarts and
//! reloads. Cron schedules run exactly when the expression matches, in the
//! check's time zone.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::config::Schedule;

/// The fixed offset of a check's runs within its interval, from a hash of
/// its name: stable across restarts, spread evenly over many names.
pub fn offset(name: &str, every: Duration) -> Duration {
    let period = millis(every).max(1);
    let hash = Sha256::digest(name.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash[..8]);
    Duration::from_millis(u64::from_be_bytes(first) % period)
}

/// Milliseconds since the unix epoch.
pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, millis)
}

/// Whole milliseconds of `d`, saturating instead of losing the high bits
/// (`as u64` of `as_millis()` wrapped an `every` of 2^61 s to ~5 s). The
/// configuration caps durations far below this; the saturation is the last
/// line of defence.
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The first planned start strictly after `after`, or `None` if the cron
/// expression never matches again.
pub fn next_after(
    schedule: &Schedule,
    timezone: chrono_tz::Tz,
    name: &str,
    after: SystemTime,
) -> Option<SystemTime> {
    match schedule {
        Schedule::Every(every) => {
            let period = millis(*every).max(1);
            let offset = millis(offset(name, *every));
            let now = unix_ms(after);
            // Slots are offset + k * period; take the first one after `now`.
            let k = if now < offset {
                0
            } else {
                (now - offset) / period + 1
            };
            let at = k.checked_mul(period)?.checked_add(offset)?;
            UNIX_EPOCH.checked_add(Duration::from_millis(at))
        }
        Schedule::Cron(_, cron) => {
            let at: DateTime<Utc> = after.into();
            let local = at.with_timezone(&timezone);
            let next = cron.find_next_occurrence(&local, false).ok()?;
            Some(next.with_timezone(&Utc).into())
        }
    }
}

/// How many planned starts fall in `(planned, until]`: runs skipped because
/// the run planned at `planned` was still going. Bounded (at most 10,000
/// are counted) so a stalled cron search cannot spin.
pub fn missed_between(
    schedule: &Schedule,
    timezone: chrono_tz::Tz,
    name: &str,
    planned: SystemTime,
    until: SystemTime,
) -> u64 {
    match schedule {
        Schedule::Every(every) => {
            let elapsed = until.duration_since(planned).unwrap_or_default();
            millis(elapsed) / millis(*every).max(1)
        }
        Schedule::Cron(..) => {
            let mut n = 0;
            let mut t = planned;
            while n < 10_000 {
                match next_after(schedule, timezone, name, t) {
                    Some(next) if next <= until => {
                        n += 1;
                        t = next;
                    }
                    _ => break,
                }
            }
            n
        }
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    fn at(ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(ms)
    }

    #[test]
    fn interval_slots_are_stable_and_after_now() {
        let s = Schedule::Every(Duration::from_secs(60));
        let off = offset("api", Duration::from_secs(60)).as_millis() as u64;
        // A minute boundary.
        let base = 30_000_000 * 60_000u64;
        let next = next_after(&s, chrono_tz::UTC, "api", at(base)).unwrap();
        let expect = if off == 0 { base + 60_000 } else { base + off };
        assert_eq!(unix_ms(next), expect);
        // Exactly at a slot: the next one, a period later.
        let again = next_after(&s, chrono_tz::UTC, "api", next).unwrap();
        assert_eq!(unix_ms(again), unix_ms(next) + 60_000);
    }

    #[test]
    fn huge_intervals_saturate_instead_of_wrapping() {
        // 2^61 + 5 s: `as_millis() as u64` kept the low bits, ~5 s.
        let every = Duration::from_secs(2_305_843_009_213_693_957);
        let s = Schedule::Every(every);
        let now = at(1_800_000_000_000);
        if let Some(next) = next_after(&s, chrono_tz::UTC, "api", now) {
            assert!(
                next > now + Duration::from_secs(365 * 86400),
                "{:?}",
                next.duration_since(now)
            );
        }
        assert_eq!(missed_between(&s, chrono_tz::UTC, "api", at(0), now), 0);
    }

    #[test]
    fn offsets_spread_over_the_period() {
        let every = Duration::from_secs(60);
        let mut buckets = [0u32; 6];
        for i in 0..6000 {
            let o = offset(&format!("check-{i}"), every);
            assert!(o < every);
            buckets[(o.as_secs() / 10) as usize] += 1;
        }
        // Each 10 s sixth of the minute gets close to 1,000 of 6,000 checks.
        for b in buckets {
            assert!((800..1200).contains(&b), "uneven spread: {buckets:?}");
        }
    }

    #[test]
    fn cron_in_a_time_zone() {
        let cron = croner::Cron::from_str("0 3 * * *").unwrap();
        let s = Schedule::Cron("0 3 * * *".into(), Box::new(cron));
        // 2026-06-01T00:00:00Z; 03:00 in Berlin (UTC+2 in summer) is 01:00Z.
        let after: SystemTime = DateTime::parse_from_rfc3339("2026-06-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
            .into();
        let next = next_after(&s, chrono_tz::Europe::Berlin, "x", after).unwrap();
        let next: DateTime<Utc> = next.into();
        assert_eq!(next.to_rfc3339(), "2026-06-01T01:00:00+00:00");
    }

    #[test]
    fn counts_missed_slots() {
        let s = Schedule::Every(Duration::from_secs(10));
        assert_eq!(missed_between(&s, chrono_tz::UTC, "x", at(0), at(9_999)), 0);
        assert_eq!(
            missed_between(&s, chrono_tz::UTC, "x", at(0), at(25_000)),
            2
        );
        let cron = croner::Cron::from_str("* * * * *").unwrap();
        let c = Schedule::Cron("* * * * *".into(), Box::new(cron));
        let planned: SystemTime = UNIX_EPOCH + Duration::from_secs(1_800_000_000 / 60 * 60);
        let until = planned + Duration::from_secs(150);
        assert_eq!(missed_between(&c, chrono_tz::UTC, "x", planned, until), 2);
    }
}
