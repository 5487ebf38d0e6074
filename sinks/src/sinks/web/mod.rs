//! The HTTP sink: the daemon's own health, Prometheus metrics, a JSON API
//! over the live [`Board`] and the [`History`], and a server-rendered status
//! page.
//!
//! | Route | Answer |
//! |---|---|
//! | `GET /` | the status page (HTML, refreshes itself every 15 s) |
//! | `GET /healthz` | `{"status":"ok","checks":N,"location":..,"version":..}` |
//! | `GET /metrics` | Prometheus / OpenMetrics text |
//! | `GET /api/v1/checks` | every check, brief, with uptime |
//! | `GET /api/v1/checks/{name}` | one check, with its full last run and history summary |
//! | `GET /api/v1/checks/{name}/runs?limit=N` | stored runs, newest first (default 50, at most 1000) |
//!
//! Errors are JSON: `{"error": "..."}` with a 4xx/5xx status.
//!
//! - [`api`]: the JSON and metrics handlers.
//! - [`page`]: the status page.

pub mod api;
pub mod central;
pub mod check_page;
pub mod page;

use std::future::Future;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::sinks::board::Board;
use crate::sinks::history::History;

/// Everything the handlers read. Cheap to clone (shared handles).
#[derive(Clone)]
pub struct WebState {
    /// The live view of every check.
    pub board: Board,
    /// Stored runs, for uptime, latency and run lists.
    pub history: History,
    /// Renders the Prometheus text exposition (OpenMetrics) for `/metrics`.
    pub metrics: Arc<dyn Fn() -> String + Send + Sync>,
    /// This daemon's location label.
    pub location: String,
    /// This daemon's version, e.g. `env!("CARGO_PKG_VERSION")`.
    pub version: &'static str,
    /// The fleet's view (`[central]`), when this daemon shows it.
    pub central: Option<std::sync::Arc<central::Central>>,
    /// What `/healthz` asks before answering ok.
    pub health: Health,
}

/// A probe of whether the daemon can do its job: why not, or `None`.
pub type Probe = Arc<dyn Fn() -> Option<String> + Send + Sync>;

/// The conditions `/healthz` reports: each probe says why the daemon cannot
/// do its job (a replica whose Lease expired, a leader that cannot reach
/// the API server), and any answer makes `/healthz` a 503.
#[derive(Clone, Default)]
pub struct Health(Arc<std::sync::RwLock<Vec<Probe>>>);

impl Health {
    /// Ask `probe` on every `/healthz`.
    pub fn add(&self, probe: Probe) {
        self.0
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(probe);
    }

    /// What the probes say is wrong now.
    pub fn problems(&self) -> Vec<String> {
        let probes = self.0.read().unwrap_or_else(|e| e.into_inner()).clone();
        probes.iter().filter_map(|p| p()).collect()
    }
}

impl std::fmt::Debug for WebState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebState")
            .field("board", &self.board)
            .field("history", &self.history)
            .field("location", &self.location)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// The router serving every route of this module (see the module docs).
pub fn router(state: WebState) -> Router {
    Router::new()
        .route("/", get(page::status_page))
        .route("/healthz", get(api::healthz))
        .route("/livez", get(api::livez))
        .route("/metrics", get(api::metrics))
        .route("/api/v1/checks", get(api::checks))
        .route("/api/v1/checks/{name}", get(api::check))
        .route("/api/v1/checks/{name}/runs", get(api::runs))
        .route("/checks/{name}", get(check_page::page))
        .route("/central", get(central::page))
        .route("/api/v1/central", get(central::api))
        .fallback(not_found)
        .with_state(state)
}

/// Serve `router` on `listener` until `shutdown` completes, then finish the
/// requests in flight and return.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| "?".into());
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
        .with_context(|| format!("serving HTTP on {addr}"))
}

async fn not_found(uri: axum::http::Uri) -> Response {
    error(
        StatusCode::NOT_FOUND,
        format!("no route for {}", uri.path()),
    )
}

/// A JSON error answer: `{"error": message}`.
pub(crate) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    let body = serde_json::json!({ "error": message.into() });
    (status, no_store(), axum::Json(body)).into_response()
}

/// `Cache-Control: no-store`: every answer is live data.
pub(crate) fn no_store() -> [(header::HeaderName, HeaderValue); 1] {
    [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))]
}

/// Now, unix milliseconds.
pub(crate) fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;
