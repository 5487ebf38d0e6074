//! The official `http` check against real HTTP servers on 127.0.0.1, driven
//! through the `vantage run` binary: JSON output and exit codes.

use crate::support::{assertion, run_json, start_target, vantage_async, wasm};

#[tokio::test(flavor = "multi_thread")]
async fn healthy_endpoint_passes_with_phase_timings() {
    let base = start_target().await;
    let url = format!("{base}/healthz");
    let (out, r) = run_json(
        "http",
        &[
            "--target",
            &url,
            "--set",
            "expect.status=200",
            "--set",
            "expect.json./status=ok",
        ],
    )
    .await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(r["status"], "pass");
    assert_eq!(r["check"], "http");
    assert!(r["error"].is_null());
    assert!(
        r["assertions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["passed"] == true),
        "{r:#}"
    );
    assert_eq!(assertion(&r, "json /status")["passed"], true);
    // Host-measured phases of the one exchange.
    let trace = &r["timings"]["http"][0];
    assert_eq!(trace["url"], url.as_str());
    assert_eq!(trace["status"], 200);
    for phase in [
        "resolve_ms",
        "connect_ms",
        "tls_ms",
        "processing_ms",
        "transfer_ms",
        "total_ms",
    ] {
        assert!(
            trace[phase].as_f64().unwrap() >= 0.0,
            "{phase} missing in {trace:#}"
        );
    }
    let total = trace["total_ms"].as_f64().unwrap();
    assert!(total > 0.0, "{trace:#}");
    assert!(
        trace["connect_ms"].as_f64().unwrap() + trace["processing_ms"].as_f64().unwrap()
            <= total + 0.01
    );
    // The check reports the same timing it was handed by the host.
    let measured = r["measurements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "http_total_ms")
        .expect("http_total_ms measurement");
    assert!(measured["value"].as_f64().unwrap() > 0.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn server_error_fails_naming_the_status() {
    let base = start_target().await;
    let (out, r) = run_json("http", &["--target", &format!("{base}/error")]).await;
    assert_eq!(out.code, 2, "{}", out.stdout);
    assert_eq!(r["status"], "fail");
    let status = assertion(&r, "status");
    assert_eq!(status["passed"], false);
    assert!(
        status["detail"].as_str().unwrap().contains("500"),
        "{status:#}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_endpoint_is_degraded_over_budget_and_fails_over_max() {
    let base = start_target().await;
    let url = format!("{base}/slow");
    let (out, r) = run_json(
        "http",
        &["--target", &url, "--set", "latency.degraded=200ms"],
    )
    .await;
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert_eq!(r["status"], "degraded");

    let (out, r) = run_json("http", &["--target", &url, "--set", "latency.max=300ms"]).await;
    assert_eq!(out.code, 2, "{}", out.stdout);
    assert_eq!(r["status"], "fail");
    assert_eq!(assertion(&r, "latency")["passed"], false);

    // A per-request timeout shorter than the response time is a typed timeout.
    let (out, r) = run_json("http", &["--target", &url, "--set", "timeout=100ms"]).await;
    assert_eq!(out.code, 2, "{}", out.stdout);
    let request = assertion(&r, "request succeeded");
    assert_eq!(request["passed"], false);
    assert!(
        request["detail"].as_str().unwrap().contains("timeout"),
        "{request:#}"
    );
    assert_eq!(
        r["timings"]["http"][0]["error"],
        "timeout during processing"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_json_fails_with_what_was_found() {
    let base = start_target().await;
    let (out, r) = run_json(
        "http",
        &[
            "--target",
            &format!("{base}/wrong-json"),
            "--set",
            "expect.json./status=ok",
        ],
    )
    .await;
    assert_eq!(out.code, 2, "{}", out.stdout);
    let json = assertion(&r, "json /status");
    assert_eq!(json["passed"], false);
    assert!(
        json["detail"].as_str().unwrap().contains("down"),
        "{json:#}"
    );

    // A body that is not JSON at all.
    let (out, r) = run_json(
        "http",
        &[
            "--target",
            &format!("{base}/not-json"),
            "--set",
            "expect.json./status=ok",
        ],
    )
    .await;
    assert_eq!(out.code, 2, "{}", out.stdout);
    assert_eq!(assertion(&r, "json /status")["passed"], false);
}

#[tokio::test(flavor = "multi_thread")]
async fn redirect_loop_fails_with_a_typed_error() {
    let base = start_target().await;
    let (out, r) = run_json(
        "http",
        &[
            "--target",
            &format!("{base}/loop"),
            "--set",
            "max_redirects=3",
        ],
    )
    .await;
    assert_eq!(out.code, 2, "{}", out.stdout);
    let request = assertion(&r, "request succeeded");
    assert_eq!(request["passed"], false);
    assert!(
        request["detail"].as_str().unwrap().contains("redirects"),
        "{request:#}"
    );
    assert_eq!(r["timings"]["http"][0]["error"], "more than 3 redirects");
}

#[tokio::test(flavor = "multi_thread")]
async fn redirect_is_followed_and_counted() {
    let base = start_target().await;
    let (out, r) = run_json(
        "http",
        &[
            "--target",
            &format!("{base}/redirect"),
            "--set",
            "expect.status=200",
        ],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert_eq!(r["timings"]["http"][0]["redirects"], 1);
    assert_eq!(r["timings"]["http"][0]["status"], 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn body_over_the_cap_is_refused() {
    let base = start_target().await;
    let (out, r) = run_json(
        "http",
        &[
            "--target",
            &format!("{base}/big"),
            "--set",
            "max_body_bytes=64KiB",
        ],
    )
    .await;
    assert_eq!(out.code, 2, "{}", out.stdout);
    assert_eq!(
        r["timings"]["http"][0]["error"],
        "response body larger than 65536 bytes"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn connection_refused_fails_cleanly() {
    // Bind then drop a listener: the port is closed.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let (out, r) = run_json("http", &["--target", &format!("http://127.0.0.1:{port}/")]).await;
    assert_eq!(out.code, 2, "{}", out.stdout);
    let request = assertion(&r, "request succeeded");
    assert!(
        request["detail"].as_str().unwrap().contains("connect"),
        "{request:#}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn human_output_shows_verdict_assertions_and_phases() {
    let base = start_target().await;
    let out = vantage_async(vec![
        "run".into(),
        wasm("http").display().to_string(),
        "--target".into(),
        format!("{base}/healthz"),
    ])
    .await;
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert!(out.stdout.starts_with("PASS http in "), "{}", out.stdout);
    for phase in [
        "resolve",
        "connect",
        "tls",
        "processing",
        "transfer",
        "total",
    ] {
        assert!(out.stdout.contains(phase), "no {phase} in:\n{}", out.stdout);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn healthz_check_reports_each_component() {
    let base = start_target().await;
    let (out, r) = run_json("healthz", &["--target", &format!("{base}/healthz")]).await;
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert_eq!(assertion(&r, "component database")["passed"], true);
    assert_eq!(assertion(&r, "component queue")["passed"], true);

    let (out, r) = run_json("healthz", &["--target", &format!("{base}/degraded-health")]).await;
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert_eq!(r["status"], "degraded");

    let (out, r) = run_json("healthz", &["--target", &format!("{base}/down-health")]).await;
    assert_eq!(out.code, 2, "{}", out.stdout);
    assert_eq!(assertion(&r, "component database")["passed"], false);

    let (out, _) = run_json("healthz", &["--target", &format!("{base}/not-json")]).await;
    assert_eq!(out.code, 2, "{}", out.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn config_and_targets_reach_the_check_flattened() {
    let (out, r) = run_json(
        "fixture_echo",
        &[
            "--target",
            "http://127.0.0.1:1/x",
            "--set",
            "headers.Accept=application/json",
            "--set",
            "n=7",
        ],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stdout);
    let text = r["assertions"].to_string();
    assert!(text.contains("headers.Accept"), "{text}");
    assert!(text.contains("application/json"), "{text}");
    assert!(text.contains("http://127.0.0.1:1/x"), "{text}");
    // Guest logs are captured with their levels.
    let levels: Vec<&str> = r["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["level"].as_str().unwrap())
        .collect();
    for level in ["debug", "info", "warn", "error"] {
        assert!(levels.contains(&level), "{levels:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn several_targets_are_reported_each_under_its_own_name() {
    let base = start_target().await;
    let (good, bad) = (format!("{base}/healthz"), format!("{base}/error"));
    let (out, r) = run_json("http", &["--target", &good, "--target", &bad]).await;
    assert_eq!(out.code, 2, "{}", out.stdout);
    // Assertions are scoped by target, measurements prefixed, labels added.
    assert_eq!(assertion(&r, &format!("{good}: status"))["passed"], true);
    assert_eq!(assertion(&r, &format!("{bad}: status"))["passed"], false);
    let names: Vec<&str> = r["measurements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"target0_http_status_code") && names.contains(&"target1_http_status_code"),
        "{names:?}"
    );
    assert!(r["labels"].to_string().contains(&bad), "{r:#}");
    assert!(
        r["summary"].as_str().unwrap().starts_with("2 targets ("),
        "{r:#}"
    );
}
