//! Measurement 3, versus blackbox_exporter: the same probes (new connection, status
//! 200, body regex) through blackbox_exporter's `/probe` endpoint and
//! through Vantage's `http` check, each measured as probes per CPU-second
//! of the prober process.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use vantage::result::Status;
use vantage::runtime::{LoadedCheck, RunSpec, Runtime};

use crate::probe::{self, Components};
use crate::report::{Section, Verdict};
use crate::stats::{group, median, num, ratio};
use crate::sys::{ChildGuard, TempDir, free_port, loadavg, proc_cpu, self_cpu};
use crate::target::{BODY_REGEX, Target};

/// Target: Vantage's probes per CPU-second over blackbox_exporter's.
const TARGET_RATIO: f64 = 4.0;

/// Where Debian installs it.
const BLACKBOX: &str = "/usr/bin/prometheus-blackbox-exporter";

/// A running blackbox_exporter.
struct Blackbox {
    process: ChildGuard,
    url: String,
    version: String,
}

impl Blackbox {
    async fn start(dir: &Path, ca_file: &Path) -> anyhow::Result<Blackbox> {
        let binary = PathBuf::from(BLACKBOX);
        anyhow::ensure!(
            binary.exists(),
            "{BLACKBOX} not found: apt-get install prometheus-blackbox-exporter"
        );
        let version = Command::new(&binary)
            .arg("--version")
            .output()
            .map(|o| {
                let text = String::from_utf8_lossy(&o.stdout).to_string()
                    + &String::from_utf8_lossy(&o.stderr);
                text.lines().next().unwrap_or("").trim().to_string()
            })
            .unwrap_or_default();
        let regex = BODY_REGEX.replace('\'', "''");
        let http = format!(
            "    prober: http\n    timeout: 5s\n    http:\n      method: GET\n      \
             valid_status_codes: [200]\n      fail_if_body_not_matches_regexp: ['{regex}']\n      \
             preferred_ip_protocol: ip4\n      ip_protocol_fallback: false\n"
        );
        let config = format!(
            "modules:\n  http_bench:\n{http}  https_bench:\n{http}      fail_if_not_ssl: true\n      \
             tls_config:\n        ca_file: {}\n  https_insecure:\n{http}      fail_if_not_ssl: true\n      \
             tls_config:\n        insecure_skip_verify: true\n",
            ca_file.display()
        );
        let config_file = dir.join("blackbox.yml");
        std::fs::write(&config_file, config)?;
        let port = free_port();
        let log = std::fs::File::create(dir.join("blackbox.log"))?;
        let process = ChildGuard::spawn(
            "blackbox_exporter",
            Command::new(&binary)
                .arg(format!("--config.file={}", config_file.display()))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--log.level=warn")
                .stdout(Stdio::from(log.try_clone()?))
                .stderr(Stdio::from(log)),
        )?;
        let url = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        let started = Instant::now();
        loop {
            if let Ok(r) = client.get(format!("{url}/-/healthy")).send().await
                && r.status().is_success()
            {
                break;
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(20),
                "blackbox_exporter did not start (see {})",
                dir.join("blackbox.log").display()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Blackbox {
            process,
            url,
            version,
        })
    }

    /// `probes` probes of `target` with `module`, `concurrency` at a time;
    /// returns (CPU of the blackbox process, wall time, failures).
    async fn probe(
        &self,
        client: &reqwest::Client,
        module: &str,
        target: &str,
        probes: usize,
        concurrency: usize,
    ) -> anyhow::Result<(Duration, Duration, usize)> {
        let url = Arc::new(format!(
            "{}/probe?module={module}&target={target}",
            self.url
        ));
        let pid = self.process.pid();
        let cpu0 = proc_cpu(pid)?;
        let t = Instant::now();
        let left = Arc::new(AtomicUsize::new(probes));
        let failed = Arc::new(AtomicUsize::new(0));
        let mut workers = Vec::new();
        for _ in 0..concurrency {
            let (client, url, left, failed) =
                (client.clone(), url.clone(), left.clone(), failed.clone());
            workers.push(tokio::spawn(async move {
                while take(&left) {
                    let ok = match client.get(url.as_str()).send().await {
                        Ok(r) => r
                            .text()
                            .await
                            .is_ok_and(|b| b.contains("\nprobe_success 1")),
                        Err(_) => false,
                    };
                    if !ok {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
        }
        for w in workers {
            w.await?;
        }
        let wall = t.elapsed();
        Ok((proc_cpu(pid)? - cpu0, wall, failed.load(Ordering::Relaxed)))
    }
}

/// Take one probe from the budget; false when none is left.
fn take(left: &AtomicUsize) -> bool {
    left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
        .is_ok()
}

/// `probes` runs of the check, `concurrency` at a time, in this process;
/// returns (CPU of this process, wall time, failures).
pub async fn vantage_probe(
    runtime: &Arc<Runtime>,
    check: &Arc<LoadedCheck>,
    spec: &RunSpec,
    probes: usize,
    concurrency: usize,
) -> anyhow::Result<(Duration, Duration, usize)> {
    let cpu0 = self_cpu();
    let t = Instant::now();
    let left = Arc::new(AtomicUsize::new(probes));
    let failed = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (runtime, check, spec) = (runtime.clone(), check.clone(), spec.clone());
        let (left, failed) = (left.clone(), failed.clone());
        workers.push(tokio::spawn(async move {
            while take(&left) {
                if runtime.run(&check, &spec).await.status != Status::Pass {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for w in workers {
        w.await?;
    }
    let wall = t.elapsed();
    Ok((self_cpu() - cpu0, wall, failed.load(Ordering::Relaxed)))
}

/// The same probes natively (reqwest, a new connection per request, the
/// regex compiled once), `concurrency` at a time, in this process: the
/// ceiling a prober in Rust reaches on this machine.
pub async fn native_probe(
    client: &reqwest::Client,
    url: &str,
    probes: usize,
    concurrency: usize,
) -> anyhow::Result<(Duration, Duration, usize)> {
    let re = Arc::new(regex::Regex::new(BODY_REGEX)?);
    let cpu0 = self_cpu();
    let t = Instant::now();
    let left = Arc::new(AtomicUsize::new(probes));
    let failed = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (client, url, re) = (client.clone(), url.to_string(), re.clone());
        let (left, failed) = (left.clone(), failed.clone());
        workers.push(tokio::spawn(async move {
            while take(&left) {
                let ok = match client.get(&url).send().await {
                    Ok(r) => {
                        let status = r.status() == reqwest::StatusCode::OK;
                        r.text().await.is_ok_and(|b| status && re.is_match(&b))
                    }
                    Err(_) => false,
                };
                if !ok {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for w in workers {
        w.await?;
    }
    let wall = t.elapsed();
    Ok((self_cpu() - cpu0, wall, failed.load(Ordering::Relaxed)))
}

/// Per-round figures of one prober on one case.
#[derive(Default)]
struct Rates {
    per_cpu_s: Vec<f64>,
    per_s: Vec<f64>,
    failed: usize,
    probes: usize,
}

impl Rates {
    fn add(&mut self, probes: usize, (cpu, wall, failed): (Duration, Duration, usize)) {
        self.per_cpu_s.push(probes as f64 / cpu.as_secs_f64());
        self.per_s.push(probes as f64 / wall.as_secs_f64());
        self.failed += failed;
        self.probes += probes;
    }

    fn cells(&self) -> Vec<String> {
        vec![
            group(median(&self.per_cpu_s).round() as i64),
            self.per_cpu_s
                .iter()
                .map(|v| group(v.round() as i64))
                .collect::<Vec<_>>()
                .join(" / "),
            num(1e6 / median(&self.per_cpu_s)),
            group(median(&self.per_s).round() as i64),
            format!("{}/{}", self.failed, self.probes),
        ]
    }
}

/// The comparison, `rounds` alternating rounds of `probes` probes per
/// prober and case.
pub async fn run(
    components: &Components,
    target: &Target,
    probes: usize,
    concurrency: usize,
    rounds: usize,
) -> anyhow::Result<Section> {
    let dir = TempDir::new("blackbox")?;
    let blackbox = Blackbox::start(dir.path(), &target.ca_file).await?;
    let runtime = probe::runtime()?;
    let probers = Probers {
        check: components.load(&runtime, "http").await?,
        runtime,
        blackbox: &blackbox,
        client: reqwest::Client::builder().no_proxy().build()?,
        ca: reqwest::Certificate::from_pem(&std::fs::read(&target.ca_file)?)?,
        probes,
        concurrency,
        rounds,
    };
    let mut section = Section::new("3. Versus blackbox_exporter (probes per CPU-second)");
    section.para(describe(
        &blackbox.version,
        components,
        probes,
        concurrency,
        rounds,
    ));
    let cases = [
        ("HTTP", "http_bench", &target.http, false),
        ("HTTPS", "https_bench", &target.https, true),
        (
            "HTTPS, both skipping CA verification (reference)",
            "https_insecure",
            &target.https,
            true,
        ),
    ];
    let mut rows = Vec::new();
    let mut vantage_https: Option<(Rates, Rates, String)> = None;
    for (label, module, base, tls) in cases {
        let url = format!("{base}/healthz");
        let reuse_vantage = module == "https_insecure";
        let (bb, va, na, load) = probers.measure(module, &url, tls, reuse_vantage).await?;
        let (va, na, va_load) = if reuse_vantage {
            let (rates, native, load) = vantage_https.take().context("HTTPS case first")?;
            (rates, native, format!("{load} (the HTTPS rounds above)"))
        } else {
            (va, na, load.clone())
        };
        let (bb_rate, va_rate) = (median(&bb.per_cpu_s), median(&va.per_cpu_s));
        let r = va_rate / bb_rate;
        eprintln!(
            "blackbox {label}: blackbox {bb_rate:.0}/CPU-s, vantage {va_rate:.0}/CPU-s, ratio {r:.2}, load {load}"
        );
        rows.extend(case_rows(label, [&bb, &va, &na], load, &va_load));
        let what = match module {
            "http_bench" => "3. Vs blackbox_exporter, HTTP, probes per CPU-second",
            "https_bench" => "3. Vs blackbox_exporter, HTTPS, probes per CPU-second",
            _ => continue,
        };
        section.verdict(ratio_verdict(what, va_rate, bb_rate));
        if module == "https_bench" {
            vantage_https = Some((va, na, va_load));
        }
    }
    section.table(&HEADER, &rows);
    drop(probers);
    drop(blackbox);
    Ok(section)
}

/// The table's columns.
const HEADER: [&str; 9] = [
    "Case",
    "Prober",
    "probes/CPU-s (median)",
    "per round",
    "CPU µs/probe",
    "probes/s (wall)",
    "failed/probes",
    "vs blackbox",
    "load (1/5/15 min)",
];

/// Report: Vantage's rate against blackbox_exporter's, as a target of issue 5.
fn ratio_verdict(what: &str, va_rate: f64, bb_rate: f64) -> Verdict {
    let r = va_rate / bb_rate;
    Verdict::new(
        what,
        "≥ 4×",
        format!(
            "{} ({} vs {} probes/CPU-s)",
            ratio(r),
            group(va_rate.round() as i64),
            group(bb_rate.round() as i64)
        ),
        r >= TARGET_RATIO,
    )
}

/// Report: the paragraph that says how both probers are run and measured.
fn describe(
    version: &str,
    components: &Components,
    probes: usize,
    concurrency: usize,
    rounds: usize,
) -> String {
    format!(
        "blackbox_exporter: Debian's `prometheus-blackbox-exporter` ({}), started on \
         127.0.0.1 with an `http` module per case: `valid_status_codes: [200]`, \
         `fail_if_body_not_matches_regexp: ['{BODY_REGEX}']`, `preferred_ip_protocol: ip4`; \
         for HTTPS `fail_if_not_ssl: true` and `tls_config.ca_file` = the test CA (the \
         reference row: `insecure_skip_verify: true`). It opens a new connection per probe. \
         It is driven through `/probe?module=…&target=…` by this process over keep-alive \
         connections, {concurrency} probes at a time; its CPU is utime+stime of its process \
         from `/proc/PID/stat`, and a probe counts as good when the answer has \
         `probe_success 1`. **Vantage**: the official `http` check ({}) with \
         `expect.status = 200` and `expect.body_matches.0 = '{BODY_REGEX}'` (HTTPS: \
         `insecure = true`, see section 2), run by `Runtime::run` with the daemon's engine \
         in this process, {concurrency} at a time; its CPU is this process's `getrusage`. \
         The target is the separate target process (same body, HTTP/1.1, TLS 1.3 with an \
         ECDSA P-256 certificate). {rounds} alternating rounds of {probes} probes per \
         prober and case (after {} warm-up probes); the figure is the median round. \
         Reference row: the same probe in native Rust (reqwest, `pool_max_idle_per_host(0)`, \
         the test CA trusted, the regex compiled once), {concurrency} at a time in this \
         process — what a Rust prober without a sandbox reaches here.",
        version,
        probe::describe_file(&components.path("http")),
        probes / 10,
    )
}

/// The three probers of the comparison and how hard to drive them.
struct Probers<'a> {
    /// The daemon's runtime (Vantage's prober).
    runtime: Arc<Runtime>,
    /// The `http` check, loaded.
    check: Arc<LoadedCheck>,
    /// The running blackbox_exporter.
    blackbox: &'a Blackbox,
    /// The client that drives blackbox_exporter.
    client: reqwest::Client,
    /// The test CA, trusted by the native prober for HTTPS.
    ca: reqwest::Certificate,
    /// Probes per round.
    probes: usize,
    /// Probes in flight.
    concurrency: usize,
    /// Rounds per case.
    rounds: usize,
}

impl Probers<'_> {
    /// Measure: warm up, then `rounds` alternating rounds of each prober on
    /// one case (blackbox_exporter only when `reuse_vantage`); returns the
    /// rates of blackbox_exporter, Vantage and native Rust, and the load.
    async fn measure(
        &self,
        module: &str,
        url: &str,
        tls: bool,
        reuse_vantage: bool,
    ) -> anyhow::Result<(Rates, Rates, Rates, String)> {
        let (probes, concurrency) = (self.probes, self.concurrency);
        let spec = probe::http_spec(url, tls)?;
        // Warm-up.
        self.blackbox
            .probe(&self.client, module, url, probes / 10, concurrency)
            .await?;
        if !reuse_vantage {
            vantage_probe(&self.runtime, &self.check, &spec, probes / 10, concurrency).await?;
        }
        let load_before = loadavg();
        let (mut bb, mut va, mut na) = (Rates::default(), Rates::default(), Rates::default());
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .http1_only()
            .pool_max_idle_per_host(0);
        if tls {
            builder = builder.tls_certs_only([self.ca.clone()]);
        }
        let native = builder.build()?;
        if !reuse_vantage {
            native_probe(&native, url, probes / 10, concurrency).await?;
        }
        for _ in 0..self.rounds {
            bb.add(
                probes,
                self.blackbox
                    .probe(&self.client, module, url, probes, concurrency)
                    .await?,
            );
            if !reuse_vantage {
                va.add(
                    probes,
                    vantage_probe(&self.runtime, &self.check, &spec, probes, concurrency).await?,
                );
                na.add(
                    probes,
                    native_probe(&native, url, probes, concurrency).await?,
                );
            }
        }
        Ok((bb, va, na, format!("{load_before} → {}", loadavg())))
    }
}

/// Report: the three rows of one case (blackbox_exporter, Vantage, native).
fn case_rows(
    label: &str,
    [bb, va, na]: [&Rates; 3],
    load: String,
    va_load: &str,
) -> [Vec<String>; 3] {
    let bb_rate = median(&bb.per_cpu_s);
    let r = median(&va.per_cpu_s) / bb_rate;
    let mut bb_row = vec![label.to_string(), "blackbox_exporter".into()];
    bb_row.extend(bb.cells());
    bb_row.extend(["1.00×".into(), load]);
    let mut va_row = vec![label.to_string(), "Vantage `http` check".into()];
    va_row.extend(va.cells());
    va_row.extend([format!("**{}**", ratio(r)), va_load.to_string()]);
    let mut na_row = vec![
        label.to_string(),
        "native Rust (reqwest, same probe; reference)".into(),
    ];
    na_row.extend(na.cells());
    na_row.extend([ratio(median(&na.per_cpu_s) / bb_rate), va_load.to_string()]);
    [bb_row, va_row, na_row]
}
