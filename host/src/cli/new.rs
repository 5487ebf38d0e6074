//! `vantage new`: scaffold a Rust check crate that builds as-is.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

/// Arguments of `vantage new`.
#[derive(Debug, clap::Args)]
pub struct NewArgs {
    /// Directory to create; its last component names the check.
    pub dir: PathBuf,
    /// Crate name (default: the directory's name).
    #[arg(long)]
    pub name: Option<String>,
    /// Path of the `vantage-sdk` crate (default: the SDK next to this build of Vantage).
    #[arg(long, env = "VANTAGE_SDK_PATH")]
    pub sdk_path: Option<PathBuf>,
}

const TEMPLATES: &[(&str, &str)] = &[
    (
        "Cargo.toml",
        include_str!("../../../sdk/template/Cargo.toml.tmpl"),
    ),
    (
        ".cargo/config.toml",
        include_str!("../../../sdk/template/cargo-config.toml.tmpl"),
    ),
    (
        "src/lib.rs",
        include_str!("../../../sdk/template/lib.rs.tmpl"),
    ),
    (
        ".gitignore",
        include_str!("../../../sdk/template/gitignore.tmpl"),
    ),
];

/// A crate name Cargo accepts and that reads well as a check name.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

fn default_sdk_path() -> Option<PathBuf> {
    let built_in = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk");
    built_in.join("Cargo.toml").exists().then_some(built_in)
}

/// Run the command.
pub fn execute(args: NewArgs) -> anyhow::Result<u8> {
    let name = match &args.name {
        Some(n) => n.clone(),
        None => args
            .dir
            .file_name()
            .and_then(|n| n.to_str())
            .context("cannot take a check name from the directory; pass --name")?
            .to_string(),
    };
    if !valid_name(&name) {
        bail!(
            "invalid check name {name:?}: use lowercase letters, digits, '-' and '_', starting with a letter"
        );
    }
    let sdk = args
        .sdk_path
        .clone()
        .or_else(default_sdk_path)
        .context("cannot find the vantage-sdk crate; pass --sdk-path /path/to/vantage/sdk")?;
    let sdk = sdk
        .canonicalize()
        .with_context(|| format!("cannot find the vantage-sdk crate at {}", sdk.display()))?;
    if args.dir.exists()
        && args
            .dir
            .read_dir()
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        bail!("{} already exists and is not empty", args.dir.display());
    }
    for (file, template) in TEMPLATES {
        let path = args.dir.join(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        let text = template
            .replace("{{name}}", &name)
            .replace("{{sdk_path}}", &sdk.display().to_string());
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    let artifact = name.replace('-', "_");
    outln!("Created check `{name}` in {}", args.dir.display());
    outln!();
    outln!(
        "Build it:  cd {} && cargo build --release",
        args.dir.display()
    );
    outln!(
        "Run it:    vantage run {}/target/wasm32-wasip2/release/{artifact}.wasm --target https://example.com/",
        args.dir.display()
    );
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(valid_name("my-check"));
        assert!(valid_name("check_2"));
        assert!(!valid_name("My-Check"));
        assert!(!valid_name("2check"));
        assert!(!valid_name(""));
        assert!(!valid_name("a b"));
    }

    #[test]
    fn scaffold_writes_every_file_with_placeholders_filled() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("my-check");
        execute(NewArgs {
            dir: target.clone(),
            name: None,
            sdk_path: default_sdk_path(),
        })
        .unwrap();
        for (file, _) in TEMPLATES {
            let text = std::fs::read_to_string(target.join(file)).unwrap();
            assert!(!text.contains("{{"), "{file} still has a placeholder");
        }
        let manifest = std::fs::read_to_string(target.join("Cargo.toml")).unwrap();
        assert!(manifest.contains("name = \"my-check\""), "{manifest}");
        // A second scaffold into the same, now non-empty directory is refused.
        assert!(
            execute(NewArgs {
                dir: target,
                name: None,
                sdk_path: default_sdk_path(),
            })
            .is_err()
        );
    }
}
