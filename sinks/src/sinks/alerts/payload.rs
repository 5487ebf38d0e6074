//! What goes on the wire: Alertmanager v2 alerts and the generic webhook
//! document (schemas in the [module docs](super)).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::result::RunRecord;

/// The `alertname` label of every alert Vantage sends.
pub(super) const ALERTNAME: &str = "VantageCheckFailing";

/// Version of the webhook document schema.
pub(super) const WEBHOOK_VERSION: &str = "1";

/// Identity of an alert: one check at one location.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) struct AlertKey {
    pub check: String,
    pub location: String,
}

impl AlertKey {
    pub fn of(record: &RunRecord) -> AlertKey {
        AlertKey {
            check: record.check().to_string(),
            location: record.location().to_string(),
        }
    }
}

/// One state of one alert, to deliver to the receivers. A newer notification
/// for the same key supersedes an undelivered older one.
#[derive(Debug, Clone)]
pub(super) struct Notification {
    pub key: AlertKey,
    /// The latest failing run (for a resolved alert: the last failing run,
    /// so the resolution describes the failure that ended).
    pub record: Arc<RunRecord>,
    /// When the check went down; stable across resends.
    pub starts_at: DateTime<Utc>,
    /// `Some` for a resolved alert: when it was resolved.
    pub ends_at: Option<DateTime<Utc>>,
}

impl Notification {
    /// `firing` or `resolved`.
    pub fn status(&self) -> &'static str {
        if self.ends_at.is_some() {
            "resolved"
        } else {
            "firing"
        }
    }
}

/// RFC 3339, UTC, millisecond precision: `2025-01-02T03:04:05.678Z`.
pub(super) fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// `{base}/#check-{name}`, the check's card on the status page. The name is
/// percent-encoded except for URL-safe characters.
pub(super) fn generator_url(base: &str, check: &str) -> String {
    let mut encoded = String::with_capacity(check.len());
    for b in check.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("{}/#check-{encoded}", base.trim_end_matches('/'))
}

/// `{base}/api/v2/alerts`, keeping any path prefix of the base URL.
pub(super) fn alertmanager_endpoint(base: &url::Url) -> url::Url {
    let mut url = base.clone();
    let path = format!("{}/api/v2/alerts", base.path().trim_end_matches('/'));
    url.set_path(&path);
    url.set_query(None);
    url.set_fragment(None);
    url
}

/// Labels of an Alertmanager alert. The check's own result labels are left
/// out on purpose: they may be high-cardinality.
#[derive(Debug, Serialize, PartialEq)]
pub(super) struct AmLabels {
    pub alertname: &'static str,
    pub check: String,
    pub location: String,
    pub severity: String,
}

/// Annotations of an Alertmanager alert.
#[derive(Debug, Serialize, PartialEq)]
pub(super) struct AmAnnotations {
    pub summary: String,
    pub description: String,
    pub failing_assertions: String,
    pub run_id: String,
}

/// One element of the array `POST /api/v2/alerts` takes.
#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(super) struct AmAlert {
    pub labels: AmLabels,
    pub annotations: AmAnnotations,
    pub starts_at: String,
    pub ends_at: String,
    #[serde(rename = "generatorURL")]
    pub generator_url: String,
}

/// The Alertmanager form of a notification, built at send time: a firing
/// alert gets `endsAt = now + 4 × resend`, so Alertmanager resolves it by
/// itself if the daemon stops resending (it died, or a maintenance window
/// holds the alert); a resolved alert gets its resolution time.
pub(super) fn alertmanager_alert(
    n: &Notification,
    now: DateTime<Utc>,
    resend: Duration,
    generator_base: &str,
) -> AmAlert {
    let r = &n.record;
    let ends_at = n.ends_at.unwrap_or_else(|| now + expiry(resend));
    AmAlert {
        labels: AmLabels {
            alertname: ALERTNAME,
            check: n.key.check.clone(),
            location: n.key.location.clone(),
            severity: r.severity.clone(),
        },
        annotations: AmAnnotations {
            summary: r.result.summary.clone(),
            description: r.reason(),
            failing_assertions: r.failing_assertions().join("\n"),
            run_id: r.result.run_id.clone(),
        },
        starts_at: rfc3339(n.starts_at),
        ends_at: rfc3339(ends_at),
        generator_url: generator_url(generator_base, &n.key.check),
    }
}

/// How far in the future a firing alert's `endsAt` is set: 4 × resend.
pub(super) fn expiry(resend: Duration) -> chrono::TimeDelta {
    chrono::TimeDelta::from_std(resend.saturating_mul(4)).unwrap_or(chrono::TimeDelta::MAX)
}

/// The generic webhook document (schema version 1).
#[derive(Debug, Serialize, PartialEq)]
pub(super) struct WebhookPayload {
    pub version: &'static str,
    pub status: &'static str,
    pub check: String,
    pub location: String,
    pub severity: String,
    pub summary: String,
    pub reason: String,
    pub failing_assertions: Vec<String>,
    pub run_id: String,
    pub started_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<String>,
    pub generator_url: String,
}

/// The webhook form of a notification.
pub(super) fn webhook_payload(n: &Notification, generator_base: &str) -> WebhookPayload {
    let r = &n.record;
    WebhookPayload {
        version: WEBHOOK_VERSION,
        status: n.status(),
        check: n.key.check.clone(),
        location: n.key.location.clone(),
        severity: r.severity.clone(),
        summary: r.result.summary.clone(),
        reason: r.reason(),
        failing_assertions: r.failing_assertions(),
        run_id: r.result.run_id.clone(),
        started_at: rfc3339(n.starts_at),
        ended_at: n.ends_at.map(rfc3339),
        generator_url: generator_url(generator_base, &n.key.check),
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::result::{Assertion, CheckResult, RunTimings, Status};
    use crate::result::{CheckState, Transition};
    use serde_json::json;

    /// A failing (Down) record of `check` at `location`, started at `ms`.
    pub fn down(check: &str, location: &str, ms: u64) -> RunRecord {
        RunRecord {
            result: CheckResult {
                check: check.into(),
                status: Status::Fail,
                summary: "503 Service Unavailable in 12 ms".into(),
                duration_ms: 12.0,
                location: location.into(),
                run_id: format!("run-{ms}"),
                started_unix_ms: ms,
                assertions: vec![
                    Assertion {
                        name: "status in 200".into(),
                        passed: false,
                        warn: false,
                        detail: "got 503".into(),
                        duration_ms: None,
                    },
                    Assertion {
                        name: "request succeeded".into(),
                        passed: true,
                        warn: false,
                        detail: String::new(),
                        duration_ms: None,
                    },
                    Assertion {
                        name: "json /status == \"ok\"".into(),
                        passed: false,
                        warn: false,
                        detail: String::new(),
                        duration_ms: None,
                    },
                ],
                measurements: vec![],
                labels: vec![("customer".into(), "c-123".into())],
                timings: RunTimings::default(),
                logs: vec![],
                error: None,
            },
            planned_unix_ms: ms,
            lateness_ms: 0.0,
            retries: vec![],
            state: CheckState::Down,
            transition: Some(Transition {
                from: CheckState::Up,
                to: CheckState::Down,
            }),
            maintenance: None,
            severity: "critical".into(),
            component: None,
        }
    }

    fn notification(ends_at: Option<DateTime<Utc>>) -> Notification {
        let record = Arc::new(down("web home", "eu-1", 1_700_000_000_000));
        Notification {
            key: AlertKey::of(&record),
            record,
            starts_at: DateTime::from_timestamp_millis(1_700_000_000_000).unwrap(),
            ends_at,
        }
    }

    #[test]
    fn firing_alertmanager_alert_expires_after_four_resends() {
        let now = DateTime::from_timestamp_millis(1_700_000_060_500).unwrap();
        let alert = alertmanager_alert(
            &notification(None),
            now,
            Duration::from_secs(60),
            "http://127.0.0.1:9470/",
        );
        assert_eq!(
            serde_json::to_value(&alert).unwrap(),
            json!({
                "labels": {
                    "alertname": "VantageCheckFailing",
                    "check": "web home",
                    "location": "eu-1",
                    "severity": "critical",
                },
                "annotations": {
                    "summary": "503 Service Unavailable in 12 ms",
                    "description": "status in 200: got 503; json /status == \"ok\"",
                    "failing_assertions": "status in 200: got 503\njson /status == \"ok\"",
                    "run_id": "run-1700000000000",
                },
                "startsAt": "2023-11-14T22:13:20.000Z",
                "endsAt": "2023-11-14T22:18:20.500Z",
                "generatorURL": "http://127.0.0.1:9470/#check-web%20home",
            })
        );
    }

    #[test]
    fn resolved_alertmanager_alert_ends_when_resolved() {
        let ended = DateTime::from_timestamp_millis(1_700_000_100_000).unwrap();
        let alert = alertmanager_alert(
            &notification(Some(ended)),
            ended + chrono::TimeDelta::seconds(5),
            Duration::from_secs(60),
            "http://x",
        );
        assert_eq!(alert.starts_at, "2023-11-14T22:13:20.000Z");
        assert_eq!(alert.ends_at, "2023-11-14T22:15:00.000Z");
    }

    #[test]
    fn webhook_document_follows_the_schema() {
        let doc = webhook_payload(&notification(None), "http://127.0.0.1:9470");
        assert_eq!(
            serde_json::to_value(&doc).unwrap(),
            json!({
                "version": "1",
                "status": "firing",
                "check": "web home",
                "location": "eu-1",
                "severity": "critical",
                "summary": "503 Service Unavailable in 12 ms",
                "reason": "status in 200: got 503; json /status == \"ok\"",
                "failing_assertions": ["status in 200: got 503", "json /status == \"ok\""],
                "run_id": "run-1700000000000",
                "started_at": "2023-11-14T22:13:20.000Z",
                "generator_url": "http://127.0.0.1:9470/#check-web%20home",
            })
        );
        let ended = DateTime::from_timestamp_millis(1_700_000_100_000).unwrap();
        let doc =
            serde_json::to_value(webhook_payload(&notification(Some(ended)), "http://x")).unwrap();
        assert_eq!(doc["status"], "resolved");
        assert_eq!(doc["ended_at"], "2023-11-14T22:15:00.000Z");
    }

    #[test]
    fn error_runs_describe_the_error() {
        let mut record = down("api", "", 0);
        record.result.status = Status::Error;
        record.result.error = Some(crate::result::RunError {
            kind: crate::result::ErrorKind::Deadline,
            message: "deadline of 10 s expired".into(),
        });
        let n = Notification {
            key: AlertKey::of(&record),
            record: Arc::new(record),
            starts_at: DateTime::from_timestamp_millis(0).unwrap(),
            ends_at: None,
        };
        let alert = alertmanager_alert(&n, Utc::now(), Duration::from_secs(1), "http://x");
        assert_eq!(alert.annotations.description, "deadline of 10 s expired");
    }

    #[test]
    fn endpoints_and_generator_urls() {
        let am = |s: &str| alertmanager_endpoint(&url::Url::parse(s).unwrap()).to_string();
        assert_eq!(am("http://am:9093"), "http://am:9093/api/v2/alerts");
        assert_eq!(am("http://am:9093/"), "http://am:9093/api/v2/alerts");
        assert_eq!(
            am("https://u:p@am.example/prefix/?x=1"),
            "https://u:p@am.example/prefix/api/v2/alerts"
        );
        assert_eq!(
            generator_url("http://h:1", "a-b_c.d"),
            "http://h:1/#check-a-b_c.d"
        );
        assert_eq!(
            generator_url("http://h:1/", "a/b#c"),
            "http://h:1/#check-a%2Fb%23c"
        );
    }
}
