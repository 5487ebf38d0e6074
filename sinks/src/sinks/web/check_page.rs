//! A page per check, `GET /checks/{name}` (checks, restore tests and
//! heartbeats alike): server-rendered HTML and SVG, its own inline style,
//! no script and nothing fetched from elsewhere (it works offline).
//!
//! - latency over the last runs, stacked by phase (resolve, connect, TLS,
//!   processing, transfer; a run without HTTP is one bar of its duration);
//! - an uptime bar per day for 30 days;
//! - the assertions of the last run;
//! - the TLS handshakes of the last run: chain, verdict, expiry;
//! - for restore tests, the RTO of each run against its target and the
//!   phases of the last run as a waterfall;
//! - the last failures with their reasons and logs.

use std::fmt::Write as _;
use std::sync::OnceLock;

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::page::{esc, sha256_source};
use super::{WebState, now_unix_ms};
use crate::sinks::board::CheckView;

/// Runs the latency chart shows.
pub const RUNS: usize = 120;
/// Days of the uptime bar.
pub const DAYS: u64 = 30;
/// Failures listed.
pub const FAILURES: usize = 5;

/// The phases, their record fields and colours.
const PHASES: [(&str, &str, &str); 5] = [
    ("resolve", "resolve_ms", "#8e7cc3"),
    ("connect", "connect_ms", "#6fa8dc"),
    ("TLS", "tls_ms", "#76a5af"),
    ("processing", "processing_ms", "#f6b26b"),
    ("transfer", "transfer_ms", "#93c47d"),
];

const STYLE: &str = "body{font:14px system-ui,sans-serif;margin:2rem;max-width:60rem;color:#1d2330}\
a{color:#2456a6}h1{font-size:1.4rem;margin:.2rem 0}h2{font-size:1.05rem;margin-top:1.6rem}\
.badge{display:inline-block;padding:.1rem .5rem;border-radius:.6rem;font-size:.85rem}\
.up{background:#e5f6ea}.down{background:#fde4e4}.pending{background:#fff6d6}\
.meta{color:#5b6472}table{border-collapse:collapse}th,td{border:1px solid #d5d9e0;\
padding:.3rem .5rem;text-align:left;vertical-align:top}td.pass{color:#1e7b34}\
td.warn{color:#946200}td.fail{color:#a40000}.legend span{margin-right:1rem}\
.legend i{display:inline-block;width:.8rem;height:.8rem;margin-right:.3rem;vertical-align:-1px}\
pre{background:#f4f5f7;padding:.5rem;overflow:auto;max-height:16rem}\
.p0{background:#8e7cc3}.p1{background:#6fa8dc}.p2{background:#76a5af}.p3{background:#f6b26b}\
.p4{background:#93c47d}";

/// The page's Content-Security-Policy: its own inline style only.
fn csp() -> &'static str {
    static CSP: OnceLock<String> = OnceLock::new();
    CSP.get_or_init(|| {
        format!(
            "default-src 'none'; style-src '{}'; img-src data:; base-uri 'none'; \
             form-action 'none'; frame-ancestors 'none'",
            sha256_source(STYLE)
        )
    })
}

/// What the page shows, read from the board and the history.
#[derive(Debug, Default)]
pub struct Data {
    /// The check's live view.
    pub view: CheckView,
    /// Its last runs (stored JSON), newest first.
    pub runs: Vec<Value>,
    /// Per day: start (unix ms), runs, good runs; oldest first.
    pub daily: Vec<(u64, u64, u64)>,
    /// Its last failures (stored JSON), newest first.
    pub failures: Vec<Value>,
}

/// `GET /checks/{name}`.
pub async fn page(State(state): State<WebState>, Path(name): Path<String>) -> Response {
    let Some(view) = state.board.get(&name) else {
        return super::error(StatusCode::NOT_FOUND, format!("no check called {name:?}"));
    };
    let now = now_unix_ms();
    let (runs, daily, failures) = tokio::join!(
        state.history.runs(&name, RUNS),
        state.history.daily(&name, DAYS, now),
        state.history.failures(&name, FAILURES),
    );
    let data = Data {
        view,
        runs: runs.unwrap_or_default(),
        daily: daily.unwrap_or_default(),
        failures: failures.unwrap_or_default(),
    };
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
        render(&data, now),
    )
        .into_response()
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

/// A unix-ms time as `2026-12-05 10:31 UTC`.
fn when(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(ms as i64)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

/// The page.
pub fn render(data: &Data, now: u64) -> String {
    let v = &data.view;
    let state = v.state.as_str();
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"30\"><title>{name} · Vantage</title>\
         <style>{STYLE}</style></head><body><p><a href=\"/\">← all checks</a></p>\
         <h1 id=\"name\">{name} <span class=\"badge {state}\" id=\"state\">{state}</span></h1>\
         <p class=\"meta\">{kind} · {schedule} · {location}{targets}</p>",
        name = esc(&v.name),
        kind = v.kind.as_str(),
        schedule = esc(&v.schedule),
        location = esc(&v.location),
        targets = if v.targets.is_empty() {
            String::new()
        } else {
            format!(" · {}", esc(&v.targets.join(", ")))
        },
    );
    latency(&mut h, &data.runs);
    uptime(&mut h, &data.daily);
    let last = data.runs.first();
    if let Some(last) = last {
        assertions(&mut h, last);
        tls(&mut h, last, now);
    }
    if v.restore.is_some()
        || data
            .runs
            .iter()
            .any(|r| measurement(r, "total_seconds").is_some())
    {
        restore(&mut h, data);
    }
    failures(&mut h, &data.failures);
    h.push_str("</body></html>");
    h
}

/// A measurement of a stored run, by name.
fn measurement(run: &Value, name: &str) -> Option<f64> {
    run["result"]["measurements"]
        .as_array()?
        .iter()
        .find(|m| m["name"] == name)
        .and_then(|m| m["value"].as_f64())
}

/// Latency by phase, oldest run on the left.
fn latency(h: &mut String, runs: &[Value]) {
    const W: f64 = 720.0;
    const HT: f64 = 160.0;
    h.push_str("<h2>Latency</h2>");
    if runs.is_empty() {
        h.push_str("<p class=\"meta\">No run yet.</p>");
        return;
    }
    let bars: Vec<(Vec<f64>, f64)> = runs
        .iter()
        .rev()
        .map(|r| {
            let http = r["result"]["timings"]["http"].as_array();
            let phases: Vec<f64> = PHASES
                .iter()
                .map(|(_, field, _)| http.map_or(0.0, |x| x.iter().map(|t| f(&t[*field])).sum()))
                .collect();
            let total: f64 = phases.iter().sum();
            let run = f(&r["result"]["duration_ms"]);
            (phases, if total > 0.0 { total } else { run })
        })
        .collect();
    let max = bars.iter().map(|(_, t)| *t).fold(0.0f64, f64::max).max(1.0);
    let step = W / bars.len() as f64;
    let _ = write!(
        h,
        "<svg id=\"latency\" width=\"{W}\" height=\"{}\" viewBox=\"0 0 {W} {}\" role=\"img\" \
         aria-label=\"latency of the last {} runs by phase\">",
        HT + 16.0,
        HT + 16.0,
        bars.len()
    );
    for (i, (phases, total)) in bars.iter().enumerate() {
        let x = i as f64 * step;
        let mut y = HT;
        if phases.iter().sum::<f64>() > 0.0 {
            for ((name, _, colour), ms) in PHASES.iter().zip(phases) {
                let hgt = ms / max * HT;
                if hgt <= 0.0 {
                    continue;
                }
                y -= hgt;
                let _ = write!(
                    h,
                    "<rect class=\"phase\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{hgt:.1}\" \
                     fill=\"{colour}\"><title>{name}: {ms:.1} ms</title></rect>",
                    (step - 1.0).max(1.0)
                );
            }
        } else {
            let hgt = total / max * HT;
            let _ = write!(
                h,
                "<rect class=\"run\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{hgt:.1}\" \
                 fill=\"#a4abb6\"><title>run: {total:.1} ms</title></rect>",
                HT - hgt,
                (step - 1.0).max(1.0)
            );
        }
    }
    let _ = write!(
        h,
        "<text x=\"0\" y=\"{}\" font-size=\"11\" fill=\"#5b6472\">max {max:.0} ms</text></svg>",
        HT + 13.0
    );
    h.push_str("<p class=\"legend\">");
    for (i, (name, _, _)) in PHASES.iter().enumerate() {
        let _ = write!(h, "<span><i class=\"p{i}\"></i>{name}</span>");
    }
    h.push_str("</p>");
}

/// One bar per day.
fn uptime(h: &mut String, daily: &[(u64, u64, u64)]) {
    h.push_str("<h2>Uptime per day</h2>");
    let w = 720.0 / daily.len().max(1) as f64;
    let _ = write!(
        h,
        "<svg id=\"uptime\" width=\"720\" height=\"28\" viewBox=\"0 0 720 28\" role=\"img\" \
         aria-label=\"uptime per day\">"
    );
    for (i, (day, all, good)) in daily.iter().enumerate() {
        let (colour, text) = if *all == 0 {
            ("#dfe2e7", "no run".to_string())
        } else {
            let ratio = *good as f64 / *all as f64;
            let colour = if ratio >= 0.999 {
                "#43a35d"
            } else if ratio >= 0.95 {
                "#e0b030"
            } else {
                "#d9534f"
            };
            (colour, format!("{:.2} % of {all} runs", ratio * 100.0))
        };
        let _ = write!(
            h,
            "<rect class=\"day\" x=\"{:.1}\" y=\"0\" width=\"{:.1}\" height=\"28\" fill=\"{colour}\">\
             <title>{}: {text}</title></rect>",
            i as f64 * w,
            (w - 2.0).max(1.0),
            when(*day).get(..10).unwrap_or_default()
        );
    }
    h.push_str("</svg>");
}

/// The last run's assertions.
fn assertions(h: &mut String, last: &Value) {
    let r = &last["result"];
    let _ = write!(
        h,
        "<h2>Last run</h2><p>{} · {} · {}</p>",
        esc(r["status"].as_str().unwrap_or_default()),
        esc(r["summary"].as_str().unwrap_or_default()),
        when(r["started_unix_ms"].as_u64().unwrap_or(0))
    );
    let Some(list) = r["assertions"].as_array().filter(|a| !a.is_empty()) else {
        return;
    };
    h.push_str("<table id=\"assertions\"><tr><th>assertion</th><th>state</th><th>detail</th></tr>");
    for a in list {
        let state = match (a["passed"].as_bool(), a["warn"].as_bool()) {
            (Some(false), _) => "fail",
            (_, Some(true)) => "warn",
            _ => "pass",
        };
        let _ = write!(
            h,
            "<tr><td>{}</td><td class=\"{state}\">{state}</td><td>{}</td></tr>",
            esc(a["name"].as_str().unwrap_or_default()),
            esc(a["detail"].as_str().unwrap_or_default())
        );
    }
    h.push_str("</table>");
}

/// The last run's TLS handshakes.
fn tls(h: &mut String, last: &Value, now: u64) {
    let Some(list) = last["result"]["timings"]["tls"]
        .as_array()
        .filter(|t| !t.is_empty())
    else {
        return;
    };
    h.push_str("<h2>TLS</h2><table id=\"tls\"><tr><th>server</th><th>version</th><th>verdict</th><th>leaf</th><th>expires</th></tr>");
    for t in list {
        let expiry = t["earliest_expiry_unix_ms"].as_i64().map(|e| {
            let days = (e - now as i64) as f64 / 86_400_000.0;
            format!("{} ({days:.0} days)", when(e.max(0) as u64))
        });
        let leaf = &t["leaf"];
        let sans = leaf["sans"]
            .as_array()
            .map(|s| {
                s.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}<br><span class=\"meta\">issuer {} · {}</span></td><td>{}</td></tr>",
            esc(t["server"].as_str().unwrap_or_default()),
            esc(t["version"].as_str().unwrap_or_default()),
            esc(t["verdict"].as_str().unwrap_or_default()),
            esc(leaf["subject"].as_str().unwrap_or_default()),
            esc(leaf["issuer"].as_str().unwrap_or_default()),
            esc(&sans),
            esc(&expiry.unwrap_or_default())
        );
    }
    h.push_str("</table>");
}

/// RTO per run against its target, and the last run's phases.
fn restore(h: &mut String, data: &Data) {
    h.push_str("<h2>Restore time (RTO)</h2>");
    let points: Vec<f64> = data
        .runs
        .iter()
        .rev()
        .filter_map(|r| measurement(r, "total_seconds"))
        .collect();
    let target = data
        .runs
        .first()
        .and_then(|r| measurement(r, "rto_target_seconds"))
        .or_else(|| {
            data.view
                .restore
                .as_ref()
                .and_then(|r| r.rto_target_seconds)
        });
    let max = points.iter().copied().chain(target).fold(1.0f64, f64::max) * 1.1;
    let step = 720.0 / points.len().max(1) as f64;
    h.push_str("<svg id=\"rto\" width=\"720\" height=\"120\" viewBox=\"0 0 720 120\" role=\"img\" aria-label=\"RTO per run\">");
    for (i, s) in points.iter().enumerate() {
        let hgt = s / max * 110.0;
        let over = target.is_some_and(|t| *s > t);
        let _ = write!(
            h,
            "<rect class=\"rto\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{hgt:.1}\" fill=\"{}\"><title>{s:.0} s</title></rect>",
            i as f64 * step,
            110.0 - hgt,
            (step - 2.0).max(1.0),
            if over { "#d9534f" } else { "#6fa8dc" }
        );
    }
    if let Some(t) = target {
        let y = 110.0 - t / max * 110.0;
        let _ = write!(
            h,
            "<line id=\"rto-target\" x1=\"0\" x2=\"720\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#a40000\" \
             stroke-dasharray=\"4 3\"><title>target {t:.0} s</title></line>"
        );
    }
    h.push_str("</svg>");
    let Some(report) = &data.view.restore else {
        return;
    };
    let t = &report.timings;
    let phases = [
        ("select", t.select_seconds),
        ("setup", t.setup_seconds),
        ("restore", t.restore_seconds),
        ("ready", t.ready_seconds),
        ("checks", t.checks_seconds),
        ("cleanup", t.cleanup_seconds),
    ];
    let total: f64 = phases
        .iter()
        .filter_map(|(_, s)| *s)
        .sum::<f64>()
        .max(0.001);
    h.push_str("<h2>Last restore, phase by phase</h2><svg id=\"waterfall\" width=\"720\" height=\"150\" viewBox=\"0 0 720 150\" role=\"img\" aria-label=\"phases of the last restore\">");
    let mut start = 0.0;
    for (i, (name, secs)) in phases.iter().enumerate() {
        let Some(secs) = secs else { continue };
        let x = 110.0 + start / total * 600.0;
        let w = (secs / total * 600.0).max(1.0);
        let y = i as f64 * 24.0;
        let _ = write!(
            h,
            "<text x=\"0\" y=\"{:.1}\" font-size=\"12\">{name}</text><rect class=\"phase\" x=\"{x:.1}\" y=\"{y:.1}\" \
             width=\"{w:.1}\" height=\"18\" fill=\"#6fa8dc\"><title>{name}: {secs:.1} s</title></rect>",
            y + 13.0
        );
        start += secs;
    }
    h.push_str("</svg>");
}

/// The last failures.
fn failures(h: &mut String, list: &[Value]) {
    h.push_str("<h2>Last failures</h2>");
    if list.is_empty() {
        h.push_str("<p class=\"meta\" id=\"failures\">None recorded.</p>");
        return;
    }
    h.push_str("<div id=\"failures\">");
    for r in list {
        let result = &r["result"];
        let reason = result["error"]["message"]
            .as_str()
            .or_else(|| result["summary"].as_str())
            .unwrap_or_default();
        let logs: Vec<String> = result["logs"]
            .as_array()
            .map(|l| {
                l.iter()
                    .take(20)
                    .map(|line| {
                        format!(
                            "{} {}",
                            line["level"].as_str().unwrap_or_default(),
                            line["message"].as_str().unwrap_or_default()
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let _ = write!(
            h,
            "<details class=\"failure\"><summary>{} · {} · {}</summary>",
            when(result["started_unix_ms"].as_u64().unwrap_or(0)),
            esc(result["status"].as_str().unwrap_or_default()),
            esc(reason.lines().next().unwrap_or_default())
        );
        if reason.lines().count() > 1 || !logs.is_empty() {
            let _ = write!(h, "<pre>{}", esc(reason));
            if !logs.is_empty() {
                let _ = write!(h, "\n\n{}", esc(&logs.join("\n")));
            }
            h.push_str("</pre>");
        }
        h.push_str("</details>");
    }
    h.push_str("</div>");
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::result::RestoreReport;

    fn restore_run(total: f64) -> Value {
        serde_json::json!({"result": {
            "status": "pass", "summary": "restored", "started_unix_ms": 1_796_000_000_000u64,
            "duration_ms": total * 1000.0, "assertions": [], "timings": {"http": [], "tls": []},
            "measurements": [
                {"name": "total_seconds", "value": total, "unit": "s", "labels": {}},
                {"name": "rto_target_seconds", "value": 600.0, "unit": "s", "labels": {}}
            ]
        }})
    }

    #[test]
    fn a_restore_test_shows_its_rto_against_the_target_and_its_phases() {
        let mut report: RestoreReport = serde_json::from_value(serde_json::json!({
            "test": "orders", "run_id": "r", "location": "fra1", "namespace": null,
            "namespaces": [], "started_unix_ms": 0, "finished_unix_ms": 1, "backup": null,
            "restore": null, "readiness": null, "checks": [],
            "timings": {}, "rto_target_seconds": 600.0, "verdict": "pass", "reason": "ok",
            "cleanup": {"namespace_deleted": true, "restore_deleted": true,
                        "configmap_deleted": true, "leftovers_deleted": [], "errors": [],
                        "left_to_janitor": []}
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        report.timings.setup_seconds = Some(3.0);
        report.timings.restore_seconds = Some(240.0);
        report.timings.ready_seconds = Some(90.0);
        report.timings.checks_seconds = Some(12.0);
        let data = Data {
            view: CheckView {
                name: "orders".into(),
                kind: crate::sinks::board::Kind::Restore,
                restore: Some(Arc::new(report)),
                ..CheckView::default()
            },
            // Newest first: the last run took 700 s, over its 600 s target.
            runs: vec![restore_run(700.0), restore_run(420.0), restore_run(380.0)],
            daily: vec![(0, 3, 3)],
            failures: Vec::new(),
        };
        let html = render(&data, 0);
        assert_eq!(html.matches("class=\"rto\"").count(), 3, "{html}");
        assert_eq!(
            html.matches("fill=\"#d9534f\"><title>700 s").count(),
            1,
            "{html}"
        );
        assert!(html.contains("id=\"rto-target\""), "{html}");
        let waterfall = &html[html.find("id=\"waterfall\"").unwrap()..];
        for phase in [
            "setup: 3.0 s",
            "restore: 240.0 s",
            "ready: 90.0 s",
            "checks: 12.0 s",
        ] {
            assert!(waterfall.contains(phase), "{phase}: {waterfall}");
        }
    }
}
