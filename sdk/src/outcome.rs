//! Recording what a run verified and measured, and computing its verdict.

use std::time::Duration;

use serde_json::Value;

use crate::http::{Response, StatusSet};
use crate::pattern::Pattern;
use crate::util::duration_ms;
use crate::{Assertion, CheckResult, Measurement, Status, format_duration};

/// What a run found: named assertions, measurements and labels, from which
/// the verdict and a one-line summary are computed.
///
/// - Any failed assertion, or an explicit [`fail`](Outcome::fail), makes the
///   status [`Status::Fail`].
/// - Otherwise an explicit [`degrade`](Outcome::degrade) makes it
///   [`Status::Degraded`] (the service works, but worse than it should).
/// - Otherwise it is [`Status::Pass`].
///
/// The summary is `<headline>, <passed>/<total> assertions passed`, followed
/// by the first failure (or the degradation reasons); set
/// [`headline`](Outcome::headline) to lead with what was observed, or replace
/// the whole line with [`set_summary`](Outcome::set_summary).
///
/// ```
/// use std::time::Duration;
/// use vantage_sdk::{Outcome, Status};
///
/// let mut outcome = Outcome::new();
/// outcome
///     .headline("200 OK in 812 ms")
///     .assert("status is 200", true, "got 200 OK")
///     .assert_duration_below("total latency", Duration::from_millis(812), Duration::from_secs(2))
///     .measure("http_total_ms", 812.0, "ms");
/// if !outcome.check("cache hit", false, "x-cache: MISS") {
///     // react to a failed assertion…
/// }
/// assert_eq!(outcome.status(), Status::Fail);
/// assert_eq!(
///     outcome.summary(),
///     "200 OK in 812 ms, 2/3 assertions passed; failed: cache hit (x-cache: MISS)"
/// );
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
#[must_use = "an outcome does nothing unless returned from `run`"]
pub struct Outcome {
    assertions: Vec<Assertion>,
    measurements: Vec<Measurement>,
    labels: Vec<(String, String)>,
    fail_reasons: Vec<String>,
    degrade_reasons: Vec<String>,
    headline: Option<String>,
    summary: Option<String>,
    scope: Option<String>,
    metric_prefix: String,
}

impl Outcome {
    /// An empty outcome: status pass until something fails.
    pub fn new() -> Self {
        Self::default()
    }

    /// Record an assertion named `name` that held (`passed`) or not, with what
    /// was observed as `detail` (e.g. `got 503`).
    pub fn assert(
        &mut self,
        name: impl Into<String>,
        passed: bool,
        detail: impl Into<String>,
    ) -> &mut Self {
        self.push_assertion(name.into(), passed, detail.into(), None);
        self
    }

    /// Like [`assert`](Outcome::assert), but returns whether it passed, to
    /// branch on it.
    pub fn check(
        &mut self,
        name: impl Into<String>,
        passed: bool,
        detail: impl Into<String>,
    ) -> bool {
        self.push_assertion(name.into(), passed, detail.into(), None);
        passed
    }

    /// Record an assertion with how long verifying it took (a step of a flow).
    pub fn assert_timed(
        &mut self,
        name: impl Into<String>,
        passed: bool,
        detail: impl Into<String>,
        took: Duration,
    ) -> &mut Self {
        self.push_assertion(name.into(), passed, detail.into(), Some(duration_ms(took)));
        self
    }

    /// Assert that the duration `measured` is below `budget`: named
    /// `<name> below <budget>`, detail `took <measured>`. (For an HTTP
    /// response's whole exchange, [`Expect::latency_below`] names it
    /// `latency`.)
    pub fn assert_duration_below(
        &mut self,
        name: &str,
        measured: Duration,
        budget: Duration,
    ) -> &mut Self {
        let passed = measured < budget;
        self.assert(
            format!("{name} below {}", format_duration(duration_ms(budget))),
            passed,
            format!("took {}", format_duration(duration_ms(measured))),
        )
    }

    /// Record a measurement, exported as a metric. `name` should be
    /// metric-friendly (lowercase, `_`-separated, e.g. `cert_days_left`);
    /// `unit` e.g. `ms`, `bytes`, `days`, or empty.
    pub fn measure(
        &mut self,
        name: impl AsRef<str>,
        value: f64,
        unit: impl Into<String>,
    ) -> &mut Self {
        self.measurements.push(Measurement {
            name: format!("{}{}", self.metric_prefix, name.as_ref()),
            value,
            unit: unit.into(),
        });
        self
    }

    /// Attach a label to the result, e.g. `("http_version", "2")`.
    pub fn label(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.labels.push((key.into(), value.into()));
        self
    }

    /// Mark the run degraded, with a reason shown in the summary: the service
    /// works, but worse than it should (slow, certificate expiring soon…).
    /// Has no effect on the status if something failed.
    pub fn degrade(&mut self, reason: impl Into<String>) -> &mut Self {
        self.degrade_reasons.push(reason.into());
        self
    }

    /// Mark the run failed, with a reason shown in the summary, without
    /// recording an assertion. (A run that cannot go on at all returns an
    /// [`Error`](crate::Error) from [`Check::run`](crate::Check::run)
    /// instead.)
    pub fn fail(&mut self, reason: impl Into<String>) -> &mut Self {
        self.fail_reasons.push(reason.into());
        self
    }

    /// Lead the computed summary with `text`, e.g. `200 OK in 12.3 ms`.
    pub fn headline(&mut self, text: impl Into<String>) -> &mut Self {
        self.headline = Some(text.into());
        self
    }

    /// Replace the computed summary with `text` (see
    /// [`summary`](Outcome::summary)).
    pub fn set_summary(&mut self, text: impl Into<String>) -> &mut Self {
        self.summary = Some(text.into());
        self
    }

    /// Prefix the names of the assertions recorded from now on with
    /// `<scope>: ` (e.g. the target, when a check probes several), until
    /// [`clear_scope`](Outcome::clear_scope).
    pub fn set_scope(&mut self, scope: impl Into<String>) -> &mut Self {
        self.scope = Some(scope.into());
        self
    }

    /// Stop prefixing assertion names (see [`set_scope`](Outcome::set_scope)).
    pub fn clear_scope(&mut self) -> &mut Self {
        self.scope = None;
        self
    }

    /// Prefix the names of the measurements recorded from now on with
    /// `prefix` (e.g. `target1_`); an empty prefix stops prefixing.
    pub fn set_metric_prefix(&mut self, prefix: impl Into<String>) -> &mut Self {
        self.metric_prefix = prefix.into();
        self
    }

    /// Probe each of `targets` in turn with `probe`, which records that
    /// target's assertions and measurements into this outcome and returns a
    /// short headline of what it saw there (without naming the target).
    ///
    /// `kind` names what the targets are (`"target"`, `"name"`, …). With one
    /// target, nothing changes: the probe records as if called directly. With
    /// several, the probe of target `i` runs with
    ///
    /// - assertion names scoped by the target (`<target>: <name>`, see
    ///   [`set_scope`](Outcome::set_scope)),
    /// - measurement names prefixed with `<kind><i>_` (e.g. `target0_`, see
    ///   [`set_metric_prefix`](Outcome::set_metric_prefix)),
    /// - a label `<kind><i>` = `<target>`,
    ///
    /// and the scope and prefix in force before the call are restored after
    /// it. The headlines come back as [`TargetHeadlines`], to be combined into
    /// this outcome's [`headline`](Outcome::headline).
    ///
    /// ```
    /// use vantage_sdk::{Outcome, Status};
    ///
    /// fn probe(url: &str, outcome: &mut Outcome) -> String {
    ///     let up = !url.contains("down");
    ///     outcome
    ///         .assert("request succeeded", up, if up { "200 OK" } else { "connect: refused" })
    ///         .measure("http_total_ms", 12.0, "ms");
    ///     if up { "200 OK".into() } else { "connect failed".into() }
    /// }
    ///
    /// let targets = ["https://a.example", "https://down.example"];
    /// let mut outcome = Outcome::new();
    /// let headlines = outcome.for_each_target("target", &targets, probe);
    /// outcome.headline(headlines.counted());
    ///
    /// assert_eq!(outcome.status(), Status::Fail);
    /// assert_eq!(
    ///     outcome.assertions()[1].name,
    ///     "https://down.example: request succeeded"
    /// );
    /// assert_eq!(outcome.measurements()[1].name, "target1_http_total_ms");
    /// assert_eq!(
    ///     outcome.labels()[1],
    ///     ("target1".to_string(), "https://down.example".to_string())
    /// );
    /// assert!(outcome.summary().starts_with(
    ///     "2 targets (https://a.example: 200 OK; https://down.example: connect failed)"
    /// ));
    /// ```
    pub fn for_each_target<T: AsRef<str>>(
        &mut self,
        kind: &str,
        targets: &[T],
        mut probe: impl FnMut(&str, &mut Outcome) -> String,
    ) -> TargetHeadlines {
        let several = targets.len() > 1;
        let saved_scope = self.scope.clone();
        let saved_prefix = self.metric_prefix.clone();
        let mut entries = Vec::with_capacity(targets.len());
        for (index, target) in targets.iter().enumerate() {
            let target = target.as_ref();
            if several {
                self.set_scope(target)
                    .set_metric_prefix(format!("{kind}{index}_"))
                    .label(format!("{kind}{index}"), target);
            }
            let headline = probe(target, self);
            entries.push((target.to_string(), headline));
        }
        self.scope = saved_scope;
        self.metric_prefix = saved_prefix;
        TargetHeadlines {
            kind: kind.to_string(),
            entries,
        }
    }

    /// Ready-made assertions about an HTTP response, recorded into this
    /// outcome:
    ///
    /// ```
    /// use vantage_sdk::{http::Response, Outcome, Status};
    /// let response = Response::mock(200, &[("content-type", "application/json")], r#"{"status":"ok"}"#);
    /// let mut outcome = Outcome::new();
    /// outcome
    ///     .expect(&response)
    ///     .status_is(200)
    ///     .header_present("content-type")
    ///     .body_contains("ok")
    ///     .json_pointer_eq("/status", "ok");
    /// assert_eq!(outcome.status(), Status::Pass);
    /// ```
    pub fn expect<'a>(&'a mut self, response: &'a Response) -> Expect<'a> {
        Expect {
            outcome: self,
            response,
            json: None,
        }
    }

    /// Record the standard measurements of an HTTP exchange:
    /// `http_status_code`, `http_resolve_ms`, `http_connect_ms`,
    /// `http_tls_ms`, `http_processing_ms`, `http_transfer_ms`,
    /// `http_total_ms`, `http_body_bytes`, `http_redirects` and
    /// `http_version` (1.0, 1.1 or 2).
    pub fn measure_response(&mut self, response: &Response) -> &mut Self {
        let t = response.timings();
        self.measure("http_status_code", f64::from(response.status()), "")
            .measure("http_resolve_ms", t.resolve_ms, "ms")
            .measure("http_connect_ms", t.connect_ms, "ms")
            .measure("http_tls_ms", t.tls_ms, "ms")
            .measure("http_processing_ms", t.processing_ms, "ms")
            .measure("http_transfer_ms", t.transfer_ms, "ms")
            .measure("http_total_ms", t.total_ms, "ms")
            .measure("http_body_bytes", response.body().len() as f64, "bytes")
            .measure("http_redirects", response.redirects().len() as f64, "")
            .measure("http_version", response.version().as_f64(), "")
    }

    /// The verdict so far.
    pub fn status(&self) -> Status {
        if !self.fail_reasons.is_empty() || self.assertions.iter().any(|a| !a.passed) {
            Status::Fail
        } else if !self.degrade_reasons.is_empty() {
            Status::Degraded
        } else {
            Status::Pass
        }
    }

    /// Every assertion recorded, in order.
    pub fn assertions(&self) -> &[Assertion] {
        &self.assertions
    }

    /// Every measurement recorded, in order.
    pub fn measurements(&self) -> &[Measurement] {
        &self.measurements
    }

    /// Every label attached, in order.
    pub fn labels(&self) -> &[(String, String)] {
        &self.labels
    }

    /// How many assertions held.
    pub fn passed_count(&self) -> usize {
        self.assertions.iter().filter(|a| a.passed).count()
    }

    /// How many assertions did not hold.
    pub fn failed_count(&self) -> usize {
        self.assertions.len() - self.passed_count()
    }

    /// The summary line: the one set with
    /// [`set_summary`](Outcome::set_summary), or the computed one.
    pub fn summary(&self) -> String {
        if let Some(summary) = &self.summary {
            return summary.clone();
        }
        let mut base: Vec<String> = Vec::new();
        if let Some(headline) = &self.headline {
            base.push(headline.clone());
        }
        if !self.assertions.is_empty() {
            base.push(format!(
                "{}/{} assertions passed",
                self.passed_count(),
                self.assertions.len()
            ));
        }
        let mut problems: Vec<String> = Vec::new();
        if let Some(first) = self.assertions.iter().find(|a| !a.passed) {
            let mut text = if first.detail.is_empty() {
                format!("failed: {}", first.name)
            } else {
                format!("failed: {} ({})", first.name, first.detail)
            };
            let more = self.failed_count() - 1;
            if more > 0 {
                text.push_str(&format!(" and {more} more"));
            }
            problems.push(text);
        }
        problems.extend(self.fail_reasons.iter().cloned());
        if self.status() == Status::Degraded {
            problems.push(format!("degraded: {}", self.degrade_reasons.join("; ")));
        }
        match (base.is_empty(), problems.is_empty()) {
            (true, true) => "no assertions recorded".to_string(),
            (false, true) => base.join(", "),
            (true, false) => problems.join("; "),
            (false, false) => format!("{}; {}", base.join(", "), problems.join("; ")),
        }
    }

    /// The result to return to the host.
    pub fn into_result(self) -> CheckResult {
        CheckResult {
            status: self.status(),
            summary: self.summary(),
            assertions: self.assertions,
            measurements: self.measurements,
            labels: self.labels,
        }
    }

    fn push_assertion(
        &mut self,
        name: String,
        passed: bool,
        detail: String,
        duration_ms: Option<f64>,
    ) {
        let name = match &self.scope {
            Some(scope) => format!("{scope}: {name}"),
            None => name,
        };
        self.assertions.push(Assertion {
            name,
            passed,
            detail,
            duration_ms,
        });
    }
}

/// The headline of each target probed by
/// [`Outcome::for_each_target`], in order, to combine into the outcome's
/// [`headline`](Outcome::headline). With a single target, every form is that
/// target's headline as the probe returned it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "combine the headlines and pass them to `Outcome::headline`"]
pub struct TargetHeadlines {
    kind: String,
    entries: Vec<(String, String)>,
}

impl TargetHeadlines {
    /// Several targets: `<n> <kind>s (<target>: <headline>; …)`, e.g.
    /// `2 targets (https://a: 200 OK; https://b: connect failed)`.
    pub fn counted(&self) -> String {
        match self.entries.as_slice() {
            [] => String::new(),
            [(_, single)] => single.clone(),
            _ => format!(
                "{} {}s ({})",
                self.entries.len(),
                self.kind,
                self.per_target()
            ),
        }
    }

    /// Several targets: `<target>: <headline>; …`, e.g.
    /// `a:443: handshake failed; b:443: TLSv1.3, 80 days left`.
    pub fn per_target(&self) -> String {
        match self.entries.as_slice() {
            [(_, single)] => single.clone(),
            entries => entries
                .iter()
                .map(|(target, headline)| format!("{target}: {headline}"))
                .collect::<Vec<_>>()
                .join("; "),
        }
    }

    /// The headlines as the probe returned them, joined with `; `: for probes
    /// whose headline already names the target.
    pub fn joined(&self) -> String {
        self.entries
            .iter()
            .map(|(_, headline)| headline.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// `(target, headline)` pairs, in the order probed.
    pub fn entries(&self) -> &[(String, String)] {
        &self.entries
    }
}

impl From<Outcome> for CheckResult {
    fn from(outcome: Outcome) -> Self {
        outcome.into_result()
    }
}

/// Assertions about one HTTP response, recorded into an [`Outcome`]; made by
/// [`Outcome::expect`]. Every method records exactly one assertion and
/// returns `self` for chaining.
#[derive(Debug)]
pub struct Expect<'a> {
    outcome: &'a mut Outcome,
    response: &'a Response,
    json: Option<Result<Value, String>>,
}

impl Expect<'_> {
    /// The status is `code`.
    pub fn status_is(&mut self, code: u16) -> &mut Self {
        let passed = self.response.status() == code;
        self.record(format!("status is {code}"), passed, self.status_detail())
    }

    /// The status is one of `codes`.
    pub fn status_in(&mut self, codes: &[u16]) -> &mut Self {
        self.status_matches(&StatusSet::codes(codes))
    }

    /// The status is in `set` (e.g. `StatusSet::parse("2xx, 304")`).
    pub fn status_matches(&mut self, set: &StatusSet) -> &mut Self {
        let passed = set.contains(self.response.status());
        self.record(format!("status in {set}"), passed, self.status_detail())
    }

    /// The body contains `needle` (case-sensitive).
    pub fn body_contains(&mut self, needle: &str) -> &mut Self {
        self.body_find(format!("body contains {needle:?}"), needle, true)
    }

    /// The body does not contain `needle` (case-sensitive).
    pub fn body_not_contains(&mut self, needle: &str) -> &mut Self {
        self.body_find(format!("body does not contain {needle:?}"), needle, false)
    }

    /// The body matches the regular expression `pattern` (an invalid pattern
    /// fails the assertion).
    ///
    /// The pattern is compiled on every call, which a check pays on every run
    /// (a run starts from a fresh instance); to match configured patterns,
    /// compile them once and use [`body_matches_regex`](Self::body_matches_regex).
    #[cfg(any(feature = "regex", feature = "regex-lite"))]
    pub fn body_matches(&mut self, pattern: &str) -> &mut Self {
        self.compiled(pattern, format!("body matches /{pattern}/"), |e, re| {
            e.body_matches_regex(re)
        })
    }

    /// The body matches the compiled regular expression `re` (a
    /// `regex::Regex` or a `regex_lite::Regex`; see [`Pattern`]).
    pub fn body_matches_regex(&mut self, re: &impl Pattern) -> &mut Self {
        self.body_match(format!("body matches /{}/", re.pattern()), re, true)
    }

    /// The body does not match the regular expression `pattern` (an invalid
    /// pattern fails the assertion). Compiled on every call, like
    /// [`body_matches`](Self::body_matches); see
    /// [`body_not_matches_regex`](Self::body_not_matches_regex).
    #[cfg(any(feature = "regex", feature = "regex-lite"))]
    pub fn body_not_matches(&mut self, pattern: &str) -> &mut Self {
        self.compiled(
            pattern,
            format!("body does not match /{pattern}/"),
            |e, re| e.body_not_matches_regex(re),
        )
    }

    /// The body does not match the compiled regular expression `re` (see
    /// [`Pattern`]).
    pub fn body_not_matches_regex(&mut self, re: &impl Pattern) -> &mut Self {
        self.body_match(format!("body does not match /{}/", re.pattern()), re, false)
    }

    /// The body is JSON and the value at `pointer` (RFC 6901, e.g.
    /// `/checks/0/status`) equals `expected`, loosely (see [`json_loose_eq`]):
    /// `"200"` equals `200`, `"true"` equals `true`.
    pub fn json_pointer_eq(&mut self, pointer: &str, expected: impl Into<Value>) -> &mut Self {
        let expected = expected.into();
        let name = format!("json {pointer} == {}", render_json(&expected));
        let (passed, detail) = match self.json() {
            Err(e) => (false, e),
            Ok(doc) => match doc.pointer(pointer) {
                None => (false, format!("{pointer} not found")),
                Some(actual) => (
                    json_loose_eq(actual, &expected),
                    format!("got {}", render_json(actual)),
                ),
            },
        };
        self.record(name, passed, detail)
    }

    /// The body is JSON and has a value at `pointer`.
    pub fn json_pointer_exists(&mut self, pointer: &str) -> &mut Self {
        let name = format!("json {pointer} exists");
        let (passed, detail) = match self.json() {
            Err(e) => (false, e),
            Ok(doc) => match doc.pointer(pointer) {
                None => (false, format!("{pointer} not found")),
                Some(actual) => (true, format!("got {}", render_json(actual))),
            },
        };
        self.record(name, passed, detail)
    }

    /// The response has a header `name` (case-insensitive).
    pub fn header_present(&mut self, name: &str) -> &mut Self {
        let (passed, detail) = match self.response.header(name) {
            Some(value) => (true, format!("got {:?}", excerpt(value, 80))),
            None => (false, "absent".to_string()),
        };
        self.record(
            format!("header {} present", name.to_ascii_lowercase()),
            passed,
            detail,
        )
    }

    /// Header `name` (case-insensitive) has a value equal to `value`
    /// (exactly, after trimming whitespace); any of its values counts.
    pub fn header_eq(&mut self, name: &str, value: &str) -> &mut Self {
        let passed = self
            .response
            .header_all(name)
            .any(|v| v.trim() == value.trim());
        let detail = self.header_detail(name);
        self.record(
            format!("header {} == {value:?}", name.to_ascii_lowercase()),
            passed,
            detail,
        )
    }

    /// Header `name` (case-insensitive) has a value matching the regular
    /// expression `pattern`; any of its values counts. Compiled on every call,
    /// like [`body_matches`](Self::body_matches); see
    /// [`header_matches_regex`](Self::header_matches_regex).
    #[cfg(any(feature = "regex", feature = "regex-lite"))]
    pub fn header_matches(&mut self, name: &str, pattern: &str) -> &mut Self {
        let assertion = format!("header {} matches /{pattern}/", name.to_ascii_lowercase());
        self.compiled(pattern, assertion, |e, re| e.header_matches_regex(name, re))
    }

    /// Header `name` (case-insensitive) has a value matching the compiled
    /// regular expression `re` (see [`Pattern`]); any of its values counts.
    pub fn header_matches_regex(&mut self, name: &str, re: &impl Pattern) -> &mut Self {
        let assertion = format!(
            "header {} matches /{}/",
            name.to_ascii_lowercase(),
            re.pattern()
        );
        let passed = self.response.header_all(name).any(|v| re.matches(v));
        let detail = self.header_detail(name);
        self.record(assertion, passed, detail)
    }

    /// The whole exchange took less than `budget`: named `latency below
    /// <budget>` (see [`Outcome::assert_duration_below`]).
    pub fn latency_below(&mut self, budget: Duration) -> &mut Self {
        let measured = self.response.elapsed();
        self.outcome
            .assert_duration_below("latency", measured, budget);
        self
    }

    /// Record a custom assertion about the response.
    pub fn that(
        &mut self,
        name: impl Into<String>,
        passed: bool,
        detail: impl Into<String>,
    ) -> &mut Self {
        self.record(name.into(), passed, detail.into())
    }

    /// The response being asserted about.
    pub fn response(&self) -> &Response {
        self.response
    }

    /// The body parsed as JSON (parsed once, on first use); the error is a
    /// ready-to-show detail.
    pub fn json(&mut self) -> Result<&Value, String> {
        let response = self.response;
        self.json
            .get_or_insert_with(|| {
                response.json().map_err(|e| {
                    format!(
                        "body is not JSON: {e} (body starts with {:?})",
                        excerpt(&response.text(), 40)
                    )
                })
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    fn record(&mut self, name: String, passed: bool, detail: String) -> &mut Self {
        self.outcome.push_assertion(name, passed, detail, None);
        self
    }

    /// Compile `pattern` and `assert` with it; an invalid pattern records
    /// the assertion `name` as failed, with the compile error.
    #[cfg(any(feature = "regex", feature = "regex-lite"))]
    fn compiled(
        &mut self,
        pattern: &str,
        name: String,
        assert: impl for<'s> FnOnce(&'s mut Self, &crate::pattern::Compiled) -> &'s mut Self,
    ) -> &mut Self {
        match crate::pattern::compile(pattern) {
            Ok(re) => assert(self, &re),
            Err(e) => self.record(name, false, format!("invalid regex: {e}")),
        }
    }

    /// Record whether the body contains `needle`, passing when that is
    /// `wanted`.
    fn body_find(&mut self, name: String, needle: &str, wanted: bool) -> &mut Self {
        let at = self.response.text().find(needle);
        let detail = match at {
            Some(at) => format!("found at byte {at}"),
            None => format!("not found in {}", self.body_size()),
        };
        self.record(name, at.is_some() == wanted, detail)
    }

    /// Record whether `re` matches the body, passing when that is `wanted`;
    /// an unwanted match shows where it is.
    fn body_match(&mut self, name: String, re: &impl Pattern, wanted: bool) -> &mut Self {
        let text = self.response.text();
        let (found, detail) = match re.find_range(&text) {
            Some(m) if wanted => (true, format!("matched {:?}", excerpt(&text[m], 60))),
            Some(m) => (
                true,
                format!(
                    "matched {:?} at byte {}",
                    excerpt(&text[m.clone()], 60),
                    m.start
                ),
            ),
            None => (false, format!("no match in {}", self.body_size())),
        };
        self.record(name, found == wanted, detail)
    }

    fn status_detail(&self) -> String {
        let reason = self.response.reason();
        if reason.is_empty() {
            format!("got {}", self.response.status())
        } else {
            format!("got {} {reason}", self.response.status())
        }
    }

    fn body_size(&self) -> String {
        format!("{}-byte body", self.response.body().len())
    }

    fn header_detail(&self, name: &str) -> String {
        let values: Vec<String> = self
            .response
            .header_all(name)
            .map(|v| format!("{:?}", excerpt(v, 80)))
            .collect();
        if values.is_empty() {
            "absent".to_string()
        } else {
            format!("got {}", values.join(", "))
        }
    }
}

/// Compare JSON values the way configuration compares them: equal values are
/// equal, and a string equals a number, boolean or `null` that renders the
/// same (`"200"` == `200`, `"1.0"` == `1`, `"true"` == `true`); numbers compare
/// numerically.
///
/// ```
/// use serde_json::json;
/// use vantage_sdk::json_loose_eq;
/// assert!(json_loose_eq(&json!(200), &json!("200")));
/// assert!(json_loose_eq(&json!("ok"), &json!("ok")));
/// assert!(!json_loose_eq(&json!("ok"), &json!("OK")));
/// ```
pub fn json_loose_eq(actual: &Value, expected: &Value) -> bool {
    if actual == expected {
        return true;
    }
    match (actual, expected) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Value::String(s), other) | (other, Value::String(s)) => match other {
            Value::Number(n) => s.trim().parse::<f64>().ok() == n.as_f64(),
            Value::Bool(b) => s.trim() == if *b { "true" } else { "false" },
            Value::Null => s.trim() == "null",
            _ => false,
        },
        _ => false,
    }
}

/// A JSON value as shown in assertion names and details: strings quoted,
/// long values shortened.
fn render_json(value: &Value) -> String {
    excerpt(&value.to_string(), 80).into_owned()
}

/// At most `max` characters of `text`, with `…` when shortened.
///
/// The text may hold a secret-derived value (a server echoing the
/// `Authorization` header, a token in a JSON body), and this cut happens in
/// the guest, before the host redacts. That is safe by design, and the SDK
/// keeps the cut rather than leaving truncation to the host: the SDK cannot
/// tell which strings are secret-derived (the host expands
/// `{{secret.NAME}}` in config values before the check sees them), and
/// uncut excerpts of large bodies and headers would make results too large
/// to keep. The host redacts every fragment of a revealed secret of 6 or more
/// characters, wherever it was cut (`vantage::capabilities::secrets::Redactor`),
/// so a cut secret loses its kept part as surely as a whole one: only a piece
/// shorter than 6 characters can remain before the `…`. What the host relies
/// on is that the cut keeps one contiguous prefix (tested below; the host's
/// redaction tests and the end-to-end `http` check test with a server that
/// echoes the header test the rest).
fn excerpt(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(max) {
        None => text.into(),
        Some((cut, _)) => format!("{}…", &text[..cut]).into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn names(outcome: &Outcome) -> Vec<(&str, bool)> {
        outcome
            .assertions()
            .iter()
            .map(|a| (a.name.as_str(), a.passed))
            .collect()
    }

    fn probe_stub(target: &str, outcome: &mut Outcome) -> String {
        let up = !target.starts_with("down");
        outcome
            .assert("connected", up, "detail")
            .measure("connect_ms", 5.0, "ms");
        if up { "up".into() } else { "down".into() }
    }

    #[test]
    fn for_each_target_with_one_target_records_as_is() {
        let mut o = Outcome::new();
        let headlines = o.for_each_target("target", &["a:1"], probe_stub);
        assert_eq!(names(&o), [("connected", true)]);
        assert_eq!(o.measurements()[0].name, "connect_ms");
        assert!(o.labels().is_empty());
        assert_eq!(headlines.counted(), "up");
        assert_eq!(headlines.per_target(), "up");
        assert_eq!(headlines.joined(), "up");
        assert_eq!(headlines.entries(), [("a:1".to_string(), "up".to_string())]);
    }

    #[test]
    fn for_each_target_scopes_prefixes_and_labels_each_of_several() {
        let mut o = Outcome::new();
        o.set_metric_prefix("outer_");
        let targets = vec!["a:1".to_string(), "down:2".to_string()];
        let mut seen = Vec::new();
        let headlines = o.for_each_target("name", &targets, |target, outcome| {
            seen.push(target.to_string());
            probe_stub(target, outcome)
        });
        assert_eq!(seen, ["a:1", "down:2"]);
        assert_eq!(
            names(&o),
            [("a:1: connected", true), ("down:2: connected", false)]
        );
        let measured: Vec<&str> = o.measurements().iter().map(|m| m.name.as_str()).collect();
        assert_eq!(measured, ["name0_connect_ms", "name1_connect_ms"]);
        assert_eq!(
            o.labels(),
            [
                ("name0".to_string(), "a:1".to_string()),
                ("name1".to_string(), "down:2".to_string())
            ]
        );
        assert_eq!(headlines.counted(), "2 names (a:1: up; down:2: down)");
        assert_eq!(headlines.per_target(), "a:1: up; down:2: down");
        assert_eq!(headlines.joined(), "up; down");

        // The scope and prefix in force before are back.
        o.assert("after", true, "").measure("after", 1.0, "");
        assert_eq!(o.assertions()[2].name, "after");
        assert_eq!(o.measurements()[2].name, "outer_after");
    }

    #[test]
    fn for_each_target_with_no_target_probes_nothing() {
        let mut o = Outcome::new();
        let headlines = o.for_each_target("target", &[] as &[&str], |_, _| unreachable!());
        assert!(o.assertions().is_empty());
        assert_eq!(headlines.counted(), "");
        assert_eq!(headlines.per_target(), "");
        assert_eq!(headlines.joined(), "");
    }

    #[test]
    fn empty_outcome_passes() {
        let o = Outcome::new();
        assert_eq!(o.status(), Status::Pass);
        assert_eq!(o.summary(), "no assertions recorded");
    }

    #[test]
    fn status_is_computed_from_assertions_and_overrides() {
        let mut o = Outcome::new();
        o.assert("a", true, "");
        assert_eq!(o.status(), Status::Pass);
        o.degrade("slow");
        assert_eq!(o.status(), Status::Degraded);
        assert_eq!(o.summary(), "1/1 assertions passed; degraded: slow");
        assert!(!o.check("b", false, "broken"));
        assert_eq!(o.status(), Status::Fail, "a failure beats degraded");
        assert_eq!(o.summary(), "1/2 assertions passed; failed: b (broken)");

        let mut o = Outcome::new();
        o.fail("no targets");
        assert_eq!(o.status(), Status::Fail);
        assert_eq!(o.summary(), "no targets");

        let o = Outcome::from(crate::Error::other("bad config"));
        let r = o.into_result();
        assert_eq!(r.status, Status::Fail);
        assert_eq!(r.summary, "bad config");
        assert!(r.assertions.is_empty());
    }

    #[test]
    fn summary_mentions_headline_counts_and_extra_failures() {
        let mut o = Outcome::new();
        o.headline("503 Service Unavailable in 12.3 ms")
            .assert("status is 200", false, "got 503")
            .assert("body contains \"ok\"", false, "")
            .assert("latency below 1 s", true, "took 12.3 ms");
        assert_eq!(
            o.summary(),
            "503 Service Unavailable in 12.3 ms, 1/3 assertions passed; failed: status is 200 (got 503) and 1 more"
        );
        o.set_summary("custom");
        assert_eq!(o.summary(), "custom");
        assert_eq!(o.passed_count(), 1);
        assert_eq!(o.failed_count(), 2);
    }

    #[test]
    fn scope_and_metric_prefix() {
        let mut o = Outcome::new();
        o.set_scope("https://a/")
            .set_metric_prefix("target0_")
            .assert("status is 200", true, "")
            .measure("http_total_ms", 1.0, "ms")
            .label("k", "v");
        o.clear_scope()
            .set_metric_prefix("")
            .assert("x", true, "")
            .assert_timed("step", true, "", Duration::from_millis(1500))
            .measure("m", 2.0, "");
        assert_eq!(o.assertions()[0].name, "https://a/: status is 200");
        assert_eq!(o.assertions()[1].name, "x");
        assert_eq!(o.assertions()[2].duration_ms, Some(1500.0));
        assert_eq!(o.measurements()[0].name, "target0_http_total_ms");
        assert_eq!(o.measurements()[1].name, "m");
        assert_eq!(o.labels(), [("k".to_string(), "v".to_string())]);
        let r = CheckResult::from(o);
        assert_eq!(r.measurements.len(), 2);
        assert_eq!(r.labels.len(), 1);
    }

    #[test]
    fn latency_assertion() {
        let mut o = Outcome::new();
        o.assert_duration_below(
            "total latency",
            Duration::from_millis(1200),
            Duration::from_secs(1),
        );
        let a = &o.assertions()[0];
        assert_eq!(a.name, "total latency below 1 s");
        assert!(!a.passed);
        assert_eq!(a.detail, "took 1.2 s");
    }

    #[test]
    fn response_expectations() {
        let r = Response::mock(
            503,
            &[
                ("Content-Type", "application/json; charset=utf-8"),
                ("x-a", "1"),
            ],
            r#"{"status":"down","code":503,"ok":false,"list":[{"name":"db"}]}"#,
        );
        let mut o = Outcome::new();
        o.expect(&r)
            .status_is(200)
            .status_in(&[503, 504])
            .status_matches(&StatusSet::parse("2xx").unwrap())
            .body_contains("down")
            .body_contains("absent")
            .body_not_contains("up")
            .json_pointer_eq("/status", "down")
            .json_pointer_eq("/code", "503")
            .json_pointer_eq("/ok", false)
            .json_pointer_eq("/list/0/name", "db")
            .json_pointer_eq("/missing", "x")
            .json_pointer_exists("/list/0")
            .header_present("X-A")
            .header_present("x-b")
            .header_eq("x-a", "1")
            .header_eq("x-a", "2")
            .latency_below(Duration::from_secs(1))
            .that("custom", true, "fine");
        assert_eq!(
            names(&o),
            vec![
                ("status is 200", false),
                ("status in 503, 504", true),
                ("status in 2xx", false),
                ("body contains \"down\"", true),
                ("body contains \"absent\"", false),
                ("body does not contain \"up\"", true),
                ("json /status == \"down\"", true),
                ("json /code == \"503\"", true),
                ("json /ok == false", true),
                ("json /list/0/name == \"db\"", true),
                ("json /missing == \"x\"", false),
                ("json /list/0 exists", true),
                ("header x-a present", true),
                ("header x-b present", false),
                ("header x-a == \"1\"", true),
                ("header x-a == \"2\"", false),
                ("latency below 1 s", true),
                ("custom", true),
            ]
        );
        assert_eq!(o.assertions()[0].detail, "got 503 Service Unavailable");
        assert_eq!(o.assertions()[4].detail, "not found in 62-byte body");
        assert_eq!(o.assertions()[10].detail, "/missing not found");
        assert_eq!(o.assertions()[13].detail, "absent");
        assert_eq!(o.assertions()[15].detail, "got \"1\"");
    }

    #[test]
    fn json_errors_are_details() {
        let r = Response::mock(200, &[], "<html>oops</html>");
        let mut o = Outcome::new();
        o.expect(&r).json_pointer_eq("/status", "ok");
        let a = &o.assertions()[0];
        assert!(!a.passed);
        assert!(a.detail.starts_with("body is not JSON: "), "{}", a.detail);
        assert!(a.detail.contains("<html>oops</html>"), "{}", a.detail);
    }

    #[cfg(any(feature = "regex", feature = "regex-lite"))]
    #[test]
    fn regex_expectations() {
        let r = Response::mock(
            200,
            &[("server", "nginx/1.25")],
            "version: 1.2.3\nstatus: ok",
        );
        let mut o = Outcome::new();
        o.expect(&r)
            .body_matches(r"version: \d+\.\d+")
            .body_matches("^status: (ok|up)$")
            .body_matches("(?m)^status: (ok|up)$")
            .body_not_matches("(?i)error")
            .body_not_matches(r"\d")
            .body_matches("(unclosed")
            .header_matches("Server", "^nginx/")
            .header_matches("server", "^apache");
        assert_eq!(
            names(&o),
            vec![
                (r"body matches /version: \d+\.\d+/", true),
                ("body matches /^status: (ok|up)$/", false),
                ("body matches /(?m)^status: (ok|up)$/", true),
                ("body does not match /(?i)error/", true),
                (r"body does not match /\d/", false),
                ("body matches /(unclosed/", false),
                ("header server matches /^nginx//", true),
                ("header server matches /^apache/", false),
            ]
        );
        assert_eq!(o.assertions()[0].detail, "matched \"version: 1.2\"");
        assert_eq!(o.assertions()[4].detail, "matched \"1\" at byte 9");
        assert!(o.assertions()[5].detail.starts_with("invalid regex"));
    }

    #[cfg(feature = "regex-lite")]
    #[test]
    fn compiled_regex_expectations() {
        use regex_lite::Regex;
        let re = |pattern: &str| Regex::new(pattern).unwrap();
        let r = Response::mock(
            200,
            &[("server", "nginx/1.25")],
            "version: 1.2.3\nstatus: ok",
        );
        let (version, anywhere) = (re(r"version: \d+\.\d+"), re(r"\d"));
        let mut o = Outcome::new();
        o.expect(&r)
            .body_matches_regex(&version)
            .body_matches_regex(&re("^status: (ok|up)$"))
            .body_matches_regex(&re("(?m)^status: (ok|up)$"))
            .body_not_matches_regex(&re("(?i)error"))
            .body_not_matches_regex(&anywhere)
            .header_matches_regex("Server", &re("^nginx/"))
            .header_matches_regex("server", &re("^apache"));
        assert_eq!(
            names(&o),
            vec![
                (r"body matches /version: \d+\.\d+/", true),
                ("body matches /^status: (ok|up)$/", false),
                ("body matches /(?m)^status: (ok|up)$/", true),
                ("body does not match /(?i)error/", true),
                (r"body does not match /\d/", false),
                ("header server matches /^nginx//", true),
                ("header server matches /^apache/", false),
            ]
        );
        assert_eq!(o.assertions()[0].detail, "matched \"version: 1.2\"");
        assert_eq!(o.assertions()[1].detail, "no match in 25-byte body");
        assert_eq!(o.assertions()[4].detail, "matched \"1\" at byte 9");
        assert_eq!(o.assertions()[5].detail, "got \"nginx/1.25\"");
    }

    /// The `&str` form and the compiled forms (either engine) record the same
    /// assertion.
    #[cfg(all(feature = "regex", feature = "regex-lite"))]
    #[test]
    fn str_and_compiled_forms_agree() {
        let r = Response::mock(200, &[("x-v", "v2"), ("x-v", "v10")], "héllo wörld 42");
        for pattern in [r"w\S+d", r"\d+$", "^h", "absent", r"v\d{2}", "(?i)HÉLLO"] {
            let full = regex::Regex::new(pattern).unwrap();
            let lite = regex_lite::Regex::new(pattern).unwrap();
            let mut by_str = Outcome::new();
            let mut by_full = Outcome::new();
            let mut by_lite = Outcome::new();
            by_str
                .expect(&r)
                .body_matches(pattern)
                .body_not_matches(pattern)
                .header_matches("X-V", pattern);
            by_full
                .expect(&r)
                .body_matches_regex(&full)
                .body_not_matches_regex(&full)
                .header_matches_regex("X-V", &full);
            by_lite
                .expect(&r)
                .body_matches_regex(&lite)
                .body_not_matches_regex(&lite)
                .header_matches_regex("X-V", &lite);
            assert_eq!(by_str.assertions(), by_full.assertions(), "{pattern}");
            if pattern != "(?i)HÉLLO" {
                // regex-lite folds ASCII case only.
                assert_eq!(by_str.assertions(), by_lite.assertions(), "{pattern}");
            }
        }
    }

    #[test]
    fn loose_json_equality() {
        assert!(json_loose_eq(&json!(1), &json!(1.0)));
        assert!(json_loose_eq(&json!(1.5), &json!("1.5")));
        assert!(json_loose_eq(&json!("1.5"), &json!(1.5)));
        assert!(json_loose_eq(&json!(true), &json!("true")));
        assert!(json_loose_eq(&json!(null), &json!("null")));
        assert!(json_loose_eq(&json!({"a": [1]}), &json!({"a": [1]})));
        assert!(!json_loose_eq(&json!("true"), &json!(false)));
        assert!(!json_loose_eq(&json!([1]), &json!("[1]")));
        assert!(!json_loose_eq(&json!("x"), &json!(1)));
    }

    #[test]
    fn excerpts_are_char_safe() {
        assert_eq!(excerpt("héllo", 2), "hé…");
        assert_eq!(excerpt("hé", 2), "hé");
    }

    /// A cut keeps one contiguous prefix of the text and marks it: a secret
    /// in the text reaches the host as one piece the host's fragment
    /// redaction covers, never reordered or interleaved with other text.
    #[test]
    fn excerpts_keep_one_contiguous_prefix() {
        let token =
            "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlLXNpZ25hdHVyZQ";
        for max in 0..token.len() + 2 {
            let cut = excerpt(token, max);
            match cut.strip_suffix('…') {
                Some(kept) => {
                    assert!(token.starts_with(kept), "{cut}");
                    assert_eq!(kept.chars().count(), max, "{cut}");
                }
                None => assert_eq!(cut, token),
            }
        }
    }
}
