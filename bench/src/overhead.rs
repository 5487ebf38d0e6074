//! Measurement 1, per-run overhead: `Runtime::run` of a trivial check, in
//! process, with the daemon's engine (pooling allocator, `InstancePre`, a
//! fresh `Store` per run), one run after the other; and, for the analysis,
//! what wasmtime alone costs for the same component under engine variants.

use std::sync::Arc;
use std::time::{Duration, Instant};

use vantage::result::Status;
use vantage::runtime::{LoadedCheck, RunSpec, Runtime};

use crate::floor::{Floor, Variant};
use crate::probe::{self, Components};
use crate::report::{Section, Verdict};
use crate::stats::{num, ratio, summarize};
use crate::sys::{loadavg, self_cpu};

/// Target: p50 of a trivial check's whole run.
const TARGET_P50_US: f64 = 20.0;

/// Measured blocks per variant; the variants take turns, block by block, so
/// that a change of the machine's load hits them all alike.
const BLOCKS: usize = 10;

/// What one row measures.
enum Subject {
    Vantage {
        check: Arc<LoadedCheck>,
        spec: RunSpec,
    },
    Floor(Floor),
}

/// One row's samples.
struct Row {
    label: String,
    subject: Subject,
    total: Vec<f64>,
    instantiate: Vec<f64>,
    call: Vec<f64>,
    cpu: Duration,
}

impl Row {
    async fn run(&mut self, runtime: &Runtime, n: usize, record: bool) -> anyhow::Result<()> {
        let cpu0 = self_cpu();
        for _ in 0..n {
            match &self.subject {
                Subject::Vantage { check, spec } => {
                    let t = Instant::now();
                    let r = runtime.run(check, spec).await;
                    let us = t.elapsed().as_secs_f64() * 1e6;
                    anyhow::ensure!(r.status == Status::Pass, "{}: {r:?}", self.label);
                    if record {
                        self.total.push(us);
                        self.instantiate.push(r.timings.instantiate_ms * 1e3);
                        self.call.push(r.timings.run_ms * 1e3);
                    }
                }
                Subject::Floor(floor) => {
                    let us = floor.run().await?;
                    if record {
                        self.total.push(us);
                    }
                }
            }
        }
        if record {
            self.cpu += self_cpu() - cpu0;
        }
        Ok(())
    }
}

/// Measure `runs` runs (after `warmup`) of every row, interleaved.
pub async fn run(components: &Components, runs: usize, warmup: usize) -> anyhow::Result<Section> {
    let runtime = probe::runtime()?;
    let (mut rows, vantage_rows) = rows(components, &runtime).await?;
    for row in &mut rows {
        row.run(&runtime, warmup, false).await?;
    }
    let load_before = loadavg();
    let block = runs.div_ceil(BLOCKS);
    for _ in 0..BLOCKS {
        for row in &mut rows {
            row.run(&runtime, block, true).await?;
        }
    }
    let load = format!("{load_before} → {}", loadavg());

    let mut section = Section::new("1. Per-run overhead");
    section.para(describe(block * BLOCKS, warmup, &load));
    let mut table = Vec::new();
    let mut noop_p50 = f64::NAN;
    for (i, row) in rows.iter_mut().enumerate() {
        let (cells, p50) = row.cells(i < vantage_rows);
        if i == 0 {
            noop_p50 = p50;
        }
        table.push(cells);
    }
    section.table(
        &[
            "Run",
            "p50 µs",
            "p99 µs",
            "mean µs",
            "CPU µs/run",
            "instantiate p50 µs",
            "run p50 µs",
            "rest p50 µs",
            "p50 vs 20 µs target",
        ],
        &table,
    );
    section.verdict(Verdict::new(
        "1. Per-run overhead, trivial check, p50",
        "≤ 20 µs",
        format!("{} µs", num(noop_p50)),
        noop_p50 <= TARGET_P50_US,
    ));
    Ok(section)
}

/// Setup: the rows, Vantage's first (how many is the second value), then
/// wasmtime alone under each engine variant.
async fn rows(components: &Components, runtime: &Runtime) -> anyhow::Result<(Vec<Row>, usize)> {
    let row = |label: String, subject: Subject| Row {
        label,
        subject,
        total: Vec::new(),
        instantiate: Vec::new(),
        call: Vec::new(),
        cpu: Duration::ZERO,
    };
    let mut rows = Vec::new();
    for (fixture, what) in [
        (
            "fixture_noop",
            "trivial: one passing assertion, no host call",
        ),
        (
            "fixture_echo",
            "echo: 5 log lines, labels, measurements (host calls)",
        ),
    ] {
        rows.push(row(
            format!("Vantage `Runtime::run`, `{fixture}` ({what})"),
            Subject::Vantage {
                check: components.load(runtime, fixture).await?,
                spec: RunSpec::deny_all(fixture, Duration::from_secs(10)),
            },
        ));
    }
    let vantage_rows = rows.len();
    for variant in [
        Variant::Daemon,
        Variant::PagemapKeepResident(4 << 20),
        Variant::KeepResident(4 << 20),
        Variant::OnDemand,
    ] {
        rows.push(row(
            format!("wasmtime alone, `fixture_noop`, {}", variant.describe()),
            Subject::Floor(Floor::new(&components.path("fixture_noop"), variant)?),
        ));
    }
    Ok((rows, vantage_rows))
}

/// Report: the paragraph that says what is measured.
fn describe(runs: usize, warmup: usize, load: &str) -> String {
    format!(
        "`Runtime::run` in process, sequentially on one tokio task, with the daemon's engine \
         (pooling allocator sized for `concurrency` 64, 64 MiB memory cap, no fuel, epoch \
         interruption): a fresh `Store` and WASI context, `InstancePre::instantiate`, the call \
         of `run`, the result converted and redacted. Nothing granted (`RunSpec::deny_all`). \
         Wall time per run from `Instant`; CPU per run from `getrusage` over the runs. \
         `instantiate` and `run` are the runtime's own timings (`RunTimings`); `rest` is the \
         remainder (store and WASI context set-up, result conversion, redaction, dropping the \
         store). Below them, for the analysis, wasmtime alone with the same component: a fresh \
         `Store` with a bare WASI context, `InstancePre::instantiate`, `run`, drop — no \
         Vantage capabilities, captures or result conversion (the `vantage:check` imports are \
         linked as traps; the trivial check calls none) — under four engine variants: the \
         daemon's; its pool keeping the first 4 MiB of each memory and table resident and \
         finding the pages to reset with `PAGEMAP_SCAN` (no `madvise`, so no page faults on \
         the next run and no TLB-shootdown IPIs); the same without `PAGEMAP_SCAN` (`memset` of \
         the whole 4 MiB); on-demand allocation. {runs} runs per row after {warmup} warm-up runs, \
         in {BLOCKS} blocks taking turns (load {load})."
    )
}

impl Row {
    /// Report: this row's table cells, and its p50 (µs). `split`: whether
    /// the instantiate/run/rest columns apply (Vantage's rows).
    fn cells(&mut self, split: bool) -> (Vec<String>, f64) {
        let n = self.total.len();
        let cpu_us = self.cpu.as_secs_f64() * 1e6 / n as f64;
        let rest: Vec<f64> = self
            .total
            .iter()
            .zip(self.instantiate.iter().zip(&self.call))
            .map(|(t, (i, c))| (t - i - c).max(0.0))
            .collect();
        let (t, inst, call, rest) = (
            summarize(&mut self.total),
            summarize(&mut self.instantiate),
            summarize(&mut self.call),
            summarize(&mut rest.clone()),
        );
        eprintln!(
            "overhead {}: p50 {:.1} µs p99 {:.1} µs, cpu {:.1} µs/run",
            self.label, t.p50, t.p99, cpu_us
        );
        let split = |v: f64| if split { num(v) } else { "–".into() };
        let cells = vec![
            self.label.clone(),
            num(t.p50),
            num(t.p99),
            num(t.mean),
            num(cpu_us),
            split(inst.p50),
            split(call.p50),
            split(rest.p50),
            ratio(t.p50 / TARGET_P50_US),
        ];
        (cells, t.p50)
    }
}
