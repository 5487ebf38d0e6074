//! `vantage-bench profile`: one check in a loop, for profilers and what-if
//! comparisons (e.g. the `http` check with and without its body regex).

use std::time::Instant;

use crate::probe::{self, Components};
use crate::stats::summarize;
use crate::sys::{loadavg, self_cpu, self_minor_faults};
use crate::target::Target;

/// What `profile` runs: `check` `runs` times against the target (`fetch`:
/// `http`, `https`, `none` or `denied`, a target outside the allow list, so
/// no network), with the benchmark's `http` config or `set` instead; it
/// prints CPU per run, page faults per run and wall percentiles.
pub struct Args<'a> {
    /// Component name.
    pub check: &'a str,
    /// `http`, `https`, `none` or `denied`.
    pub fetch: &'a str,
    /// `key=value`s replacing the config.
    pub set: &'a [String],
    /// Also run natively.
    pub native: bool,
    /// Measured runs.
    pub runs: usize,
    /// Runs at once.
    pub in_flight: usize,
}

/// Run the loop described by `args`.
pub async fn run(components: &Components, target: &Target, args: Args<'_>) -> anyhow::Result<()> {
    let Args {
        check,
        fetch,
        set,
        native,
        runs,
        in_flight: concurrency,
    } = args;
    let runtime = probe::runtime()?;
    let loaded = components.load(&runtime, check).await?;
    let url = match fetch {
        "http" => Some(format!("{}/healthz", target.http)),
        "https" => Some(format!("{}/healthz", target.https)),
        "none" => None,
        "denied" => Some(format!("{}/healthz", target.http)),
        other => anyhow::bail!("--fetch {other}: http, https, none or denied"),
    };
    let tls = fetch == "https";
    let mut spec = match &url {
        Some(url) => probe::http_spec(url, tls)?,
        None => vantage::runtime::RunSpec::deny_all(check, std::time::Duration::from_secs(10)),
    };
    if fetch == "denied" {
        spec.allow = std::sync::Arc::new(vantage::policy::AllowList::deny_all());
    }
    if !set.is_empty() {
        spec.config = set
            .iter()
            .map(|kv| vantage::config::parse_set(kv).map_err(|e| anyhow::anyhow!("{e}")))
            .collect::<anyhow::Result<_>>()?;
    }
    let first = runtime.run(&loaded, &spec).await;
    eprintln!(
        "{check}: {} {} ({} assertions)",
        first.status.as_str(),
        first.summary,
        first.assertions.len()
    );
    for _ in 0..runs / 10 {
        runtime.run(&loaded, &spec).await;
    }
    if concurrency > 1 {
        let (cpu, wall, failed) =
            crate::blackbox::vantage_probe(&runtime, &loaded, &spec, runs, concurrency).await?;
        println!(
            "{check} ({fetch}), {concurrency} at a time: {:.1} µs CPU/run, {:.0} runs/s, {failed} not passed; load {}",
            cpu.as_secs_f64() * 1e6 / runs as f64,
            runs as f64 / wall.as_secs_f64(),
            loadavg()
        );
        return Ok(());
    }
    let mut wall = Vec::with_capacity(runs);
    let (mut inst, mut call) = (Vec::with_capacity(runs), Vec::with_capacity(runs));
    let cpu0 = self_cpu();
    let faults0 = self_minor_faults();
    for _ in 0..runs {
        let t = Instant::now();
        let r = runtime.run(&loaded, &spec).await;
        wall.push(t.elapsed().as_secs_f64() * 1e6);
        inst.push(r.timings.instantiate_ms * 1e3);
        call.push(r.timings.run_ms * 1e3);
    }
    let cpu = (self_cpu() - cpu0).as_secs_f64() * 1e6 / runs as f64;
    let faults = (self_minor_faults() - faults0) as f64 / runs as f64;
    let (w, i, c) = (
        summarize(&mut wall),
        summarize(&mut inst),
        summarize(&mut call),
    );
    println!(
        "{check} ({fetch}): {cpu:.1} µs CPU/run, {faults:.1} page faults/run; wall p50 {:.1} p99 {:.1} µs; instantiate p50 {:.1} µs, run p50 {:.1} µs; load {}",
        w.p50,
        w.p99,
        i.p50,
        c.p50,
        loadavg()
    );
    if let (true, Some(url)) = (native, &url) {
        let ca = reqwest::Certificate::from_pem(&std::fs::read(&target.ca_file)?)?;
        let client = reqwest::Client::builder()
            .no_proxy()
            .http1_only()
            .pool_max_idle_per_host(0)
            .tls_certs_only([ca])
            .build()?;
        let re = regex::Regex::new(crate::target::BODY_REGEX)?;
        let cpu0 = self_cpu();
        let faults0 = self_minor_faults();
        for _ in 0..runs {
            let r = client.get(url).send().await?;
            let ok = r.status() == reqwest::StatusCode::OK;
            let body = r.text().await?;
            anyhow::ensure!(ok && re.is_match(&body));
        }
        let cpu = (self_cpu() - cpu0).as_secs_f64() * 1e6 / runs as f64;
        let faults = (self_minor_faults() - faults0) as f64 / runs as f64;
        println!("native ({fetch}): {cpu:.1} µs CPU/run, {faults:.1} page faults/run");
        let t = Instant::now();
        #[allow(clippy::regex_creation_in_loops)] // what is measured
        for _ in 0..1000 {
            std::hint::black_box(regex::Regex::new(crate::target::BODY_REGEX)?);
        }
        println!(
            "native Regex::new({}): {:.1} µs",
            crate::target::BODY_REGEX,
            t.elapsed().as_secs_f64() * 1e3
        );
    }
    Ok(())
}
