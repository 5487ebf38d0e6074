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
    if args.component.starts_with("oci://") {
        return remote(args).await;
    }
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

/// `inspect oci://…`: from the manifest and the Wasm config alone (the
/// component is neither pulled nor compiled), with its signatures.
async fn remote(args: InspectArgs) -> anyhow::Result<u8> {
    use anyhow::Context as _;
    let reference = vantage_registry::OciRef::parse(&args.component)?;
    let sources = crate::components::Components::for_command(
        &args.registry.to_config(),
        args.max_component_size,
        args.cache.no_cache,
    );
    let found = sources
        .registry()
        .inspect(&reference)
        .await
        .with_context(|| format!("cannot inspect {reference}"))?;
    let info = &found.info;
    let layer = &found.manifest.layers[0];
    let verified = match &found.verified {
        None => json!(null),
        Some(Ok(v)) => json!({"key": v.key, "fingerprint": v.fingerprint}),
        Some(Err(e)) => json!({"error": e}),
    };
    if args.json {
        let doc = json!({
            "component": found.reference.to_string(),
            "digest": found.digest,
            "layer": {"media_type": layer.media_type, "digest": layer.digest, "size_bytes": layer.size},
            "metadata": info,
            "annotations": found.manifest.annotations,
            "signatures": found.signatures,
            "verified": verified,
        });
        outln!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(0);
    }
    let or_none = |v: &[String]| {
        if v.is_empty() {
            "(none)".to_string()
        } else {
            v.join(", ")
        }
    };
    if info.name.is_empty() {
        outln!("(no Vantage annotations: not pushed by `vantage push`)");
    } else {
        outln!("{} {}", info.name, info.version);
        outln!("  {}", info.description);
    }
    outln!("component: {}", found.reference);
    outln!(
        "layer:     {} ({} bytes, {})",
        layer.digest,
        layer.size,
        layer.media_type
    );
    if let Some(source) = &info.source {
        outln!("source:    {source}");
    }
    if !info.world.is_empty() {
        outln!("world:     {}", info.world);
    }
    outln!("modes:     {}", or_none(&info.modes));
    outln!("imports:   {}", or_none(&info.imports));
    outln!("exports:   {}", or_none(&info.exports));
    outln!("capabilities:");
    outln!("  outbound: {}", or_none(&info.outbound));
    outln!("  secrets:  {}", or_none(&info.secrets));
    if !info.config.is_empty() {
        outln!("config:");
        for k in &info.config {
            let key = k.get("key").and_then(|v| v.as_str()).unwrap_or("?");
            let description = k.get("description").and_then(|v| v.as_str()).unwrap_or("");
            let required = if k.get("required").and_then(|v| v.as_bool()) == Some(true) {
                " [required]"
            } else {
                ""
            };
            outln!("  {key}{required}\n      {description}");
        }
    }
    let signatures = match &found.verified {
        None => format!("{}", found.signatures),
        Some(Ok(v)) => format!(
            "{}, verified: signed by {} ({})",
            found.signatures, v.key, v.fingerprint
        ),
        Some(Err(e)) => format!("{}, NOT verified: {e}", found.signatures),
    };
    outln!("signatures: {signatures}");
    Ok(match found.verified {
        Some(Err(_)) => 2,
        _ => 0,
    })
}
