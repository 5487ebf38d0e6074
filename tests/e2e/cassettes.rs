//! Record and replay: `vantage run --record` against real servers on
//! 127.0.0.1, then `vantage test` with the servers out of reach (the
//! cassette's addresses moved to a port nothing listens on), edited answers
//! for failure paths, `--update`, a check that diverges from its cassette,
//! and the cassettes committed beside the official checks
//! (`checks/cassettes/<check>/`).

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::dns_server;
use crate::support::{
    FLOW_PASSWORD, assertion, assertion_names, repo, secret_file, start_target, vantage_async, wasm,
};
use crate::tls_servers::{LOCAL, intermediate, leaf, root, start_banner, start_tls};

/// `vantage run CHECK --json --record CASSETTE ARGS…`: the live result.
async fn record(check: &str, cassette: &Path, args: &[&str]) -> Value {
    let mut all = vec![
        "run".to_string(),
        wasm(check).display().to_string(),
        "--json".into(),
        "--record".into(),
        cassette.display().to_string(),
    ];
    all.extend(args.iter().map(|a| a.to_string()));
    let out = vantage_async(all).await;
    assert!(
        out.stderr.contains("recorded"),
        "no recording reported: {}",
        out.stderr
    );
    out.json()
}

/// `vantage test CHECK CASSETTES… EXTRA…`: exit code and stdout.
async fn replay(check: &Path, cassettes: &[PathBuf], extra: &[&str]) -> (i32, String) {
    let mut all = vec!["test".to_string(), check.display().to_string()];
    all.extend(cassettes.iter().map(|c| c.display().to_string()));
    all.extend(extra.iter().map(|a| a.to_string()));
    let out = vantage_async(all).await;
    (out.code, format!("{}{}", out.stdout, out.stderr))
}

/// The replayed result of one cassette (`vantage test --json`).
async fn replayed_result(check: &str, cassette: &Path) -> (bool, Value) {
    let (_, out) = replay(&wasm(check), &[cassette.to_path_buf()], &["--json"]).await;
    let line: Value = serde_json::from_str(out.lines().next().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}: {out}"));
    (line["passed"] == true, line["result"].clone())
}

fn read(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn write(path: &Path, value: &Value) {
    std::fs::write(path, serde_json::to_string_pretty(value).unwrap()).unwrap();
}

/// The cassette at `path` with every `127.0.0.1:PORT` of the recording
/// moved to port 9 (discard; nothing listens there): a replay that touched
/// the network would fail.
fn out_of_reach(path: &Path, port: u16) {
    let text = std::fs::read_to_string(path).unwrap();
    let moved = text.replace(&format!("127.0.0.1:{port}"), "127.0.0.1:9");
    assert_ne!(text, moved, "the cassette names no 127.0.0.1:{port}");
    std::fs::write(path, moved).unwrap();
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':').next().unwrap().parse().unwrap()
}

/// The interactions of a cassette whose `call` is `call`.
fn calls<'a>(cassette: &'a Value, call: &str) -> Vec<&'a Value> {
    cassette["interactions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["call"] == call)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_recorded_flow_keeps_no_secret_and_replays_with_the_servers_gone() {
    let base = start_target().await;
    let (_dir, secret) = secret_file("password", FLOW_PASSWORD);
    let dir = tempfile::tempdir().unwrap();
    let cassette = dir.path().join("flow.json");
    let live = record(
        "api_flow",
        &cassette,
        &[
            "--target",
            &base,
            "--secret",
            &secret,
            "--set",
            "login.username=monitor",
            "--set",
            "expect.json./user/name=monitor",
        ],
    )
    .await;
    assert_eq!(live["status"], "pass", "{live:#}");
    let text = std::fs::read_to_string(&cassette).unwrap();
    assert!(!text.contains(FLOW_PASSWORD), "the password was recorded");
    assert!(
        !text.contains("hunter2"),
        "a fragment of the password was recorded"
    );
    let c = read(&cassette);
    assert_eq!(c["check"]["secrets"], serde_json::json!(["password"]));
    let fetches = calls(&c, "http.fetch");
    assert_eq!(fetches.len(), 3, "{c:#}");
    // The login's body carried the password: recorded as text, redacted.
    let login = fetches[0]["request"]["body"].as_str().unwrap();
    assert!(login.contains("[redacted]"), "{login}");
    // Every exchange keeps its timings, as the run's HTTP trace had them.
    assert!(fetches[0]["http"][0]["connect_ms"].as_f64().unwrap() > 0.0);
    assert!(c["interactions"][0]["call"].as_str().is_some());
    assert_eq!(c["expect"]["status"], "pass");

    out_of_reach(&cassette, port_of(&base));
    let (passed, replayed) = replayed_result("api_flow", &cassette).await;
    assert!(passed, "{replayed:#}");
    assert_eq!(assertion_names(&replayed), assertion_names(&live));
    // The replayed run reports the recorded exchanges and their timings.
    let http = replayed["timings"]["http"].as_array().unwrap();
    assert_eq!(http.len(), 3, "{replayed:#}");
    assert_eq!(
        http[0]["connect_ms"],
        live["timings"]["http"][0]["connect_ms"]
    );
    let (code, out) = replay(&wasm("api_flow"), &[cassette], &[]).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("ok ") && out.contains("1 passed, 0 failed"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_edited_answer_tests_a_failure_path_and_update_rewrites_the_expectation() {
    let base = start_target().await;
    let dir = tempfile::tempdir().unwrap();
    let up = dir.path().join("up.json");
    let live = record("http", &up, &["--target", &format!("{base}/healthz")]).await;
    assert_eq!(live["status"], "pass", "{live:#}");

    // The same run, had the server answered 503.
    let down = dir.path().join("down.json");
    let mut c = read(&up);
    for i in c["interactions"].as_array_mut().unwrap() {
        if i["call"] == "http.fetch" {
            i["response"]["Ok"]["status"] = 503.into();
        }
    }
    write(&down, &c);
    let (code, out) = replay(&wasm("http"), &[up.clone(), down.clone()], &[]).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(&format!("ok {}", up.display())), "{out}");
    assert!(out.contains(&format!("FAILED {}", down.display())), "{out}");
    assert!(out.contains("status: expected pass, got fail"), "{out}");
    assert!(
        out.contains("assertion \"status in 2xx\": expected pass, got fail"),
        "{out}"
    );
    assert!(out.contains("1 passed, 1 failed"), "{out}");

    // `--update` takes the new verdict as the expectation; it then passes.
    let (code, out) = replay(&wasm("http"), std::slice::from_ref(&down), &["--update"]).await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(read(&down)["expect"]["status"], "fail");
    let (code, out) = replay(&wasm("http"), &[down], &[]).await;
    assert_eq!(code, 0, "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_check_that_asks_for_something_else_fails_naming_the_call() {
    let base = start_target().await;
    let dir = tempfile::tempdir().unwrap();
    let cassette = dir.path().join("c.json");
    record("http", &cassette, &["--target", &format!("{base}/healthz")]).await;
    let mut c = read(&cassette);
    c["check"]["targets"] = serde_json::json!([format!("{base}/other")]);
    write(&cassette, &c);
    let (passed, r) = replayed_result("http", &cassette).await;
    assert!(!passed);
    assert_eq!(r["status"], "error", "{r:#}");
    let reason = r["error"]["message"].as_str().unwrap();
    assert!(
        reason.contains("replay: call #")
            && reason.contains(&format!("GET {base}/other"))
            && reason.contains(&format!("the cassette has http.fetch GET {base}/healthz")),
        "{reason}"
    );
    // A cassette that is not one is refused by name.
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"interactions\": []}").unwrap();
    let (code, out) = replay(&wasm("http"), &[bad], &[]).await;
    assert_ne!(code, 0);
    assert!(out.contains("bad.json: not a cassette"), "{out}");
}

/// Record `check` with `args` against a live server on `port`, move the
/// cassette out of reach, replay it: the same verdict, assertions and TLS
/// facts.
async fn round_trip(check: &str, port: u16, args: &[&str]) -> (Value, Value, Value) {
    let dir = tempfile::tempdir().unwrap();
    let cassette = dir.path().join(format!("{check}.json"));
    let live = record(check, &cassette, args).await;
    let c = read(&cassette);
    out_of_reach(&cassette, port);
    let (passed, replayed) = replayed_result(check, &cassette).await;
    assert!(passed, "{check}: {replayed:#}");
    assert_eq!(replayed["status"], live["status"], "{check}");
    assert_eq!(
        assertion_names(&replayed),
        assertion_names(&live),
        "{check}"
    );
    // The same handshakes (at the address the cassette was moved to).
    let moved = live["timings"]["tls"]
        .to_string()
        .replace(&format!("127.0.0.1:{port}"), "127.0.0.1:9");
    assert_eq!(
        replayed["timings"]["tls"].to_string(),
        moved,
        "{check}: the TLS trace"
    );
    (live, replayed, c)
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_dns_and_tcp_checks_replay_as_recorded() {
    // TLS: the chain, its verdict and the days left come back from the
    // cassette (the replay's clock is the recording's).
    let ca = root("Replay Root");
    let inter = intermediate("Replay Intermediate", &ca, -1, 1000);
    let l = leaf(LOCAL, &inter, -1, 90);
    let port = start_tls(vec![l.der, inter.der.clone()], l.key).await;
    let bundle = format!("ca_bundle={}", ca.pem);
    let target = format!("tls://127.0.0.1:{port}");
    let (live, replayed, c) =
        round_trip("tls", port, &["--target", &target, "--set", &bundle]).await;
    assert_eq!(live["status"], "pass", "{live:#}");
    assert_eq!(calls(&c, "tls.inspect").len(), 1, "{c:#}");
    assert_eq!(
        assertion(&replayed, "chain valid for at least")["detail"],
        assertion(&live, "chain valid for at least")["detail"]
    );
    assert_eq!(replayed["timings"]["tls"][0]["verdict"], "valid");

    // DNS: the answer, its TTLs and sections.
    let server = dns_server::start().await;
    let (live, _, c) = round_trip(
        "dns",
        server.port(),
        &[
            "--allow",
            &format!("dns://127.0.0.1:{}", server.port()),
            "--set",
            &format!("server={}", server.addr()),
            "--set",
            "name=vantage.test",
            "--set",
            "type=A",
        ],
    )
    .await;
    assert_eq!(live["status"], "pass", "{live:#}");
    let dns = calls(&c, "dns.resolve");
    assert_eq!(dns.len(), 1);
    assert!(
        dns[0]["what"]
            .as_str()
            .unwrap()
            .starts_with("A vantage.test @ 127.0.0.1:"),
        "{:#}",
        dns[0]
    );

    // TCP: the conversation, received bytes as text.
    let port = start_banner("SSH-2.0-Replay\r\n", "echo ").await;
    let (live, _, c) = round_trip(
        "tcp",
        port,
        &[
            "--target",
            &format!("tcp://127.0.0.1:{port}"),
            "--set",
            "read_banner=true",
            "--set",
            r"expect=^SSH-2\.0-",
        ],
    )
    .await;
    assert_eq!(live["status"], "pass", "{live:#}");
    let tcp = calls(&c, "tcp.probe");
    assert_eq!(tcp.len(), 1);
    let text = serde_json::to_string(tcp[0]).unwrap();
    assert!(text.contains("SSH-2.0-Replay"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn wasi_http_requests_are_timed_traced_and_replayed() {
    let base = start_target().await;
    let dir = tempfile::tempdir().unwrap();
    let cassette = dir.path().join("wasi.json");
    let live = record(
        "fixture_wasi_http",
        &cassette,
        &["--target", &format!("{base}/healthz")],
    )
    .await;
    assert_eq!(live["status"], "pass", "{live:#}");
    // A standard-library request is in the run's HTTP trace with its phases.
    let http = live["timings"]["http"].as_array().unwrap();
    assert_eq!(http.len(), 1, "{live:#}");
    assert_eq!(http[0]["status"], 200);
    assert!(http[0]["connect_ms"].as_f64().unwrap() > 0.0, "{live:#}");
    assert!(http[0]["total_ms"].as_f64().unwrap() > 0.0, "{live:#}");
    let c = read(&cassette);
    assert_eq!(calls(&c, "wasi-http.request").len(), 1, "{c:#}");
    out_of_reach(&cassette, port_of(&base));
    let (passed, replayed) = replayed_result("fixture_wasi_http", &cassette).await;
    assert!(passed, "{replayed:#}");
    assert_eq!(replayed["timings"]["http"][0]["status"], 200);
}

/// Every official check's committed cassettes replay to their expectation:
/// the unit tests of the official checks (`checks/cassettes/<check>/`).
#[tokio::test(flavor = "multi_thread")]
async fn the_official_checks_pass_their_committed_cassettes() {
    let root = repo().join("checks/cassettes");
    let mut tested = 0;
    for entry in std::fs::read_dir(&root).unwrap() {
        let dir = entry.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        let check = dir.file_name().unwrap().to_str().unwrap().to_string();
        let mut cassettes: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        cassettes.sort();
        assert!(!cassettes.is_empty(), "{} has no cassette", dir.display());
        let (code, out) = replay(&wasm(&check), &cassettes, &[]).await;
        assert_eq!(code, 0, "{check}: {out}");
        assert!(
            out.contains(&format!("{} passed, 0 failed", cassettes.len())),
            "{check}: {out}"
        );
        tested += cassettes.len();
    }
    assert!(tested >= 6, "only {tested} committed cassettes");
}

/// Not a test: the tool that records `checks/cassettes/` against the test
/// servers and derives the failure variants by editing one answer each.
/// Run it after a deliberate change of an official check:
/// `VANTAGE_RECORD_CASSETTES=1 cargo nextest run --workspace -E
/// 'test(record_the_committed_cassettes)' --run-ignored only`.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "a tool: records checks/cassettes (VANTAGE_RECORD_CASSETTES=1)"]
async fn record_the_committed_cassettes() {
    if std::env::var_os("VANTAGE_RECORD_CASSETTES").is_none() {
        return;
    }
    let base_dir = repo().join("checks/cassettes");
    let at = |check: &str, name: &str| {
        let dir = base_dir.join(check);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    };
    /// A variant of `from`: `edit` applied, its expectation taken from a
    /// replay, which must end as `status`.
    async fn variant(check: &str, from: &Path, to: &Path, status: &str, edit: impl Fn(&mut Value)) {
        let mut c = read(from);
        edit(&mut c);
        write(to, &c);
        let (code, out) = replay(&wasm(check), &[to.to_path_buf()], &["--update"]).await;
        assert_eq!(code, 0, "{out}");
        let mut c = read(to);
        assert_eq!(c["expect"]["status"], status, "{}: {c:#}", to.display());
        c["check"]["component"] = Value::Null;
        write(to, &c);
    }
    fn first_answer<'a>(c: &'a mut Value, call: &str) -> &'a mut Value {
        let i = c["interactions"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|i| i["call"] == call)
            .unwrap();
        &mut i["response"]
    }
    fn unpinned(path: &Path) {
        let mut c = read(path);
        c["check"]["component"] = Value::Null;
        write(path, &c);
    }

    let base = start_target().await;
    let up = at("http", "up.json");
    record("http", &up, &["--target", &format!("{base}/healthz")]).await;
    unpinned(&up);
    variant("http", &up, &at("http", "down-503.json"), "fail", |c| {
        first_answer(c, "http.fetch")["Ok"]["status"] = 503.into();
    })
    .await;
    variant("http", &up, &at("http", "refused.json"), "fail", |c| {
        *first_answer(c, "http.fetch") = serde_json::json!({"Err": {
            "error": {"Connect": "connection refused"},
            "response": null,
            "timings": {"resolve_ms": 0.0, "connect_ms": 0.4, "tls_ms": 0.0,
                        "processing_ms": 0.0, "transfer_ms": 0.0, "total_ms": 0.4},
            "redirects": [],
            "tls": null
        }});
    })
    .await;

    let (_dir, secret) = secret_file("password", FLOW_PASSWORD);
    let ok = at("api_flow", "ok.json");
    record(
        "api_flow",
        &ok,
        &[
            "--target",
            &base,
            "--secret",
            &secret,
            "--set",
            "login.username=monitor",
            "--set",
            "expect.json./user/name=monitor",
        ],
    )
    .await;
    unpinned(&ok);
    variant(
        "api_flow",
        &ok,
        &at("api_flow", "login-refused.json"),
        "fail",
        |c| {
            let answer = &mut first_answer(c, "http.fetch")["Ok"];
            answer["status"] = 401.into();
            answer["body"] = "{\"error\":\"bad credentials\"}".into();
        },
    )
    .await;

    let ca = root("Cassette Root");
    let inter = intermediate("Cassette Intermediate", &ca, -1, 3650);
    let l = leaf(LOCAL, &inter, -1, 90);
    let port = start_tls(vec![l.der, inter.der.clone()], l.key).await;
    let valid = at("tls", "valid.json");
    record(
        "tls",
        &valid,
        &[
            "--target",
            &format!("tls://127.0.0.1:{port}"),
            "--set",
            &format!("ca_bundle={}", ca.pem),
        ],
    )
    .await;
    unpinned(&valid);
    // The same handshake, 85 days later: 5 days left.
    variant("tls", &valid, &at("tls", "expiring.json"), "fail", |c| {
        let now = first_answer(c, "clock.wall-now");
        *now = (now.as_u64().unwrap() + 85 * 86_400_000).into();
    })
    .await;

    let server = dns_server::start().await;
    let a = at("dns", "a-record.json");
    record(
        "dns",
        &a,
        &[
            "--allow",
            &format!("dns://127.0.0.1:{}", server.port()),
            "--set",
            &format!("server={}", server.addr()),
            "--set",
            "name=vantage.test",
            "--set",
            "type=A",
        ],
    )
    .await;
    unpinned(&a);
    variant("dns", &a, &at("dns", "timeout.json"), "fail", |c| {
        *first_answer(c, "dns.resolve") = serde_json::json!({"Err": {"Timeout": "query"}});
    })
    .await;

    let port = start_banner("SSH-2.0-Cassette\r\n", "echo ").await;
    let banner = at("tcp", "banner.json");
    record(
        "tcp",
        &banner,
        &[
            "--target",
            &format!("tcp://127.0.0.1:{port}"),
            "--set",
            "read_banner=true",
            "--set",
            r"expect=^SSH-2\.0-",
        ],
    )
    .await;
    unpinned(&banner);
    variant("tcp", &banner, &at("tcp", "refused.json"), "fail", |c| {
        *first_answer(c, "tcp.probe") =
            serde_json::json!({"Err": {"Connect": "connection refused"}});
    })
    .await;
}
