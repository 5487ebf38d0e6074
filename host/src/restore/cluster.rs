//! Connecting to the cluster a restore test runs against.

use kube::config::{Config, KubeConfigOptions, Kubeconfig};

use crate::config::ClusterAccess;

/// Why no client could be built.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The kubeconfig file could not be read or parsed.
    #[error("reading kubeconfig {path}: {source}")]
    ReadKubeconfig {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// The kubeconfig did not yield a usable configuration (e.g. unknown
    /// context).
    #[error("loading kubeconfig{}: {source}", context.as_deref().map(|c| format!(" context {c}")).unwrap_or_default())]
    LoadKubeconfig {
        /// The requested context.
        context: Option<String>,
        /// Why.
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// Neither a kubeconfig nor the in-cluster service account was found.
    #[error("inferring the cluster configuration (no kubeconfig, not in a pod): {0}")]
    Infer(#[source] kube::config::InferConfigError),
    /// The HTTP client could not be built (e.g. bad TLS material).
    #[error("building the Kubernetes client: {0}")]
    Client(#[source] kube::Error),
}

/// A client for `access`:
///
/// - a kubeconfig path: that file, with `context` (or its current context);
/// - only a context: `$KUBECONFIG` / `~/.kube/config` with that context;
/// - neither: kube's inference (`$KUBECONFIG` / `~/.kube/config`, else the
///   in-cluster service account).
///
/// TLS is rustls with the aws-lc-rs provider (the process installs it as
/// the default at start-up).
pub async fn client(access: &ClusterAccess) -> Result<kube::Client, ClusterError> {
    let options = KubeConfigOptions {
        context: access.context.clone(),
        ..KubeConfigOptions::default()
    };
    let config = match (&access.kubeconfig, &access.context) {
        (Some(path), _) => {
            let kubeconfig =
                Kubeconfig::read_from(path).map_err(|source| ClusterError::ReadKubeconfig {
                    path: path.display().to_string(),
                    source,
                })?;
            Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .map_err(|source| ClusterError::LoadKubeconfig {
                    context: access.context.clone(),
                    source,
                })?
        }
        (None, Some(context)) => Config::from_kubeconfig(&options).await.map_err(|source| {
            ClusterError::LoadKubeconfig {
                context: Some(context.clone()),
                source,
            }
        })?,
        (None, None) => Config::infer().await.map_err(ClusterError::Infer)?,
    };
    kube::Client::try_from(config).map_err(ClusterError::Client)
}
