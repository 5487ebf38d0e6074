//! Step 2: the volatile namespace the backup is restored into, and the
//! NetworkPolicy that isolates it before anything is restored.
//!
//! # Isolation
//!
//! The NetworkPolicy `vantage-isolation` selects every pod of the namespace
//! and denies all traffic except:
//!
//! - **ingress** from pods of the same namespace (the restored app talks to
//!   itself: API → database) and from the namespace Vantage runs in
//!   (`kubernetes.io/metadata.name=<vantage namespace>`, taken from
//!   `POD_NAMESPACE`, see [`crate::restore::RunOptions`]), so the
//!   restore-validation checks can reach the app. Without a Vantage
//!   namespace (Vantage runs outside the cluster) only same-namespace
//!   ingress is allowed;
//! - **egress** to pods of the same namespace, DNS (UDP and TCP, port 53
//!   unless configured) to the `dns` peers (default: kube-dns,
//!   `k8s-app=kube-dns` in `kube-system`; NodeLocal DNSCache and OpenShift
//!   need their own, see [`crate::config::DnsRule`]), and each configured
//!   `egress` CIDR (on its TCP ports, or all ports when none are given).
//!   An egress block containing a cloud metadata address
//!   ([`METADATA_ADDRESSES`]) always excepts it: a restored pod must not
//!   fetch the node's cloud credentials.
//!
//! With several source namespaces (one volatile namespace each, see
//! [`crate::restore::mapping`]), [`allow_run_namespaces`] adds ingress from
//! and egress to the pods of **this run's** other volatile namespaces
//! (selected by the run's labels: managed-by, test and run id), so the app's
//! own cross-namespace calls work; another run's namespaces stay out.
//!
//! So restored workloads cannot talk to production. Enforcement needs a
//! CNI that implements NetworkPolicy (Calico, Cilium, ...): the isolation
//! probe ([`crate::restore::probe`]) checks that it does.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer,
    NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use sha2::{Digest, Sha256};

use crate::config::{DnsPeer, Isolation};
pub use crate::policy::{METADATA_ADDRESSES, metadata_inside};

/// `app.kubernetes.io/managed-by`: on everything a restore test creates.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// The value of [`MANAGED_BY_LABEL`].
pub const MANAGED_BY: &str = "vantage";
/// The restore test's name.
pub const TEST_LABEL: &str = "vantage.dev/restore-test";
/// The run's id.
pub const RUN_ID_LABEL: &str = "vantage.dev/run-id";
/// When the janitor may delete the object (RFC 3339, UTC).
pub const EXPIRES_AT_ANNOTATION: &str = "vantage.dev/expires-at";
/// The isolating NetworkPolicy's name.
pub const NETWORK_POLICY_NAME: &str = "vantage-isolation";
/// Label every namespace carries with its own name (Kubernetes ≥ 1.21).
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// Longest DNS label (namespace names).
const MAX_NAME: usize = 63;

/// Six hex digits of the SHA-256 of the run id: short, stable per run.
pub fn run_suffix(run_id: &str) -> String {
    let digest = Sha256::digest(run_id.as_bytes());
    hex::encode(&digest[..3])
}

/// `{prefix}{test}-{suffix}` made a valid DNS label (lowercase, `_` → `-`,
/// at most 63 characters, the prefix and test name cut to fit): the run's
/// Restore is named so ([`crate::restore::restore_object::restore_name`]).
/// The volatile namespaces are named per source namespace by
/// [`crate::restore::mapping::volatile_namespaces`] (the same name when the
/// source is called like the test).
pub fn volatile_name(prefix: &str, test: &str, run_id: &str) -> String {
    let suffix = run_suffix(run_id);
    let mut head: String = format!("{prefix}{test}")
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '-') => c,
            _ => '-',
        })
        .collect();
    head.truncate(MAX_NAME - suffix.len() - 1);
    let head = head.trim_matches('-');
    if head.is_empty() {
        format!("vantage-{suffix}")
    } else {
        format!("{head}-{suffix}")
    }
}

/// `s` made a valid label value: at most 63 characters of `[A-Za-z0-9-_.]`,
/// starting and ending alphanumeric.
pub fn label_value(s: &str) -> String {
    let mut v: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    v.truncate(MAX_NAME);
    v.trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string()
}

/// The labels of everything a run creates.
pub fn run_labels(test: &str, run_id: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (MANAGED_BY_LABEL.to_string(), MANAGED_BY.to_string()),
        (TEST_LABEL.to_string(), label_value(test)),
        (RUN_ID_LABEL.to_string(), label_value(run_id)),
    ])
}

/// The annotations of everything a run creates: its expiry.
pub fn run_annotations(expires_at: DateTime<Utc>) -> BTreeMap<String, String> {
    BTreeMap::from([(
        EXPIRES_AT_ANNOTATION.to_string(),
        expires_at.to_rfc3339_opts(SecondsFormat::Secs, true),
    )])
}

/// The label selector that finds what any run created.
pub fn managed_selector() -> String {
    format!("{MANAGED_BY_LABEL}={MANAGED_BY},{RUN_ID_LABEL}")
}

/// The volatile namespace.
pub fn build_namespace(
    name: &str,
    labels: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
) -> Namespace {
    Namespace {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            labels: Some(labels.clone()),
            annotations: Some(annotations.clone()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    }
}

/// The default-deny NetworkPolicy of the volatile namespace (see the
/// module docs for what it allows).
pub fn build_network_policy(
    namespace: &str,
    isolation: &Isolation,
    vantage_namespace: Option<&str>,
    labels: &BTreeMap<String, String>,
) -> NetworkPolicy {
    let same_namespace = NetworkPolicyPeer {
        pod_selector: Some(LabelSelector::default()),
        ..NetworkPolicyPeer::default()
    };
    let namespace_named = |name: &str| LabelSelector {
        match_labels: Some(BTreeMap::from([(
            NAMESPACE_NAME_LABEL.to_string(),
            name.to_string(),
        )])),
        ..LabelSelector::default()
    };

    let mut from = vec![same_namespace.clone()];
    if let Some(vantage) = vantage_namespace {
        from.push(NetworkPolicyPeer {
            namespace_selector: Some(namespace_named(vantage)),
            ..NetworkPolicyPeer::default()
        });
    }

    let port = |protocol: &str, port: u16| NetworkPolicyPort {
        protocol: Some(protocol.to_string()),
        port: Some(IntOrString::Int(i32::from(port))),
        ..NetworkPolicyPort::default()
    };
    let mut egress = vec![NetworkPolicyEgressRule {
        to: Some(vec![same_namespace]),
        ports: None,
    }];
    for dns in &isolation.dns {
        let peer = match &dns.peer {
            DnsPeer::Pods { namespace, labels } => NetworkPolicyPeer {
                namespace_selector: Some(namespace_named(namespace)),
                pod_selector: Some(LabelSelector {
                    match_labels: Some(labels.iter().cloned().collect()),
                    ..LabelSelector::default()
                }),
                ..NetworkPolicyPeer::default()
            },
            DnsPeer::Cidr(cidr) => NetworkPolicyPeer {
                ip_block: Some(ip_block(cidr)),
                ..NetworkPolicyPeer::default()
            },
        };
        egress.push(NetworkPolicyEgressRule {
            to: Some(vec![peer]),
            ports: Some(vec![port("UDP", dns.port), port("TCP", dns.port)]),
        });
    }
    for rule in &isolation.egress {
        egress.push(NetworkPolicyEgressRule {
            to: Some(vec![NetworkPolicyPeer {
                ip_block: Some(ip_block(&rule.cidr)),
                ..NetworkPolicyPeer::default()
            }]),
            ports: (!rule.ports.is_empty())
                .then(|| rule.ports.iter().map(|p| port("TCP", *p)).collect()),
        });
    }

    NetworkPolicy {
        metadata: ObjectMeta {
            name: Some(NETWORK_POLICY_NAME.to_string()),
            namespace: Some(namespace.to_string()),
            labels: Some(labels.clone()),
            ..ObjectMeta::default()
        },
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector::default()),
            policy_types: Some(vec!["Ingress".to_string(), "Egress".to_string()]),
            ingress: Some(vec![NetworkPolicyIngressRule {
                from: Some(from),
                ports: None,
            }]),
            egress: Some(egress),
        }),
    }
}

/// Let the pods of `policy`'s namespace talk with the pods of every
/// namespace labelled with all of `run_labels` (the run's labels, which
/// each of its volatile namespaces carries), both ways. Used when a run has
/// several volatile namespaces; nothing else is opened.
pub fn allow_run_namespaces(policy: &mut NetworkPolicy, run_labels: &BTreeMap<String, String>) {
    let peer = NetworkPolicyPeer {
        namespace_selector: Some(LabelSelector {
            match_labels: Some(run_labels.clone()),
            ..LabelSelector::default()
        }),
        ..NetworkPolicyPeer::default()
    };
    let Some(spec) = policy.spec.as_mut() else {
        return;
    };
    spec.ingress
        .get_or_insert_with(Vec::new)
        .push(NetworkPolicyIngressRule {
            from: Some(vec![peer.clone()]),
            ports: None,
        });
    spec.egress
        .get_or_insert_with(Vec::new)
        .push(NetworkPolicyEgressRule {
            to: Some(vec![peer]),
            ports: None,
        });
}

/// An `ipBlock` for `cidr`, excepting the metadata addresses inside it.
fn ip_block(cidr: &str) -> IPBlock {
    let except = metadata_inside(cidr);
    IPBlock {
        cidr: cidr.to_string(),
        except: (!except.is_empty()).then_some(except),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::EgressRule;
    use crate::restore::tests::fixture::is_dns_label;

    #[test]
    fn volatile_names_are_dns_labels() {
        let name = volatile_name("vantage-restore-", "shop", "18c2f-1a-0");
        assert!(name.starts_with("vantage-restore-shop-"), "{name}");
        assert_eq!(name.len(), "vantage-restore-shop-".len() + 6);
        assert!(is_dns_label(&name));
        let long = volatile_name("vantage-restore-", &"very_long_name-".repeat(8), "r");
        assert!(is_dns_label(&long), "{long}");
        assert!(long.len() <= 63);
        assert_ne!(
            volatile_name("p-", "t", "run-1"),
            volatile_name("p-", "t", "run-2")
        );
        assert!(is_dns_label(&volatile_name("", "_", "x")));
    }

    #[test]
    fn label_values_are_valid() {
        assert_eq!(label_value("shop_db-"), "shop_db");
        assert_eq!(label_value(&"a".repeat(80)).len(), 63);
    }

    #[test]
    fn network_policy_denies_all_but_dns_same_namespace_vantage_and_egress_rules() {
        let isolation = Isolation {
            egress: vec![EgressRule {
                cidr: "10.20.0.0/16".into(),
                ports: vec![5432],
            }],
            ..Isolation::default()
        };
        let np = build_network_policy("ns1", &isolation, Some("monitoring"), &BTreeMap::new());
        let v = serde_json::to_value(&np).unwrap();
        assert_eq!(v["spec"]["podSelector"], serde_json::json!({}));
        assert_eq!(
            v["spec"]["policyTypes"],
            serde_json::json!(["Ingress", "Egress"])
        );
        assert_eq!(
            v["spec"]["ingress"][0]["from"][1]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
            "monitoring"
        );
        let egress = v["spec"]["egress"].as_array().unwrap();
        assert_eq!(egress.len(), 3);
        assert_eq!(
            egress[1]["ports"][0],
            serde_json::json!({"port": 53, "protocol": "UDP"})
        );
        assert_eq!(egress[2]["to"][0]["ipBlock"]["cidr"], "10.20.0.0/16");
        assert_eq!(egress[2]["ports"][0]["port"], 5432);
    }
}
