//! Shared helpers: building the checks, running the CLI, target servers.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect};
use axum::routing::get;
use serde_json::Value;

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap()
}

/// The shared cargo target dir of the guest side (`checks/`).
pub fn guest_target_dir() -> PathBuf {
    repo().join("checks/target")
}

/// Build the official checks and fixtures (once per test process; a no-op
/// when up to date) and return the directory holding the `.wasm` files.
pub fn checks_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let status = Command::new(env!("CARGO"))
            .args(["build", "--release", "--quiet"])
            .current_dir(repo().join("checks"))
            .env("CARGO_TARGET_DIR", guest_target_dir())
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_BUILD_TARGET")
            .status()
            .expect("running cargo build in checks/");
        assert!(status.success(), "building the checks failed");
        guest_target_dir().join("wasm32-wasip2/release")
    })
}

/// Path of a built component, e.g. `wasm("http")`, `wasm("fixture_loop")`.
pub fn wasm(name: &str) -> PathBuf {
    let path = checks_dir().join(format!("{name}.wasm"));
    assert!(path.exists(), "{} was not built", path.display());
    path
}

/// A compiled-component cache shared by all tests of this build.
pub fn cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("component-cache")
}

/// What one CLI invocation produced.
#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// The stdout parsed as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

/// The `vantage` binary under test: the path nextest gives at run time
/// (`NEXTEST_BIN_EXE_vantage`, which follows `--target-dir-remap` when a
/// build is reused or archived), else the one cargo compiled in.
pub fn vantage_bin() -> PathBuf {
    std::env::var_os("NEXTEST_BIN_EXE_vantage")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_vantage")))
}

/// Run the `vantage` binary with `args` (blocking; call from `spawn_blocking`
/// or a sync test).
pub fn vantage(args: &[&str]) -> Output {
    let out = Command::new(vantage_bin())
        .args(args)
        .env("VANTAGE_CACHE_DIR", cache_dir())
        .env_remove("RUST_LOG")
        .output()
        .expect("running vantage");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Run the binary from async tests.
pub async fn vantage_async(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        vantage(&args)
    })
    .await
    .unwrap()
}

/// A target application with healthy and broken endpoints.
fn target_app() -> Router {
    Router::new()
        .route(
            "/healthz",
            get(|| async {
                axum::Json(serde_json::json!({
                    "status": "ok",
                    "checks": { "database": { "status": "ok" }, "queue": { "status": "ok" } }
                }))
            }),
        )
        .route(
            "/degraded-health",
            get(|| async {
                axum::Json(serde_json::json!({
                    "status": "ok",
                    "checks": { "database": { "status": "ok" }, "queue": { "status": "warn" } }
                }))
            }),
        )
        .route(
            "/down-health",
            get(|| async {
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    axum::Json(serde_json::json!({
                        "status": "down",
                        "checks": { "database": { "status": "down" }, "queue": { "status": "ok" } }
                    })),
                )
            }),
        )
        .route(
            "/error",
            get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "boom") }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(600)).await;
                "finally"
            }),
        )
        .route(
            "/wrong-json",
            get(|| async { axum::Json(serde_json::json!({ "status": "down", "version": 3 })) }),
        )
        .route(
            "/not-json",
            get(|| async { ([(header::CONTENT_TYPE, "text/html")], "<html>hello</html>") }),
        )
        .route("/loop", get(|| async { Redirect::temporary("/loop") }))
        .route(
            "/redirect",
            get(|| async { Redirect::permanent("/healthz") }),
        )
        .route(
            "/redirect-to-port/{port}",
            get(
                |axum::extract::Path(port): axum::extract::Path<u16>| async move {
                    Redirect::temporary(&format!("http://127.0.0.1:{port}/healthz"))
                },
            ),
        )
        .route("/login", axum::routing::post(login))
        // A login whose contract changed (the token renamed): a check that
        // reads `token` fails on it with an exception.
        .route(
            "/login-v2",
            axum::routing::post(|| async {
                axum::Json(serde_json::json!({ "access_token": FLOW_TOKEN }))
            }),
        )
        .route("/api/me", get(me))
        .route(
            "/logout",
            axum::routing::post(|| async { StatusCode::NO_CONTENT }),
        )
        .route(
            "/big",
            get(|| async { "x".repeat(2 * 1024 * 1024).into_response() }),
        )
}

/// The password the test application accepts for user `monitor`.
pub const FLOW_PASSWORD: &str = "hunter2-flow-secret";
/// The token it hands out.
pub const FLOW_TOKEN: &str = "tok-7f3a9c";

/// `POST /login`: JSON credentials in, a token and a session cookie out.
async fn login(axum::Json(body): axum::Json<Value>) -> axum::response::Response {
    if body["username"] == "monitor" && body["password"] == FLOW_PASSWORD {
        (
            [(header::SET_COOKIE, "session=s-42; Path=/; HttpOnly")],
            axum::Json(serde_json::json!({ "token": FLOW_TOKEN })),
        )
            .into_response()
    } else {
        (
            StatusCode::UNAUTHORIZED,
            axum::Json(serde_json::json!({ "error": "bad credentials" })),
        )
            .into_response()
    }
}

/// `GET /api/me`: needs the bearer token and the session cookie.
async fn me(headers: axum::http::HeaderMap) -> axum::response::Response {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let cookie = headers
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if bearer != Some(&format!("Bearer {FLOW_TOKEN}")) {
        return (StatusCode::UNAUTHORIZED, "missing or wrong token").into_response();
    }
    if !cookie.split("; ").any(|c| c == "session=s-42") {
        return (StatusCode::FORBIDDEN, "no session cookie").into_response();
    }
    axum::Json(serde_json::json!({ "user": { "name": "monitor", "roles": ["read"] } }))
        .into_response()
}

/// Start the target application on 127.0.0.1 and return its base URL.
pub async fn start_target() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, target_app()).await.unwrap() });
    format!("http://{addr}")
}

/// `vantage run <wasm> --json` plus `extra` arguments.
pub async fn run_json(wasm_name: &str, extra: &[&str]) -> (Output, Value) {
    let mut args = vec![
        "run".to_string(),
        wasm(wasm_name).display().to_string(),
        "--json".to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let out = vantage_async(args).await;
    let json = out.json();
    (out, json)
}

/// The assertion called `name` (or whose name contains `name`) in a result.
pub fn assertion<'a>(result: &'a Value, name: &str) -> &'a Value {
    result["assertions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"].as_str().unwrap().contains(name))
        .unwrap_or_else(|| panic!("no assertion named like {name:?} in {result:#}"))
}

/// A secret `name` held in a file with `value`, and the matching
/// `--secret name=file:PATH` argument (the directory lives as long as the guard).
pub fn secret_file(name: &str, value: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(name);
    std::fs::write(&file, value).unwrap();
    let arg = format!("{name}=file:{}", file.display());
    (dir, arg)
}

/// The sinks of an in-process scheduler test: a fresh board, metrics at
/// location `test`, a history in `dir` and alerts with nowhere to go.
pub fn test_sinks(dir: &Path) -> vantage::sinks::Sinks {
    use std::sync::Arc;
    use vantage::sinks::alerts::{AlertConfig, Alerts};
    use vantage::sinks::board::Board;
    use vantage::sinks::history::{History, Retention};
    use vantage::sinks::metrics::Metrics;
    let board = Board::default();
    vantage::sinks::Sinks {
        board: board.clone(),
        metrics: Arc::new(Metrics::new(board, "test")),
        history: History::open(dir, Retention::default()).unwrap(),
        alerts: Alerts::start(AlertConfig::default()),
        remote_write: Default::default(),
        tap: Default::default(),
    }
}

/// `vantage run COMPONENT --json ARGS…` for a component built by a test:
/// exit code, the result, stderr.
pub async fn run_component_json(component: &Path, args: &[&str]) -> (i32, Value, String) {
    let mut all = vec![
        "run".to_string(),
        component.display().to_string(),
        "--json".into(),
    ];
    all.extend(args.iter().map(|a| a.to_string()));
    let out = vantage_async(all).await;
    let json = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", out.stdout, out.stderr));
    (out.code, json, out.stderr)
}

/// A result's assertions as `name=pass|fail`, in order.
pub fn assertion_names(r: &Value) -> Vec<String> {
    r["assertions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let state = if a["passed"] == true { "pass" } else { "fail" };
            format!("{}={state}", a["name"].as_str().unwrap())
        })
        .collect()
}

/// `vantage test COMPONENT CASSETTE` must pass; its report (stdout).
pub async fn assert_replays(component: &Path, cassette: &Path) -> String {
    let out = vantage_async(vec![
        "test".into(),
        component.display().to_string(),
        cassette.display().to_string(),
    ])
    .await;
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("ok ") && out.stdout.contains("1 passed, 0 failed"),
        "{}",
        out.stdout
    );
    out.stdout
}
