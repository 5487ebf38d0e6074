//! `vantage validate`: check a configuration file without running anything.

use std::collections::HashMap;
use std::path::PathBuf;

use crate::config::{self, ComponentRef, Config, Diagnostic};
use crate::runtime::cache;
use crate::schema::ConfigKey;

/// Arguments of `vantage validate`.
#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// The configuration file.
    #[arg(default_value = "vantage.toml")]
    pub config: PathBuf,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub cache: super::CacheArgs,
}

/// Run the command: exit 0 if valid, 2 (with every error, each naming file,
/// line and key) if not. Every component file is read (up to
/// `max_component_size`) and must be a WebAssembly component, as the
/// daemon will need it; each is then loaded (through the compiled-component
/// cache) to learn the configuration keys it declares, and every check's
/// `config` is checked against their types.
pub async fn execute(args: ValidateArgs) -> anyhow::Result<u8> {
    let config = match config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            errln!("{e}");
            return Ok(2);
        }
    };
    for warning in &config.warnings {
        errln!("{warning}");
    }
    let mut problems = component_problems(&config);
    if problems.is_empty() {
        problems = schema_problems(&config, args.cache.dir()).await?;
    }
    if !problems.is_empty() {
        for d in &problems {
            errln!("{d}");
        }
        return Ok(2);
    }
    outln!(
        "{}: valid, {} check(s), location {:?}",
        args.config.display(),
        config.checks.len(),
        config.global.location
    );
    for check in &config.checks {
        let component = match &check.component {
            ComponentRef::Path(p) => p.display().to_string(),
            ComponentRef::Oci(r) => r.clone(),
        };
        outln!(
            "  {:<24} {:<14} {component}",
            check.name,
            check.schedule.to_string()
        );
    }
    if !config.restores.is_empty() {
        outln!("{} restore test(s):", config.restores.len());
    }
    for r in &config.restores {
        outln!(
            "  {:<24} {:<14} {}, {} check(s){}",
            r.name,
            r.schedule.to_string(),
            r.describe_backup(),
            r.checks.len(),
            if r.audit { ", audited" } else { "" }
        );
    }
    if !config.heartbeats.is_empty() {
        outln!("{} heartbeat(s):", config.heartbeats.len());
    }
    for h in &config.heartbeats {
        let expect = &h.expect;
        outln!(
            "  {:<24} {expect}, grace {}",
            h.name,
            humantime::format_duration(h.grace)
        );
    }
    for r in &config.remote_write {
        outln!("remote write {:?}: {}", r.name, r.url);
    }
    if let Some(c) = &config.central {
        outln!("central view of {}", c.prometheus);
    }
    Ok(0)
}

/// One diagnostic, at its `component` key, per component file that is
/// missing, unreadable, larger than `max_component_size` or not a
/// WebAssembly component. Each file is read once, however many checks use
/// it. Registry references are not fetched.
fn component_problems(config: &Config) -> Vec<Diagnostic> {
    let mut by_path: HashMap<&PathBuf, Option<String>> = HashMap::new();
    let mut problems = Vec::new();
    for (reference, place) in &config.component_keys {
        let ComponentRef::Path(path) = reference else {
            continue;
        };
        let problem = by_path.entry(path).or_insert_with(|| {
            match cache::read_component(path, config.global.max_component_size) {
                Err(e) => Some(e.to_string()),
                Ok(bytes) => cache::check_component_header(&bytes)
                    .err()
                    .map(|why| format!("{}: {why}", path.display())),
            }
        });
        if let Some(why) = problem {
            let mut d = place.clone();
            d.message = why.clone();
            problems.push(d);
        }
    }
    problems
}

/// Every check's `config` against the keys its component declares (see
/// [`Config::schema_problems`]). A component that cannot be compiled, or a
/// registry reference that cannot be pulled, is a problem at its
/// `component` key.
async fn schema_problems(
    config: &Config,
    cache_dir: Option<PathBuf>,
) -> anyhow::Result<Vec<Diagnostic>> {
    let runtime =
        crate::runtime::Runtime::new(&crate::runtime::engine::EngineOptions::default(), cache_dir)?;
    let sources = crate::components::Components::for_config(config);
    let mut schemas: HashMap<&ComponentRef, Option<Vec<ConfigKey>>> = HashMap::new();
    let mut problems = Vec::new();
    for (reference, place) in &config.component_keys {
        if schemas.contains_key(reference) {
            continue;
        }
        match sources.load(&runtime, reference).await {
            Ok(check) => {
                schemas.insert(reference, check.config_schema().map(<[_]>::to_vec));
            }
            Err(why) => {
                let mut d = place.clone();
                d.message = why;
                problems.push(d);
                schemas.insert(reference, None);
            }
        }
    }
    problems.extend(config.schema_problems(&|reference| schemas.get(reference).cloned().flatten()));
    Ok(problems)
}
