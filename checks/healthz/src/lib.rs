//! `healthz`: validates JSON health documents.
//!
//! Fetches each target (a `/healthz`, `/ready` or `/actuator/health` style
//! endpoint) and checks the document it returns: the overall status, and the
//! status of each component, reported as one assertion each. Understands the
//! common shapes out of the box:
//!
//! ```json
//! {"status": "ok", "checks": {"db": {"status": "ok"}, "cache": "warn"}}
//! {"status": "UP", "components": {"db": {"status": "UP"}}}
//! {"status": "pass", "checks": {"db:responseTime": [{"componentId": "a", "status": "pass"}]}}
//! {"status": "healthy", "checks": [{"name": "db", "status": "healthy"}]}
//! ```
//!
//! A component (or the overall status) in a degraded state (`warn`,
//! `degraded`) is an assertion in state `warn`, which makes the result
//! degraded; any other non-healthy value fails.

use vantage_sdk::http::{self, StatusSet};
use vantage_sdk::serde_json::{Map, Value};
use vantage_sdk::{
    AssertionState, Check, ConfigError, ConfigKey, Context, Error, Expect, Metadata, Outcome,
    TARGET, ValueType, format_duration,
};

const DEFAULT_HEALTHY: [&str; 4] = ["ok", "up", "pass", "healthy"];
const DEFAULT_DEGRADED: [&str; 2] = ["warn", "degraded"];
const DEFAULT_STATUS_FIELD: &str = "/status";
const DEFAULT_COMPONENTS: &str = "/checks";
/// Tried after `/checks` when `components_pointer` is not configured (Spring
/// Boot Actuator's shape).
const FALLBACK_COMPONENTS: &str = "/components";
/// Keys that name a component inside an array of components.
const NAME_KEYS: [&str; 4] = ["name", "id", "componentId", "component"];

struct Healthz;

impl Check for Healthz {
    fn describe() -> Metadata {
        let key = ConfigKey::new;
        Metadata::new("healthz")
            .description(
                "Fetches each target health endpoint and validates its JSON health document: the \
                 overall status and each component's status (one assertion per component). A \
                 degraded component degrades the result; an unhealthy one, a non-JSON body or a \
                 document of the wrong shape fails it.",
            )
            .outbound(TARGET)
            .config_key(
                key(
                    "status_field",
                    "JSON pointer (or dotted path) of the overall status; empty to skip it.",
                )
                .default(DEFAULT_STATUS_FIELD),
            )
            .config_key(
                key(
                    "healthy_values",
                    "Status values that mean healthy (list, case-insensitive).",
                )
                .repeated()
                .default(DEFAULT_HEALTHY.join(", ")),
            )
            .config_key(
                key(
                    "degraded_values",
                    "Status values that mean degraded (list, case-insensitive).",
                )
                .repeated()
                .default(DEFAULT_DEGRADED.join(", ")),
            )
            .config_key(
                key(
                    "components_pointer",
                    "JSON pointer of the components: an object of name → status string or \
                 {status: …} (or a list of those), or an array of {name, status}. When not set, \
                 `/checks` then `/components` are tried and a document without either has no \
                 components.",
                )
                .default(DEFAULT_COMPONENTS),
            )
            .config_key(
                key(
                    "component_status_field",
                    "Pointer of the status inside each component object.",
                )
                .default(DEFAULT_STATUS_FIELD),
            )
            .config_key(
                key(
                    "required_components",
                    "Components that must be present (list).",
                )
                .repeated(),
            )
            .config_key(key("ignore_components", "Components not to report (list).").repeated())
            .config_key(
                key(
                    "expect.status",
                    "Acceptable HTTP status codes (codes, `2xx` classes, ranges).",
                )
                .typed(ValueType::StatusRange)
                .repeated()
                .default("2xx"),
            )
            .config_key(key(
                "headers.<name>",
                "A request header, e.g. `headers.Authorization`.",
            ))
            .config_key(
                key("timeout", "Timeout of each request, e.g. `5s`.")
                    .typed(ValueType::Duration)
                    .default("10s"),
            )
            .config_key(
                key(
                    "latency.degraded",
                    "Total time above which the result is degraded, e.g. `500ms`.",
                )
                .typed(ValueType::Duration),
            )
            .config_key(
                key(
                    "latency.max",
                    "Total time above which the check fails, e.g. `2s`.",
                )
                .typed(ValueType::Duration),
            )
    }

    fn run(ctx: &Context) -> Result<Outcome, Error> {
        let spec = Spec::from_context(ctx)?;
        let targets =
            ctx.require_targets("configure the health endpoint URL(s) as this check's targets")?;
        let mut outcome = Outcome::new();
        let headlines = outcome.for_each_target("target", targets, |url, outcome| {
            probe(ctx, &spec, url, outcome)
        });
        outcome.headline(headlines.counted());
        Ok(outcome)
    }
}

/// The configuration, parsed.
struct Spec {
    status_field: Option<String>,
    healthy: Vec<String>,
    degraded: Vec<String>,
    /// `None`: try `/checks`, then `/components`.
    components: Option<String>,
    component_status: String,
    required: Vec<String>,
    ignored: Vec<String>,
    status: StatusSet,
    headers: Vec<(String, String)>,
    timeout: Option<std::time::Duration>,
    latency_degraded: Option<std::time::Duration>,
    latency_max: Option<std::time::Duration>,
}

impl Spec {
    fn from_context(ctx: &Context) -> Result<Self, ConfigError> {
        let lowercase_list = |key: &str, default: &[&str]| -> Vec<String> {
            let list = ctx.config_list(key);
            let list = if list.is_empty() {
                default.to_vec()
            } else {
                list
            };
            list.iter().map(|v| v.trim().to_lowercase()).collect()
        };
        let status_items = ctx.config_list("expect.status");
        let status = if status_items.is_empty() {
            StatusSet::range(200, 299)
        } else {
            StatusSet::parse_all(status_items.iter().copied())
                .map_err(|e| ConfigError::new("expect.status", status_items.join(", "), e))?
        };
        let status_field = ctx.config_or("status_field", DEFAULT_STATUS_FIELD).trim();
        Ok(Spec {
            status_field: (!status_field.is_empty()).then(|| to_pointer(status_field)),
            healthy: lowercase_list("healthy_values", &DEFAULT_HEALTHY),
            degraded: lowercase_list("degraded_values", &DEFAULT_DEGRADED),
            components: ctx
                .config("components_pointer")
                .map(|p| to_pointer(p.trim())),
            component_status: to_pointer(
                ctx.config_or("component_status_field", DEFAULT_STATUS_FIELD)
                    .trim(),
            ),
            required: ctx
                .config_list("required_components")
                .into_iter()
                .map(String::from)
                .collect(),
            ignored: ctx
                .config_list("ignore_components")
                .into_iter()
                .map(String::from)
                .collect(),
            status,
            headers: ctx
                .config_table("headers")
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            timeout: ctx.config_duration("timeout")?,
            latency_degraded: ctx.config_duration("latency.degraded")?,
            latency_max: ctx.config_duration("latency.max")?,
        })
    }

    fn classify(&self, value: &Value) -> Health {
        match value {
            Value::Bool(true) => Health::Healthy,
            Value::Bool(false) => Health::Unhealthy,
            Value::String(s) => {
                let s = s.trim().to_lowercase();
                if self.healthy.contains(&s) {
                    Health::Healthy
                } else if self.degraded.contains(&s) {
                    Health::Degraded
                } else {
                    Health::Unhealthy
                }
            }
            _ => Health::Unhealthy,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Health {
    Healthy,
    Degraded,
    Unhealthy,
}

impl Health {
    /// The assertion state of a status in this health.
    fn state(self) -> AssertionState {
        match self {
            Health::Healthy => AssertionState::Pass,
            Health::Degraded => AssertionState::Warn,
            Health::Unhealthy => AssertionState::Fail,
        }
    }
}

/// Fetch one health endpoint and record its assertions; returns its headline.
fn probe(ctx: &Context, spec: &Spec, url: &str, outcome: &mut Outcome) -> String {
    let request = http::get(url)
        .header("accept", "application/json")
        .headers(spec.headers.iter().cloned())
        .timeout(ctx.call_timeout(spec.timeout));
    let response = match request.send() {
        Ok(response) => response,
        Err(failed) => {
            outcome.assert("request completed", false, failed.to_string());
            outcome.measure_fetch_error(&failed);
            return failed.headline();
        }
    };
    outcome.measure_response(&response);
    let mut expect = outcome.expect(&response);
    expect.status_matches(&spec.status);
    if let Some(max) = spec.latency_max {
        expect.latency_below(max);
    }
    let overall = check_document(spec, &mut expect);
    if let Some(threshold) = spec.latency_degraded
        && response.elapsed() > threshold
    {
        outcome.degrade(format!(
            "latency {} over {}",
            format_duration(response.timings().total_ms),
            format_duration(threshold.as_secs_f64() * 1000.0)
        ));
    }
    for (name, count) in [
        ("health_components", overall.counts.iter().sum::<usize>()),
        ("health_components_healthy", overall.counts[0]),
        ("health_components_degraded", overall.counts[1]),
        ("health_components_unhealthy", overall.counts[2]),
    ] {
        outcome.measure(name, count as f64, "");
    }
    match overall.status {
        Some(status) => format!("{}, status {status}", response.headline()),
        None => response.headline(),
    }
}

/// What the document showed, beyond the assertions recorded.
#[derive(Default)]
struct Findings {
    /// The overall status value, as shown.
    status: Option<String>,
    /// Components healthy, degraded, unhealthy.
    counts: [usize; 3],
}

fn check_document(spec: &Spec, expect: &mut Expect<'_>) -> Findings {
    let mut findings = Findings::default();
    let doc = match expect.json() {
        Ok(doc) => doc.clone(),
        Err(detail) => {
            expect.that("body is a JSON health document", false, detail);
            return findings;
        }
    };

    if let Some(pointer) = &spec.status_field {
        let name = format!("status {pointer} is healthy");
        match doc.pointer(pointer) {
            None => {
                expect.that(
                    name,
                    false,
                    format!("{pointer} not found in {}", shape(&doc)),
                );
            }
            Some(value) => {
                let health = spec.classify(value);
                findings.status = Some(value.to_string());
                expect.that_state(name, health.state(), describe_health(value, health));
            }
        }
    }

    let components = match &spec.components {
        Some(pointer) => match doc.pointer(pointer) {
            Some(value) => Some((pointer.as_str(), value)),
            None => {
                expect.that(
                    format!("components at {pointer}"),
                    false,
                    format!("{pointer} not found in {}", shape(&doc)),
                );
                None
            }
        },
        None => [DEFAULT_COMPONENTS, FALLBACK_COMPONENTS]
            .into_iter()
            .find_map(|p| doc.pointer(p).map(|v| (p, v))),
    };
    let mut seen: Vec<String> = Vec::new();
    if let Some((pointer, value)) = components {
        match list_components(spec, value) {
            Err(detail) => {
                expect.that(format!("components at {pointer}"), false, detail);
            }
            Ok(list) => {
                for (name, status) in list {
                    seen.push(name.clone());
                    if spec.ignored.contains(&name) {
                        continue;
                    }
                    let assertion = format!("component {name}");
                    let Some(status) = status else {
                        expect.that(
                            assertion,
                            false,
                            format!("no status at {} in the component", spec.component_status),
                        );
                        findings.counts[2] += 1;
                        continue;
                    };
                    let health = spec.classify(&status);
                    findings.counts[health as usize] += 1;
                    expect.that_state(assertion, health.state(), describe_health(&status, health));
                }
            }
        }
    }
    for required in &spec.required {
        let present = seen.contains(required);
        expect.that(
            format!("component {required} present"),
            present,
            if present {
                "present"
            } else {
                "absent from the document"
            },
        );
    }
    findings
}

/// Flatten the supported shapes into (name, status) pairs; the status is
/// `None` when a component object has no status field.
fn list_components(spec: &Spec, value: &Value) -> Result<Vec<(String, Option<Value>)>, String> {
    let status_of = |v: &Value| -> Option<Value> {
        match v {
            Value::Object(_) => v.pointer(&spec.component_status).cloned(),
            Value::String(_) | Value::Bool(_) => Some(v.clone()),
            _ => None,
        }
    };
    match value {
        Value::Object(map) => {
            let mut out = Vec::new();
            for (name, v) in map {
                match v {
                    // IETF health-check draft: name → [ {componentId?, status}, … ]
                    Value::Array(items) => {
                        for (i, item) in items.iter().enumerate() {
                            let sub = match item_name(item) {
                                Some(id) => format!("{name}[{id}]"),
                                None if items.len() == 1 => name.clone(),
                                None => format!("{name}[{i}]"),
                            };
                            out.push((sub, status_of(item)));
                        }
                    }
                    other => out.push((name.clone(), status_of(other))),
                }
            }
            Ok(out)
        }
        Value::Array(items) => Ok(items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let name = item_name(item).unwrap_or_else(|| format!("#{i}"));
                (name, status_of(item))
            })
            .collect()),
        other => Err(format!(
            "expected an object of components or an array of {{name, status}}, got {}",
            shape(other)
        )),
    }
}

fn item_name(item: &Value) -> Option<String> {
    let map: &Map<String, Value> = item.as_object()?;
    NAME_KEYS.iter().find_map(|k| match map.get(*k)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

fn describe_health(value: &Value, health: Health) -> String {
    match health {
        Health::Healthy => format!("{value}"),
        Health::Degraded => format!("{value} (degraded)"),
        Health::Unhealthy => format!("{value} (unhealthy)"),
    }
}

/// `an object with keys a, b`, `a string`, … for error details.
fn shape(value: &Value) -> String {
    match value {
        Value::Null => "null".to_string(),
        Value::Bool(_) => "a boolean".to_string(),
        Value::Number(_) => "a number".to_string(),
        Value::String(_) => "a string".to_string(),
        Value::Array(a) => format!("an array of {}", a.len()),
        Value::Object(o) => {
            let keys: Vec<&str> = o.keys().take(8).map(String::as_str).collect();
            format!("an object with keys {}", keys.join(", "))
        }
    }
}

/// `/a/b` stays as is; `a.b` becomes `/a/b`.
fn to_pointer(path: &str) -> String {
    if path.is_empty() || path.starts_with('/') {
        return path.to_string();
    }
    path.split('.').map(|s| format!("/{s}")).collect()
}

vantage_sdk::export_check!(Healthz);

#[cfg(test)]
mod tests {
    use super::*;
    use vantage_sdk::Status;
    use vantage_sdk::http::Response;
    use vantage_sdk::serde_json::json;

    fn spec(entries: &[(&str, &str)]) -> Spec {
        let ctx = Context::builder().configs(entries.iter().copied()).build();
        assert!(ctx.check_config_keys(&Healthz::describe()).is_ok());
        assert!(ctx.check_config_values(&Healthz::describe()).is_ok());
        Spec::from_context(&ctx).unwrap()
    }

    fn run_doc(spec: &Spec, body: &str) -> (Outcome, Findings) {
        let response = Response::mock(200, &[], body);
        let mut outcome = Outcome::new();
        let findings = check_document(spec, &mut outcome.expect(&response));
        (outcome, findings)
    }

    fn assertions(o: &Outcome) -> Vec<(String, bool, String)> {
        o.assertions()
            .iter()
            .map(|a| {
                (
                    a.name.clone(),
                    // Held, fully or with a warning (a degraded component).
                    a.state != vantage_sdk::AssertionState::Fail,
                    a.detail.clone(),
                )
            })
            .collect()
    }

    #[test]
    fn object_of_components() {
        let doc = json!({"status": "ok", "checks": {"db": {"status": "ok"}, "cache": "warn", "queue": true}});
        let (o, f) = run_doc(&spec(&[]), &doc.to_string());
        assert_eq!(
            assertions(&o),
            vec![
                ("status /status is healthy".into(), true, "\"ok\"".into()),
                ("component cache".into(), true, "\"warn\" (degraded)".into()),
                ("component db".into(), true, "\"ok\"".into()),
                ("component queue".into(), true, "true".into()),
            ]
        );
        assert_eq!(f.counts, [2, 1, 0]);
        assert_eq!(o.status(), Status::Degraded);
        assert!(
            o.summary()
                .ends_with("degraded: component cache (\"warn\" (degraded))"),
            "{}",
            o.summary()
        );
    }

    #[test]
    fn spring_boot_and_ietf_shapes() {
        let doc = json!({"status": "UP", "components": {"db": {"status": "DOWN", "details": {}}}});
        let (o, _) = run_doc(&spec(&[]), &doc.to_string());
        assert_eq!(o.status(), Status::Fail);
        assert_eq!(o.assertions()[1].name, "component db");
        assert_eq!(o.assertions()[1].detail, "\"DOWN\" (unhealthy)");

        let doc = json!({"status": "pass", "checks": {
            "db:responseTime": [{"componentId": "a", "status": "pass"}, {"componentId": "b", "status": "warn"}],
            "uptime": [{"status": "pass"}]
        }});
        let (o, f) = run_doc(&spec(&[]), &doc.to_string());
        let names: Vec<_> = o.assertions().iter().map(|a| a.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "status /status is healthy",
                "component db:responseTime[a]",
                "component db:responseTime[b]",
                "component uptime"
            ]
        );
        assert_eq!(f.counts, [2, 1, 0]);
        assert_eq!(o.status(), Status::Degraded);
    }

    #[test]
    fn array_of_components_and_custom_fields() {
        let s = spec(&[
            ("status_field", "health.state"),
            ("healthy_values", "green"),
            ("degraded_values.0", "yellow"),
            ("components_pointer", "/health/parts"),
            ("component_status_field", "state"),
            ("required_components.0", "db"),
            ("required_components.1", "search"),
            ("ignore_components", "legacy"),
        ]);
        let doc = json!({"health": {"state": "GREEN", "parts": [
            {"name": "db", "state": "green"},
            {"id": "legacy", "state": "red"},
            {"state": "yellow"},
            {"name": "broken"}
        ]}});
        let (o, f) = run_doc(&s, &doc.to_string());
        assert_eq!(
            assertions(&o),
            vec![
                (
                    "status /health/state is healthy".into(),
                    true,
                    "\"GREEN\"".into()
                ),
                ("component db".into(), true, "\"green\"".into()),
                ("component #2".into(), true, "\"yellow\" (degraded)".into()),
                (
                    "component broken".into(),
                    false,
                    "no status at /state in the component".into()
                ),
                ("component db present".into(), true, "present".into()),
                (
                    "component search present".into(),
                    false,
                    "absent from the document".into()
                ),
            ]
        );
        assert_eq!(f.counts, [1, 1, 1]);
        assert_eq!(o.status(), Status::Fail);
    }

    #[test]
    fn bad_documents_fail_clearly() {
        let (o, _) = run_doc(&spec(&[]), "<html>Service Unavailable</html>");
        assert_eq!(o.assertions().len(), 1);
        assert_eq!(o.assertions()[0].name, "body is a JSON health document");
        assert!(
            o.assertions()[0].detail.starts_with("body is not JSON"),
            "{}",
            o.assertions()[0].detail
        );

        let (o, _) = run_doc(&spec(&[]), r#"{"state": "ok", "checks": 3}"#);
        assert_eq!(
            assertions(&o),
            vec![
                (
                    "status /status is healthy".into(),
                    false,
                    "/status not found in an object with keys checks, state".into()
                ),
                (
                    "components at /checks".into(),
                    false,
                    "expected an object of components or an array of {name, status}, got a number"
                        .into()
                ),
            ]
        );

        let (o, _) = run_doc(
            &spec(&[("components_pointer", "/parts")]),
            r#"{"status": "ok"}"#,
        );
        assert_eq!(o.assertions()[1].name, "components at /parts");
        assert_eq!(o.assertions()[1].state, vantage_sdk::AssertionState::Fail);

        let (o, _) = run_doc(&spec(&[]), r#"{"status": "down"}"#);
        assert_eq!(o.status(), Status::Fail);
        assert_eq!(o.assertions()[0].detail, "\"down\" (unhealthy)");

        let (o, _) = run_doc(&spec(&[("status_field", "")]), r#"{"checks": {}}"#);
        assert!(o.assertions().is_empty());
        assert_eq!(o.status(), Status::Pass);
    }
}
