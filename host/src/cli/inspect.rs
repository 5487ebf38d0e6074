//! `vantage inspect`: what a component says about itself.

use std::path::PathBuf;

use serde_json::json;

use super::CacheArgs;
use crate::runtime::engine::EngineOptions;
use crate::runtime::{Runtime, WORLD};

/// Arguments of `vantage inspect`.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// The check component (`.wasm`).
    pub component: PathBuf,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub cache: CacheArgs,
}

/// Run the command.
pub async fn execute(args: InspectArgs) -> anyhow::Result<u8> {
    let runtime = Runtime::new(&EngineOptions::default(), args.cache.dir())?;
    let check = runtime.load_file(&args.component).await?;
    let size = std::fs::metadata(&args.component)
        .map(|m| m.len())
        .unwrap_or(0);
    let m = &check.metadata;
    if args.json {
        let doc = json!({
            "component": check.source,
            "sha256": check.digest,
            "size_bytes": size,
            "world": WORLD,
            "imports": check.imports,
            "metadata": m,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(0);
    }
    println!("{} {}", m.name, m.version);
    println!("  {}", m.description);
    println!(
        "component: {} ({size} bytes, sha256:{})",
        check.source, check.digest
    );
    println!("world:     {WORLD}");
    println!("modes:     {}", m.modes.join(", "));
    println!("imports:   {}", check.imports.join(", "));
    println!("capabilities:");
    println!(
        "  outbound: {}",
        if m.outbound.is_empty() {
            "(none)".to_string()
        } else {
            m.outbound.join(", ")
        }
    );
    println!(
        "  secrets:  {}",
        if m.secrets.is_empty() {
            "(none)".to_string()
        } else {
            m.secrets.join(", ")
        }
    );
    if !m.config.is_empty() {
        println!("config:");
        for k in &m.config {
            let default = k
                .default
                .as_deref()
                .map(|d| format!(" (default: {d})"))
                .unwrap_or_default();
            let required = if k.required { " [required]" } else { "" };
            println!("  {}{required}{default}\n      {}", k.key, k.description);
        }
    }
    Ok(0)
}
