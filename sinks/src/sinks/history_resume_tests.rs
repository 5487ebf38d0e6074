//! Tests of [`History::resume`]: a check's state, streaks, run count and
//! down episode read back at start-up.

use super::tests::open;
use super::*;
use crate::result::CheckState;
use crate::sinks::testing::run_record;

const NOW: u64 = 1_750_000_000_000;

fn run(check: &str, i: u64, status: Status, state: CheckState, window: bool) -> Arc<RunRecord> {
    let mut r = run_record(check, NOW + i * 1000, status, state);
    r.result.run_id = format!("{check}-{i}");
    r.maintenance = window.then(|| "upgrade".to_string());
    Arc::new(r)
}

#[tokio::test]
async fn resume_reads_state_streaks_runs_and_the_down_episode() {
    use CheckState::*;
    use Status::*;
    let dir = tempfile::tempdir().unwrap();
    let h = open(dir.path());
    // "web": up, then down after 2 bad runs (failure_threshold 2); the
    // first down run was in a window, the second not: the alert was sent.
    for (i, (status, state, window)) in [
        (Pass, Up, false),
        (Pass, Up, false),
        (Fail, Up, false),
        (Fail, Down, true),
        (Error, Down, false),
        (Fail, Down, false),
    ]
    .into_iter()
    .enumerate()
    {
        h.record(run("web", i as u64, status, state, window));
    }
    // "db": down, then two good runs that are not yet enough to be up
    // (success_threshold 3), all of it in a window: suppressed only.
    for (i, (status, state)) in [(Fail, Down), (Pass, Down), (Degraded, Down)]
        .into_iter()
        .enumerate()
    {
        h.record(run("db", i as u64, status, state, true));
    }
    // "pending": bad runs below the threshold.
    h.record(run("pending", 0, Fail, Pending, false));
    h.record(run("pending", 1, Error, Pending, false));
    h.record(run("ok", 0, Pass, Up, false));
    h.flush().await;

    let names = ["web", "db", "pending", "ok", "never-ran"];
    let r = h
        .resume(names.iter().map(|s| s.to_string()).collect())
        .await
        .unwrap();
    assert_eq!(
        r["web"],
        Resumed {
            state: Down,
            good_streak: 0,
            bad_streak: 4,
            runs: 6,
            down_since_unix_ms: Some(NOW + 3000),
            alert_sent: true,
            in_maintenance: false,
        }
    );
    assert_eq!(
        r["db"],
        Resumed {
            state: Down,
            good_streak: 2,
            bad_streak: 0,
            runs: 3,
            down_since_unix_ms: Some(NOW),
            alert_sent: false,
            in_maintenance: true,
        }
    );
    assert_eq!(r["pending"].state, Pending);
    assert_eq!(r["pending"].bad_streak, 2);
    assert_eq!(r["pending"].down_since_unix_ms, None);
    assert_eq!(r["ok"].state, Up);
    assert_eq!((r["ok"].good_streak, r["ok"].runs), (1, 1));
    assert!(!r.contains_key("never-ran"));
}
