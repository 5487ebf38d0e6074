//! `deploy/admission-policy.yaml`: its CEL expressions, read from the
//! committed file, evaluated (the `cel-interpreter` crate) against requests
//! Vantage makes (built by the same code as a run) and requests it must be
//! refused.

use super::*;

const POLICY_FILE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../deploy/admission-policy.yaml"
);
const VANTAGE: &str = "system:serviceaccount:vantage:vantage";
const NS: &str = "vantage-restore-shop-1a2b3c";

/// One ValidatingAdmissionPolicy: its match conditions and validations.
#[derive(Debug, Default)]
struct Policy {
    name: String,
    resources: Vec<String>,
    match_conditions: Vec<String>,
    validations: Vec<String>,
}

/// A YAML double-quoted scalar (the file writes expressions that way, with
/// no escapes JSON would read differently).
fn scalar(text: &str) -> String {
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{text}: {e}"))
}

/// The policies of the committed file.
fn policies() -> Vec<Policy> {
    let text = std::fs::read_to_string(POLICY_FILE).expect("the policy file");
    let mut out = Vec::new();
    for doc in text.split("\n---\n") {
        if !doc.contains("\nkind: ValidatingAdmissionPolicy\n") {
            continue;
        }
        let mut p = Policy::default();
        let mut section = "";
        for line in doc.lines() {
            let t = line.trim();
            if p.name.is_empty()
                && let Some(n) = line.strip_prefix("  name: ")
            {
                p.name = n.trim().to_string();
            }
            match line {
                "  matchConditions:" => section = "match",
                "  validations:" => section = "validations",
                "  matchConstraints:" => section = "constraints",
                _ => {}
            }
            if section == "constraints"
                && let Some(list) = t.strip_prefix("resources: ")
            {
                let list: Vec<String> = serde_json::from_str(list).expect("resources list");
                p.resources.extend(list);
            }
            let expr = t
                .strip_prefix("- expression: ")
                .or_else(|| t.strip_prefix("expression: "));
            if let Some(expr) = expr {
                match section {
                    "match" => p.match_conditions.push(scalar(expr)),
                    "validations" => p.validations.push(scalar(expr)),
                    other => panic!("expression outside a section: {other}"),
                }
            }
        }
        out.push(p);
    }
    out
}

/// An admission request.
pub(super) struct Req {
    user: &'static str,
    operation: &'static str,
    resource: &'static str,
    namespace: Option<String>,
    object: Value,
    old_object: Value,
    namespace_object: Value,
}

pub(super) fn req(operation: &'static str, resource: &'static str, object: Value) -> Req {
    let namespace = object["metadata"]["namespace"].as_str().map(str::to_string);
    let (object, old_object) = if operation == "DELETE" {
        (Value::Null, object)
    } else {
        (object, Value::Null)
    };
    Req {
        user: VANTAGE,
        operation,
        resource,
        namespace,
        object,
        old_object,
        namespace_object: Value::Null,
    }
}

fn eval(expr: &str, r: &Req) -> bool {
    let program = cel_interpreter::Program::compile(expr)
        .unwrap_or_else(|e| panic!("does not compile: {expr}: {e:?}"));
    let mut ctx = cel_interpreter::Context::default();
    let request = json!({
        "operation": r.operation,
        "userInfo": {"username": r.user},
        "namespace": r.namespace.clone().unwrap_or_default(),
        "resource": {"resource": r.resource},
    });
    for (name, value) in [
        ("request", request),
        ("object", r.object.clone()),
        ("oldObject", r.old_object.clone()),
        ("namespaceObject", r.namespace_object.clone()),
    ] {
        ctx.add_variable(name, value).expect("variable");
    }
    match program.execute(&ctx) {
        Ok(cel_interpreter::Value::Bool(b)) => b,
        other => panic!("{expr} gave {other:?}"),
    }
}

/// Whether the API server admits `r` under the committed policies: every
/// policy matching the resource whose match conditions all hold must have
/// every validation hold.
fn admitted(r: &Req) -> Result<(), String> {
    for p in policies() {
        if !p.resources.iter().any(|x| x == r.resource) {
            continue;
        }
        if !p.match_conditions.iter().all(|c| eval(c, r)) {
            continue;
        }
        for v in &p.validations {
            if !eval(v, r) {
                return Err(format!("{}: {v}", p.name));
            }
        }
    }
    Ok(())
}

#[track_caller]
pub(super) fn allow(r: Req) {
    if let Err(e) = admitted(&r) {
        panic!("denied {} {}: {e}", r.operation, r.resource);
    }
}

#[track_caller]
pub(super) fn deny(r: Req) {
    assert!(
        admitted(&r).is_err(),
        "admitted {} {} {:#}",
        r.operation,
        r.resource,
        r.object
    );
}

pub(super) fn labels() -> BTreeMap<String, String> {
    namespace::run_labels("shop", "run-1")
}

fn built_restore(spec: &RestoreSpec) -> Value {
    let annotations = namespace::run_annotations(Utc::now());
    let targets = [mapping::NamespaceMapping::new("shop", NS)];
    let modifiers = restore_object::build_modifiers(spec, NS, &targets, &labels(), &annotations);
    serde_json::to_value(restore_object::build_restore(
        spec,
        NS,
        "shop-daily-1",
        &targets,
        modifiers.as_ref().and_then(|m| m.metadata.name.as_deref()),
        &labels(),
        &annotations,
    ))
    .unwrap()
}

#[test]
fn the_policy_file_has_the_four_policies_each_bound() {
    let names: Vec<String> = policies().into_iter().map(|p| p.name).collect();
    assert_eq!(
        names,
        [
            "vantage-restore-namespaces",
            "vantage-restore-namespaced-objects",
            "vantage-restore-restores",
            "vantage-restore-volumes"
        ]
    );
    let text = std::fs::read_to_string(POLICY_FILE).unwrap();
    for n in &names {
        assert!(
            text.contains(&format!("  policyName: {n}\n")),
            "{n} has no binding"
        );
    }
    assert_eq!(text.matches("validationActions: [Deny]").count(), 4);
}

#[test]
fn namespaces_only_vantage_ones() {
    let annotations = namespace::run_annotations(Utc::now());
    let ns = serde_json::to_value(namespace::build_namespace(NS, &labels(), &annotations)).unwrap();
    allow(req("CREATE", "namespaces", ns.clone()));
    let mut prod = ns.clone();
    prod["metadata"]["name"] = json!("shop");
    deny(req("CREATE", "namespaces", prod.clone()));
    let mut unlabelled = ns.clone();
    unlabelled["metadata"]["labels"] = json!({"team": "shop"});
    deny(req("CREATE", "namespaces", unlabelled.clone()));
    // Velero re-creates a restore target without Vantage's labels: the
    // janitor may delete it by its name.
    allow(req("DELETE", "namespaces", unlabelled));
    deny(req("DELETE", "namespaces", prod.clone()));
    deny(req(
        "DELETE",
        "namespaces",
        json!({"metadata": {"name": "kube-system"}}),
    ));
    // Someone else: not this policy's business.
    let mut admin = req("DELETE", "namespaces", prod);
    admin.user = "kubernetes-admin";
    allow(admin);
}

#[test]
fn network_policies_probe_pods_and_jobs_only_in_vantage_namespaces() {
    let annotations = namespace::run_annotations(Utc::now());
    let ns_object =
        serde_json::to_value(namespace::build_namespace(NS, &labels(), &annotations)).unwrap();
    let np = serde_json::to_value(namespace::build_network_policy(
        NS,
        &Isolation::default(),
        Some("vantage"),
        &labels(),
    ))
    .unwrap();
    let mut r = req("CREATE", "networkpolicies", np.clone());
    r.namespace_object = ns_object.clone();
    allow(r);
    // A run taken over puts its policy back (restore/adopt.rs).
    let mut r = req("UPDATE", "networkpolicies", np.clone());
    r.namespace_object = ns_object.clone();
    allow(r);
    let pod = serde_json::to_value(probe::build_probe_pod(
        NS,
        &["db.prod:5432".to_string()],
        "busybox:1.37",
        &labels(),
    ))
    .unwrap();
    let mut r = req("CREATE", "pods", pod.clone());
    r.namespace_object = ns_object.clone();
    allow(r);
    let mut r = req("DELETE", "pods", pod.clone());
    r.namespace_object = ns_object.clone();
    allow(r);
    // A data job ([[restore.job]]) in the volatile namespace.
    let job = json!({"metadata": {"name": "vantage-job-orders", "namespace": NS}});
    let mut r = req("CREATE", "jobs", job.clone());
    r.namespace_object = ns_object;
    allow(r);

    let prod_ns =
        json!({"metadata": {"name": "shop", "labels": {"kubernetes.io/metadata.name": "shop"}}});
    for (resource, object) in [("networkpolicies", np), ("pods", pod), ("jobs", job)] {
        let mut elsewhere = object.clone();
        elsewhere["metadata"]["namespace"] = json!("shop");
        let mut r = req("CREATE", resource, elsewhere);
        r.namespace_object = prod_ns.clone();
        deny(r);
    }
    // A prefixed namespace someone else made (no Vantage label).
    let mut r = req(
        "CREATE",
        "networkpolicies",
        json!({"metadata": {"name": "allow-all", "namespace": "vantage-restore-x"}}),
    );
    r.namespace_object = json!({"metadata": {"name": "vantage-restore-x"}});
    deny(r);
}

#[test]
fn restores_only_into_vantage_namespaces() {
    let mut rewrite = spec();
    rewrite.isolation.ingresses = IngressPolicy::RewriteHost {
        suffix: "restore.example.com".into(),
    };
    for spec in [spec(), rewrite] {
        allow(req("CREATE", "restores", built_restore(&spec)));
    }
    let good = built_restore(&spec());
    allow(req("DELETE", "restores", good.clone()));
    // Marked with its verdict (restore/adopt.rs): still the same Restore.
    let mut reported = good.clone();
    reported["metadata"]["annotations"]["vantage.dev/reported"] = json!("pass");
    allow(req("UPDATE", "restores", reported));

    let bad = |f: &dyn Fn(&mut Value)| {
        let mut r = good.clone();
        f(&mut r);
        r
    };
    // Restored in place, into production.
    deny(req(
        "CREATE",
        "restores",
        bad(&|r| r["spec"]["namespaceMapping"] = json!({"shop": "shop"})),
    ));
    deny(req(
        "CREATE",
        "restores",
        bad(&|r| {
            r["spec"]["includedNamespaces"] = json!(["shop", "billing"]);
        }),
    ));
    deny(req(
        "CREATE",
        "restores",
        bad(&|r| {
            r["spec"]
                .as_object_mut()
                .unwrap()
                .remove("namespaceMapping");
        }),
    ));
    deny(req(
        "CREATE",
        "restores",
        bad(&|r| r["spec"]["includedNamespaces"] = json!(["*"])),
    ));
    deny(req(
        "CREATE",
        "restores",
        bad(&|r| r["spec"]["includeClusterResources"] = json!(true)),
    ));
    deny(req(
        "CREATE",
        "restores",
        bad(&|r| r["spec"]["existingResourcePolicy"] = json!("update")),
    ));
    deny(req(
        "CREATE",
        "restores",
        bad(&|r| r["spec"]["resourceModifier"]["name"] = json!("someone-elses-modifiers")),
    ));
    deny(req(
        "CREATE",
        "restores",
        bad(&|r| r["metadata"]["labels"] = json!({})),
    ));
    deny(req(
        "DELETE",
        "restores",
        bad(&|r| {
            r["metadata"].as_object_mut().unwrap().remove("labels");
        }),
    ));
}

#[test]
fn modifier_configmaps_only_labelled_ones() {
    let annotations = namespace::run_annotations(Utc::now());
    let cm = serde_json::to_value(
        restore_object::build_modifiers(
            &spec(),
            NS,
            &[mapping::NamespaceMapping::new("shop", NS)],
            &labels(),
            &annotations,
        )
        .unwrap(),
    )
    .unwrap();
    allow(req("CREATE", "configmaps", cm.clone()));
    allow(req("DELETE", "configmaps", cm.clone()));
    let velero_own = json!({"metadata": {"name": "node-agent-config", "namespace": "velero"}});
    deny(req("CREATE", "configmaps", velero_own.clone()));
    deny(req("DELETE", "configmaps", velero_own));
}

#[test]
fn volumes_only_of_vantage_restores() {
    let pv = |labels: Value, claim_ns: Option<&str>| {
        let mut v = json!({"metadata": {"name": "pvc-1", "labels": labels}, "spec": {}});
        if let Some(ns) = claim_ns {
            v["spec"]["claimRef"] = json!({"namespace": ns, "name": "data-db-0"});
        }
        v
    };
    allow(req(
        "DELETE",
        "persistentvolumes",
        pv(json!({"velero.io/restore-name": NS}), None),
    ));
    // Provisioned for a restored claim: no Velero label, bound in our namespace.
    allow(req("DELETE", "persistentvolumes", pv(json!({}), Some(NS))));
    deny(req(
        "DELETE",
        "persistentvolumes",
        pv(
            json!({"velero.io/restore-name": "prod-migration"}),
            Some("shop"),
        ),
    ));
    deny(req("DELETE", "persistentvolumes", pv(json!({}), None)));
    // Cleanup's switch of the reclaim policy (restore/volumes.rs) before the
    // delete: allowed for a volume bound in our namespace, which stays there.
    let update = |old: Value, new: Value| Req {
        old_object: old,
        ..req("UPDATE", "persistentvolumes", new)
    };
    let mut switched = pv(json!({}), Some(NS));
    switched["spec"]["persistentVolumeReclaimPolicy"] = json!("Delete");
    allow(update(pv(json!({}), Some(NS)), switched.clone()));
    // Not a production volume, not one labelled by one of our Restores only,
    // and never by moving its claim.
    let mut prod = pv(json!({}), Some("shop"));
    prod["spec"]["persistentVolumeReclaimPolicy"] = json!("Delete");
    deny(update(pv(json!({}), Some("shop")), prod));
    deny(update(
        pv(json!({"velero.io/restore-name": NS}), None),
        pv(json!({"velero.io/restore-name": NS}), None),
    ));
    deny(update(pv(json!({}), Some(NS)), pv(json!({}), Some("shop"))));
    deny(req(
        "CREATE",
        "persistentvolumes",
        pv(json!({"velero.io/restore-name": NS}), Some(NS)),
    ));
}

#[test]
fn role_bindings_only_of_the_secret_reader_to_vantage_in_its_namespaces() {
    let annotations = namespace::run_annotations(Utc::now());
    let ns_object =
        serde_json::to_value(namespace::build_namespace(NS, &labels(), &annotations)).unwrap();
    let binding =
        serde_json::to_value(job::secrets::build_binding(NS, VANTAGE, &labels())).unwrap();
    let with = |operation: &'static str, object: Value, ns: &Value| {
        let mut r = req(operation, "rolebindings", object);
        r.namespace_object = ns.clone();
        r
    };
    allow(with("CREATE", binding.clone(), &ns_object));

    // Another role, a wider role, another subject, a second subject, an
    // update or a delete: refused.
    let mut other_role = binding.clone();
    other_role["roleRef"]["name"] = json!("cluster-admin");
    let mut a_role = binding.clone();
    a_role["roleRef"]["kind"] = json!("Role");
    let mut other_user = binding.clone();
    other_user["subjects"][0]["name"] = json!("system:serviceaccount:shop:default");
    let mut service_account = binding.clone();
    service_account["subjects"] =
        json!([{"kind": "ServiceAccount", "name": "default", "namespace": NS}]);
    let mut two = binding.clone();
    two["subjects"] = json!([binding["subjects"][0], {"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "system:authenticated"}]);
    let mut none = binding.clone();
    none.as_object_mut().unwrap().remove("subjects");
    for object in [other_role, a_role, other_user, service_account, two, none] {
        deny(with("CREATE", object, &ns_object));
    }
    deny(with("UPDATE", binding.clone(), &ns_object));
    deny(with("DELETE", binding.clone(), &ns_object));

    // The same binding in a production namespace (it would read its Secrets).
    let mut elsewhere = binding.clone();
    elsewhere["metadata"]["namespace"] = json!("shop");
    deny(with(
        "CREATE",
        elsewhere,
        &json!({"metadata": {"name": "shop", "labels": {"kubernetes.io/metadata.name": "shop"}}}),
    ));
}
