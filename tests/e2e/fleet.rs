//! A fleet on one machine: three `vantage daemon` edges with their own
//! locations push to one Prometheus (remote write), and a fourth daemon in
//! central mode shows one row per check and one column per location, read
//! from Prometheus's HTTP API, as JSON and as a page rendered by headless
//! Chromium (screenshot in `target/screenshots/fleet.png`).

use std::time::Duration;

use serde_json::Value;

use crate::daemon::{Daemon, http_check};
use crate::servers::{Receiver, get_json, wait_until};
use crate::status_page::{chromium, screenshot_dir};
use crate::support::start_target;

#[tokio::test(flavor = "multi_thread")]
async fn three_edges_and_a_central_view_on_one_machine() {
    let target = start_target().await;
    let receiver = Receiver::start();
    let write = receiver.write_url();
    let prometheus = receiver.prometheus().url();
    let mut dirs = Vec::new();
    let mut edges = Vec::new();
    for location in ["edge-a", "edge-b", "edge-c"] {
        let dir = tempfile::tempdir().unwrap();
        // `api` passes everywhere; `shop` fails at edge-c only.
        let shop = if location == "edge-c" {
            "error"
        } else {
            "healthz"
        };
        let body = format!(
            "{}{}\n[[remote_write]]\nurl = \"{write}\"\n[remote_write.queue]\nbatch_send_deadline = \"200ms\"\n",
            http_check("api", "2s", &format!("{target}/healthz"), ""),
            http_check(
                "shop",
                "2s",
                &format!("{target}/{shop}"),
                "failure_threshold = 1"
            ),
        );
        let global = format!("location = \"{location}\"\n");
        let path = dir.path().to_path_buf();
        edges.push(
            tokio::task::spawn_blocking(move || {
                Daemon::start(&path, &global, &body, &["--no-watch"])
            })
            .await
            .unwrap(),
        );
        dirs.push(dir);
    }
    let central_dir = tempfile::tempdir().unwrap();
    let body = format!("\n[central]\nprometheus = \"{prometheus}\"\n");
    let path = central_dir.path().to_path_buf();
    let central = tokio::task::spawn_blocking(move || {
        Daemon::start(&path, "location = \"hq\"\n", &body, &["--no-watch"])
    })
    .await
    .unwrap();
    let api = format!("{}/api/v1/central", central.url());
    let grid = tokio::task::spawn_blocking(move || {
        wait_until("the 3×2 grid", Duration::from_secs(60), || {
            let grid = get_json(&api);
            let full = grid["locations"].as_array().is_some_and(|l| l.len() == 3)
                && grid["checks"].as_array().is_some_and(|c| {
                    c.len() == 2
                        && c.iter().all(|row| {
                            row["cells"].as_object().is_some_and(|cells| {
                                cells.len() == 3 && cells.values().all(|c| c["state"].is_string())
                            })
                        })
                });
            let down = grid["checks"]
                .as_array()
                .and_then(|c| c.iter().find(|r| r["check"] == "shop"))
                .is_some_and(|r| r["cells"]["edge-c"]["state"] == "down");
            ((full && down).then(|| grid.clone()), grid.to_string())
        })
    })
    .await
    .unwrap();
    let names: Vec<&str> = grid["locations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["edge-a", "edge-b", "edge-c"]);
    for l in grid["locations"].as_array().unwrap() {
        assert_eq!(l["silent"], false, "{l}");
        assert!(l["last_heartbeat_age"].as_f64().unwrap() < 60.0, "{l}");
        assert_eq!(l["version"], env!("CARGO_PKG_VERSION"), "{l}");
    }
    let row = |check: &str| -> Value {
        grid["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["check"] == check)
            .cloned()
            .unwrap()
    };
    for location in ["edge-a", "edge-b", "edge-c"] {
        let cell = &row("api")["cells"][location];
        assert_eq!(cell["state"], "up", "{cell}");
        assert_eq!(cell["success"], true, "{cell}");
        assert!(cell["duration"].as_f64().unwrap() > 0.0, "{cell}");
    }
    assert_eq!(row("shop")["cells"]["edge-a"]["state"], "up");
    assert_eq!(row("shop")["cells"]["edge-c"]["success"], false);

    // The page, as a browser renders it (the root redirects there: the
    // central daemon runs no check of its own).
    let url = format!("{}/", central.url());
    let profile = tempfile::tempdir().unwrap();
    let dom = chromium(profile.path(), &["--dump-dom".into()], &url).await;
    assert!(dom.contains("2 checks at 3 locations"), "{dom}");
    assert!(
        dom.contains("data-location=\"edge-c\" data-state=\"down\">down"),
        "{dom}"
    );
    assert_eq!(dom.matches("data-state=\"up\"").count(), 5, "{dom}");
    let shots = screenshot_dir();
    std::fs::create_dir_all(&shots).unwrap();
    let png = shots.join("fleet.png");
    let _ = std::fs::remove_file(&png);
    chromium(
        profile.path(),
        &[
            format!("--screenshot={}", png.display()),
            "--window-size=1100,500".into(),
        ],
        &url,
    )
    .await;
    let bytes = std::fs::read(&png).unwrap();
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"));
    println!("screenshot: {}", png.display());
    drop(edges);
}
