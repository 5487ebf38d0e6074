//! The scheduler on tokio's paused time: minutes of schedule run in
//! milliseconds of test, and every instant is exact. Each check runs a
//! [`Script`] ([`Runnable::Scripted`]) instead of a guest: a run takes a
//! chosen virtual time and ends with a chosen status. Everything else is
//! the scheduler as the daemon runs it: [`CheckTask`], [`Shared`] with its
//! concurrency cap, [`Tracker`], and real sinks (board, metrics, the SQLite
//! history in a temporary directory). The e2e smoke test with real guests on
//! wall-clock time is `tests/e2e/scheduling.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, UNIX_EPOCH};

use serde_json::Value;
use tokio::sync::Semaphore;

use super::plan;
use super::scheduler::{CheckTask, Prepared, Runnable, Shared};
use super::state::Tracker;
use crate::config::{self, CheckSpec};
use crate::pace::Clock;
use crate::result::{CheckResult, CheckState, Status};
use crate::runtime::engine::EngineOptions;
use crate::runtime::pool::GuestPool;
use crate::runtime::{RunSpec, Runtime};
use crate::sinks::Sinks;
use crate::sinks::alerts::{AlertConfig, Alerts};
use crate::sinks::board::Board;
use crate::sinks::history::{History, Retention};
use crate::sinks::metrics::Metrics;

/// 2027-01-15T08:00:00Z, a whole minute: the virtual wall time every test
/// starts at.
const ORIGIN_MS: u64 = 1_800_000_000_000;

/// What the runs of one scripted check do: run `n` (counting every attempt,
/// retries included) takes `steps[n]`'s time and ends with its status; the
/// last step repeats. It notes when each attempt started.
pub struct Script {
    steps: Vec<(Duration, Status)>,
    starts: Mutex<Vec<u64>>,
}

impl Script {
    /// Runs that take `ms` each and end with the statuses in turn (the last
    /// one repeating).
    fn new(ms: u64, statuses: &[Status]) -> Self {
        let steps = statuses
            .iter()
            .map(|s| (Duration::from_millis(ms), *s))
            .collect();
        Script {
            steps,
            starts: Mutex::default(),
        }
    }

    /// Runs that take `ms` each and always end with `status`.
    fn repeat(ms: u64, status: Status) -> Self {
        Script::new(ms, &[status])
    }

    /// One run: wait its step's time on tokio's clock, then report its
    /// status (as `sinks::testing` builds a result) with that duration.
    pub async fn run(&self, check: &str, clock: &Clock) -> CheckResult {
        let started = plan::unix_ms(clock.now());
        let n = {
            let mut starts = self.starts.lock().unwrap();
            starts.push(started);
            starts.len() - 1
        };
        let (took, status) = self.steps[n.min(self.steps.len() - 1)];
        tokio::time::sleep(took).await;
        let mut result =
            vantage_sinks::sinks::testing::run_record(check, started, status, CheckState::Pending)
                .result;
        result.duration_ms = took.as_secs_f64() * 1000.0;
        result
    }

    /// When each attempt started (unix ms), in order.
    fn starts(&self) -> Vec<u64> {
        self.starts.lock().unwrap().clone()
    }
}

/// One stored run, as the history gives it back (times in ms after
/// [`ORIGIN_MS`]).
#[derive(Debug, Clone, PartialEq)]
struct Run {
    planned: u64,
    started: u64,
    duration: u64,
    lateness: f64,
    status: String,
    state: String,
    /// The state it moved to, if it moved.
    to: Option<String>,
    /// The statuses of the attempts retried before the last one.
    retries: Vec<String>,
    maintenance: Option<String>,
}

impl Run {
    fn from_stored(v: &Value) -> Run {
        let text = |v: &Value| {
            v.as_str()
                .unwrap_or_else(|| panic!("not text: {v}"))
                .to_string()
        };
        let ms = |v: &Value| v.as_u64().unwrap_or_else(|| panic!("not ms: {v}")) - ORIGIN_MS;
        let r = &v["result"];
        Run {
            planned: ms(&v["planned_unix_ms"]),
            started: ms(&r["started_unix_ms"]),
            duration: r["duration_ms"].as_f64().unwrap() as u64,
            lateness: v["lateness_ms"].as_f64().unwrap(),
            status: text(&r["status"]),
            state: text(&v["state"]),
            to: v["transition"].get("to").map(text),
            retries: v["retries"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| text(&a["status"]))
                .collect(),
            maintenance: v["maintenance"].as_str().map(str::to_string),
        }
    }

    fn end(&self) -> u64 {
        self.started + self.duration
    }
}

/// A scheduler on a clock at [`ORIGIN_MS`] that follows tokio's paused
/// time, with real sinks.
struct Harness {
    shared: Arc<Shared>,
    tasks: BTreeMap<String, CheckTask>,
    scripts: BTreeMap<String, Arc<Script>>,
    specs: Vec<CheckSpec>,
    _dir: tempfile::TempDir,
}

impl Harness {
    /// The checks and maintenance windows of `config_text` (not started
    /// yet), under a concurrency cap of `cap`.
    fn new(config_text: &str, cap: usize) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config::from_str(config_text, &dir.path().join("vantage.toml"))
            .unwrap_or_else(|e| panic!("{e}"));
        let board = Board::default();
        let sinks = Sinks {
            board: board.clone(),
            metrics: Arc::new(Metrics::new(board, "test")),
            history: History::open(dir.path(), Retention::default()).unwrap(),
            alerts: Alerts::start(AlertConfig::default()),
            remote_write: Default::default(),
            tap: Default::default(),
        };
        let shared = Arc::new(Shared {
            runtime: Arc::new(Runtime::new(&EngineOptions::default(), None).unwrap()),
            guests: GuestPool::new(1).unwrap(),
            permits: Arc::new(Semaphore::new(cap)),
            sinks,
            location: "test".into(),
            maintenance: RwLock::new(Arc::new(cfg.maintenance)),
            clock: Clock::tokio(UNIX_EPOCH + Duration::from_millis(ORIGIN_MS)),
            restore_runs: Default::default(),
        });
        Harness {
            shared,
            tasks: BTreeMap::new(),
            scripts: BTreeMap::new(),
            specs: cfg.checks,
            _dir: dir,
        }
    }

    /// Start every check, each running the script `script` makes for it.
    fn start(mut self, script: impl Fn(&str) -> Script) -> Harness {
        for spec in std::mem::take(&mut self.specs) {
            let s = Arc::new(script(&spec.name));
            self.scripts.insert(spec.name.clone(), s.clone());
            self.spawn(spec, Ok(Runnable::Scripted(s)));
        }
        self
    }

    /// Start the task of `spec`, running `component`.
    fn spawn(&mut self, spec: CheckSpec, component: Result<Runnable, String>) {
        let name = spec.name.clone();
        let prepared = Prepared {
            run_spec: Arc::new(RunSpec::for_check(&spec, "test", Arc::default())),
            spec,
            component,
            digest: None,
        };
        let task = CheckTask::spawn(
            self.shared.clone(),
            Arc::new(prepared),
            Arc::new(Mutex::new(Tracker::default())),
        );
        self.tasks.insert(name, task);
    }

    /// Virtual ms since [`ORIGIN_MS`].
    fn now(&self) -> u64 {
        plan::unix_ms(self.shared.clock.now()) - ORIGIN_MS
    }

    /// Let virtual time run until `ms` after the origin.
    async fn until(&self, ms: u64) {
        let at = UNIX_EPOCH + Duration::from_millis(ORIGIN_MS + ms);
        self.shared.clock.sleep_until(at).await;
    }

    /// When `name`'s first run is planned (ms after the origin).
    fn first_planned(&self, name: &str) -> u64 {
        let spec = &self.tasks[name].prepared.spec;
        let at = UNIX_EPOCH + Duration::from_millis(ORIGIN_MS);
        plan::unix_ms(plan::next_after(&spec.schedule, spec.timezone, name, at).unwrap())
            - ORIGIN_MS
    }

    fn script(&self, name: &str) -> &Script {
        &self.scripts[name]
    }

    /// Stop every task; runs in flight finish.
    async fn stop(&mut self) {
        for t in self.tasks.values() {
            t.stop();
        }
        for (_, t) in std::mem::take(&mut self.tasks) {
            t.join(Duration::from_secs(3600)).await;
        }
    }

    /// The stored runs of `name`, oldest first. Only after
    /// [`stop`](Self::stop): waiting for the history's writer thread lets
    /// paused time jump to the next timer.
    async fn runs(&self, name: &str) -> Vec<Run> {
        assert!(self.tasks.is_empty(), "read the history after stop");
        self.shared.sinks.history.flush().await;
        let stored = self.shared.sinks.history.runs(name, 10_000).await.unwrap();
        stored.iter().rev().map(Run::from_stored).collect()
    }

    fn metric(&self, line_start: &str) -> String {
        let text = self.shared.sinks.metrics.render();
        text.lines()
            .find(|l| l.starts_with(line_start))
            .unwrap_or_else(|| panic!("no {line_start} in\n{text}"))
            .to_string()
    }
}

fn check(name: &str, extra: &str) -> String {
    format!("[[check]]\nname = \"{name}\"\ncomponent = \"scripted.wasm\"\n{extra}\n")
}

#[tokio::test(start_paused = true)]
async fn many_checks_spread_over_the_interval_start_on_time_and_never_overlap() {
    let n = 200;
    let text: String = (0..n)
        .map(|i| check(&format!("c{i:03}"), "every = \"2s\""))
        .collect();
    // Room for every run: no lateness.
    let mut h = Harness::new(&text, n).start(|_| Script::repeat(150, Status::Pass));
    // Stop at about 10 s, on a millisecond no check is planned at (a stop
    // and a start at one instant could go either way).
    let slots: BTreeSet<u64> = (0..n)
        .map(|i| plan::offset(&format!("c{i:03}"), Duration::from_secs(2)).as_millis() as u64)
        .collect();
    let stop = (10_000..).find(|t| !slots.contains(&(t % 2_000))).unwrap();
    h.until(stop).await;
    h.stop().await;

    let mut offsets = BTreeSet::new();
    let mut per_100ms = [0u32; 20];
    let mut total = 0;
    for i in 0..n {
        let name = format!("c{i:03}");
        let runs = h.runs(&name).await;
        let offset = plan::offset(&name, Duration::from_secs(2)).as_millis() as u64;
        // Planned slots: the name's offset, then one interval apart, up to
        // the stop (offset 0 is on the origin, so its first slot is 2 s).
        let first = if offset == 0 { 2_000 } else { offset };
        let expected: Vec<u64> = (first..stop).step_by(2_000).collect();
        let planned: Vec<u64> = runs.iter().map(|r| r.planned).collect();
        assert_eq!(planned, expected, "{name}");
        for r in &runs {
            assert_eq!(r.started, r.planned, "{name}: {r:?}");
            assert_eq!(r.lateness, 0.0, "{name}: {r:?}");
            assert_eq!((r.duration, r.status.as_str()), (150, "pass"));
        }
        // Each run of a check starts after its previous run ended.
        for w in runs.windows(2) {
            assert!(w[1].started >= w[0].end(), "{name} overlaps: {w:?}");
        }
        assert_eq!(h.script(&name).starts().len(), runs.len());
        offsets.insert(offset);
        per_100ms[(offset / 100) as usize] += 1;
        total += runs.len();
    }
    // Spread: 200 checks on one interval start at (almost) 200 distinct
    // offsets, about 10 in each tenth of a second, never all at once.
    assert!(offsets.len() >= 185, "{} distinct offsets", offsets.len());
    assert!(
        per_100ms.iter().all(|&c| c <= 20),
        "starts per 100 ms: {per_100ms:?}"
    );
    assert_eq!(
        h.metric("vantage_scheduler_lateness_seconds_count"),
        format!("vantage_scheduler_lateness_seconds_count{{location=\"test\"}} {total}")
    );
}

#[tokio::test(start_paused = true)]
async fn the_concurrency_cap_holds_runs_back_and_shows_as_lateness() {
    // Four checks planned at the same instant (every minute at :00), runs
    // of 5 s each, room for one run at a time: they queue.
    let text: String = (0..4)
        .map(|i| check(&format!("q{i}"), "cron = \"* * * * *\""))
        .collect();
    let mut h = Harness::new(&text, 1).start(|_| Script::repeat(5_000, Status::Pass));
    h.until(150_000).await;
    h.stop().await;

    let mut runs = Vec::new();
    for i in 0..4 {
        runs.extend(h.runs(&format!("q{i}")).await);
    }
    runs.sort_by_key(|r| r.started);
    let spans: Vec<(u64, u64, f64)> = runs
        .iter()
        .map(|r| (r.planned, r.started, r.lateness))
        .collect();
    // Minute 1 and minute 2: one run after the other, each as late as the
    // runs queued before it took.
    let mut expected = Vec::new();
    for minute in [60_000, 120_000] {
        for k in 0..4 {
            expected.push((minute, minute + k * 5_000, (k * 5_000) as f64));
        }
    }
    assert_eq!(spans, expected);
    // The histogram holds every run's lateness: 2 × (0 + 5 + 10 + 15) s.
    assert_eq!(
        h.metric("vantage_scheduler_lateness_seconds_sum"),
        "vantage_scheduler_lateness_seconds_sum{location=\"test\"} 60.0"
    );
}

#[tokio::test(start_paused = true)]
async fn a_run_longer_than_its_interval_skips_and_counts_the_planned_runs() {
    // Every second, runs of 2.5 s: each run overlaps the next two slots.
    let mut h = Harness::new(&check("slow", "every = \"1s\""), 4)
        .start(|_| Script::repeat(2_500, Status::Pass));
    let first = h.first_planned("slow");
    // Four runs start; the fifth slot after them is not reached.
    h.until(first + 3 * 3_000 + 500).await;
    h.stop().await;
    let runs = h.runs("slow").await;
    let planned: Vec<u64> = runs.iter().map(|r| r.planned).collect();
    // The next planned start is the first slot after the previous run ended.
    assert_eq!(
        planned,
        [first, first + 3_000, first + 6_000, first + 9_000]
    );
    for w in runs.windows(2) {
        assert!(w[1].started >= w[0].end(), "runs overlap: {w:?}");
    }
    assert!(runs.iter().all(|r| r.lateness == 0.0));
    let view = h.shared.sinks.board.get("slow").unwrap();
    assert_eq!(view.skipped_overlap, 8, "two skipped per run");
    assert_eq!(
        h.metric("vantage_check_skipped_overlap_total"),
        "vantage_check_skipped_overlap_total{check=\"slow\",location=\"test\"} 8"
    );
}

#[tokio::test(start_paused = true)]
async fn retries_back_off_exponentially_capped_by_the_interval() {
    // Base 4 s: with a 60 s interval 4, 8, 16 s; with a 10 s interval 4,
    // 8, then 10 s (the cap), not 16; with a cron schedule every minute
    // and base 40 s, 40 s then 60 s (the gap to the next start), not 80.
    // Each delay is up to 20% lower at random.
    let text = format!(
        "{}{}{}",
        check("wide", "every = \"60s\"\nretries = 3\nretry_delay = \"4s\""),
        check(
            "capped",
            "every = \"10s\"\nretries = 3\nretry_delay = \"4s\""
        ),
        check(
            "cron",
            "cron = \"* * * * *\"\nretries = 2\nretry_delay = \"40s\""
        ),
    );
    let mut h = Harness::new(&text, 4).start(|_| Script::repeat(100, Status::Fail));
    let wide = h.first_planned("wide");
    // The cron check's third attempt starts by 160.2 s.
    h.until(165_000).await;
    h.stop().await;

    // The delays between the first run's attempts: from the end of one
    // (100 ms) to the start of the next.
    let delays = |name: &str, retries: usize| -> Vec<u64> {
        let starts = h.script(name).starts();
        let first_run = &starts[..(retries + 1).min(starts.len())];
        first_run.windows(2).map(|w| w[1] - w[0] - 100).collect()
    };
    // A delay of at most `max` ms and at least 80% of it (to the
    // millisecond: tokio's timer ends a sleep on a whole one).
    let within = |d: u64, max: u64| d >= max * 8 / 10 && d <= max;
    let wide_delays = delays("wide", 3);
    assert_eq!(wide_delays.len(), 3, "{wide_delays:?}");
    for (d, max) in wide_delays.iter().zip([4_000, 8_000, 16_000]) {
        assert!(within(*d, max), "wide: {wide_delays:?}");
    }
    let capped = delays("capped", 3);
    assert_eq!(capped.len(), 3, "{capped:?}");
    for (d, max) in capped.iter().zip([4_000, 8_000, 10_000]) {
        assert!(within(*d, max), "capped: {capped:?}");
    }
    let cron = delays("cron", 2);
    assert_eq!(cron.len(), 2, "{cron:?}");
    for (d, max) in cron.iter().zip([40_000, 60_000]) {
        assert!(within(*d, max), "cron: {cron:?}");
    }
    // One record per scheduled run, carrying the bad attempts before its
    // last one.
    let runs = h.runs("wide").await;
    assert_eq!(runs[0].planned, wide);
    assert_eq!(runs[0].retries, ["fail", "fail", "fail"]);
    assert_eq!(runs[0].status, "fail");
}

#[tokio::test(start_paused = true)]
async fn a_run_that_passes_on_retry_is_good_and_keeps_its_bad_attempts() {
    let mut h = Harness::new(
        &check(
            "flaky",
            "every = \"60s\"\nretries = 2\nretry_delay = \"1s\"",
        ),
        1,
    )
    .start(|_| Script::new(100, &[Status::Fail, Status::Error, Status::Pass]));
    let first = h.first_planned("flaky");
    h.until(first + 30_000).await;
    h.stop().await;
    let runs = h.runs("flaky").await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    let run = &runs[0];
    assert_eq!(run.retries, ["fail", "error"]);
    assert_eq!(run.status, "pass");
    // The thresholds see the run's last attempt only.
    assert_eq!((run.state.as_str(), run.to.as_deref()), ("up", Some("up")));
    assert_eq!(h.script("flaky").starts().len(), 3);
}

#[tokio::test(start_paused = true)]
async fn failure_and_success_thresholds_drive_the_state() {
    use Status::*;
    let mut h = Harness::new(
        &check(
            "api",
            "every = \"10s\"\nfailure_threshold = 3\nsuccess_threshold = 2",
        ),
        1,
    )
    .start(|_| Script::new(10, &[Pass, Fail, Fail, Fail, Pass, Pass, Fail, Pass]));
    let first = h.first_planned("api");
    h.until(first + 7 * 10_000 + 5_000).await;
    h.stop().await;
    let runs = h.runs("api").await;
    let seen: Vec<(&str, &str, Option<&str>)> = runs
        .iter()
        .map(|r| (r.status.as_str(), r.state.as_str(), r.to.as_deref()))
        .collect();
    assert_eq!(
        seen,
        [
            ("pass", "up", Some("up")),
            ("fail", "up", None),
            ("fail", "up", None),
            ("fail", "down", Some("down")),
            ("pass", "down", None),
            ("pass", "up", Some("up")),
            ("fail", "up", None),
            ("pass", "up", None),
        ]
    );
    let view = h.shared.sinks.board.get("api").unwrap();
    assert_eq!((view.state, view.runs), (CheckState::Up, 8));
    // The last bad run is kept on the board.
    let last_failure = view.last_failure.unwrap();
    assert_eq!(last_failure.planned_unix_ms - ORIGIN_MS, first + 6 * 10_000);
}

#[tokio::test(start_paused = true)]
async fn runs_inside_a_maintenance_window_carry_its_name() {
    // The window covers 30 s to 90 s after the origin; runs every 20 s
    // take 3 s, and a run is marked when it ends inside the window.
    let start = chrono::DateTime::from_timestamp_millis((ORIGIN_MS + 30_000) as i64).unwrap();
    let end = start + chrono::Duration::seconds(60);
    let text = format!(
        "{}{}[[maintenance]]\nname = \"deploy\"\nchecks = [\"api\"]\nstart = \"{}\"\nend = \"{}\"\n",
        check("api", "every = \"20s\""),
        check("other", "every = \"20s\""),
        start.to_rfc3339(),
        end.to_rfc3339()
    );
    let mut h = Harness::new(&text, 2).start(|_| Script::repeat(3_000, Status::Fail));
    let first = h.first_planned("api");
    h.until(first + 6 * 20_000 + 10_000).await;
    h.stop().await;
    let runs = h.runs("api").await;
    assert_eq!(runs.len(), 7, "{runs:?}");
    let mut inside = 0;
    for r in &runs {
        let expected = (30_000..90_000)
            .contains(&r.end())
            .then(|| "deploy".to_string());
        inside += usize::from(expected.is_some());
        assert_eq!(r.maintenance, expected, "{r:?}");
    }
    assert_eq!(inside, 3, "{runs:?}");
    // Another check is not in the window.
    assert!(
        h.runs("other")
            .await
            .iter()
            .all(|r| r.maintenance.is_none())
    );
}

#[tokio::test(start_paused = true)]
async fn a_stop_before_the_planned_start_starts_no_run() {
    let mut h = Harness::new(&check("idle", "every = \"60s\""), 1)
        .start(|_| Script::repeat(10, Status::Pass));
    let first = h.first_planned("idle");
    assert!(first > 1, "offset {first}");
    h.until(first - 1).await;
    let task = h.tasks.remove("idle").unwrap();
    task.stop();
    task.join(Duration::from_secs(3600)).await;
    // The task ended at once, without waiting for its slot.
    assert_eq!(h.now(), first - 1);
    h.until(first + 120_000).await;
    assert!(h.script("idle").starts().is_empty());
    assert_eq!(h.shared.sinks.board.get("idle").unwrap().runs, 0);
    h.stop().await;
    assert!(h.runs("idle").await.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_stop_while_waiting_for_a_concurrency_slot_starts_no_run() {
    // Both planned at the same instant, room for one: one runs for 30 s,
    // the other waits for the slot.
    let text = format!(
        "{}{}",
        check("a", "cron = \"* * * * *\""),
        check("b", "cron = \"* * * * *\"")
    );
    let mut h = Harness::new(&text, 1).start(|_| Script::repeat(30_000, Status::Pass));
    h.until(61_000).await;
    let (running, waiting) = if h.script("a").starts().is_empty() {
        ("b", "a")
    } else {
        ("a", "b")
    };
    assert_eq!(h.script(running).starts(), [ORIGIN_MS + 60_000]);
    let task = h.tasks.remove(waiting).unwrap();
    task.stop();
    task.join(Duration::from_secs(3600)).await;
    assert_eq!(h.now(), 61_000, "the waiting task ended at once");
    // The slot frees at 90 s: nobody takes it for the stopped check.
    h.until(100_000).await;
    h.stop().await;
    assert!(h.script(waiting).starts().is_empty());
    assert!(h.runs(waiting).await.is_empty());
    assert_eq!(h.runs(running).await.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_stop_cancels_the_retries_not_started_and_a_run_in_flight_finishes() {
    let text = format!(
        "{}{}",
        check(
            "retrying",
            "cron = \"* * * * *\"\nretries = 3\nretry_delay = \"10s\""
        ),
        check("long", "cron = \"* * * * *\"")
    );
    let mut h = Harness::new(&text, 2).start(|name| match name {
        "retrying" => Script::repeat(1_000, Status::Fail),
        _ => Script::repeat(20_000, Status::Pass),
    });
    // At 62 s: "retrying" waits for its first retry, "long" is mid-run.
    h.until(62_000).await;
    h.stop().await;
    // The run in flight finished before the task ended.
    assert_eq!(h.now(), 80_000);
    let long = h.runs("long").await;
    assert_eq!(long.len(), 1);
    assert_eq!((long[0].started, long[0].duration), (60_000, 20_000));
    // The bad run is recorded with its one attempt; no retry started.
    assert_eq!(h.script("retrying").starts(), [ORIGIN_MS + 60_000]);
    let retrying = h.runs("retrying").await;
    assert_eq!(retrying.len(), 1);
    assert_eq!(retrying[0].status, "fail");
    assert!(retrying[0].retries.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_component_that_failed_to_load_makes_every_run_an_error() {
    let mut h = Harness::new(&check("broken", "every = \"10s\""), 1);
    let spec = h.specs.pop().unwrap();
    h.spawn(spec, Err("no such component".into()));
    let first = h.first_planned("broken");
    h.until(first + 25_000).await;
    h.stop().await;
    h.shared.sinks.history.flush().await;
    let stored = h.shared.sinks.history.runs("broken", 10).await.unwrap();
    assert_eq!(stored.len(), 3);
    for v in &stored {
        assert_eq!(v["result"]["status"], "error", "{v}");
        assert_eq!(v["result"]["error"]["kind"], "load", "{v}");
        assert_eq!(v["result"]["error"]["message"], "no such component", "{v}");
    }
    assert_eq!(
        h.shared.sinks.board.get("broken").unwrap().state,
        CheckState::Down
    );
}
