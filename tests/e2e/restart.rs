//! The `vantage daemon` binary stopped and started again on the same data
//! directory: a check's state, streaks and run count come back from the
//! history, and an alert that fired before the restart is carried on, not
//! fired again.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde_json::Value;

use crate::daemon::Daemon;
use crate::servers::wait_until;
use crate::support::wasm;

/// Start an axum app on 127.0.0.1; its base URL.
async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// A target whose `/healthz` answers 200 or 500 as the test says.
async fn switchable_target(healthy: Arc<AtomicBool>) -> String {
    let app = Router::new()
        .route(
            "/healthz",
            get(|State(healthy): State<Arc<AtomicBool>>| async move {
                if healthy.load(Ordering::SeqCst) {
                    (StatusCode::OK, "ok")
                } else {
                    (StatusCode::INTERNAL_SERVER_ERROR, "down")
                }
            }),
        )
        .with_state(healthy);
    serve(app).await
}

/// A webhook receiver: every document it was sent.
async fn webhook() -> (Arc<Mutex<Vec<Value>>>, String) {
    let docs: Arc<Mutex<Vec<Value>>> = Arc::default();
    let app = Router::new()
        .route(
            "/hook",
            post(
                |State(docs): State<Arc<Mutex<Vec<Value>>>>,
                 axum::Json(body): axum::Json<Value>| async move {
                    docs.lock().unwrap().push(body);
                    StatusCode::OK
                },
            ),
        )
        .with_state(docs.clone());
    let base = serve(app).await;
    (docs, format!("{base}/hook"))
}

fn check(daemon: &Daemon, name: &str) -> Value {
    daemon.api(&format!("/api/v1/checks/{name}"))
}

fn documents(docs: &Mutex<Vec<Value>>) -> Vec<Value> {
    docs.lock().unwrap().clone()
}

/// The scenario: a check goes down and its alert fires; the daemon
/// is stopped and started again while the target is still down. Right after
/// the restart the check is `down` (not `pending`) with its runs counted;
/// its next runs do not fire a new alert; when it recovers, the episode
/// from before the restart is resolved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_the_state_runs_and_alert_of_a_down_check() {
    let healthy = Arc::new(AtomicBool::new(false));
    let target = switchable_target(healthy.clone()).await;
    let (docs, hook) = webhook().await;
    let body = format!(
        "\n[[check]]\nname = \"flappy\"\ncomponent = \"{}\"\nevery = \"1s\"\n\
         targets = [\"{target}/healthz\"]\nallow = [\"{{target}}\"]\nfailure_threshold = 2\n\
         \n[alerts]\nwebhooks = [\"{hook}\"]\n",
        wasm("http").display()
    );
    let dir = tempfile::tempdir().unwrap();
    let timeout = Duration::from_secs(20);

    let mut first = Daemon::start(dir.path(), "", &body, &["--no-watch"]);
    wait_until("flappy down", timeout, || {
        let c = check(&first, "flappy");
        ((c["state"] == "down").then_some(()), c.to_string())
    });
    let fired = wait_until("the firing webhook", timeout, || {
        let d = documents(&docs);
        (d.first().cloned(), format!("{d:?}"))
    });
    assert_eq!(fired["status"], "firing", "{fired:#}");
    first.sigterm();
    assert!(first.wait(Duration::from_secs(30)).success());
    // The history is the truth of what ran before the restart.
    let stored = {
        let conn = rusqlite_count(dir.path());
        assert!(conn >= 2, "{conn} runs stored");
        conn
    };
    drop(first);

    let second = Daemon::start(dir.path(), "", &body, &["--no-watch"]);
    // At once, before any new run: down, with the runs from before.
    let c = check(&second, "flappy");
    assert_eq!(c["state"], "down", "state after the restart: {c:#}");
    assert!(
        c["runs"].as_u64().unwrap() >= stored,
        "runs after the restart: {c:#} (stored {stored})"
    );
    // Three more bad runs: no new alert (today a restart fires again).
    let target_runs = c["runs"].as_u64().unwrap() + 3;
    wait_until("three runs after the restart", timeout, || {
        let runs = check(&second, "flappy")["runs"].as_u64().unwrap();
        ((runs >= target_runs).then_some(()), runs.to_string())
    });
    assert_eq!(check(&second, "flappy")["state"], "down");
    let d = documents(&docs);
    assert_eq!(d.len(), 1, "a restart fired the alert again: {d:#?}");
    assert!(
        second
            .stderr()
            .contains("alert carried on from before the restart"),
        "{}",
        second.stderr()
    );

    // It recovers: the episode from before the restart is resolved.
    healthy.store(true, Ordering::SeqCst);
    let resolved = wait_until("the resolving webhook", timeout, || {
        let d = documents(&docs);
        (d.get(1).cloned(), format!("{d:?}"))
    });
    assert_eq!(resolved["status"], "resolved", "{resolved:#}");
    assert_eq!(resolved["started_at"], fired["started_at"]);
    assert_eq!(check(&second, "flappy")["state"], "up");
}

/// Runs stored in the daemon's history (read with SQLite directly, the
/// daemon being stopped).
fn rusqlite_count(dir: &std::path::Path) -> u64 {
    let conn = rusqlite::Connection::open(dir.join("data").join("history.sqlite")).unwrap();
    conn.query_row(
        "SELECT COUNT(*) FROM runs WHERE check_name = 'flappy'",
        [],
        |r| r.get::<_, i64>(0),
    )
    .unwrap() as u64
}
