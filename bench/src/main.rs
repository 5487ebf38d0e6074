//! `vantage-bench`: Vantage's benchmarks, side by side in one run, on
//! 127.0.0.1 only, bounded in count and time.
//!
//! ```sh
//! cargo run --release -p vantage-bench -- all
//! ```
//!
//! 1. `overhead`: per-run overhead of a trivial check (in process).
//! 2. `native`: the `http` check vs the same request in native Rust (CPU per run).
//! 3. `blackbox`: vs blackbox_exporter, probes per CPU-second (HTTP, HTTPS).
//! 4. `scale`: the real daemon with 10,000 one-minute checks for 3 minutes.
//! 5. `coldstart`: the real daemon with 100 distinct components, cold and warm.
//! 6. `loopers`: the real daemon with 2,000 checks every 10 s beside 0 and 8
//!    checks that loop until their deadline: start lateness.
//!
//! `profile` (one check in a loop, for perf and what-ifs) and `floor`
//! (wasmtime alone under an engine variant) are for digging, not in `all`.
//!
//! Progress goes to stderr; the markdown summary (what BENCHMARKS.md is
//! made of) to stdout and, with `--out`, to a file. The probes' target is a
//! separate process (`vantage-bench target`) so its CPU is never counted.

mod blackbox;
mod coldstart;
mod daemon;
mod floor;
mod loopers;
mod native;
mod overhead;
mod probe;
mod profile;
mod report;
mod scale;
mod stats;
mod sys;
mod target;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::probe::Components;
use crate::report::Section;
use crate::target::Target;

/// Vantage's benchmarks (see BENCHMARKS.md).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
    #[command(flatten)]
    opts: Opts,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Every measurement, in one run (about 11 minutes).
    All,
    /// 1. Per-run overhead of a trivial check.
    Overhead,
    /// 2. The `http` check vs native reqwest: CPU per run.
    Native,
    /// 3. Vs blackbox_exporter: probes per CPU-second, HTTP and HTTPS.
    Blackbox,
    /// 4. The daemon with many one-minute checks: RSS, lateness, lost runs.
    Scale,
    /// 5. The daemon with many distinct components: cold and warm start.
    Coldstart,
    /// 6. The daemon with many checks beside N loopers: start lateness.
    Loopers {
        /// Numbers of loopers, one daemon run each.
        #[arg(long, value_delimiter = ',', default_value = "0,8")]
        loopers: Vec<usize>,
        /// Well-behaved `http` checks.
        #[arg(long = "well-behaved", default_value_t = 2_000)]
        well_behaved: usize,
        /// Interval of every check.
        #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
        every: Duration,
        /// Timeout of the loopers (each of their runs computes this long).
        #[arg(long, default_value = "8s", value_parser = humantime::parse_duration)]
        looper_timeout: Duration,
        /// How long each daemon runs once ready.
        #[arg(long, default_value = "1m", value_parser = humantime::parse_duration)]
        window: Duration,
    },
    /// Run one check in a loop and print its CPU per run (for perf,
    /// callgrind and what-if comparisons; not part of `all`).
    Profile {
        /// Component name in the checks directory (`http`, `fixture_noop`, …).
        #[arg(long, default_value = "http")]
        check: String,
        /// Target the check fetches: `http`, `https`, `none` or `denied` (a
        /// target outside the allow list: no network).
        #[arg(long, default_value = "http")]
        fetch: String,
        /// Replace the benchmark's `http` config with these `key=value`s.
        #[arg(long = "set")]
        set: Vec<String>,
        /// Also run the same request natively with reqwest, for comparison.
        #[arg(long)]
        native: bool,
        /// Runs at once (more than 1: CPU per run only).
        #[arg(long, default_value_t = 1)]
        in_flight: usize,
    },
    /// Section 1's "wasmtime alone" loop for one engine variant (for perf).
    #[command(hide = true)]
    Floor {
        /// `daemon`, `ondemand`, `keep:<KiB>` (memory and tables kept
        /// resident) or `pagemap:<KiB>` (the same with `PAGEMAP_SCAN`).
        #[arg(long, default_value = "daemon")]
        variant: String,
        /// Component name in the checks directory.
        #[arg(long, default_value = "fixture_noop")]
        check: String,
    },
    /// The probes' target (started by the other commands).
    #[command(hide = true)]
    Target {
        /// Directory holding leaf.pem and leaf.key.
        #[arg(long)]
        cert_dir: PathBuf,
    },
}

#[derive(Debug, clap::Args)]
struct Opts {
    /// 1: measured runs per check.
    #[arg(long, global = true, default_value_t = 20_000)]
    runs: usize,
    /// 1: warm-up runs per check.
    #[arg(long, global = true, default_value_t = 2_000)]
    warmup: usize,
    /// 2: runs per side and round.
    #[arg(long, global = true, default_value_t = 2_000)]
    native_runs: usize,
    /// 2, 3: alternating rounds per side.
    #[arg(long, global = true, default_value_t = 3)]
    rounds: usize,
    /// 3: probes per prober, case and round.
    #[arg(long, global = true, default_value_t = 4_000)]
    probes: usize,
    /// 3: probes in flight.
    #[arg(long, global = true, default_value_t = 8)]
    concurrency: usize,
    /// 4: configured one-minute checks.
    #[arg(long, global = true, default_value_t = 10_000)]
    checks: usize,
    /// 4: how long the daemon runs once ready.
    #[arg(long, global = true, default_value = "3m", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// 5: distinct components.
    #[arg(long, global = true, default_value_t = 100)]
    components: usize,
    /// 5: warm starts after the cold one.
    #[arg(long, global = true, default_value_t = 3)]
    warm_starts: usize,
    /// The `vantage` binary (default: built with `cargo build --release`
    /// next to this one).
    #[arg(long, global = true)]
    vantage: Option<PathBuf>,
    /// Where the wasm components are (default: checks/target/wasm32-wasip2/release,
    /// built if missing).
    #[arg(long, global = true)]
    checks_dir: Option<PathBuf>,
    /// Also write the markdown summary to this file.
    #[arg(long, global = true)]
    out: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if let Cmd::Target { cert_dir } = &cli.command {
        return runtime.block_on(target::serve(cert_dir));
    }
    runtime.block_on(bench(cli))
}

/// The repository root (this crate is `<root>/bench`).
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("bench/ has a parent")
        .to_path_buf()
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// The wasm components, built (`cd checks && cargo build --release -p …`)
/// if one is missing.
fn components(opts: &Opts) -> anyhow::Result<Components> {
    if let Some(dir) = &opts.checks_dir {
        return Ok(Components(dir.clone()));
    }
    let checks = repo().join("checks");
    let components = Components(checks.join("target/wasm32-wasip2/release"));
    let needed = ["http", "fixture_noop", "fixture_echo", "fixture_loop"];
    if needed.iter().any(|n| !components.path(n).exists()) {
        eprintln!("building the checks (cd checks && cargo build --release)");
        let status = cargo()
            .args([
                "build",
                "--release",
                "-p",
                "http",
                "-p",
                "fixture-noop",
                "-p",
                "fixture-echo",
                "-p",
                "fixture-loop",
            ])
            .current_dir(&checks)
            .status()?;
        anyhow::ensure!(status.success(), "building the checks failed");
    }
    Ok(components)
}

/// The `vantage` binary: `--vantage`, else `cargo build --release
/// --workspace --bin vantage` (a no-op when up to date) and the binary next
/// to this one. `--workspace`, not `-p vantage`: features are resolved over
/// the whole workspace as in `cargo build --release`, so its wasmtime is
/// reused instead of compiled again with another feature set.
fn vantage_binary(opts: &Opts) -> anyhow::Result<PathBuf> {
    if let Some(path) = &opts.vantage {
        return Ok(path.clone());
    }
    eprintln!("building the daemon (cargo build --release --workspace --bin vantage)");
    let status = cargo()
        .args(["build", "--release", "--workspace", "--bin", "vantage"])
        .current_dir(repo())
        .status()?;
    anyhow::ensure!(status.success(), "building vantage failed");
    let exe = std::env::current_exe()?;
    let path = exe
        .parent()
        .context("no directory for this executable")?
        .join("vantage");
    anyhow::ensure!(path.exists(), "{} not found", path.display());
    Ok(path)
}

/// The git commit benchmarked (with `-dirty` for local changes).
fn commit() -> String {
    Command::new("git")
        .args(["describe", "--always", "--dirty", "--abbrev=12"])
        .current_dir(repo())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "?".into())
}

async fn bench(cli: Cli) -> anyhow::Result<()> {
    let opts = &cli.opts;
    let header = run_header();
    let components = components(opts)?;
    if let Cmd::Floor { variant, check } = &cli.command {
        return run_floor(&components, variant, check, opts).await;
    }
    let needs_daemon = matches!(
        cli.command,
        Cmd::All | Cmd::Scale | Cmd::Coldstart | Cmd::Loopers { .. }
    );
    let vantage = if needs_daemon {
        Some(vantage_binary(opts)?)
    } else {
        None
    };
    let target = Target::start()?;
    eprintln!(
        "target: {} and {} (pid {})",
        target.http, target.https, target.pid
    );
    if let Cmd::Profile {
        check,
        fetch,
        set,
        native,
        in_flight,
    } = &cli.command
    {
        let args = profile::Args {
            check,
            fetch,
            set,
            native: *native,
            runs: opts.runs,
            in_flight: (*in_flight).max(1),
        };
        return profile::run(&components, &target, args).await;
    }
    let (mut sections, blackbox_index) = in_process(&cli, &components, &target).await?;
    let vantage = vantage.as_deref();
    daemon_sections(
        &cli,
        vantage,
        &components,
        &target,
        &mut sections,
        blackbox_index,
    )
    .await?;
    let markdown = report::document(&header, &sections);
    println!("{markdown}");
    if let Some(out) = &opts.out {
        std::fs::write(out, &markdown)?;
        eprintln!("wrote {}", out.display());
    }
    Ok(())
}

/// The report's header: command, date, commit, machine and load.
fn run_header() -> String {
    let args: Vec<String> = std::env::args().skip(1).collect();
    format!(
        "# Vantage benchmark run\n\n\
         - Command: `cargo run --release -p vantage-bench -- {}`\n\
         - Date: {}\n\
         - Commit: {}\n\
         - Machine: {}\n\
         - Load average (1/5/15 min) at start: {} (other builds and tests may share the \
         machine: each table notes the load next to its figures)\n\n",
        args.join(" "),
        chrono::Local::now().format("%Y-%m-%d %H:%M %Z"),
        commit(),
        sys::machine(),
        sys::loadavg(),
    )
}

/// `floor`: section 1's "wasmtime alone" loop for one engine variant, printed.
async fn run_floor(
    components: &Components,
    variant: &str,
    check: &str,
    opts: &Opts,
) -> anyhow::Result<()> {
    let kib = |v: &str| v.parse::<usize>().map(|k| k << 10);
    let variant = match variant.split_once(':') {
        None if variant == "daemon" => floor::Variant::Daemon,
        None if variant == "ondemand" => floor::Variant::OnDemand,
        Some(("keep", k)) => floor::Variant::KeepResident(kib(k)?),
        Some(("pagemap", k)) => floor::Variant::PagemapKeepResident(kib(k)?),
        _ => {
            anyhow::bail!("--variant {variant}: daemon, ondemand, keep:<KiB> or pagemap:<KiB>")
        }
    };
    let s = floor::measure(&components.path(check), variant, opts.runs, opts.warmup).await?;
    println!(
        "{check} under wasmtime alone, {}: p50 {:.1} µs, p99 {:.1} µs, mean {:.1} µs",
        variant.describe(),
        s.p50,
        s.p99,
        s.mean
    );
    Ok(())
}

/// Sections 1–3 (in this process) that the command asks for, and the index
/// of section 3 if it ran (section 4 adds a paragraph to it).
async fn in_process(
    cli: &Cli,
    components: &Components,
    target: &Target,
) -> anyhow::Result<(Vec<Section>, Option<usize>)> {
    let opts = &cli.opts;
    let mut sections: Vec<Section> = Vec::new();
    let all = matches!(cli.command, Cmd::All);
    if all || matches!(cli.command, Cmd::Overhead) {
        sections.push(overhead::run(components, opts.runs, opts.warmup).await?);
    }
    if all || matches!(cli.command, Cmd::Native) {
        sections.push(native::run(components, target, opts.native_runs, opts.rounds).await?);
    }
    let mut blackbox_index = None;
    if all || matches!(cli.command, Cmd::Blackbox) {
        blackbox_index = Some(sections.len());
        sections.push(
            blackbox::run(
                components,
                target,
                opts.probes,
                opts.concurrency,
                opts.rounds,
            )
            .await?,
        );
    }
    Ok((sections, blackbox_index))
}

/// Sections 4–6 (the real daemon) that the command asks for, appended to
/// `sections` in the report's order (scale, cold start, loopers).
async fn daemon_sections(
    cli: &Cli,
    vantage: Option<&Path>,
    components: &Components,
    target: &Target,
    sections: &mut Vec<Section>,
    blackbox_index: Option<usize>,
) -> anyhow::Result<()> {
    let opts = &cli.opts;
    let all = matches!(cli.command, Cmd::All);
    let mut cold = None;
    if all || matches!(cli.command, Cmd::Coldstart) {
        let vantage = vantage.context("vantage binary")?;
        cold = Some(
            coldstart::run(
                vantage,
                components,
                target,
                opts.components,
                opts.warm_starts,
            )
            .await?,
        );
    }
    if all || matches!(cli.command, Cmd::Scale) {
        let vantage = vantage.context("vantage binary")?;
        let outcome = scale::run(vantage, components, target, opts.checks, opts.duration).await?;
        if let Some(i) = blackbox_index {
            sections[i].para(format!(
                "For reference, the whole daemon in section 4 (scheduler, history in SQLite, \
                 metrics, the same `http` check over plain HTTP, 64 runs at most in flight) \
                 did **{} runs per CPU-second** of its process.",
                stats::group(outcome.runs_per_cpu_s.round() as i64)
            ));
        }
        sections.push(outcome.section);
    }
    sections.extend(cold);
    let default_loopers = [0, 8];
    if let Some(args) = looper_args(&cli.command, &default_loopers) {
        let vantage = vantage.context("vantage binary")?;
        sections.push(loopers::run(vantage, components, target, args).await?);
    }
    Ok(())
}

/// The loopers measurement's arguments: the command's, `all`'s defaults, or
/// none when the command does not run it.
fn looper_args<'a>(command: &'a Cmd, default_loopers: &'a [usize]) -> Option<loopers::Args<'a>> {
    match command {
        Cmd::Loopers {
            loopers,
            well_behaved,
            every,
            looper_timeout,
            window,
        } => Some(loopers::Args {
            counts: loopers,
            checks: *well_behaved,
            every: *every,
            looper_timeout: *looper_timeout,
            window: *window,
        }),
        Cmd::All => Some(loopers::Args {
            counts: default_loopers,
            checks: 2_000,
            every: Duration::from_secs(10),
            looper_timeout: Duration::from_secs(8),
            window: Duration::from_secs(60),
        }),
        _ => None,
    }
}
