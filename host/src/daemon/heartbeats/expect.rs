//! When a heartbeat's next ping is due, and what state its pings leave it
//! in: pure functions of the configuration, what was received and the time
//! (so they are tested at any instant, no clock involved).
//!
//! After healthchecks.io: a heartbeat is `new` until its first ping; `up`
//! while pings come in time; `late` once the expected time passed (within
//! `grace`); `down` once the grace passed too, or after an explicit
//! failure (until the next success); `started` between a `/start` and its
//! end, `down` if the end does not come within `grace`.

use chrono::{TimeZone, Utc};

use crate::config::{Expect, HeartbeatConfig};

/// What a heartbeat has received (persisted across restarts).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Beat {
    /// The last success, unix ms.
    pub last_success_ms: Option<u64>,
    /// The last `/start` not yet ended, unix ms.
    pub started_ms: Option<u64>,
    /// The `rid` of that start, if it had one.
    pub started_rid: Option<String>,
    /// The last explicit failure (`/fail`, a non-zero exit code), unix ms,
    /// when it is newer than the last success.
    pub failed_ms: Option<u64>,
}

/// A heartbeat's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Never pinged.
    New,
    /// On time.
    Up,
    /// A job started and has not ended (within its grace).
    Started,
    /// Past the expected time, within the grace.
    Late,
    /// Past the grace, a start that did not end, or a reported failure.
    Down,
}

impl State {
    /// `new`, `up`, `started`, `late` or `down`.
    pub fn as_str(self) -> &'static str {
        match self {
            State::New => "new",
            State::Up => "up",
            State::Started => "started",
            State::Late => "late",
            State::Down => "down",
        }
    }
}

/// What to say about a heartbeat now.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// Its state.
    pub state: State,
    /// Why, in words.
    pub reason: String,
    /// The next instant (unix ms) at which the state may change without a
    /// ping, if any: when to look again.
    pub next_change_ms: Option<u64>,
}

fn ms_to_utc(ms: u64) -> chrono::DateTime<Utc> {
    Utc.timestamp_millis_opt(ms as i64)
        .single()
        .unwrap_or_default()
}

/// The first cron slot strictly after `ms`.
fn slot_after(cron: &croner::Cron, tz: &chrono_tz::Tz, ms: u64) -> Option<u64> {
    let at = ms_to_utc(ms).with_timezone(tz);
    cron.find_next_occurrence(&at, false)
        .ok()
        .map(|t| t.timestamp_millis() as u64)
}

/// When the ping after one received at `ping_ms` is due.
///
/// With a period: one period after the ping. With cron: the slot after the
/// one the ping served; a ping shortly before a slot (within `grace`, and
/// nearer to it than half the gap to the slot after) serves that slot, so a
/// job that finishes a little early is not late for the next.
pub fn due_after(config: &HeartbeatConfig, ping_ms: u64) -> Option<u64> {
    match &config.expect {
        Expect::Period(p) => Some(ping_ms + p.as_millis() as u64),
        Expect::Cron(_, cron, tz) => {
            let next = slot_after(cron, tz, ping_ms)?;
            let after_next = slot_after(cron, tz, next)?;
            let early_window = (config.grace.as_millis() as u64).min((after_next - next) / 2);
            if next - ping_ms <= early_window {
                Some(after_next)
            } else {
                Some(next)
            }
        }
    }
}

/// The heartbeat's state at `now_ms`.
pub fn verdict(config: &HeartbeatConfig, beat: &Beat, now_ms: u64) -> Verdict {
    let grace = config.grace.as_millis() as u64;
    if let Some(failed) = beat.failed_ms {
        return Verdict {
            state: State::Down,
            reason: format!("the job reported a failure {} ago", ago(now_ms, failed)),
            next_change_ms: None,
        };
    }
    if let Some(started) = beat.started_ms {
        let deadline = started + grace;
        return if now_ms <= deadline {
            Verdict {
                state: State::Started,
                reason: format!("the job started {} ago", ago(now_ms, started)),
                next_change_ms: Some(deadline + 1),
            }
        } else {
            Verdict {
                state: State::Down,
                reason: format!(
                    "the job started {} ago and did not finish within its grace of {}",
                    ago(now_ms, started),
                    humantime::format_duration(config.grace)
                ),
                next_change_ms: None,
            }
        };
    }
    let Some(last) = beat.last_success_ms else {
        return Verdict {
            state: State::New,
            reason: "no ping yet".into(),
            next_change_ms: None,
        };
    };
    let Some(due) = due_after(config, last) else {
        return Verdict {
            state: State::Up,
            reason: "no later slot in the schedule".into(),
            next_change_ms: None,
        };
    };
    if now_ms <= due {
        Verdict {
            state: State::Up,
            reason: format!(
                "last ping {} ago; the next is due in {}",
                ago(now_ms, last),
                ago(due, now_ms)
            ),
            next_change_ms: Some(due + 1),
        }
    } else if now_ms <= due + grace {
        Verdict {
            state: State::Late,
            reason: format!(
                "late by {}: last ping {} ago (grace {})",
                ago(now_ms, due),
                ago(now_ms, last),
                humantime::format_duration(config.grace)
            ),
            next_change_ms: Some(due + grace + 1),
        }
    } else {
        Verdict {
            state: State::Down,
            reason: format!(
                "no ping for {}: due {} ago, grace {} passed",
                ago(now_ms, last),
                ago(now_ms, due),
                humantime::format_duration(config.grace)
            ),
            next_change_ms: None,
        }
    }
}

/// `later − earlier` in words (whole seconds).
fn ago(later: u64, earlier: u64) -> String {
    let secs = later.saturating_sub(earlier) / 1000;
    humantime::format_duration(std::time::Duration::from_secs(secs)).to_string()
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;
    use std::time::Duration;

    use super::*;
    use crate::config::SecretSource;

    const S: u64 = 1000;
    const H: u64 = 3600 * S;

    fn period(p: u64, grace: u64) -> HeartbeatConfig {
        HeartbeatConfig {
            name: "job".into(),
            expect: Expect::Period(Duration::from_millis(p)),
            grace: Duration::from_millis(grace),
            token: SecretSource::Env("T".into()),
            severity: "critical".into(),
        }
    }

    fn hourly(grace: u64) -> HeartbeatConfig {
        HeartbeatConfig {
            expect: Expect::Cron(
                "0 * * * *".into(),
                Box::new(croner::Cron::from_str("0 * * * *").unwrap()),
                chrono_tz::Tz::UTC,
            ),
            ..period(0, grace)
        }
    }

    /// 2026-12-05 03:00:00 UTC.
    const T0: u64 = 1_796_439_600_000;

    fn ping(at: u64) -> Beat {
        Beat {
            last_success_ms: Some(at),
            ..Beat::default()
        }
    }

    #[test]
    fn a_period_heartbeat_is_up_then_late_then_down_one_second_past_each_bound() {
        let c = period(60 * S, 10 * S);
        let b = ping(T0);
        assert_eq!(verdict(&c, &Beat::default(), T0).state, State::New);
        assert_eq!(verdict(&c, &b, T0 + 60 * S).state, State::Up);
        let late = verdict(&c, &b, T0 + 61 * S);
        assert_eq!(late.state, State::Late);
        assert!(late.reason.starts_with("late by 1s"), "{}", late.reason);
        assert_eq!(late.next_change_ms, Some(T0 + 70 * S + 1));
        assert_eq!(verdict(&c, &b, T0 + 70 * S).state, State::Late);
        assert_eq!(verdict(&c, &b, T0 + 71 * S).state, State::Down);
    }

    #[test]
    fn cron_lateness_counts_from_the_slot_and_an_early_ping_serves_the_next_slot() {
        let c = hourly(5 * 60 * S);
        // A ping at 03:00:05 served the 03:00 slot: due 04:00.
        assert_eq!(due_after(&c, T0 + 5 * S), Some(T0 + H));
        // A ping at 02:59:58, just before the 03:00 slot, served it too.
        assert_eq!(due_after(&c, T0 - 2 * S), Some(T0 + H));
        // At 03:30 (half way), a ping serves the slot before: due 04:00.
        assert_eq!(due_after(&c, T0 + H / 2 - S), Some(T0 + H));
        // Late by 1 s at 04:00:01, down 5 min later.
        let b = ping(T0 - 2 * S);
        assert_eq!(verdict(&c, &b, T0 + H).state, State::Up);
        assert_eq!(verdict(&c, &b, T0 + H + S).state, State::Late);
        assert_eq!(verdict(&c, &b, T0 + H + 5 * 60 * S + S).state, State::Down);
        // In another zone the slots move with it.
        let berlin = HeartbeatConfig {
            expect: Expect::Cron(
                "0 3 * * *".into(),
                Box::new(croner::Cron::from_str("0 3 * * *").unwrap()),
                chrono_tz::Europe::Berlin,
            ),
            ..hourly(60 * S)
        };
        // 03:00 Berlin is 02:00 UTC in December.
        assert_eq!(due_after(&berlin, T0 - H + S), Some(T0 - H + 24 * H));
    }

    #[test]
    fn a_start_without_end_is_down_after_the_grace_and_a_failure_until_the_next_success() {
        let c = period(H, 60 * S);
        let started = Beat {
            last_success_ms: Some(T0),
            started_ms: Some(T0 + H),
            started_rid: Some("r1".into()),
            failed_ms: None,
        };
        assert_eq!(verdict(&c, &started, T0 + H + 30 * S).state, State::Started);
        let down = verdict(&c, &started, T0 + H + 61 * S);
        assert_eq!(down.state, State::Down);
        assert!(
            down.reason
                .contains("did not finish within its grace of 1m"),
            "{}",
            down.reason
        );
        let failed = Beat {
            failed_ms: Some(T0 + S),
            ..ping(T0)
        };
        assert_eq!(verdict(&c, &failed, T0 + 2 * S).state, State::Down);
    }
}
