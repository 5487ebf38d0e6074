//! Hostile and buggy checks are contained: each fails with `error` and a
//! reason that names the limit, within that limit, and the host goes on.

use std::sync::Arc;
use std::time::{Duration, Instant};

use vantage::config::{Limits, Mode};
use vantage::policy::AllowList;
use vantage::result::{ErrorKind, Status};
use vantage::runtime::engine::EngineOptions;
use vantage::runtime::{RunSpec, Runtime};

use crate::support::{self, run_json, start_target, wasm};

#[tokio::test(flavor = "multi_thread")]
async fn infinite_loop_is_stopped_at_the_deadline() {
    let started = Instant::now();
    let (out, r) = run_json("fixture_loop", &["--timeout", "1s"]).await;
    assert_eq!(out.code, 3, "{}", out.stdout);
    assert_eq!(r["status"], "error");
    assert_eq!(r["error"]["kind"], "deadline");
    assert!(
        r["error"]["message"].as_str().unwrap().contains("deadline"),
        "{r:#}"
    );
    // The run ends close to its 1 s deadline, not later.
    assert!(r["duration_ms"].as_f64().unwrap() < 2000.0, "{r:#}");
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[tokio::test(flavor = "multi_thread")]
async fn unbounded_allocation_hits_the_memory_cap() {
    let (out, r) = run_json("fixture_alloc", &["--memory", "32MiB"]).await;
    assert_eq!(out.code, 3, "{}", out.stdout);
    assert_eq!(r["error"]["kind"], "memory", "{r:#}");
    let message = r["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("memory limit of 32 MiB exceeded"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn panic_is_reported_with_its_message() {
    let (out, r) = run_json("fixture_panic", &[]).await;
    assert_eq!(out.code, 3, "{}", out.stdout);
    assert_eq!(r["error"]["kind"], "panic", "{r:#}");
    let message = r["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("fixture panicked: the answer was 42"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn fuel_budget_stops_a_busy_check() {
    let (out, r) = run_json("fixture_loop", &["--fuel", "5000000", "--timeout", "20s"]).await;
    assert_eq!(out.code, 3, "{}", out.stdout);
    assert_eq!(r["error"]["kind"], "fuel", "{r:#}");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("fuel exhausted")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cpu_limit_stops_a_busy_check_before_its_timeout() {
    let (out, r) = run_json("fixture_loop", &["--cpu", "300ms", "--timeout", "20s"]).await;
    assert_eq!(out.code, 3, "{}", out.stdout);
    assert_eq!(r["error"]["kind"], "cpu", "{r:#}");
    let message = r["error"]["message"].as_str().unwrap();
    assert!(message.contains("CPU limit of 300ms exceeded"), "{message}");
    // Ended on its CPU time (within a few epoch ticks), not its timeout.
    assert!(r["duration_ms"].as_f64().unwrap() < 5000.0, "{r:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn host_outside_the_allow_list_is_denied() {
    let (out, r) = run_json("fixture_denied", &[]).await;
    assert_eq!(out.code, 2, "{}", out.stdout);
    assert_eq!(r["status"], "fail");
    let summary = r["summary"].as_str().unwrap();
    assert!(summary.contains("denied"), "{summary}");
    assert!(summary.contains("denied.example.invalid"), "{summary}");
    // The host says what it denied, in the run's log and its trace.
    let logs = r["logs"].to_string();
    assert!(logs.contains("denied: "), "{logs}");
    assert!(
        r["timings"]["http"][0]["error"]
            .as_str()
            .unwrap()
            .starts_with("denied")
    );
}

fn spec(name: &str, targets: Vec<String>, allow: &[&str], timeout: Duration) -> RunSpec {
    RunSpec {
        check_name: name.into(),
        targets,
        config: Vec::new(),
        allow: Arc::new(AllowList::parse(allow.iter().copied()).unwrap()),
        secrets: Vec::new(),
        limits: Limits {
            timeout,
            memory: 32 << 20,
            fuel: None,
            cpu: None,
        },
        location: "test".into(),
        mode: Mode::Edge,
        resolver: Arc::default(),
        allow_insecure: false,
        tape: Default::default(),
    }
}

/// One host process, hostile runs then a normal one: the normal run passes.
#[tokio::test(flavor = "multi_thread")]
async fn host_keeps_running_after_hostile_checks() {
    let base = start_target().await;
    let addr = base.trim_start_matches("http://").to_string();
    let runtime = Runtime::new(&EngineOptions::default(), Some(support::cache_dir())).unwrap();
    let http = runtime.load_file(&wasm("http")).await.unwrap();
    let healthy = spec(
        "http",
        vec![format!("{base}/healthz")],
        &[&format!("http://{addr}")],
        Duration::from_secs(10),
    );
    assert_eq!(runtime.run(&http, &healthy).await.status, Status::Pass);

    for (fixture, kind) in [
        ("fixture_loop", ErrorKind::Deadline),
        ("fixture_alloc", ErrorKind::Memory),
        ("fixture_panic", ErrorKind::Panic),
    ] {
        let check = runtime.load_file(&wasm(fixture)).await.unwrap();
        let r = runtime
            .run(
                &check,
                &spec(fixture, vec![], &[], Duration::from_millis(500)),
            )
            .await;
        assert_eq!(r.status, Status::Error, "{fixture}: {r:?}");
        assert_eq!(r.error.as_ref().unwrap().kind, kind, "{fixture}: {r:?}");
        // The next normal run is unaffected.
        let after = runtime.run(&http, &healthy).await;
        assert_eq!(after.status, Status::Pass, "after {fixture}: {after:?}");
    }
}

/// Runs are isolated: many concurrent runs of the same check do not share state.
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_runs_are_independent() {
    let runtime =
        Arc::new(Runtime::new(&EngineOptions::default(), Some(support::cache_dir())).unwrap());
    let echo = Arc::new(runtime.load_file(&wasm("fixture_echo")).await.unwrap());
    let mut tasks = Vec::new();
    for i in 0..16 {
        let (runtime, echo) = (runtime.clone(), echo.clone());
        tasks.push(tokio::spawn(async move {
            let mut s = spec(
                "echo",
                vec![format!("target-{i}")],
                &[],
                Duration::from_secs(10),
            );
            s.config = vec![("n".into(), i.to_string())];
            (i, runtime.run(&echo, &s).await)
        }));
    }
    for t in tasks {
        let (i, r) = t.await.unwrap();
        assert_eq!(r.status, Status::Pass, "{r:?}");
        let text = serde_json::to_string(&r.assertions).unwrap();
        assert!(text.contains(&format!("target-{i}")), "{text}");
        assert!(
            !text.contains(&format!("target-{}", (i + 1) % 16)),
            "{text}"
        );
    }
}

/// A restart does not recompile: the second load of the same component in a
/// new runtime comes from the on-disk cache.
#[tokio::test(flavor = "multi_thread")]
async fn compiled_components_are_cached_on_disk() {
    use vantage::runtime::cache::CacheOutcome;
    let dir = tempfile::tempdir().unwrap();
    let first = Runtime::new(&EngineOptions::default(), Some(dir.path().to_path_buf())).unwrap();
    let loaded = first.load_file(&wasm("fixture_echo")).await.unwrap();
    assert_eq!(loaded.cache, CacheOutcome::Compiled);
    let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(files.len(), 1, "one .cwasm file");
    drop(first);

    let second = Runtime::new(&EngineOptions::default(), Some(dir.path().to_path_buf())).unwrap();
    let again = second.load_file(&wasm("fixture_echo")).await.unwrap();
    assert_eq!(again.cache, CacheOutcome::Hit);
    assert_eq!(again.digest, loaded.digest);
    let r = second
        .run(&again, &spec("echo", vec![], &[], Duration::from_secs(5)))
        .await;
    assert_eq!(r.status, Status::Pass);

    // A corrupt cache entry is ignored and replaced, not fatal.
    drop((again, second));
    let entry = std::fs::read_dir(dir.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::write(&entry, b"garbage").unwrap();
    let third = Runtime::new(&EngineOptions::default(), Some(dir.path().to_path_buf())).unwrap();
    assert_eq!(
        third.load_file(&wasm("fixture_echo")).await.unwrap().cache,
        CacheOutcome::Compiled
    );
}
