//! The status page in a real browser: the web router (library API) on
//! 127.0.0.1 with three checks (up, down, pending), rendered by headless
//! Chromium — once to read the DOM after the page's script ran, once to take
//! a screenshot (`target/screenshots/status-page.png`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use vantage::result::{Assertion, Status};
use vantage::result::{CheckState, RunRecord, Transition};
use vantage::sinks::board::{Board, CheckView};
use vantage::sinks::history::{History, Retention};
use vantage::sinks::web::{self, WebState};
use vantage_sinks::sinks::testing::run_record;

const CHROMIUM: &str = "/usr/bin/chromium";
const MIN: u64 = 60_000;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn run(check: &str, started: u64, status: Status, summary: &str, duration_ms: f64) -> RunRecord {
    let good = matches!(status, Status::Pass | Status::Degraded);
    let state = if good {
        CheckState::Up
    } else {
        CheckState::Down
    };
    let mut record = run_record(check, started, status, state);
    record.result.summary = summary.into();
    record.result.duration_ms = duration_ms;
    record.result.location = "eu-west-1".into();
    record
}

fn view(name: &str, schedule: &str, target: &str, state: CheckState, now: u64) -> CheckView {
    CheckView {
        kind: vantage::sinks::board::Kind::Check,
        name: name.into(),
        component: "checks/http.wasm".into(),
        schedule: schedule.into(),
        targets: vec![target.into()],
        location: "eu-west-1".into(),
        severity: "critical".into(),
        state,
        next_unix_ms: Some(now + 37_000),
        ..CheckView::default()
    }
}

/// `storefront` up (60 passing runs with a wavy latency), `payments-api`
/// down (passing, then failing), `search` pending (no run yet). Every run is
/// also written to `history`.
async fn fill(board: &Board, history: &History) {
    let now = now_ms();

    let mut up = view(
        "storefront",
        "every 1m",
        "https://shop.example.com/healthz",
        CheckState::Up,
        now,
    );
    for i in (1..=60u64).rev() {
        let ms = 80.0 + 25.0 * ((i as f64) / 4.0).sin() + (i % 7) as f64 * 3.0;
        let mut r = run(
            "storefront",
            now - i * MIN,
            Status::Pass,
            &format!("200 OK in {ms:.0} ms, 4/4 assertions passed"),
            ms,
        );
        // One exchange, its phases adding up to the run's time.
        r.result.timings.http = vec![vantage::result::HttpTrace {
            method: "GET".into(),
            url: "https://shop.example.com/healthz".into(),
            status: Some(200),
            remote_addr: Some("203.0.113.7:443".into()),
            redirects: 0,
            timings: vantage::result::http::Timings {
                resolve_ms: 2.0,
                connect_ms: ms * 0.15,
                tls_ms: ms * 0.25,
                processing_ms: ms * 0.45,
                transfer_ms: ms * 0.15 - 2.0,
                total_ms: ms,
            },
            error: None,
        }];
        r.result.timings.tls = vec![vantage::result::TlsTrace {
            via: "http".into(),
            server: "shop.example.com:443".into(),
            version: "TLSv1.3".into(),
            verdict: "valid".into(),
            earliest_expiry_unix_ms: Some((now + 54 * 86_400_000) as i64),
            verified_expiry_unix_ms: Some((now + 54 * 86_400_000) as i64),
            leaf: Some(vantage::result::LeafCertificate {
                subject: "CN=shop.example.com".into(),
                issuer: "CN=Example Issuing CA".into(),
                sans: vec!["shop.example.com".into()],
                serial: "0a1b".into(),
                sha256_fingerprint: "ff".into(),
            }),
        }];
        r.result.assertions = vec![Assertion {
            name: "status is 200".into(),
            passed: true,
            warn: false,
            detail: "got 200 OK".into(),
            duration_ms: None,
        }];
        let r = Arc::new(r);
        history.record(r.clone());
        up.last = Some(r);
        up.runs += 1;
    }
    board.insert(up);

    let mut down = view(
        "payments-api",
        "cron */2 * * * *",
        "https://api.example.com/v1/payments/health",
        CheckState::Down,
        now,
    );
    for i in (1..=40u64).rev() {
        let failing = i <= 3;
        let mut r = if failing {
            run(
                "payments-api",
                now - i * 2 * MIN,
                Status::Fail,
                "503 Service Unavailable in 1.2 s, 2/4 assertions failed",
                1200.0 + i as f64 * 40.0,
            )
        } else {
            run(
                "payments-api",
                now - i * 2 * MIN,
                Status::Pass,
                "200 OK, 4/4 assertions passed",
                140.0 + (i % 5) as f64 * 12.0,
            )
        };
        if failing {
            r.result.assertions = vec![Assertion {
                name: "status in 200".into(),
                passed: false,
                warn: false,
                detail: "got 503 Service Unavailable".into(),
                duration_ms: None,
            }];
            r.transition = (i == 3).then_some(Transition {
                from: CheckState::Up,
                to: CheckState::Down,
            });
        }
        let r = Arc::new(r);
        history.record(r.clone());
        if failing {
            down.last_failure = Some(r.clone());
        }
        down.last = Some(r);
        down.runs += 1;
    }
    board.insert(down);

    let mut pending = view(
        "search",
        "every 5m",
        "https://search.example.com/ready",
        CheckState::Pending,
        now,
    );
    pending.maintenance = Some("index-rebuild".into());
    board.insert(pending);

    history.flush().await;
}

/// Run headless Chromium with `args` then `url`; returns its stdout.
pub(crate) async fn chromium(profile: &Path, args: &[String], url: &str) -> String {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: the status page test needs Chromium. \
         Run `bash scripts/test-all.sh`, which installs it (apt-get install -y chromium)."
    );
    let mut cmd = tokio::process::Command::new(CHROMIUM);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .args(args)
    .arg(url)
    .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(90), cmd.output())
        .await
        .expect("chromium did not finish within 90 s")
        .expect("running chromium");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "chromium failed ({}):\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The opening tag of the element with `id`, in `html`.
fn tag_with_id<'a>(html: &'a str, id: &str) -> &'a str {
    let at = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no element with id {id:?} in the DOM:\n{html}"));
    let start = html[..at].rfind('<').unwrap();
    let end = at + html[at..].find('>').unwrap();
    &html[start..=end]
}

/// The element with `id`, up to the next check (enough to look for text).
fn section_with_id<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html.find(&format!("id=\"{id}\"")).unwrap();
    let end = html[start..]
        .find("</article>")
        .map_or(html.len(), |e| start + e);
    &html[start..end]
}

pub(crate) fn screenshot_dir() -> PathBuf {
    // CARGO_TARGET_TMPDIR is <target>/tmp.
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("screenshots")
}

#[tokio::test(flavor = "multi_thread")]
async fn status_page_renders_in_headless_chromium() {
    let (base, stop, server, _data) = serve_filled().await;
    let url = format!("{base}/");

    // 1. The DOM after the page loaded and its script ran.
    let profile = tempfile::tempdir().unwrap();
    let dom = chromium(profile.path(), &["--dump-dom".into()], &url).await;
    for (name, state, label) in [
        ("storefront", "up", "Up"),
        ("payments-api", "down", "Down"),
        ("search", "pending", "Pending"),
    ] {
        let tag = tag_with_id(&dom, &format!("check-{name}"));
        assert!(
            tag.contains(&format!("data-state=\"{state}\"")),
            "{name} should be {state}: {tag}"
        );
        let row = section_with_id(&dom, &format!("check-{name}"));
        assert!(
            row.contains(&format!(">{label}</span>")),
            "{name}: no {label} badge text in {row}"
        );
    }
    let down = section_with_id(&dom, "check-payments-api");
    assert!(
        down.contains("status in 200: got 503 Service Unavailable"),
        "{down}"
    );
    assert!(down.contains("<svg class=\"spark\""), "{down}");
    let pending = section_with_id(&dom, "check-search");
    assert!(pending.contains("Maintenance · index-rebuild"), "{pending}");
    assert!(pending.contains("No run yet"), "{pending}");
    assert!(dom.contains("1 check is down"), "{dom}");
    // The page's script ran (the CSP let it).
    assert!(
        dom.contains("data-live=\"on\""),
        "the page script did not run:\n{dom}"
    );

    // 2. A screenshot, for humans (with the DOM next to it).
    let dir = screenshot_dir();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("status-page.html"), &dom).unwrap();
    let png = dir.join("status-page.png");
    let _ = std::fs::remove_file(&png);
    let profile = tempfile::tempdir().unwrap();
    chromium(
        profile.path(),
        &[
            format!("--screenshot={}", png.display()),
            "--window-size=1280,900".into(),
        ],
        &url,
    )
    .await;
    let bytes =
        std::fs::read(&png).unwrap_or_else(|e| panic!("no screenshot at {}: {e}", png.display()));
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is not a PNG",
        png.display()
    );
    let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    assert_eq!((width, height), (1280, 900), "screenshot size");
    assert!(
        bytes.len() > 20_000,
        "the screenshot is suspiciously small ({} bytes): a blank page?",
        bytes.len()
    );

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the server stops")
        .unwrap()
        .unwrap();
}

/// The page of one check (`/checks/{name}`) in headless Chromium: latency
/// stacked by phase, an uptime bar per day, the last run's assertions and
/// TLS chain, the last failures; screenshots in `target/screenshots/`.
#[tokio::test(flavor = "multi_thread")]
async fn a_check_page_renders_in_headless_chromium() {
    let (base, stop, server, _data) = serve_filled().await;
    let profile = tempfile::tempdir().unwrap();

    // The status page links to it.
    let index = chromium(profile.path(), &["--dump-dom".into()], &format!("{base}/")).await;
    assert!(index.contains("href=\"/checks/storefront\""), "{index}");

    let dom = chromium(
        profile.path(),
        &["--dump-dom".into()],
        &format!("{base}/checks/storefront"),
    )
    .await;
    let latency = section(&dom, "<svg id=\"latency\"", "</svg>");
    // 60 runs, five phases each.
    assert_eq!(latency.matches("class=\"phase\"").count(), 300, "{latency}");
    let uptime = section(&dom, "<svg id=\"uptime\"", "</svg>");
    assert_eq!(uptime.matches("class=\"day\"").count(), 30, "{uptime}");
    assert!(uptime.contains("100.00 % of 60 runs"), "{uptime}");
    let assertions = section(&dom, "<table id=\"assertions\"", "</table>");
    assert!(
        assertions.contains("status is 200") && assertions.contains(">pass<"),
        "{assertions}"
    );
    let tls = section(&dom, "<table id=\"tls\"", "</table>");
    assert!(
        tls.contains("CN=shop.example.com") && tls.contains("(54 days)") && tls.contains("valid"),
        "{tls}"
    );
    assert!(dom.contains("None recorded."), "{dom}");

    let dom = chromium(
        profile.path(),
        &["--dump-dom".into()],
        &format!("{base}/checks/payments-api"),
    )
    .await;
    let failures = section(&dom, "<div id=\"failures\"", "</div>");
    assert_eq!(failures.matches("<details").count(), 3, "{failures}");
    assert!(failures.contains("503 Service Unavailable"), "{failures}");
    // Runs without HTTP timings are one bar each, their duration.
    let latency = section(&dom, "<svg id=\"latency\"", "</svg>");
    assert_eq!(latency.matches("class=\"run\"").count(), 40, "{latency}");

    let dir = screenshot_dir();
    std::fs::create_dir_all(&dir).unwrap();
    for (name, file) in [
        ("storefront", "check-page.png"),
        ("payments-api", "check-page-down.png"),
    ] {
        let png = dir.join(file);
        let _ = std::fs::remove_file(&png);
        chromium(
            profile.path(),
            &[
                format!("--screenshot={}", png.display()),
                "--window-size=1000,1100".into(),
            ],
            &format!("{base}/checks/{name}"),
        )
        .await;
        let bytes = std::fs::read(&png).unwrap();
        assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "{}", png.display());
        println!("screenshot: {}", png.display());
    }
    // An unknown check is a 404.
    let (code, _) = crate::servers::http_get(&format!("{base}/checks/nope")).unwrap();
    assert_eq!(code, 404);
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}

/// The text of `html` from `start` to the next `end`.
fn section<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
    let at = html
        .find(start)
        .unwrap_or_else(|| panic!("no {start:?} in the DOM:\n{html}"));
    let stop = html[at..]
        .find(end)
        .map_or(html.len(), |e| at + e + end.len());
    &html[at..stop]
}

/// The web server over a filled board and history (see [`fill`]): its base
/// URL, the stop switch, its task, and the history's directory (kept alive).
async fn serve_filled() -> (
    String,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<anyhow::Result<()>>,
    tempfile::TempDir,
) {
    let data = tempfile::tempdir().unwrap();
    let board = Board::default();
    let history = History::open(data.path(), Retention::default()).unwrap();
    fill(&board, &history).await;
    let router = web::router(WebState {
        board,
        history: history.clone(),
        metrics: Arc::new(|| "# EOF\n".to_string()),
        location: "eu-west-1".into(),
        version: env!("CARGO_PKG_VERSION"),
        central: None,
        health: Default::default(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(web::serve(listener, router, async {
        let _ = stopped.await;
    }));
    (base, stop, server, data)
}
