//! `vantage test`: replay cassettes against a check component, offline.
//!
//! A cassette (`vantage run --record`) holds what the check was asked, every
//! host interaction of the recorded run and how the run ended. `vantage
//! test` runs the component again with a replaying tape: every host call is
//! answered from the cassette, in order, without the network, so the run
//! is deterministic; then it holds the run to the cassette's `expect`
//! (status, and the state of each listed assertion). An edited cassette (a
//! response changed to a 500, a certificate's expiry moved) tests a failure
//! path no live server has to reproduce.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;

use super::{CacheArgs, RegistryArgs};
use crate::capabilities::tape::{
    AssertionState, Cassette, CassetteCheck, Expectation, ExpectedAssertion, FORMAT, Tape,
};
use crate::config::{Limits, Mode};
use crate::result::CheckResult;
use crate::runtime::engine::{Compiler, EngineOptions};
use crate::runtime::{LoadedCheck, RunSpec, Runtime};

/// Arguments of `vantage test`.
#[derive(Debug, clap::Args)]
pub struct TestArgs {
    /// The check component: a `.wasm` file or `oci://…`.
    pub component: String,
    /// Cassettes to replay (`vantage run --record` writes them).
    #[arg(required = true, value_name = "CASSETTE.json")]
    pub cassettes: Vec<PathBuf>,
    /// Rewrite each cassette's `expect` with what the replay concluded
    /// (after a deliberate change of the check), instead of testing it.
    #[arg(long)]
    pub update: bool,
    /// Print one JSON object per cassette instead of the report.
    #[arg(long)]
    pub json: bool,
    /// Memory cap of the check.
    #[arg(long, default_value = "64MiB", value_parser = parse_size)]
    pub memory: u64,
    /// Refuse a component file larger than this.
    #[arg(long, value_name = "SIZE", default_value = "64MiB", value_parser = super::parse_component_size)]
    pub max_component_size: u64,
    #[command(flatten)]
    pub cache: CacheArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

fn parse_size(s: &str) -> Result<u64, String> {
    crate::config::parse_memory(s).map_err(|e| e.to_string())
}

/// The cassette of a recorded run of `check` under `spec` that ended as
/// `result` (the tape's interactions, already redacted by the run).
pub fn cassette(check: &LoadedCheck, spec: &RunSpec, result: &CheckResult) -> Cassette {
    let (interactions, _) = spec.tape.recorded();
    Cassette {
        vantage_cassette: FORMAT,
        recorded_at_unix_ms: result.started_unix_ms,
        check: CassetteCheck {
            name: spec.check_name.clone(),
            targets: spec.targets.clone(),
            config: spec.config.clone(),
            secrets: spec.secrets.iter().map(|(name, _)| name.clone()).collect(),
            location: spec.location.clone(),
            mode: match spec.mode {
                Mode::Edge => "edge".into(),
                Mode::Restore => "restore".into(),
            },
            timeout_ms: spec.limits.timeout.as_millis() as u64,
            component: Some(format!("{} sha256:{}", check.source, check.digest)),
        },
        interactions,
        expect: expectation(result),
    }
}

/// What `result` concluded, as a cassette expects it.
fn expectation(result: &CheckResult) -> Expectation {
    Expectation {
        status: result.status,
        assertions: result
            .assertions
            .iter()
            .map(|a| ExpectedAssertion {
                name: a.name.clone(),
                state: AssertionState::of(a),
            })
            .collect(),
    }
}

/// Write `cassette` to `path` as indented JSON.
pub fn write_cassette(path: &Path, cassette: &Cassette) -> anyhow::Result<()> {
    let mut text = serde_json::to_string_pretty(cassette)?;
    text.push('\n');
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// Read a cassette, naming the file in every error.
fn read_cassette(path: &Path) -> anyhow::Result<Cassette> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Cassette::from_json(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// The spec of a replay of `cassette`: what the recorded run was asked,
/// nothing granted (the tape answers every call).
fn replay_spec(cassette: &Cassette, memory: u64) -> anyhow::Result<RunSpec> {
    let check = &cassette.check;
    let mode = match check.mode.as_str() {
        "edge" => Mode::Edge,
        "restore" => Mode::Restore,
        other => anyhow::bail!("check.mode {other:?}: expected edge or restore"),
    };
    let timeout = Duration::from_millis(check.timeout_ms.max(1));
    Ok(RunSpec::deny_all(&check.name, timeout)
        .with_targets(check.targets.clone())
        .with_config(check.config.clone())
        .with_limits(Limits {
            timeout,
            memory,
            fuel: None,
            cpu: None,
        })
        .with_location(check.location.clone())
        .with_mode(mode)
        .with_tape(Tape::replaying(cassette)))
}

/// How one replay compares with its cassette's expectation: every
/// difference, in words.
fn differences(expect: &Expectation, result: &CheckResult) -> Vec<String> {
    let mut found = Vec::new();
    if result.status != expect.status {
        let why = match &result.error {
            Some(e) => format!(": {}", e.message.lines().next().unwrap_or_default()),
            None => format!(" ({})", result.summary),
        };
        found.push(format!(
            "status: expected {}, got {}{why}",
            name(&expect.status),
            name(&result.status)
        ));
    }
    for wanted in &expect.assertions {
        match result.assertions.iter().find(|a| a.name == wanted.name) {
            None => found.push(format!("assertion {:?}: not made", wanted.name)),
            Some(a) if AssertionState::of(a) != wanted.state => found.push(format!(
                "assertion {:?}: expected {}, got {} ({})",
                wanted.name,
                name(&wanted.state),
                name(&AssertionState::of(a)),
                a.detail
            )),
            Some(_) => {}
        }
    }
    found
}

fn name<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Run the command.
pub async fn execute(args: TestArgs) -> anyhow::Result<u8> {
    let options = args.cache.engine(EngineOptions::default(), Compiler::Winch);
    let runtime = Runtime::new(&options, args.cache.dir())?;
    let (check, _) = super::load_component(
        &runtime,
        &args.component,
        args.max_component_size,
        &args.registry,
        &args.cache,
    )
    .await?;
    let mut failed = 0usize;
    for path in &args.cassettes {
        let mut cassette = read_cassette(path)?;
        let spec =
            replay_spec(&cassette, args.memory).with_context(|| format!("{}", path.display()))?;
        let result = runtime.run(&check, &spec).await;
        let (used, total) = spec.tape.replayed();
        if args.update {
            cassette.expect = expectation(&result);
            write_cassette(path, &cassette)?;
            outln!(
                "updated {}: {} with {} assertion(s)",
                path.display(),
                name(&result.status),
                result.assertions.len()
            );
            continue;
        }
        let found = differences(&cassette.expect, &result);
        if !found.is_empty() {
            failed += 1;
        }
        if args.json {
            outln!(
                "{}",
                serde_json::json!({
                    "cassette": path.display().to_string(),
                    "passed": found.is_empty(),
                    "differences": found,
                    "status": result.status,
                    "interactions_replayed": used,
                    "interactions": total,
                    "result": super::output::json(&result),
                })
            );
            continue;
        }
        let verdict = if found.is_empty() { "ok" } else { "FAILED" };
        outln!(
            "{verdict} {} ({}; {used} of {total} interaction(s) replayed)",
            path.display(),
            name(&result.status)
        );
        for difference in &found {
            outln!("    {difference}");
        }
        if used < total && found.is_empty() {
            outln!(
                "    note: the run stopped using the cassette after {used} interaction(s) \
                 (an edited answer can end a flow early)"
            );
        }
    }
    if !args.update && !args.json {
        outln!("{} passed, {failed} failed", args.cassettes.len() - failed);
    }
    Ok(u8::from(failed > 0))
}
