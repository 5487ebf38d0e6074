//! Kubernetes-native Vantage against a REAL cluster: the CRDs applied, nine
//! `Check` resources in a namespace of their own, three `vantage daemon
//! --kubernetes --membership leases` replicas (processes on this machine,
//! talking to the cluster's API server), each check once per slot, its
//! status written back (what `kubectl get checks` shows), one replica killed
//! and its checks moved within a lease duration: the same scenario as
//! `kube_native`'s against the fake API server.
//!
//! Runs only when `KUBECONFIG` is set **and** `VANTAGE_E2E_KUBE=1` (it
//! creates cluster-wide CRDs and a namespace `vantage-e2e-…`, deleted at
//! the end); otherwise it prints why it is skipped and passes. The checks'
//! target is a server on this machine's loopback, so the cluster needs no
//! route to it. Any cluster works (kind, k3d):
//!
//! ```sh
//! kind create cluster --name vantage-e2e
//! KUBECONFIG=$HOME/.kube/config VANTAGE_E2E_KUBE=1 cargo nextest run -p vantage --test e2e kube_cluster
//! ```
//!
//! The Helm chart on a real cluster (`helm install … --set mode=sharded`)
//! needs an image of the daemon in a registry the cluster pulls from; it is
//! described in `deploy/helm/vantage/README.md` and not automated here.

use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::core::CustomResourceExt;
use vantage::kubernetes::crd::{Check, RestoreTest};

#[tokio::test(flavor = "multi_thread")]
async fn sharded_checks_on_a_real_cluster() {
    let (Ok(kubeconfig), Ok("1")) = (
        std::env::var("KUBECONFIG"),
        std::env::var("VANTAGE_E2E_KUBE").as_deref(),
    ) else {
        eprintln!(
            "skipped: set KUBECONFIG and VANTAGE_E2E_KUBE=1 to run the Kubernetes-native suite against a real cluster"
        );
        return;
    };
    let kubeconfig = std::path::PathBuf::from(kubeconfig);
    let client = crate::kube_native::client(&kubeconfig).await;
    // The CRDs, as `vantage crds` prints them, applied and established.
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let apply = PatchParams::apply("vantage-e2e").force();
    for crd in [Check::crd(), RestoreTest::crd()] {
        let name = crd.metadata.name.clone().unwrap();
        crds.patch(&name, &apply, &Patch::Apply(&crd))
            .await
            .unwrap();
        let established = kube::runtime::wait::conditions::is_crd_established();
        tokio::time::timeout(
            Duration::from_secs(30),
            kube::runtime::wait::await_condition(crds.clone(), &name, established),
        )
        .await
        .unwrap_or_else(|_| panic!("CRD {name} not established within 30 s"))
        .unwrap();
    }
    let namespace = format!(
        "vantage-e2e-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    );
    let namespaces: Api<Namespace> = Api::all(client);
    let ns: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": namespace}})).unwrap();
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    let scenario = tokio::spawn({
        let (kubeconfig, namespace) = (kubeconfig.clone(), namespace.clone());
        async move { crate::kube_native::sharded(&kubeconfig, &namespace).await }
    })
    .await;
    let _ = namespaces
        .delete(&namespace, &DeleteParams::default())
        .await;
    if let Err(e) = scenario {
        std::panic::resume_unwind(e.into_panic());
    }
}
