//! How results are printed: a human report and the JSON document.

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::result::{CheckResult, Status};

/// The JSON document of `vantage run --json`.
pub fn json(result: &CheckResult) -> Value {
    // The result serialises as-is; this is the place to shape the CLI's
    // document if it ever needs to differ from the sinks'.
    serde_json::to_value(result).unwrap_or_else(|e| json!({ "error": e.to_string() }))
}

fn badge(status: Status) -> &'static str {
    match status {
        Status::Pass => "PASS",
        Status::Degraded => "DEGRADED",
        Status::Fail => "FAIL",
        Status::Error => "ERROR",
    }
}

/// The human-readable report.
pub fn human(r: &CheckResult) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} {} in {:.1} ms: {}",
        badge(r.status),
        r.check,
        r.duration_ms,
        r.summary
    );
    for a in &r.assertions {
        let mark = if a.passed { "ok  " } else { "FAIL" };
        let timing = a
            .duration_ms
            .map(|d| format!(" ({d:.1} ms)"))
            .unwrap_or_default();
        let _ = writeln!(out, "  [{mark}] {}: {}{timing}", a.name, a.detail);
    }
    for t in &r.timings.http {
        let status = t
            .status
            .map(|s| s.to_string())
            .unwrap_or_else(|| "---".into());
        let _ = writeln!(
            out,
            "  http {} {} -> {status}  resolve {:.2} ms | connect {:.2} ms | tls {:.2} ms | processing {:.2} ms | transfer {:.2} ms | total {:.2} ms{}",
            t.method,
            t.url,
            t.timings.resolve_ms,
            t.timings.connect_ms,
            t.timings.tls_ms,
            t.timings.processing_ms,
            t.timings.transfer_ms,
            t.timings.total_ms,
            t.error
                .as_ref()
                .map(|e| format!("  ({e})"))
                .unwrap_or_default(),
        );
    }
    if !r.measurements.is_empty() {
        let list: Vec<String> = r
            .measurements
            .iter()
            .map(|m| {
                let unit = if m.unit.is_empty() {
                    String::new()
                } else {
                    format!(" {}", m.unit)
                };
                format!("{}={}{unit}", m.name, trim_float(m.value))
            })
            .collect();
        let _ = writeln!(out, "  measurements: {}", list.join(", "));
    }
    for line in &r.logs {
        let _ = writeln!(out, "  log {}: {}", line.level.as_str(), line.message);
    }
    if let Some(e) = &r.error {
        let kind = serde_json::to_value(e.kind).unwrap_or_default();
        let _ = writeln!(out, "  error kind: {}", kind.as_str().unwrap_or("unknown"));
        // The rest of the message (the summary is its first line): the
        // guest's last lines on stderr after a panic or a trap.
        for line in e.message.lines().skip(1) {
            let _ = writeln!(out, "  | {line}");
        }
    }
    out
}

fn trim_float(v: f64) -> String {
    let text = format!("{v:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}
