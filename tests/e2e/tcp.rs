//! The official `tcp` check against plain and STARTTLS servers on 127.0.0.1.

use serde_json::Value;

use crate::support::{assertion, run_json};
use crate::tls_servers::{
    IMAP, LOCAL, POP3, SMTP, intermediate, leaf, root, start_banner, start_starttls,
};

async fn probe(args: &[&str]) -> (i32, Value) {
    let (out, r) = run_json("tcp", args).await;
    (out.code, r)
}

#[tokio::test(flavor = "multi_thread")]
async fn banner_matches_and_mismatches() {
    let port = start_banner("SSH-2.0-VantageTest\r\n", "echo ").await;
    let target = format!("tcp://127.0.0.1:{port}");
    let (code, r) = probe(&[
        "--target",
        &target,
        "--set",
        "read_banner=true",
        "--set",
        r"expect=^SSH-2\.0-",
    ])
    .await;
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(r["status"], "pass");
    assert_eq!(assertion(&r, "connected")["passed"], true);
    let m = assertion(&r, "exchange completed as scripted");
    assert_eq!(m["passed"], true);
    assert!(
        m["detail"]
            .as_str()
            .unwrap()
            .contains("SSH-2.0-VantageTest"),
        "{m:#}"
    );

    let (code, r) = probe(&[
        "--target",
        &target,
        "--set",
        "read_banner=true",
        "--set",
        "expect=^220 ",
        // A line that never comes is waited for until the timeout.
        "--set",
        "timeout=1s",
    ])
    .await;
    assert_eq!(code, 2, "{r:#}");
    assert_eq!(r["status"], "fail");
    assert_eq!(
        assertion(&r, "exchange completed as scripted")["passed"],
        false
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn send_and_expect_a_reply() {
    let port = start_banner("hello\r\n", "echo ").await;
    let target = format!("tcp://127.0.0.1:{port}");
    let (code, r) = probe(&[
        "--target",
        &target,
        "--set",
        "read_banner=true",
        "--set",
        r"send=PING 42\r\n",
        "--set",
        "expect=echo PING 42",
    ])
    .await;
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(
        assertion(&r, "exchange completed as scripted")["passed"],
        true
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn smtp_starttls_reports_the_certificate() {
    let ca = root("Vantage Test Root");
    let inter = intermediate("Vantage Test Intermediate", &ca, -1, 1000);
    let l = leaf(LOCAL, &inter, -1, 90);
    let port = start_starttls(&SMTP, vec![l.der, inter.der.clone()], l.key).await;
    let target = format!("tcp://127.0.0.1:{port}");
    let (_, r) = probe(&[
        "--target",
        &target,
        "--set",
        "starttls=smtp",
        "--set",
        r"send=NOOP\r\n",
        "--set",
        "expect=^250 ok NOOP",
    ])
    .await;
    assert_eq!(assertion(&r, "connected")["passed"], true, "{r:#}");
    // The plain dialogue, then NOOP answered over TLS.
    let exchange = assertion(&r, "exchange completed as scripted");
    assert_eq!(exchange["passed"], true, "{r:#}");
    let received = exchange["detail"].as_str().unwrap();
    assert!(
        received.contains("250 STARTTLS") && received.contains("220 Ready"),
        "{received}"
    );
    // The tcp request has no CA bundle: the test root is unknown.
    let tls = assertion(&r, "certificate chain is valid");
    assert_eq!(tls["passed"], false);
    let detail = tls["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("verdict unknown-issuer, TLSv1.3"),
        "{detail}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_port_the_allow_list_does_not_name_is_denied() {
    let port = start_banner("hello\r\n", "").await;
    let allow = format!("tcp://127.0.0.1:{}", port.wrapping_add(1));
    let target = format!("127.0.0.1:{port}");
    let (code, r) = probe(&["--allow", &allow, "--set", &format!("targets.0={target}")]).await;
    assert_eq!(code, 2, "{r:#}");
    let detail = assertion(&r, "connected")["detail"].as_str().unwrap();
    assert!(detail.starts_with("denied"), "{detail}");
    // The host's own log of the run says what it refused.
    let logs = r["logs"].to_string();
    assert!(
        logs.contains(&format!("denied: tcp://127.0.0.1:{port}")),
        "{logs}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_from_the_first_byte_is_allowed_by_a_tls_pattern() {
    let ca = root("Vantage Test Root");
    let l = leaf(LOCAL, &ca, -1, 90);
    let port = crate::tls_servers::start_tls(vec![l.der, ca.der.clone()], l.key).await;
    // Only `tls://127.0.0.1:PORT` is allowed (from the target).
    let target = format!("tls://127.0.0.1:{port}");
    let (_, r) = probe(&[
        "--target",
        &target,
        "--set",
        "tls=true",
        "--set",
        r"send=GET / HTTP/1.0\r\n\r\n",
        "--set",
        "expect=^HTTP/1.1 200",
    ])
    .await;
    assert_eq!(assertion(&r, "connected")["passed"], true, "{r:#}");
    assert_eq!(
        assertion(&r, "exchange completed as scripted")["passed"],
        true,
        "{r:#}"
    );
    let detail = assertion(&r, "certificate chain is valid")["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        detail.starts_with("verdict unknown-issuer, TLSv1.3"),
        "{detail}"
    );
    // Without TLS the same pattern does not allow a plain tcp probe.
    let (code, r) = probe(&["--target", &target, "--set", "read_banner=true"]).await;
    assert_eq!(code, 2, "{r:#}");
    let detail = assertion(&r, "connected")["detail"].as_str().unwrap();
    assert!(detail.starts_with("denied"), "{detail}");
}

#[tokio::test(flavor = "multi_thread")]
async fn imap_and_pop3_starttls_upgrade() {
    let ca = root("Vantage Test Root");
    for (name, proto, expect) in [
        ("imap", &IMAP, "^\\* ok NOOP"),
        ("pop3", &POP3, "^\\+OK NOOP"),
    ] {
        let l = leaf(LOCAL, &ca, -1, 90);
        let port = start_starttls(proto, vec![l.der, ca.der.clone()], l.key).await;
        let target = format!("tcp://127.0.0.1:{port}");
        let starttls = format!("starttls={name}");
        let expect = format!("expect={expect}");
        let (_, r) = probe(&[
            "--target",
            &target,
            "--set",
            &starttls,
            "--set",
            r"send=NOOP\r\n",
            "--set",
            &expect,
        ])
        .await;
        assert_eq!(assertion(&r, "connected")["passed"], true, "{name}: {r:#}");
        assert_eq!(
            assertion(&r, "exchange completed as scripted")["passed"],
            true,
            "{name}: {r:#}"
        );
        let detail = assertion(&r, "certificate chain is valid")["detail"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            detail.starts_with("verdict unknown-issuer, TLSv1.3"),
            "{name}: {detail}"
        );
    }
}
