//! What restore-validation checks may reach: the Services restored into the
//! run's volatile namespaces (one per source namespace), and nothing wider.
//!
//! The sandbox refuses private addresses unless the allow list names them
//! literally, and ClusterIPs and pod IPs are private: the documented target
//! `http://api.{{namespace}}.svc.cluster.local:8080` could not work. In
//! restore mode the run reads the volatile namespace from the API and each
//! check's allow list gets exactly (pattern `*://IP:PORT`):
//!
//! - each Service's ClusterIPs on the Service's TCP ports. They are fresh
//!   addresses of the restore: Velero clears `spec.clusterIP(s)` of every
//!   restored Service that is not headless (`ServiceAction.Execute`,
//!   `pkg/restore/actions/service_action.go`), so the API server allocates
//!   new ones;
//! - the IPs of the Running pods **of the volatile namespace** a Service
//!   selects, on its target ports (numbers, or named container ports of the
//!   pod). Pods on the host network are left out (their IP is the node's).
//!
//! Endpoints and EndpointSlices are deliberately not read: Velero restores
//! `endpoints` from the backup (its restore priorities,
//! `pkg/cmd/server/config/config.go`), and those name the *production*
//! pods' addresses.

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, ListParams};
use serde::{Deserialize, Serialize};

use crate::policy::AllowPattern;

/// One address a restore check may connect to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Reachable {
    /// The Service it belongs to.
    pub service: String,
    /// A ClusterIP or a selected pod's IP.
    pub ip: IpAddr,
    /// A TCP port of the Service (ClusterIP) or its target port (pod).
    pub port: u16,
}

impl Reachable {
    /// The allow pattern naming exactly this address and port, any scheme.
    pub fn pattern(&self) -> Option<AllowPattern> {
        let host = match self.ip {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => format!("[{v6}]"),
        };
        format!("*://{host}:{}", self.port).parse().ok()
    }
}

/// Read the Services and Pods of `namespace` and list what checks may
/// reach ([`reachable_from`]).
pub async fn reachable(
    client: &kube::Client,
    namespace: &str,
) -> Result<Vec<Reachable>, kube::Error> {
    let all = ListParams::default();
    let services = Api::<Service>::namespaced(client.clone(), namespace)
        .list(&all)
        .await?
        .items;
    let pods = Api::<Pod>::namespaced(client.clone(), namespace)
        .list(&all)
        .await?
        .items;
    Ok(reachable_from(&services, &pods))
}

/// [`reachable`] for every volatile namespace of a run (checks may reach
/// the Services of all of them), sorted, without duplicates.
pub async fn reachable_all(
    client: &kube::Client,
    mapping: &[super::mapping::NamespaceMapping],
) -> Result<Vec<Reachable>, kube::Error> {
    let mut out = Vec::new();
    for m in mapping {
        out.extend(reachable(client, &m.volatile).await?);
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// The addresses `services` expose, with `pods` the pods of the same
/// namespace (see the module docs). Sorted, without duplicates.
pub fn reachable_from(services: &[Service], pods: &[Pod]) -> Vec<Reachable> {
    let mut out = Vec::new();
    for service in services {
        let name = service.metadata.name.clone().unwrap_or_default();
        let Some(spec) = &service.spec else { continue };
        let ports: Vec<_> = spec
            .ports
            .iter()
            .flatten()
            .filter(|p| p.protocol.as_deref().unwrap_or("TCP") == "TCP")
            .collect();
        let mut cluster_ips: Vec<&str> = spec
            .cluster_ips
            .iter()
            .flatten()
            .map(String::as_str)
            .collect();
        if let Some(ip) = spec.cluster_ip.as_deref() {
            cluster_ips.push(ip);
        }
        for ip in cluster_ips
            .into_iter()
            .filter_map(|ip| ip.parse::<IpAddr>().ok())
        {
            for p in &ports {
                if let Ok(port) = u16::try_from(p.port) {
                    out.push(Reachable {
                        service: name.clone(),
                        ip,
                        port,
                    });
                }
            }
        }
        let Some(selector) = spec.selector.as_ref().filter(|s| !s.is_empty()) else {
            continue;
        };
        for pod in pods.iter().filter(|p| selects(selector, p) && usable(p)) {
            for ip in pod_ips(pod) {
                for p in &ports {
                    if let Some(port) = target_port(p.target_port.as_ref(), p.port, pod) {
                        out.push(Reachable {
                            service: name.clone(),
                            ip,
                            port,
                        });
                    }
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

fn selects(selector: &BTreeMap<String, String>, pod: &Pod) -> bool {
    let labels = pod.metadata.labels.as_ref();
    selector
        .iter()
        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

/// Running, and not on the node's network.
fn usable(pod: &Pod) -> bool {
    let running = pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
    let host_network = pod
        .spec
        .as_ref()
        .and_then(|s| s.host_network)
        .unwrap_or(false);
    running && !host_network
}

fn pod_ips(pod: &Pod) -> Vec<IpAddr> {
    let Some(status) = &pod.status else {
        return Vec::new();
    };
    let mut ips: Vec<IpAddr> = status
        .pod_ips
        .iter()
        .flatten()
        .filter_map(|ip| ip.ip.parse().ok())
        .collect();
    if let Some(ip) = status.pod_ip.as_deref().and_then(|ip| ip.parse().ok())
        && !ips.contains(&ip)
    {
        ips.push(ip);
    }
    ips
}

/// A Service port's target on `pod`: the number, the named container port,
/// or (unset) the Service port itself.
fn target_port(target: Option<&IntOrString>, port: i32, pod: &Pod) -> Option<u16> {
    let number = match target {
        None => port,
        Some(IntOrString::Int(n)) => *n,
        Some(IntOrString::String(name)) => match name.parse::<i32>() {
            Ok(n) => n,
            Err(_) => {
                pod.spec
                    .as_ref()?
                    .containers
                    .iter()
                    .flat_map(|c| c.ports.iter().flatten())
                    .find(|p| p.name.as_deref() == Some(name.as_str()))?
                    .container_port
            }
        },
    };
    u16::try_from(number).ok().filter(|p| *p > 0)
}
