//! `vantage push` and `vantage pull`: share components through OCI
//! registries (the `vantage-registry` crate does the work).

use std::path::PathBuf;

use anyhow::Context as _;
use vantage_registry::OciRef;

use super::{CacheArgs, RegistryArgs};
use crate::components::{Components, component_info};
use crate::runtime::Runtime;
use crate::runtime::engine::EngineOptions;

/// Arguments of `vantage push`.
#[derive(Debug, clap::Args)]
pub struct PushArgs {
    /// The component file (`.wasm`).
    pub component: PathBuf,
    /// Where to push it: `[oci://]host[:port]/repository:tag`.
    pub reference: String,
    /// Where the check's source lives (`org.opencontainers.image.source`).
    #[arg(long, value_name = "URL")]
    pub source: Option<String>,
    /// Refuse a component file larger than this.
    #[arg(long, value_name = "SIZE", default_value = "64MiB", value_parser = super::parse_component_size)]
    pub max_component_size: u64,
    #[command(flatten)]
    pub cache: CacheArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// Arguments of `vantage pull`.
#[derive(Debug, clap::Args)]
pub struct PullArgs {
    /// What to pull: `[oci://]host[:port]/repository:tag` or `@sha256:…`.
    pub reference: String,
    /// The file to write (default: the repository's last part, `.wasm`, in
    /// the current directory).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Refuse a component layer larger than this (from the manifest, then
    /// while reading).
    #[arg(long, value_name = "SIZE", default_value = "64MiB", value_parser = super::parse_component_size)]
    pub max_component_size: u64,
    #[command(flatten)]
    pub cache: CacheArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// `vantage push`: load the component (so only a component that fits this
/// host is pushed, and its metadata becomes the annotations), then push.
pub async fn push(args: PushArgs) -> anyhow::Result<u8> {
    let reference = OciRef::parse(&args.reference)?;
    if reference.digest.is_some() {
        anyhow::bail!(
            "push to a tag (`{}:TAG`), not a digest",
            reference.repository
        );
    }
    let runtime = Runtime::new(&EngineOptions::default(), args.cache.dir())?;
    let text = args.component.display().to_string();
    let (check, _) = super::load_component(
        &runtime,
        &text,
        args.max_component_size,
        &args.registry,
        &args.cache,
    )
    .await?;
    let wasm = crate::runtime::cache::read_component(&args.component, args.max_component_size)?;
    let title = args
        .component
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let info = component_info(&check, &title, args.source.clone());
    let sources = Components::for_command(
        args.registry.insecure_registry.clone(),
        args.max_component_size,
        args.cache.no_cache,
    );
    let created = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let digest = sources
        .registry()
        .push(&wasm, &info, &reference, &created)
        .await
        .with_context(|| format!("cannot push to {reference}"))?;
    outln!("pushed {}", reference.pinned(&digest));
    Ok(0)
}

/// `vantage pull`: resolve, pull and check, then write the file
/// atomically (a temporary file renamed into place).
pub async fn pull(args: PullArgs) -> anyhow::Result<u8> {
    let sources = Components::for_command(
        args.registry.insecure_registry.clone(),
        args.max_component_size,
        args.cache.no_cache,
    );
    let text = if args.reference.starts_with("oci://") {
        args.reference.clone()
    } else {
        format!("oci://{}", args.reference)
    };
    let pulled = sources.pull(&text).await.map_err(anyhow::Error::msg)?;
    let output = args.output.clone().unwrap_or_else(|| {
        let name = pulled
            .reference
            .repository
            .rsplit('/')
            .next()
            .unwrap_or("component");
        PathBuf::from(format!("{name}.wasm"))
    });
    let tmp = output.with_file_name(format!(
        ".{}.part-{}",
        output
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ));
    let written = std::fs::write(&tmp, &pulled.wasm).and_then(|()| std::fs::rename(&tmp, &output));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot write {}", output.display()));
    }
    outln!(
        "pulled {} ({} bytes{}) to {}",
        pulled.reference,
        pulled.wasm.len(),
        if pulled.from_cache {
            ", from the cache"
        } else {
            ""
        },
        output.display()
    );
    Ok(0)
}
