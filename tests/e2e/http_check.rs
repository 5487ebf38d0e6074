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
    let request = assertion(&r, "request completed");
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
    let request = assertion(&r, "request completed");
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
    let request = assertion(&r, "request completed");
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
    // Assertions are scoped by target; measurements carry a `target` label.
    assert_eq!(assertion(&r, &format!("{good}: status"))["passed"], true);
    assert_eq!(assertion(&r, &format!("{bad}: status"))["passed"], false);
    let status_of = |target: &str| {
        r["measurements"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == "http_status_code" && m["labels"]["target"] == target)
            .unwrap_or_else(|| panic!("no http_status_code of {target}: {r:#}"))["value"]
            .as_f64()
            .unwrap()
    };
    assert_eq!(status_of(&good), 200.0);
    assert_eq!(status_of(&bad), 500.0);
    assert!(
        r["summary"].as_str().unwrap().starts_with("2 targets ("),
        "{r:#}"
    );
}

/// A server on 127.0.0.1 that echoes the request's `Authorization` header
/// back, in a JSON body and in a response header.
async fn start_echo_server() -> String {
    use axum::http::HeaderMap;
    use axum::routing::get;
    let app = axum::Router::new().route(
        "/echo",
        get(|headers: HeaderMap| async move {
            let seen = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            (
                [("x-echo-authorization", seen.clone())],
                axum::Json(serde_json::json!({ "authorization": seen, "ok": false })),
            )
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/echo")
}

/// Issue 12: the official `http` check sends a long bearer token from a
/// secret to a server that echoes it back; the check's assertion details
/// cut the echoed token at 60/80 characters (`…`) before the host redacts.
/// No fragment of 6 characters of the token is left in the output, nor in
/// the host's log; and the same with basic authentication, where the echo
/// is the base64 of `user:password`.
#[tokio::test(flavor = "multi_thread")]
async fn an_echoed_secret_cut_in_excerpts_leaves_no_fragment() {
    use crate::redaction::{assert_no_fragment, random_token, seed};
    use crate::support::secret_file;
    use base64::Engine as _;

    let seed = seed();
    // As long as the token (108 characters), a JWT-like shape.
    let token = format!(
        "eyJ{}.{}.{}",
        random_token(seed, 33),
        random_token(seed ^ 1, 40),
        random_token(seed ^ 2, 30)
    );
    assert_eq!(token.len(), 108);
    let (_dir, grant) = secret_file("token", &token);
    let url = start_echo_server().await;
    let expectations = [
        "expect.json./authorization=nope",
        "expect.json./ok=true",
        "expect.body_matches=Bearer [A-Za-z0-9._-]+",
        "expect.body_not_matches=ey[A-Za-z0-9._-]+",
        "expect.headers.x-echo-authorization=nope",
    ];
    let mut args = vec![
        "-vvv",
        "--target",
        &url,
        "--secret",
        &grant,
        "--set",
        "headers.Authorization=Bearer {{secret.token}}",
    ];
    for e in &expectations {
        args.extend(["--set", e]);
    }
    let (out, r) = run_json("http", &args).await;
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    assert_no_fragment("vantage run --json", &out.stdout, &token);
    assert_no_fragment("the host's log", &out.stderr, &token);
    // The excerpts were there, cut by the check and redacted by the host.
    let detail = assertion(&r, "json /authorization")["detail"]
        .as_str()
        .unwrap();
    assert_eq!(detail, "got \"Bearer [redacted]…", "{r:#}");
    let matched = assertion(&r, "body matches")["detail"].as_str().unwrap();
    assert_eq!(matched, "matched \"Bearer [redacted]…\"", "{r:#}");

    // Basic authentication: the server echoes base64 of `user:password`.
    let (out, r) = run_json(
        "http",
        &[
            "-vvv",
            "--target",
            &url,
            "--secret",
            &grant,
            "--set",
            "basic_auth.username=monitor",
            "--set",
            "basic_auth.password={{secret.token}}",
            "--set",
            "expect.json./authorization=nope",
            "--set",
            "expect.headers.x-echo-authorization=nope",
        ],
    )
    .await;
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("monitor:{token}"));
    // The characters that depend on the password alone.
    let core = &encoded[(8 * "monitor:".len()).div_ceil(6)..8 * (8 + token.len()) / 6];
    for (what, text) in [
        ("vantage run --json", &out.stdout),
        ("the host's log", &out.stderr),
    ] {
        assert_no_fragment(what, text, &token);
        assert_no_fragment(what, text, core);
    }
    let detail = assertion(&r, "json /authorization")["detail"]
        .as_str()
        .unwrap();
    assert!(detail.starts_with("got \"Basic "), "{r:#}");
    assert!(detail.contains("[redacted]"), "{r:#}");
}
