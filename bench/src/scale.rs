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
    let cache = dir.path().join("cache");
    let entries: Vec<CheckEntry> = (0..checks)
        .map(|i| CheckEntry {
            name: format!("check-{i:05}"),
            component: components.path("http"),
            target: format!("{}/c/{i}", target.http),
        })
        .collect();
    let load_before = loadavg();
    eprintln!("scale: starting the daemon with {checks} checks (load {load_before})");
    let mut daemon = Daemon::start(vantage, dir.path(), &cache, &entries, "daemon.log")?;
    let pid = daemon.process.pid();
    let healthy = daemon
        .wait_healthy(Duration::from_millis(50), Duration::from_secs(300))
        .await?;
    let listed = daemon
        .wait_listed(checks, Duration::from_secs(1), Duration::from_secs(600))
        .await?;
    let ready_ms = unix_ms();
    let (rss_ready, _) = proc_memory(pid)?;
    eprintln!(
        "scale: healthy after {healthy:?}, {checks} checks listed after {listed:?}, RSS {} MiB; running for {}",
        rss_ready / 1024,
        humantime::format_duration(duration)
    );
    let cpu0 = proc_cpu(pid)?;
    let started = Instant::now();
    let (mut rss_max, mut rss_samples) = (0u64, Vec::new());
    while started.elapsed() < duration {
        tokio::time::sleep(Duration::from_secs(1).min(duration.saturating_sub(started.elapsed())))
            .await;
        let (rss, _) = proc_memory(pid)?;
        rss_max = rss_max.max(rss);
        rss_samples.push(rss as f64);
        if rss_samples.len().is_multiple_of(30) {
            eprintln!(
                "scale: {}s, RSS {} MiB, load {}",
                rss_samples.len(),
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
    eprintln!("scale: stopped in {stop_took:?}; reading the history");

    // Planned slots in (ready, stop - margin] for every check.
    let window_end = stop_ms - STOP_MARGIN_MS;
    let mut planned: HashMap<String, Vec<u64>> = HashMap::new();
    let mut planned_total = 0usize;
    for e in &entries {
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
        planned_total += slots.len();
        planned.insert(e.name.clone(), slots);
    }
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
    let mut lost = 0usize;
    let mut lost_examples = Vec::new();
    for (name, slots) in &planned {
        for s in slots {
            if !seen.contains_key(&(name.clone(), *s)) {
                lost += 1;
                if lost_examples.len() < 5 {
                    lost_examples.push(format!("{name}@{s}"));
                }
            }
        }
    }
    let off_grid = seen
        .keys()
        .filter(|(n, p)| !planned.get(n).is_some_and(|s| s.contains(p)))
        .count();
    let duplicates = seen.values().filter(|c| **c > 1).count();
    let completed = lateness.len();
    let late = summarize(&mut lateness);
    let dur = summarize(&mut durations);
    let runs_per_cpu_s = completed as f64 / cpu.as_secs_f64();
    let mut statuses: Vec<String> = statuses
        .into_iter()
        .map(|(s, n)| format!("{s} {}", group(n as i64)))
        .collect();
    statuses.sort();
    eprintln!(
        "scale: {completed}/{planned_total} runs, lost {lost}, lateness p50 {:.1} p99 {:.1} max {:.1} ms, VmHWM {} MiB",
        late.p50,
        late.p99,
        late.max,
        hwm / 1024
    );

    let window_s = (window_end - ready_ms) as f64 / 1000.0;
    let mut section = Section::new("4. Daemon scale");
    section.para(format!(
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
        humantime::format_duration(round_ms(listed)),
        humantime::format_duration(round_ms(healthy)),
        humantime::format_duration(duration),
        humantime::format_duration(round_ms(stop_took)),
        STOP_MARGIN_MS / 1000,
        window_s,
    ));
    section.table(
        &["Figure", "Value", "Target"],
        &[
            vec![
                "RSS when ready".into(),
                format!("{} MiB", num(rss_ready as f64 / 1024.0)),
                String::new(),
            ],
            vec![
                "RSS max while running (1 s samples)".into(),
                format!("{} MiB", num(rss_max as f64 / 1024.0)),
                String::new(),
            ],
            vec![
                "RSS at stop".into(),
                format!("{} MiB", num(rss_end as f64 / 1024.0)),
                String::new(),
            ],
            vec![
                "Peak RSS (VmHWM, whole life incl. start-up)".into(),
                format!("**{} MiB**", num(hwm as f64 / 1024.0)),
                "≤ 300 MiB".into(),
            ],
            vec![
                "Start lateness p50 / p90".into(),
                format!("{} / {} ms", num(late.p50), num(late.p90)),
                String::new(),
            ],
            vec![
                "Start lateness p99".into(),
                format!("**{} ms**", num(late.p99)),
                "≤ 50 ms".into(),
            ],
            vec![
                "Start lateness max".into(),
                format!("{} ms", num(late.max)),
                String::new(),
            ],
            vec![
                "Runs planned in the window".into(),
                group(planned_total as i64),
                String::new(),
            ],
            vec![
                "Runs completed (rows for planned slots)".into(),
                format!(
                    "{} ({:.2} %)",
                    group(completed as i64),
                    100.0 * (completed - off_grid) as f64 / planned_total.max(1) as f64
                ),
                String::new(),
            ],
            vec![
                "Planned runs lost".into(),
                format!("**{}**", group(lost as i64)),
                "0".into(),
            ],
            vec![
                "Rows off the grid / duplicated slots".into(),
                format!("{off_grid} / {duplicates}"),
                String::new(),
            ],
            vec!["Statuses".into(), statuses.join(", "), String::new()],
            vec![
                "Run duration p50 / p99".into(),
                format!("{} / {} ms", num(dur.p50), num(dur.p99)),
                String::new(),
            ],
            vec![
                "Daemon CPU in the window".into(),
                format!(
                    "{:.1} s ({:.1} % of one core; {} runs per CPU-second, {} µs CPU per run)",
                    cpu.as_secs_f64(),
                    100.0 * cpu.as_secs_f64() / duration.as_secs_f64(),
                    num(runs_per_cpu_s),
                    num(1e6 / runs_per_cpu_s)
                ),
                String::new(),
            ],
            vec![
                "Rows in the history (incl. outside the window)".into(),
                group(total_rows),
                String::new(),
            ],
            vec![
                "Load (1/5/15 min)".into(),
                format!("{load_before} → {load_after}"),
                String::new(),
            ],
        ],
    );
    if !lost_examples.is_empty() {
        section.para(format!(
            "Lost slots (first few): {}",
            lost_examples.join(", ")
        ));
    }
    section.verdict(Verdict::new(
        "4. Daemon scale, peak RSS",
        "≤ 300 MiB",
        format!("{} MiB", num(hwm as f64 / 1024.0)),
        hwm <= 300 * 1024,
    ));
    section.verdict(Verdict::new(
        "4. Daemon scale, start lateness p99",
        "≤ 50 ms",
        format!(
            "{} ms (p50 {}, max {})",
            num(late.p99),
            num(late.p50),
            num(late.max)
        ),
        late.p99 <= 50.0,
    ));
    section.verdict(Verdict::new(
        "4. Daemon scale, planned runs lost",
        "0",
        format!(
            "{} of {} ({} completed)",
            group(lost as i64),
            group(planned_total as i64),
            group(completed as i64)
        ),
        lost == 0 && planned_total > 0,
    ));
    Ok(ScaleOutcome {
        section,
        runs_per_cpu_s,
    })
}

fn round_ms(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis() as u64)
}
