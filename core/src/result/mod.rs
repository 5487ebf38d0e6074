//! [`CheckResult`]: the one result type, from the runtime to every sink.
//!
//! A check's own verdict (`pass`, `degraded`, `fail`) is copied from the
//! guest; the host adds [`Status::Error`] for runs that never produced a
//! verdict (trap, panic, deadline, memory or fuel limit, host failure), with an
//! [`RunError`] saying why.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

pub mod http;
pub mod log;
pub mod record;
pub mod restore;
pub mod tls;
pub mod verdict;

use std::sync::atomic::{AtomicU64, Ordering};

pub use http::HttpTrace;
pub use log::{Level, LogLine};
pub use record::{Attempt, CheckState, RanComponent, RunRecord, Transition};
pub use restore::RestoreReport;
pub use tls::{LeafCertificate, TlsTrace};
pub use verdict::Verdict;

/// The outcome of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Everything the check asserted held.
    Pass,
    /// The service works, but worse than it should.
    Degraded,
    /// The service does not work as asserted.
    Fail,
    /// The check did not produce a verdict (see [`CheckResult::error`]).
    Error,
}

impl Status {
    /// Exit code following the Nagios plugin convention: 0 OK, 1 WARNING,
    /// 2 CRITICAL, 3 UNKNOWN.
    pub fn exit_code(self) -> i32 {
        match self {
            Status::Pass => 0,
            Status::Degraded => 1,
            Status::Fail => 2,
            Status::Error => 3,
        }
    }

    /// Lowercase name, as in JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Degraded => "degraded",
            Status::Fail => "fail",
            Status::Error => "error",
        }
    }
}

/// One named claim a check verified.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Assertion {
    /// Short stable name, e.g. `status is 200`.
    pub name: String,
    /// Whether it held (a claim that held with a warning counts as held).
    pub passed: bool,
    /// It held, with a warning (a check's `warn` assertion state, WIT 0.2.0):
    /// worth a look, not a failure.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub warn: bool,
    /// What was observed.
    pub detail: String,
    /// How long verifying it took, when the check measured it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<f64>,
}

/// One named number a check measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Measurement {
    /// Metric-friendly name, e.g. `http_total_ms`.
    pub name: String,
    /// The value.
    pub value: f64,
    /// Unit, possibly empty.
    pub unit: String,
    /// Labels telling series of one name apart (WIT 0.2.0), e.g.
    /// `target = "https://a.example"`; exported with the measurement's series.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub labels: std::collections::BTreeMap<String, String>,
}

/// Why a run produced no verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// The component could not be loaded, compiled or instantiated.
    Load,
    /// The guest trapped (e.g. `unreachable`, out-of-bounds access).
    Trap,
    /// The guest panicked; the message is the panic message.
    Panic,
    /// The run's wall-clock deadline expired.
    Deadline,
    /// The guest tried to grow its memory beyond the configured cap.
    Memory,
    /// The guest used up its fuel (instruction budget).
    Fuel,
    /// The run used more CPU time than its `cpu` limit.
    Cpu,
    /// The guest returned a verdict larger than the host keeps (too many
    /// assertions, measurements or labels, or too much text).
    ResultTooLarge,
    /// The host failed while serving the guest.
    Host,
    /// The run's configuration could not be resolved (e.g. a
    /// `{{secret.NAME}}` reference to a secret that is not granted).
    Config,
}

/// A host-side failure, attached to results with [`Status::Error`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunError {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// Human-readable reason, naming the limit or the trap.
    pub message: String,
}

/// Host-measured timings of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RunTimings {
    /// Creating the store and instantiating the component.
    pub instantiate_ms: f64,
    /// Executing the check's `run` export.
    pub run_ms: f64,
    /// Every HTTP exchange the check made, with per-phase timings.
    pub http: Vec<HttpTrace>,
    /// Every TLS handshake the check's calls completed, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tls: Vec<TlsTrace>,
}

/// The complete result of one run of one check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckResult {
    /// The check's configured name.
    pub check: String,
    /// The verdict.
    pub status: Status,
    /// One line for humans.
    pub summary: String,
    /// Wall-clock duration of the whole run, as seen by the host.
    pub duration_ms: f64,
    /// The location label of the host that ran it.
    pub location: String,
    /// Unique id of the run.
    pub run_id: String,
    /// Start of the run, unix milliseconds.
    pub started_unix_ms: u64,
    /// Claims the check verified.
    pub assertions: Vec<Assertion>,
    /// Numbers the check measured.
    pub measurements: Vec<Measurement>,
    /// Extra labels the check attached.
    pub labels: Vec<(String, String)>,
    /// Host-measured timings.
    pub timings: RunTimings,
    /// Log lines the check wrote (bounded).
    pub logs: Vec<LogLine>,
    /// Why there is no verdict, for [`Status::Error`].
    pub error: Option<RunError>,
}

impl CheckResult {
    /// A result without a verdict, for a run the host could not start (e.g.
    /// the component failed to load): status error, with `kind` and why.
    pub fn host_error(
        check: &str,
        location: &str,
        started_unix_ms: u64,
        kind: ErrorKind,
        message: impl Into<String>,
    ) -> Self {
        let message = message.into();
        CheckResult {
            check: check.to_string(),
            status: Status::Error,
            summary: message.clone(),
            location: location.to_string(),
            run_id: next_run_id(started_unix_ms),
            started_unix_ms,
            duration_ms: 0.0,
            assertions: Vec::new(),
            measurements: Vec::new(),
            labels: Vec::new(),
            timings: RunTimings::default(),
            logs: Vec::new(),
            error: Some(RunError { kind, message }),
        }
    }

    /// Pass every string the guest could have written through `redact`:
    /// summary, assertions, measurements (labels included), labels, logs,
    /// HTTP traces (method, URL, error), TLS traces and the error message. The runtime calls it once with the
    /// run's secret redactor (`Revealed::redact_result` in
    /// `capabilities::secrets`), as the result leaves the sandbox, so every
    /// sink (API, history, status page, metrics, alerts, audit) only ever
    /// sees redacted results. `check`, `location` and `run_id` come from the
    /// host's configuration, not from the guest.
    pub fn redact_with(&mut self, redact: impl for<'a> Fn(&'a str) -> Cow<'a, str>) {
        let scrub = |s: &mut String| {
            if let Cow::Owned(redacted) = redact(s) {
                *s = redacted;
            }
        };
        scrub(&mut self.summary);
        for a in &mut self.assertions {
            scrub(&mut a.name);
            scrub(&mut a.detail);
        }
        for m in &mut self.measurements {
            scrub(&mut m.name);
            scrub(&mut m.unit);
            if !m.labels.is_empty() {
                m.labels = std::mem::take(&mut m.labels)
                    .into_iter()
                    .map(|(mut k, mut v)| {
                        scrub(&mut k);
                        scrub(&mut v);
                        (k, v)
                    })
                    .collect();
            }
        }
        for (k, v) in &mut self.labels {
            scrub(k);
            scrub(v);
        }
        for line in &mut self.logs {
            scrub(&mut line.message);
        }
        for t in &mut self.timings.http {
            scrub(&mut t.method);
            scrub(&mut t.url);
            if let Some(e) = &mut t.error {
                scrub(e);
            }
        }
        for t in &mut self.timings.tls {
            scrub(&mut t.server);
            scrub(&mut t.version);
            scrub(&mut t.verdict);
            if let Some(leaf) = &mut t.leaf {
                scrub(&mut leaf.subject);
                scrub(&mut leaf.issuer);
                leaf.sans.iter_mut().for_each(&scrub);
                scrub(&mut leaf.serial);
                scrub(&mut leaf.sha256_fingerprint);
            }
        }
        if let Some(e) = &mut self.error {
            scrub(&mut e.message);
        }
    }
}

/// A run id unique within this host: start time, process id, counter (hex).
pub fn next_run_id(unix_ms: u64) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    // `process::id` is a system call each time; the pid does not change.
    static PID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let pid = PID.get_or_init(std::process::id);
    format!("{unix_ms:x}-{pid:x}-{n:x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_nagios() {
        assert_eq!(Status::Pass.exit_code(), 0);
        assert_eq!(Status::Degraded.exit_code(), 1);
        assert_eq!(Status::Fail.exit_code(), 2);
        assert_eq!(Status::Error.exit_code(), 3);
    }

    #[test]
    fn redact_scrubs_every_string() {
        let mut r = CheckResult {
            check: "c".into(),
            status: Status::Fail,
            summary: "token s3cr3t rejected".into(),
            duration_ms: 1.0,
            location: "here".into(),
            run_id: "1".into(),
            started_unix_ms: 0,
            assertions: vec![Assertion {
                name: "auth".into(),
                passed: false,
                warn: false,
                detail: "sent s3cr3t".into(),
                duration_ms: None,
            }],
            measurements: vec![Measurement {
                labels: [("s3cr3t_k".to_string(), "v s3cr3t".to_string())].into(),
                name: "m".into(),
                value: 1.0,
                unit: "s3cr3t".into(),
            }],
            labels: vec![("k".into(), "xs3cr3tx".into())],
            timings: RunTimings {
                tls: vec![TlsTrace {
                    via: "tls".into(),
                    server: "s3cr3t.example:443".into(),
                    version: "TLSv1.3".into(),
                    verdict: "valid".into(),
                    earliest_expiry_unix_ms: None,
                    verified_expiry_unix_ms: None,
                    leaf: Some(LeafCertificate {
                        subject: "CN=s3cr3t".into(),
                        issuer: "CN=ca".into(),
                        sans: vec!["s3cr3t.example".into()],
                        serial: "00".into(),
                        sha256_fingerprint: "ab".into(),
                    }),
                }],
                ..RunTimings::default()
            },
            logs: vec![LogLine {
                level: Level::Info,
                message: "using s3cr3t".into(),
            }],
            error: Some(RunError {
                kind: ErrorKind::Panic,
                message: "panicked on s3cr3t".into(),
            }),
        };
        r.redact_with(|s| {
            if s.contains("s3cr3t") {
                Cow::Owned(s.replace("s3cr3t", "[redacted]"))
            } else {
                Cow::Borrowed(s)
            }
        });
        let json = serde_json::to_string(&r).unwrap();
        assert!(!json.contains("s3cr3t"), "{json}");
        assert_eq!(json.matches("[redacted]").count(), 11, "{json}");
    }
}
