//! blackbox_exporter parity: its prober scenarios (`prober/http_test.go`,
//! `tcp_test.go`, `dns_test.go` and the TLS metrics), replayed side by side
//! against the real `prometheus-blackbox-exporter` (Debian package) and the
//! official checks, on loopback servers.
//!
//! Every scenario is a blackbox module (YAML) and the equivalent Vantage
//! check (`vantage.toml`). One blackbox_exporter process holds every module
//! and is probed with `/probe?module=M&target=T`; the Vantage check is
//! loaded from its configuration, run by the runtime, recorded on a
//! [`Board`] and rendered by the daemon's [`Metrics`] sink, so both sides are
//! compared on the metric text a scrape would see. Per scenario the test
//! asserts the same `probe_success` (and the verdict the scenario expects)
//! and the same value of the scenario's metrics; where Vantage deliberately
//! differs, the comparison says so and asserts Vantage's own value.
//!
//! The checks' measurements are exported as
//! `vantage_check_measurement{measurement="…"}`; blackbox's
//! `probe_http_redirects`, `probe_http_uncompressed_body_length` and
//! `probe_dns_*_rrs` are compared with them (see the table in
//! `checks/README.md`).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::Path as UrlPath;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{any, get};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, SanType};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use vantage::config;
use vantage::result::{CheckResult, CheckState, RunRecord};
use vantage::runtime::engine::EngineOptions;
use vantage::runtime::{LoadedCheck, RunSpec, Runtime};
use vantage::sinks::board::{Board, CheckView};
use vantage::sinks::metrics::Metrics;

use crate::dns_server;
use crate::servers::{free_port, http_get};
use crate::support::{self, wasm};
use crate::tls_servers::{self, LOCAL};

/// The blackbox_exporter binary of the Debian package.
const BLACKBOX_BIN: &str = "/usr/bin/prometheus-blackbox-exporter";

// ---------------------------------------------------------------------------
// The metric text of both sides.

/// One sample: metric name, labels, value.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parse the Prometheus / OpenMetrics text format (comments skipped).
fn parse_samples(text: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (series, value) = match line.find('{') {
            Some(_) => {
                let close = line.rfind('}').unwrap_or_else(|| panic!("bad line {line}"));
                (&line[..=close], line[close + 1..].trim())
            }
            None => line
                .split_once(' ')
                .unwrap_or_else(|| panic!("bad line {line}")),
        };
        let value = value.split_whitespace().next().unwrap_or("");
        let value = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().unwrap_or(f64::NAN),
        };
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => (name, parse_labels(rest.trim_end_matches('}'))),
            None => (series, BTreeMap::new()),
        };
        out.push(Sample {
            name: name.trim().to_string(),
            labels,
            value,
        });
    }
    out
}

/// `a="x",b="y\"z"` → {a: x, b: y"z}.
fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut chars = text.chars().peekable();
    loop {
        let key: String = chars
            .by_ref()
            .take_while(|c| *c != '=')
            .collect::<String>()
            .trim_start_matches(',')
            .trim()
            .to_string();
        if key.is_empty() {
            return labels;
        }
        assert_eq!(chars.next(), Some('"'), "bad labels {text}");
        let mut value = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(other) => value.push(other),
                    None => break,
                },
                '"' => break,
                c => value.push(c),
            }
        }
        labels.insert(key, value);
    }
}

/// A series to read: a metric name and labels it must carry.
#[derive(Debug, Clone, Copy)]
struct Series {
    name: &'static str,
    labels: &'static [(&'static str, &'static str)],
}

/// `probe_…` without labels.
const fn metric(name: &'static str) -> Series {
    Series { name, labels: &[] }
}

/// The samples of one side of a scenario.
struct Scrape {
    side: &'static str,
    samples: Vec<Sample>,
    text: String,
}

impl Scrape {
    fn new(side: &'static str, text: String) -> Scrape {
        // What a failure shows: the probe's series and the check's results.
        let shown = text
            .lines()
            .filter(|l| {
                l.starts_with("probe_")
                    || l.starts_with("vantage_check_measurement")
                    || l.starts_with("vantage_check_assertion")
            })
            .collect::<Vec<_>>()
            .join("\n");
        Scrape {
            side,
            samples: parse_samples(&text),
            text: shown,
        }
    }

    /// Samples of `series` (and `measurement`, if given).
    fn all(&self, series: &Series, measurement: Option<&str>) -> Vec<&Sample> {
        self.samples
            .iter()
            .filter(|s| s.name == series.name)
            .filter(|s| {
                series
                    .labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .filter(|s| {
                measurement
                    .is_none_or(|m| s.labels.get("measurement").map(String::as_str) == Some(m))
            })
            .collect()
    }

    /// The one sample of `series`, or why not.
    fn one(&self, series: &Series, measurement: Option<&str>) -> Result<&Sample, String> {
        match self.all(series, measurement).as_slice() {
            [one] => Ok(one),
            [] => Err(format!(
                "{}: no sample of {}{} in:\n{}",
                self.side,
                series.name,
                measurement
                    .map(|m| format!("{{measurement={m}}}"))
                    .unwrap_or_default(),
                self.text
            )),
            many => Err(format!(
                "{}: several samples of {series:?}: {many:?}",
                self.side
            )),
        }
    }
}

// ---------------------------------------------------------------------------
// Scenarios.

/// What to compare in a scenario, beyond `probe_success`.
#[derive(Debug, Clone)]
enum Compare {
    /// The same value on both sides (blackbox series, Vantage series and
    /// measurement name if it is a measurement), equal to `value` when given.
    Same {
        bb: &'static str,
        vantage: &'static str,
        measurement: Option<&'static str>,
        value: Option<f64>,
    },
    /// The same label value of an info metric on both sides (same name).
    Label {
        metric: &'static str,
        label: &'static str,
    },
    /// The same set of values of `label` over a family (e.g. the phases).
    LabelSet {
        metric: &'static str,
        label: &'static str,
    },
    /// Vantage deliberately differs: blackbox's value and Vantage's, and why.
    Differs {
        bb: &'static str,
        bb_value: f64,
        vantage: &'static str,
        measurement: Option<&'static str>,
        vantage_value: f64,
        why: &'static str,
    },
}

use Compare::{Differs, Label, LabelSet, Same};

/// Why `http_redirects` is one less than `probe_http_redirects` when a
/// redirect is not followed.
const REDIRECTS_FOLLOWED: &str = "Vantage counts the redirects it followed; blackbox_exporter \
     (Go's CheckRedirect `len(via)`) also counts the redirect it refused: the one past the cap, \
     or the first one with redirects off";

/// The same `probe_*` metric on both sides.
fn same(name: &'static str, value: f64) -> Compare {
    Same {
        bb: name,
        vantage: name,
        measurement: None,
        value: Some(value),
    }
}

/// A blackbox metric against a Vantage measurement.
fn same_as_measurement(bb: &'static str, m: &'static str, value: f64) -> Compare {
    Same {
        bb,
        vantage: "vantage_check_measurement",
        measurement: Some(m),
        value: Some(value),
    }
}

/// The same value, whatever it is (timestamps).
fn same_value(name: &'static str) -> Compare {
    Same {
        bb: name,
        vantage: name,
        measurement: None,
        value: None,
    }
}

/// One scenario: a blackbox module and target, the Vantage check, the
/// expected verdict and what else must match.
struct Scenario {
    /// Module and check name.
    name: &'static str,
    /// The blackbox module, as YAML under `modules.<name>`.
    module: String,
    /// blackbox's `target` parameter.
    bb_target: String,
    /// The component (`http`, `tcp`, `tls`, `dns`).
    component: &'static str,
    /// The Vantage `[[check]]` body after `name`, `component` and `every`
    /// (targets, allow, `[check.config]`).
    check: String,
    /// Expected `probe_success` on both sides.
    success: bool,
    /// Further comparisons.
    compare: Vec<Compare>,
}

/// An `http` module: `prober: http`, a 2 s timeout and `http:` settings
/// (indented by 4 under `http:`; may be empty).
fn http_module(http: &str) -> String {
    module("http", "2s", http)
}

fn module(prober: &str, timeout: &str, settings: &str) -> String {
    let mut m = format!("prober: {prober}\ntimeout: {timeout}\n");
    if !settings.trim().is_empty() {
        m.push_str(&format!("{prober}:\n"));
        for line in settings.trim_matches('\n').lines() {
            m.push_str(&format!("  {line}\n"));
        }
    }
    m
}

/// The Vantage check body for `target` with `[check.config]` lines.
fn check_body(target: &str, allow: &str, config: &str) -> String {
    let targets = if target.is_empty() {
        "targets = []".to_string()
    } else {
        format!("targets = [{target:?}]")
    };
    format!("{targets}\nallow = [{allow:?}]\nallow_insecure = false\n[check.config]\n{config}\n")
}

/// An `http` scenario against `url` with Vantage config `config`.
fn http_scenario(
    name: &'static str,
    url: &str,
    bb: &str,
    config: &str,
    success: bool,
    compare: Vec<Compare>,
) -> Scenario {
    Scenario {
        name,
        module: http_module(bb),
        bb_target: url.to_string(),
        component: "http",
        check: check_body(url, "{target}", config),
        success,
        compare,
    }
}

/// A TOML literal multi-line string.
fn toml_pem(pem: &str) -> String {
    format!("'''\n{pem}'''")
}

// ---------------------------------------------------------------------------
// The HTTP target (routes for the scenarios the shared target app lacks).

const GZIP_TEXT: &str = "Hello gzip, decoded";

fn gzip(text: &str) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(text.as_bytes()).unwrap();
    enc.finish().unwrap()
}

fn target_app() -> Router {
    Router::new()
        .route(
            "/status/{code}",
            get(|UrlPath(code): UrlPath<u16>| async move {
                StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST)
            }),
        )
        // `/redirect/N`: N redirects (302) then 200.
        .route(
            "/redirect/{n}",
            get(|UrlPath(n): UrlPath<u32>| async move {
                if n == 0 {
                    "landed".into_response()
                } else {
                    (
                        StatusCode::FOUND,
                        [(header::LOCATION, format!("/redirect/{}", n - 1))],
                    )
                        .into_response()
                }
            }),
        )
        // blackbox's TestCookieJar: a cookie set on a redirect must come back.
        .route(
            "/cookie",
            get(|| async {
                (
                    [(header::SET_COOKIE, "somecookie=cookie; Path=/")],
                    Redirect::to("/cookie-check"),
                )
            }),
        )
        .route(
            "/cookie-check",
            get(|headers: HeaderMap| async move {
                let ok = headers
                    .get_all(header::COOKIE)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .any(|v| v.split("; ").any(|c| c == "somecookie=cookie"));
                if ok {
                    StatusCode::OK
                } else {
                    StatusCode::BAD_REQUEST
                }
            }),
        )
        // TestPost / TestBody: the method and the body must arrive.
        .route(
            "/post",
            any(|method: Method, body: Bytes| async move {
                if method == Method::POST && body.as_ref() == b"ping" {
                    StatusCode::OK
                } else {
                    StatusCode::BAD_REQUEST
                }
            }),
        )
        // TestBasicAuth / TestBearerToken / TestHTTPHeaders.
        .route(
            "/auth",
            get(|headers: HeaderMap| async move {
                // base64("username:password")
                want(&headers, "authorization", "Basic dXNlcm5hbWU6cGFzc3dvcmQ=")
            }),
        )
        .route(
            "/bearer",
            get(|headers: HeaderMap| async move { want(&headers, "authorization", "Bearer mysecret") }),
        )
        .route(
            "/headers",
            get(|headers: HeaderMap| async move { want(&headers, "x-probe", "yes") }),
        )
        .route(
            "/text",
            get(|| async {
                (
                    [
                        (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                        (header::SERVER, "nginx/1.25"),
                    ],
                    "Hello World",
                )
            }),
        )
        .route(
            "/json",
            get(|| async { axum::Json(serde_json::json!({ "status": "ok", "count": 3 })) }),
        )
        // Always gzip, whatever was asked (blackbox decodes blindly).
        .route(
            "/gzip",
            get(|| async {
                Response::builder()
                    .header(header::CONTENT_ENCODING, "gzip")
                    .header(header::CONTENT_TYPE, "text/plain")
                    .body(Body::from(gzip(GZIP_TEXT)))
                    .unwrap()
            }),
        )
        .route("/big", get(|| async { "x".repeat(2048) }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(1500)).await;
                "late"
            }),
        )
}

/// 200 if header `name` is `value`, else 401.
fn want(headers: &HeaderMap, name: &str, value: &str) -> StatusCode {
    if headers.get(name).and_then(|v| v.to_str().ok()) == Some(value) {
        StatusCode::OK
    } else {
        StatusCode::UNAUTHORIZED
    }
}

async fn start_target() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, target_app()).await.unwrap() });
    format!("http://{addr}")
}

// ---------------------------------------------------------------------------
// blackbox_exporter.

/// A running blackbox_exporter, killed (by PID) on drop.
struct Blackbox {
    child: std::process::Child,
    port: u16,
    log: std::path::PathBuf,
}

impl Drop for Blackbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Blackbox {
    /// Start one on a free port with `config` (YAML); wait until it answers.
    fn start(dir: &Path, config: &str) -> Blackbox {
        assert!(
            Path::new(BLACKBOX_BIN).exists(),
            "{BLACKBOX_BIN} is missing: install the Debian package `prometheus-blackbox-exporter` \
             (`apt-get install -y prometheus-blackbox-exporter`, or run `bash scripts/test-all.sh`, \
             which installs it)"
        );
        let file = dir.join("blackbox.yml");
        std::fs::write(&file, config).unwrap();
        let port = free_port();
        let log = dir.join("blackbox.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = std::process::Command::new(BLACKBOX_BIN)
            .arg(format!("--config.file={}", file.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=debug")
            .stdin(std::process::Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {BLACKBOX_BIN}: {e}"));
        let mut bb = Blackbox { child, port, log };
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = bb.child.try_wait() {
                panic!("blackbox_exporter exited ({status}):\n{}", bb.log_text());
            }
            if matches!(
                http_get(&format!("http://127.0.0.1:{port}/-/healthy")),
                Ok((200, _))
            ) {
                return bb;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "blackbox_exporter not up after 10 s:\n{}",
                bb.log_text()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `/probe?module=M&target=T`: its metric text.
    fn probe(&self, module: &str, target: &str) -> String {
        let mut url = url::Url::parse(&format!("http://127.0.0.1:{}/probe", self.port)).unwrap();
        url.query_pairs_mut()
            .append_pair("module", module)
            .append_pair("target", target)
            .append_pair("debug", "false");
        let (status, body) =
            http_get(url.as_str()).unwrap_or_else(|e| panic!("probing {module}: {e}"));
        assert_eq!(status, 200, "probe {module}: {body}\n{}", self.log_text());
        body
    }
}

// ---------------------------------------------------------------------------
// Vantage: the configuration, the runtime and the metrics sink.

/// Load the check as the daemon would (from `vantage.toml` text), run it
/// once, record it on a board and render `/metrics`.
async fn run_vantage(
    runtime: &Runtime,
    loaded: &LoadedCheck,
    dir: &Path,
    scenario: &Scenario,
) -> (CheckResult, String) {
    let text = format!(
        "[[check]]\nname = \"{}\"\ncomponent = \"{}\"\nevery = \"1m\"\ntimeout = \"5s\"\n{}",
        scenario.name.replace('_', "-"),
        wasm(scenario.component).display(),
        scenario.check
    );
    let cfg = config::from_str(&text, &dir.join(format!("{}.toml", scenario.name)))
        .unwrap_or_else(|e| panic!("{}: {e}\n{text}", scenario.name));
    let spec = cfg.checks.into_iter().next().unwrap();
    let run = RunSpec::for_check(&spec, "test", Arc::default());
    let result = runtime.run(loaded, &run).await;
    let board = Board::default();
    board.insert(CheckView {
        name: spec.name.clone(),
        last: Some(Arc::new(RunRecord {
            planned_unix_ms: result.started_unix_ms,
            result: result.clone(),
            lateness_ms: 0.0,
            retries: Vec::new(),
            state: CheckState::Up,
            transition: None,
            maintenance: None,
            severity: "critical".into(),
            component: None,
        })),
        ..Default::default()
    });
    let metrics = Metrics::new(board, "test");
    (result, metrics.render())
}

/// Compare one scenario's two scrapes; the mismatches, as lines.
fn compare(s: &Scenario, bb: &Scrape, v: &Scrape, result: &CheckResult) -> Vec<String> {
    let mut bad = Vec::new();
    let context = || {
        format!(
            "\n  vantage result: {}",
            serde_json::to_string(result).unwrap_or_default()
        )
    };
    let success = |scrape: &Scrape| {
        scrape
            .one(&metric("probe_success"), None)
            .map(|s| s.value == 1.0)
    };
    match (success(bb), success(v)) {
        (Ok(b), Ok(vv)) => {
            if b != s.success {
                bad.push(format!(
                    "{}: blackbox probe_success {} (expected {})\n{}",
                    s.name, b as u8, s.success as u8, bb.text
                ));
            }
            if vv != s.success {
                bad.push(format!(
                    "{}: vantage probe_success {} (expected {}){}",
                    s.name,
                    vv as u8,
                    s.success as u8,
                    context()
                ));
            }
        }
        (b, vv) => bad.push(format!("{}: {b:?} / {vv:?}", s.name)),
    }
    for c in &s.compare {
        match c {
            Same {
                bb: bname,
                vantage,
                measurement,
                value,
            } => {
                let b = bb.one(&metric(bname), None);
                let vv = v.one(&metric(vantage), *measurement);
                match (b, vv) {
                    (Ok(b), Ok(vv)) => {
                        if b.value != vv.value {
                            bad.push(format!(
                                "{}: {bname} {} (blackbox) != {vantage}{} {} (vantage){}",
                                s.name,
                                b.value,
                                measurement.map(|m| format!("[{m}]")).unwrap_or_default(),
                                vv.value,
                                context()
                            ));
                        } else if let Some(want) = value
                            && b.value != *want
                        {
                            bad.push(format!(
                                "{}: {bname} is {} on both sides, expected {want}",
                                s.name, b.value
                            ));
                        }
                    }
                    (b, vv) => {
                        for e in [b.err(), vv.err()].into_iter().flatten() {
                            bad.push(format!("{}: {e}{}", s.name, context()));
                        }
                    }
                }
            }
            Label { metric: m, label } => {
                let get = |scrape: &Scrape| -> Result<String, String> {
                    let one = scrape.one(&metric(m), None)?;
                    one.labels
                        .get(*label)
                        .cloned()
                        .ok_or_else(|| format!("{}: {m} has no label {label}", scrape.side))
                };
                match (get(bb), get(v)) {
                    (Ok(b), Ok(vv)) if b == vv => {}
                    (b, vv) => bad.push(format!(
                        "{}: {m}{{{label}}}: blackbox {b:?} != vantage {vv:?}",
                        s.name
                    )),
                }
            }
            LabelSet { metric: m, label } => {
                let set = |scrape: &Scrape| -> Vec<String> {
                    let mut l: Vec<String> = scrape
                        .all(&metric(m), None)
                        .iter()
                        .filter_map(|s| s.labels.get(*label).cloned())
                        .collect();
                    l.sort();
                    l
                };
                let (b, vv) = (set(bb), set(v));
                if b != vv || b.is_empty() {
                    bad.push(format!(
                        "{}: {m} {label}s: blackbox {b:?} != vantage {vv:?}",
                        s.name
                    ));
                }
            }
            Differs {
                bb: bname,
                bb_value,
                vantage,
                measurement,
                vantage_value,
                why,
            } => {
                let b = bb.one(&metric(bname), None).map(|s| s.value);
                let vv = v.one(&metric(vantage), *measurement).map(|s| s.value);
                if b.as_ref().ok() != Some(bb_value) || vv.as_ref().ok() != Some(vantage_value) {
                    bad.push(format!(
                        "{}: expected blackbox {bname} {bb_value} and vantage {vantage} {vantage_value} \
                         ({why}); got {b:?} / {vv:?}{}",
                        s.name,
                        context()
                    ));
                }
            }
        }
    }
    bad
}

// ---------------------------------------------------------------------------
// TLS material.

/// A self-signed certificate marked as a CA (what `openssl req -x509`
/// makes, and blackbox_exporter's own test certificate) for `names`.
fn self_signed_ca(names: &[&str]) -> (String, CertificateDer<'static>, PrivateKeyDer<'static>) {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    // The usual RDN order (C, O, CN), as CAs and `openssl req` write it.
    p.distinguished_name.push(DnType::CountryName, "DE");
    p.distinguished_name
        .push(DnType::OrganizationName, "Vantage Tests");
    p.distinguished_name
        .push(DnType::CommonName, "self-signed-ca");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    for n in names {
        p.subject_alt_names.push(match n.parse() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName((*n).try_into().unwrap()),
        });
    }
    let key = KeyPair::generate().unwrap();
    let cert = p.self_signed(&key).unwrap();
    (
        cert.pem(),
        cert.der().clone(),
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    )
}

// ---------------------------------------------------------------------------
// The test.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blackbox_parity_scenarios() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let base = start_target().await;
    let url = |path: &str| format!("{base}{path}");

    // TLS: a root, an intermediate expiring in 60 days, a leaf in 90, and a
    // stray certificate (expiring in 5 days) the server also presents but no
    // path uses: blackbox's earliest expiry counts it, the last chain not.
    let root = tls_servers::root("Parity Root");
    let inter = tls_servers::intermediate("Parity Intermediate", &root, -1, 60);
    let stray = tls_servers::intermediate("Parity Stray", &root, -1, 5);
    let leaf = tls_servers::leaf(LOCAL, &inter, -1, 90);
    let chain = vec![leaf.der.clone(), inter.der.clone()];
    let https = tls_servers::start_tls(chain.clone(), leaf.key.clone_key()).await;
    let leaf2 = tls_servers::leaf(LOCAL, &inter, -1, 90);
    let https_stray = tls_servers::start_tls(
        vec![leaf2.der.clone(), inter.der.clone(), stray.der.clone()],
        leaf2.key.clone_key(),
    )
    .await;
    let named = tls_servers::leaf(&["parity.vantage.test"], &inter, -1, 90);
    let https_named = tls_servers::start_tls(
        vec![named.der.clone(), inter.der.clone()],
        named.key.clone_key(),
    )
    .await;
    let (ss_pem, ss_der, ss_key) = self_signed_ca(LOCAL);
    let https_self = tls_servers::start_tls(vec![ss_der], ss_key).await;
    let root_file = dir.path().join("root.pem");
    std::fs::write(&root_file, &root.pem).unwrap();
    let ss_file = dir.path().join("self.pem");
    std::fs::write(&ss_file, &ss_pem).unwrap();
    let root_pem = toml_pem(&root.pem);
    let ca_file = root_file.display().to_string();
    let smtp =
        tls_servers::start_starttls(&tls_servers::SMTP, chain.clone(), leaf.key.clone_key()).await;
    let banner = tls_servers::start_banner("SSH-2.0-parity\r\n", "PONG ").await;
    let closed = free_port();
    let dns = dns_server::start().await;

    let tls_metrics = || {
        vec![
            same_value("probe_ssl_earliest_cert_expiry"),
            same_value("probe_ssl_last_chain_expiry_timestamp_seconds"),
            Label {
                metric: "probe_tls_version_info",
                label: "version",
            },
            Label {
                metric: "probe_ssl_last_chain_info",
                label: "fingerprint_sha256",
            },
            Label {
                metric: "probe_ssl_last_chain_info",
                label: "subject",
            },
            Label {
                metric: "probe_ssl_last_chain_info",
                label: "subjectalternative",
            },
        ]
    };
    // The chain of the shared TLS helpers has CN before O in its DNs.
    let same_dn = |label: &'static str| Label {
        metric: "probe_ssl_last_chain_info",
        label,
    };

    let mut scenarios = vec![
        // TestHTTPStatusCodes: default 2xx, then explicit lists.
        http_scenario(
            "status_200",
            &url("/status/200"),
            "",
            "",
            true,
            vec![same("probe_http_status_code", 200.0)],
        ),
        http_scenario(
            "status_299",
            &url("/status/299"),
            "",
            "",
            true,
            vec![same("probe_http_status_code", 299.0)],
        ),
        http_scenario(
            "status_300",
            &url("/status/300"),
            "",
            "",
            false,
            vec![same("probe_http_status_code", 300.0)],
        ),
        http_scenario(
            "status_404",
            &url("/status/404"),
            "",
            "",
            false,
            vec![same("probe_http_status_code", 404.0)],
        ),
        http_scenario(
            "status_404_listed",
            &url("/status/404"),
            "valid_status_codes: [200, 404]",
            "expect.status = [200, 404]",
            true,
            vec![same("probe_http_status_code", 404.0)],
        ),
        http_scenario(
            "status_201_unlisted",
            &url("/status/201"),
            "valid_status_codes: [200, 404]",
            "expect.status = [200, 404]",
            false,
            vec![same("probe_http_status_code", 201.0)],
        ),
        // TestValidHTTPVersion.
        http_scenario(
            "version_11",
            &url("/status/200"),
            "valid_http_versions: [HTTP/1.1]",
            "expect.http_version = [\"1.1\"]",
            true,
            vec![],
        ),
        http_scenario(
            "version_2_only",
            &url("/status/200"),
            "valid_http_versions: [HTTP/2.0]",
            "expect.http_version = [\"2\"]",
            false,
            vec![],
        ),
        // TestRedirectFollowed.
        http_scenario(
            "redirect_followed",
            &url("/redirect/3"),
            "",
            "",
            true,
            vec![
                same("probe_http_status_code", 200.0),
                same_as_measurement("probe_http_redirects", "http_redirects", 3.0),
            ],
        ),
        // TestRedirectNotFollowed.
        http_scenario(
            "redirect_not_followed",
            &url("/redirect/3"),
            "follow_redirects: false\nvalid_status_codes: [302]",
            "follow_redirects = false\nexpect.status = [302]",
            true,
            vec![
                same("probe_http_status_code", 302.0),
                Differs {
                    bb: "probe_http_redirects",
                    bb_value: 1.0,
                    vantage: "vantage_check_measurement",
                    measurement: Some("http_redirects"),
                    vantage_value: 0.0,
                    why: REDIRECTS_FOLLOWED,
                },
            ],
        ),
        // TestRedirectionLimit: the 11th redirect ends the probe, with 302 kept.
        http_scenario(
            "redirect_cap",
            &url("/redirect/30"),
            "",
            "",
            false,
            vec![
                same("probe_http_status_code", 302.0),
                Differs {
                    bb: "probe_http_redirects",
                    bb_value: 11.0,
                    vantage: "vantage_check_measurement",
                    measurement: Some("http_redirects"),
                    vantage_value: 10.0,
                    why: REDIRECTS_FOLLOWED,
                },
            ],
        ),
        // TestCookieJar.
        http_scenario(
            "cookies",
            &url("/cookie"),
            "",
            "",
            true,
            vec![same("probe_http_status_code", 200.0)],
        ),
        // TestPost / TestBody.
        http_scenario(
            "post_body",
            &url("/post"),
            "method: POST\nbody: ping",
            "method = \"POST\"\nbody = \"ping\"",
            true,
            vec![same("probe_http_status_code", 200.0)],
        ),
        // TestBasicAuth.
        http_scenario(
            "basic_auth",
            &url("/auth"),
            "basic_auth:\n  username: username\n  password: password",
            "basic_auth.username = \"username\"\nbasic_auth.password = \"password\"",
            true,
            vec![same("probe_http_status_code", 200.0)],
        ),
        http_scenario(
            "basic_auth_wrong",
            &url("/auth"),
            "basic_auth:\n  username: username\n  password: wrong",
            "basic_auth.username = \"username\"\nbasic_auth.password = \"wrong\"",
            false,
            vec![same("probe_http_status_code", 401.0)],
        ),
        // TestBearerToken.
        http_scenario(
            "bearer_token",
            &url("/bearer"),
            "bearer_token: mysecret",
            "bearer_token = \"mysecret\"",
            true,
            vec![same("probe_http_status_code", 200.0)],
        ),
        // TestHTTPHeaders.
        http_scenario(
            "request_headers",
            &url("/headers"),
            "headers:\n  X-Probe: \"yes\"",
            "headers.X-Probe = \"yes\"",
            true,
            vec![same("probe_http_status_code", 200.0)],
        ),
        // TestFailIfBodyMatchesRegexp / TestFailIfBodyNotMatchesRegexp.
        http_scenario(
            "body_must_match",
            &url("/text"),
            "fail_if_body_not_matches_regexp: [\"Hello (World|there)\"]",
            "expect.body_matches = [\"Hello (World|there)\"]",
            true,
            vec![],
        ),
        http_scenario(
            "body_must_match_missing",
            &url("/text"),
            "fail_if_body_not_matches_regexp: [\"Goodbye\"]",
            "expect.body_matches = [\"Goodbye\"]",
            false,
            vec![same("probe_http_status_code", 200.0)],
        ),
        http_scenario(
            "body_must_not_match",
            &url("/text"),
            "fail_if_body_matches_regexp: [\"World\"]",
            "expect.body_not_matches = [\"World\"]",
            false,
            vec![],
        ),
        // TestFailIfHeaderMatchesRegexp / TestFailIfHeaderNotMatchesRegexp.
        http_scenario(
            "header_matches",
            &url("/text"),
            "fail_if_header_matches:\n  - header: Server\n    regexp: nginx",
            "expect.headers_not_matching.Server = \"nginx\"",
            false,
            vec![],
        ),
        http_scenario(
            "header_not_matches",
            &url("/text"),
            "fail_if_header_not_matches:\n  - header: Content-Type\n    regexp: \"text/plain\"",
            "expect.headers.Content-Type = \"text/plain\"",
            true,
            vec![],
        ),
        http_scenario(
            "header_missing",
            &url("/text"),
            "fail_if_header_not_matches:\n  - header: X-Absent\n    regexp: \".*\"",
            "expect.headers.X-Absent = \".*\"",
            false,
            vec![],
        ),
        http_scenario(
            "header_missing_allowed",
            &url("/text"),
            "fail_if_header_matches:\n  - header: X-Absent\n    regexp: \".*\"\n    allow_missing: true",
            "expect.headers_not_matching.X-Absent = \".*\"\nexpect.headers_allow_missing = [\"X-Absent\"]",
            true,
            vec![],
        ),
        // JSON conditions: blackbox 0.23 has no CEL (`fail_if_body_json_*`
        // came later), so its side is the equivalent body regex.
        http_scenario(
            "json_ok",
            &url("/json"),
            "fail_if_body_not_matches_regexp: ['\"status\":\"ok\"']",
            "expect.json.\"/status\" = \"ok\"",
            true,
            vec![],
        ),
        http_scenario(
            "json_wrong",
            &url("/json"),
            "fail_if_body_not_matches_regexp: ['\"count\":5']",
            "expect.json.\"/count\" = \"== 5\"",
            false,
            vec![],
        ),
        // TestHandlingOfCompressionSetting.
        http_scenario(
            "compression_gzip",
            &url("/gzip"),
            "compression: gzip\nheaders:\n  Accept-Encoding: gzip\nfail_if_body_not_matches_regexp: [\"Hello gzip\"]",
            "compression = \"gzip\"\nexpect.body_matches = [\"Hello gzip\"]",
            true,
            vec![same_as_measurement(
                "probe_http_uncompressed_body_length",
                "http_body_bytes",
                GZIP_TEXT.len() as f64,
            )],
        ),
        http_scenario(
            "compression_mismatch",
            &url("/text"),
            "compression: gzip\nheaders:\n  Accept-Encoding: gzip",
            "compression = \"gzip\"",
            false,
            vec![],
        ),
        // TestMaxResponseLength.
        http_scenario(
            "body_limit_exceeded",
            &url("/big"),
            "body_size_limit: 1KiB",
            "max_body_bytes = \"1KiB\"",
            false,
            vec![same("probe_http_status_code", 200.0)],
        ),
        http_scenario(
            "body_limit_ok",
            &url("/big"),
            "body_size_limit: 4KiB",
            "max_body_bytes = \"4KiB\"",
            true,
            vec![same_as_measurement(
                "probe_http_uncompressed_body_length",
                "http_body_bytes",
                2048.0,
            )],
        ),
        // TestHTTPPhases: the same phases, whatever their durations.
        http_scenario(
            "phases",
            &url("/status/200"),
            "",
            "",
            true,
            vec![LabelSet {
                metric: "probe_http_duration_seconds",
                label: "phase",
            }],
        ),
        // A timeout: no status arrived.
        Scenario {
            name: "timeout",
            module: module("http", "500ms", ""),
            bb_target: url("/slow"),
            component: "http",
            check: check_body(&url("/slow"), "{target}", "timeout = \"500ms\""),
            success: false,
            compare: vec![same("probe_http_status_code", 0.0)],
        },
        // TestFailIfNotSSL.
        http_scenario(
            "fail_if_ssl_plain",
            &url("/status/200"),
            "fail_if_ssl: true",
            "expect.tls = false",
            true,
            vec![],
        ),
        http_scenario(
            "fail_if_not_ssl_plain",
            &url("/status/200"),
            "fail_if_not_ssl: true",
            "expect.tls = true",
            false,
            vec![],
        ),
    ];

    // HTTPS and TLS.
    let https_url = |port: u16| format!("https://127.0.0.1:{port}/");
    let ca = |extra: &str| format!("tls_config:\n  ca_file: {ca_file}\n{extra}");
    let mut tls = vec![
        http_scenario(
            "https_verified",
            &https_url(https),
            &ca("fail_if_not_ssl: true"),
            &format!("ca_bundle = {root_pem}\nexpect.tls = true"),
            true,
            [
                vec![same("probe_http_status_code", 200.0), same_dn("issuer")],
                tls_metrics(),
            ]
            .concat(),
        ),
        // TestFailIfSelfSignedCA: a chain no trusted root signs.
        http_scenario(
            "https_untrusted",
            &https_url(https),
            "",
            "",
            false,
            vec![same("probe_http_status_code", 0.0)],
        ),
        // TestSucceedIfSelfSignedCA: a self-signed CA certificate, pinned.
        http_scenario(
            "https_self_signed_pinned",
            &https_url(https_self),
            &format!("tls_config:\n  ca_file: {}", ss_file.display()),
            &format!("ca_bundle = {}", toml_pem(&ss_pem)),
            true,
            [
                vec![
                    same("probe_http_status_code", 200.0),
                    same_dn("subject"),
                    same_dn("issuer"),
                ],
                tls_metrics(),
            ]
            .concat(),
        ),
        // TestHTTPUsesTargetAsTLSServerName, and `server_name`.
        http_scenario(
            "https_wrong_name",
            &https_url(https_named),
            &ca(""),
            &format!("ca_bundle = {root_pem}"),
            false,
            vec![],
        ),
        http_scenario(
            "https_server_name",
            &https_url(https_named),
            &ca("  server_name: parity.vantage.test"),
            &format!("ca_bundle = {root_pem}\nserver_name = \"parity.vantage.test\""),
            true,
            tls_metrics(),
        ),
        http_scenario(
            "https_tls12",
            &https_url(https),
            &ca("  max_version: TLS12"),
            &format!("ca_bundle = {root_pem}\nmax_tls_version = \"TLS12\""),
            true,
            tls_metrics(),
        ),
        // Earliest expiry (every presented certificate) vs the last chain.
        http_scenario(
            "https_stray_cert",
            &https_url(https_stray),
            &ca(""),
            &format!("ca_bundle = {root_pem}"),
            true,
            tls_metrics(),
        ),
        // TestTCPConnectionWithTLS: the tcp prober with `tls: true`.
        Scenario {
            name: "tcp_tls",
            module: module(
                "tcp",
                "2s",
                &format!("tls: true\ntls_config:\n  ca_file: {ca_file}"),
            ),
            bb_target: format!("127.0.0.1:{https}"),
            component: "tcp",
            check: check_body(
                &format!("127.0.0.1:{https}"),
                "{target}",
                &format!("tls = true\nca_bundle = {root_pem}"),
            ),
            success: true,
            compare: tls_metrics(),
        },
        // The same endpoint through the `tls` check. blackbox_exporter has
        // no expiry threshold (its users alert on
        // probe_ssl_earliest_cert_expiry); the check's own (7 days by
        // default) is turned off to compare the verdicts.
        Scenario {
            name: "tls_check",
            module: module(
                "tcp",
                "2s",
                &format!("tls: true\ntls_config:\n  ca_file: {ca_file}"),
            ),
            bb_target: format!("127.0.0.1:{https_stray}"),
            component: "tls",
            check: check_body(
                &format!("127.0.0.1:{https_stray}"),
                &format!("tls://127.0.0.1:{https_stray}"),
                &format!("ca_bundle = {root_pem}\ndays.fail = 0\ndays.degraded = 0"),
            ),
            success: true,
            compare: tls_metrics(),
        },
        // TestTCPConnectionQueryResponseStartTLS (SMTP).
        Scenario {
            name: "starttls_smtp",
            module: module(
                "tcp",
                "2s",
                &format!(
                    "query_response:\n  - expect: \"^220\"\n  - send: \"EHLO prober\\r\"\n  - expect: \"^250 STARTTLS\"\n  - send: \"STARTTLS\\r\"\n  - expect: \"^220\"\n  - starttls: true\n  - send: \"EHLO prober\\r\"\n  - expect: \"^250 ok\"\ntls_config:\n  ca_file: {ca_file}"
                ),
            ),
            bb_target: format!("127.0.0.1:{smtp}"),
            component: "tcp",
            check: check_body(
                &format!("127.0.0.1:{smtp}"),
                "{target}",
                &format!(
                    "ca_bundle = {root_pem}\nquery_response.0.expect = \"^220\"\nquery_response.1.send = 'EHLO prober\\r\\n'\nquery_response.2.expect = \"^250 STARTTLS\"\nquery_response.3.send = 'STARTTLS\\r\\n'\nquery_response.4.expect = \"^220\"\nquery_response.5.starttls = true\nquery_response.6.send = 'EHLO prober\\r\\n'\nquery_response.7.expect = \"^250 ok\""
                ),
            ),
            success: true,
            compare: tls_metrics(),
        },
    ];
    scenarios.append(&mut tls);

    // TCP.
    let tcp = |name: &'static str, port: u16, bb: &str, v: &str, success: bool| Scenario {
        name,
        module: module("tcp", "2s", bb),
        bb_target: format!("127.0.0.1:{port}"),
        component: "tcp",
        check: check_body(&format!("127.0.0.1:{port}"), "{target}", v),
        success,
        compare: vec![],
    };
    scenarios.extend([
        // TestTCPConnection / TestTCPConnectionFails.
        tcp("tcp_connect", banner, "", "", true),
        tcp("tcp_refused", closed, "", "", false),
        // TestTCPConnectionQueryResponseMatching / IRC: send, expect with a group.
        tcp(
            "tcp_query_response",
            banner,
            "query_response:\n  - expect: \"^SSH-2.0-(\\\\w+)\"\n    send: \"PING ${1}\"\n  - expect: \"^PONG PING parity$\"",
            "query_response.0.expect = '^SSH-2.0-(\\w+)'\nquery_response.0.send = 'PING ${1}\\n'\nquery_response.1.expect = '^PONG PING parity$'",
            true,
        ),
        tcp(
            "tcp_expect_mismatch",
            banner,
            "query_response:\n  - expect: \"^HTTP/1\"",
            "query_response.0.expect = '^HTTP/1'",
            false,
        ),
    ]);

    // DNS (TestAuthoritativeDNSResponse, TestServfailDNSResponse, TestDNSProtocol).
    let dns_target = dns.addr();
    let dns_allow = format!("dns://{}", dns.addr());
    let dns_scenario =
        |name: &'static str, bb: &str, v: &str, success: bool, compare: Vec<Compare>| Scenario {
            name,
            module: module("dns", "2s", bb),
            bb_target: dns_target.clone(),
            component: "dns",
            check: check_body("", &dns_allow, &format!("server = \"{dns_target}\"\n{v}")),
            success,
            compare,
        };
    scenarios.extend([
        dns_scenario(
            "dns_a",
            "query_name: vantage.test\nquery_type: A\nvalidate_answer_rrs:\n  fail_if_not_matches_regexp: [\"vantage\\\\.test\\\\.\\t300\\tIN\\tA\\t93\\\\.184\\\\.216\\\\.34\"]",
            "name = \"vantage.test\"\ntype = \"A\"\nvalidate_answer_rrs.fail_if_not_matches_regexp = ['vantage\\.test\\.\\t300\\tIN\\tA\\t93\\.184\\.216\\.34']",
            true,
            vec![
                same_as_measurement("probe_dns_answer_rrs", "dns_answer_count", 1.0),
                same_as_measurement("probe_dns_authority_rrs", "dns_authority_count", 0.0),
            ],
        ),
        dns_scenario(
            "dns_mx_tcp",
            "query_name: vantage.test\nquery_type: MX\ntransport_protocol: tcp",
            "name = \"vantage.test\"\ntype = \"MX\"\ntransport = \"tcp\"",
            true,
            vec![same_as_measurement("probe_dns_answer_rrs", "dns_answer_count", 2.0)],
        ),
        dns_scenario(
            "dns_fail_if_matches",
            "query_name: vantage.test\nquery_type: A\nvalidate_answer_rrs:\n  fail_if_matches_regexp: [\".*93\\\\.184.*\"]",
            "name = \"vantage.test\"\ntype = \"A\"\nvalidate_answer_rrs.fail_if_matches_regexp = ['.*93\\.184.*']",
            false,
            vec![],
        ),
        dns_scenario(
            "dns_servfail",
            "query_name: servfail.vantage.test\nquery_type: A",
            "name = \"servfail.vantage.test\"\ntype = \"A\"",
            false,
            vec![],
        ),
        dns_scenario(
            "dns_nxdomain_valid",
            "query_name: nope.vantage.test\nquery_type: A\nvalid_rcodes: [NXDOMAIN]",
            "name = \"nope.vantage.test\"\ntype = \"A\"\nexpect.rcode = [\"NXDOMAIN\"]",
            true,
            vec![
                same_as_measurement("probe_dns_answer_rrs", "dns_answer_count", 0.0),
                same_as_measurement("probe_dns_authority_rrs", "dns_authority_count", 1.0),
            ],
        ),
    ]);

    // One blackbox_exporter with every module.
    let mut yaml = String::from("modules:\n");
    for s in &scenarios {
        yaml.push_str(&format!("  {}:\n", s.name));
        for line in s.module.lines() {
            yaml.push_str(&format!("    {line}\n"));
        }
    }
    let bb = Arc::new(Blackbox::start(dir.path(), &yaml));

    let runtime =
        Arc::new(Runtime::new(&EngineOptions::default(), Some(support::cache_dir())).unwrap());
    let mut loaded = BTreeMap::new();
    for c in ["http", "tcp", "tls", "dns"] {
        loaded.insert(c, Arc::new(runtime.load_file(&wasm(c)).await.unwrap()));
    }

    // Run every scenario, both sides at once, four scenarios at a time.
    let permits = Arc::new(tokio::sync::Semaphore::new(4));
    let dir_path = Arc::new(dir.path().to_path_buf());
    let mut tasks = tokio::task::JoinSet::new();
    let count = scenarios.len();
    for (i, s) in scenarios.into_iter().enumerate() {
        let (bb, runtime, permits, dir_path) = (
            bb.clone(),
            runtime.clone(),
            permits.clone(),
            dir_path.clone(),
        );
        let loaded = loaded[s.component].clone();
        tasks.spawn(async move {
            let _permit = permits.acquire().await.unwrap();
            let (name, target) = (s.name, s.bb_target.clone());
            let bb_side = tokio::task::spawn_blocking(move || bb.probe(name, &target));
            let (result, vtext) = run_vantage(&runtime, &loaded, &dir_path, &s).await;
            let btext = bb_side.await.unwrap();
            let bad = compare(
                &s,
                &Scrape::new("blackbox", btext),
                &Scrape::new("vantage", vtext),
                &result,
            );
            (i, s.name, bad)
        });
    }
    let mut results = Vec::new();
    while let Some(r) = tasks.join_next().await {
        results.push(r.unwrap());
    }
    results.sort_by_key(|r| r.0);
    let bad: Vec<String> = results.iter().flat_map(|r| r.2.clone()).collect();
    eprintln!(
        "{count} scenarios, {} mismatches, in {:?}",
        bad.len(),
        started.elapsed()
    );
    assert!(
        bad.is_empty(),
        "{} mismatch(es):\n{}",
        bad.len(),
        bad.join("\n\n")
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
}
