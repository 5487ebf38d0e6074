//! The pure part of the sink: given what is known about an alert and a new
//! run record, what to do.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use crate::result::{CheckState, RunRecord};

/// Where a tracked alert stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Sent as firing (and resent every `resend` unless held by maintenance).
    Firing,
    /// The check is down, but a maintenance window kept the alert from
    /// being sent.
    Suppressed,
}

/// What the sink knows about one alert (one check at one location).
#[derive(Debug, Clone)]
pub(super) struct Tracked {
    pub phase: Phase,
    /// When the check went down: the alert's `startsAt`.
    pub since: DateTime<Utc>,
    /// The latest failing run.
    pub record: Arc<RunRecord>,
    /// Whether the latest record was in a maintenance window.
    pub in_maintenance: bool,
    /// When to resend it to Alertmanager; `None` while not resending.
    pub next_resend: Option<Instant>,
}

/// What a record makes the sink do.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Action {
    /// Nothing (pending check, or up and nothing was sent).
    Ignore,
    /// Send the alert as firing now. `announce` is true when the alert is
    /// new to the receivers (webhooks get only these); false when it is
    /// re-sent to Alertmanager after a maintenance window held it.
    Fire {
        since: DateTime<Utc>,
        announce: bool,
    },
    /// Still firing: keep the latest record; the resend timer sends it.
    Refresh,
    /// The alert was already firing when a maintenance window started: keep
    /// it as it is, do not resend. `entering` is true on the first such run.
    Hold { window: String, entering: bool },
    /// Down inside a maintenance window: send nothing. `announce` is true on
    /// the first such run of the episode (log it once).
    Suppress {
        since: DateTime<Utc>,
        window: String,
        announce: bool,
    },
    /// Up again after a firing alert: send it resolved.
    Resolve,
    /// Up again after a suppressed alert: nothing was sent, just forget it.
    Clear,
}

/// When a run started, as a timestamp.
pub(super) fn run_time(record: &RunRecord) -> DateTime<Utc> {
    i64::try_from(record.result.started_unix_ms)
        .ok()
        .and_then(DateTime::from_timestamp_millis)
        .unwrap_or_else(Utc::now)
}

/// Decide what `record` does to the alert currently tracked as `prev`.
pub(super) fn decide(prev: Option<&Tracked>, record: &RunRecord) -> Action {
    match record.state {
        CheckState::Pending => Action::Ignore,
        CheckState::Up => match prev.map(|p| p.phase) {
            Some(Phase::Firing) => Action::Resolve,
            Some(Phase::Suppressed) => Action::Clear,
            None => Action::Ignore,
        },
        CheckState::Down => {
            // A transition into Down while an alert is tracked means the Up
            // record in between was missed (dropped): a new episode.
            let entered = record
                .transition
                .is_some_and(|t| t.to == CheckState::Down && t.from != CheckState::Down);
            let continuing = prev.filter(|_| !entered);
            let since = continuing.map_or_else(|| run_time(record), |p| p.since);
            match (&record.maintenance, continuing) {
                (Some(window), Some(p)) if p.phase == Phase::Firing => Action::Hold {
                    window: window.clone(),
                    entering: !p.in_maintenance,
                },
                (Some(window), p) => Action::Suppress {
                    since,
                    window: window.clone(),
                    announce: !p.is_some_and(|p| p.phase == Phase::Suppressed),
                },
                (None, Some(p)) if p.phase == Phase::Firing => {
                    if p.in_maintenance {
                        Action::Fire {
                            since,
                            announce: false,
                        }
                    } else {
                        Action::Refresh
                    }
                }
                (None, _) => Action::Fire {
                    since,
                    // a missed Up makes a new episode of a firing alert:
                    // announce it again, with its new start
                    announce: true,
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::Transition;
    use crate::sinks::alerts::payload::tests::down;

    const T0: u64 = 1_700_000_000_000;

    fn tracked(phase: Phase, in_maintenance: bool) -> Tracked {
        Tracked {
            phase,
            since: DateTime::from_timestamp_millis(T0 as i64).unwrap(),
            record: Arc::new(down("c", "l", T0)),
            in_maintenance,
            next_resend: None,
        }
    }

    fn still_down(ms: u64) -> RunRecord {
        let mut r = down("c", "l", ms);
        r.transition = None;
        r
    }

    fn up(ms: u64) -> RunRecord {
        let mut r = down("c", "l", ms);
        r.state = CheckState::Up;
        r.transition = Some(Transition {
            from: CheckState::Down,
            to: CheckState::Up,
        });
        r
    }

    fn in_window(mut r: RunRecord) -> RunRecord {
        r.maintenance = Some("db upgrade".into());
        r
    }

    fn at(ms: u64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(ms as i64).unwrap()
    }

    #[test]
    fn pending_does_nothing() {
        let mut r = down("c", "l", T0);
        r.state = CheckState::Pending;
        r.transition = None;
        assert_eq!(decide(None, &r), Action::Ignore);
        assert_eq!(
            decide(Some(&tracked(Phase::Firing, false)), &r),
            Action::Ignore
        );
    }

    #[test]
    fn going_down_fires_from_the_run_that_went_down() {
        assert_eq!(
            decide(None, &down("c", "l", T0 + 5)),
            Action::Fire {
                since: at(T0 + 5),
                announce: true
            }
        );
        // first record seen mid-episode (daemon restart): fire from it
        assert_eq!(
            decide(None, &still_down(T0 + 7)),
            Action::Fire {
                since: at(T0 + 7),
                announce: true
            }
        );
    }

    #[test]
    fn staying_down_refreshes_and_keeps_the_start() {
        let prev = tracked(Phase::Firing, false);
        assert_eq!(
            decide(Some(&prev), &still_down(T0 + 60_000)),
            Action::Refresh
        );
    }

    #[test]
    fn up_resolves_a_firing_alert_even_in_maintenance() {
        let prev = tracked(Phase::Firing, false);
        assert_eq!(decide(Some(&prev), &up(T0 + 1)), Action::Resolve);
        assert_eq!(decide(Some(&prev), &in_window(up(T0 + 1))), Action::Resolve);
        assert_eq!(decide(None, &up(T0 + 1)), Action::Ignore);
    }

    #[test]
    fn maintenance_suppresses_new_alerts() {
        assert_eq!(
            decide(None, &in_window(down("c", "l", T0))),
            Action::Suppress {
                since: at(T0),
                window: "db upgrade".into(),
                announce: true
            }
        );
        let prev = tracked(Phase::Suppressed, true);
        assert_eq!(
            decide(Some(&prev), &in_window(still_down(T0 + 10))),
            Action::Suppress {
                since: at(T0),
                window: "db upgrade".into(),
                announce: false
            }
        );
        // the window ends, still down: fire, from when it went down
        assert_eq!(
            decide(Some(&prev), &still_down(T0 + 20)),
            Action::Fire {
                since: at(T0),
                announce: true
            }
        );
        // recovered inside the window: nothing was sent
        assert_eq!(decide(Some(&prev), &in_window(up(T0 + 20))), Action::Clear);
    }

    #[test]
    fn maintenance_holds_an_alert_already_firing() {
        let prev = tracked(Phase::Firing, false);
        assert_eq!(
            decide(Some(&prev), &in_window(still_down(T0 + 10))),
            Action::Hold {
                window: "db upgrade".into(),
                entering: true
            }
        );
        let held = tracked(Phase::Firing, true);
        assert_eq!(
            decide(Some(&held), &in_window(still_down(T0 + 20))),
            Action::Hold {
                window: "db upgrade".into(),
                entering: false
            }
        );
        // the window ends: resent to Alertmanager at once, not re-announced
        assert_eq!(
            decide(Some(&held), &still_down(T0 + 30)),
            Action::Fire {
                since: at(T0),
                announce: false
            }
        );
    }

    #[test]
    fn a_missed_recovery_starts_a_new_episode() {
        let prev = tracked(Phase::Firing, false);
        assert_eq!(
            decide(Some(&prev), &down("c", "l", T0 + 99)),
            Action::Fire {
                since: at(T0 + 99),
                announce: true
            }
        );
    }
}
