//! Test helpers: run records made in one place, for the sinks' tests.

use crate::result::{CheckResult, CheckState, RunRecord, RunTimings, Status};

/// A run of `check` that started, as planned, at `started` (unix ms) and
/// ended with `status` in `state`: run id `<check>-<started>`, summary the
/// status, 1 ms, location `test`, severity `critical`, nothing else. Tests
/// set the fields they vary.
pub fn run_record(check: &str, started: u64, status: Status, state: CheckState) -> RunRecord {
    RunRecord {
        result: CheckResult {
            check: check.into(),
            status,
            summary: status.as_str().into(),
            duration_ms: 1.0,
            location: "test".into(),
            run_id: format!("{check}-{started}"),
            started_unix_ms: started,
            assertions: vec![],
            measurements: vec![],
            labels: vec![],
            timings: RunTimings::default(),
            logs: vec![],
            error: None,
        },
        planned_unix_ms: started,
        lateness_ms: 0.0,
        retries: vec![],
        state,
        transition: None,
        maintenance: None,
        severity: "critical".into(),
        component: None,
    }
}
