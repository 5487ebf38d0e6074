//! The official `tls` check against TLS servers on 127.0.0.1 presenting
//! rcgen chains with every defect a verdict names; and the `http` check over
//! https against a private CA.

use serde_json::Value;

use crate::support::{assertion, run_json};
use crate::tls_servers::{
    LOCAL, client_pem, intermediate, leaf, root, self_signed, start_h2, start_mtls, start_tls,
};

/// Run the `tls` check against `port`, trusting `ca` (PEM) if given.
async fn inspect(port: u16, ca: Option<&str>, extra: &[&str]) -> (i32, Value) {
    let target = format!("tls://127.0.0.1:{port}");
    let bundle = ca.map(|pem| format!("ca_bundle={pem}"));
    let mut args = vec!["--target", target.as_str()];
    if let Some(b) = &bundle {
        args.extend(["--set", b.as_str()]);
    }
    args.extend(extra);
    let (out, r) = run_json("tls", &args).await;
    (out.code, r)
}

fn verdict(r: &Value) -> String {
    let detail = assertion(r, "certificate chain is valid")["detail"]
        .as_str()
        .unwrap()
        .to_string();
    detail.trim_start_matches("verdict ").to_string()
}

fn days_left(r: &Value) -> f64 {
    r["measurements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "tls_cert_days_left")
        .unwrap_or_else(|| panic!("no tls_cert_days_left in {r:#}"))["value"]
        .as_f64()
        .unwrap()
}

fn measurement(r: &Value, name: &str) -> f64 {
    r["measurements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {r:#}"))["value"]
        .as_f64()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn valid_chain_passes_with_days_left_and_the_chain() {
    let ca = root("Vantage Test Root");
    let inter = intermediate("Vantage Test Intermediate", &ca, -1, 1000);
    let l = leaf(LOCAL, &inter, -1, 90);
    let port = start_tls(vec![l.der, inter.der.clone()], l.key).await;
    let (code, r) = inspect(port, Some(&ca.pem), &[]).await;
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(r["status"], "pass", "{r:#}");
    assert_eq!(verdict(&r), "valid");
    let days = days_left(&r);
    assert!((89.0..=90.01).contains(&days), "{days}");
    assert!(measurement(&r, "tls_handshake_ms") > 0.0);
    let chain = assertion(&r, "chain presented")["detail"].as_str().unwrap();
    assert!(chain.starts_with("2 certificate(s)"), "{chain}");
    assert!(chain.contains("subject CN=localhost"), "{chain}");
    assert!(
        chain.contains("issuer CN=Vantage Test Intermediate,O=Vantage Tests"),
        "{chain}"
    );
    assert!(chain.contains("sans [localhost, 127.0.0.1]"), "{chain}");
    assert!(chain.contains("ecdsa-with-SHA256; EC 256 bits"), "{chain}");
    let handshake = assertion(&r, "handshake completed")["detail"]
        .as_str()
        .unwrap();
    assert!(handshake.starts_with("TLSv1.3 TLS13_"), "{handshake}");
    eprintln!("valid chain: {r:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_certificate_defect_is_a_verdict() {
    let ca = root("Vantage Test Root");
    let inter = intermediate("Vantage Test Intermediate", &ca, -1, 1000);
    let expired = leaf(LOCAL, &inter, -30, -1);
    let not_yet = leaf(LOCAL, &inter, 10, 100);
    let wrong_name = leaf(&["other.example"], &inter, -1, 90);
    let missing = leaf(LOCAL, &inter, -1, 90);
    let own = self_signed(LOCAL);
    let old_inter = intermediate("Expired Intermediate", &ca, -30, -1);
    let under_old = leaf(LOCAL, &old_inter, -1, 90);
    let cases = [
        (
            "expired",
            start_tls(vec![expired.der, inter.der.clone()], expired.key).await,
        ),
        (
            "not-yet-valid",
            start_tls(vec![not_yet.der, inter.der.clone()], not_yet.key).await,
        ),
        (
            "hostname-mismatch",
            start_tls(vec![wrong_name.der, inter.der.clone()], wrong_name.key).await,
        ),
        (
            "incomplete-chain",
            start_tls(vec![missing.der], missing.key).await,
        ),
        ("unknown-issuer", start_tls(vec![own.der], own.key).await),
        (
            "expired",
            start_tls(vec![under_old.der, old_inter.der.clone()], under_old.key).await,
        ),
    ];
    for (expected, port) in cases {
        let (code, r) = inspect(port, Some(&ca.pem), &[]).await;
        assert_eq!(r["status"], "fail", "{expected}: {r:#}");
        assert_eq!(code, 2, "{expected}: {r:#}");
        assert_eq!(verdict(&r), expected, "{r:#}");
        // The handshake completed and the chain was read despite the defect.
        assert_eq!(assertion(&r, "handshake completed")["passed"], true);
        assert_eq!(assertion(&r, "chain presented")["passed"], true);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_chain_signed_by_an_untrusted_root_is_unknown_issuer() {
    // No ca_bundle: the public roots do not know the test root.
    let ca = root("Vantage Test Root");
    let inter = intermediate("Vantage Test Intermediate", &ca, -1, 1000);
    let l = leaf(LOCAL, &inter, -1, 90);
    let port = start_tls(vec![l.der, inter.der.clone()], l.key).await;
    let (_, r) = inspect(port, None, &[]).await;
    assert_eq!(verdict(&r), "unknown-issuer", "{r:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_earliest_expiry_in_the_chain_counts() {
    let ca = root("Vantage Test Root");
    // The intermediate expires in 15 days, the leaf in 90.
    let inter = intermediate("Short Intermediate", &ca, -1, 15);
    let l = leaf(LOCAL, &inter, -1, 90);
    let port = start_tls(vec![l.der, inter.der.clone()], l.key).await;
    let (code, r) = inspect(port, Some(&ca.pem), &[]).await;
    assert_eq!(verdict(&r), "valid", "{r:#}");
    let days = days_left(&r);
    assert!((14.0..=15.01).contains(&days), "{days}");
    let claim = assertion(&r, "chain valid for at least 7 days");
    assert_eq!(claim["passed"], true);
    assert!(
        claim["detail"]
            .as_str()
            .unwrap()
            .contains("CN=Short Intermediate"),
        "{claim:#}"
    );
    // Under the default 21 days: degraded.
    assert_eq!(r["status"], "degraded", "{r:#}");
    assert_ne!(code, 2);
    // Under a 20-day fail threshold: failed.
    let (code, r) = inspect(
        port,
        Some(&ca.pem),
        &["--set", "days.fail=20", "--set", "days.degraded=30"],
    )
    .await;
    assert_eq!(r["status"], "fail", "{r:#}");
    assert_eq!(code, 2);
    assert_eq!(
        assertion(&r, "chain valid for at least 20 days")["passed"],
        false
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn https_against_a_private_ca_fails_with_a_tls_error() {
    let ca = root("Vantage Test Root");
    let inter = intermediate("Vantage Test Intermediate", &ca, -1, 1000);
    let l = leaf(LOCAL, &inter, -1, 90);
    let port = start_tls(vec![l.der, inter.der.clone()], l.key).await;
    let url = format!("https://127.0.0.1:{port}/");
    let (out, r) = run_json("http", &["--target", &url]).await;
    assert_eq!(out.code, 2, "{r:#}");
    assert_eq!(r["status"], "fail");
    let detail = assertion(&r, "request completed")["detail"]
        .as_str()
        .unwrap();
    assert!(detail.contains("tls"), "{detail}");
    assert!(detail.contains("unknown-issuer"), "{detail}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tls_target_outside_the_allow_list_is_denied() {
    let ca = root("Vantage Test Root");
    let l = leaf(LOCAL, &ca, -1, 90);
    let port = start_tls(vec![l.der], l.key).await;
    let target = format!("127.0.0.1:{port}");
    let allow = format!("tls://127.0.0.1:{}", port.wrapping_add(1));
    let (_, r) = run_json(
        "tls",
        &["--allow", &allow, "--target", &format!("tcp://{target}")],
    )
    .await;
    // The `tcp://` target only allows tcp: the tls inspection is denied.
    let detail = assertion(&r, "handshake completed")["detail"]
        .as_str()
        .unwrap();
    assert!(detail.starts_with("denied"), "{detail}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_never_answers_times_out_in_the_tls_phase() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            held.push(tcp);
        }
    });
    let (_, r) = inspect(port, None, &["--set", "timeout=300ms"]).await;
    let detail = assertion(&r, "handshake completed")["detail"]
        .as_str()
        .unwrap();
    assert!(
        detail.contains("timeout") && detail.contains("tls"),
        "{detail}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_certificate_from_a_secret_is_presented() {
    let ca = root("Vantage Test Root");
    let l = leaf(LOCAL, &ca, -1, 90);
    let (port, seen) = crate::tls_servers::start_mtls(vec![l.der], l.key, ca.der.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("client.pem");
    std::fs::write(&path, crate::tls_servers::client_pem(&ca)).unwrap();
    let secret = format!("client=file:{}", path.display());
    let (code, r) = inspect(
        port,
        Some(&ca.pem),
        &["--secret", &secret, "--set", "client_cert_secret=client"],
    )
    .await;
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(verdict(&r), "valid");
    // The server verifies the client certificate after the client's Finished.
    for _ in 0..50 {
        if seen.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("the server never saw a verified client certificate");
}

#[tokio::test(flavor = "multi_thread")]
async fn insecure_https_needs_the_operators_consent() {
    let ca = root("Vantage Test Root");
    let l = leaf(LOCAL, &ca, -1, 90);
    let port = start_tls(vec![l.der], l.key).await;
    let url = format!("https://127.0.0.1:{port}/");

    // The check asks for insecure TLS; the operator did not allow it.
    let (out, r) = run_json("http", &["--target", &url, "--set", "insecure=true"]).await;
    assert_eq!(out.code, 2, "{r:#}");
    let detail = assertion(&r, "request completed")["detail"]
        .as_str()
        .unwrap();
    assert!(detail.starts_with("denied"), "{detail}");
    assert!(detail.contains("--allow-insecure"), "{detail}");

    // With consent the exchange completes over the untrusted chain.
    let (out, r) = run_json(
        "http",
        &[
            "--target",
            &url,
            "--set",
            "insecure=true",
            "--allow-insecure",
        ],
    )
    .await;
    assert_eq!(out.code, 0, "{r:#}");
    assert_eq!(r["timings"]["http"][0]["status"], 200);
    assert!(r["timings"]["http"][0]["tls_ms"].as_f64().unwrap() > 0.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn https_presents_a_client_certificate_from_a_secret() {
    let ca = root("Vantage Test Root");
    let l = leaf(LOCAL, &ca, -1, 90);
    let (port, seen) = start_mtls(vec![l.der], l.key, ca.der.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("client.pem");
    std::fs::write(&pem, client_pem(&ca)).unwrap();
    let url = format!("https://127.0.0.1:{port}/");
    let secret = format!("client=file:{}", pem.display());
    let _ = run_json(
        "http",
        &[
            "--target",
            &url,
            "--secret",
            &secret,
            "--set",
            "client_cert_secret=client",
            "--set",
            "insecure=true",
            "--allow-insecure",
        ],
    )
    .await;
    assert!(
        seen.load(std::sync::atomic::Ordering::SeqCst),
        "the server saw no client certificate"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn https_negotiates_http2_by_alpn() {
    let ca = root("Vantage Test Root");
    let l = leaf(LOCAL, &ca, -1, 90);
    let port = start_h2(vec![l.der], l.key).await;
    let url = format!("https://127.0.0.1:{port}/");
    let (out, r) = run_json(
        "http",
        &[
            "--target",
            &url,
            "--set",
            "insecure=true",
            "--allow-insecure",
            "--set",
            "enable_http2=true",
            "--set",
            "expect.http_version=2",
        ],
    )
    .await;
    assert_eq!(out.code, 0, "{r:#}");
    let version = r["measurements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "http_version")
        .unwrap();
    assert_eq!(version["value"], 2.0, "{r:#}");
}
