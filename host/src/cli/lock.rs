//! `vantage lock`: pin every `oci://` tag of a configuration to the
//! manifest digest it resolves to now, in `vantage.lock` beside it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use vantage_registry::OciRef;

use crate::components::{Components, lock_path, read_lock, write_lock};
use crate::config::{self, ComponentRef};

/// Arguments of `vantage lock`.
#[derive(Debug, clap::Args)]
pub struct LockArgs {
    /// The configuration file.
    #[arg(default_value = "vantage.toml")]
    pub config: PathBuf,
    /// Re-resolve only the components of this check (repeatable); the
    /// other pins stay as they are.
    #[arg(long = "update", value_name = "CHECK")]
    pub update: Vec<String>,
}

/// Run the command: 0 when the lock is written, 2 when the configuration
/// is invalid or a tag cannot be resolved (the lock is then unchanged).
pub async fn execute(args: LockArgs) -> anyhow::Result<u8> {
    let config = match config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            errln!("{e}");
            return Ok(2);
        }
    };
    let path = lock_path(&args.config);
    let old = read_lock(&path)
        .map_err(anyhow::Error::msg)?
        .unwrap_or_default();
    let unknown: Vec<&String> = args
        .update
        .iter()
        .filter(|name| !config.checks.iter().any(|c| &c.name == *name))
        .collect();
    if !unknown.is_empty() {
        errln!(
            "--update: no check named {unknown:?} in {}",
            args.config.display()
        );
        return Ok(2);
    }
    // Every tag in the configuration, with whether it is to be re-resolved.
    let mut tags: BTreeMap<String, bool> = BTreeMap::new();
    let updated = |name: &str| args.update.is_empty() || args.update.iter().any(|u| u == name);
    let checks = config.checks.iter().map(|c| (&c.name, &c.component));
    let restore_checks = config
        .restores
        .iter()
        .flat_map(|r| r.checks.iter().map(|c| (&c.name, &c.component)));
    for (name, component) in checks.chain(restore_checks) {
        if let ComponentRef::Oci(text) = component
            && OciRef::parse(text).is_ok_and(|r| r.digest.is_none())
        {
            *tags.entry(text.clone()).or_default() |= updated(name);
        }
    }
    let sources =
        Components::for_command(&config.registry, config.global.max_component_size, false);
    if let Some(why) = sources.unusable() {
        errln!("{why}");
        return Ok(2);
    }
    let mut pins = BTreeMap::new();
    let mut failed = false;
    for (text, update) in tags {
        if !update && let Some(digest) = old.get(&text) {
            pins.insert(text, digest.clone());
            continue;
        }
        let reference = OciRef::parse(&text)?;
        let resolved = match sources.registry().resolve(&reference).await {
            // A digest the signature policy refuses is not pinned.
            Ok(digest) => sources
                .registry()
                .check_signatures(&reference.pinned(&digest), &digest)
                .await
                .map(|verified| (digest, verified)),
            Err(e) => Err(e),
        };
        match resolved {
            Ok((digest, verified)) => {
                let signed = verified
                    .map(|v| format!(" (signed by {})", v.key))
                    .unwrap_or_default();
                match old.get(&text) {
                    Some(before) if *before != digest => {
                        outln!("{text}: {before} -> {digest}{signed}")
                    }
                    Some(_) => outln!("{text}: {digest} (unchanged){signed}"),
                    None => outln!("{text}: {digest}{signed}"),
                }
                pins.insert(text, digest);
            }
            Err(e) => {
                errln!("{text}: {e}");
                failed = true;
            }
        }
    }
    if failed {
        errln!("{} left unchanged", path.display());
        return Ok(2);
    }
    write_lock(&path, &pins)?;
    outln!("wrote {} ({} component(s))", path.display(), pins.len());
    Ok(0)
}
