//! `vantage inspect`: what a component says about itself.

use serde_json::json;

use super::{CacheArgs, RegistryArgs};
use crate::runtime::engine::EngineOptions;
use crate::runtime::{Runtime, World};

/// Arguments of `vantage inspect`.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// The check component: a `.wasm` file or `oci://host/repository:tag`
    /// (or `@sha256:…`).
    pub component: String,
    /// Refuse a component file larger than this (B, KiB, MiB, GiB, KB, MB,
    /// GB; 64KiB to 4GiB); it is read no further.
    #[arg(long, value_name = "SIZE", default_value = "64MiB", value_parser = super::parse_component_size)]
    pub max_component_size: u64,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub cache: CacheArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// Run the command.
pub async fn execute(args: InspectArgs) -> anyhow::Result<u8> {
    let runtime = Runtime::new(&EngineOptions::default(), args.cache.dir())?;
    let (check, size) = super::load_component(
        &runtime,
        &args.component,
        args.max_component_size,
        &args.registry,
        &args.cache,
    )
    .await?;
    let m = &check.metadata;
    let world = check.world();
    if args.json {
        let doc = json!({
            "component": check.source,
            "sha256": check.digest,
            "size_bytes": size,
            "world": world.name(),
            "imports": check.imports,
            "metadata": m,
        });
        outln!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(0);
    }
    outln!("{} {}", m.name, m.version);
    outln!("  {}", m.description);
    outln!(
        "component: {} ({size} bytes, sha256:{})",
        check.source,
        check.digest
    );
    match world {
        World::V0_2 => outln!("world:     {world}"),
        World::V0_1 => outln!(
            "world:     {world} (frozen; runs through the host's 0.1.0 compatibility layer, config keys untyped)"
        ),
    }
    outln!("modes:     {}", m.modes.join(", "));
    outln!("imports:   {}", check.imports.join(", "));
    outln!("capabilities:");
    outln!(
        "  outbound: {}",
        if m.outbound.is_empty() {
            "(none)".to_string()
        } else {
            m.outbound.join(", ")
        }
    );
    outln!(
        "  secrets:  {}",
        if m.secrets.is_empty() {
            "(none)".to_string()
        } else {
            m.secrets.join(", ")
        }
    );
    if !m.config.is_empty() {
        outln!("config:");
        for k in &m.config {
            let default = k
                .default
                .as_deref()
                .map(|d| format!(" (default: {d})"))
                .unwrap_or_default();
            let required = if k.required { " [required]" } else { "" };
            outln!("  {}{required}{default}\n      {}", k.key, k.description);
        }
    }
    Ok(0)
}
