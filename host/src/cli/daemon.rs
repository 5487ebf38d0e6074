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
    #[cfg(feature = "kubernetes")]
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// How the daemon takes part in a Kubernetes cluster.
#[cfg(feature = "kubernetes")]
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Kubernetes")]
pub struct ClusterArgs {
    /// Run the `Check` and `RestoreTest` resources (vantage.dev/v1alpha1)
    /// of the daemon's namespace (`POD_NAMESPACE`, else the kubeconfig's)
    /// beside the configuration file, which may then be absent.
    #[arg(long, env = "VANTAGE_KUBERNETES")]
    pub kubernetes: bool,
    /// With `--kubernetes`: these namespaces instead (comma-separated).
    #[arg(
        long,
        env = "VANTAGE_KUBERNETES_NAMESPACES",
        value_delimiter = ',',
        value_name = "NS,…",
        conflicts_with = "kubernetes_namespace_selector"
    )]
    pub kubernetes_namespace: Vec<String>,
    /// With `--kubernetes`: every namespace whose labels match this
    /// selector (`team=web`).
    #[arg(
        long,
        env = "VANTAGE_KUBERNETES_NAMESPACE_SELECTOR",
        value_name = "SELECTOR"
    )]
    pub kubernetes_namespace_selector: Option<String>,
    /// Share the checks with the other replicas of `--shard-group`: each
    /// renews its own Lease and runs the checks it owns by rendezvous
    /// hashing over the live members (`leases`).
    #[arg(long, env = "VANTAGE_MEMBERSHIP", value_name = "leases", value_parser = ["leases"])]
    pub membership: Option<String>,
    /// Run restore tests only on the replica holding the Lease
    /// `<shard-group>-restore-leader`.
    #[arg(long, env = "VANTAGE_LEADER_ELECT")]
    pub leader_elect: bool,
    /// The group the Leases belong to.
    #[arg(
        long,
        env = "VANTAGE_SHARD_GROUP",
        default_value = "vantage",
        value_name = "NAME"
    )]
    pub shard_group: String,
    /// How long a Lease lasts after its renewal (a member Lease is renewed every quarter of it, the leader Lease every third):
    /// a stopped replica's checks move within this.
    #[arg(long, env = "VANTAGE_LEASE_DURATION", default_value = "15s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub lease_duration: std::time::Duration,
}

#[cfg(feature = "kubernetes")]
impl ClusterArgs {
    /// The daemon's cluster options.
    fn options(self) -> anyhow::Result<daemon::cluster::ClusterOptions> {
        use crate::kubernetes::watch::Scope;
        anyhow::ensure!(
            (std::time::Duration::from_secs(3)..=std::time::Duration::from_secs(3600))
                .contains(&self.lease_duration),
            "--lease-duration must be between 3s and 1h"
        );
        let scoped =
            !self.kubernetes_namespace.is_empty() || self.kubernetes_namespace_selector.is_some();
        anyhow::ensure!(
            self.kubernetes || !scoped,
            "--kubernetes-namespace and --kubernetes-namespace-selector need --kubernetes"
        );
        let watch = match (self.kubernetes, self.kubernetes_namespace_selector) {
            (false, _) => None,
            (true, Some(selector)) => Some(Scope::Selector(selector)),
            (true, None) => Some(Scope::Namespaces(self.kubernetes_namespace)),
        };
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Ok(daemon::cluster::ClusterOptions {
            watch,
            membership: self.membership.is_some(),
            leader_elect: self.leader_elect,
            group: self.shard_group,
            lease_duration: self.lease_duration,
            identity: env("POD_NAME"),
            namespace: env("POD_NAMESPACE"),
        })
    }
}

/// Run the daemon until SIGTERM or SIGINT; exit 0 after a clean stop.
pub async fn execute(args: DaemonArgs) -> anyhow::Result<u8> {
    #[cfg(feature = "kubernetes")]
    anyhow::ensure!(
        args.shard.is_none() || args.cluster.membership.is_none(),
        "--shard and --membership leases are two ways of sharing the checks: choose one"
    );
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
        #[cfg(feature = "kubernetes")]
        cluster: args.cluster.options()?,
        #[cfg(not(feature = "kubernetes"))]
        cluster: Default::default(),
    })
    .await?;
    Ok(0)
}
