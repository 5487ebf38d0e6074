//! The status page, `GET /`: server-rendered HTML with the stylesheet and a
//! few lines of script (auto-refresh every 15 s) inlined, no external assets.
//!
//! Every check is one `<article id="check-{name}" data-state="up|down|pending">`
//! (alerts link to `/#check-{name}`); problems sort first. Everything that
//! comes from the configuration or from checks is HTML-escaped, and a
//! Content-Security-Policy only lets the page's own script and style run.

use std::fmt::Write as _;
use std::sync::OnceLock;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::api::{RunBrief, last_failure_brief, summaries};
use super::{WebState, now_unix_ms};
use crate::result::CheckState;
use crate::sinks::board::CheckView;
use crate::sinks::history::Summary;

const STYLE: &str = include_str!("assets/status.css");
const SCRIPT: &str = include_str!("assets/status.js");
const LOGO: &str = include_str!("assets/logo.svg");

/// How often the page refreshes itself (keep in sync with `status.js`).
pub const REFRESH_SECS: u64 = 15;

/// `GET /`: the status page.
pub async fn status_page(State(state): State<WebState>) -> Response {
    let views = state.board.snapshot();
    // A central daemon that runs no check of its own: the fleet is the page.
    if state.central.is_some() && views.is_empty() {
        return axum::response::Redirect::temporary("/central").into_response();
    }
    let summaries = summaries(&state, &views).await;
    let checks: Vec<(CheckView, Summary)> = views.into_iter().zip(summaries).collect();
    let html = render(&state.location, state.version, now_unix_ms(), &checks);
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_str(content_security_policy()).expect("the CSP is plain ASCII"),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
        ],
        html,
    )
        .into_response()
}

/// The page's Content-Security-Policy: nothing but its own inline style and
/// script (by hash), fetches to itself and `data:` images (the favicon).
pub fn content_security_policy() -> &'static str {
    static CSP: OnceLock<String> = OnceLock::new();
    CSP.get_or_init(|| {
        format!(
            "default-src 'none'; style-src '{}'; script-src '{}'; connect-src 'self'; \
             img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            sha256_source(STYLE),
            sha256_source(SCRIPT)
        )
    })
}

/// `sha256-<base64>` of `text`, as CSP wants it.
pub(super) fn sha256_source(text: &str) -> String {
    format!("sha256-{}", base64(&Sha256::digest(text.as_bytes())))
}

/// Standard base64 with padding.
pub(super) fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Escape `s` for HTML text and (double- or single-quoted) attributes.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Problems first: down, then pending, then up.
fn state_rank(s: CheckState) -> u8 {
    match s {
        CheckState::Down => 0,
        CheckState::Pending => 1,
        CheckState::Up => 2,
    }
}

fn state_label(s: CheckState) -> &'static str {
    match s {
        CheckState::Up => "Up",
        CheckState::Down => "Down",
        CheckState::Pending => "Pending",
    }
}

/// Render the whole page. `checks` in any order (they are sorted here).
pub fn render(
    location: &str,
    version: &str,
    now_unix_ms: u64,
    checks: &[(CheckView, Summary)],
) -> String {
    let mut sorted: Vec<&(CheckView, Summary)> = checks.iter().collect();
    sorted.sort_by(|(a, _), (b, _)| {
        state_rank(a.state)
            .cmp(&state_rank(b.state))
            .then_with(|| a.name.cmp(&b.name))
    });
    let count = |s: CheckState| checks.iter().filter(|(v, _)| v.state == s).count();
    let (up, down, pending) = (
        count(CheckState::Up),
        count(CheckState::Down),
        count(CheckState::Pending),
    );
    let (overall, headline) = if checks.is_empty() {
        ("pending", "No checks configured".to_string())
    } else if down > 0 {
        let noun = if down == 1 { "check is" } else { "checks are" };
        ("down", format!("{down} {noun} down"))
    } else if up == 0 {
        ("pending", "Waiting for the first runs".to_string())
    } else if pending > 0 {
        (
            "up",
            format!("All checks that ran are up ({pending} pending)"),
        )
    } else {
        ("up", "All checks are up".to_string())
    };
    let title = if down > 0 {
        format!("{down} down · Vantage · {location}")
    } else {
        format!("Vantage · {location}")
    };

    let mut h = String::with_capacity(16 * 1024 + 2 * 1024 * checks.len());
    let _ = write!(
        h,
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>{title}</title>
<link rel="icon" href="data:image/svg+xml,{favicon}">
<style>{STYLE}</style>
</head>
<body>
<header class="topbar">
<div class="wrap topbar-inner">
<a class="brand" href="/">{LOGO}<span>Vantage</span></a>
<div class="meta">
<span>Location <b>{location}</b></span>
<span id="updated">Updated {updated}</span>
</div>
</div>
</header>
<main class="wrap" id="content">
<section class="overview overview-{overall}" aria-live="polite">
<div class="overview-title"><span class="pulse" aria-hidden="true"></span><h1>{headline}</h1></div>
<ul class="counts">
<li class="count count-up"><b>{up}</b> up</li>
<li class="count count-down"><b>{down}</b> down</li>
<li class="count count-pending"><b>{pending}</b> pending</li>
</ul>
</section>
"#,
        title = esc(&title),
        favicon = favicon_data(),
        location = esc(location),
        updated = time_tag(now_unix_ms, &clock(now_unix_ms)),
        headline = esc(&headline),
    );

    if checks.is_empty() {
        h.push_str(
            "<p class=\"empty\">Add checks to <code>vantage.toml</code>; they appear here \
             as soon as the daemon loads them.</p>\n",
        );
    } else {
        h.push_str(
            "<div class=\"checks\">\n<div class=\"checks-head\" aria-hidden=\"true\">\
             <span>State</span><span>Check</span><span>Uptime</span><span>Latency</span>\
             <span>Schedule</span></div>\n",
        );
        for (view, summary) in sorted {
            check_row(&mut h, view, summary, now_unix_ms);
        }
        h.push_str("</div>\n");
    }

    let _ = write!(
        h,
        r#"</main>
<footer class="wrap foot">
<span>Vantage {version}</span>
<a href="/api/v1/checks">JSON API</a>
<a href="/metrics">Metrics</a>
<a href="/healthz">Health</a>
<span>Refreshes every {REFRESH_SECS} s</span>
</footer>
<script>{SCRIPT}</script>
</body>
</html>
"#,
        version = esc(version),
    );
    h
}

fn check_row(h: &mut String, view: &CheckView, summary: &Summary, now: u64) {
    let name = esc(&view.name);
    let state = view.state.as_str();
    let _ = write!(
        h,
        r##"<article class="check check-{state}" id="check-{name}" data-state="{state}">
<div class="c-state"><span class="badge badge-{state}"><span class="dot" aria-hidden="true"></span>{label}</span></div>
<div class="c-main">
<h2 class="c-name"><a href="#check-{name}">{name}</a> <a class="c-more" href="/checks/{name}" title="Latency by phase, uptime per day, failures">details</a>"##,
        label = state_label(view.state),
    );
    if let Some(m) = &view.maintenance {
        let _ = write!(
            h,
            r#"<span class="tag tag-maint" title="Maintenance window: alerts are suppressed">Maintenance · {}</span>"#,
            esc(m)
        );
    }
    if view.kind == crate::sinks::board::Kind::Restore {
        h.push_str(
            r#"<span class="tag tag-restore" title="Restores a Velero backup into a volatile namespace and checks the app">restore test</span>"#,
        );
    }
    let _ = write!(
        h,
        r#"<span class="tag" title="Alert severity">{}</span></h2>"#,
        esc(&view.severity)
    );
    if let Some(report) = &view.restore {
        restore_line(h, report);
    }
    if view.targets.is_empty() {
        let _ = write!(h, r#"<p class="c-targets">{}</p>"#, esc(&view.component));
    } else {
        let targets: Vec<String> = view
            .targets
            .iter()
            .map(|t| format!("<span>{}</span>", esc(t)))
            .collect();
        let _ = write!(h, r#"<p class="c-targets">{}</p>"#, targets.join(""));
    }

    match view.last.as_deref().map(RunBrief::from_record) {
        Some(last) => {
            let _ = write!(
                h,
                r#"<p class="c-last"><span class="st st-{status}">{status}</span><span class="c-summary">{summary}</span><span class="when">{duration} · {when}</span></p>"#,
                status = esc(&last.status),
                summary = esc(&last.summary),
                duration = fmt_duration(last.duration_ms),
                when = time_tag(last.started_unix_ms, &ago(last.started_unix_ms, now)),
            );
        }
        None => h.push_str(r#"<p class="c-last muted">No run yet</p>"#),
    }
    if let Some(fail) = last_failure_brief(view, summary) {
        // The first line in the row; the rest (a trap's or panic's last
        // lines on stderr: a traceback, a stack) folded beneath it.
        let (first, rest) = fail.reason.split_once('\n').unwrap_or((&fail.reason, ""));
        let _ = write!(
            h,
            r#"<p class="c-failure"><span class="c-failure-label">Last failure {when}</span><span class="c-reason">{reason}</span></p>"#,
            when = time_tag(fail.started_unix_ms, &ago(fail.started_unix_ms, now)),
            reason = esc(first),
        );
        if !rest.trim().is_empty() {
            let _ = write!(
                h,
                r#"<details class="c-detail"><summary>details</summary><pre>{}</pre></details>"#,
                esc(rest)
            );
        }
    }
    h.push_str("</div>\n");

    let _ = writeln!(
        h,
        r#"<div class="c-uptime"><div class="up-row"><span class="label">24 h</span>{d}</div><div class="up-row"><span class="label">7 d</span>{w}</div></div>"#,
        d = uptime(summary.uptime_24h),
        w = uptime(summary.uptime_7d),
    );

    let _ = write!(
        h,
        r#"<div class="c-latency">{}</div>"#,
        sparkline(&summary.latency)
    );

    let next = match view.next_unix_ms {
        Some(t) => format!("Next {}", time_tag(t, &until(t, now))),
        None => "Not scheduled".to_string(),
    };
    let _ = write!(
        h,
        r#"<div class="c-sched"><span class="sched">{}</span><span class="next">{next}</span></div>
</article>
"#,
        esc(&view.schedule),
    );
}

/// The last restore test's backup, phases and RTO, in one line.
fn restore_line(h: &mut String, report: &crate::result::RestoreReport) {
    let mut parts = Vec::new();
    if let Some(b) = &report.backup {
        parts.push(format!("backup {}", esc(&b.name)));
    }
    let t = &report.timings;
    for (label, value) in [
        ("restore", t.restore_seconds),
        ("ready", t.ready_seconds),
        ("checks", t.checks_seconds),
    ] {
        if let Some(s) = value {
            parts.push(format!("{label} {}", fmt_duration(s * 1000.0)));
        }
    }
    if let Some(total) = t.total_seconds {
        let target = report
            .rto_target_seconds
            .map(|r| format!(" (target {})", fmt_duration(r * 1000.0)))
            .unwrap_or_default();
        parts.push(format!("RTO {}{target}", fmt_duration(total * 1000.0)));
    }
    if !parts.is_empty() {
        let _ = write!(h, r#"<p class="c-restore">{}</p>"#, parts.join(" · "));
    }
}

fn uptime(u: Option<f64>) -> String {
    match u {
        None => r#"<span class="pct pct-none" title="No runs in this window">—</span>"#.into(),
        Some(u) => {
            let class = if u >= 0.999 {
                "good"
            } else if u >= 0.99 {
                "warn"
            } else {
                "bad"
            };
            format!(r#"<span class="pct pct-{class}">{}</span>"#, fmt_percent(u))
        }
    }
}

/// `100%`, `99.95%` (rounded down: 99.999 % is not 100 %), `12.5%`.
pub fn fmt_percent(fraction: f64) -> String {
    if fraction >= 1.0 {
        return "100%".into();
    }
    let hundredths = (fraction.max(0.0) * 10_000.0).floor() / 100.0;
    let s = format!("{hundredths:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("{s}%")
}

/// `0.42 ms`, `87 ms`, `1.25 s`.
pub fn fmt_duration(ms: f64) -> String {
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else if ms < 60_000.0 {
        format!("{:.2} s", ms / 1000.0)
    } else {
        format!("{:.1} min", ms / 60_000.0)
    }
}

fn span(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86_400 => format!("{} h", s / 3600),
        _ => format!("{} d", s / 86_400),
    }
}

/// `just now`, `42 s ago`, `5 min ago`, `3 h ago`, `2 d ago`.
pub fn ago(then: u64, now: u64) -> String {
    let d = now.saturating_sub(then);
    if d < 5_000 {
        "just now".into()
    } else {
        format!("{} ago", span(d))
    }
}

/// `in 42 s`, `in 5 min`..., or `now` when due.
pub fn until(then: u64, now: u64) -> String {
    if then <= now + 999 {
        "now".into()
    } else {
        format!("in {}", span(then - now + 999))
    }
}

fn datetime(ms: u64) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::from_timestamp_millis(i64::try_from(ms).ok()?)
}

/// `12:00:03 UTC`.
fn clock(ms: u64) -> String {
    datetime(ms)
        .map(|t| t.format("%H:%M:%S UTC").to_string())
        .unwrap_or_default()
}

/// `<time>` with the exact UTC time in `datetime` and as a tooltip.
fn time_tag(ms: u64, text: &str) -> String {
    match datetime(ms) {
        Some(t) => format!(
            r#"<time datetime="{}" title="{}">{}</time>"#,
            t.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
            t.format("%Y-%m-%d %H:%M:%S UTC"),
            esc(text)
        ),
        None => esc(text),
    }
}

/// The latency of the last runs as an inline SVG sparkline (0 at the
/// bottom, the slowest run at the top), with the last value under it.
pub fn sparkline(points: &[(u64, f64)]) -> String {
    const W: f64 = 132.0;
    const H: f64 = 30.0;
    const PAD: f64 = 2.0;
    if points.is_empty() {
        return r#"<span class="spark-none">No runs yet</span>"#.into();
    }
    let values: Vec<f64> = points
        .iter()
        .map(|(_, d)| if d.is_finite() { d.max(0.0) } else { 0.0 })
        .collect();
    let max = values.iter().copied().fold(0.0, f64::max);
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let avg = values.iter().sum::<f64>() / values.len() as f64;
    let last = *values.last().unwrap_or(&0.0);
    let n = values.len();
    let xy: Vec<(f64, f64)> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let x = if n == 1 {
                W - PAD
            } else {
                PAD + i as f64 * (W - 2.0 * PAD) / (n - 1) as f64
            };
            let y = if max > 0.0 {
                H - PAD - v / max * (H - 2.0 * PAD)
            } else {
                H - PAD
            };
            (x, y)
        })
        .collect();
    let line: Vec<String> = xy.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
    let line = line.join(" ");
    let (x0, _) = xy[0];
    let (xn, yn) = xy[n - 1];
    let label = format!(
        "Latency of the last {n} run{s}: min {}, average {}, max {}",
        fmt_duration(min),
        fmt_duration(avg),
        fmt_duration(max),
        s = if n == 1 { "" } else { "s" },
    );
    format!(
        r#"<svg class="spark" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="{label}"><title>{label}</title><polygon class="spark-area" points="{x0:.1},{H} {line} {xn:.1},{H}"/><polyline class="spark-line" points="{line}"/><circle class="spark-dot" cx="{xn:.1}" cy="{yn:.1}" r="2.2"/></svg><span class="spark-last">last {last} · max {max}</span>"#,
        label = esc(&label),
        last = fmt_duration(last),
        max = fmt_duration(max),
    )
}

/// The logo as a `data:` URL body for the favicon.
fn favicon_data() -> String {
    LOGO.trim()
        .replace('"', "'")
        .replace('<', "%3C")
        .replace('>', "%3E")
        .replace('#', "%23")
        .replace('\n', " ")
}
