//! The example alert rules (`examples/prometheus/`) are valid and do what
//! their comments say, checked by Prometheus' own `promtool` (Debian package
//! `prometheus`): the multi-location rule fires when 2 of 3 locations fail
//! and stays quiet when only one does.

use std::process::Command;

use crate::support::repo;

const PROMTOOL: &str = "/usr/bin/promtool";

fn promtool(args: &[&str]) -> (bool, String) {
    assert!(
        std::path::Path::new(PROMTOOL).exists(),
        "{PROMTOOL} is missing (Debian package `prometheus`): run `bash scripts/test-all.sh`"
    );
    let out = Command::new(PROMTOOL)
        .args(args)
        .current_dir(repo().join("examples/prometheus"))
        .output()
        .expect("run promtool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn example_rules_are_valid() {
    let (ok, out) = promtool(&["check", "rules", "vantage-rules.yml"]);
    assert!(ok, "{out}");
    assert!(out.contains("SUCCESS"), "{out}");
}

#[test]
fn example_rules_pass_their_unit_tests() {
    let (ok, out) = promtool(&["test", "rules", "vantage-rules.test.yml"]);
    assert!(ok, "{out}");
}

/// The example Alertmanager configuration (`examples/alertmanager/`) turns
/// the same outage reported by three locations into one notification, and
/// a second check into its own.
#[tokio::test(flavor = "multi_thread")]
async fn the_example_alertmanager_pages_once_for_an_outage_seen_from_every_location() {
    use std::sync::{Arc, Mutex};

    use axum::routing::post;

    use crate::servers::{Alertmanager, free_port, wait_until};

    let received: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let sink = received.clone();
    let app = axum::Router::new().route(
        "/alerts",
        post(move |axum::Json(body): axum::Json<serde_json::Value>| {
            let sink = sink.clone();
            async move {
                sink.lock().unwrap().push(body);
                ""
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    // The example as shipped, pointed at the test's webhook and with a
    // group_wait short enough for a test.
    let config = std::fs::read_to_string(repo().join("examples/alertmanager/alertmanager.yml"))
        .unwrap()
        .replace(
            "http://127.0.0.1:5001/alerts",
            &format!("http://{hook}/alerts"),
        )
        .replace("group_wait: 30s", "group_wait: 2s");
    let port = free_port();
    let alertmanager = tokio::task::spawn_blocking(move || Alertmanager::start_with(port, &config))
        .await
        .unwrap();
    let alert = |check: &str, location: &str| {
        serde_json::json!({
            "labels": {"alertname": "VantageCheckFailing", "check": check,
                       "location": location, "severity": "critical"},
            "annotations": {"summary": format!("{check} fails from {location}")}
        })
    };
    let alerts = serde_json::json!([
        alert("api", "fra1"),
        alert("api", "nyc1"),
        alert("api", "sin1"),
        alert("web", "fra1"),
    ]);
    let client = reqwest::Client::new();
    let response = client
        .post(format!("{}/api/v2/alerts", alertmanager.url()))
        .json(&alerts)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{response:?}");
    let notes = tokio::task::spawn_blocking(move || {
        wait_until(
            "two notifications",
            std::time::Duration::from_secs(30),
            || {
                let got = received.lock().unwrap().clone();
                ((got.len() >= 2).then(|| got.clone()), format!("{got:?}"))
            },
        )
    })
    .await
    .unwrap();
    // A moment more: nothing else arrives (no per-location page).
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(notes.len(), 2, "{notes:#?}");
    let for_check = |check: &str| {
        notes
            .iter()
            .find(|n| n["groupLabels"]["check"] == check)
            .unwrap_or_else(|| panic!("no notification for {check}: {notes:#?}"))
    };
    let api = for_check("api");
    let mut locations: Vec<&str> = api["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["labels"]["location"].as_str().unwrap())
        .collect();
    locations.sort();
    assert_eq!(locations, ["fra1", "nyc1", "sin1"]);
    assert_eq!(for_check("web")["alerts"].as_array().unwrap().len(), 1);
}
