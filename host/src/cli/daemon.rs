//! `vantage daemon`: run every configured check on its schedule, forever.

use std::net::SocketAddr;
use std::path::PathBuf;

use super::CacheArgs;
use crate::daemon;

/// Arguments of `vantage daemon`.
#[derive(Debug, clap::Args)]
pub struct DaemonArgs {
    /// The configuration file.
    #[arg(
        short,
        long,
        env = "VANTAGE_CONFIG",
        default_value = "vantage.toml",
        value_name = "FILE"
    )]
    pub config: PathBuf,
    /// The location label of every series and result (overrides
    /// `global.location`: one configuration for every edge).
    #[arg(long, env = "VANTAGE_LOCATION", value_name = "NAME")]
    pub location: Option<String>,
    /// Run only this replica's share of the checks and restore tests:
    /// `i/n` (or a StatefulSet pod name's ordinal, `vantage-2/3`), each
    /// check to exactly one of n replicas by a stable hash of its name;
    /// heartbeats run on shard 0.
    #[arg(long, env = "VANTAGE_SHARD", value_name = "i/n")]
    pub shard: Option<crate::daemon::shard::Shard>,
    /// Address of the HTTP API, metrics and status page (overrides
    /// `global.listen`; default 127.0.0.1:9470).
    #[arg(long, env = "VANTAGE_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Where history is kept (overrides `global.data_dir`; default: the OS
    /// data directory).
    #[arg(long, env = "VANTAGE_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Do not reload when the configuration file changes (SIGHUP still
    /// reloads).
    #[arg(long)]
    pub no_watch: bool,
    /// Resolve `oci://` tags that `vantage.lock` does not pin (each logged
    /// with its digest) instead of refusing them as stale; the lock file is
    /// not rewritten (`vantage lock` does that).
    #[arg(long)]
    pub re_resolve: bool,
    #[command(flatten)]
    pub cache: CacheArgs,
}

/// Run the daemon until SIGTERM or SIGINT; exit 0 after a clean stop.
pub async fn execute(args: DaemonArgs) -> anyhow::Result<u8> {
    daemon::run(daemon::Options {
        config: args.config,
        listen: args.listen,
        data_dir: args.data_dir,
        cache_dir: args.cache.dir(),
        compiler: args.cache.compiler.unwrap_or_default(),
        location: args.location,
        shard: args.shard,
        watch: !args.no_watch,
        re_resolve: args.re_resolve,
    })
    .await?;
    Ok(0)
}
