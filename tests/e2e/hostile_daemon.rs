//! Hostile checks inside the real `vantage daemon`, scheduled beside
//! well-behaved ones (issue 5): every hostile check ends each run with
//! `error` or `fail` and a reason naming the limit or rule it hit, the
//! daemon stays up, and the well-behaved checks pass every run and keep
//! starting on time.
//!
//! Two daemons, one after the other, with the same well-behaved checks
//! (`fixture_noop`, and the `http` check against a loopback target with a
//! body regex), every 1 s: a baseline without hostile checks, then the same
//! with the hostile corpus beside them (an infinite loop, unbounded memory
//! growth, a huge single buffer, a stack overflow, a log flood, a huge
//! result, a request flood and a retry loop around denied host calls) on
//! short timeouts. Start lateness comes from the history (`lateness_ms` of
//! every run, `/api/v1/checks/{name}/runs`): the well-behaved checks' p99
//! must stay under 50 ms, the daemon's own target for start lateness
//! (BENCHMARKS.md, 10,000 checks) — or 4× the baseline's p99 if the machine
//! is so loaded that the baseline itself is slower.
//!
//! What keeps it there is the guest pool (`vantage::runtime::pool`): guest
//! code runs on its own threads, so the scheduler's timers are not held up
//! behind looping guests. Measured on the 2-core build machine (debug build
//! of the daemon, as the tests run it): p99 2.2 ms alone, 4.5 ms beside the
//! hostile checks; 107–170 ms beside them before the guest pool, when guests
//! shared the scheduler's worker threads.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::servers::{free_port, get_json, http_get, wait_until};
use crate::support::{cache_dir, start_target, wasm};

/// Well-behaved checks: this many of each kind.
const NOOP_CHECKS: usize = 6;
const HTTP_CHECKS: usize = 4;
/// How long each daemon runs its checks once started.
const BASELINE: Duration = Duration::from_secs(6);
const HOSTILE_PHASE: Duration = Duration::from_secs(15);
/// The absolute bound on the well-behaved checks' lateness p99: the
/// daemon's target at scale (issue 5, BENCHMARKS.md).
const LATENESS_P99_BOUND_MS: f64 = 50.0;

/// A `vantage daemon` child process, killed by PID on drop.
struct Daemon {
    child: Child,
    port: u16,
    stderr: std::path::PathBuf,
}

impl Daemon {
    fn start(dir: &Path, checks: &str) -> Daemon {
        let port = free_port();
        let config = dir.join("vantage.toml");
        std::fs::write(
            &config,
            format!(
                "[global]\nlocation = \"e2e-hostile\"\nlisten = \"127.0.0.1:{port}\"\n\
                 data_dir = \"{}\"\n{checks}",
                dir.join("data").display()
            ),
        )
        .unwrap();
        let stderr = dir.join("daemon.stderr");
        let child = Command::new(crate::support::vantage_bin())
            .args(["daemon", "--no-watch", "--config"])
            .arg(&config)
            .env("VANTAGE_CACHE_DIR", cache_dir())
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .env_remove("VANTAGE_LISTEN")
            .env_remove("VANTAGE_DATA_DIR")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("starting vantage daemon");
        let mut daemon = Daemon {
            child,
            port,
            stderr,
        };
        let healthz = format!("{}/healthz", daemon.url());
        wait_until("the daemon's start", Duration::from_secs(60), || {
            if let Ok(Some(status)) = daemon.child.try_wait() {
                panic!("the daemon exited at start-up ({status})");
            }
            if !daemon.log().contains("status page http://") {
                return (None, "no start-up line on stderr yet".to_string());
            }
            match http_get(&healthz) {
                Ok((200, body)) => (Some(()), body),
                other => (None, format!("{other:?}")),
            }
        });
        daemon
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn api(&self, path: &str) -> Value {
        get_json(&format!("{}{path}", self.url()))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// The stored runs of `check`, newest first.
    fn runs(&self, check: &str) -> Vec<Value> {
        self.api(&format!("/api/v1/checks/{check}/runs?limit=1000"))
            .as_array()
            .unwrap()
            .clone()
    }

    /// The process is running and `/healthz` answers 200.
    fn assert_up(&mut self) {
        assert!(
            self.child.try_wait().unwrap().is_none(),
            "the daemon exited"
        );
        let (status, body) = http_get(&format!("{}/healthz", self.url())).unwrap();
        assert_eq!(status, 200, "/healthz: {body}");
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = self.log();
            // The log flood is capped, but keep the failure output readable.
            let tail = &log[log.len().saturating_sub(20_000)..];
            eprintln!("---- vantage daemon stderr (tail) ----\n{tail}\n---- end ----");
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One `[[check]]` table: `component` is a fixture or check name.
fn check(name: &str, component: &str, every: &str, timeout: &str, extra: &str) -> String {
    format!(
        "\n[[check]]\nname = \"{name}\"\ncomponent = \"{}\"\nevery = \"{every}\"\n\
         timeout = \"{timeout}\"\n{extra}\n",
        wasm(component).display()
    )
}

/// The well-behaved checks, every 1 s, and their names.
fn well_behaved(target: &str) -> (String, Vec<String>) {
    let mut text = String::new();
    let mut names = Vec::new();
    for i in 0..NOOP_CHECKS {
        let name = format!("noop-{i}");
        text += &check(&name, "fixture_noop", "1s", "1s", "");
        names.push(name);
    }
    for i in 0..HTTP_CHECKS {
        let name = format!("http-{i}");
        text += &check(
            &name,
            "http",
            "1s",
            "1s",
            &format!(
                "targets = [\"{target}/healthz\"]\nallow = [\"{{target}}\"]\n\
                 [check.config]\nexpect.status = [200]\n\
                 expect.body_matches = ['\"status\":\\s*\"ok\"']\n"
            ),
        );
        names.push(name);
    }
    (text, names)
}

/// A hostile check: its config and what its runs must end with.
struct Hostile {
    name: &'static str,
    table: String,
    /// `error` or `fail`.
    status: &'static str,
    /// The error kind (`None` for `fail`).
    kind: Option<&'static str>,
    /// Text the run's reason or summary must contain: the limit or rule,
    /// named.
    reason: &'static str,
}

fn hostile_corpus(target: &str) -> Vec<Hostile> {
    let behaviour = |name: &str, every: &str, timeout: &str, memory: &str, config: &str| {
        check(
            name,
            "fixture_hostile",
            every,
            timeout,
            &format!("memory = \"{memory}\"\n[check.config]\n{config}"),
        )
    };
    vec![
        Hostile {
            name: "hostile-loop",
            table: check("hostile-loop", "fixture_loop", "2s", "1s", ""),
            status: "error",
            kind: Some("deadline"),
            reason: "deadline exceeded",
        },
        Hostile {
            name: "hostile-memory-growth",
            table: check(
                "hostile-memory-growth",
                "fixture_alloc",
                "2s",
                "1s",
                "memory = \"32MiB\"",
            ),
            status: "error",
            kind: Some("memory"),
            reason: "memory limit of 32 MiB exceeded",
        },
        Hostile {
            name: "hostile-huge-buffer",
            table: behaviour(
                "hostile-huge-buffer",
                "2s",
                "1s",
                "32MiB",
                "behaviour = \"alloc-huge\"\nbytes = \"1610612736\"\n",
            ),
            status: "error",
            kind: Some("memory"),
            reason: "memory limit of 32 MiB exceeded (the check tried to grow its memory to 1.5 GiB)",
        },
        Hostile {
            name: "hostile-stack-overflow",
            table: behaviour(
                "hostile-stack-overflow",
                "2s",
                "1s",
                "32MiB",
                "behaviour = \"recurse\"\n",
            ),
            status: "error",
            kind: Some("trap"),
            reason: "call stack exhausted",
        },
        Hostile {
            name: "hostile-log-flood",
            table: behaviour(
                "hostile-log-flood",
                "2s",
                "1s",
                "32MiB",
                "behaviour = \"log-flood\"\n",
            ),
            status: "error",
            kind: Some("deadline"),
            reason: "deadline exceeded",
        },
        Hostile {
            name: "hostile-huge-result",
            table: behaviour(
                "hostile-huge-result",
                "2s",
                "1s",
                "64MiB",
                "behaviour = \"huge-result\"\nlabels = \"100000\"\n",
            ),
            status: "error",
            kind: Some("result-too-large"),
            reason: "result too large: 100000 labels (the limit is 64 per run)",
        },
        Hostile {
            name: "hostile-request-flood",
            table: check(
                "hostile-request-flood",
                "fixture_hostile",
                // 100 real exchanges and 4,900 refusals: room for a loaded
                // machine (5 s was exceeded while compilers ran beside it).
                "10s",
                "10s",
                &format!(
                    "allow = [\"{target}\"]\n[check.config]\nbehaviour = \"request-flood\"\n\
                     urls = [\"{target}/healthz\"]\ncount = \"5000\"\n"
                ),
            ),
            status: "fail",
            kind: None,
            // Exactly the per-run cap of 100 outbound connections is
            // answered (the failing assertion's detail and the summary both
            // say so; the summary also quotes the refusal, but under load a
            // record was seen without it).
            reason: "100 of 5000",
        },
        Hostile {
            name: "hostile-retry-loop",
            table: behaviour(
                "hostile-retry-loop",
                "2s",
                "1s",
                "32MiB",
                "behaviour = \"retry-loop\"\nurls = [\"http://10.255.255.1/\"]\n",
            ),
            status: "error",
            kind: Some("deadline"),
            reason: "deadline exceeded",
        },
    ]
}

/// Every start lateness (ms) of `names`' runs, after checking that each
/// check ran at least `min_runs` times and passed every run.
fn well_behaved_lateness(daemon: &Daemon, names: &[String], min_runs: usize) -> Vec<f64> {
    let mut lateness = Vec::new();
    for name in names {
        let runs = daemon.runs(name);
        assert!(
            runs.len() >= min_runs,
            "{name} ran {} times, expected at least {min_runs}",
            runs.len()
        );
        for run in &runs {
            assert_eq!(
                run["result"]["status"], "pass",
                "{name}: a well-behaved run did not pass: {}",
                run["reason"]
            );
            lateness.push(run["lateness_ms"].as_f64().unwrap());
        }
    }
    lateness
}

fn p99(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let rank = ((values.len() as f64) * 0.99).ceil() as usize;
    values[rank.clamp(1, values.len()) - 1]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_checks_in_the_daemon_leave_the_others_on_time() {
    let target = start_target().await;
    let (well, names) = well_behaved(&target);

    // Baseline: the well-behaved checks alone.
    let baseline_p99 = {
        let dir = tempfile::tempdir().unwrap();
        let mut daemon = Daemon::start(dir.path(), &well);
        tokio::time::sleep(BASELINE).await;
        daemon.assert_up();
        let lateness = well_behaved_lateness(&daemon, &names, 3);
        p99(lateness)
    };

    // The same beside the hostile corpus.
    let corpus = hostile_corpus(&target);
    let config = corpus.iter().fold(well.clone(), |text, h| text + &h.table);
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::start(dir.path(), &config);
    tokio::time::sleep(HOSTILE_PHASE).await;
    daemon.assert_up();

    for hostile in &corpus {
        let runs = daemon.runs(hostile.name);
        assert!(!runs.is_empty(), "{} never ran", hostile.name);
        for run in &runs {
            let result = &run["result"];
            // A failed run's reason is its failing assertions; the summary
            // says which refusal came first.
            let reason = format!(
                "{} | {}",
                run["reason"].as_str().unwrap_or_default(),
                result["summary"].as_str().unwrap_or_default()
            );
            assert_eq!(
                result["status"], hostile.status,
                "{}: {reason}",
                hostile.name
            );
            if let Some(kind) = hostile.kind {
                assert_eq!(result["error"]["kind"], kind, "{}: {reason}", hostile.name);
            }
            assert!(
                reason.contains(hostile.reason),
                "{}: the reason does not name the limit: {reason}",
                hostile.name
            );
        }
    }

    let lateness = well_behaved_lateness(&daemon, &names, 10);
    let hostile_p99 = p99(lateness.clone());
    let bound = LATENESS_P99_BOUND_MS.max(4.0 * baseline_p99);
    eprintln!(
        "start lateness of the well-behaved checks: p99 {baseline_p99:.1} ms alone, \
         {hostile_p99:.1} ms beside the hostile checks (max {:.1} ms, {} runs); bound {bound:.0} ms",
        lateness.iter().copied().fold(0.0, f64::max),
        lateness.len()
    );
    assert!(
        hostile_p99 < bound,
        "the hostile checks delayed the others: lateness p99 {hostile_p99:.1} ms \
         (baseline {baseline_p99:.1} ms, bound {bound:.0} ms)"
    );

    // Still up, still answering its API after all of it.
    daemon.assert_up();
    assert_eq!(
        daemon.api("/api/v1/checks").as_array().unwrap().len(),
        names.len() + corpus.len()
    );
}

/// Pure loopers in the fair-share scenario (issue 12): checks that compute
/// until their deadline, every run.
const LOOPERS: usize = 8;
/// Well-behaved checks beside them, every 1 s.
const MANY_NOOP_CHECKS: usize = 60;
/// How long the fair-share daemon runs its checks once started.
const FAIR_SHARE_PHASE: Duration = Duration::from_secs(12);
/// The bound on the well-behaved checks' lateness p99 beside the loopers
/// (issue 12: 100 ms with 8 loopers on 2 cores).
const FAIR_SHARE_P99_BOUND_MS: f64 = 100.0;

/// Eight checks that loop until their deadline, every run, beside many
/// well-behaved ones, under a concurrency cap of 16 (so the low lane's
/// budget is 2 runs). Before the guest pool had lanes, the loopers took turns with
/// everyone else on the guest threads in 10 ms slices and held 8 of the 16
/// slots under the cap: the others waited to start. Now a looper's run
/// moves to the low-priority lane after 50 ms of CPU, gives its slot under
/// the cap back, and its later runs start there; the others keep starting
/// on time. A ninth looper has a `cpu` limit and ends on it, not on its
/// timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopers_in_the_daemon_do_not_make_the_others_late() {
    let target = start_target().await;
    let (mut text, mut names) = well_behaved(&target);
    for i in 0..MANY_NOOP_CHECKS {
        let name = format!("many-{i}");
        text += &check(&name, "fixture_noop", "1s", "1s", "");
        names.push(name);
    }
    let loopers: Vec<String> = (0..LOOPERS).map(|i| format!("looper-{i}")).collect();
    for name in &loopers {
        text += &check(name, "fixture_loop", "1s", "1s", "");
    }
    text += &check("looper-cpu", "fixture_loop", "2s", "30s", "cpu = \"200ms\"");
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::start(dir.path(), &format!("concurrency = 16\n{text}"));
    tokio::time::sleep(FAIR_SHARE_PHASE).await;
    daemon.assert_up();

    for name in &loopers {
        let runs = daemon.runs(name);
        // They queue for the low lane's 2 slots: a few runs each.
        assert!(!runs.is_empty(), "{name} never ran");
        for run in &runs {
            assert_eq!(run["result"]["error"]["kind"], "deadline", "{name}: {run}");
        }
    }
    let runs = daemon.runs("looper-cpu");
    assert!(!runs.is_empty(), "looper-cpu never ran");
    for run in &runs {
        let result = &run["result"];
        assert_eq!(result["error"]["kind"], "cpu", "{result}");
        let message = result["error"]["message"].as_str().unwrap();
        assert!(message.contains("CPU limit of 200ms exceeded"), "{message}");
    }
    let log = daemon.log();
    assert!(
        log.contains("low-priority lane"),
        "no looper was moved to the low-priority lane"
    );

    let lateness = well_behaved_lateness(&daemon, &names, 8);
    let p99 = p99(lateness.clone());
    eprintln!(
        "start lateness of {} well-behaved checks beside {LOOPERS} loopers (concurrency 16): \
         p99 {p99:.1} ms, max {:.1} ms, {} runs; bound {FAIR_SHARE_P99_BOUND_MS:.0} ms",
        names.len(),
        lateness.iter().copied().fold(0.0, f64::max),
        lateness.len()
    );
    assert!(
        p99 <= FAIR_SHARE_P99_BOUND_MS,
        "the loopers delayed the others: lateness p99 {p99:.1} ms (bound {FAIR_SHARE_P99_BOUND_MS:.0} ms)"
    );
}
