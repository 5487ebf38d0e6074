//! The alerts sink against a real Prometheus Alertmanager and against
//! webhook receivers served here: firing, resending, resolving, forgetting,
//! retrying with backoff, maintenance windows, and flushing on shutdown.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use vantage::result::{Assertion, CheckResult, RunTimings, Status};
use vantage::result::{CheckState, RunRecord, Transition};
use vantage::sinks::alerts::{AlertConfig, Alerts};

use crate::servers::{Alertmanager, free_port};

const LOCATION: &str = "eu-1";
const GENERATOR: &str = "http://127.0.0.1:9470";

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn rfc3339(ms: u64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms as i64)
        .unwrap()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A scheduled run's record, as the scheduler would build it.
fn record(
    check: &str,
    state: CheckState,
    from: Option<CheckState>,
    started_ms: u64,
    maintenance: Option<&str>,
) -> Arc<RunRecord> {
    let down = state == CheckState::Down;
    Arc::new(RunRecord {
        result: CheckResult {
            check: check.to_string(),
            status: if down { Status::Fail } else { Status::Pass },
            summary: if down {
                format!("503 Service Unavailable (run at {started_ms})")
            } else {
                "200 OK in 3 ms".to_string()
            },
            duration_ms: 3.0,
            location: LOCATION.to_string(),
            run_id: format!("{check}-{started_ms}"),
            started_unix_ms: started_ms,
            assertions: vec![
                Assertion {
                    name: "request completed".into(),
                    passed: true,
                    warn: false,
                    detail: "HTTP/1.1 from 127.0.0.1".into(),
                    duration_ms: None,
                },
                Assertion {
                    name: "status in 200".into(),
                    passed: !down,
                    warn: false,
                    detail: if down { "got 503" } else { "got 200" }.into(),
                    duration_ms: None,
                },
                Assertion {
                    name: "json /status == \"ok\"".into(),
                    passed: !down,
                    warn: false,
                    detail: if down { "got \"down\"" } else { "got \"ok\"" }.into(),
                    duration_ms: None,
                },
            ],
            measurements: vec![],
            labels: vec![("request_id".into(), format!("r-{started_ms}"))],
            timings: RunTimings::default(),
            logs: vec![],
            error: None,
        },
        planned_unix_ms: started_ms,
        lateness_ms: 0.0,
        retries: vec![],
        state,
        transition: from
            .filter(|f| *f != state)
            .map(|from| Transition { from, to: state }),
        maintenance: maintenance.map(str::to_string),
        severity: "critical".to_string(),
        component: None,
    })
}

fn down(check: &str, started_ms: u64) -> Arc<RunRecord> {
    record(
        check,
        CheckState::Down,
        Some(CheckState::Up),
        started_ms,
        None,
    )
}

fn still_down(check: &str, started_ms: u64, maintenance: Option<&str>) -> Arc<RunRecord> {
    record(check, CheckState::Down, None, started_ms, maintenance)
}

fn up(check: &str, started_ms: u64, maintenance: Option<&str>) -> Arc<RunRecord> {
    record(
        check,
        CheckState::Up,
        Some(CheckState::Down),
        started_ms,
        maintenance,
    )
}

/// Short timings, so the tests take seconds.
fn config(alertmanagers: &[String], webhooks: &[String], resend_ms: u64) -> AlertConfig {
    let urls = |v: &[String]| v.iter().map(|u| url::Url::parse(u).unwrap()).collect();
    AlertConfig {
        alertmanagers: urls(alertmanagers),
        webhooks: urls(webhooks),
        resend: Duration::from_millis(resend_ms),
        generator_base: GENERATOR.to_string(),
        timeout: Duration::from_secs(2),
        backoff_initial: Duration::from_millis(200),
        backoff_max: Duration::from_secs(1),
    }
}

/// Poll `probe` every 20 ms until it returns `Some`.
async fn eventually<T, F: Future<Output = Option<T>>>(
    what: &str,
    timeout: Duration,
    mut probe: impl FnMut() -> F,
) -> T {
    let start = Instant::now();
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The alert of `check` in the real Alertmanager, read off the runtime.
async fn am_alert(am: &Arc<Alertmanager>, check: &str) -> Option<Value> {
    let (am, check) = (am.clone(), check.to_string());
    tokio::task::spawn_blocking(move || am.alert(&check))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alertmanager_gets_firing_resent_resolved_and_forgotten_alerts() {
    let am = Arc::new(
        tokio::task::spawn_blocking(Alertmanager::start)
            .await
            .unwrap(),
    );
    let alerts = Alerts::start(config(&[am.url()], &[], 1000));
    let t0 = now_ms() - 2000;

    // Down: fires.
    alerts.observe(down("web-home", t0));
    alerts.observe(down("api", t0));
    let alert = eventually("the firing alert", Duration::from_secs(10), || {
        am_alert(&am, "web-home")
    })
    .await;
    assert_eq!(alert["status"]["state"], "active", "{alert:#}");
    assert_eq!(
        alert["labels"],
        json!({
            "alertname": "VantageCheckFailing",
            "check": "web-home",
            "location": LOCATION,
            "severity": "critical",
        }),
        "result labels (request_id) must not be copied"
    );
    assert_eq!(
        alert["annotations"],
        json!({
            "summary": format!("503 Service Unavailable (run at {t0})"),
            "description": "status in 200: got 503; json /status == \"ok\": got \"down\"",
            "failing_assertions": "status in 200: got 503\njson /status == \"ok\": got \"down\"",
            "run_id": format!("web-home-{t0}"),
        })
    );
    assert_eq!(alert["startsAt"], rfc3339(t0));
    assert_eq!(
        alert["generatorURL"],
        format!("{GENERATOR}/#check-web-home")
    );
    let ends_at = |a: &Value| DateTime::parse_from_rfc3339(a["endsAt"].as_str().unwrap()).unwrap();
    let expiry = ends_at(&alert) - Utc::now().fixed_offset();
    assert!(
        expiry > chrono::TimeDelta::seconds(1) && expiry <= chrono::TimeDelta::seconds(4),
        "a firing alert expires 4 x resend after it was sent: {expiry}"
    );

    // Still down: the resend timer carries the latest run; startsAt stays.
    let t1 = t0 + 1500;
    alerts.observe(still_down("web-home", t1, None));
    let resent = eventually("the resent alert", Duration::from_secs(5), || async {
        am_alert(&am, "web-home")
            .await
            .filter(|a| a["annotations"]["run_id"] == format!("web-home-{t1}"))
    })
    .await;
    assert_eq!(resent["startsAt"], rfc3339(t0));
    assert!(ends_at(&resent) > ends_at(&alert));
    // and it keeps being resent without new records
    let again = eventually("a further resend", Duration::from_secs(5), || async {
        am_alert(&am, "web-home")
            .await
            .filter(|a| a["updatedAt"] != resent["updatedAt"])
    })
    .await;
    assert_eq!(again["startsAt"], rfc3339(t0));

    // Removed by a reload: resolved.
    assert!(am_alert(&am, "api").await.is_some());
    alerts.forget("api");
    eventually(
        "the forgotten check's alert to go",
        Duration::from_secs(5),
        || async { am_alert(&am, "api").await.is_none().then_some(()) },
    )
    .await;

    // Up: resolved (Alertmanager 0.25 no longer lists resolved alerts).
    alerts.observe(up("web-home", t1 + 1000, None));
    eventually(
        "the resolved alert to go",
        Duration::from_secs(5),
        || async { am_alert(&am, "web-home").await.is_none().then_some(()) },
    )
    .await;
    // nothing fires again while up
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(am_alert(&am, "web-home").await.is_none());

    let stats = alerts.stats();
    assert!(stats.sent >= 5, "{stats:?}");
    assert_eq!((stats.failed, stats.dropped), (0, 0), "{stats:?}");
    alerts.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alertmanager_down_at_first_gets_the_alert_once_it_listens() {
    let port = free_port();
    let alerts = Alerts::start(config(&[format!("http://127.0.0.1:{port}")], &[], 60_000));
    let t0 = now_ms();
    alerts.observe(down("web-home", t0));
    eventually("two failed attempts", Duration::from_secs(5), || async {
        (alerts.stats().failed >= 2).then_some(())
    })
    .await;
    assert_eq!(alerts.stats().sent, 0);

    let am = Arc::new(
        tokio::task::spawn_blocking(move || Alertmanager::start_on(port))
            .await
            .unwrap(),
    );
    // retries back off to at most 1 s here
    let alert = eventually("the retried alert", Duration::from_secs(5), || {
        am_alert(&am, "web-home")
    })
    .await;
    assert_eq!(alert["startsAt"], rfc3339(t0));
    eventually(
        "the delivery to be counted",
        Duration::from_secs(5),
        || async { (alerts.stats().sent == 1).then_some(()) },
    )
    .await;
    alerts.shutdown(Duration::from_secs(1)).await;
}

/// One request a [`Recorder`] got.
#[derive(Debug, Clone)]
struct Hit {
    at: Instant,
    body: Value,
    answered: StatusCode,
}

/// A receiver served here: records every JSON request, answers 503 to the
/// first `fail_first` ones and 200 after.
#[derive(Clone)]
struct Recorder {
    hits: Arc<Mutex<Vec<Hit>>>,
    fail_first: usize,
}

impl Recorder {
    async fn start(path: &str, fail_first: usize) -> (Recorder, String) {
        let recorder = Recorder {
            hits: Arc::default(),
            fail_first,
        };
        let app = Router::new()
            .route(path, post(Self::handle))
            .with_state(recorder.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (recorder, format!("http://{addr}"))
    }

    async fn handle(State(r): State<Recorder>, axum::Json(body): axum::Json<Value>) -> StatusCode {
        let mut hits = r.hits.lock().unwrap();
        let answered = if hits.len() < r.fail_first {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::OK
        };
        hits.push(Hit {
            at: Instant::now(),
            body,
            answered,
        });
        answered
    }

    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    async fn wait_for(&self, n: usize) -> Vec<Hit> {
        eventually(
            &format!("{n} requests"),
            Duration::from_secs(10),
            || async {
                let hits = self.hits();
                (hits.len() >= n).then_some(hits)
            },
        )
        .await
    }

    /// The alerts of Alertmanager-style batches delivered (200) for `check`.
    fn am_alerts(&self, check: &str) -> Vec<Value> {
        self.hits()
            .into_iter()
            .filter(|h| h.answered == StatusCode::OK)
            .flat_map(|h| h.body.as_array().cloned().unwrap_or_default())
            .filter(|a| a["labels"]["check"] == check)
            .collect()
    }

    /// Webhook documents delivered (200) for `check`.
    fn documents(&self, check: &str) -> Vec<Value> {
        self.hits()
            .into_iter()
            .filter(|h| h.answered == StatusCode::OK && h.body["check"] == check)
            .map(|h| h.body)
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_gets_the_documented_json_after_retries_with_backoff() {
    let (hook, base) = Recorder::start("/hook", 2).await;
    let alerts = Alerts::start(config(&[], &[format!("{base}/hook")], 200));
    let t0 = now_ms();
    alerts.observe(down("web-home", t0));

    let hits = hook.wait_for(3).await;
    let statuses: Vec<u16> = hits.iter().map(|h| h.answered.as_u16()).collect();
    assert_eq!(statuses, [503, 503, 200]);
    // 200 ms, then 400 ms (minus up to 10% jitter)
    let gap1 = hits[1].at - hits[0].at;
    let gap2 = hits[2].at - hits[1].at;
    assert!(
        gap1 >= Duration::from_millis(175),
        "first retry after {gap1:?}"
    );
    assert!(
        gap2 >= Duration::from_millis(355),
        "second retry after {gap2:?}"
    );
    assert!(gap2 > gap1, "backoff grows: {gap1:?} then {gap2:?}");
    assert_eq!(
        hits[2].body,
        json!({
            "version": "1",
            "status": "firing",
            "check": "web-home",
            "location": LOCATION,
            "severity": "critical",
            "summary": format!("503 Service Unavailable (run at {t0})"),
            "reason": "status in 200: got 503; json /status == \"ok\": got \"down\"",
            "failing_assertions": ["status in 200: got 503", "json /status == \"ok\": got \"down\""],
            "run_id": format!("web-home-{t0}"),
            "started_at": rfc3339(t0),
            "generator_url": format!("{GENERATOR}/#check-web-home"),
        })
    );
    // (counted once the sender has read the response)
    eventually(
        "the delivery to be counted",
        Duration::from_secs(5),
        || async { (alerts.stats().sent == 1).then_some(()) },
    )
    .await;
    assert_eq!(alerts.stats().failed, 2);

    // Webhooks get changes only: no resends while it stays down.
    alerts.observe(still_down("web-home", t0 + 100, None));
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(hook.hits().len(), 3);

    // Up, then shut down at once: shutdown flushes the resolution.
    let t1 = now_ms();
    alerts.observe(up("web-home", t1, None));
    alerts.clone().shutdown(Duration::from_secs(2)).await;
    let hits = hook.hits();
    assert_eq!(hits.len(), 4, "{hits:?}");
    let resolved = &hits[3].body;
    assert_eq!(resolved["status"], "resolved");
    assert_eq!(resolved["started_at"], rfc3339(t0));
    // the resolution describes the last failing run
    assert_eq!(resolved["run_id"], format!("web-home-{}", t0 + 100));
    let ended = DateTime::parse_from_rfc3339(resolved["ended_at"].as_str().unwrap()).unwrap();
    assert!(ended.timestamp_millis() as u64 >= t1);
    assert_eq!(alerts.stats().sent, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_suppresses_new_alerts_and_holds_firing_ones() {
    let (am, am_base) = Recorder::start("/api/v2/alerts", 0).await;
    let (hook, hook_base) = Recorder::start("/hook", 0).await;
    let alerts = Alerts::start(config(&[am_base], &[format!("{hook_base}/hook")], 200));
    let window = Some("db upgrade");

    // "batch" goes down inside a window: nothing is sent, not even resends.
    let t0 = now_ms();
    alerts.observe(record(
        "batch",
        CheckState::Down,
        Some(CheckState::Up),
        t0,
        window,
    ));
    alerts.observe(still_down("batch", t0 + 10, window));
    // "web" goes down outside a window: fires.
    alerts.observe(down("web", t0));
    eventually("web's alert", Duration::from_secs(5), || async {
        (!hook.documents("web").is_empty()).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(am.am_alerts("batch").is_empty() && hook.documents("batch").is_empty());

    // The window ends, "batch" is still down: it fires, from when it went down.
    alerts.observe(still_down("batch", t0 + 20, None));
    let doc = eventually("batch's alert", Duration::from_secs(5), || async {
        hook.documents("batch").first().cloned()
    })
    .await;
    assert_eq!(doc["status"], "firing");
    assert_eq!(doc["started_at"], rfc3339(t0));
    // Alertmanager is a separate receiver, delivered on its own: wait for it
    // too rather than assume it was first.
    let am_batch = eventually(
        "batch's alert at Alertmanager",
        Duration::from_secs(5),
        || async { am.am_alerts("batch").first().cloned() },
    )
    .await;
    assert_eq!(am_batch["startsAt"], rfc3339(t0));

    // A window starts while "web" fires: kept as is, not resent.
    assert!(am.am_alerts("web").len() >= 3, "resent every 200 ms");
    alerts.observe(still_down("web", t0 + 30, window));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let held = am.am_alerts("web").len();
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        am.am_alerts("web").len(),
        held,
        "no resends during the window"
    );
    assert_eq!(hook.documents("web").len(), 1);

    // It recovers inside the window: the resolution is sent.
    alerts.observe(up("web", t0 + 40, window));
    let resolved = eventually("web's resolution", Duration::from_secs(5), || async {
        hook.documents("web").get(1).cloned()
    })
    .await;
    assert_eq!(resolved["status"], "resolved");
    assert_eq!(resolved["started_at"], rfc3339(t0));
    eventually(
        "web's resolution in Alertmanager",
        Duration::from_secs(5),
        || async {
            let last = am.am_alerts("web").last().cloned()?;
            (last["endsAt"] == resolved["ended_at"]).then_some(())
        },
    )
    .await;

    // Down and up inside a window: nothing at all.
    alerts.observe(record(
        "cron",
        CheckState::Down,
        Some(CheckState::Up),
        t0,
        window,
    ));
    alerts.observe(up("cron", t0 + 50, window));
    alerts.clone().shutdown(Duration::from_secs(1)).await;
    assert!(am.am_alerts("cron").is_empty() && hook.documents("cron").is_empty());
    assert_eq!(alerts.stats().failed, 0);
}

/// A restarted daemon hands the sink the alerts that were active before the
/// restart: a check still down carries its episode on (Alertmanager gets it
/// at once with the original `startsAt`, webhooks hear nothing new), one
/// that recovers is resolved, and one a window suppressed stays suppressed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_resumed_after_a_restart_are_not_fired_again() {
    use vantage::sinks::alerts::ResumedAlert;
    let (am, am_base) = Recorder::start("/api/v2/alerts", 0).await;
    let (hook, hook_base) = Recorder::start("/hook", 0).await;
    let alerts = Alerts::start(config(&[am_base], &[format!("{hook_base}/hook")], 60_000));
    let t0 = now_ms() - 60_000;
    let since = DateTime::<Utc>::from_timestamp_millis(t0 as i64).unwrap();
    let resumed = |check: &str, sent: bool, in_maintenance: bool| ResumedAlert {
        check: check.into(),
        location: LOCATION.into(),
        since,
        sent,
        in_maintenance,
    };
    alerts
        .resume(vec![
            resumed("web", true, false),
            resumed("api", true, false),
            resumed("batch", false, true),
        ])
        .await;

    // The first runs after the restart: web and batch still down (batch in
    // its window), api up.
    let t1 = now_ms();
    alerts.observe(still_down("web", t1, None));
    alerts.observe(up("api", t1, None));
    alerts.observe(still_down("batch", t1, Some("db upgrade")));

    // web: resent to Alertmanager at once (resend is 60 s), startsAt kept.
    let web = eventually("web at Alertmanager", Duration::from_secs(5), || async {
        am.am_alerts("web").first().cloned()
    })
    .await;
    assert_eq!(web["startsAt"], rfc3339(t0), "{web:#}");
    assert_eq!(web["annotations"]["run_id"], format!("web-{t1}"));
    // api: resolved, as the episode from before the restart.
    let api = eventually("api's resolution", Duration::from_secs(5), || async {
        hook.documents("api").first().cloned()
    })
    .await;
    assert_eq!(api["status"], "resolved");
    assert_eq!(api["started_at"], rfc3339(t0));

    // Nothing announced anew.
    alerts.observe(still_down("web", t1 + 1000, None));
    alerts.clone().shutdown(Duration::from_secs(1)).await;
    assert!(
        hook.documents("web").is_empty(),
        "{:?}",
        hook.documents("web")
    );
    assert!(am.am_alerts("batch").is_empty() && hook.documents("batch").is_empty());
    assert_eq!(hook.documents("api").len(), 1);
    assert_eq!(alerts.stats().dropped, 0);
}
