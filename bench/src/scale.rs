//! Measurement 4, daemon scale: the real `vantage daemon` with many one-minute checks
//! against the loopback target, for a few minutes: memory, start lateness,
//! runs completed vs planned (from the history SQLite).

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use vantage::daemon::plan;

use crate::daemon::{CheckEntry, Daemon};
use crate::probe::{self, Components};
use crate::report::{Section, Verdict};
use crate::stats::{group, num, summarize};
use crate::sys::{TempDir, loadavg, proc_cpu, proc_memory, unix_ms};
use crate::target::Target;

const PERIOD_MS: u64 = 60_000;
/// Slots this close to the stop are not counted as planned: the stop may
/// come while they wait for their start.
const STOP_MARGIN_MS: u64 = 1_000;

/// What the scale run found, also used by section 3 (the daemon's own
/// probes per CPU-second).
pub struct ScaleOutcome {
    /// The report section.
    pub section: Section,
    /// Runs recorded in the window per CPU-second of the daemon.
    pub runs_per_cpu_s: f64,
}

/// Run `checks` one-minute checks for `duration` after the daemon is ready.
pub async fn run(
    vantage: &Path,
    components: &Components,
    target: &Target,
    checks: usize,
    duration: Duration,
) -> anyhow::Result<ScaleOutcome> {
    let dir = TempDir::new("scale")?;
    let entries: Vec<CheckEntry> = (0..checks)
        .map(|i| CheckEntry {
            name: format!("check-{i:05}"),
            component: components.path("http"),
            target: format!("{}/c/{i}", target.http),
        })
        .collect();
    let (daemon, ready) = start(vantage, &dir, &entries).await?;
    let sampled = sample(daemon, ready, duration).await?;
    eprintln!(
        "scale: stopped in {:?}; reading the history",
        sampled.stop_took
    );
    let window_end = sampled.stop_ms - STOP_MARGIN_MS;
    let planned = planned_slots(&entries, sampled.ready.ready_ms, window_end);
    let history = read_history(&dir, &planned, sampled.ready.ready_ms, window_end)?;
    let runs_per_cpu_s = history.completed as f64 / sampled.cpu.as_secs_f64();
    eprintln!(
        "scale: {}/{} runs, lost {}, lateness p50 {:.1} p99 {:.1} max {:.1} ms, VmHWM {} MiB",
        history.completed,
        history.planned_total,
        history.lost,
        history.late.p50,
        history.late.p99,
        history.late.max,
        sampled.hwm / 1024
    );
    let mut section = Section::new("4. Daemon scale");
    section.para(describe(components, checks, duration, &sampled, window_end));
    let mut rows = memory_rows(&sampled);
    rows.extend(run_rows(&history));
    rows.extend(cpu_rows(&sampled, &history, duration, runs_per_cpu_s));
    section.table(&["Figure", "Value", "Target"], &rows);
    if !history.lost_examples.is_empty() {
        section.para(format!(
            "Lost slots (first few): {}",
            history.lost_examples.join(", ")
        ));
    }
    verdicts(&mut section, &sampled, &history);
    Ok(ScaleOutcome {
        section,
        runs_per_cpu_s,
    })
}

/// The daemon once it lists every check.
struct Ready {
    /// The daemon's process id.
    pid: u32,
    /// From spawn to `/healthz` answering.
    healthy: Duration,
    /// From spawn to `/api/v1/checks` listing every check.
    listed: Duration,
    /// When it was ready (Unix ms).
    ready_ms: u64,
    /// RSS when ready (KiB).
    rss_ready: u64,
    /// Load average before the start.
    load_before: String,
    /// How many checks it runs.
    checks: usize,
}

/// Setup: start the daemon with `entries` and wait until it lists them all.
async fn start(
    vantage: &Path,
    dir: &TempDir,
    entries: &[CheckEntry],
) -> anyhow::Result<(Daemon, Ready)> {
    let checks = entries.len();
    let cache = dir.path().join("cache");
    let load_before = loadavg();
    eprintln!("scale: starting the daemon with {checks} checks (load {load_before})");
    let mut daemon = Daemon::start(vantage, dir.path(), &cache, entries, "daemon.log")?;
    let pid = daemon.process.pid();
    let healthy = daemon
        .wait_healthy(Duration::from_millis(50), Duration::from_secs(300))
        .await?;
    let listed = daemon
        .wait_listed(checks, Duration::from_secs(1), Duration::from_secs(600))
        .await?;
    let ready_ms = unix_ms();
    let (rss_ready, _) = proc_memory(pid)?;
    let ready = Ready {
        pid,
        healthy,
        listed,
        ready_ms,
        rss_ready,
        load_before,
        checks,
    };
    Ok((daemon, ready))
}

/// What sampling the running daemon measured, and the stop.
struct Sampled {
    /// The start.
    ready: Ready,
    /// The daemon's CPU time in the window.
    cpu: Duration,
    /// When sampling stopped (Unix ms).
    stop_ms: u64,
    /// Largest 1 s RSS sample (KiB).
    rss_max: u64,
    /// RSS at the stop (KiB).
    rss_end: u64,
    /// VmHWM at the stop (KiB).
    hwm: u64,
    /// Load average after the window.
    load_after: String,
    /// How long the graceful stop took.
    stop_took: Duration,
}

/// Measure: sample the daemon's memory every second for `duration`, then stop it.
async fn sample(daemon: Daemon, ready: Ready, duration: Duration) -> anyhow::Result<Sampled> {
    let pid = ready.pid;
    eprintln!(
        "scale: healthy after {:?}, {} checks listed after {:?}, RSS {} MiB; running for {}",
        ready.healthy,
        ready.checks,
        ready.listed,
        ready.rss_ready / 1024,
        humantime::format_duration(duration)
    );
    let cpu0 = proc_cpu(pid)?;
    let started = Instant::now();
    let (mut rss_max, mut samples) = (0u64, 0usize);
    while started.elapsed() < duration {
        tokio::time::sleep(Duration::from_secs(1).min(duration.saturating_sub(started.elapsed())))
            .await;
        let (rss, _) = proc_memory(pid)?;
        rss_max = rss_max.max(rss);
        samples += 1;
        if samples.is_multiple_of(30) {
            eprintln!(
                "scale: {samples}s, RSS {} MiB, load {}",
                rss / 1024,
                loadavg()
            );
        }
    }
    let cpu = proc_cpu(pid)? - cpu0;
    let stop_ms = unix_ms();
    let (rss_end, hwm) = proc_memory(pid)?;
    let load_after = loadavg();
    let stop_took = daemon.stop()?;
    Ok(Sampled {
        ready,
        cpu,
        stop_ms,
        rss_max,
        rss_end,
        hwm,
        load_after,
        stop_took,
    })
}

/// Planned slots in (ready, window_end] for every check, by check name.
fn planned_slots(
    entries: &[CheckEntry],
    ready_ms: u64,
    window_end: u64,
) -> HashMap<String, Vec<u64>> {
    let mut planned = HashMap::new();
    for e in entries {
        let offset = plan::offset(&e.name, Duration::from_millis(PERIOD_MS)).as_millis() as u64;
        let mut k = if ready_ms < offset {
            0
        } else {
            (ready_ms - offset) / PERIOD_MS + 1
        };
        let mut slots = Vec::new();
        while offset + k * PERIOD_MS <= window_end {
            slots.push(offset + k * PERIOD_MS);
            k += 1;
        }
        planned.insert(e.name.clone(), slots);
    }
    planned
}

/// What the history SQLite holds for the window, against the plan.
struct History {
    /// Planned slots in the window, all checks.
    planned_total: usize,
    /// Rows in the window.
    completed: usize,
    /// Planned slots with no row.
    lost: usize,
    /// The first few lost slots, `name@ms`.
    lost_examples: Vec<String>,
    /// Rows whose slot is not planned.
    off_grid: usize,
    /// Slots with more than one row.
    duplicates: usize,
    /// Start lateness (ms).
    late: crate::stats::Summary,
    /// Run duration (ms).
    dur: crate::stats::Summary,
    /// `status count` per status, sorted.
    statuses: Vec<String>,
    /// Every row in the history, also outside the window.
    total_rows: i64,
}

/// Read the daemon's history and compare it with `planned`.
fn read_history(
    dir: &TempDir,
    planned: &HashMap<String, Vec<u64>>,
    ready_ms: u64,
    window_end: u64,
) -> anyhow::Result<History> {
    let db = rusqlite::Connection::open_with_flags(
        dir.path()
            .join("data")
            .join(vantage::sinks::history::FILE_NAME),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )?;
    let mut statement = db.prepare(
        "SELECT check_name, planned_unix_ms, lateness_ms, status, duration_ms FROM runs \
         WHERE planned_unix_ms > ?1 AND planned_unix_ms <= ?2",
    )?;
    let rows = statement.query_map([ready_ms as i64, window_end as i64], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)? as u64,
            r.get::<_, f64>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, f64>(4)?,
        ))
    })?;
    let mut seen: HashMap<(String, u64), usize> = HashMap::new();
    let (mut lateness, mut durations) = (Vec::new(), Vec::new());
    let mut statuses: HashMap<String, usize> = HashMap::new();
    for row in rows {
        let (name, planned_ms, late, status, duration_ms) = row?;
        *seen.entry((name, planned_ms)).or_default() += 1;
        lateness.push(late);
        durations.push(duration_ms);
        *statuses.entry(status).or_default() += 1;
    }
    let total_rows: i64 = db.query_row("SELECT count(*) FROM runs", [], |r| r.get(0))?;
    let (mut lost, mut lost_examples) = (0usize, Vec::new());
    for (name, slots) in planned {
        for s in slots {
            if !seen.contains_key(&(name.clone(), *s)) {
                lost += 1;
                if lost_examples.len() < 5 {
                    lost_examples.push(format!("{name}@{s}"));
                }
            }
        }
    }
    let mut statuses: Vec<String> = statuses
        .into_iter()
        .map(|(s, n)| format!("{s} {}", group(n as i64)))
        .collect();
    statuses.sort();
    Ok(History {
        planned_total: planned.values().map(Vec::len).sum(),
        completed: lateness.len(),
        lost,
        lost_examples,
        off_grid: seen
            .keys()
            .filter(|(n, p)| !planned.get(n).is_some_and(|s| s.contains(p)))
            .count(),
        duplicates: seen.values().filter(|c| **c > 1).count(),
        late: summarize(&mut lateness),
        dur: summarize(&mut durations),
        statuses,
        total_rows,
    })
}

/// Report: the paragraph that says what was run.
fn describe(
    components: &Components,
    checks: usize,
    duration: Duration,
    sampled: &Sampled,
    window_end: u64,
) -> String {
    let window_s = (window_end - sampled.ready.ready_ms) as f64 / 1000.0;
    format!(
        "The real daemon (`target/release/vantage daemon --no-watch`, default `[global]`: \
         `concurrency` 64, history on, metrics on) with a generated configuration of \
         {} one-minute checks, each the `http` check ({}) with `expect.status = [200]` and \
         the body regex, against its own URL on the loopback target process (plain HTTP; a \
         new connection per run). Ready = `/api/v1/checks` lists every check ({} after \
         spawn; `/healthz` answered after {}). Then it runs for {} while this process \
         samples `/proc/PID/status` every second, and is stopped with SIGTERM (graceful stop \
         took {}). The history SQLite (`runs`) is read afterwards. Planned runs = for each \
         check, its slots on its 60 s grid (`plan::offset`) in (ready, stop − {} s] = a \
         {:.0} s window; a lost run is a planned slot with no row.",
        group(checks as i64),
        probe::describe_file(&components.path("http")),
        humantime::format_duration(round_ms(sampled.ready.listed)),
        humantime::format_duration(round_ms(sampled.ready.healthy)),
        humantime::format_duration(duration),
        humantime::format_duration(round_ms(sampled.stop_took)),
        STOP_MARGIN_MS / 1000,
        window_s,
    )
}

/// One table row.
fn row(figure: &str, value: String, target: &str) -> Vec<String> {
    vec![figure.into(), value, target.into()]
}

/// Report: the memory rows of the table.
fn memory_rows(s: &Sampled) -> Vec<Vec<String>> {
    let mib = |kib: u64| num(kib as f64 / 1024.0);
    vec![
        row(
            "RSS when ready",
            format!("{} MiB", mib(s.ready.rss_ready)),
            "",
        ),
        row(
            "RSS max while running (1 s samples)",
            format!("{} MiB", mib(s.rss_max)),
            "",
        ),
        row("RSS at stop", format!("{} MiB", mib(s.rss_end)), ""),
        row(
            "Peak RSS (VmHWM, whole life incl. start-up)",
            format!("**{} MiB**", mib(s.hwm)),
            "≤ 300 MiB",
        ),
    ]
}

/// Report: the lateness, runs and statuses rows of the table.
fn run_rows(h: &History) -> Vec<Vec<String>> {
    let late = &h.late;
    vec![
        row(
            "Start lateness p50 / p90",
            format!("{} / {} ms", num(late.p50), num(late.p90)),
            "",
        ),
        row(
            "Start lateness p99",
            format!("**{} ms**", num(late.p99)),
            "≤ 50 ms",
        ),
        row("Start lateness max", format!("{} ms", num(late.max)), ""),
        row(
            "Runs planned in the window",
            group(h.planned_total as i64),
            "",
        ),
        row(
            "Runs completed (rows for planned slots)",
            format!(
                "{} ({:.2} %)",
                group(h.completed as i64),
                100.0 * (h.completed - h.off_grid) as f64 / h.planned_total.max(1) as f64
            ),
            "",
        ),
        row(
            "Planned runs lost",
            format!("**{}**", group(h.lost as i64)),
            "0",
        ),
        row(
            "Rows off the grid / duplicated slots",
            format!("{} / {}", h.off_grid, h.duplicates),
            "",
        ),
        row("Statuses", h.statuses.join(", "), ""),
        row(
            "Run duration p50 / p99",
            format!("{} / {} ms", num(h.dur.p50), num(h.dur.p99)),
            "",
        ),
    ]
}

/// Report: the CPU, history size and load rows of the table.
fn cpu_rows(s: &Sampled, h: &History, duration: Duration, runs_per_cpu_s: f64) -> Vec<Vec<String>> {
    vec![
        row(
            "Daemon CPU in the window",
            format!(
                "{:.1} s ({:.1} % of one core; {} runs per CPU-second, {} µs CPU per run)",
                s.cpu.as_secs_f64(),
                100.0 * s.cpu.as_secs_f64() / duration.as_secs_f64(),
                num(runs_per_cpu_s),
                num(1e6 / runs_per_cpu_s)
            ),
            "",
        ),
        row(
            "Rows in the history (incl. outside the window)",
            group(h.total_rows),
            "",
        ),
        row(
            "Load (1/5/15 min)",
            format!("{} → {}", s.ready.load_before, s.load_after),
            "",
        ),
    ]
}

/// Report: the three targets this measurement decides.
fn verdicts(section: &mut Section, s: &Sampled, h: &History) {
    section.verdict(Verdict::new(
        "4. Daemon scale, peak RSS",
        "≤ 300 MiB",
        format!("{} MiB", num(s.hwm as f64 / 1024.0)),
        s.hwm <= 300 * 1024,
    ));
    section.verdict(Verdict::new(
        "4. Daemon scale, start lateness p99",
        "≤ 50 ms",
        format!(
            "{} ms (p50 {}, max {})",
            num(h.late.p99),
            num(h.late.p50),
            num(h.late.max)
        ),
        h.late.p99 <= 50.0,
    ));
    section.verdict(Verdict::new(
        "4. Daemon scale, planned runs lost",
        "0",
        format!(
            "{} of {} ({} completed)",
            group(h.lost as i64),
            group(h.planned_total as i64),
            group(h.completed as i64)
        ),
        h.lost == 0 && h.planned_total > 0,
    ));
}

fn round_ms(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis() as u64)
}
