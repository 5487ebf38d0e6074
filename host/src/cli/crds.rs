//! `vantage crds`: print the `Check` and `RestoreTest`
//! CustomResourceDefinitions, or write one file per CRD.

use std::io::Write as _;
use std::path::PathBuf;

use crate::kubernetes::crd;

/// Arguments of `vantage crds`.
#[derive(Debug, clap::Args)]
pub struct CrdsArgs {
    /// Write `checks.vantage.dev.yaml` and `restoretests.vantage.dev.yaml`
    /// into this directory instead of printing both.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Print both CRDs as one YAML stream (`vantage crds | kubectl apply -f -`),
/// or write them into `--dir`.
pub fn execute(args: CrdsArgs) -> anyhow::Result<u8> {
    match args.dir {
        None => std::io::stdout()
            .lock()
            .write_all(crd::crds_yaml().as_bytes())?,
        Some(dir) => {
            std::fs::create_dir_all(&dir)?;
            for (file, text) in crd::crd_files() {
                let path = dir.join(file);
                std::fs::write(&path, text)?;
                eprintln!("wrote {}", path.display());
            }
        }
    }
    Ok(0)
}
