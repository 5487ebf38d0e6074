//! Heartbeat checks (`[[heartbeat]]`): jobs that must report in. The
//! daemon serves the conventions of healthchecks.io:
//!
//! - `GET|POST|HEAD /ping/<token>`: the job succeeded (`/ping/<token>/0` too);
//! - `/ping/<token>/start`: it started (paired with its end by `?rid=`);
//! - `/ping/<token>/fail`, `/ping/<token>/<exit code 1–255>`: it failed;
//!
//! a POST body (its first 10 KiB) is kept with the ping as the run's log.
//! For jobs already written for other tools: Uptime Kuma's
//! `/api/push/<token>?status=up|down&msg=…` and Gatus's
//! `POST /api/v1/endpoints/<heartbeat name>/external?success=true|false&error=…`
//! (the token as `Authorization: Bearer`).
//! Tokens are secrets (at least 22 characters), compared in constant time;
//! an unknown token is a 404, and pings are rate-limited (429). What was
//! received is kept in SQLite in the data directory, so a restart neither
//! forgets a ping nor restarts a timer. Each ping, and each change of state
//! the clock brings (late, down), is a run record for every sink, like a
//! check's: the board, metrics, history, alerts and remote write.

pub mod expect;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use rusqlite::{Connection, params};

use self::expect::{Beat, State as HbState, verdict};
use super::scheduler::Shared;
use crate::config::{HeartbeatConfig, MIN_TOKEN_CHARS};
use crate::pace::AbortOnDrop;
use crate::result::{
    Assertion, CheckResult, CheckState, Level, LogLine, RunRecord, RunTimings, Status, Transition,
    next_run_id,
};
use crate::sinks::board::{CheckView, Kind};

/// The most body bytes kept from a ping.
pub const MAX_BODY: usize = 10 * 1024;
/// Pings one heartbeat may receive per [`RATE_WINDOW`].
pub const MAX_PINGS: u32 = 20;
/// Requests with an unknown token answered per [`RATE_WINDOW`], over all.
pub const MAX_UNKNOWN: u32 = 20;
/// The rate-limit window.
pub const RATE_WINDOW: Duration = Duration::from_secs(10);

/// The heartbeats of a daemon.
#[derive(Clone)]
pub struct Heartbeats {
    inner: Arc<Inner>,
    _tick: Arc<AbortOnDrop<()>>,
}

struct Inner {
    shared: Arc<Shared>,
    db: Mutex<Connection>,
    entries: Mutex<Vec<Entry>>,
    unknown: Mutex<Window>,
}

struct Entry {
    config: HeartbeatConfig,
    token: String,
    beat: Beat,
    /// The heartbeat state last published, and the check state it meant.
    published: Option<HbState>,
    checked: CheckState,
    window: Window,
}

/// A fixed-window rate counter.
#[derive(Default)]
struct Window {
    start: Option<Instant>,
    count: u32,
}

impl Window {
    /// Count one request; whether it is within `max` for the window.
    fn allow(&mut self, max: u32) -> bool {
        let now = Instant::now();
        if self
            .start
            .is_none_or(|s| now.duration_since(s) >= RATE_WINDOW)
        {
            self.start = Some(now);
            self.count = 0;
        }
        self.count += 1;
        self.count <= max
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// `a == b` in time independent of where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Heartbeats {
    /// Read every token (an unreadable or short one is an error naming the
    /// heartbeat), load what was received before a restart, put each
    /// heartbeat on the board and start watching the clock. `None` without
    /// heartbeats.
    pub fn start(
        configs: &[HeartbeatConfig],
        data_dir: &Path,
        shared: Arc<Shared>,
    ) -> anyhow::Result<Option<Self>> {
        if configs.is_empty() {
            return Ok(None);
        }
        let path = data_dir.join("heartbeats.sqlite");
        let db = Connection::open(&path).with_context(|| format!("opening {}", path.display()))?;
        db.execute_batch(
            "CREATE TABLE IF NOT EXISTS beats (
                 name TEXT PRIMARY KEY,
                 last_success_ms INTEGER,
                 started_ms INTEGER,
                 started_rid TEXT,
                 failed_ms INTEGER
             );",
        )?;
        let mut entries = Vec::new();
        for config in configs {
            let token = config
                .token
                .read()
                .map_err(|e| anyhow::anyhow!("[[heartbeat]] {:?}: token: {e}", config.name))?;
            if token.chars().count() < MIN_TOKEN_CHARS {
                anyhow::bail!(
                    "[[heartbeat]] {:?}: the token has {} characters; use at least {MIN_TOKEN_CHARS} \
                     random ones (128 bits), e.g. `head -c 24 /dev/urandom | base64 | tr '+/' '-_'`",
                    config.name,
                    token.chars().count()
                );
            }
            let beat = db
                .query_row(
                    "SELECT last_success_ms, started_ms, started_rid, failed_ms FROM beats WHERE name = ?1",
                    params![config.name],
                    |r| {
                        Ok(Beat {
                            last_success_ms: r.get::<_, Option<i64>>(0)?.map(|v| v as u64),
                            started_ms: r.get::<_, Option<i64>>(1)?.map(|v| v as u64),
                            started_rid: r.get(2)?,
                            failed_ms: r.get::<_, Option<i64>>(3)?.map(|v| v as u64),
                        })
                    },
                )
                .unwrap_or_default();
            shared.sinks.board.insert(CheckView {
                name: config.name.clone(),
                kind: Kind::Heartbeat,
                schedule: config.expect.to_string(),
                location: shared.location.clone(),
                severity: config.severity.clone(),
                ..CheckView::default()
            });
            entries.push(Entry {
                config: config.clone(),
                token,
                beat,
                published: None,
                checked: CheckState::Pending,
                window: Window::default(),
            });
        }
        let inner = Arc::new(Inner {
            shared,
            db: Mutex::new(db),
            entries: Mutex::new(entries),
            unknown: Mutex::default(),
        });
        // Publish every heartbeat's state now (a restart says where each
        // is), then whenever the clock changes one.
        let watcher = inner.clone();
        let tick = AbortOnDrop(tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_millis(500));
            loop {
                every.tick().await;
                watcher.evaluate(None, now_ms());
            }
        }));
        Ok(Some(Heartbeats {
            inner,
            _tick: Arc::new(tick),
        }))
    }

    /// The ping routes.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/ping/{token}", any(ping))
            .route("/ping/{token}/{action}", any(ping_action))
            .route("/api/push/{token}", any(kuma))
            .route(
                "/api/v1/endpoints/{key}/external",
                axum::routing::post(gatus),
            )
            .with_state(self.inner.clone())
    }
}

/// What a ping says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signal {
    Success,
    Start,
    Fail(Option<u8>),
}

async fn ping(
    State(inner): State<Arc<Inner>>,
    UrlPath(token): UrlPath<String>,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    inner.receive(&token, Signal::Success, query.get("rid").cloned(), &body)
}

async fn ping_action(
    State(inner): State<Arc<Inner>>,
    UrlPath((token, action)): UrlPath<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let signal = match action.as_str() {
        "start" => Signal::Start,
        "fail" => Signal::Fail(None),
        code => match code.parse::<u8>() {
            Ok(0) => Signal::Success,
            Ok(n) => Signal::Fail(Some(n)),
            Err(_) => {
                return (
                    StatusCode::NOT_FOUND,
                    "unknown action: use /start, /fail or an exit code 0-255\n",
                )
                    .into_response();
            }
        },
    };
    inner.receive(&token, signal, query.get("rid").cloned(), &body)
}

/// Uptime Kuma's push: `status=down` is a failure, anything else a success;
/// `msg` is the log.
async fn kuma(
    State(inner): State<Arc<Inner>>,
    UrlPath(token): UrlPath<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let signal = match query.get("status").map(String::as_str) {
        Some("down") => Signal::Fail(None),
        _ => Signal::Success,
    };
    let msg = query.get("msg").cloned().unwrap_or_default();
    inner.receive(&token, signal, None, msg.as_bytes())
}

/// Gatus's external endpoint: the bearer token, `success`, `error`; the key
/// must be the heartbeat's name.
async fn gatus(
    State(inner): State<Arc<Inner>>,
    UrlPath(key): UrlPath<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: axum::http::HeaderMap,
) -> Response {
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .trim()
        .to_string();
    let signal = match query.get("success").map(String::as_str) {
        Some("true") => Signal::Success,
        Some("false") => Signal::Fail(None),
        _ => {
            return (StatusCode::BAD_REQUEST, "success=true|false is required\n").into_response();
        }
    };
    let error = query.get("error").cloned().unwrap_or_default();
    inner.receive_named(&token, Some(&key), signal, None, error.as_bytes())
}

impl Inner {
    /// Handle one ping.
    fn receive(&self, token: &str, signal: Signal, rid: Option<String>, body: &[u8]) -> Response {
        self.receive_named(token, None, signal, rid, body)
    }

    /// Handle one ping, which must also name the heartbeat when `name` is
    /// given (Gatus's key).
    fn receive_named(
        &self,
        token: &str,
        name: Option<&str>,
        signal: Signal,
        rid: Option<String>,
        body: &[u8],
    ) -> Response {
        let now = now_ms();
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        // Compare with every token, whatever matches, in constant time each.
        let mut found = None;
        for (i, e) in entries.iter().enumerate() {
            if same(e.token.as_bytes(), token.as_bytes()) && name.is_none_or(|n| n == e.config.name)
            {
                found = Some(i);
            }
        }
        let Some(i) = found else {
            drop(entries);
            let allowed = self
                .unknown
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .allow(MAX_UNKNOWN);
            return if allowed {
                (StatusCode::NOT_FOUND, "not found\n").into_response()
            } else {
                (StatusCode::TOO_MANY_REQUESTS, "too many requests\n").into_response()
            };
        };
        let entry = &mut entries[i];
        if !entry.window.allow(MAX_PINGS) {
            return (StatusCode::TOO_MANY_REQUESTS, "too many pings\n").into_response();
        }
        let paired = match (&rid, &entry.beat.started_rid) {
            (Some(r), Some(s)) => r == s,
            _ => true,
        };
        let duration_ms = entry
            .beat
            .started_ms
            .filter(|_| paired && signal != Signal::Start)
            .map(|s| now.saturating_sub(s) as f64);
        match signal {
            Signal::Start => {
                entry.beat.started_ms = Some(now);
                entry.beat.started_rid = rid;
            }
            Signal::Success => {
                entry.beat.last_success_ms = Some(now);
                entry.beat.failed_ms = None;
                if paired {
                    entry.beat.started_ms = None;
                    entry.beat.started_rid = None;
                }
            }
            Signal::Fail(_) => {
                entry.beat.failed_ms = Some(now);
                if paired {
                    entry.beat.started_ms = None;
                    entry.beat.started_rid = None;
                }
            }
        }
        let beat = entry.beat.clone();
        let name = entry.config.name.clone();
        if let Err(e) = self.store(&name, &beat) {
            tracing::error!(heartbeat = %name, error = %e, "cannot persist the ping");
        }
        let text = String::from_utf8_lossy(&body[..body.len().min(MAX_BODY)]).into_owned();
        let note = Ping {
            signal,
            duration_ms,
            body: text,
        };
        drop(entries);
        self.evaluate(Some((i, note)), now);
        (StatusCode::OK, "OK\n").into_response()
    }

    fn store(&self, name: &str, beat: &Beat) -> rusqlite::Result<()> {
        let opt = |v: Option<u64>| v.map(|v| v as i64);
        self.db.lock().unwrap_or_else(|e| e.into_inner()).execute(
            "INSERT INTO beats (name, last_success_ms, started_ms, started_rid, failed_ms)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT(name) DO UPDATE SET last_success_ms = ?2, started_ms = ?3,
                 started_rid = ?4, failed_ms = ?5",
            params![
                name,
                opt(beat.last_success_ms),
                opt(beat.started_ms),
                beat.started_rid,
                opt(beat.failed_ms)
            ],
        )?;
        Ok(())
    }

    /// Publish what changed: for the ping `pinged` (the heartbeat's index
    /// and what came), a record whatever its state; for every heartbeat
    /// whose state the clock changed, a record of the change.
    fn evaluate(&self, pinged: Option<(usize, Ping)>, now: u64) {
        let mut records = Vec::new();
        {
            let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            for (i, entry) in entries.iter_mut().enumerate() {
                let v = verdict(&entry.config, &entry.beat, now);
                let ping = match &pinged {
                    Some((at, p)) if *at == i => Some(p),
                    _ => None,
                };
                if ping.is_none() && entry.published == Some(v.state) {
                    continue;
                }
                if ping.is_some_and(|p| p.signal == Signal::Start)
                    && entry.published == Some(v.state)
                {
                    continue;
                }
                entry.published = Some(v.state);
                let state = match v.state {
                    HbState::New => CheckState::Pending,
                    HbState::Up | HbState::Started | HbState::Late => CheckState::Up,
                    HbState::Down => CheckState::Down,
                };
                let transition = (state != entry.checked).then_some(Transition {
                    from: entry.checked,
                    to: state,
                });
                entry.checked = state;
                records.push(self.record(entry, &v, ping, state, transition, now));
            }
        }
        for record in records {
            let name = record.result.check.clone();
            super::scheduler::publish(&self.shared, &name, Arc::new(record), |_| {});
        }
    }

    fn record(
        &self,
        entry: &Entry,
        v: &expect::Verdict,
        ping: Option<&Ping>,
        state: CheckState,
        transition: Option<Transition>,
        now: u64,
    ) -> RunRecord {
        let status = match v.state {
            HbState::Down => Status::Fail,
            HbState::Late => Status::Degraded,
            _ => Status::Pass,
        };
        let summary = match ping.map(|p| p.signal) {
            Some(Signal::Fail(Some(code))) => format!("the job failed with exit code {code}"),
            Some(Signal::Fail(None)) => "the job reported a failure".to_string(),
            Some(Signal::Success) => "ping received".to_string(),
            _ => v.reason.clone(),
        };
        let mut logs = Vec::new();
        if let Some(p) = ping
            && !p.body.is_empty()
        {
            logs.extend(p.body.lines().take(200).map(|l| LogLine {
                level: Level::Info,
                message: l.to_string(),
            }));
        }
        let result = CheckResult {
            check: entry.config.name.clone(),
            status,
            summary,
            duration_ms: ping.and_then(|p| p.duration_ms).unwrap_or(0.0),
            location: self.shared.location.clone(),
            run_id: next_run_id(now),
            started_unix_ms: now,
            assertions: vec![Assertion {
                name: "reported in time".into(),
                passed: v.state != HbState::Down,
                warn: v.state == HbState::Late,
                detail: v.reason.clone(),
                duration_ms: None,
            }],
            measurements: Vec::new(),
            labels: vec![("heartbeat_state".into(), v.state.as_str().into())],
            timings: RunTimings::default(),
            logs,
            error: None,
        };
        RunRecord {
            result,
            planned_unix_ms: now,
            lateness_ms: 0.0,
            retries: Vec::new(),
            state,
            transition,
            maintenance: self.shared.maintenance_for(&entry.config.name),
            severity: entry.config.severity.clone(),
            component: None,
        }
    }
}

/// What one ping brought.
struct Ping {
    signal: Signal,
    duration_ms: Option<f64>,
    body: String,
}
