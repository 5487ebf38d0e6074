//! [`Tracker`]: a check's alerting state, moved by run statuses with
//! thresholds so one bad run does not page anyone unless configured to.
//!
//! [`resume`] carries the state over a restart: at start-up the daemon reads
//! each configured check's last state, streaks and run count back from the
//! history, and the alerts of the checks that were down go to the alerts
//! sink, so a restart neither re-fires nor hides an alert.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::result::Status;
use crate::sinks::alerts::{Alerts, ResumedAlert};
use crate::sinks::history::History;

use crate::result::{CheckState, Transition};
use crate::sinks::board::Board;

/// What a check carries over a restart.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Carried {
    /// Its state and streaks.
    pub tracker: Tracker,
    /// Its runs kept in the history (the board's `runs` starts from them).
    pub runs: u64,
}

/// A check's or restore test's running task, as a reload replaces it.
pub trait Replaced {
    /// Ask the task to stop (a run in flight finishes).
    fn stop(&self);
    /// Its alerting state.
    fn tracker(&self) -> &Arc<Mutex<Tracker>>;
}

/// The alerting state a check or restore test that a reload (re)starts goes
/// on with: a changed one's `previous` task is asked to stop, queued in
/// `stopping`, and hands on its tracker; a new one starts from what start-up
/// `carried` over from the history, or afresh. Counts it in `(added,
/// changed)`.
pub fn handed_on<T: Replaced>(
    previous: Option<T>,
    carried: Option<&Carried>,
    stopping: &mut Vec<T>,
    (added, changed): (&mut usize, &mut usize),
) -> Arc<Mutex<Tracker>> {
    let count = if previous.is_some() { changed } else { added };
    *count += 1;
    match previous {
        Some(task) => {
            task.stop();
            let tracker = task.tracker().clone();
            stopping.push(task);
            tracker
        }
        None => Arc::new(Mutex::new(
            carried.map(|c| c.tracker.clone()).unwrap_or_default(),
        )),
    }
}

/// Read the state of each of `checks` back from `history` and hand the
/// alerts of those that were down to `alerts` (keyed by `location`, this
/// daemon's label). A check without stored runs is not in the map (it starts
/// `pending`); if the history cannot be read, that is logged and every check
/// starts `pending`.
pub async fn resume(
    history: &History,
    alerts: &Alerts,
    location: &str,
    checks: Vec<String>,
) -> HashMap<String, Carried> {
    let resumed = match history.resume(checks).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(
                error = format!("{e:#}"),
                "could not read the checks' state from the history: every check starts pending"
            );
            return HashMap::new();
        }
    };
    let mut down = Vec::new();
    let carried = resumed
        .into_iter()
        .map(|(name, r)| {
            if let Some(since) = r
                .down_since_unix_ms
                .and_then(|ms| i64::try_from(ms).ok())
                .and_then(chrono::DateTime::from_timestamp_millis)
            {
                down.push(ResumedAlert {
                    check: name.clone(),
                    location: location.to_string(),
                    since,
                    sent: r.alert_sent,
                    in_maintenance: r.in_maintenance,
                });
            }
            let carried = Carried {
                tracker: Tracker::resumed(r.state, r.good_streak, r.bad_streak),
                runs: r.runs,
            };
            (name, carried)
        })
        .collect::<HashMap<_, _>>();
    if !carried.is_empty() {
        tracing::info!(
            checks = carried.len(),
            down = down.len(),
            "check states carried over from the history"
        );
    }
    alerts.resume(down).await;
    carried
}

/// Add the runs `carried` over a restart to `name`'s board entry.
pub fn carry_runs(board: &Board, name: &str, carried: Option<&Carried>) {
    if let Some(c) = carried.filter(|c| c.runs > 0) {
        board.update(name, |v| v.runs += c.runs);
    }
}

/// Whether a run's status counts as good (pass, degraded) or bad (fail,
/// error) for the state.
pub fn is_good(status: Status) -> bool {
    matches!(status, Status::Pass | Status::Degraded)
}

/// The state of one check and the streaks that move it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tracker {
    state: CheckState,
    good_streak: u32,
    bad_streak: u32,
}

impl Tracker {
    /// A tracker that carries on from a state and streaks read back from
    /// the history (see [`resume`]).
    pub fn resumed(state: CheckState, good_streak: u32, bad_streak: u32) -> Tracker {
        Tracker {
            state,
            good_streak,
            bad_streak,
        }
    }

    /// The current state.
    pub fn state(&self) -> CheckState {
        self.state
    }

    /// Feed one run's status; returns the state after it and the change, if
    /// any. From `pending`, the first good run means `up` and
    /// `failure_threshold` bad runs in a row mean `down`; from `up`,
    /// `failure_threshold` bad runs in a row mean `down`; from `down`,
    /// `success_threshold` good runs in a row mean `up`.
    pub fn observe(
        &mut self,
        status: Status,
        failure_threshold: u32,
        success_threshold: u32,
    ) -> (CheckState, Option<Transition>) {
        if is_good(status) {
            self.good_streak = self.good_streak.saturating_add(1);
            self.bad_streak = 0;
        } else {
            self.bad_streak = self.bad_streak.saturating_add(1);
            self.good_streak = 0;
        }
        let next = match self.state {
            CheckState::Pending if self.good_streak >= 1 => CheckState::Up,
            CheckState::Pending | CheckState::Up if self.bad_streak >= failure_threshold.max(1) => {
                CheckState::Down
            }
            CheckState::Down if self.good_streak >= success_threshold.max(1) => CheckState::Up,
            s => s,
        };
        let transition = (next != self.state).then_some(Transition {
            from: self.state,
            to: next,
        });
        self.state = next;
        (next, transition)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(t: &mut Tracker, statuses: &[Status], fail: u32, ok: u32) -> Vec<CheckState> {
        statuses.iter().map(|s| t.observe(*s, fail, ok).0).collect()
    }

    #[test]
    fn default_thresholds_follow_each_run() {
        use CheckState::*;
        use Status::*;
        let mut t = Tracker::default();
        assert_eq!(t.state(), Pending);
        assert_eq!(
            feed(&mut t, &[Pass, Fail, Degraded, Error, Pass], 1, 1),
            [Up, Down, Up, Down, Up]
        );
    }

    #[test]
    fn thresholds_need_consecutive_runs() {
        use CheckState::*;
        use Status::*;
        let mut t = Tracker::default();
        assert_eq!(
            feed(&mut t, &[Pass, Fail, Fail, Pass, Fail, Fail, Fail], 3, 2),
            [Up, Up, Up, Up, Up, Up, Down]
        );
        assert_eq!(
            feed(&mut t, &[Pass, Fail, Pass, Pass], 3, 2),
            [Down, Down, Down, Up]
        );
    }

    #[test]
    fn transitions_are_reported_once() {
        let mut t = Tracker::default();
        let (_, first) = t.observe(Status::Fail, 2, 1);
        assert_eq!(first, None);
        let (_, second) = t.observe(Status::Fail, 2, 1);
        assert_eq!(
            second,
            Some(Transition {
                from: CheckState::Pending,
                to: CheckState::Down
            })
        );
        assert_eq!(t.observe(Status::Fail, 2, 1).1, None);
    }
}

#[cfg(test)]
mod handed_on_tests {
    use std::cell::Cell;

    use super::*;

    /// A running task that notes whether it was asked to stop.
    struct Task {
        tracker: Arc<Mutex<Tracker>>,
        stopped: Cell<bool>,
    }

    impl Replaced for Task {
        fn stop(&self) {
            self.stopped.set(true);
        }
        fn tracker(&self) -> &Arc<Mutex<Tracker>> {
            &self.tracker
        }
    }

    #[test]
    fn a_changed_task_is_stopped_queued_and_hands_on_its_tracker() {
        let down = Tracker::resumed(CheckState::Down, 0, 3);
        let previous = Task {
            tracker: Arc::new(Mutex::new(down.clone())),
            stopped: Cell::new(false),
        };
        let shared = previous.tracker.clone();
        let carried = Carried {
            tracker: Tracker::resumed(CheckState::Up, 5, 0),
            runs: 9,
        };
        let (mut stopping, mut added, mut changed) = (Vec::new(), 0, 0);
        let counts = (&mut added, &mut changed);
        let tracker = handed_on(Some(previous), Some(&carried), &mut stopping, counts);
        assert!(Arc::ptr_eq(&tracker, &shared), "the same tracker goes on");
        assert_eq!(*tracker.lock().unwrap(), down);
        assert_eq!(stopping.len(), 1);
        assert!(
            stopping[0].stopped.get(),
            "the previous task was asked to stop"
        );
        assert_eq!((added, changed), (0, 1));
    }

    #[test]
    fn a_new_task_starts_from_what_was_carried_or_afresh() {
        let carried = Carried {
            tracker: Tracker::resumed(CheckState::Down, 0, 2),
            runs: 4,
        };
        let (mut stopping, mut added, mut changed) = (Vec::<Task>::new(), 0, 0);
        let tracker = handed_on(
            None,
            Some(&carried),
            &mut stopping,
            (&mut added, &mut changed),
        );
        assert_eq!(*tracker.lock().unwrap(), carried.tracker);
        let tracker = handed_on(None, None, &mut stopping, (&mut added, &mut changed));
        assert_eq!(*tracker.lock().unwrap(), Tracker::default());
        assert!(stopping.is_empty());
        assert_eq!((added, changed), (2, 0));
    }
}

#[cfg(test)]
mod resume_tests {
    //! A tracker resumed from the history (`History::resume`) goes on
    //! counting where the previous process stopped.

    use std::sync::Arc;

    use super::Tracker;
    use crate::result::{CheckState, RunRecord, Status};
    use crate::sinks::history::{History, Retention};
    use vantage_sinks::sinks::testing::run_record;

    fn run(check: &str, i: u64, status: Status, state: CheckState) -> Arc<RunRecord> {
        let mut r = run_record(check, 1_750_000_000_000 + i * 1000, status, state);
        r.result.run_id = format!("{check}-{i}");
        Arc::new(r)
    }

    /// The resumed tracker carries on exactly: with failure_threshold 3 and
    /// two bad runs before the restart, the first bad run after it goes down.
    #[tokio::test]
    async fn a_resumed_tracker_keeps_counting_its_streak() {
        let dir = tempfile::tempdir().unwrap();
        let h = History::open(dir.path(), Retention::default()).unwrap();
        h.record(run("web", 0, Status::Pass, CheckState::Up));
        h.record(run("web", 1, Status::Fail, CheckState::Up));
        h.record(run("web", 2, Status::Fail, CheckState::Up));
        h.flush().await;
        let r = h
            .resume(vec!["web".into()])
            .await
            .unwrap()
            .remove("web")
            .unwrap();
        let mut t = Tracker::resumed(r.state, r.good_streak, r.bad_streak);
        let (state, transition) = t.observe(Status::Fail, 3, 1);
        assert_eq!(state, CheckState::Down);
        assert_eq!(
            transition.map(|t| (t.from, t.to)),
            Some((CheckState::Up, CheckState::Down))
        );
        // A fresh tracker (today's behaviour before resuming) would still be
        // pending after that run.
        assert_eq!(
            Tracker::default().observe(Status::Fail, 3, 1).0,
            CheckState::Pending
        );
    }
}
