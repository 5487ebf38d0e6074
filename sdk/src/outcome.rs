//! Recording what a run verified and measured, and computing its verdict.

use std::time::Duration;

use serde_json::Value;

use crate::http::{FetchError, Response, StatusSet, Timings};
use crate::pattern::Pattern;
use crate::tls::TlsInfo;
use crate::util::duration_ms;
use crate::{Assertion, AssertionState, CheckResult, Measurement, Status, format_duration};

/// What a run found: named assertions, measurements and labels, from which
/// the verdict and a one-line summary are computed.
///
/// - Any failed assertion, or an explicit [`fail`](Outcome::fail), makes the
///   status [`Status::Fail`].
/// - Otherwise any assertion in state [`warn`](AssertionState::Warn) (see
///   [`assert_or_warn`](Outcome::assert_or_warn)), or an explicit
///   [`degrade`](Outcome::degrade), makes it [`Status::Degraded`] (the
///   service works, but worse than it should).
/// - Otherwise it is [`Status::Pass`].
///
/// The summary is `<headline>, <passed>/<total> assertions passed`, followed
/// by the first failure (or the warnings and degradation reasons); set
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
    metric_labels: Vec<(String, String)>,
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
        self.push_assertion(name.into(), state_of(passed), detail.into(), None);
        self
    }

    /// Record an assertion in the given state: [`AssertionState::Warn`] for
    /// a claim that held only partly or barely (a certificate expiring soon,
    /// a latency over its soft limit), which makes the result degraded
    /// unless something failed.
    pub fn record(
        &mut self,
        name: impl Into<String>,
        state: AssertionState,
        detail: impl Into<String>,
    ) -> &mut Self {
        self.push_assertion(name.into(), state, detail.into(), None);
        self
    }

    /// Record an assertion that passes when `held` and only warns when not:
    /// a soft limit.
    ///
    /// ```
    /// use vantage_sdk::{Outcome, Status};
    /// let mut outcome = Outcome::new();
    /// outcome
    ///     .assert("status is 2xx", true, "got 200")
    ///     .assert_or_warn("latency below 300 ms", false, "took 412 ms");
    /// assert_eq!(outcome.status(), Status::Degraded);
    /// assert_eq!(
    ///     outcome.summary(),
    ///     "1/2 assertions passed; degraded: latency below 300 ms (took 412 ms)"
    /// );
    /// ```
    pub fn assert_or_warn(
        &mut self,
        name: impl Into<String>,
        held: bool,
        detail: impl Into<String>,
    ) -> &mut Self {
        let state = if held {
            AssertionState::Pass
        } else {
            AssertionState::Warn
        };
        self.push_assertion(name.into(), state, detail.into(), None);
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
        self.push_assertion(name.into(), state_of(passed), detail.into(), None);
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
        self.push_assertion(
            name.into(),
            state_of(passed),
            detail.into(),
            Some(duration_ms(took)),
        );
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
    /// `unit` e.g. `ms`, `bytes`, `days`, or empty. It carries the labels
    /// in force (see [`for_each_target`](Outcome::for_each_target)).
    pub fn measure(
        &mut self,
        name: impl AsRef<str>,
        value: f64,
        unit: impl Into<String>,
    ) -> &mut Self {
        self.measure_labelled(name, value, unit, Vec::<(String, String)>::new())
    }

    /// Record a measurement with labels telling series of one name apart,
    /// e.g. `[("phase", "connect")]`. Label names are `[a-z_][a-z0-9_]*`;
    /// the host adds its own (`check`, `location`, …) and refuses a label
    /// that would replace one of them. The labels in force (see
    /// [`for_each_target`](Outcome::for_each_target)) come first.
    ///
    /// ```
    /// use vantage_sdk::Outcome;
    /// let mut outcome = Outcome::new();
    /// outcome.measure_labelled("probe_tls_version_info", 1.0, "", [("version", "TLS 1.3")]);
    /// let m = &outcome.measurements()[0];
    /// assert_eq!(m.labels, [("version".to_string(), "TLS 1.3".to_string())]);
    /// ```
    pub fn measure_labelled<K, V>(
        &mut self,
        name: impl AsRef<str>,
        value: f64,
        unit: impl Into<String>,
        labels: impl IntoIterator<Item = (K, V)>,
    ) -> &mut Self
    where
        K: Into<String>,
        V: Into<String>,
    {
        let mut all = self.metric_labels.clone();
        all.extend(labels.into_iter().map(|(k, v)| (k.into(), v.into())));
        self.measurements.push(Measurement {
            name: format!("{}{}", self.metric_prefix, name.as_ref()),
            value,
            unit: unit.into(),
            labels: all,
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
    /// `prefix`; an empty prefix stops prefixing. (To tell the series of
    /// several targets apart, prefer a label: see
    /// [`set_metric_labels`](Outcome::set_metric_labels).)
    pub fn set_metric_prefix(&mut self, prefix: impl Into<String>) -> &mut Self {
        self.metric_prefix = prefix.into();
        self
    }

    /// Put these labels on every measurement recorded from now on (e.g.
    /// `[("target", "https://a.example/")]`); an empty list stops labelling.
    pub fn set_metric_labels<K, V>(&mut self, labels: impl IntoIterator<Item = (K, V)>) -> &mut Self
    where
        K: Into<String>,
        V: Into<String>,
    {
        self.metric_labels = labels
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        self
    }

    /// Probe each of `targets` in turn with `probe`, which records that
    /// target's assertions and measurements into this outcome and returns a
    /// short headline of what it saw there (without naming the target).
    ///
    /// `kind` names what the targets are (`"target"`, `"name"`, …). With one
    /// target, nothing changes: the probe records as if called directly. With
    /// several, the probe of each target runs with
    ///
    /// - assertion names scoped by the target (`<target>: <name>`, see
    ///   [`set_scope`](Outcome::set_scope)),
    /// - a label `<kind>` = `<target>` on every measurement (see
    ///   [`set_metric_labels`](Outcome::set_metric_labels)), so that each
    ///   measurement keeps its name and the targets are series of it,
    ///
    /// and the scope and labels in force before the call are restored after
    /// it. The headlines come back as [`TargetHeadlines`], to be combined into
    /// this outcome's [`headline`](Outcome::headline).
    ///
    /// ```
    /// use vantage_sdk::{Outcome, Status};
    ///
    /// fn probe(url: &str, outcome: &mut Outcome) -> String {
    ///     let up = !url.contains("down");
    ///     outcome
    ///         .assert("request completed", up, if up { "200 OK" } else { "connect: refused" })
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
    ///     "https://down.example: request completed"
    /// );
    /// let m = &outcome.measurements()[1];
    /// assert_eq!(m.name, "http_total_ms");
    /// assert_eq!(
    ///     m.labels,
    ///     [("target".to_string(), "https://down.example".to_string())]
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
        let saved_labels = self.metric_labels.clone();
        let mut entries = Vec::with_capacity(targets.len());
        for target in targets {
            let target = target.as_ref();
            if several {
                self.set_scope(target);
                self.metric_labels = saved_labels.clone();
                self.metric_labels
                    .push((kind.to_string(), target.to_string()));
            }
            let headline = probe(target, self);
            entries.push((target.to_string(), headline));
        }
        self.scope = saved_scope;
        self.metric_labels = saved_labels;
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
    /// `http_status_code`, the phases (see
    /// [`measure_timings`](Outcome::measure_timings)), `http_body_bytes`
    /// (decoded), `http_wire_body_bytes` (as received), `http_redirects`,
    /// `http_version` (1.0, 1.1 or 2) and, over TLS, the certificate
    /// measurements of [`measure_tls`](Outcome::measure_tls).
    pub fn measure_response(&mut self, response: &Response) -> &mut Self {
        self.measure("http_status_code", f64::from(response.status()), "")
            .measure_timings(response.timings())
            .measure("http_body_bytes", response.body().len() as f64, "bytes")
            .measure(
                "http_wire_body_bytes",
                response.raw().wire_body_bytes as f64,
                "bytes",
            )
            .measure("http_redirects", response.redirects().len() as f64, "")
            .measure("http_version", response.version().as_f64(), "");
        if let Some(tls) = response.tls() {
            self.measure_tls(tls);
        }
        self
    }

    /// Record what a failed exchange still told: the status of the last
    /// response whose status line arrived (`0` when none did, as
    /// blackbox_exporter's `probe_http_status_code`), the phases measured so
    /// far, the redirects followed and, when a handshake got that far, the
    /// certificate measurements.
    pub fn measure_fetch_error(&mut self, error: &FetchError) -> &mut Self {
        let status = error.response.as_ref().map_or(0, |r| r.status());
        self.measure("http_status_code", f64::from(status), "")
            .measure_timings(&error.timings)
            .measure("http_redirects", error.redirects.len() as f64, "");
        if let Some(response) = &error.response {
            self.measure("http_body_bytes", response.body().len() as f64, "bytes")
                .measure("http_version", response.version().as_f64(), "");
        }
        if let Some(tls) = error.tls() {
            self.measure_tls(tls);
        }
        self
    }

    /// Record the phases of an exchange: `http_resolve_ms`,
    /// `http_connect_ms`, `http_tls_ms`, `http_processing_ms`,
    /// `http_transfer_ms` and `http_total_ms`.
    pub fn measure_timings(&mut self, t: &Timings) -> &mut Self {
        self.measure("http_resolve_ms", t.resolve_ms, "ms")
            .measure("http_connect_ms", t.connect_ms, "ms")
            .measure("http_tls_ms", t.tls_ms, "ms")
            .measure("http_processing_ms", t.processing_ms, "ms")
            .measure("http_transfer_ms", t.transfer_ms, "ms")
            .measure("http_total_ms", t.total_ms, "ms")
    }

    /// Record what a TLS handshake showed, under blackbox_exporter's names:
    ///
    /// - `probe_ssl_earliest_cert_expiry`: unix seconds when the earliest
    ///   certificate presented expires;
    /// - `probe_ssl_last_chain_expiry_timestamp_seconds`: the same over the
    ///   verified chain (when it verified);
    /// - `probe_tls_version_info` = 1, label `version` (`TLS 1.3`);
    /// - `probe_ssl_last_chain_info` = 1, labels `fingerprint_sha256`,
    ///   `subject`, `issuer`, `subjectalternative` and `serialnumber` of the
    ///   leaf certificate (serial in lowercase hex, leading zeros kept).
    ///
    /// ```
    /// use vantage_sdk::{Outcome, tls::{TlsInfo, Verdict}};
    /// let info = TlsInfo {
    ///     version: "TLSv1.3".into(),
    ///     cipher_suite: "TLS13_AES_128_GCM_SHA256".into(),
    ///     alpn: None,
    ///     chain: vec![],
    ///     earliest_expiry_unix_ms: Some(1_900_000_000_000),
    ///     verdict: Verdict::Valid,
    ///     verified_chain: vec![],
    ///     verified_expiry_unix_ms: None,
    /// };
    /// let mut outcome = Outcome::new();
    /// outcome.measure_tls(&info);
    /// let names: Vec<&str> = outcome.measurements().iter().map(|m| m.name.as_str()).collect();
    /// assert_eq!(names, ["probe_ssl_earliest_cert_expiry", "probe_tls_version_info"]);
    /// assert_eq!(outcome.measurements()[0].value, 1_900_000_000.0);
    /// assert_eq!(outcome.measurements()[1].labels[0].1, "TLS 1.3");
    /// ```
    pub fn measure_tls(&mut self, info: &TlsInfo) -> &mut Self {
        let seconds = |ms: i64| ms as f64 / 1000.0;
        if let Some(expiry) = info.earliest_expiry_unix_ms {
            self.measure("probe_ssl_earliest_cert_expiry", seconds(expiry), "s");
        }
        if let Some(expiry) = info.verified_expiry_unix_ms {
            self.measure(
                "probe_ssl_last_chain_expiry_timestamp_seconds",
                seconds(expiry),
                "s",
            );
        }
        self.measure_labelled(
            "probe_tls_version_info",
            1.0,
            "",
            [("version", crate::tls::version_label(&info.version))],
        );
        if let Some(leaf) = info.chain.first() {
            self.measure_labelled(
                "probe_ssl_last_chain_info",
                1.0,
                "",
                [
                    ("fingerprint_sha256", leaf.sha256_fingerprint.clone()),
                    ("subject", leaf.subject.clone()),
                    ("issuer", leaf.issuer.clone()),
                    ("subjectalternative", leaf.sans.join(",")),
                    ("serialnumber", leaf.serial.clone()),
                ],
            );
        }
        self
    }

    /// The verdict so far.
    pub fn status(&self) -> Status {
        if !self.fail_reasons.is_empty() || self.failed_count() > 0 {
            Status::Fail
        } else if !self.degrade_reasons.is_empty() || self.warned_count() > 0 {
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
        self.count(AssertionState::Pass)
    }

    /// How many assertions only warned.
    pub fn warned_count(&self) -> usize {
        self.count(AssertionState::Warn)
    }

    /// How many assertions did not hold.
    pub fn failed_count(&self) -> usize {
        self.count(AssertionState::Fail)
    }

    fn count(&self, state: AssertionState) -> usize {
        self.assertions.iter().filter(|a| a.state == state).count()
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
        if let Some(first) = self
            .assertions
            .iter()
            .find(|a| a.state == AssertionState::Fail)
        {
            let mut text = format!("failed: {}", named(first));
            let more = self.failed_count() - 1;
            if more > 0 {
                text.push_str(&format!(" and {more} more"));
            }
            problems.push(text);
        }
        problems.extend(self.fail_reasons.iter().cloned());
        if self.status() == Status::Degraded {
            let reasons: Vec<String> = self
                .assertions
                .iter()
                .filter(|a| a.state == AssertionState::Warn)
                .map(named)
                .chain(self.degrade_reasons.iter().cloned())
                .collect();
            problems.push(format!("degraded: {}", reasons.join("; ")));
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
        state: AssertionState,
        detail: String,
        duration_ms: Option<f64>,
    ) {
        let name = match &self.scope {
            Some(scope) => format!("{scope}: {name}"),
            None => name,
        };
        self.assertions.push(Assertion {
            name,
            state,
            detail,
            duration_ms,
        });
    }
}

fn state_of(passed: bool) -> AssertionState {
    if passed {
        AssertionState::Pass
    } else {
        AssertionState::Fail
    }
}

/// `name (detail)`, or `name` when there is no detail.
fn named(assertion: &Assertion) -> String {
    if assertion.detail.is_empty() {
        assertion.name.clone()
    } else {
        format!("{} ({})", assertion.name, assertion.detail)
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
        let name = format!(
            "json {} == {}",
            show_pointer(pointer),
            render_json(&expected)
        );
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
        let name = format!("json {} exists", show_pointer(pointer));
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

    /// The response has no header `name` (case-insensitive).
    pub fn header_absent(&mut self, name: &str) -> &mut Self {
        let present = self.response.header(name).is_some();
        let detail = self.header_detail(name);
        self.record(
            format!("header {} absent", name.to_ascii_lowercase()),
            !present,
            detail,
        )
    }

    /// No value of header `name` (case-insensitive) matches the regular
    /// expression `pattern`; a missing header fails, as blackbox_exporter's
    /// `fail_if_header_matches` without `allow_missing` (see
    /// [`header_not_matches_regex_if_present`](Self::header_not_matches_regex_if_present)).
    /// Compiled on every call, like [`body_matches`](Self::body_matches).
    #[cfg(any(feature = "regex", feature = "regex-lite"))]
    pub fn header_not_matches(&mut self, name: &str, pattern: &str) -> &mut Self {
        let assertion = format!(
            "header {} does not match /{pattern}/",
            name.to_ascii_lowercase()
        );
        self.compiled(pattern, assertion, |e, re| {
            e.header_not_matches_regex(name, re)
        })
    }

    /// No value of header `name` matches the compiled `re`; a missing
    /// header fails.
    pub fn header_not_matches_regex(&mut self, name: &str, re: &impl Pattern) -> &mut Self {
        self.header_rule(name, re, false, false)
    }

    /// Like [`header_matches_regex`](Self::header_matches_regex), but a
    /// missing header passes (blackbox_exporter's `allow_missing`).
    pub fn header_matches_regex_if_present(&mut self, name: &str, re: &impl Pattern) -> &mut Self {
        self.header_rule(name, re, true, true)
    }

    /// Like [`header_not_matches_regex`](Self::header_not_matches_regex),
    /// but a missing header passes (blackbox_exporter's `allow_missing`).
    pub fn header_not_matches_regex_if_present(
        &mut self,
        name: &str,
        re: &impl Pattern,
    ) -> &mut Self {
        self.header_rule(name, re, false, true)
    }

    /// The body is JSON and has no value at `pointer` (a key that must be
    /// absent).
    pub fn json_pointer_absent(&mut self, pointer: &str) -> &mut Self {
        let name = format!("json {} absent", show_pointer(pointer));
        let (passed, detail) = match self.json() {
            Err(e) => (false, e),
            Ok(doc) => match doc.pointer(pointer) {
                None => (true, format!("{} not found", show_pointer(pointer))),
                Some(actual) => (false, format!("got {}", render_json(actual))),
            },
        };
        self.record(name, passed, detail)
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

    /// Record a custom assertion about the response in the given state
    /// ([`AssertionState::Warn`] for a claim that held only partly, e.g. a
    /// health component reporting `degraded`).
    pub fn that_state(
        &mut self,
        name: impl Into<String>,
        state: AssertionState,
        detail: impl Into<String>,
    ) -> &mut Self {
        self.outcome
            .push_assertion(name.into(), state, detail.into(), None);
        self
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

    /// A header rule: some value matches (`must_match`) or none does; a
    /// missing header passes only when `allow_missing`.
    fn header_rule(
        &mut self,
        name: &str,
        re: &impl Pattern,
        must_match: bool,
        allow_missing: bool,
    ) -> &mut Self {
        let lower = name.to_ascii_lowercase();
        let verb = if must_match {
            "matches"
        } else {
            "does not match"
        };
        let mut assertion = format!("header {lower} {verb} /{}/", re.pattern());
        if allow_missing {
            assertion.push_str(" if present");
        }
        let mut values = self.response.header_all(name).peekable();
        let passed = if values.peek().is_none() {
            allow_missing
        } else {
            let any = values.any(|v| re.matches(v));
            any == must_match
        };
        let detail = self.header_detail(name);
        self.record(assertion, passed, detail)
    }

    fn record(&mut self, name: String, passed: bool, detail: String) -> &mut Self {
        self.outcome
            .push_assertion(name, state_of(passed), detail, None);
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

/// A JSON pointer as shown in assertion names: `$` for the document root
/// (the empty pointer).
pub(crate) fn show_pointer(pointer: &str) -> &str {
    if pointer.is_empty() { "$" } else { pointer }
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
            .map(|a| (a.name.as_str(), a.state == AssertionState::Pass))
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
        assert!(o.measurements()[0].labels.is_empty());
        assert!(o.labels().is_empty());
        assert_eq!(headlines.counted(), "up");
        assert_eq!(headlines.per_target(), "up");
        assert_eq!(headlines.joined(), "up");
        assert_eq!(headlines.entries(), [("a:1".to_string(), "up".to_string())]);
    }

    #[test]
    fn for_each_target_scopes_and_labels_each_of_several() {
        let mut o = Outcome::new();
        o.set_metric_labels([("outer", "1")]);
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
        assert_eq!(measured, ["connect_ms", "connect_ms"], "names are kept");
        let pair = |k: &str, v: &str| (k.to_string(), v.to_string());
        assert_eq!(
            o.measurements()[0].labels,
            [pair("outer", "1"), pair("name", "a:1")]
        );
        assert_eq!(
            o.measurements()[1].labels,
            [pair("outer", "1"), pair("name", "down:2")]
        );
        assert!(o.labels().is_empty(), "no result labels stand in for names");
        assert_eq!(headlines.counted(), "2 names (a:1: up; down:2: down)");
        assert_eq!(headlines.per_target(), "a:1: up; down:2: down");
        assert_eq!(headlines.joined(), "up; down");

        // The scope and labels in force before are back.
        o.assert("after", true, "").measure("after", 1.0, "");
        assert_eq!(o.assertions()[2].name, "after");
        assert_eq!(o.measurements()[2].labels, [pair("outer", "1")]);
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
    fn warnings_degrade_and_failures_beat_them() {
        let mut o = Outcome::new();
        o.assert("a", true, "")
            .assert_or_warn("soft", true, "fine")
            .record("cert", AssertionState::Warn, "9 days left");
        assert_eq!(o.status(), Status::Degraded);
        assert_eq!(
            (o.passed_count(), o.warned_count(), o.failed_count()),
            (2, 1, 0)
        );
        assert_eq!(
            o.summary(),
            "2/3 assertions passed; degraded: cert (9 days left)"
        );
        o.degrade("slow");
        assert_eq!(
            o.summary(),
            "2/3 assertions passed; degraded: cert (9 days left); slow"
        );
        o.assert("b", false, "broken");
        assert_eq!(o.status(), Status::Fail, "a failure beats a warning");
        assert_eq!(o.summary(), "2/4 assertions passed; failed: b (broken)");
        let r = o.into_result();
        assert_eq!(r.assertions[2].state, AssertionState::Warn);
    }

    #[test]
    fn measurements_carry_labels() {
        let mut o = Outcome::new();
        o.set_metric_labels([("target", "a")])
            .measure_labelled("phase_ms", 1.0, "ms", [("phase", "connect")])
            .set_metric_labels(Vec::<(String, String)>::new())
            .measure("plain", 2.0, "");
        let pair = |k: &str, v: &str| (k.to_string(), v.to_string());
        assert_eq!(
            o.measurements()[0].labels,
            [pair("target", "a"), pair("phase", "connect")]
        );
        assert!(o.measurements()[1].labels.is_empty());
    }

    fn tls_info() -> TlsInfo {
        use crate::tls::{Certificate, Verdict};
        let cert = Certificate {
            subject: "CN=a.test".into(),
            issuer: "CN=Test CA".into(),
            sans: vec!["a.test".into(), "127.0.0.1".into()],
            serial: "00a3f1".into(),
            not_before_unix_ms: 0,
            not_after_unix_ms: 1_900_000_000_000,
            signature_algorithm: "ecdsa-with-SHA256".into(),
            key_type: "EC".into(),
            key_bits: 256,
            sha256_fingerprint: "ab".repeat(32),
        };
        TlsInfo {
            version: "TLSv1.3".into(),
            cipher_suite: "TLS13_AES_128_GCM_SHA256".into(),
            alpn: Some("h2".into()),
            chain: vec![cert.clone()],
            earliest_expiry_unix_ms: Some(1_900_000_000_000),
            verdict: Verdict::Valid,
            verified_chain: vec![cert],
            verified_expiry_unix_ms: Some(1_800_000_000_000),
        }
    }

    #[test]
    fn tls_measurements_use_blackbox_names() {
        let mut o = Outcome::new();
        o.measure_tls(&tls_info());
        let m = o.measurements();
        let names: Vec<&str> = m.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "probe_ssl_earliest_cert_expiry",
                "probe_ssl_last_chain_expiry_timestamp_seconds",
                "probe_tls_version_info",
                "probe_ssl_last_chain_info",
            ]
        );
        assert_eq!(m[0].value, 1_900_000_000.0);
        assert_eq!(m[1].value, 1_800_000_000.0);
        assert_eq!(
            m[2].labels,
            [("version".to_string(), "TLS 1.3".to_string())]
        );
        let info: Vec<(&str, &str)> = m[3]
            .labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert!(
            info.contains(&("serialnumber", "00a3f1")),
            "leading zeros kept"
        );
        assert!(info.contains(&("subjectalternative", "a.test,127.0.0.1")));
        assert!(info.contains(&("subject", "CN=a.test")));
    }

    /// Regression: a failed exchange used to record nothing; it keeps the
    /// partial response's status, the redirects and the phases.
    #[test]
    fn a_fetch_error_keeps_what_is_known() {
        use crate::NetError;
        use crate::http::{FetchError, Redirect};
        let mut partial = FetchError::new(NetError::TooManyRedirects(1));
        partial.response = Some(Box::new(Response::mock(302, &[("location", "/b")], "")));
        partial.redirects = vec![Redirect {
            url: "http://a/".into(),
            status: 302,
            location: "/a".into(),
        }];
        partial.timings.connect_ms = 1.5;
        partial.tls = Some(Box::new(tls_info()));
        let mut o = Outcome::new();
        o.measure_fetch_error(&partial);
        let get = |o: &Outcome, name: &str| {
            o.measurements()
                .iter()
                .find(|m| m.name == name)
                .map(|m| m.value)
        };
        assert_eq!(get(&o, "http_status_code"), Some(302.0));
        assert_eq!(get(&o, "http_redirects"), Some(1.0));
        assert_eq!(get(&o, "http_connect_ms"), Some(1.5));
        assert_eq!(
            get(&o, "probe_ssl_earliest_cert_expiry"),
            Some(1_900_000_000.0)
        );
        assert_eq!(
            partial.headline(),
            "302 Found, then too many redirects: more than 1"
        );

        let refused = FetchError::new(NetError::Connect("refused".into()));
        let mut o = Outcome::new();
        o.measure_fetch_error(&refused);
        assert_eq!(get(&o, "http_status_code"), Some(0.0), "blackbox reports 0");
        assert_eq!(get(&o, "probe_ssl_earliest_cert_expiry"), None);
        assert_eq!(refused.headline(), "request failed (connect)");
        assert_eq!(refused.to_string(), "connect: refused");
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
        assert_eq!(a.state, AssertionState::Fail);
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
        assert_eq!(a.state, AssertionState::Fail);
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
            .header_matches("server", "^apache")
            .header_not_matches("server", "^apache")
            .header_not_matches("server", "^nginx")
            .header_not_matches("x-missing", "x");
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
                ("header server does not match /^apache/", true),
                ("header server does not match /^nginx/", false),
                ("header x-missing does not match /x/", false),
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

    /// blackbox_exporter's `fail_if_header_matches` /
    /// `fail_if_header_not_matches` with and without `allow_missing`, and a
    /// header that must be absent.
    #[cfg(feature = "regex-lite")]
    #[test]
    fn header_rules_follow_blackbox() {
        use regex_lite::Regex;
        let re = |p: &str| Regex::new(p).unwrap();
        let r = Response::mock(200, &[("x-v", "a"), ("x-v", "b")], "");
        let mut o = Outcome::new();
        o.expect(&r)
            .header_absent("x-v")
            .header_absent("server")
            .header_not_matches_regex("x-v", &re("^b$"))
            .header_not_matches_regex("x-v", &re("^c$"))
            .header_matches_regex("x-v", &re("^b$"))
            .header_matches_regex_if_present("server", &re("nginx"))
            .header_not_matches_regex_if_present("server", &re("nginx"))
            .header_matches_regex("server", &re("nginx"))
            .header_not_matches_regex("server", &re("nginx"));
        assert_eq!(
            names(&o),
            vec![
                ("header x-v absent", false),
                ("header server absent", true),
                ("header x-v does not match /^b$/", false),
                ("header x-v does not match /^c$/", true),
                ("header x-v matches /^b$/", true),
                ("header server matches /nginx/ if present", true),
                ("header server does not match /nginx/ if present", true),
                ("header server matches /nginx/", false),
                ("header server does not match /nginx/", false),
            ]
        );
        assert_eq!(o.assertions()[0].detail, "got \"a\", \"b\"");
    }

    #[test]
    fn json_absent_keys_and_the_root() {
        let r = Response::mock(200, &[], r#"{"a":1}"#);
        let mut o = Outcome::new();
        o.expect(&r)
            .json_pointer_absent("/b")
            .json_pointer_absent("/a")
            .json_pointer_exists("")
            .json_pointer_eq("", json!({"a": 1}));
        assert_eq!(
            names(&o),
            vec![
                ("json /b absent", true),
                ("json /a absent", false),
                ("json $ exists", true),
                ("json $ == {\"a\":1}", true),
            ]
        );
        assert_eq!(o.assertions()[1].detail, "got 1");
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
