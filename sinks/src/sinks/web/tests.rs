//! Router tests: a [`Board`] filled by hand, a [`History`] in a tempdir,
//! requests through [`tower::ServiceExt::oneshot`].

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::Value;
use tower::ServiceExt;

use super::*;
use crate::result::{Assertion, ErrorKind, RunError, Status};
use crate::result::{CheckState, RunRecord, Transition};
use crate::sinks::board::CheckView;
use crate::sinks::history::Retention;
use crate::sinks::testing::run_record;

const MIN: u64 = 60_000;

fn run(check: &str, started: u64, status: Status, summary: &str, state: CheckState) -> RunRecord {
    let mut r = run_record(check, started, status, state);
    r.result.summary = summary.into();
    r.result.duration_ms = 40.0 + (started / MIN % 7) as f64 * 10.0;
    r.result.location = "eu-west".into();
    r
}

fn view(name: &str, state: CheckState) -> CheckView {
    CheckView {
        kind: crate::sinks::board::Kind::Check,
        name: name.into(),
        component: "checks/http.wasm".into(),
        schedule: "every 1m".into(),
        targets: vec![format!("https://{name}.example.com/healthz")],
        location: "eu-west".into(),
        severity: "critical".into(),
        state,
        next_unix_ms: Some(now_unix_ms() + 42_000),
        ..Default::default()
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    state: WebState,
    now: u64,
}

/// `web` is up (10 passing runs), `api` is down (8 passing, then 2 failing,
/// the last with a failing assertion), `queue` is pending (no run);
/// `old-failure` is up with a failure only in the history.
async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let history = History::open(dir.path(), Retention::default()).unwrap();
    let board = Board::default();
    let now = now_unix_ms();

    let mut web = view("web", CheckState::Up);
    for i in (1..=10).rev() {
        let r = Arc::new(run(
            "web",
            now - i * MIN,
            Status::Pass,
            "200 OK",
            CheckState::Up,
        ));
        history.record(r.clone());
        web.last = Some(r);
        web.runs += 1;
    }
    board.insert(web);

    let mut api = view("api", CheckState::Down);
    for i in (1..=10).rev() {
        let mut r = run("api", now - i * MIN, Status::Pass, "200 OK", CheckState::Up);
        if i <= 2 {
            r.result.status = Status::Fail;
            r.result.summary = "503 Service Unavailable".into();
            r.result.assertions = vec![Assertion {
                name: "status in 200".into(),
                passed: false,
                warn: false,
                detail: "got 503".into(),
                duration_ms: None,
            }];
            r.state = CheckState::Down;
            r.transition = (i == 1).then_some(Transition {
                from: CheckState::Up,
                to: CheckState::Down,
            });
        }
        let r = Arc::new(r);
        history.record(r.clone());
        if r.result.status == Status::Fail {
            api.last_failure = Some(r.clone());
        }
        api.last = Some(r);
        api.runs += 1;
    }
    api.maintenance = Some("db-upgrade".into());
    board.insert(api);

    board.insert(view("queue", CheckState::Pending));

    let mut old = view("old-failure", CheckState::Up);
    let mut bad = run(
        "old-failure",
        now - 3 * MIN,
        Status::Error,
        "",
        CheckState::Down,
    );
    bad.result.error = Some(RunError {
        kind: ErrorKind::Deadline,
        message: "deadline 5s exceeded".into(),
    });
    history.record(Arc::new(bad));
    let good = Arc::new(run(
        "old-failure",
        now - MIN,
        Status::Pass,
        "ok",
        CheckState::Up,
    ));
    history.record(good.clone());
    old.last = Some(good);
    board.insert(old);

    history.flush().await;
    let state = WebState {
        board,
        history,
        metrics: Arc::new(|| "# TYPE vantage_up gauge\nvantage_up 1\n# EOF\n".to_string()),
        location: "eu-west".into(),
        version: "9.9.9",
        central: None,
        health: Default::default(),
    };
    Fixture {
        _dir: dir,
        state,
        now,
    }
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
    fn header(&self, name: header::HeaderName) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }
}

async fn get(state: &WebState, uri: &str) -> Answer {
    let response = router(state.clone())
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), 16 << 20)
        .await
        .unwrap();
    Answer {
        status,
        headers,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

#[tokio::test]
async fn healthz_reports_the_daemon() {
    let f = fixture().await;
    let a = get(&f.state, "/healthz").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(
        a.json(),
        serde_json::json!({"status": "ok", "checks": 4, "location": "eu-west", "version": "9.9.9"})
    );
    // A probe that reports a problem makes it a 503 naming it; once the
    // problem is gone it is ok again.
    let lapsed = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let flag = lapsed.clone();
    f.state.health.add(Arc::new(move || {
        flag.load(std::sync::atomic::Ordering::Relaxed)
            .then(|| "this replica's Lease has expired".to_string())
    }));
    let b = get(&f.state, "/healthz").await;
    assert_eq!(b.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(b.json()["status"], "unhealthy");
    assert_eq!(b.json()["problems"][0], "this replica's Lease has expired");
    // The process is alive all the same (the liveness probe).
    assert_eq!(get(&f.state, "/livez").await.status, StatusCode::OK);
    lapsed.store(false, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(get(&f.state, "/healthz").await.status, StatusCode::OK);
}

#[tokio::test]
async fn metrics_are_openmetrics_text() {
    let f = fixture().await;
    let a = get(&f.state, "/metrics").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(
        a.header(header::CONTENT_TYPE),
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    assert!(a.body.contains("vantage_up 1"), "{}", a.body);
}

#[tokio::test]
async fn checks_lists_every_check_with_uptime() {
    let f = fixture().await;
    let a = get(&f.state, "/api/v1/checks").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.header(header::CONTENT_TYPE), "application/json");
    let list = a.json();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["api", "old-failure", "queue", "web"]);

    let api = &list[0];
    assert_eq!(api["state"], "down");
    assert_eq!(api["component"], "checks/http.wasm");
    assert_eq!(api["schedule"], "every 1m");
    assert_eq!(api["targets"][0], "https://api.example.com/healthz");
    assert_eq!(api["location"], "eu-west");
    assert_eq!(api["severity"], "critical");
    assert_eq!(api["runs"], 10);
    assert_eq!(api["skipped_overlap"], 0);
    assert_eq!(api["maintenance"], "db-upgrade");
    assert!(api["next_unix_ms"].as_u64().unwrap() > f.now);
    assert_eq!(api["last"]["status"], "fail");
    assert_eq!(api["last"]["summary"], "503 Service Unavailable");
    assert_eq!(api["last"]["reason"], "status in 200: got 503");
    assert_eq!(api["last"]["run_id"], format!("api-{}", f.now - MIN));
    assert_eq!(api["last"]["started_unix_ms"], f.now - MIN);
    assert!(api["last"]["duration_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(api["last_failure"]["reason"], "status in 200: got 503");
    assert_eq!(api["uptime_24h"], 0.8);
    assert_eq!(api["uptime_7d"], 0.8);
    assert_eq!(api["runs_24h"], 10);

    // A failure the board does not know (before a restart) comes from history.
    let old = &list[1];
    assert_eq!(old["last_failure"]["status"], "error");
    assert_eq!(old["last_failure"]["reason"], "deadline 5s exceeded");
    assert_eq!(old["uptime_24h"], 0.5);

    let queue = &list[2];
    assert_eq!(queue["state"], "pending");
    assert_eq!(queue["last"], Value::Null);
    assert_eq!(queue["last_failure"], Value::Null);
    assert_eq!(queue["uptime_24h"], Value::Null);
    assert_eq!(queue["uptime_7d"], Value::Null);

    let web = &list[3];
    assert_eq!(web["uptime_24h"], 1.0);
    assert_eq!(web["last_failure"], Value::Null);
}

#[tokio::test]
async fn one_check_has_its_full_last_run_and_summary() {
    let f = fixture().await;
    let a = get(&f.state, "/api/v1/checks/api").await;
    assert_eq!(a.status, StatusCode::OK);
    let c = a.json();
    assert_eq!(c["name"], "api");
    assert_eq!(c["state"], "down");
    // The full record: assertions, transition, severity...
    assert_eq!(c["last"]["result"]["assertions"][0]["detail"], "got 503");
    assert_eq!(c["last"]["transition"]["to"], "down");
    assert_eq!(c["last"]["reason"], "status in 200: got 503");
    assert_eq!(c["last_failure"]["result"]["status"], "fail");
    assert_eq!(c["uptime_24h"], 0.8);
    assert_eq!(c["summary"]["runs_24h"], 10);
    let latency = c["summary"]["latency"].as_array().unwrap();
    assert_eq!(latency.len(), 10);
    assert_eq!(latency[9][0], f.now - MIN);
    assert_eq!(
        c["summary"]["last_failure"]["result"]["run_id"],
        format!("api-{}", f.now - MIN)
    );

    let a = get(&f.state, "/api/v1/checks/queue").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json()["last"], Value::Null);
}

#[tokio::test]
async fn unknown_checks_and_routes_are_json_404s() {
    let f = fixture().await;
    let a = get(&f.state, "/api/v1/checks/x").await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_eq!(a.body, r#"{"error":"no check named \"x\""}"#);
    let a = get(&f.state, "/api/v1/checks/x/runs").await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_eq!(a.json()["error"], "no check named \"x\"");
    let a = get(&f.state, "/nope").await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_eq!(a.json()["error"], "no route for /nope");
}

#[tokio::test]
async fn runs_are_newest_first_with_a_checked_limit() {
    let f = fixture().await;
    let a = get(&f.state, "/api/v1/checks/web/runs").await;
    assert_eq!(a.status, StatusCode::OK);
    let runs = a.json();
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 10);
    let started: Vec<u64> = runs
        .iter()
        .map(|r| r["result"]["started_unix_ms"].as_u64().unwrap())
        .collect();
    assert!(started.windows(2).all(|w| w[0] > w[1]), "{started:?}");
    assert_eq!(started[0], f.now - MIN);

    let a = get(&f.state, "/api/v1/checks/web/runs?limit=3").await;
    assert_eq!(a.json().as_array().unwrap().len(), 3);
    let a = get(&f.state, "/api/v1/checks/web/runs?limit=1000&other=x").await;
    assert_eq!(a.json().as_array().unwrap().len(), 10);

    for bad in ["abc", "0", "1001", "-1", ""] {
        let a = get(&f.state, &format!("/api/v1/checks/web/runs?limit={bad}")).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{bad}");
        let err = a.json()["error"].as_str().unwrap().to_string();
        assert_eq!(
            err,
            format!("limit must be a whole number from 1 to 1000, got {bad:?}")
        );
    }
}

#[tokio::test]
async fn status_page_shows_every_check_with_its_state() {
    let f = fixture().await;
    let a = get(&f.state, "/").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.header(header::CONTENT_TYPE), "text/html; charset=utf-8");
    let html = &a.body;
    for (name, state) in [
        ("web", "up"),
        ("api", "down"),
        ("queue", "pending"),
        ("old-failure", "up"),
    ] {
        let tag = format!(r#"id="check-{name}" data-state="{state}""#);
        assert!(html.contains(&tag), "{tag} missing:\n{html}");
    }
    // Header counts, problems first, text next to colours.
    assert!(html.contains("<b>2</b> up"), "{html}");
    assert!(html.contains("<b>1</b> down"), "{html}");
    assert!(html.contains("<b>1</b> pending"), "{html}");
    assert!(html.contains("1 check is down"), "{html}");
    assert!(html.find("check-api").unwrap() < html.find("check-queue").unwrap());
    assert!(html.find("check-queue").unwrap() < html.find("check-web").unwrap());
    assert!(html.contains(">Down</span>"));
    // Details: targets, summary, failure reason, uptime, sparkline, schedule,
    // maintenance, next run, location.
    assert!(html.contains("https://api.example.com/healthz"));
    assert!(html.contains("503 Service Unavailable"));
    assert!(html.contains("status in 200: got 503"));
    assert!(html.contains("deadline 5s exceeded"));
    assert!(html.contains(">80%<"), "{html}");
    assert!(html.contains(">100%<"));
    assert!(html.contains("<svg class=\"spark\""));
    assert!(html.contains("every 1m"));
    assert!(html.contains("Maintenance · db-upgrade"));
    assert!(html.contains("Next <time"));
    assert!(html.contains("<b>eu-west</b>"));
    // No external assets.
    assert!(!html.contains("src=\"http"), "{html}");
    assert!(!html.contains("href=\"http"), "{html}");
}

#[tokio::test]
async fn status_page_escapes_what_checks_and_config_say() {
    let f = fixture().await;
    let evil = "<script>alert('x')</script>";
    let mut v = view("evil\"><b>", CheckState::Down);
    v.targets = vec![format!("https://x/?q={evil}")];
    v.schedule = format!("every {evil}");
    v.maintenance = Some(evil.into());
    let mut r = run("evil", f.now, Status::Fail, evil, CheckState::Down);
    r.result.error = Some(RunError {
        kind: ErrorKind::Panic,
        message: format!("{evil}\nlast lines on stderr:\nTraceback {evil}"),
    });
    let r = Arc::new(r);
    v.last = Some(r.clone());
    v.last_failure = Some(r);
    f.state.board.insert(v);
    let mut state = f.state.clone();
    state.location = evil.into();

    let html = get(&state, "/").await.body;
    // The page's own script is the only one.
    assert_eq!(html.matches("<script").count(), 1, "{html}");
    assert!(!html.contains("alert('x')"), "{html}");
    assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
    assert!(
        html.contains(r#"id="check-evil&quot;&gt;&lt;b&gt;""#),
        "{html}"
    );
    assert!(!html.contains("<b>\""));
    // A multi-line reason: its first line in the row, the rest folded.
    assert!(
        html.contains(
            "<details class=\"c-detail\"><summary>details</summary><pre>last lines on stderr:\nTraceback &lt;script&gt;"
        ),
        "{html}"
    );
}

#[tokio::test]
async fn status_page_allows_only_its_own_script_and_style() {
    let f = fixture().await;
    let a = get(&f.state, "/").await;
    let csp = a.header(header::CONTENT_SECURITY_POLICY);
    assert!(csp.contains("default-src 'none'"), "{csp}");
    let script = a
        .body
        .split("<script>")
        .nth(1)
        .and_then(|s| s.split("</script>").next())
        .unwrap();
    assert!(csp.contains(&page::sha256_source(script)), "{csp}");
    let style = a
        .body
        .split("<style>")
        .nth(1)
        .and_then(|s| s.split("</style>").next())
        .unwrap();
    assert!(csp.contains(&page::sha256_source(style)), "{csp}");
}

#[tokio::test]
async fn status_page_without_checks_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let state = WebState {
        board: Board::default(),
        history: History::open(dir.path(), Retention::default()).unwrap(),
        metrics: Arc::new(String::new),
        location: "here".into(),
        version: "0",
        central: None,
        health: Default::default(),
    };
    let a = get(&state, "/").await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.body.contains("No checks configured"));
    let a = get(&state, "/api/v1/checks").await;
    assert_eq!(a.body, "[]");
}

#[tokio::test]
async fn serve_answers_and_shuts_down_gracefully() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let f = fixture().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, router(f.state.clone()), async {
        let _ = stopped.await;
    }));
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains(r#""status":"ok""#), "{answer}");
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("serve returns after shutdown")
        .unwrap()
        .unwrap();
}

#[test]
fn formatting_helpers() {
    use page::{ago, esc, fmt_duration, fmt_percent, until};
    assert_eq!(fmt_percent(1.0), "100%");
    assert_eq!(fmt_percent(0.99999), "99.99%");
    assert_eq!(fmt_percent(0.8), "80%");
    assert_eq!(fmt_percent(0.125), "12.5%");
    assert_eq!(fmt_percent(0.0), "0%");
    assert_eq!(fmt_duration(0.4), "0.40 ms");
    assert_eq!(fmt_duration(87.2), "87 ms");
    assert_eq!(fmt_duration(1250.0), "1.25 s");
    assert_eq!(ago(1_000, 2_000), "just now");
    assert_eq!(ago(0, 42_000), "42 s ago");
    assert_eq!(ago(0, 5 * MIN + 10), "5 min ago");
    assert_eq!(ago(0, 3 * 3_600_000), "3 h ago");
    assert_eq!(ago(0, 2 * 86_400_000), "2 d ago");
    assert_eq!(until(1_000, 2_000), "now");
    assert_eq!(until(42_000, 0), "in 42 s");
    assert_eq!(until(41_500, 0), "in 42 s");
    assert_eq!(
        esc(r#"<a href="x">'&'</a>"#),
        "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
    );
    assert_eq!(page::base64(b""), "");
    assert_eq!(page::base64(b"f"), "Zg==");
    assert_eq!(page::base64(b"fo"), "Zm8=");
    assert_eq!(page::base64(b"foobar"), "Zm9vYmFy");
}

#[test]
fn sparkline_scales_from_zero_to_the_slowest_run() {
    let svg = page::sparkline(&[(1, 10.0), (2, 20.0), (3, 40.0)]);
    assert!(svg.starts_with("<svg"), "{svg}");
    assert!(svg.contains("min 10 ms, average 23 ms, max 40 ms"), "{svg}");
    // The slowest point touches the top padding, the first sits at a quarter.
    assert!(svg.contains("130.0,2.0"), "{svg}");
    assert!(svg.contains("2.0,21.5"), "{svg}");
    assert!(page::sparkline(&[]).contains("No runs yet"));
    assert!(page::sparkline(&[(1, 5.0)]).contains("<circle"));
}
