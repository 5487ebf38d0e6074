//! Measurement 5, cold start: the daemon with many distinct check components, from
//! spawn to ready, with an empty compiled-component cache and then with the
//! cache it filled.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::daemon::{CheckEntry, Daemon};
use crate::probe::{self, Components};
use crate::report::{Section, Verdict};
use crate::stats::{median, num, ratio};
use crate::sys::{TempDir, loadavg};
use crate::target::Target;

/// Target: warm start to ready.
const TARGET_WARM_S: f64 = 1.0;

/// `bytes` with a custom section `name` holding `payload` appended: a
/// custom section is valid anywhere in a component and changes nothing it
/// does, but changes its sha256 (and so the compiled cache's key).
pub fn with_custom_section(bytes: &[u8], name: &str, payload: &[u8]) -> Vec<u8> {
    let mut content = leb128(name.len() as u64);
    content.extend_from_slice(name.as_bytes());
    content.extend_from_slice(payload);
    let mut out = bytes.to_vec();
    out.push(0); // custom section id
    out.extend(leb128(content.len() as u64));
    out.extend(content);
    out
}

fn leb128(mut n: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

/// One start: spawn → `/healthz`, spawn → every check listed.
struct Start {
    healthy: Duration,
    ready: Duration,
    load: String,
}

async fn start_once(
    vantage: &Path,
    dir: &Path,
    cache: &Path,
    entries: &[CheckEntry],
    log: &str,
) -> anyhow::Result<Start> {
    let load = loadavg();
    let mut daemon = Daemon::start(vantage, dir, cache, entries, log)?;
    let healthy = daemon
        .wait_healthy(Duration::from_millis(2), Duration::from_secs(600))
        .await?;
    let ready = daemon
        .wait_listed(
            entries.len(),
            Duration::from_millis(10),
            Duration::from_secs(900),
        )
        .await?;
    daemon.stop()?;
    Ok(Start {
        healthy,
        ready,
        load,
    })
}

/// `components` distinct variants of the `http` check, one check each; one
/// cold start, then `warm_starts` warm ones.
pub async fn run(
    vantage: &Path,
    checks_dir: &Components,
    target: &Target,
    components: usize,
    warm_starts: usize,
) -> anyhow::Result<Section> {
    let dir = TempDir::new("coldstart")?;
    let cache = dir.path().join("cache");
    let base_path = checks_dir.path("http");
    let (entries, distinct) = write_variants(dir.path(), &base_path, target, components).await?;

    eprintln!(
        "coldstart: {components} distinct components, cold start (load {})",
        loadavg()
    );
    let cold = start_once(vantage, dir.path(), &cache, &entries, "cold.log").await?;
    let cached: usize = std::fs::read_dir(&cache)?
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "cwasm"))
        .count();
    eprintln!(
        "coldstart: cold ready after {:?} ({cached} compiled components cached)",
        cold.ready
    );
    let mut warm = Vec::new();
    for i in 0..warm_starts {
        let s = start_once(
            vantage,
            dir.path(),
            &cache,
            &entries,
            &format!("warm-{i}.log"),
        )
        .await?;
        eprintln!("coldstart: warm start {i}: ready after {:?}", s.ready);
        warm.push(s);
    }
    let warm_ready: Vec<f64> = warm.iter().map(|s| s.ready.as_secs_f64()).collect();
    let warm_median = median(&warm_ready);

    let mut section = Section::new("5. Cold start");
    section.para(describe(
        &base_path,
        components,
        distinct,
        cached,
        warm_starts,
    ));
    section.table(
        &[
            "Start",
            "to /healthz",
            "to all checks listed (ready)",
            "per component",
            "vs first",
            "load (1/5/15 min)",
        ],
        &start_rows(&cold, &warm, components),
    );
    section.para(format!(
        "Warm start, median of {warm_starts}: {} s to ready, {:.1}× faster than the first start.",
        num(warm_median),
        cold.ready.as_secs_f64() / warm_median
    ));
    section.verdict(Verdict::new(
        &format!("5. Cold start, {components} components, warm cache, to ready"),
        "≤ 1 s",
        format!(
            "{} s median of {warm_starts} (first start {} s)",
            num(warm_median),
            num(cold.ready.as_secs_f64())
        ),
        warm_median <= TARGET_WARM_S && cached == components,
    ));
    Ok(section)
}

/// Setup: write `components` distinct variants of the component at
/// `base_path` under `dir/components`, check that one still loads like the
/// original, and return a check entry per variant and how many distinct
/// sha256 digests they have.
async fn write_variants(
    dir: &Path,
    base_path: &Path,
    target: &Target,
    components: usize,
) -> anyhow::Result<(Vec<CheckEntry>, usize)> {
    let variants = dir.join("components");
    std::fs::create_dir_all(&variants)?;
    let base = std::fs::read(base_path)?;
    let mut digests = HashSet::new();
    let mut entries = Vec::new();
    for i in 0..components {
        let bytes = with_custom_section(&base, "vantage-bench-variant", i.to_string().as_bytes());
        digests.insert(hex::encode(Sha256::digest(&bytes)));
        let path = variants.join(format!("http-{i:03}.wasm"));
        std::fs::write(&path, bytes)?;
        entries.push(CheckEntry {
            name: format!("cold-{i:03}"),
            component: path,
            target: format!("{}/cold/{i}", target.http),
        });
    }
    anyhow::ensure!(digests.len() == components, "variants are not distinct");
    // One variant through the runtime: still a valid component, same checks.
    let runtime = probe::runtime()?;
    let variant = runtime.load_file(&entries[0].component).await?;
    let original = runtime.load_file(base_path).await?;
    anyhow::ensure!(
        variant.metadata.name == original.metadata.name && variant.digest != original.digest,
        "the variant does not describe itself like the original"
    );
    Ok((entries, digests.len()))
}

/// Report: the paragraph that says how the variants are made and the starts timed.
fn describe(
    base_path: &Path,
    components: usize,
    distinct: usize,
    cached: usize,
    warm_starts: usize,
) -> String {
    format!(
        "The real daemon with {components} checks, each with its own component: {components} \
         variants of the `http` check ({}), each with a custom section \
         `vantage-bench-variant` holding its index appended, so every variant has its own \
         sha256 ({distinct} distinct) and so its own compiled-cache entry (`<sha256>-<engine \
         hash>.cwasm`; the cold start left **{cached}** entries in the empty `--cache-dir`), \
         and still loads and describes itself like the original (checked through the \
         runtime). Time from spawning the process to `/healthz` answering, and to \
         `/api/v1/checks` listing all {components} checks (= every component loaded: the \
         daemon loads them all before it spawns the check tasks); polled every 2 ms and \
         10 ms. First start with an empty cache directory, then {warm_starts} starts with \
         the cache it filled (the same data directory: a restart).",
        probe::describe_file(base_path),
    )
}

/// Report: a table row per start, the cold one first.
fn start_rows(cold: &Start, warm: &[Start], components: usize) -> Vec<Vec<String>> {
    let row = |label: String, s: &Start, vs_first: String| {
        vec![
            label,
            format!("{} s", num(s.healthy.as_secs_f64())),
            format!("{} s", num(s.ready.as_secs_f64())),
            format!(
                "{} ms",
                num(s.ready.as_secs_f64() * 1000.0 / components as f64)
            ),
            vs_first,
            s.load.clone(),
        ]
    };
    let mut rows = vec![row(
        "first (empty cache: compiles)".into(),
        cold,
        "1.00×".into(),
    )];
    for (i, s) in warm.iter().enumerate() {
        rows.push(row(
            format!("warm #{}", i + 1),
            s,
            ratio(s.ready.as_secs_f64() / cold.ready.as_secs_f64()),
        ));
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leb128_encodes() {
        assert_eq!(leb128(0), [0]);
        assert_eq!(leb128(127), [127]);
        assert_eq!(leb128(128), [0x80, 1]);
        assert_eq!(leb128(624485), [0xe5, 0x8e, 0x26]);
    }

    #[test]
    fn custom_section_is_appended() {
        let out = with_custom_section(b"\0asm\x0d\0\x01\0", "n", b"xy");
        assert_eq!(&out[8..], &[0, 4, 1, b'n', b'x', b'y']);
    }
}
