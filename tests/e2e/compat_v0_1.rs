//! Components built against the frozen `vantage:check@0.1.0` world keep
//! running, unchanged, on the 0.2.0 host (issue 15). `fixture-v0-1` is built
//! with `wit-bindgen` straight from `runtime/wit-0.1.0` and calls every 0.1.0
//! interface (http, tcp with a banner, a send and an expect, tls with a CA
//! bundle, dns, secrets, log, clock) against real servers on 127.0.0.1; its
//! 0.2.0 neighbour `fixture-v0-2` (a `warn` assertion, a labelled
//! measurement) runs in the same daemon. `vantage run` and `vantage inspect`
//! take the 0.1.0 component as any other.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::daemon::Daemon;
use crate::servers::wait_until;
use crate::support::{self, assertion, secret_file, start_target, wasm};
use crate::{dns_server, tls_servers};

/// The secret the 0.1.0 fixture reads (and the host must redact).
const SECRET: &str = "Zq9xVw4kTt2m";

/// Servers for every 0.1.0 interface.
struct Targets {
    /// The test application's base URL.
    http: String,
    /// A TCP server that greets with `220 compat ready` and echoes lines.
    tcp_port: u16,
    /// A TLS server whose leaf (for 127.0.0.1) is signed by `ca_pem`.
    tls_port: u16,
    ca_pem: String,
    dns: dns_server::DnsServer,
}

impl Targets {
    async fn start() -> Targets {
        let ca = tls_servers::root("Compat Test Root");
        let leaf = tls_servers::leaf(tls_servers::LOCAL, &ca, -1, 30);
        Targets {
            http: start_target().await,
            tcp_port: tls_servers::start_banner("220 compat ready\r\n", "echo ").await,
            tls_port: tls_servers::start_tls(vec![leaf.der], leaf.key).await,
            ca_pem: ca.pem,
            dns: dns_server::start().await,
        }
    }

    /// What the fixture may reach: exactly these servers.
    fn allow(&self) -> Vec<String> {
        let port = self.http.rsplit(':').next().unwrap();
        vec![
            format!("http://127.0.0.1:{port}"),
            format!("tcp://127.0.0.1:{}", self.tcp_port),
            format!("tls://127.0.0.1:{}", self.tls_port),
            format!("dns://{}", self.dns.addr()),
        ]
    }

    /// The fixture's config for every interface; the TCP probe expects
    /// `expect`.
    fn config(&self, expect: &str) -> Vec<(String, String)> {
        [
            ("http.url", format!("{}/healthz", self.http)),
            ("http.error_url", format!("{}/loop", self.http)),
            ("http.max_redirects", "2".into()),
            ("tcp.host", "127.0.0.1".into()),
            ("tcp.port", self.tcp_port.to_string()),
            ("tcp.read_banner", "true".into()),
            ("tcp.send", "PING\\r\\n".into()),
            ("tcp.expect", expect.into()),
            ("tls.host", "127.0.0.1".into()),
            ("tls.port", self.tls_port.to_string()),
            ("tls.ca", self.ca_pem.clone()),
            ("dns.name", "vantage.test".into()),
            ("dns.type", "mx".into()),
            ("dns.server", self.dns.addr()),
            ("secret", "token".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }
}

/// A TOML basic string.
fn toml_str(s: &str) -> String {
    format!("{s:?}")
}

/// Assert what the 0.1.0 fixture reported against [`Targets`] (with a
/// matching `expect`): every assertion held with the detail the servers
/// imply, the measurements, the trace of its two HTTP exchanges, the log,
/// and the secret redacted everywhere.
fn assert_v0_1_result(r: &Value, t: &Targets) {
    let text = r.to_string();
    assert_eq!(r["status"], "pass", "{r:#}");
    assert_eq!(r["summary"], "6/6 assertions passed", "{r:#}");
    let detail = |name: &str| assertion(r, name)["detail"].as_str().unwrap().to_string();
    for a in r["assertions"].as_array().unwrap() {
        assert_eq!(a["passed"], true, "{a}");
        // 0.1.0 has no `warn`: a held claim is a plain pass.
        assert!(a.get("warn").is_none_or(|w| w == false), "{a}");
    }
    let http = detail("http status is 200");
    assert!(http.starts_with("200 HttpVersion::Http11 body {"), "{http}");
    assert!(http.contains("\"status\":\"ok\""), "{http}");
    // A 0.2.0 `fetch-error` reaches the 0.1.0 guest as its `net-error`.
    assert_eq!(detail("http error"), "too-many-redirects(2)");
    // Banner, then the reply to `send`, each read to the end of its line;
    // `expect` matched against everything received.
    assert_eq!(
        detail("tcp expect matched"),
        "220 compat ready\r\necho PING\r\n"
    );
    // Verified against the CA bundle the guest passed.
    assert_eq!(
        detail("tls verdict is valid"),
        "Verdict::Valid CN=localhost"
    );
    assert_eq!(
        detail("dns answered"),
        "NOERROR: RecordType::Mx 10 mail.vantage.test., RecordType::Mx 20 backup.vantage.test."
    );
    assert_eq!(detail("secret read"), "[redacted]");
    assert!(!text.contains(SECRET), "the secret leaked: {r:#}");

    let measurement = |name: &str| {
        let m = r["measurements"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == name)
            .unwrap_or_else(|| panic!("no measurement {name} in {r:#}"));
        // 0.1.0 measurements carry no labels.
        assert!(
            m.get("labels")
                .is_none_or(|l| l.as_object().unwrap().is_empty()),
            "{m}"
        );
        m["value"].as_f64().unwrap()
    };
    assert_eq!(measurement("http_status"), 200.0);
    assert_eq!(measurement("http_redirects"), 0.0);
    assert!(measurement("http_total_ms") > 0.0);
    assert_eq!(measurement("tcp_received_bytes"), 29.0);
    assert_eq!(measurement("tls_chain_length"), 1.0);
    // The leaf expires in 30 days.
    assert!((28.0..=30.0).contains(&measurement("tls_days_left")));
    assert_eq!(measurement("dns_records"), 2.0);
    assert_eq!(measurement("secret_bytes"), SECRET.len() as f64);
    assert_eq!(r["labels"][0], serde_json::json!(["world", "0.1.0"]));

    // The host's trace of the 0.1.0 guest's exchanges, as for any check.
    let trace = r["timings"]["http"].as_array().unwrap();
    assert_eq!(trace.len(), 2, "{trace:#?}");
    assert_eq!(trace[0]["url"], format!("{}/healthz", t.http));
    assert_eq!(trace[0]["status"], 200);
    assert_eq!(trace[1]["url"], format!("{}/loop", t.http));
    assert!(
        trace[1]["error"].as_str().unwrap().contains("redirect"),
        "{trace:#?}"
    );
    let logs = r["logs"].to_string();
    assert!(logs.contains("0.1.0 fixture run "), "{logs}");
    assert!(logs.contains("secret token is [redacted]"), "{logs}");
}

/// The newest stored run of `check`, once there is one.
fn first_run(daemon: &Daemon, check: &str) -> Value {
    wait_until(
        &format!("a run of {check}"),
        Duration::from_secs(30),
        || match daemon.api(&format!("/api/v1/checks/{check}/runs?limit=1")) {
            Value::Array(runs) if !runs.is_empty() => (Some(runs[0].clone()), String::new()),
            other => (None, other.to_string()),
        },
    )
}

/// One daemon runs the 0.1.0 fixture and the 0.2.0 one side by side; each
/// result is right for its world, and both reach the metrics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_0_1_component_runs_unchanged_next_to_a_0_2_component_in_one_daemon() {
    let t = Targets::start().await;
    let (_secret_dir, secret_arg) = secret_file("token", SECRET);
    let secret_source = secret_arg.strip_prefix("token=").unwrap();
    let config: String = t
        .config("echo PING")
        .iter()
        .map(|(k, v)| format!("{} = {}\n", toml_str(k), toml_str(v)))
        .collect();
    let allow: Vec<String> = t.allow().iter().map(|a| toml_str(a)).collect();
    let body = format!(
        "[[check]]\nname = \"legacy\"\ncomponent = {}\nevery = \"2s\"\nallow = [{}]\n\
         [check.secrets]\ntoken = {}\n[check.config]\n{config}\n\
         [[check]]\nname = \"current\"\ncomponent = {}\nevery = \"2s\"\nallow = [{}]\n\
         [check.config]\n\"http.url\" = {}\n",
        toml_str(&wasm("fixture_v0_1").display().to_string()),
        allow.join(", "),
        toml_str(secret_source),
        toml_str(&wasm("fixture_v0_2").display().to_string()),
        allow.join(", "),
        toml_str(&format!("{}/healthz", t.http)),
    );
    let dir = tempfile::tempdir().unwrap();
    let daemon = tokio::task::spawn_blocking({
        let dir = dir.path().to_path_buf();
        move || Daemon::start(&dir, "", &body, &["--no-watch"])
    })
    .await
    .unwrap();
    let (legacy, current, metrics) = tokio::task::spawn_blocking(move || {
        let legacy = first_run(&daemon, "legacy");
        let current = first_run(&daemon, "current");
        (legacy, current, daemon.metrics())
    })
    .await
    .unwrap();

    assert_v0_1_result(&legacy["result"], &t);

    // The 0.2.0 neighbour, in the same daemon: its `warn` assertion and its
    // labelled measurement come through as 0.2.0 defines them.
    let r = &current["result"];
    assert_eq!(r["status"], "degraded", "{r:#}");
    assert_eq!(assertion(r, "http status is 200")["passed"], true);
    let warned = assertion(r, "slower than 0 ms");
    assert_eq!(
        (&warned["passed"], &warned["warn"]),
        (&Value::Bool(true), &Value::Bool(true))
    );
    let url = format!("{}/healthz", t.http);
    assert_eq!(r["measurements"][0]["labels"]["target"], url.as_str());

    // Both reach /metrics: the 0.1.0 numbers unlabelled, the 0.2.0 one with
    // its label.
    let series = |check: &str, measurement: &str| {
        metrics
            .lines()
            .find(|l| {
                l.starts_with("vantage_check_measurement{")
                    && l.contains(&format!("check=\"{check}\""))
                    && l.contains(&format!("measurement=\"{measurement}\""))
            })
            .unwrap_or_else(|| panic!("no {measurement} of {check} in:\n{metrics}"))
            .to_string()
    };
    assert!(
        series("legacy", "dns_records").ends_with(" 2.0"),
        "{metrics}"
    );
    assert!(
        series("current", "http_total_ms").contains(&format!("target=\"{url}\"")),
        "{metrics}"
    );
}

/// `vantage run` runs the 0.1.0 component as it ran on the 0.1.0 host; an
/// `expect` that does not match is a failed assertion over what was
/// received, at once (0.1.0 matched after reading, it did not wait for a
/// matching line). `vantage inspect` names its world.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vantage_run_and_inspect_take_a_0_1_component() {
    let t = Targets::start().await;
    let (_secret_dir, secret_arg) = secret_file("token", SECRET);
    let run = |expect: &str| {
        let mut args = vec![
            "run".to_string(),
            wasm("fixture_v0_1").display().to_string(),
            "--json".into(),
            "--secret".into(),
            secret_arg.clone(),
        ];
        for allow in t.allow() {
            args.extend(["--allow".into(), allow]);
        }
        for (k, v) in t.config(expect) {
            args.extend(["--set".into(), format!("{k}={v}")]);
        }
        support::vantage_async(args)
    };
    let out = run("echo PING").await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_v0_1_result(&out.json(), &t);

    let started = Instant::now();
    let out = run("^nothing like this$").await;
    let r = out.json();
    assert_eq!(r["status"], "fail", "{r:#}");
    let tcp = assertion(&r, "tcp expect matched");
    assert_eq!(tcp["passed"], false);
    assert_eq!(tcp["detail"], "220 compat ready\r\necho PING\r\n");
    // Well within the probe's 5 s timeout: no read waited for a match.
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );

    let inspect = |name: &str, json: bool| {
        let path = wasm(name);
        let mut args = vec!["inspect".to_string(), path.display().to_string()];
        if json {
            args.push("--json".into());
        }
        support::vantage_async(args)
    };
    let out = inspect("fixture_v0_1", true).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let doc = out.json();
    assert_eq!(doc["world"], "vantage:check/check@0.1.0");
    assert_eq!(doc["metadata"]["name"], "fixture-v0-1");
    let key = &doc["metadata"]["config"][0];
    assert_eq!(key["key"], "http.url");
    // 0.1.0 keys had no type: text, as 0.1.0 passed every value.
    assert_eq!(key["value_type"]["type"], "text", "{key}");
    assert!(
        doc["imports"]
            .to_string()
            .contains("vantage:check/http@0.1.0")
    );
    let human = inspect("fixture_v0_1", false).await;
    assert!(
        human
            .stdout
            .contains("world:     vantage:check/check@0.1.0 (frozen;"),
        "{}",
        human.stdout
    );
    let doc = inspect("fixture_v0_2", true).await.json();
    assert_eq!(doc["world"], "vantage:check/check@0.2.0");
    assert_eq!(doc["metadata"]["config"][0]["value_type"]["type"], "url");
}
