//! Heartbeat checks, end to end: a `vantage daemon` with a `[[heartbeat]]`
//! receives pings over HTTP, keeps them across a restart, goes down when a
//! started job does not finish within its grace and when pings stop, and
//! alerts through a real Alertmanager; wrong tokens are 404s and floods
//! are 429s. The schedule arithmetic (late by 1 s, an early ping for the
//! next cron slot, `rid` pairing) is tested beside it
//! (`host/src/daemon/heartbeats/expect.rs`).

use std::time::Duration;

use serde_json::Value;

use crate::daemon::Daemon;
use crate::servers::{Alertmanager, get_json, wait_until};

const TOKEN: &str = "hb-Zq3v9T1x8LmN4pR7sW2yK5dF";

/// `method url`: the status code and body.
async fn request(method: &str, url: String) -> (u16, String) {
    let client = reqwest::Client::new();
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let r = client
        .request(method, url)
        .body("backup: 42 GiB, 3 snapshots\n")
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

fn state(daemon: &Daemon) -> (String, String) {
    let v: Value = daemon.api("/api/v1/checks/backup");
    let labels = &v["last"]["result"]["labels"];
    let hb = labels
        .as_array()
        .and_then(|l| l.iter().find(|p| p[0] == "heartbeat_state"))
        .map(|p| p[1].as_str().unwrap_or_default().to_string())
        .unwrap_or_default();
    (v["state"].as_str().unwrap_or_default().to_string(), hb)
}

#[tokio::test(flavor = "multi_thread")]
async fn pings_keep_a_heartbeat_up_a_silent_job_alerts_and_a_restart_forgets_nothing() {
    let alertmanager = tokio::task::spawn_blocking(Alertmanager::start)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let body = format!(
        "\n[[heartbeat]]\nname = \"backup\"\nperiod = \"3s\"\ngrace = \"2s\"\ntoken = \"file:{}\"\n\
         \n[alerts]\nalertmanager = [\"{}\"]\nresend = \"1s\"\n",
        token_file.display(),
        alertmanager.url()
    );
    let path = dir.path().to_path_buf();
    let b = body.clone();
    let daemon = tokio::task::spawn_blocking(move || Daemon::start(&path, "", &b, &["--no-watch"]))
        .await
        .unwrap();
    let base = daemon.url();

    // New until the first ping; a wrong token is not found.
    assert_eq!(state(&daemon).1, "new");
    let (code, _) = request("GET", format!("{base}/ping/hb-wrong-token-0000000000000")).await;
    assert_eq!(code, 404);
    let (code, text) = request("POST", format!("{base}/ping/{TOKEN}")).await;
    assert_eq!((code, text.as_str()), (200, "OK\n"));
    assert_eq!(state(&daemon), ("up".into(), "up".into()));
    let last: Value = daemon.api("/api/v1/checks/backup");
    assert_eq!(
        last["last"]["result"]["logs"][0]["message"], "backup: 42 GiB, 3 snapshots",
        "{last:#}"
    );
    assert_eq!(request("HEAD", format!("{base}/ping/{TOKEN}")).await.0, 200);

    // A job starts; the daemon restarts before it ends: the start is kept.
    assert_eq!(
        request("GET", format!("{base}/ping/{TOKEN}/start?rid=r1"))
            .await
            .0,
        200
    );
    assert_eq!(state(&daemon).1, "started");
    drop(daemon);
    let path = dir.path().to_path_buf();
    let daemon =
        tokio::task::spawn_blocking(move || Daemon::start(&path, "", &body, &["--no-watch"]))
            .await
            .unwrap();
    let base = daemon.url();
    let after = wait_until(
        "the state after the restart",
        Duration::from_secs(10),
        || {
            let s = state(&daemon);
            ((!s.1.is_empty()).then(|| s.clone()), format!("{s:?}"))
        },
    );
    assert!(matches!(after.1.as_str(), "started" | "down"), "{after:?}");

    // It never finishes: down after its grace, and Alertmanager hears it.
    let alert = tokio::task::spawn_blocking(move || {
        wait_until("the alert", Duration::from_secs(20), || {
            let a = alertmanager.alert("backup");
            (a.clone(), format!("{a:?}"))
        })
    })
    .await
    .unwrap();
    assert_eq!(alert["labels"]["location"], "e2e-dc1", "{alert}");
    let v: Value = daemon.api("/api/v1/checks/backup");
    assert_eq!(v["state"], "down", "{v:#}");
    assert!(
        v["last"]["result"]["assertions"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("did not finish within its grace of 2s"),
        "{v:#}"
    );

    // It ends (paired by rid) with exit code 0: up again.
    assert_eq!(
        request("GET", format!("{base}/ping/{TOKEN}/0?rid=r1"))
            .await
            .0,
        200
    );
    assert_eq!(state(&daemon), ("up".into(), "up".into()));
    // A failure reported with an exit code is down at once.
    assert_eq!(
        request("POST", format!("{base}/ping/{TOKEN}/3")).await.0,
        200
    );
    let v: Value = daemon.api("/api/v1/checks/backup");
    assert_eq!(v["state"], "down");
    assert_eq!(
        v["last"]["result"]["summary"],
        "the job failed with exit code 3"
    );
    // The next success ends it; then silence makes it late, then down.
    assert_eq!(request("GET", format!("{base}/ping/{TOKEN}")).await.0, 200);
    let seen = wait_until("late then down", Duration::from_secs(15), || {
        let s = state(&daemon);
        ((s.1 == "down").then_some(s.clone()), format!("{s:?}"))
    });
    assert_eq!(seen.0, "down");
    let runs = get_json(&format!("{base}/api/v1/checks/backup/runs?limit=50"));
    let states: Vec<&str> = runs
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .filter_map(|r| {
            r["result"]["labels"]
                .as_array()
                .and_then(|l| l.iter().find(|p| p[0] == "heartbeat_state"))
                .and_then(|p| p[1].as_str())
        })
        .collect();
    let tail = &states[states.len() - 3..];
    assert_eq!(tail, ["up", "late", "down"], "{states:?}");

    // Uptime Kuma's and Gatus's ways of reporting.
    let (code, _) = request(
        "GET",
        format!("{base}/api/push/{TOKEN}?status=down&msg=disk%20full"),
    )
    .await;
    assert_eq!(code, 200);
    let v: Value = daemon.api("/api/v1/checks/backup");
    assert_eq!(v["state"], "down", "{v:#}");
    assert_eq!(
        v["last"]["result"]["logs"][0]["message"], "disk full",
        "{v:#}"
    );
    let client = reqwest::Client::new();
    let gatus = |key: &str, token: &str| {
        client
            .post(format!(
                "{base}/api/v1/endpoints/{key}/external?success=true"
            ))
            .bearer_auth(token)
            .send()
    };
    assert_eq!(gatus("other", TOKEN).await.unwrap().status().as_u16(), 404);
    assert_eq!(
        gatus("backup", "wrong").await.unwrap().status().as_u16(),
        404
    );
    assert_eq!(gatus("backup", TOKEN).await.unwrap().status().as_u16(), 200);
    assert_eq!(state(&daemon).0, "up");

    // A flood of pings is cut.
    let mut codes = Vec::new();
    for _ in 0..30 {
        codes.push(request("GET", format!("{base}/ping/{TOKEN}")).await.0);
    }
    assert!(codes.contains(&429), "{codes:?}");
    // An unknown action is not a ping.
    let (code, text) = request("GET", format!("{base}/ping/{TOKEN}/reboot")).await;
    assert_eq!(code, 404, "{text}");
    assert!(text.contains("use /start, /fail or an exit code"), "{text}");
}
