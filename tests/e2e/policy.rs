//! The outbound policy, seen from a check: every refusal is a typed error
//! naming the rule, on every hop, and per-run caps hold.

use crate::support::{assertion, run_json, start_target};

#[tokio::test(flavor = "multi_thread")]
async fn a_redirect_to_a_port_outside_the_allow_list_is_denied() {
    let base = start_target().await;
    let other = start_target().await;
    // Only the first server's origin is allowed (it is the target); its
    // redirect to the second server's port must be refused.
    let other_port = other.rsplit(':').next().unwrap();
    let url = format!("{base}/redirect-to-port/{other_port}");
    let (out, r) = run_json("http", &["--target", &url]).await;
    assert_eq!(out.code, 2, "{}", out.stdout);
    let request = assertion(&r, "request completed");
    let detail = request["detail"].as_str().unwrap();
    assert!(detail.starts_with("denied"), "{detail}");
    assert!(
        detail.contains(other.trim_start_matches("http://")),
        "{detail}"
    );

    // Allowing the second origin explicitly lets the redirect through.
    let (out, _) = run_json("http", &["--target", &url, "--allow", &other]).await;
    assert_eq!(out.code, 0, "{}", out.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_host_name_resolving_to_a_private_or_metadata_address_is_denied_under_a_wildcard() {
    let base = start_target().await;
    let port = base.rsplit(':').next().unwrap();
    for (name, addr) in [
        ("metadata.internal.test", "169.254.169.254"),
        ("private.internal.test", "10.0.0.5"),
        ("local.internal.test", "127.0.0.1"),
    ] {
        let target = format!("http://{name}:{port}/healthz");
        let resolve = format!("{name}:{addr}");
        let (out, r) = run_json(
            "http",
            &[
                "--target",
                &target,
                "--allow",
                "http://*:*",
                "--resolve",
                &resolve,
            ],
        )
        .await;
        assert_eq!(out.code, 2, "{name}: {}", out.stdout);
        let detail = assertion(&r, "request completed")["detail"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(detail.starts_with("denied"), "{name}: {detail}");
        assert!(detail.contains(addr), "{name}: {detail}");
    }
    // Naming the literal address is the explicit opt-in.
    let target = format!("http://local.internal.test:{port}/healthz");
    let (out, _) = run_json(
        "http",
        &[
            "--target",
            &target,
            "--allow",
            &format!("http://127.0.0.1:{port}"),
            "--resolve",
            "local.internal.test:127.0.0.1",
        ],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_per_run_connection_cap_is_a_typed_error() {
    let base = start_target().await;
    // A redirect loop followed up to 100 times (the most `max_redirects`
    // takes) needs 101 connections, more than a run may open (100).
    let (out, r) = run_json(
        "http",
        &[
            "--target",
            &format!("{base}/loop"),
            "--set",
            "max_redirects=100",
        ],
    )
    .await;
    assert_eq!(out.code, 2, "{}", out.stdout);
    let detail = assertion(&r, "request completed")["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(detail.contains("connections: at most 100"), "{detail}");
}

#[tokio::test(flavor = "multi_thread")]
async fn wasi_http_works_under_the_same_policy() {
    let base = start_target().await;
    let port = base.rsplit(':').next().unwrap();
    // A component using standard wasi:http reaches an allowed target.
    let (out, r) = run_json(
        "fixture_wasi_http",
        &["--target", &format!("{base}/healthz")],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert_eq!(assertion(&r, "status is 2xx")["detail"], "got 200");

    // A name that resolves to loopback is refused under a wildcard, and the
    // run's log says what was denied.
    let target = format!("http://sneaky.internal.test:{port}/healthz");
    let (out, r) = run_json(
        "fixture_wasi_http",
        &[
            "--target",
            &target,
            "--allow",
            "http://*:*",
            "--resolve",
            "sneaky.internal.test:127.0.0.1",
        ],
    )
    .await;
    assert_eq!(out.code, 2, "{}", out.stdout);
    let detail = assertion(&r, "request completed")["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(detail.contains("HttpRequestDenied"), "{detail}");
    assert!(r["logs"].to_string().contains("127.0.0.1"), "{r:#}");
}
