//! Measurement 2, check vs native: the `http` check doing one GET with a status and a
//! body-regex assertion, against the same request and assertions in native
//! Rust with reqwest. CPU time per run of this process (`getrusage`; the
//! target is another process).

use std::sync::Arc;
use std::time::Instant;

use regex::Regex;
use vantage::result::Status;
use vantage::runtime::{LoadedCheck, Runtime};

use crate::probe::{self, Components};
use crate::report::{Section, Verdict};
use crate::stats::{median, num, ratio, summarize};
use crate::sys::{loadavg, self_cpu};
use crate::target::{BODY_REGEX, Target};

/// Target: the check's CPU per run over native's.
const TARGET_RATIO: f64 = 1.15;

/// One side's figures over every round.
#[derive(Default)]
struct Side {
    cpu_us_per_run: Vec<f64>,
    wall_us: Vec<f64>,
    connections: u64,
    requests: u64,
}

impl Side {
    fn row(&mut self, name: &str, native_cpu: f64) -> Vec<String> {
        let cpu = median(&self.cpu_us_per_run);
        let wall = summarize(&mut self.wall_us);
        vec![
            name.to_string(),
            num(cpu),
            self.cpu_us_per_run
                .iter()
                .map(|v| num(*v))
                .collect::<Vec<_>>()
                .join(" / "),
            ratio(cpu / native_cpu),
            num(wall.p50),
            num(wall.p99),
            format!("{}/{}", self.connections, self.requests),
        ]
    }
}

/// Alternate `rounds` blocks of `runs` native and Wasm runs, for HTTP and
/// HTTPS.
pub async fn run(
    components: &Components,
    target: &Target,
    runs: usize,
    rounds: usize,
) -> anyhow::Result<Section> {
    let runtime = probe::runtime()?;
    let sides = Sides {
        check: components.load(&runtime, "http").await?,
        runtime,
        re: Regex::new(BODY_REGEX)?,
        ca: reqwest::Certificate::from_pem(&std::fs::read(&target.ca_file)?)?,
        target,
        runs,
        rounds,
    };
    let mut section = Section::new("2. Check vs native (CPU per run)");
    section.para(describe(components, runs, rounds));
    let mut http_ratio = f64::NAN;
    for (label, base, tls) in [
        ("HTTP", target.http.clone(), false),
        ("HTTPS", target.https.clone(), true),
    ] {
        let url = format!("{base}/healthz");
        let (mut native, mut wasm, load) = sides.measure(&url, tls).await?;
        let native_cpu = median(&native.cpu_us_per_run);
        let wasm_cpu = median(&wasm.cpu_us_per_run);
        eprintln!(
            "native {label}: native {native_cpu:.0} µs CPU/run, wasm {wasm_cpu:.0} µs CPU/run, ratio {:.2}, load {load}",
            wasm_cpu / native_cpu
        );
        if !tls {
            http_ratio = wasm_cpu / native_cpu;
        }
        section.para(format!("**{label}** (`{url}`; load {load}):"));
        let mut rows = vec![native.row("native (reqwest)", native_cpu)];
        let check_name = if tls {
            "Wasm `http` check (`insecure = true`)"
        } else {
            "Wasm `http` check"
        };
        rows.push(wasm.row(check_name, native_cpu));
        section.table(
            &[
                "Side",
                "CPU µs/run (median)",
                "CPU µs/run per round",
                "vs native",
                "wall p50 µs",
                "wall p99 µs",
                "conns/reqs",
            ],
            &rows,
        );
    }
    section.para(
        "HTTPS is not part of the target; it is here because the TLS handshake dominates a real \
         probe. The native client verifies the chain against the test CA; the check cannot be \
         given a CA bundle for `http.fetch` (the host's HTTP client trusts the webpki roots \
         only), so it runs with `insecure = true`, which still runs the webpki verifier (the \
         verdict is recorded) but stops at `UnknownIssuer` instead of checking the CA's \
         signature on the leaf: about one ECDSA P-256 verification less than native.",
    );
    section.verdict(Verdict::new(
        "2. Check vs native, CPU per run (HTTP GET + body regex)",
        "≤ 1.15×",
        ratio(http_ratio),
        http_ratio <= TARGET_RATIO,
    ));
    Ok(section)
}

/// Report: the paragraph that says what both sides do and how they are measured.
fn describe(components: &Components, runs: usize, rounds: usize) -> String {
    format!(
        "One GET of the loopback target (a {}-byte JSON body, served by a separate process) \
         with two assertions: status 200 and the body regex `{BODY_REGEX}`. **Wasm**: the \
         official `http` check ({}) run by `Runtime::run` with `expect.status = 200` and \
         `expect.body_matches.0 = '{BODY_REGEX}'` (it also parses its configuration, checks \
         its keys, compiles the regex in every run — a fresh instance has no state — and \
         records per-phase timings). **Native**: reqwest 0.13 (rustls, aws-lc-rs, HTTP/1.1), \
         one `Client` built once with `pool_max_idle_per_host(0)` so that every request opens \
         a new connection like the check does; the regex is compiled once, outside the loop \
         (the strict baseline). Both sides run one request at a time on the same tokio \
         runtime in this process. {rounds} alternating rounds of {runs} runs per side (after \
         100 warm-up runs each); CPU per run = `getrusage(RUSAGE_SELF)` user+system over the \
         round / runs; the figure is the median of the rounds (each round listed). \
         `conns/reqs` is what the target accepted during the measured rounds: one connection \
         per request on both sides.",
        crate::target::BODY.len(),
        probe::describe_file(&components.path("http")),
    )
}

/// What both sides need, and how many runs to measure.
struct Sides<'a> {
    /// The daemon's runtime.
    runtime: Arc<Runtime>,
    /// The `http` check, loaded.
    check: Arc<LoadedCheck>,
    /// The body regex, compiled once (native side).
    re: Regex,
    /// The test CA, trusted by the native side for HTTPS.
    ca: reqwest::Certificate,
    /// The loopback target (also counts connections and requests).
    target: &'a Target,
    /// Runs per side and round.
    runs: usize,
    /// Alternating rounds.
    rounds: usize,
}

impl Sides<'_> {
    /// Measure: 100 warm-up runs each, then `rounds` alternating rounds of
    /// `runs` native and Wasm runs of a GET of `url`; returns the native and
    /// Wasm figures and the load.
    async fn measure(&self, url: &str, tls: bool) -> anyhow::Result<(Side, Side, String)> {
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .http1_only()
            .pool_max_idle_per_host(0);
        if tls {
            builder = builder.tls_certs_only([self.ca.clone()]);
        }
        let client = builder.build()?;
        let spec = probe::http_spec(url, tls)?;
        let native_once = || async {
            let response = client.get(url).send().await?;
            let ok = response.status() == reqwest::StatusCode::OK;
            let body = response.text().await?;
            anyhow::ensure!(
                ok && self.re.is_match(&body),
                "native assertion failed: {body}"
            );
            Ok(())
        };
        let wasm_once = || async {
            let r = self.runtime.run(&self.check, &spec).await;
            anyhow::ensure!(r.status == Status::Pass, "check did not pass: {r:?}");
            Ok(())
        };
        for _ in 0..100 {
            native_once().await?;
            wasm_once().await?;
        }
        let load_before = loadavg();
        let (mut native, mut wasm) = (Side::default(), Side::default());
        for _ in 0..self.rounds {
            for (side, is_native) in [(&mut native, true), (&mut wasm, false)] {
                let (c0, r0) = self.target.counters().await?;
                let cpu0 = self_cpu();
                for _ in 0..self.runs {
                    let t = Instant::now();
                    if is_native {
                        native_once().await?;
                    } else {
                        wasm_once().await?;
                    }
                    side.wall_us.push(t.elapsed().as_secs_f64() * 1e6);
                }
                let cpu = (self_cpu() - cpu0).as_secs_f64() * 1e6 / self.runs as f64;
                side.cpu_us_per_run.push(cpu);
                let (c1, r1) = self.target.counters().await?;
                // The counters query itself is one connection and one request.
                side.connections += c1 - c0 - 1;
                side.requests += r1 - r0 - 1;
            }
        }
        Ok((native, wasm, format!("{load_before} → {}", loadavg())))
    }
}
