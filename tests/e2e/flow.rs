//! Multi-step flows and secrets: the `api-flow` check logs in with a password
//! from a secret, carries the session cookie and the token to the API, and
//! logs out; `{{secret.NAME}}` references in config are expanded by the host
//! and redacted from every output.

use crate::support::{FLOW_PASSWORD, FLOW_TOKEN, assertion, run_json, secret_file, start_target};

/// The right password, with a trailing newline as files usually have.
fn password_file() -> (tempfile::TempDir, String) {
    secret_file("password", &format!("{FLOW_PASSWORD}\n"))
}

#[tokio::test(flavor = "multi_thread")]
async fn api_flow_logs_in_calls_the_api_and_logs_out() {
    let base = start_target().await;
    let (_dir, secret) = password_file();
    let (out, r) = run_json(
        "api_flow",
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
    assert_eq!(out.code, 0, "{}", out.stdout);
    for step in ["log in", "token received", "call API", "log out"] {
        assert_eq!(assertion(&r, step)["passed"], true, "{step}: {r:#}");
    }
    // Steps carry their own timings, and the host saw three exchanges.
    assert!(assertion(&r, "log in")["duration_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(r["timings"]["http"].as_array().unwrap().len(), 3);
    assert!(
        !out.stdout.contains(FLOW_PASSWORD),
        "password leaked: {}",
        out.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn api_flow_fails_at_the_step_that_breaks() {
    let base = start_target().await;
    let (_dir, secret) = secret_file("password", "wrong-password");
    let (out, r) = run_json(
        "api_flow",
        &[
            "--target",
            &base,
            "--secret",
            &secret,
            "--set",
            "login.username=monitor",
        ],
    )
    .await;
    assert_eq!(out.code, 2, "{}", out.stdout);
    let login = assertion(&r, "log in");
    assert_eq!(login["passed"], false);
    assert!(
        login["detail"].as_str().unwrap().contains("401"),
        "{login:#}"
    );

    // Without the secret granted, the check says so instead of guessing.
    let (out, r) = run_json(
        "api_flow",
        &["--target", &base, "--set", "login.username=monitor"],
    )
    .await;
    assert_eq!(out.code, 2, "{}", out.stdout);
    assert!(
        r["summary"].as_str().unwrap().contains("not granted"),
        "{r:#}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn secret_references_in_config_are_expanded_and_redacted() {
    let base = start_target().await;
    let (_dir, secret) = secret_file("token", FLOW_TOKEN);
    // The declarative http check sends the token without any code; the API
    // also wants a session cookie, which this single call does not have.
    let (out, r) = run_json(
        "http",
        &[
            "--target",
            &format!("{base}/api/me"),
            "--secret",
            &secret,
            "--set",
            "headers.Authorization=Bearer {{secret.token}}",
            "--set",
            "expect.status=403",
        ],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert_eq!(r["status"], "pass");
    assert!(
        !out.stdout.contains(FLOW_TOKEN),
        "token leaked: {}",
        out.stdout
    );

    // A reference to a secret that is not granted is a configuration error.
    let (out, r) = run_json(
        "http",
        &[
            "--target",
            &format!("{base}/api/me"),
            "--set",
            "headers.Authorization=Bearer {{secret.nope}}",
        ],
    )
    .await;
    assert_eq!(out.code, 3, "{}", out.stdout);
    assert_eq!(r["error"]["kind"], "config");
    assert!(
        r["error"]["message"].as_str().unwrap().contains("nope"),
        "{r:#}"
    );
}

/// One component logs in, calls the API and checks a DNS record.
#[tokio::test(flavor = "multi_thread")]
async fn api_flow_also_proves_a_dns_record() {
    let base = start_target().await;
    let dns = crate::dns_server::start().await;
    let (_dir, secret) = password_file();
    let allow = format!("dns://{}", dns.addr());
    let (out, r) = run_json(
        "api_flow",
        &[
            "--target",
            &base,
            "--secret",
            &secret,
            "--set",
            "login.username=monitor",
            "--set",
            "dns.name=vantage.test",
            "--set",
            &format!("dns.server={}", dns.addr()),
            "--allow",
            &allow,
        ],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stdout);
    let resolves = assertion(&r, "vantage.test resolves");
    assert_eq!(resolves["passed"], true, "{r:#}");
    assert!(
        resolves["detail"]
            .as_str()
            .unwrap()
            .starts_with("NOERROR with 1 A record"),
        "{r:#}"
    );
    assert!(resolves["duration_ms"].as_f64().is_some());
}
