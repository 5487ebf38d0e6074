//! The fleet's view (`[central]`): one row per check, one column per
//! location, read from the Prometheus the edges push to (remote write) with
//! its HTTP API: no store of our own. `GET /central` is the page (server
//! rendered, refreshing itself, no script), `GET /api/v1/central` the same
//! grid as JSON.
//!
//! A cell is the check's state at that location (`vantage_check_state`),
//! whether its last run passed (`probe_success`), how long it took
//! (`probe_duration_seconds`) and when it ran
//! (`vantage_check_last_run_timestamp_seconds`). A column header says how
//! long ago the location last reported (its heartbeat, looked for over the
//! last hour, so a silent location stays listed), its version and its
//! clock's offset.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::OnceLock;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;

use super::WebState;
use super::page::{esc, sha256_source};

/// How the fleet's view reaches Prometheus.
#[derive(Debug, Clone)]
pub struct Central {
    prometheus: url::Url,
    silent_after: Duration,
    client: reqwest::Client,
}

/// The grid.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Grid {
    /// Every location that reported in the last hour, by name.
    pub locations: Vec<Location>,
    /// Every check seen, by name.
    pub checks: Vec<Row>,
    /// When the grid was read, unix seconds.
    pub at: f64,
}

/// A column: one location.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Location {
    /// Its name.
    pub name: String,
    /// Seconds since its last heartbeat, if it ever sent one.
    pub last_heartbeat_age: Option<f64>,
    /// Whether that is longer than `silent_after`.
    pub silent: bool,
    /// Its clock minus the remote-write receiver's, seconds (negated
    /// `vantage_clock_offset_seconds`), if measured.
    pub clock_offset: Option<f64>,
    /// The version it runs.
    pub version: Option<String>,
}

/// A row: one check at every location.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Row {
    /// The check.
    pub check: String,
    /// Its cells, by location.
    pub cells: BTreeMap<String, Cell>,
}

/// One check at one location.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Cell {
    /// `up`, `down` or `pending`.
    pub state: Option<String>,
    /// Whether the last run passed (or was degraded).
    pub success: Option<bool>,
    /// How long the last run took, seconds.
    pub duration: Option<f64>,
    /// When the last run started, unix seconds.
    pub last_run: Option<f64>,
}

impl Central {
    /// The view of the Prometheus at `prometheus`.
    pub fn new(prometheus: url::Url, silent_after: Duration) -> Self {
        Central {
            prometheus,
            silent_after,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .user_agent(concat!("vantage/", env!("CARGO_PKG_VERSION")))
                .build()
                .expect("building the HTTP client for the central view"),
        }
    }

    /// An instant query: `data.result`.
    async fn query(&self, promql: &str) -> Result<Vec<Value>, String> {
        let url = self
            .prometheus
            .join("api/v1/query")
            .map_err(|e| e.to_string())?;
        let response = self
            .client
            .get(url)
            .query(&[("query", promql)])
            .send()
            .await
            .map_err(|e| format!("Prometheus at {}: {e}", self.prometheus))?;
        let status = response.status();
        let body: Value = response
            .json()
            .await
            .map_err(|e| format!("Prometheus answered {status} with no JSON: {e}"))?;
        if body["status"] != "success" {
            return Err(format!(
                "Prometheus refused {promql:?}: {}",
                body["error"].as_str().unwrap_or("no reason given")
            ));
        }
        Ok(body["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    /// Read the grid now.
    pub async fn grid(&self) -> Result<Grid, String> {
        let (states, success, duration, last_run, heartbeat, offset, build) = tokio::try_join!(
            self.query("vantage_check_state == 1"),
            self.query("probe_success"),
            self.query("probe_duration_seconds"),
            self.query("vantage_check_last_run_timestamp_seconds"),
            self.query(
                "time() - max by (location) (max_over_time(vantage_heartbeat_timestamp_seconds[1h]))"
            ),
            self.query("vantage_clock_offset_seconds"),
            self.query("vantage_build_info"),
        )?;
        let mut rows: BTreeMap<String, Row> = BTreeMap::new();
        let mut locations: BTreeMap<String, Location> = BTreeMap::new();
        for s in &states {
            let state = s["metric"]["state"].as_str().map(str::to_string);
            if let Some(c) = cell(&mut rows, &mut locations, s) {
                c.state = state;
            }
        }
        for s in &success {
            let v = value(s);
            if let Some(c) = cell(&mut rows, &mut locations, s) {
                c.success = v.map(|v| v >= 1.0);
            }
        }
        for s in &duration {
            let v = value(s);
            if let Some(c) = cell(&mut rows, &mut locations, s) {
                c.duration = v;
            }
        }
        for s in &last_run {
            let v = value(s);
            if let Some(c) = cell(&mut rows, &mut locations, s) {
                c.last_run = v;
            }
        }
        let silent_after = self.silent_after.as_secs_f64();
        for s in &heartbeat {
            let age = value(s);
            if let Some(l) = location(&mut locations, s) {
                l.last_heartbeat_age = age;
                l.silent = age.is_some_and(|a| a > silent_after);
            }
        }
        for s in &offset {
            let v = value(s);
            if let Some(l) = location(&mut locations, s) {
                l.clock_offset = v.map(|o| -o);
            }
        }
        for s in &build {
            let version = s["metric"]["version"].as_str().map(str::to_string);
            if let Some(l) = location(&mut locations, s) {
                l.version = version;
            }
        }
        Ok(Grid {
            locations: locations.into_values().collect(),
            checks: rows.into_values().collect(),
            at: super::now_unix_ms() as f64 / 1000.0,
        })
    }
}

/// The column of `sample`'s `location`, added if new.
fn location<'a>(
    locations: &'a mut BTreeMap<String, Location>,
    sample: &Value,
) -> Option<&'a mut Location> {
    let name = sample["metric"]["location"].as_str()?.to_string();
    Some(locations.entry(name.clone()).or_insert_with(|| Location {
        name,
        ..Location::default()
    }))
}

/// The cell of `sample`'s `check` at its `location`, added (with its row
/// and column) if new.
fn cell<'a>(
    rows: &'a mut BTreeMap<String, Row>,
    locations: &mut BTreeMap<String, Location>,
    sample: &Value,
) -> Option<&'a mut Cell> {
    let check = sample["metric"]["check"].as_str()?.to_string();
    let name = location(locations, sample)?.name.clone();
    let row = rows.entry(check.clone()).or_insert_with(|| Row {
        check,
        cells: BTreeMap::new(),
    });
    Some(row.cells.entry(name).or_default())
}

/// A sample's value.
fn value(sample: &Value) -> Option<f64> {
    sample["value"][1].as_str()?.parse().ok()
}

/// `GET /api/v1/central`.
pub async fn api(State(state): State<WebState>) -> Response {
    let Some(central) = &state.central else {
        return super::error(
            StatusCode::NOT_FOUND,
            "this daemon has no [central] view: set [central] prometheus = \"…\"",
        );
    };
    match central.grid().await {
        Ok(grid) => (super::no_store(), axum::Json(grid)).into_response(),
        Err(e) => super::error(StatusCode::BAD_GATEWAY, e),
    }
}

const STYLE: &str = "body{font:14px system-ui,sans-serif;margin:2rem;color:#1d2330}\
h1{font-size:1.3rem}table{border-collapse:collapse}th,td{border:1px solid #d5d9e0;\
padding:.4rem .6rem;text-align:left;vertical-align:top}th small,td small{display:block;\
color:#5b6472}td.up{background:#e5f6ea}td.down{background:#fde4e4}td.pending{background:#fff6d6}\
td.none{color:#9aa1ad}th.silent{background:#fde4e4}.err{color:#a40000}";

/// The page's Content-Security-Policy: its own inline style only.
fn csp() -> &'static str {
    static CSP: OnceLock<String> = OnceLock::new();
    CSP.get_or_init(|| {
        format!(
            "default-src 'none'; style-src '{}'; base-uri 'none'; form-action 'none'; \
             frame-ancestors 'none'",
            sha256_source(STYLE)
        )
    })
}

/// `GET /central`: the grid as a page.
pub async fn page(State(state): State<WebState>) -> Response {
    let Some(central) = &state.central else {
        return super::error(
            StatusCode::NOT_FOUND,
            "this daemon has no [central] view: set [central] prometheus = \"…\"",
        );
    };
    let html = render(central.grid().await, state.version);
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_str(csp()).expect("the CSP is plain ASCII"),
            ),
        ],
        html,
    )
        .into_response()
}

/// Seconds as a short age: `12 s`, `3 min`, `2 h`.
fn age(seconds: f64) -> String {
    match seconds {
        s if s < 120.0 => format!("{s:.0} s"),
        s if s < 7200.0 => format!("{:.0} min", s / 60.0),
        s => format!("{:.0} h", s / 3600.0),
    }
}

/// The page for `grid`.
pub fn render(grid: Result<Grid, String>, version: &str) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"15\"><title>Vantage fleet</title>\
         <style>{STYLE}</style></head><body><h1>Vantage fleet</h1>"
    );
    let grid = match grid {
        Ok(g) => g,
        Err(e) => {
            let _ = write!(
                out,
                "<p class=\"err\" id=\"error\">Cannot read the fleet: {}</p></body></html>",
                esc(&e)
            );
            return out;
        }
    };
    let _ = write!(
        out,
        "<p>{} checks at {} locations, from Prometheus. Vantage {}.</p>",
        grid.checks.len(),
        grid.locations.len(),
        esc(version)
    );
    out.push_str("<table id=\"grid\"><thead><tr><th>check</th>");
    for l in &grid.locations {
        let mut notes = Vec::new();
        match l.last_heartbeat_age {
            Some(a) if l.silent => notes.push(format!("silent for {}", age(a))),
            Some(a) => notes.push(format!("reported {} ago", age(a))),
            None => notes.push("no heartbeat".to_string()),
        }
        if let Some(o) = l.clock_offset {
            notes.push(format!("clock {o:+.1} s"));
        }
        if let Some(v) = &l.version {
            notes.push(format!("v{v}"));
        }
        let _ = write!(
            out,
            "<th class=\"{}\" data-location=\"{}\">{}<small>{}</small></th>",
            if l.silent { "silent" } else { "live" },
            esc(&l.name),
            esc(&l.name),
            esc(&notes.join(" · "))
        );
    }
    out.push_str("</tr></thead><tbody>");
    for row in &grid.checks {
        let _ = write!(
            out,
            "<tr data-check=\"{}\"><th>{}</th>",
            esc(&row.check),
            esc(&row.check)
        );
        for l in &grid.locations {
            match row.cells.get(&l.name) {
                None => out.push_str("<td class=\"none\">—</td>"),
                Some(c) => {
                    let state = c.state.as_deref().unwrap_or("pending");
                    let mut detail = Vec::new();
                    if let Some(d) = c.duration {
                        detail.push(format!("{:.0} ms", d * 1000.0));
                    }
                    if let Some(t) = c.last_run {
                        detail.push(format!("{} ago", age((grid.at - t).max(0.0))));
                    }
                    if c.success == Some(false) {
                        detail.push("last run failed".into());
                    }
                    let _ = write!(
                        out,
                        "<td class=\"{}\" data-location=\"{}\" data-state=\"{}\">{}<small>{}</small></td>",
                        esc(state),
                        esc(&l.name),
                        esc(state),
                        esc(state),
                        esc(&detail.join(" · "))
                    );
                }
            }
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></body></html>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_escapes_and_marks_silent_locations_and_missing_cells() {
        let mut cells = BTreeMap::new();
        cells.insert(
            "fra1".to_string(),
            Cell {
                state: Some("down".into()),
                success: Some(false),
                duration: Some(0.25),
                last_run: Some(90.0),
            },
        );
        let grid = Grid {
            locations: vec![
                Location {
                    name: "fra1".into(),
                    last_heartbeat_age: Some(10.0),
                    clock_offset: Some(-0.4),
                    version: Some("0.1.0".into()),
                    ..Location::default()
                },
                Location {
                    name: "<sin1>".into(),
                    last_heartbeat_age: Some(600.0),
                    silent: true,
                    ..Location::default()
                },
            ],
            checks: vec![Row {
                check: "api".into(),
                cells,
            }],
            at: 100.0,
        };
        let html = render(Ok(grid), "0.1.0");
        assert!(html.contains("<td class=\"down\" data-location=\"fra1\" data-state=\"down\">down<small>250 ms · 10 s ago · last run failed</small></td>"), "{html}");
        assert!(html.contains("<th class=\"silent\" data-location=\"&lt;sin1&gt;\">&lt;sin1&gt;<small>silent for 10 min</small></th>"), "{html}");
        assert!(html.contains("clock -0.4 s"), "{html}");
        assert!(html.contains("<td class=\"none\">—</td>"), "{html}");
        let html = render(Err("connection refused <x>".into()), "0.1.0");
        assert!(
            html.contains("Cannot read the fleet: connection refused &lt;x&gt;"),
            "{html}"
        );
    }
}
