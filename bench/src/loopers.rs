//! Measurement 6, loopers: the real `vantage daemon` with many well-behaved
//! checks and N checks that loop until their deadline, for a minute per N:
//! the start lateness of the well-behaved checks (from the history SQLite),
//! which the guest pool's low-priority lane keeps low (issue 12).

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::daemon::{CheckEntry, Daemon, config};
use crate::probe::{self, Components};
use crate::report::{Section, Verdict};
use crate::stats::{group, num, summarize};
use crate::sys::{TempDir, loadavg, proc_cpu, unix_ms};
use crate::target::Target;

/// The bound on the well-behaved checks' lateness p99 (issue 12).
const P99_BOUND_MS: f64 = 100.0;

/// What one run of the daemon measured.
struct Row {
    loopers: usize,
    runs: usize,
    mean: f64,
    p50: f64,
    p99: f64,
    max: f64,
    within_100ms: f64,
    looper_runs: usize,
    cpu_s: f64,
    load: String,
}

/// The settings of the measurement.
pub struct Args<'a> {
    /// Numbers of loopers, one daemon run each.
    pub counts: &'a [usize],
    /// Well-behaved `http` checks.
    pub checks: usize,
    /// Their interval (and the loopers').
    pub every: Duration,
    /// The loopers' timeout: how long each of their runs computes.
    pub looper_timeout: Duration,
    /// How long each daemon runs once ready.
    pub window: Duration,
}

/// Run the daemon once per count of loopers.
pub async fn run(
    vantage: &Path,
    components: &Components,
    target: &Target,
    args: Args<'_>,
) -> anyhow::Result<Section> {
    let mut rows = Vec::new();
    for &loopers in args.counts {
        rows.push(once(vantage, components, target, &args, loopers).await?);
    }
    let every = humantime::format_duration(args.every);
    let mut section = Section::new("6. Loopers beside well-behaved checks");
    section.para(format!(
        "The real daemon (default `[global]`: `concurrency` 64) with {} `http` checks ({}) \
         every {every} against the loopback target, as in section 4, plus N checks \
         (`fixture_loop`: an endless loop in `run`) every {every} with a {} timeout, so \
         each of their runs computes until its deadline. Each N is a fresh daemon, run for \
         {} once it lists every check; the history's `lateness_ms` of the well-behaved \
         checks' runs planned in that window is summarised (start lateness: actual start \
         − planned start, after waiting for a concurrency slot). Issue 12 measured, \
         before the guest pool had a low-priority lane, a mean of 1.1 ms without loopers \
         and 2.05 s with 8 (19 % within 100 ms, all 64 slots in flight).",
        group(args.checks as i64),
        probe::describe_file(&components.path("http")),
        humantime::format_duration(args.looper_timeout),
        humantime::format_duration(args.window),
    ));
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.loopers.to_string(),
                group(r.runs as i64),
                format!("{} ms", num(r.mean)),
                format!("{} ms", num(r.p50)),
                format!("**{} ms**", num(r.p99)),
                format!("{} ms", num(r.max)),
                format!("{:.1} %", r.within_100ms),
                r.looper_runs.to_string(),
                format!("{:.1} s", r.cpu_s),
                r.load.clone(),
            ]
        })
        .collect();
    section.table(
        &[
            "Loopers",
            "Well-behaved runs",
            "Lateness mean",
            "p50",
            "p99",
            "max",
            "≤ 100 ms",
            "Looper runs",
            "Daemon CPU",
            "Load (1/5/15)",
        ],
        &table,
    );
    if let Some(worst) = rows.iter().max_by_key(|r| r.loopers) {
        section.verdict(Verdict::new(
            &format!(
                "6. Loopers, start lateness p99 of well-behaved checks with {} loopers",
                worst.loopers
            ),
            "≤ 100 ms",
            format!(
                "{} ms (mean {}, max {})",
                num(worst.p99),
                num(worst.mean),
                num(worst.max)
            ),
            worst.p99 <= P99_BOUND_MS,
        ));
    }
    Ok(section)
}

async fn once(
    vantage: &Path,
    components: &Components,
    target: &Target,
    args: &Args<'_>,
    loopers: usize,
) -> anyhow::Result<Row> {
    let dir = TempDir::new("loopers")?;
    let cache = dir.path().join("cache");
    let entries: Vec<CheckEntry> = (0..args.checks)
        .map(|i| CheckEntry {
            name: format!("check-{i:05}"),
            component: components.path("http"),
            target: format!("{}/c/{i}", target.http),
        })
        .collect();
    let every = humantime::format_duration(args.every).to_string();
    let timeout = humantime::format_duration(args.looper_timeout).to_string();
    let looping = components.path("fixture_loop");
    anyhow::ensure!(looping.exists(), "{} not built", looping.display());
    let mut daemon = Daemon::start_with(vantage, dir.path(), &cache, "daemon.log", |l, d| {
        let mut text =
            config(l, d, &entries).replace("every = \"1m\"", &format!("every = \"{every}\""));
        for i in 0..loopers {
            let _ = write!(
                text,
                "[[check]]\nname = \"looper-{i}\"\ncomponent = \"{}\"\nevery = \"{every}\"\n\
                 timeout = \"{timeout}\"\n\n",
                looping.display()
            );
        }
        text
    })?;
    let pid = daemon.process.pid();
    daemon
        .wait_healthy(Duration::from_millis(50), Duration::from_secs(300))
        .await?;
    daemon
        .wait_listed(
            args.checks + loopers,
            Duration::from_secs(1),
            Duration::from_secs(600),
        )
        .await?;
    let ready_ms = unix_ms();
    let load_before = loadavg();
    eprintln!(
        "loopers: {loopers} loopers beside {} checks, running for {} (load {load_before})",
        args.checks,
        humantime::format_duration(args.window)
    );
    let cpu0 = proc_cpu(pid)?;
    let started = Instant::now();
    tokio::time::sleep(args.window).await;
    let cpu = proc_cpu(pid)? - cpu0;
    let window_end = ready_ms + started.elapsed().as_millis() as u64;
    let load = format!("{load_before} → {}", loadavg());
    daemon.stop()?;

    let db = rusqlite::Connection::open_with_flags(
        dir.path()
            .join("data")
            .join(vantage::sinks::history::FILE_NAME),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )?;
    let mut statement = db.prepare(
        "SELECT check_name, lateness_ms FROM runs \
         WHERE planned_unix_ms > ?1 AND planned_unix_ms <= ?2",
    )?;
    let rows = statement.query_map([ready_ms as i64, window_end as i64], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, f64>(1)?))
    })?;
    let (mut lateness, mut looper_runs) = (Vec::new(), 0);
    for row in rows {
        let (name, late) = row?;
        if name.starts_with("looper-") {
            looper_runs += 1;
        } else {
            lateness.push(late);
        }
    }
    let runs = lateness.len();
    let within = lateness.iter().filter(|l| **l <= 100.0).count();
    let s = summarize(&mut lateness);
    eprintln!(
        "loopers: {loopers}: {runs} runs, lateness mean {:.1} p50 {:.1} p99 {:.1} max {:.1} ms",
        s.mean, s.p50, s.p99, s.max
    );
    Ok(Row {
        loopers,
        runs,
        mean: s.mean,
        p50: s.p50,
        p99: s.p99,
        max: s.max,
        within_100ms: 100.0 * within as f64 / runs.max(1) as f64,
        looper_runs,
        cpu_s: cpu.as_secs_f64(),
        load,
    })
}
