//! `dns.resolve` and the official `dns` check against a real DNS server on
//! 127.0.0.1 (see [`dns_server`](crate::dns_server)), and the outbound
//! policy applied to what names resolve to (`vantage run --resolver`).

use serde_json::Value;

use crate::dns_server::{self, DnsServer};
use crate::support::{assertion, run_json, start_target};

/// `vantage run dns.wasm --json` asking `server` (allowed literally), with
/// `--set` pairs.
async fn ask(server: &DnsServer, sets: &[(&str, &str)]) -> (i32, Value) {
    let mut args = vec![
        "--allow".to_string(),
        format!("dns://127.0.0.1:{}", server.port()),
        "--set".to_string(),
        format!("server={}", server.addr()),
    ];
    for (k, v) in sets {
        args.push("--set".into());
        args.push(format!("{k}={v}"));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (out, r) = run_json("dns", &args).await;
    (out.code, r)
}

fn label<'a>(r: &'a Value, key: &str) -> &'a str {
    r["labels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|kv| kv[0] == key)
        .and_then(|kv| kv[1].as_str())
        .unwrap_or_else(|| panic!("no label {key} in {r:#}"))
}

fn all_passed(r: &Value) -> bool {
    r["assertions"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["passed"] == true)
}

#[tokio::test(flavor = "multi_thread")]
async fn records_of_each_type_with_their_values_and_ttls() {
    let server = dns_server::start().await;
    // (name, type, values, count, ttl)
    let cases: &[(&str, &str, &[&str], usize, u32)] = &[
        ("vantage.test", "A", &["93.184.216.34"], 1, 300),
        ("vantage.test", "AAAA", &["2001:db8::34"], 1, 300),
        ("www.vantage.test", "CNAME", &["vantage.test."], 1, 300),
        // An A query through a CNAME: the chain is in the answer, the count
        // is of A records.
        (
            "www.vantage.test",
            "A",
            &["vantage.test", "93.184.216.34"],
            1,
            300,
        ),
        (
            "vantage.test",
            "MX",
            &["10 mail.vantage.test.", "20 backup.vantage.test"],
            2,
            300,
        ),
        (
            "vantage.test",
            "TXT",
            &[r#""v=spf1 -all""#, r#""hello" "world""#, "helloworld"],
            2,
            300,
        ),
        (
            "vantage.test",
            "NS",
            &["ns1.vantage.test.", "ns2.vantage.test."],
            2,
            3600,
        ),
        (
            "vantage.test",
            "SOA",
            &["ns1.vantage.test. hostmaster.vantage.test. 2026112701 7200 3600 1209600 300"],
            1,
            300,
        ),
        (
            "vantage.test",
            "CAA",
            &[r#"0 issue "letsencrypt.org""#],
            1,
            300,
        ),
        (
            "_sip._tcp.vantage.test",
            "SRV",
            &["10 5 5060 sip.vantage.test."],
            1,
            300,
        ),
    ];
    for &(name, rtype, values, count, ttl) in cases {
        let count_text = count.to_string();
        let ttl_text = ttl.to_string();
        let mut sets = vec![
            ("name", name),
            ("type", rtype),
            ("expect.count", count_text.as_str()),
            ("expect.min_ttl", ttl_text.as_str()),
            ("expect.max_ttl", ttl_text.as_str()),
        ];
        let keys: Vec<String> = (0..values.len())
            .map(|i| format!("expect.values.{i}"))
            .collect();
        for (k, v) in keys.iter().zip(values) {
            sets.push((k.as_str(), *v));
        }
        let (code, r) = ask(&server, &sets).await;
        assert_eq!(code, 0, "{name} {rtype}: {r:#}");
        assert_eq!(r["status"], "pass", "{name} {rtype}: {r:#}");
        assert!(all_passed(&r), "{name} {rtype}: {r:#}");
        // One assertion per expectation.
        assert_eq!(
            r["assertions"].as_array().unwrap().len(),
            1 + values.len() + 3,
            "{r:#}"
        );
        assert_eq!(label(&r, "rcode"), "NOERROR");
        assert_eq!(label(&r, "server"), server.addr());
        let measured: Vec<&str> = r["measurements"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            measured,
            [
                "dns_lookup_ms",
                "dns_answer_count",
                "dns_authority_count",
                "dns_additional_count"
            ],
            "{r:#}"
        );
        assert_eq!(r["measurements"][1]["value"], count as f64);
    }
    assert_eq!(
        server.tcp_queries.load(std::sync::atomic::Ordering::SeqCst),
        0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_values_and_ttls_fail_with_what_was_seen() {
    let server = dns_server::start().await;
    let (code, r) = ask(
        &server,
        &[
            ("name", "vantage.test"),
            ("type", "MX"),
            ("expect.values", "30 other.vantage.test"),
            ("expect.max_ttl", "60"),
            ("expect.count", "3"),
        ],
    )
    .await;
    assert_eq!(code, 2, "{r:#}");
    assert_eq!(r["status"], "fail");
    let missing = assertion(&r, "answer contains 30 other.vantage.test");
    assert_eq!(missing["passed"], false);
    assert!(
        missing["detail"]
            .as_str()
            .unwrap()
            .contains("MX 10 mail.vantage.test."),
        "{missing}"
    );
    assert_eq!(assertion(&r, "TTL at most 60")["detail"], "highest TTL 300");
    assert_eq!(assertion(&r, "answer count is 3")["detail"], "got 2");
    assert_eq!(assertion(&r, "rcode is NOERROR")["passed"], true);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_large_answer_is_retried_over_tcp() {
    let server = dns_server::start().await;
    let (code, r) = ask(
        &server,
        &[
            ("name", "big.vantage.test"),
            ("type", "TXT"),
            ("expect.count", "40"),
        ],
    )
    .await;
    assert_eq!(code, 0, "{r:#}");
    assert!(all_passed(&r), "{r:#}");
    assert!(server.tcp_queries.load(std::sync::atomic::Ordering::SeqCst) >= 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn nxdomain_and_servfail_are_answers() {
    let server = dns_server::start().await;
    // Expected NXDOMAIN passes.
    let (code, r) = ask(
        &server,
        &[("name", "nope.vantage.test"), ("expect.rcode", "NXDOMAIN")],
    )
    .await;
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(r["status"], "pass");
    assert_eq!(label(&r, "rcode"), "NXDOMAIN");
    assert_eq!(assertion(&r, "rcode is NXDOMAIN")["detail"], "got NXDOMAIN");
    // Unexpected NXDOMAIN fails, saying what came back.
    let (code, r) = ask(&server, &[("name", "nope.vantage.test")]).await;
    assert_eq!(code, 2, "{r:#}");
    assert_eq!(r["status"], "fail");
    let rcode = assertion(&r, "rcode is NOERROR");
    assert_eq!(rcode["passed"], false);
    assert_eq!(rcode["detail"], "got NXDOMAIN");
    assert!(r["error"].is_null(), "an answer, not an error: {r:#}");
    // SERVFAIL and REFUSED are answers too.
    let (code, r) = ask(
        &server,
        &[
            ("name", "servfail.vantage.test"),
            ("expect.rcode", "SERVFAIL"),
        ],
    )
    .await;
    assert_eq!(code, 0, "{r:#}");
    let (code, r2) = ask(&server, &[("name", "example.com")]).await;
    assert_eq!(code, 2, "{r2:#}");
    assert_eq!(assertion(&r2, "rcode is NOERROR")["detail"], "got REFUSED");
    assert_eq!(label(&r, "rcode"), "SERVFAIL");
    // NODATA (NOERROR, no record of the type) fails unless a count of 0 is
    // expected.
    let (code, r) = ask(&server, &[("name", "local.vantage.test"), ("type", "AAAA")]).await;
    assert_eq!(code, 2, "{r:#}");
    assert_eq!(assertion(&r, "has AAAA records")["passed"], false);
    let (code, r) = ask(
        &server,
        &[
            ("name", "local.vantage.test"),
            ("type", "AAAA"),
            ("expect.count", "0"),
        ],
    )
    .await;
    assert_eq!(code, 0, "{r:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn queries_need_a_dns_allow_pattern() {
    let server = dns_server::start().await;
    let set_server = format!("server={}", server.addr());
    // A nameserver that no pattern allows.
    let (out, r) = run_json("dns", &["--set", &set_server, "--set", "name=vantage.test"]).await;
    assert_eq!(out.code, 2, "{r:#}");
    let detail = assertion(&r, "lookup completed")["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(detail.starts_with("denied: "), "{detail}");
    assert!(
        detail.contains(&format!("dns://127.0.0.1:{}", server.port())),
        "{detail}"
    );
    // A wildcard is no opt-in to a loopback nameserver.
    let (out, r) = run_json(
        "dns",
        &[
            "--allow",
            "dns://*:*",
            "--set",
            &set_server,
            "--set",
            "name=vantage.test",
        ],
    )
    .await;
    assert_eq!(out.code, 2, "{r:#}");
    let detail = assertion(&r, "lookup completed")["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(detail.starts_with("denied: "), "{detail}");
    assert!(detail.contains("loopback"), "{detail}");
    // The system resolver: the name must be allowed, a server pattern is not
    // enough.
    let (out, r) = run_json(
        "dns",
        &[
            "--allow",
            &format!("dns://127.0.0.1:{}", server.port()),
            "--set",
            "name=vantage.test",
        ],
    )
    .await;
    assert_eq!(out.code, 2, "{r:#}");
    let detail = assertion(&r, "lookup completed")["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(detail.starts_with("denied: "), "{detail}");
    assert!(detail.contains("dns://vantage.test:53"), "{detail}");
    assert!(detail.contains("system resolver"), "{detail}");
    assert!(r["summary"].as_str().unwrap().contains("denied"), "{r:#}");
    assert!(r["logs"].to_string().contains("denied: "), "{r:#}");
}

/// `--resolver` makes the host resolve names through the test server; the
/// policy then refuses special addresses the names resolve to, even though
/// `http://*:*` allows the names.
#[tokio::test(flavor = "multi_thread")]
async fn names_resolving_to_special_addresses_are_refused_under_a_wildcard() {
    let server = dns_server::start().await;
    let base = start_target().await;
    let port = base.rsplit(':').next().unwrap().to_string();
    let resolver = server.addr();

    // Control: the name resolves through --resolver, and a literal opt-in
    // for the address lets the request through.
    let target = format!("http://local.vantage.test:{port}/healthz");
    let (out, r) = run_json(
        "http",
        &[
            "--target",
            &target,
            "--allow",
            &format!("http://127.0.0.1:{port}"),
            "--resolver",
            &resolver,
        ],
    )
    .await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(r["status"], "pass");

    for (name, addr, range) in [
        ("local", "127.0.0.1", "loopback"),
        ("metadata", "169.254.169.254", ""),
        ("private", "10.0.0.5", ""),
    ] {
        let target = format!("http://{name}.vantage.test:{port}/healthz");
        let (out, r) = run_json(
            "http",
            &[
                "--target",
                &target,
                "--allow",
                "http://*:*",
                "--resolver",
                &resolver,
                "--set",
                "timeout=2s",
            ],
        )
        .await;
        assert_eq!(out.code, 2, "{name}: {r:#}");
        assert_eq!(r["status"], "fail");
        let detail = assertion(&r, "request completed")["detail"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(detail.starts_with("denied: "), "{name}: {detail}");
        assert!(detail.contains(addr), "{name}: {detail}");
        assert!(
            detail.contains(&format!("resolved from {name}.vantage.test")),
            "{name}: {detail}"
        );
        assert!(detail.contains(range), "{name}: {detail}");
        let trace = r["timings"]["http"][0]["error"].as_str().unwrap();
        assert!(trace.starts_with("denied"), "{trace}");
    }
}

/// A name whose answer changes between lookups: the lookup that lands on
/// loopback is refused, though the same name was reachable a moment before.
#[tokio::test(flavor = "multi_thread")]
async fn a_rebinding_name_is_refused_when_it_answers_loopback() {
    let server = dns_server::start().await;
    let base = start_target().await;
    let port = base.rsplit(':').next().unwrap().to_string();
    let target = format!("http://rebind.vantage.test:{port}/healthz");
    let resolver = server.addr();
    let args = [
        "--target",
        target.as_str(),
        "--allow",
        "http://*:*",
        "--resolver",
        resolver.as_str(),
        "--set",
        "timeout=2s",
        "--timeout",
        "5s",
    ];
    // First lookup: the public address. The policy lets it through (there is
    // nothing listening there from this machine, so it fails to connect).
    let (out, r) = run_json("http", &args).await;
    assert_eq!(out.code, 2, "{r:#}");
    let detail = assertion(&r, "request completed")["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!detail.starts_with("denied"), "{detail}");
    // Second lookup: rebound to 127.0.0.1, refused.
    let (out, r) = run_json("http", &args).await;
    assert_eq!(out.code, 2, "{r:#}");
    let detail = assertion(&r, "request completed")["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(detail.starts_with("denied: "), "{detail}");
    assert!(
        detail.contains("127.0.0.1 (resolved from rebind.vantage.test)"),
        "{detail}"
    );
    assert_eq!(
        server
            .rebind_queries
            .load(std::sync::atomic::Ordering::SeqCst),
        2,
        "one fresh lookup per run, no cache"
    );
}
