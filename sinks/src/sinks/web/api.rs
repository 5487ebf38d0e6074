//! The JSON API, `/healthz` and `/metrics`.
//!
//! `GET /api/v1/checks` answers an array of objects, one per check, sorted by
//! name:
//!
//! ```json
//! {
//!   "name": "web", "kind": "check", "component": "checks/http.wasm", "schedule": "every 1m",
//!   "targets": ["https://example.com/"], "location": "eu-west",
//!   "severity": "critical", "state": "up", "next_unix_ms": 1750000060000,
//!   "runs": 12, "skipped_overlap": 0, "maintenance": null,
//!   "last": {"status": "pass", "summary": "200 OK in 81 ms", "reason": "200 OK in 81 ms",
//!            "duration_ms": 83.1, "started_unix_ms": 1750000000000, "run_id": "..."},
//!   "last_failure": null,
//!   "uptime_24h": 1.0, "uptime_7d": 0.998, "runs_24h": 1440
//! }
//! ```
//!
//! `last` and `last_failure` are [`RunBrief`]s or `null`; `last_failure` is
//! the board's (since the daemon started), else the history's. Uptimes are
//! fractions (0..=1) or `null` without runs.
//!
//! `GET /api/v1/checks/{name}` answers the same object, except that `last`
//! and `last_failure` are the full records (a [`RunRecord`] as JSON, plus
//! `reason`), with the whole history [`Summary`] under `"summary"`.
//!
//! Restore tests are listed like checks, with `"kind": "restore"`; their
//! detail also has `"restore"`: the last run's full report (backup, Restore,
//! readiness, every check's result, timings, RTO, verdict, cleanup), or
//! `null` before the first run.
//!
//! `GET /api/v1/checks/{name}/runs?limit=N` answers an array of stored
//! records (see [`stored_json`]), newest
//! first.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};

use super::{WebState, error, no_store, now_unix_ms};
use crate::result::RunRecord;
use crate::sinks::board::CheckView;
use crate::sinks::history::{Summary, stored_json};

/// Runs answered by `/runs` without `limit`.
pub const DEFAULT_RUNS_LIMIT: usize = 50;
/// The largest `limit` `/runs` accepts.
pub const MAX_RUNS_LIMIT: usize = 1000;

/// The `Content-Type` of `/metrics` (prometheus-client encodes OpenMetrics).
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// One run, briefly: what lists and the status page show.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunBrief {
    /// `pass`, `degraded`, `fail` or `error`.
    pub status: String,
    /// The one-line summary.
    pub summary: String,
    /// Why it is bad: the error, else the failing assertions, else the
    /// summary (see [`RunRecord::reason`]).
    pub reason: String,
    /// Wall-clock duration, milliseconds.
    pub duration_ms: f64,
    /// Start, unix milliseconds.
    pub started_unix_ms: u64,
    /// The run's id.
    pub run_id: String,
}

impl RunBrief {
    /// From a live record.
    pub fn from_record(r: &RunRecord) -> RunBrief {
        RunBrief {
            status: r.result.status.as_str().to_string(),
            summary: r.result.summary.clone(),
            reason: r.reason(),
            duration_ms: r.result.duration_ms,
            started_unix_ms: r.result.started_unix_ms,
            run_id: r.result.run_id.clone(),
        }
    }

    /// From a record as the history stores it; `None` if it does not look
    /// like one.
    pub fn from_stored(v: &Value) -> Option<RunBrief> {
        let result = v.get("result")?;
        let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_string);
        let summary = text(result, "summary").unwrap_or_default();
        Some(RunBrief {
            status: text(result, "status")?,
            reason: text(v, "reason").unwrap_or_else(|| summary.clone()),
            summary,
            duration_ms: result.get("duration_ms")?.as_f64()?,
            started_unix_ms: result.get("started_unix_ms")?.as_u64()?,
            run_id: text(result, "run_id").unwrap_or_default(),
        })
    }
}

/// The last failure to show for a check: the board's (live), else the
/// history's (survives restarts).
pub fn last_failure_brief(view: &CheckView, summary: &Summary) -> Option<RunBrief> {
    match &view.last_failure {
        Some(r) => Some(RunBrief::from_record(r)),
        None => summary
            .last_failure
            .as_ref()
            .and_then(RunBrief::from_stored),
    }
}

/// The fields every check object has (the board's view minus the runs).
fn base(view: &CheckView) -> serde_json::Map<String, Value> {
    let v = json!({
        "name": view.name,
        "kind": view.kind,
        "component": view.component,
        "schedule": view.schedule,
        "targets": view.targets,
        "location": view.location,
        "severity": view.severity,
        "state": view.state,
        "next_unix_ms": view.next_unix_ms,
        "runs": view.runs,
        "skipped_overlap": view.skipped_overlap,
        "maintenance": view.maintenance,
    });
    match v {
        Value::Object(map) => map,
        _ => unreachable!("json! of an object"),
    }
}

/// One check as `/api/v1/checks` lists it.
pub fn check_brief_json(view: &CheckView, summary: &Summary) -> Value {
    let mut map = base(view);
    map.insert(
        "last".into(),
        json!(view.last.as_deref().map(RunBrief::from_record)),
    );
    map.insert(
        "last_failure".into(),
        json!(last_failure_brief(view, summary)),
    );
    map.insert("uptime_24h".into(), json!(summary.uptime_24h));
    map.insert("uptime_7d".into(), json!(summary.uptime_7d));
    map.insert("runs_24h".into(), json!(summary.runs_24h));
    Value::Object(map)
}

/// One check as `/api/v1/checks/{name}` shows it.
pub fn check_detail_json(view: &CheckView, summary: &Summary) -> Value {
    let full = |r: &RunRecord| stored_json(r).unwrap_or(Value::Null);
    let mut map = base(view);
    map.insert("last".into(), view.last.as_deref().map(full).into());
    let last_failure = match &view.last_failure {
        Some(r) => full(r),
        None => summary.last_failure.clone().unwrap_or(Value::Null),
    };
    map.insert("last_failure".into(), last_failure);
    map.insert("uptime_24h".into(), json!(summary.uptime_24h));
    map.insert("uptime_7d".into(), json!(summary.uptime_7d));
    map.insert("runs_24h".into(), json!(summary.runs_24h));
    map.insert("summary".into(), json!(summary));
    if view.kind == crate::sinks::board::Kind::Restore {
        map.insert("restore".into(), json!(view.restore.as_deref()));
    }
    Value::Object(map)
}

/// History summaries of `views`, in order; empty summaries (and a warning)
/// if the history cannot be read, so the live data still shows.
pub(crate) async fn summaries(state: &WebState, views: &[CheckView]) -> Vec<Summary> {
    let names = views.iter().map(|v| v.name.clone()).collect();
    match state.history.summaries(names, now_unix_ms()).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = format!("{e:#}"), "could not read the run history");
            vec![Summary::default(); views.len()]
        }
    }
}

fn unknown_check(name: &str) -> Response {
    error(StatusCode::NOT_FOUND, format!("no check named {name:?}"))
}

/// `GET /healthz`: the daemon's own health.
pub async fn healthz(State(state): State<WebState>) -> Response {
    let problems = state.health.problems();
    let mut body = json!({
        "status": if problems.is_empty() { "ok" } else { "unhealthy" },
        "checks": state.board.snapshot().len(),
        "location": state.location,
        "version": state.version,
    });
    if problems.is_empty() {
        return (no_store(), axum::Json(body)).into_response();
    }
    body["problems"] = json!(problems);
    (
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        no_store(),
        axum::Json(body),
    )
        .into_response()
}

/// `GET /livez`: the process answers (a liveness probe that does not
/// depend on the API server or a Lease, unlike `/healthz`).
pub async fn livez() -> Response {
    (no_store(), axum::Json(json!({"status": "alive"}))).into_response()
}

/// `GET /metrics`: the metrics closure's text.
pub async fn metrics(State(state): State<WebState>) -> Response {
    let text = (state.metrics)();
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(OPENMETRICS_CONTENT_TYPE),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        text,
    )
        .into_response()
}

/// `GET /api/v1/checks`: every check, brief.
pub async fn checks(State(state): State<WebState>) -> Response {
    let views = state.board.snapshot();
    let summaries = summaries(&state, &views).await;
    let body: Vec<Value> = views
        .iter()
        .zip(&summaries)
        .map(|(v, s)| check_brief_json(v, s))
        .collect();
    (no_store(), axum::Json(body)).into_response()
}

/// `GET /api/v1/checks/{name}`: one check in full.
pub async fn check(State(state): State<WebState>, Path(name): Path<String>) -> Response {
    let Some(view) = state.board.get(&name) else {
        return unknown_check(&name);
    };
    let summary = summaries(&state, std::slice::from_ref(&view))
        .await
        .pop()
        .unwrap_or_default();
    (no_store(), axum::Json(check_detail_json(&view, &summary))).into_response()
}

/// Parse `/runs`' `limit` from the raw query string.
pub fn parse_limit(query: Option<&str>) -> Result<usize, String> {
    let raw = url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .find(|(k, _)| k == "limit")
        .map(|(_, v)| v.into_owned());
    let Some(raw) = raw else {
        return Ok(DEFAULT_RUNS_LIMIT);
    };
    match raw.trim().parse::<usize>() {
        Ok(n) if (1..=MAX_RUNS_LIMIT).contains(&n) => Ok(n),
        _ => Err(format!(
            "limit must be a whole number from 1 to {MAX_RUNS_LIMIT}, got {raw:?}"
        )),
    }
}

/// `GET /api/v1/checks/{name}/runs?limit=N`: stored runs, newest first.
pub async fn runs(
    State(state): State<WebState>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let limit = match parse_limit(query.as_deref()) {
        Ok(n) => n,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    if state.board.get(&name).is_none() {
        return unknown_check(&name);
    }
    match state.history.runs(&name, limit).await {
        Ok(runs) => (no_store(), axum::Json(runs)).into_response(),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("could not read the run history: {e:#}"),
        ),
    }
}
