//! `http`: the declarative deep HTTP check.
//!
//! Fetches every target URL and verifies the response against the
//! configuration alone: status codes, body content (substrings, regular
//! expressions, JSON values), headers, protocol version, TLS, latency and
//! certificate expiry. In the spirit of blackbox_exporter's `http` module and
//! Gatus conditions. Every configuration key is documented in [`describe`]
//! (`vantage inspect http.wasm`).
//!
//! In a configuration file (`example.toml` in this crate; the end-to-end test
//! `check_examples` proves `vantage validate` accepts it and the check takes
//! its configuration):
//!
#![doc = concat!("```toml\n", include_str!("../example.toml"), "```")]

mod condition;
mod spec;

use std::time::Duration;

use vantage_sdk::http::{self, ClientSettings, FetchError, Response};
use vantage_sdk::{
    Check, ConfigKey, Context, Error, Metadata, Outcome, TARGET, ValueType, clock, format_duration,
};

use crate::spec::{DEFAULT_STATUS, Spec};

struct Http;

/// The keys that shape the request: method, headers, body, credentials,
/// timeout, redirects and the body limit.
fn request_keys() -> Vec<ConfigKey> {
    let key = ConfigKey::new;
    vec![
        key("method", "HTTP method, e.g. `GET`, `POST`, `HEAD`.").default("GET"),
        key(
            "headers.<name>",
            "A request header, e.g. `headers.Accept = \"application/json\"`.",
        ),
        key("body", "Request body, sent as is."),
        key(
            "basic_auth.username",
            "Send HTTP basic authentication with this user.",
        ),
        key(
            "basic_auth.password",
            "Password for basic authentication; use a `{{secret.NAME}}` reference.",
        )
        .sensitive(),
        key(
            "bearer_token",
            "Send `Authorization: Bearer <token>`; use a `{{secret.NAME}}` reference.",
        )
        .sensitive(),
        key(
            "timeout",
            "Timeout of each exchange, redirects included, e.g. `5s`.",
        )
        .typed(ValueType::Duration)
        .default("10s"),
        key("follow_redirects", "Follow redirects.")
            .typed(ValueType::Boolean)
            .default("true"),
        key(
            "max_redirects",
            "Most redirects to follow; more is a failure.",
        )
        .typed(ValueType::integer(Some(0), Some(100)))
        .default("10"),
        key(
            "max_body_bytes",
            "Largest body to accept (`1048576`, `512KiB`, `4MiB`), decoded; larger is a failure.",
        )
        .typed(ValueType::Size)
        .default("1MiB"),
    ]
}

/// The keys that judge the response: status, body, headers, JSON, HTTP
/// version, TLS, latency and certificate expiry.
fn expectation_keys() -> Vec<ConfigKey> {
    let key = ConfigKey::new;
    vec![
        key(
                    "expect.status",
                    "Acceptable status codes: a list of codes (`200`), classes (`2xx`) or ranges (`200-299`).",
                )
                .typed(ValueType::StatusRange)
                .repeated()
                .default(DEFAULT_STATUS),
        key("expect.body_contains", "Substrings the body must contain (list).").repeated(),
        key("expect.body_not_contains", "Substrings the body must not contain (list).").repeated(),
        key(
                    "expect.body_matches",
                    "Regular expressions the body must match (list). Rust `regex` syntax with \
                     ASCII-only `\\d`, `\\w`, `\\s` and case folding, and no `\\p{..}` classes \
                     (the `regex-lite` crate); the same for every regex key.",
                )
                .typed(ValueType::Regex)
                .repeated(),
        key("expect.body_not_matches", "Regular expressions the body must not match (list).")
                    .typed(ValueType::Regex)
                    .repeated(),
        key(
                    "expect.headers.<name>",
                    "A response header that must be present; a non-empty value is a regular expression \
                     one of its values must match.",
                )
                .typed(ValueType::Regex),
        key(
                    "expect.headers_not_matching.<name>",
                    "A regular expression no value of the header may match; a missing header fails \
                     unless listed in `expect.headers_allow_missing`.",
                )
                .typed(ValueType::Regex),
        key("expect.headers_absent", "Response headers that must be absent (list).").repeated(),
        key(
                    "expect.headers_allow_missing",
                    "Headers whose absence passes their `expect.headers.<name>` pattern and \
                     `expect.headers_not_matching.<name>` (list; blackbox_exporter's `allow_missing`).",
                )
                .repeated(),
        key(
                "expect.json.<path>",
                "A condition on the JSON body at a pointer (`expect.json.\"/data/0/id\"`), dotted \
                 path (`expect.json.data.0.id`) or the root (`expect.json.\"$\"`): a literal (`ok`, \
                 loosely equal so `\"200\"` matches 200), `== v`, `!= v`, `> n`, `>= n`, `< n`, \
                 `<= n`, `=~ regex`, `!~ regex`, `len > n` (length of an array, object or string), \
                 `absent` (must not exist), or empty (must exist).",
            ),
        key("expect.http_version", "Acceptable HTTP versions: `1.0`, `1.1`, `2` (list).")
                    .typed(ValueType::choice([
                        "1.0", "1.1", "2", "2.0", "HTTP/1.0", "HTTP/1.1", "HTTP/2", "HTTP/2.0",
                    ]))
                    .repeated(),
        key("expect.tls", "`true`: the final response must come over TLS; `false`: it must not.")
                    .typed(ValueType::Boolean),
        key("latency.degraded", "Total time above which the result is degraded (a warning), e.g. `500ms`.")
                    .typed(ValueType::Duration),
        key("latency.max", "Total time above which the check fails, e.g. `2s`.")
                    .typed(ValueType::Duration),
        key(
                    "cert_expiry.degraded",
                    "Degraded (a warning) when the earliest certificate expires sooner than this, e.g. `30d`.",
                )
                .typed(ValueType::Duration),
        key(
                    "cert_expiry.min",
                    "Fail when the earliest certificate expires sooner than this, e.g. `7d`.",
                )
                .typed(ValueType::Duration),
    ]
}

impl Check for Http {
    fn describe() -> Metadata {
        let metadata = Metadata::new("http")
            .description(
                "Fetches each target URL and proves the response is what it should be: status \
                 code, body content (substrings, regular expressions, JSON values), headers, \
                 HTTP version, TLS, latency and certificate expiry. Driven entirely by \
                 configuration; each target is one URL. Understands blackbox_exporter's http \
                 module settings (see checks/README.md).",
            )
            .outbound(TARGET);
        let metadata = request_keys()
            .into_iter()
            .chain(expectation_keys())
            .fold(metadata, Metadata::config_key);
        ClientSettings::declare(metadata)
    }

    fn run(ctx: &Context) -> Result<Outcome, Error> {
        let spec = Spec::from_context(ctx)?;
        let targets =
            ctx.require_targets("configure the URL(s) to fetch as this check's targets")?;

        let mut outcome = Outcome::new();
        let headlines = outcome.for_each_target("target", targets, |url, outcome| {
            probe(ctx, &spec, url, outcome)
        });
        outcome.headline(headlines.counted());
        Ok(outcome)
    }
}

/// Fetch one URL and record every assertion about it; returns its headline.
fn probe(ctx: &Context, spec: &Spec, url: &str, outcome: &mut Outcome) -> String {
    let response = match request(ctx, spec, url).send() {
        Ok(response) => response,
        Err(failed) => return failed_exchange(&failed, outcome),
    };
    let tls_detail = match response.tls() {
        Some(tls) => format!(", {} verdict {}", tls.version, tls.verdict),
        None => String::new(),
    };
    outcome.assert(
        "request completed",
        true,
        format!(
            "{} {} from {}{tls_detail}",
            response.version(),
            response.status(),
            response.remote_addr()
        ),
    );

    let mut expect = outcome.expect(&response);
    expect.status_matches(&spec.status);
    for needle in &spec.body_contains {
        expect.body_contains(needle);
    }
    for needle in &spec.body_not_contains {
        expect.body_not_contains(needle);
    }
    for re in &spec.body_matches {
        expect.body_matches_regex(re);
    }
    for re in &spec.body_not_matches {
        expect.body_not_matches_regex(re);
    }
    let may_miss = |name: &str| spec.allow_missing.contains(&name.to_ascii_lowercase());
    for (name, pattern) in &spec.expect_headers {
        match pattern {
            None => expect.header_present(name),
            Some(re) if may_miss(name) => expect.header_matches_regex_if_present(name, re),
            Some(re) => expect.header_matches_regex(name, re),
        };
    }
    for (name, re) in &spec.headers_not_matching {
        if may_miss(name) {
            expect.header_not_matches_regex_if_present(name, re);
        } else {
            expect.header_not_matches_regex(name, re);
        }
    }
    for name in &spec.headers_absent {
        expect.header_absent(name);
    }
    for condition in &spec.json {
        let (passed, detail) = match expect.json() {
            Ok(doc) => condition.evaluate(doc),
            Err(e) => (false, e),
        };
        expect.that(condition.to_string(), passed, detail);
    }
    if !spec.http_versions.is_empty() {
        let accepted: Vec<&str> = spec.http_versions.iter().map(|v| v.as_str()).collect();
        expect.that(
            format!("HTTP version in {}", accepted.join(", ")),
            spec.http_versions.contains(&response.version()),
            format!("got {}", response.version()),
        );
    }
    if let Some(want_tls) = spec.tls {
        let detail = match response.tls() {
            Some(tls) => format!(
                "{} {} from {}",
                tls.version,
                tls.cipher_suite,
                response.url()
            ),
            None => format!("plain HTTP from {}", response.url()),
        };
        let name = if want_tls { "TLS used" } else { "TLS not used" };
        expect.that(name, response.tls().is_some() == want_tls, detail);
    }
    if let Some(max) = spec.latency_max {
        expect.latency_below(max);
    }

    latency_degradation(spec, &response, outcome);
    certificate(spec, &response, outcome);
    outcome.measure_response(&response);
    response.headline()
}

/// A failed exchange: the assertion says what failed, and what was learned
/// before it (the partial response's status, redirects, phases, the TLS
/// verdict) is kept as detail and measurements.
fn failed_exchange(failed: &FetchError, outcome: &mut Outcome) -> String {
    let mut detail = failed.to_string();
    if let Some(response) = &failed.response {
        detail.push_str(&format!(
            " (last response {} from {})",
            response.status_text(),
            response.url()
        ));
    }
    if !failed.redirects.is_empty() {
        detail.push_str(&format!(" after {} redirect(s)", failed.redirects.len()));
    }
    if let Some(tls) = failed.tls() {
        detail.push_str(&format!("; TLS verdict {}", tls.verdict));
    }
    outcome.assert("request completed", false, detail);
    outcome.measure_fetch_error(failed);
    failed.headline()
}

fn request(ctx: &Context, spec: &Spec, url: &str) -> http::RequestBuilder {
    // Never the whole run's budget: a slow server then fails with the
    // phases measured instead of the run being cut at its deadline.
    let mut request = http::request(spec.method.as_str(), url)
        .headers(spec.headers.iter().cloned())
        .follow_redirects(spec.follow_redirects)
        .timeout(ctx.call_timeout(spec.timeout));
    if let Some((user, password)) = &spec.basic_auth {
        request = request.basic_auth(user, password);
    }
    if let Some(token) = &spec.bearer_token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = &spec.body {
        request = request.body(body.as_bytes());
    }
    if let Some(max) = spec.max_redirects {
        request = request.max_redirects(max);
    }
    if let Some(max) = spec.max_body_bytes {
        request = request.max_body_bytes(max);
    }
    spec.client.apply(request)
}

/// `latency.degraded`: slower than this is degraded, not failed.
fn latency_degradation(spec: &Spec, response: &Response, outcome: &mut Outcome) {
    let Some(threshold) = spec.latency_degraded else {
        return;
    };
    let took = response.elapsed();
    outcome.assert_or_warn(
        format!("latency below {}", format_duration(ms(threshold))),
        took <= threshold,
        format!("took {}", format_duration(ms(took))),
    );
}

/// Measure the days left on the certificate chain, and apply
/// `cert_expiry.min` (fail) and `cert_expiry.degraded` (degrade).
fn certificate(spec: &Spec, response: &Response, outcome: &mut Outcome) {
    let days_left = response
        .tls()
        .and_then(|tls| tls.days_left(clock::now_unix_ms()));
    if let Some(days) = days_left {
        outcome.measure("tls_cert_days_left", days, "days");
    }
    let describe = |d: Duration| format!("{:.0} days", d.as_secs_f64() / 86_400.0);
    if let Some(min) = spec.cert_expiry_min {
        let name = format!("certificate valid for at least {}", describe(min));
        match days_left {
            Some(days) => {
                outcome.assert(
                    name,
                    days * 86_400.0 >= min.as_secs_f64(),
                    format!("{days:.1} days left"),
                );
            }
            None => {
                outcome.assert(name, false, no_chain_detail(response));
            }
        }
    }
    if let (Some(threshold), Some(days)) = (spec.cert_expiry_degraded, days_left) {
        outcome.assert_or_warn(
            format!("certificate valid for more than {}", describe(threshold)),
            days * 86_400.0 >= threshold.as_secs_f64(),
            format!("{days:.1} days left"),
        );
    }
}

fn no_chain_detail(response: &Response) -> String {
    if response.tls().is_none() {
        format!("no TLS session: {} is plain HTTP", response.url())
    } else {
        "the host could not read the certificate chain".to_string()
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

vantage_sdk::export_check!(Http);

#[cfg(test)]
mod tests {
    use super::*;

    /// Every declared default is a valid value of its key's type, and the
    /// keys a secret may be written into are sensitive.
    #[test]
    fn declared_keys_are_typed_consistently() {
        let metadata = Http::describe();
        for key in &metadata.config {
            if let Some(default) = &key.default {
                assert!(key.value_type.check(default).is_ok(), "{}", key.key);
            }
        }
        let sensitive: Vec<&str> = metadata
            .config
            .iter()
            .filter(|k| k.sensitive)
            .map(|k| k.key.as_str())
            .collect();
        assert_eq!(
            sensitive,
            [
                "basic_auth.password",
                "bearer_token",
                "proxy_headers.<name>"
            ]
        );
        let status = metadata
            .config
            .iter()
            .find(|k| k.key == "expect.status")
            .unwrap();
        assert_eq!(status.default.as_deref(), Some("2xx"));
        assert!(status.repeated);
    }

    /// Regression: the redirect cap used to fail with no measurements and
    /// status 0, under an assertion called `request succeeded`; blackbox
    /// keeps the 302 and the redirect count.
    #[test]
    fn a_failed_exchange_keeps_what_is_known() {
        use vantage_sdk::NetError;
        use vantage_sdk::http::Redirect;
        let mut failed = FetchError::new(NetError::TooManyRedirects(1));
        failed.response = Some(Box::new(Response::mock(302, &[("location", "/c")], "")));
        failed.redirects = vec![Redirect {
            url: "http://127.0.0.1:1/a".into(),
            status: 302,
            location: "/b".into(),
        }];
        failed.timings.connect_ms = 0.5;
        failed.timings.processing_ms = 2.0;
        let mut outcome = Outcome::new();
        let headline = failed_exchange(&failed, &mut outcome);
        assert_eq!(headline, "302 Found, then too many redirects: more than 1");
        let a = &outcome.assertions()[0];
        assert_eq!(a.name, "request completed");
        assert_eq!(a.state, vantage_sdk::AssertionState::Fail);
        assert_eq!(
            a.detail,
            "too many redirects: more than 1 (last response 302 Found from http://test.invalid/) after 1 redirect(s)"
        );
        let measured = |name: &str| {
            outcome
                .measurements()
                .iter()
                .find(|m| m.name == name)
                .map(|m| m.value)
        };
        assert_eq!(measured("http_status_code"), Some(302.0));
        assert_eq!(measured("http_redirects"), Some(1.0));
        assert_eq!(measured("http_processing_ms"), Some(2.0));
    }

    /// Regression: a typo'd key holding a token was echoed in the summary.
    #[test]
    fn an_unknown_key_does_not_echo_its_value() {
        let raw = Context::builder()
            .target("https://a.test/")
            .config("bearer_tokn", "mysecret")
            .build()
            .raw()
            .clone();
        let result = vantage_sdk::__private::run::<Http>(raw);
        assert_eq!(result.status, vantage_sdk::Status::Fail);
        assert!(
            result.summary.contains("`bearer_tokn`"),
            "{}",
            result.summary
        );
        assert!(!result.summary.contains("mysecret"), "{}", result.summary);
    }
}
