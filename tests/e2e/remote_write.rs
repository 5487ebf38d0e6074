//! Remote write, end to end: the `vantage daemon` binary pushes every run's
//! series to a real Prometheus 2.42 (`--web.enable-remote-write-receiver`),
//! read back through `/api/v1/query`; the receiver goes away and comes back
//! and no sample is lost or reordered; and a receiver written here answers
//! 500, 429, 400 and slowly, to hold the sender to its retry rules.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use serde_json::Value;
use vantage::sinks::remote_write::proto::WriteRequest;

use crate::daemon::{Daemon, http_check};
use crate::servers::{Prometheus, Receiver, get_json, wait_until};
use crate::support::start_target;

/// A `[[remote_write]]` to `url` that sends quickly and retries fast.
fn remote(url: &str, extra: &str) -> String {
    format!(
        "\n[[remote_write]]\nname = \"central\"\nurl = \"{url}\"\n{extra}\n\
         [remote_write.queue]\nbatch_send_deadline = \"100ms\"\nmin_backoff = \"50ms\"\n\
         max_backoff = \"400ms\"\n"
    )
}

fn unix_seconds() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// The value of a series of the daemon's `/metrics` whose line starts with
/// `prefix` (0 when absent).
fn metric(daemon: &Daemon, prefix: &str) -> f64 {
    daemon
        .metrics()
        .lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// Every sample of `series` Prometheus holds over the last 15 minutes, as
/// (timestamp ms, value).
fn samples(prometheus: &Prometheus, series: &str) -> Vec<(i64, f64)> {
    let result = prometheus.query(&format!("{series}[15m]"));
    result[0]["values"]
        .as_array()
        .map(|values| {
            values
                .iter()
                .map(|v| {
                    (
                        (v[0].as_f64().unwrap() * 1000.0).round() as i64,
                        v[1].as_str().unwrap().parse().unwrap(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_run_reaches_prometheus_in_order_even_across_its_absence() {
    let target = start_target().await;
    let mut receiver = Receiver::start();
    let dir = tempfile::tempdir().unwrap();
    let body = format!(
        "{}{}",
        http_check("api", "1s", &format!("{target}/healthz"), ""),
        remote(
            &receiver.write_url(),
            "headers = { \"X-Scope-OrgID\" = \"edge\" }"
        )
    );
    let daemon = tokio::task::spawn_blocking({
        let dir = dir.path().to_path_buf();
        move || Daemon::start(&dir, "", &body, &["--no-watch"])
    })
    .await
    .unwrap();

    // The run's series arrive with the names and labels of /metrics.
    let up = receiver.prometheus().wait_for(
        "probe_success{check=\"api\",location=\"e2e-dc1\"}",
        Duration::from_secs(30),
        |r| Prometheus::scalar(r) == Some(1.0),
    );
    assert_eq!(up[0]["metric"]["__name__"], "probe_success");
    let phases = receiver
        .prometheus()
        .query("probe_http_duration_seconds{check=\"api\",phase=\"connect\"}");
    assert_eq!(phases.as_array().unwrap().len(), 1, "{phases}");
    assert!(
        metric(
            &daemon,
            "vantage_remote_write_sent_samples_total{remote=\"central\"}"
        ) > 0.0,
        "{}",
        daemon.metrics()
    );
    // The daemon's own series: who it is, what it runs, that it is alive.
    let build = receiver
        .prometheus()
        .query("vantage_build_info{location=\"e2e-dc1\"}");
    assert_eq!(
        build[0]["metric"]["version"],
        env!("CARGO_PKG_VERSION"),
        "{build}"
    );
    let config = receiver.prometheus().query("vantage_config_info");
    assert_eq!(
        config[0]["metric"]["sha256"].as_str().unwrap().len(),
        64,
        "{config}"
    );
    let beat = receiver
        .prometheus()
        .query("time() - vantage_heartbeat_timestamp_seconds{location=\"e2e-dc1\"}");
    assert!(Prometheus::scalar(&beat).unwrap() < 60.0, "{beat}");
    // Its clock against the receiver's Date: the same machine, so about 0.
    let offset = metric(
        &daemon,
        "vantage_clock_offset_seconds{location=\"e2e-dc1\"}",
    );
    assert!(offset.abs() <= 1.5, "{offset}\n{}", daemon.metrics());
    assert!(
        daemon
            .metrics()
            .contains("vantage_clock_offset_seconds{location=\"e2e-dc1\"}"),
        "{}",
        daemon.metrics()
    );

    // The receiver goes away: samples queue on disk, the sender retries.
    receiver.stop();
    let away = Instant::now();
    let away_unix = unix_seconds();
    let pending = wait_until("samples queued", Duration::from_secs(30), || {
        let n = metric(
            &daemon,
            "vantage_remote_write_pending_samples{remote=\"central\"}",
        );
        (
            (n > 100.0 && away.elapsed() > Duration::from_secs(6)).then_some(n),
            n.to_string(),
        )
    });
    assert!(pending > 100.0);
    assert!(
        metric(
            &daemon,
            "vantage_remote_write_retries_total{remote=\"central\"}"
        ) > 0.0
    );

    // It comes back: the queue drains, in order, nothing lost.
    receiver.resume();
    wait_until("the queue drained", Duration::from_secs(60), || {
        let n = metric(
            &daemon,
            "vantage_remote_write_pending_samples{remote=\"central\"}",
        );
        ((n < 60.0).then_some(()), n.to_string())
    });
    assert_eq!(
        metric(&daemon, "vantage_remote_write_dropped_samples_total"),
        0.0,
        "{}",
        daemon.metrics()
    );
    assert_eq!(
        metric(
            &daemon,
            "vantage_remote_write_failed_samples_total{remote=\"central\"}"
        ),
        0.0
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let prom = samples(
        receiver.prometheus(),
        "vantage_check_last_run_timestamp_seconds{check=\"api\"}",
    );
    let times: Vec<i64> = prom.iter().map(|(t, _)| *t).collect();
    assert!(
        times.windows(2).all(|w| w[0] < w[1]),
        "out of order: {times:?}"
    );
    // Every run the history holds up to the last one Prometheus has is there:
    // run starts (the series' values) match one to one.
    let history: Value = get_json(&format!(
        "{}/api/v1/checks/api/runs?limit=1000",
        daemon.url()
    ));
    let last_sent = prom.last().unwrap().1;
    let mut starts: Vec<f64> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["result"]["started_unix_ms"].as_f64().unwrap() / 1000.0)
        .filter(|s| *s <= last_sent + 1e-6)
        .collect();
    starts.sort_by(f64::total_cmp);
    let values: Vec<f64> = prom.iter().map(|(_, v)| *v).collect();
    assert!(starts.len() >= 7, "{} runs", starts.len());
    assert_eq!(
        values.len(),
        starts.len(),
        "lost samples: {values:?} vs {starts:?}"
    );
    for (v, s) in values.iter().zip(&starts) {
        assert!((v - s).abs() < 1e-3, "{values:?} vs {starts:?}");
    }
    // The runs during the outage are among them.
    let during = values.iter().filter(|v| **v >= away_unix).count();
    assert!(during >= 5, "{during} runs from the outage on");
}

/// What the scripted receiver saw.
#[derive(Default)]
struct Seen {
    /// Each request: its samples and the `X-Scope-OrgID` header.
    requests: Vec<(usize, Option<String>, Vec<u8>)>,
    /// The answers to give, in order (then 204).
    script: Vec<(StatusCode, &'static str, Option<u64>)>,
    /// Delay before answering the request with this index.
    slow: Option<usize>,
}

async fn scripted(
    State(seen): State<Arc<Mutex<Seen>>>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    let request = WriteRequest::from_body(&body).expect("a remote-write body");
    let (answer, slow) = {
        let mut s = seen.lock().unwrap();
        let org = headers
            .get("x-scope-orgid")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let index = s.requests.len();
        s.requests.push((request.samples(), org, body.to_vec()));
        let answer = if s.script.is_empty() {
            (StatusCode::NO_CONTENT, "", None)
        } else {
            s.script.remove(0)
        };
        (answer, s.slow == Some(index))
    };
    if slow {
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    let (status, message, retry_after) = answer;
    let mut response = (status, message).into_response();
    if let Some(after) = retry_after {
        response
            .headers_mut()
            .insert("retry-after", after.to_string().parse().unwrap());
    }
    response
}

#[tokio::test(flavor = "multi_thread")]
async fn server_errors_429s_and_slow_answers_are_retried_and_a_400_is_not() {
    let seen = Arc::new(Mutex::new(Seen {
        script: vec![
            (StatusCode::INTERNAL_SERVER_ERROR, "tsdb busy", None),
            (StatusCode::TOO_MANY_REQUESTS, "slow down", Some(1)),
            (StatusCode::OK, "", None),
            (StatusCode::BAD_REQUEST, "out of order sample", None),
        ],
        // The first request after the 400 hangs past the timeout.
        slow: Some(4),
        ..Seen::default()
    }));
    let app = Router::new()
        .route("/api/v1/write", post(scripted))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let target = start_target().await;
    let dir = tempfile::tempdir().unwrap();
    let body = format!(
        "{}{}",
        http_check("api", "2s", &format!("{target}/healthz"), ""),
        remote(
            &format!("http://{addr}/api/v1/write"),
            "timeout = \"1s\"\nheaders = { \"X-Scope-OrgID\" = \"team-a\" }"
        )
    );
    let daemon = tokio::task::spawn_blocking({
        let dir = dir.path().to_path_buf();
        move || Daemon::start(&dir, "", &body, &["--no-watch"])
    })
    .await
    .unwrap();
    wait_until("seven requests", Duration::from_secs(40), || {
        let n = seen.lock().unwrap().requests.len();
        ((n >= 7).then_some(()), n.to_string())
    });
    let s = seen.lock().unwrap();
    let r = &s.requests;
    // 500, then 429 (waiting its Retry-After), then 200: the same body three
    // times: a retry resends the batch, it does not skip or split it.
    assert_eq!(r[0].2, r[1].2);
    assert_eq!(r[1].2, r[2].2);
    // The 400 was final: the next request carries other samples.
    assert_ne!(r[3].2, r[4].2);
    // The slow answer (past the 1 s timeout) was retried with the same body.
    assert_eq!(r[4].2, r[5].2);
    assert!(r.iter().all(|(_, org, _)| org.as_deref() == Some("team-a")));
    drop(s);
    let log = daemon.wait_stderr("out of order sample", Duration::from_secs(10));
    assert!(
        log.contains("the receiver refused the samples (not retried)")
            && log.contains("status=400"),
        "{log}"
    );
    assert!(
        metric(
            &daemon,
            "vantage_remote_write_failed_samples_total{remote=\"central\"}"
        ) > 0.0
    );
    assert!(
        metric(
            &daemon,
            "vantage_remote_write_retries_total{remote=\"central\"}"
        ) >= 3.0
    );
}
