//! [`Tracker`]: a check's alerting state, moved by run statuses with
//! thresholds so one bad run does not page anyone unless configured to.

use crate::result::Status;

use super::record::{CheckState, Transition};

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
