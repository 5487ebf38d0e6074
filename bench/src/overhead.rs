//! 1. Per-run overhead: `Runtime::run` of a trivial check, in process, with
//! the daemon's engine (pooling allocator, `InstancePre`, a fresh `Store`
//! per run), one run after the other.

use std::time::Instant;

use vantage::result::Status;
use vantage::runtime::RunSpec;

use crate::probe::{self, Components};
use crate::report::{Section, Verdict};
use crate::stats::{num, summarize};
use crate::sys::{loadavg, self_cpu};

/// Target: p50 of a trivial check's whole run.
const TARGET_P50_US: f64 = 20.0;

/// Measure `runs` runs (after `warmup`) of `fixture_noop` and `fixture_echo`.
pub async fn run(components: &Components, runs: usize, warmup: usize) -> anyhow::Result<Section> {
    let runtime = probe::runtime()?;
    let mut section = Section::new("1. Per-run overhead");
    section.para(format!(
        "`Runtime::run` in process, sequentially on one tokio task, with the daemon's engine \
         (pooling allocator sized for `concurrency` 64, 64 MiB memory cap, no fuel, epoch \
         interruption): a fresh `Store` and WASI context, `InstancePre::instantiate`, the call \
         of `run`, the result converted and redacted. Nothing granted (`RunSpec::deny_all`). \
         {runs} runs per check after {warmup} warm-up runs; wall time per run from `Instant`, \
         CPU time per run from `getrusage` over all runs. `instantiate` and `run` are the \
         runtime's own timings (`RunTimings`); `rest` is the remainder (store and WASI \
         context set-up, result conversion, redaction)."
    ));
    let mut rows = Vec::new();
    let mut noop_p50 = None;
    for (fixture, what) in [
        ("fixture_noop", "trivial: one passing assertion, no host call"),
        (
            "fixture_echo",
            "echo: 5 log lines, labels, measurements (host calls)",
        ),
    ] {
        let check = components.load(&runtime, fixture).await?;
        let spec = RunSpec::deny_all(fixture, std::time::Duration::from_secs(10));
        for _ in 0..warmup {
            let r = runtime.run(&check, &spec).await;
            anyhow::ensure!(r.status == Status::Pass, "{fixture}: {r:?}");
        }
        let load = loadavg();
        let (mut total, mut inst, mut call, mut rest) = (
            Vec::with_capacity(runs),
            Vec::with_capacity(runs),
            Vec::with_capacity(runs),
            Vec::with_capacity(runs),
        );
        let cpu0 = self_cpu();
        for _ in 0..runs {
            let t = Instant::now();
            let r = runtime.run(&check, &spec).await;
            let us = t.elapsed().as_secs_f64() * 1e6;
            anyhow::ensure!(r.status == Status::Pass, "{fixture}: {r:?}");
            let (i, c) = (r.timings.instantiate_ms * 1e3, r.timings.run_ms * 1e3);
            total.push(us);
            inst.push(i);
            call.push(c);
            rest.push((us - i - c).max(0.0));
        }
        let cpu_us = (self_cpu() - cpu0).as_secs_f64() * 1e6 / runs as f64;
        let (t, i, c, r) = (
            summarize(&mut total),
            summarize(&mut inst),
            summarize(&mut call),
            summarize(&mut rest),
        );
        eprintln!(
            "overhead {fixture}: p50 {:.1} µs p99 {:.1} µs (instantiate {:.1}, run {:.1}, rest {:.1}), cpu {:.1} µs/run, load {load}",
            t.p50, t.p99, i.p50, c.p50, r.p50, cpu_us
        );
        if fixture == "fixture_noop" {
            noop_p50 = Some(t.p50);
        }
        rows.push(vec![
            format!("`{fixture}` ({what})"),
            num(t.p50),
            num(t.p99),
            num(t.mean),
            num(cpu_us),
            num(i.p50),
            num(c.p50),
            num(r.p50),
            load,
        ]);
    }
    section.table(
        &[
            "Check",
            "p50 µs",
            "p99 µs",
            "mean µs",
            "CPU µs/run",
            "instantiate p50 µs",
            "run p50 µs",
            "rest p50 µs",
            "load (1/5/15 min)",
        ],
        &rows,
    );
    let p50 = noop_p50.unwrap_or(f64::NAN);
    section.para(format!(
        "Ratio to the target: the trivial check's p50 is {:.2}× the {TARGET_P50_US} µs target.",
        p50 / TARGET_P50_US
    ));
    section.verdict(Verdict::new(
        "1. Per-run overhead, trivial check, p50",
        "≤ 20 µs",
        format!("{} µs", num(p50)),
        p50 <= TARGET_P50_US,
    ));
    Ok(section)
}
