//! Whether `deploy/rbac.yaml` grants every request a restore run made: the
//! in-process API server's request log read as RBAC attributes (verb, API
//! group, resource and subresource, namespace) and matched against the
//! ClusterRole (anywhere) and the Roles (in their own namespace).

use serde_json::Value;

use crate::support::repo;

/// One request as RBAC sees it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Attributes {
    pub verb: String,
    pub group: String,
    /// `resource` or `resource/subresource`.
    pub resource: String,
    pub namespace: Option<String>,
}

/// `METHOD /path` (a line of the fake's log) as RBAC attributes.
pub(crate) fn attributes(line: &str) -> Option<Attributes> {
    let (method, path) = line.split_once(' ')?;
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (group, rest) = match parts.as_slice() {
        ["api", _version, rest @ ..] => (String::new(), rest),
        ["apis", group, _version, rest @ ..] => (group.to_string(), rest),
        _ => return None,
    };
    // namespaces/{ns}/{resource}/... or {resource}/...; a namespace itself
    // is the cluster-scoped resource "namespaces".
    let (namespace, rest) = match rest {
        ["namespaces", ns, resource, tail @ ..] => (Some(ns.to_string()), {
            let mut v = vec![*resource];
            v.extend_from_slice(tail);
            v
        }),
        other => (None, other.to_vec()),
    };
    let (resource, item) = match rest.as_slice() {
        [resource] => (resource.to_string(), false),
        [resource, _name] => (resource.to_string(), true),
        [resource, _name, sub] => (format!("{resource}/{sub}"), true),
        _ => return None,
    };
    let verb = match (method, item) {
        ("GET", true) => "get",
        ("GET", false) => "list",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => return None,
    };
    Some(Attributes {
        verb: verb.to_string(),
        group,
        resource,
        namespace,
    })
}

/// The rules of `deploy/rbac.yaml`: (namespace of the Role, or None for the
/// ClusterRole; the rule).
fn rules() -> Vec<(Option<String>, Value)> {
    let text = std::fs::read_to_string(repo().join("deploy/rbac.yaml")).unwrap();
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
    let mut rules = Vec::new();
    for doc in docs {
        let scope = match doc["kind"].as_str() {
            Some("ClusterRole") => None,
            Some("Role") => Some(doc["metadata"]["namespace"].as_str().unwrap().to_string()),
            _ => continue,
        };
        for rule in doc["rules"].as_array().into_iter().flatten() {
            rules.push((scope.clone(), rule.clone()));
        }
    }
    rules
}

fn has(list: &Value, wanted: &str) -> bool {
    list.as_array()
        .is_some_and(|l| l.iter().any(|v| v == wanted || v == "*"))
}

/// Panics, listing them, unless `deploy/rbac.yaml` grants every request of
/// `log` (lines `METHOD /path`).
pub(crate) fn assert_granted(log: &[String]) {
    let rules = rules();
    let mut denied: Vec<&String> = log
        .iter()
        .filter(|line| {
            let Some(a) = attributes(line) else {
                return true;
            };
            !rules.iter().any(|(scope, rule)| {
                let in_scope = scope.is_none() || scope.as_deref() == a.namespace.as_deref();
                in_scope
                    && has(&rule["apiGroups"], &a.group)
                    && has(&rule["resources"], &a.resource)
                    && has(&rule["verbs"], &a.verb)
            })
        })
        .collect();
    denied.dedup();
    assert!(
        denied.is_empty(),
        "deploy/rbac.yaml does not grant: {denied:#?}"
    );
}

#[test]
fn requests_read_as_rbac_attributes() {
    let a = |line: &str| attributes(line).unwrap();
    assert_eq!(
        a(
            "PUT /apis/networking.k8s.io/v1/namespaces/vantage-restore-x/networkpolicies/vantage-isolation"
        ),
        Attributes {
            verb: "update".into(),
            group: "networking.k8s.io".into(),
            resource: "networkpolicies".into(),
            namespace: Some("vantage-restore-x".into()),
        }
    );
    assert_eq!(
        a("GET /api/v1/namespaces/vantage-restore-x").resource,
        "namespaces"
    );
    assert_eq!(
        a("GET /api/v1/namespaces/vantage-restore-x").namespace,
        None
    );
    assert_eq!(a("GET /api/v1/namespaces").verb, "list");
    assert_eq!(
        a("GET /api/v1/namespaces/x/pods/p/log").resource,
        "pods/log"
    );
    // The rules are read: a namespace may be created, a Secret not listed
    // everywhere.
    assert_granted(&["POST /api/v1/namespaces".to_string()]);
    let denied = std::panic::catch_unwind(|| {
        assert_granted(&["GET /api/v1/namespaces/default/secrets".to_string()])
    });
    assert!(denied.is_err());
}
