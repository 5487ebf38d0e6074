//! The scheduler on tokio's paused time: minutes of schedule run in
//! milliseconds and every instant is exact. The checks' components fail to
//! load (a real path of the scheduler: every run is then an `error` result,
//! made without a guest), which is what retries, failure thresholds and
//! maintenance windows act on. Runs of real guests on wall-clock time are
//! in `scheduling.rs`.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::Semaphore;
use vantage::config;
use vantage::daemon::scheduler::{CheckTask, Prepared, Shared};
use vantage::daemon::state::Tracker;
use vantage::pace::Clock;
use vantage::result::{CheckState, Status};
use vantage::runtime::Runtime;
use vantage::runtime::engine::EngineOptions;
use vantage::sinks::board::{Board, CheckView};

use crate::support;

/// 2027-01-15T12:00:00Z: the virtual wall time every test starts at.
const ORIGIN_S: u64 = 1_800_000_000;

struct Harness {
    tasks: Vec<CheckTask>,
    board: Board,
    clock: Clock,
    _dir: tempfile::TempDir,
}

/// Schedule the checks of `config_text` (components that do not load) on a
/// clock that starts at [`ORIGIN_S`] and follows tokio's paused time.
async fn start(config_text: &str) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config::from_str(config_text, &dir.path().join("vantage.toml"))
        .unwrap_or_else(|e| panic!("{e}"));
    let sinks = support::test_sinks(dir.path());
    let board = sinks.board.clone();
    let clock = Clock::tokio(UNIX_EPOCH + Duration::from_secs(ORIGIN_S));
    let shared = Arc::new(Shared {
        runtime: Arc::new(Runtime::new(&EngineOptions::default(), None).unwrap()),
        guests: vantage::runtime::pool::GuestPool::new(1).unwrap(),
        permits: Arc::new(Semaphore::new(4)),
        sinks,
        location: "test".into(),
        maintenance: RwLock::new(Arc::new(cfg.maintenance.clone())),
        clock,
    });
    let tasks = cfg
        .checks
        .into_iter()
        .map(|spec| {
            let prepared = Prepared::new(
                spec,
                Err("no such component".into()),
                None,
                "test",
                Arc::default(),
            );
            CheckTask::spawn(
                shared.clone(),
                Arc::new(prepared),
                Arc::new(Mutex::new(Tracker::default())),
            )
        })
        .collect();
    Harness {
        tasks,
        board,
        clock,
        _dir: dir,
    }
}

impl Harness {
    fn view(&self, name: &str) -> CheckView {
        self.board.get(name).unwrap()
    }

    async fn stop(self) {
        for t in &self.tasks {
            t.stop();
        }
        for t in self.tasks {
            t.join(Duration::from_secs(1)).await;
        }
    }
}

fn check(name: &str, extra: &str) -> String {
    format!("[[check]]\nname = \"{name}\"\ncomponent = \"missing.wasm\"\n{extra}\n")
}

fn ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

#[tokio::test(start_paused = true)]
async fn runs_start_exactly_on_their_slots_one_interval_apart() {
    let h = start(&check("tick", "every = \"10s\"\njitter = \"0s\"")).await;
    let mut planned = Vec::new();
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_secs(10)).await;
        let last = h.view("tick").last.unwrap();
        planned.push(last.planned_unix_ms);
        // Paused time: a run starts exactly when planned.
        assert_eq!(last.lateness_ms, 0.0);
        assert_eq!(last.result.status, Status::Error);
        assert_eq!(last.result.started_unix_ms, last.planned_unix_ms);
    }
    for w in planned.windows(2) {
        assert_eq!(w[1] - w[0], 10_000, "{planned:?}");
    }
    assert!(planned[0] >= ORIGIN_S * 1000 && planned[0] < ORIGIN_S * 1000 + 10_000);
    assert_eq!(h.view("tick").runs, 6);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn retries_back_off_exponentially_capped_by_the_interval() {
    // Base 4 s, interval 60 s: 4, 8, 16 s (each up to 20% lower).
    let h = start(&check(
        "slow-cap",
        "every = \"60s\"\nretries = 3\nretry_delay = \"4s\"",
    ))
    .await;
    // Base 4 s, interval 10 s: 4, 8, then 10 (the cap), not 16.
    let h2 = start(&check(
        "capped",
        "every = \"10s\"\nretries = 3\nretry_delay = \"4s\"",
    ))
    .await;
    tokio::time::sleep(Duration::from_secs(90)).await;
    let run = h.view("slow-cap").last.expect("a run finished");
    assert_eq!(run.retries.len(), 3);
    let waited = run.result.started_unix_ms - run.planned_unix_ms;
    assert!((22_400..=28_000).contains(&waited), "waited {waited} ms");
    let first = h2
        .board
        .get("capped")
        .and_then(|v| v.last)
        .expect("a run finished");
    let waited = first.result.started_unix_ms - first.planned_unix_ms;
    assert!((17_600..=22_000).contains(&waited), "waited {waited} ms");
    h.stop().await;
    h2.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_check_goes_down_after_its_failure_threshold() {
    let h = start(&check(
        "flaky",
        "every = \"10s\"\njitter = \"0s\"\nfailure_threshold = 3",
    ))
    .await;
    // Let the task plan its first run.
    tokio::time::sleep(Duration::from_millis(1)).await;
    let offset = h.view("flaky").next_unix_ms.unwrap() - ms(h.clock.now());
    tokio::time::sleep(Duration::from_millis(offset + 10_000 + 1)).await;
    let view = h.view("flaky");
    assert_eq!(view.runs, 2);
    assert_ne!(view.state, CheckState::Down, "down after 2 of 3 bad runs");
    tokio::time::sleep(Duration::from_secs(10)).await;
    let view = h.view("flaky");
    assert_eq!(view.runs, 3);
    assert_eq!(view.state, CheckState::Down);
    let t = view
        .last
        .unwrap()
        .transition
        .expect("the third run changed the state");
    assert_eq!(t.to, CheckState::Down);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn runs_inside_a_maintenance_window_carry_its_name() {
    // The window opens 30 s after the origin and lasts a minute.
    let start_at = chrono::DateTime::from_timestamp(ORIGIN_S as i64 + 30, 0).unwrap();
    let end_at = start_at + chrono::Duration::seconds(60);
    let text = format!(
        "{}[[maintenance]]\nname = \"deploy\"\nchecks = [\"api\"]\nstart = \"{}\"\nend = \"{}\"\n",
        check("api", "every = \"20s\"\njitter = \"0s\""),
        start_at.to_rfc3339(),
        end_at.to_rfc3339()
    );
    let h = start(&text).await;
    let mut seen = Vec::new();
    for _ in 0..7 {
        tokio::time::sleep(Duration::from_secs(20)).await;
        let last = h.view("api").last.unwrap();
        seen.push((last.planned_unix_ms / 1000, last.maintenance.clone()));
    }
    for (at, m) in &seen {
        let inside = (ORIGIN_S + 30..ORIGIN_S + 90).contains(at);
        assert_eq!(m.is_some(), inside, "run at {at}: {seen:?}");
    }
    assert!(seen.iter().any(|(_, m)| m.as_deref() == Some("deploy")));
    assert!(seen.iter().any(|(_, m)| m.is_none()));
    h.stop().await;
}
