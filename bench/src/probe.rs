//! Vantage's side of the in-process measurements: the runtime built as the
//! daemon builds it, and the `http` check configured like the other probers.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use vantage::config::{DEFAULT_MEMORY, Limits};
use vantage::policy::AllowList;
use vantage::runtime::engine::EngineOptions;
use vantage::runtime::{LoadedCheck, RunSpec, Runtime};

use crate::target::BODY_REGEX;

/// The daemon's default `global.concurrency`.
pub const DAEMON_CONCURRENCY: u32 = 64;

/// The engine options `vantage daemon` uses with a default configuration:
/// no fuel, the default 64 MiB memory cap sizing the pool's slots, a pool of
/// `concurrency + 16` instances (see `daemon::run`).
pub fn daemon_engine() -> EngineOptions {
    EngineOptions {
        fuel: false,
        max_memory: DEFAULT_MEMORY,
        pool_instances: DAEMON_CONCURRENCY + 16,
        compiler: Default::default(),
    }
}

/// The runtime (pooling allocator, epoch ticker) with the daemon's options
/// and no disk cache.
pub fn runtime() -> anyhow::Result<Arc<Runtime>> {
    Ok(Arc::new(Runtime::new(&daemon_engine(), None)?))
}

/// Where the wasm components are.
#[derive(Debug, Clone)]
pub struct Components(pub PathBuf);

impl Components {
    /// `<dir>/<name>.wasm`.
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(format!("{name}.wasm"))
    }

    /// Load one into `runtime`.
    pub async fn load(&self, runtime: &Runtime, name: &str) -> anyhow::Result<Arc<LoadedCheck>> {
        Ok(Arc::new(runtime.load_file(&self.path(name)).await?))
    }
}

/// The `http` check's configuration every comparison uses: status 200 and
/// the body regex (blackbox_exporter's `valid_status_codes` and
/// `fail_if_body_not_matches_regexp`).
pub fn http_config(insecure: bool) -> Vec<(String, String)> {
    let mut config = vec![
        ("expect.status".to_string(), "200".to_string()),
        ("expect.body_matches.0".to_string(), BODY_REGEX.to_string()),
    ];
    if insecure {
        config.push(("insecure".into(), "true".into()));
    }
    config
}

/// A run of the `http` check against `url` (origin allowed; `insecure`
/// for the HTTPS target, whose test CA the check cannot be given).
pub fn http_spec(url: &str, insecure: bool) -> anyhow::Result<RunSpec> {
    let origin = url::Url::parse(url)?.origin().ascii_serialization();
    Ok(RunSpec {
        check_name: "bench-http".into(),
        targets: vec![url.to_string()],
        config: http_config(insecure),
        allow: Arc::new(AllowList::parse([origin.as_str()])?),
        secrets: Vec::new(),
        limits: Limits {
            timeout: Duration::from_secs(10),
            memory: DEFAULT_MEMORY,
            fuel: None,
            cpu: None,
        },
        location: "bench".into(),
        mode: vantage::config::Mode::Edge,
        resolver: Arc::default(),
        allow_insecure: insecure,
        tape: Default::default(),
    })
}

/// A component's size and sha256 prefix, for the report.
pub fn describe_file(path: &Path) -> String {
    use sha2::Digest as _;
    match std::fs::read(path) {
        Ok(bytes) => format!(
            "`{}` ({} KiB, sha256 {}…)",
            path.file_name().unwrap_or_default().to_string_lossy(),
            bytes.len() / 1024,
            &hex::encode(sha2::Sha256::digest(&bytes))[..12]
        ),
        Err(_) => format!("`{}` (missing)", path.display()),
    }
}
