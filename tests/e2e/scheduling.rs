//! The scheduler in one process, with real components: many checks on a
//! short interval start spread over the interval, never overlap, respect the
//! concurrency cap, and have their lateness measured; a run longer than its
//! interval skips (and counts) the planned runs it overlaps.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::Semaphore;
use vantage::config;
use vantage::daemon::scheduler::{CheckTask, Prepared, Shared};
use vantage::daemon::state::Tracker;
use vantage::runtime::Runtime;
use vantage::runtime::engine::EngineOptions;
use vantage::sinks::Sinks;

use crate::support::{self, wasm};

/// A scheduler with `config_text`'s checks running, plus its sinks.
struct Harness {
    tasks: Vec<CheckTask>,
    sinks: Sinks,
    _dir: tempfile::TempDir,
}

async fn start(config_text: &str, concurrency: usize) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config::from_str(config_text, &dir.path().join("vantage.toml"))
        .unwrap_or_else(|e| panic!("{e}"));
    let sinks = support::test_sinks(dir.path());
    let runtime =
        Arc::new(Runtime::new(&EngineOptions::default(), Some(support::cache_dir())).unwrap());
    let shared = Arc::new(Shared {
        runtime: runtime.clone(),
        guests: vantage::runtime::pool::GuestPool::new(2).unwrap(),
        permits: Arc::new(Semaphore::new(concurrency)),
        sinks: sinks.clone(),
        location: "test".into(),
        maintenance: RwLock::new(Arc::new(Vec::new())),
        clock: vantage::pace::Clock::system(),
    });
    let mut loaded = BTreeMap::new();
    let mut tasks = Vec::new();
    for spec in cfg.checks {
        let config::ComponentRef::Path(path) = &spec.component else {
            unreachable!()
        };
        if !loaded.contains_key(path) {
            let check = runtime.load_file(path).await.unwrap();
            loaded.insert(path.clone(), Arc::new(check));
        }
        let component = Ok(loaded[path].clone());
        let prepared = Prepared::new(spec, component, None, "test", Arc::default());
        tasks.push(CheckTask::spawn(
            shared.clone(),
            Arc::new(prepared),
            Arc::new(Mutex::new(Tracker::default())),
        ));
    }
    Harness {
        tasks,
        sinks,
        _dir: dir,
    }
}

impl Harness {
    /// Stop every task and flush the history; the returned directory holds
    /// the history and must outlive its reads.
    async fn stop(self) -> (Sinks, tempfile::TempDir) {
        for t in &self.tasks {
            t.stop();
        }
        for t in self.tasks {
            t.join(Duration::from_secs(10)).await;
        }
        self.sinks.history.flush().await;
        (self.sinks, self._dir)
    }
}

fn check_block(name: &str, component: &Path, every: &str, extra: &str) -> String {
    format!(
        "[[check]]\nname = \"{name}\"\ncomponent = \"{}\"\nevery = \"{every}\"\n{extra}\n",
        component.display()
    )
}

fn num(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .or_else(|| v["result"][key].as_f64())
        .unwrap_or_else(|| panic!("no {key} in {v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_checks_are_spread_never_overlap_and_lateness_is_measured() {
    let echo = wasm("fixture_echo");
    let n = 200;
    let text: String = (0..n)
        .map(|i| check_block(&format!("c{i:03}"), &echo, "2s", ""))
        .collect();
    let harness = start(&text, 8).await;
    tokio::time::sleep(Duration::from_millis(6500)).await;
    let (sinks, _dir) = harness.stop().await;

    let mut offsets = HashSet::new();
    let mut total_runs = 0;
    let mut late = Vec::new();
    for i in 0..n {
        let name = format!("c{i:03}");
        let mut runs = sinks.history.runs(&name, 100).await.unwrap();
        runs.reverse();
        // 6.5 s at a 2 s interval: 3 or 4 planned starts, every one run.
        assert!((3..=4).contains(&runs.len()), "{name}: {} runs", runs.len());
        total_runs += runs.len();
        let planned: Vec<u64> = runs
            .iter()
            .map(|r| num(r, "planned_unix_ms") as u64)
            .collect();
        // Consecutive planned starts are exactly one interval apart, on one
        // grid fixed by the check's name.
        for w in planned.windows(2) {
            assert_eq!(w[1] - w[0], 2000, "{name}: planned {planned:?}");
        }
        offsets.insert(planned[0] % 2000);
        // No overlap: each run starts after the previous one ended.
        for w in runs.windows(2) {
            let end = num(&w[0], "started_unix_ms") + num(&w[0], "duration_ms");
            assert!(
                num(&w[1], "started_unix_ms") >= end.floor(),
                "{name} overlaps"
            );
        }
        for r in &runs {
            assert_eq!(r["result"]["status"], "pass", "{r}");
            let lateness = num(r, "lateness_ms");
            assert!(lateness >= 0.0);
            late.push(lateness);
        }
    }
    // Spread: 200 checks on a 2 s interval land on (almost) 200 distinct
    // millisecond offsets, not one.
    assert!(
        offsets.len() > 180,
        "only {} distinct offsets",
        offsets.len()
    );
    // Lateness is measured for every run, and exported.
    late.sort_by(f64::total_cmp);
    let p50 = late[late.len() / 2];
    let p99 = late[late.len() * 99 / 100];
    eprintln!("{total_runs} runs; lateness p50 {p50:.2} ms, p99 {p99:.2} ms");
    let metrics = sinks.metrics.render();
    assert!(
        metrics.contains(&format!(
            "vantage_scheduler_lateness_seconds_count{{location=\"test\"}} {total_runs}"
        )),
        "lateness count should be {total_runs}:\n{}",
        metrics
            .lines()
            .filter(|l| l.contains("lateness"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(p99 < 1000.0, "p99 lateness {p99} ms");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_longer_than_its_interval_skips_and_counts_the_overlapped_runs() {
    let looping = wasm("fixture_loop");
    // Each run loops until its 2.5 s deadline; the interval is 1 s.
    let text = check_block("slow", &looping, "1s", "timeout = \"2500ms\"");
    let harness = start(&text, 4).await;
    tokio::time::sleep(Duration::from_millis(6000)).await;
    let (sinks, _dir) = harness.stop().await;
    let mut runs = sinks.history.runs("slow", 100).await.unwrap();
    runs.reverse();
    assert!((2..=3).contains(&runs.len()), "{} runs", runs.len());
    for w in runs.windows(2) {
        let end = num(&w[0], "started_unix_ms") + num(&w[0], "duration_ms");
        assert!(num(&w[1], "started_unix_ms") >= end.floor(), "runs overlap");
        // The next planned start is the first slot after the previous run ended.
        let planned = num(&w[1], "planned_unix_ms");
        assert!(planned >= end.floor() && planned - end < 1001.0);
    }
    for r in &runs {
        assert_eq!(r["result"]["error"]["kind"], "deadline", "{r}");
    }
    let view = sinks.board.get("slow").unwrap();
    assert!(
        view.skipped_overlap >= 2,
        "skipped {}",
        view.skipped_overlap
    );
    let metrics = sinks.metrics.render();
    let line = format!(
        "vantage_check_skipped_overlap_total{{check=\"slow\",location=\"test\"}} {}",
        view.skipped_overlap
    );
    assert!(metrics.contains(&line), "missing {line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_concurrency_cap_holds_runs_back_and_shows_as_lateness() {
    let looping = wasm("fixture_loop");
    // Four checks on a 1 s interval whose runs each take 1 s, with room for
    // one run at a time: they queue.
    let text: String = (0..4)
        .map(|i| check_block(&format!("q{i}"), &looping, "1s", "timeout = \"1s\""))
        .collect();
    let harness = start(&text, 1).await;
    tokio::time::sleep(Duration::from_millis(4500)).await;
    let (sinks, _dir) = harness.stop().await;
    let mut spans = Vec::new();
    let mut max_lateness: f64 = 0.0;
    for i in 0..4 {
        for r in sinks.history.runs(&format!("q{i}"), 100).await.unwrap() {
            let start = num(&r, "started_unix_ms");
            spans.push((start, start + num(&r, "duration_ms")));
            max_lateness = max_lateness.max(num(&r, "lateness_ms"));
        }
    }
    spans.sort_by(|a, b| a.0.total_cmp(&b.0));
    assert!(spans.len() >= 3, "{spans:?}");
    // One slot: no two runs of any checks overlap.
    for w in spans.windows(2) {
        assert!(
            w[1].0 + 1.0 >= w[0].1,
            "runs overlap under a cap of 1: {spans:?}"
        );
    }
    // Queued runs start late, and the lateness says so.
    assert!(max_lateness > 500.0, "max lateness {max_lateness} ms");
}
