//! The scheduler in one process with real components, on wall-clock time: a
//! smoke test of the real path (component loaded, run on the guest pool,
//! recorded). What the scheduler does with time (spread, overlap and
//! skipped runs, lateness under the concurrency cap, retries and their
//! backoff, thresholds, maintenance windows, stopping) is tested on tokio's
//! paused time in `host/src/daemon/scheduler_tests.rs`.

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::Semaphore;
use vantage::config;
use vantage::daemon::scheduler::{CheckTask, Prepared, Shared};
use vantage::daemon::state::Tracker;
use vantage::runtime::Runtime;
use vantage::runtime::engine::EngineOptions;

use crate::support::{self, wasm};

fn num(v: &Value, key: &str) -> u64 {
    v[key]
        .as_f64()
        .or_else(|| v["result"][key].as_f64())
        .unwrap_or_else(|| panic!("no {key} in {v}")) as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_checks_run_on_their_interval_and_are_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let echo = wasm("fixture_echo");
    let names = ["s0", "s1", "s2"];
    let text: String = names
        .iter()
        .map(|name| {
            format!(
                "[[check]]\nname = \"{name}\"\ncomponent = \"{}\"\nevery = \"1s\"\n",
                echo.display()
            )
        })
        .collect();
    let cfg =
        config::from_str(&text, &dir.path().join("vantage.toml")).unwrap_or_else(|e| panic!("{e}"));
    let sinks = support::test_sinks(dir.path());
    let runtime =
        Arc::new(Runtime::new(&EngineOptions::default(), Some(support::cache_dir())).unwrap());
    let check = Arc::new(runtime.load_file(&echo).await.unwrap());
    let shared = Arc::new(Shared {
        runtime,
        guests: vantage::runtime::pool::GuestPool::new(2).unwrap(),
        permits: Arc::new(Semaphore::new(4)),
        sinks: sinks.clone(),
        location: "test".into(),
        maintenance: RwLock::new(Arc::new(Vec::new())),
        clock: vantage::pace::Clock::system(),
        restore_runs: Default::default(),
    });
    let tasks: Vec<CheckTask> = cfg
        .checks
        .into_iter()
        .map(|spec| {
            let prepared = Prepared::new(spec, Ok(check.clone()), None, "test", Arc::default());
            CheckTask::spawn(
                shared.clone(),
                Arc::new(prepared),
                Arc::new(Mutex::new(Tracker::default())),
            )
        })
        .collect();
    // Every check's slot comes round at least twice.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    for t in &tasks {
        t.stop();
    }
    for t in tasks {
        t.join(Duration::from_secs(10)).await;
    }
    sinks.history.flush().await;

    let mut total = 0;
    for name in names {
        let mut runs = sinks.history.runs(name, 100).await.unwrap();
        runs.reverse();
        assert!((2..=3).contains(&runs.len()), "{name}: {runs:?}");
        total += runs.len();
        for r in &runs {
            assert_eq!(r["result"]["status"], "pass", "{r}");
            assert!(
                num(r, "started_unix_ms") >= num(r, "planned_unix_ms"),
                "{r}"
            );
        }
        for w in runs.windows(2) {
            // One interval apart on the check's grid, and no overlap.
            assert_eq!(
                num(&w[1], "planned_unix_ms") - num(&w[0], "planned_unix_ms"),
                1000
            );
            let end = num(&w[0], "started_unix_ms") + num(&w[0], "duration_ms");
            assert!(num(&w[1], "started_unix_ms") >= end, "{name} overlaps");
        }
        assert_eq!(sinks.board.get(name).unwrap().runs, runs.len() as u64);
    }
    let lateness_count =
        format!("vantage_scheduler_lateness_seconds_count{{location=\"test\"}} {total}");
    assert!(
        sinks.metrics.render().contains(&lateness_count),
        "{lateness_count}"
    );
}
