//! `vantage compile`: compile components into the compiled-component cache
//! ahead of time (a container image build, a deploy step), so the first run
//! does not pay the compile: seconds for a Python or JavaScript component.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;

use super::{CacheArgs, RegistryArgs};
use crate::components::{Components, parse_component_arg};
use crate::config::{self, ComponentRef};
use crate::runtime::Runtime;
use crate::runtime::cache::CacheOutcome;
use crate::runtime::engine::{Compiler, EngineOptions};

/// Arguments of `vantage compile`.
#[derive(Debug, clap::Args)]
pub struct CompileArgs {
    /// Components (`.wasm` files or `oci://` references), compiled as
    /// `vantage run` compiles them; or one configuration file (`.toml`):
    /// every component it uses, compiled as its daemon compiles them.
    #[arg(required = true, value_name = "COMPONENT|CONFIG")]
    pub inputs: Vec<String>,
    /// Refuse a component larger than this.
    #[arg(long, value_name = "SIZE", default_value = "64MiB", value_parser = super::parse_component_size)]
    pub max_component_size: u64,
    #[command(flatten)]
    pub cache: CacheArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// Run the command: 0 when every component compiled (or was cached), 2
/// when one could not be read or compiled (the others still are).
pub async fn execute(args: CompileArgs) -> anyhow::Result<u8> {
    if args.cache.no_cache {
        anyhow::bail!("--no-cache: there is no cache to compile into");
    }
    let dir = args
        .cache
        .dir()
        .context("no cache directory: pass --cache-dir")?;
    let (options, sources, components) = match config_input(&args.inputs)? {
        Some(path) => {
            let config = config::load(&path).map_err(|e| anyhow::anyhow!("{e}"))?;
            let components = config_components(&config);
            let options = crate::daemon::engine_options(&config);
            (options, Components::for_config(&config), components)
        }
        None => {
            let sources =
                Components::for_command(&args.registry.to_config(), args.max_component_size, false);
            let components = args.inputs.iter().map(|i| parse_component_arg(i)).collect();
            (EngineOptions::default(), sources, components)
        }
    };
    let options = args.cache.engine(options, Compiler::Cranelift);
    let runtime = Runtime::new(&options, Some(dir.clone()))?;
    let mut failed = false;
    for component in components {
        let started = Instant::now();
        match sources.load(&runtime, &component).await {
            Ok(check) if check.cache == CacheOutcome::Hit => {
                outln!("cached    {} (sha256:{})", check.source, check.digest)
            }
            Ok(check) => outln!(
                "compiled  {} (sha256:{}) in {:.1} s",
                check.source,
                check.digest,
                started.elapsed().as_secs_f64()
            ),
            Err(e) => {
                errln!("error     {e}");
                failed = true;
            }
        }
    }
    outln!("cache: {}", dir.display());
    Ok(if failed { 2 } else { 0 })
}

/// The configuration file among `inputs`, when the input is one `.toml`.
fn config_input(inputs: &[String]) -> anyhow::Result<Option<PathBuf>> {
    let configs: Vec<&String> = inputs.iter().filter(|i| i.ends_with(".toml")).collect();
    match (configs.len(), inputs.len()) {
        (0, _) => Ok(None),
        (1, 1) => Ok(Some(Path::new(configs[0]).to_path_buf())),
        _ => anyhow::bail!("give one configuration file, or components, not both"),
    }
}

/// Every distinct component a configuration uses (checks, then restore
/// tests' checks), in order.
fn config_components(config: &config::Config) -> Vec<ComponentRef> {
    let mut seen = Vec::new();
    let all = config.checks.iter().map(|c| &c.component).chain(
        config
            .restores
            .iter()
            .flat_map(|r| r.checks.iter().map(|c| &c.component)),
    );
    for component in all {
        if !seen.contains(component) {
            seen.push(component.clone());
        }
    }
    seen
}
