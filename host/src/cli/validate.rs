//! `vantage validate`: check a configuration file without running anything.

use std::path::PathBuf;

use crate::config::{self, ComponentRef};

/// Arguments of `vantage validate`.
#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// The configuration file.
    #[arg(default_value = "vantage.toml")]
    pub config: PathBuf,
}

/// Run the command: exit 0 if valid, 2 (with every error, each naming file,
/// line and key) if not.
pub fn execute(args: ValidateArgs) -> anyhow::Result<u8> {
    let config = match config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return Ok(2);
        }
    };
    for warning in &config.warnings {
        eprintln!("{warning}");
    }
    println!(
        "{}: valid, {} check(s), location {:?}",
        args.config.display(),
        config.checks.len(),
        config.global.location
    );
    for check in &config.checks {
        let component = match &check.component {
            ComponentRef::Path(p) => {
                let note = if p.exists() {
                    ""
                } else {
                    "  (warning: file does not exist yet)"
                };
                format!("{}{note}", p.display())
            }
            ComponentRef::Oci(r) => r.clone(),
        };
        println!(
            "  {:<24} {:<14} {component}",
            check.name,
            check.schedule.to_string()
        );
    }
    if !config.restores.is_empty() {
        println!("{} restore test(s):", config.restores.len());
    }
    for r in &config.restores {
        println!(
            "  {:<24} {:<14} {}, {} check(s){}",
            r.name,
            r.schedule.to_string(),
            crate::daemon::restores::describe_backup(r),
            r.checks.len(),
            if r.audit { ", audited" } else { "" }
        );
    }
    Ok(0)
}
