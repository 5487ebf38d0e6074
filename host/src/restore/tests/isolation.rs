//! Isolation that holds (issue 13): what is not restored, what Velero's
//! resource modifiers neutralise (applied here as Velero applies them), the
//! NetworkPolicy's DNS and metadata rules, the isolation probe, and cleanup
//! that never deletes a namespace Velero is still restoring into.

use super::*;
use crate::config::{DnsPeer, DnsRule, EgressRule};
use crate::restore::restore_object::{
    DEFAULT_EXCLUDED, EXTERNAL_DNS, INGRESSES, excluded_resources, modifier_rules,
};

// ------------------------------------------- Velero's modifiers, as Velero

/// A modifier's `value` as Velero turns it into JSON (`addQuotes`,
/// internal/resourcemodifiers/json_patch.go): quoted → string; `null`,
/// booleans, numbers, objects and arrays → themselves; else a string.
fn velero_value(v: &Value) -> Value {
    let Some(s) = v.as_str() else {
        return Value::String(String::new());
    };
    if s.is_empty() {
        return json!("");
    }
    if let Some(inner) = s.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        return json!(inner);
    }
    if s == "null" {
        return Value::Null;
    }
    if s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false") {
        return json!(s.eq_ignore_ascii_case("true"));
    }
    if s.starts_with('{') || s.starts_with('[') {
        return serde_json::from_str(s).expect("JSON value");
    }
    if let Ok(n) = s.parse::<f64>() {
        return json!(n);
    }
    json!(s)
}

/// A Velero `JSONPatch` as an RFC 6902 operation.
fn rfc6902(op: &Value) -> Value {
    let mut out = json!({"op": op["operation"], "path": op["path"]});
    match op["operation"].as_str().unwrap_or("") {
        "copy" | "move" => out["from"] = op["from"].clone(),
        "remove" => {}
        _ => out["value"] = velero_value(&op["value"]),
    }
    out
}

fn is_test_failure(e: &json_patch::PatchError) -> bool {
    matches!(e.kind, json_patch::PatchErrorKind::TestFailed)
}

/// Velero's `ApplyResourceModifierRules` (internal/resourcemodifiers/
/// resource_modifiers.go) on `obj` of `group_resource`: conditions matched
/// on the original object (`matches` are `test` operations; one that fails
/// or misses means no match), each rule applied in turn, a failing rule
/// skipped with its error collected while the object keeps the other
/// rules' changes (and is then created: `restoreContext.restoreItem`).
fn velero_apply(modifiers: &Value, group_resource: &str, obj: &mut Value) -> Vec<String> {
    let origin = obj.clone();
    let mut errors = Vec::new();
    for rule in modifiers["resourceModifierRules"]
        .as_array()
        .expect("rules")
    {
        let c = &rule["conditions"];
        if c["groupResource"].as_str() != Some(group_resource) {
            continue;
        }
        if let (Some(nss), Some(ns)) = (
            c["namespaces"].as_array(),
            origin["metadata"]["namespace"].as_str(),
        ) && !nss.is_empty()
            && !nss.iter().any(|n| n == ns)
        {
            continue;
        }
        let matched = c["matches"].as_array().is_none_or(|ms| {
            ms.iter().all(|m| {
                let test: json_patch::Patch = serde_json::from_value(json!([
                    {"op": "test", "path": m["path"], "value": velero_value(&m["value"])}
                ]))
                .expect("test op");
                json_patch::patch(&mut origin.clone(), &test).is_ok()
            })
        });
        if !matched {
            continue;
        }
        let mut candidate = obj.clone();
        if let Some(ops) = rule["patches"].as_array() {
            let patch: json_patch::Patch =
                serde_json::from_value(Value::Array(ops.iter().map(rfc6902).collect()))
                    .expect("a valid JSON patch");
            match json_patch::patch(&mut candidate, &patch) {
                Ok(()) => *obj = candidate,
                Err(e) if is_test_failure(&e) => {}
                Err(e) => errors.push(format!("error in applying JSON Patch {e}")),
            }
        } else if let Some(merges) = rule["mergePatches"].as_array() {
            for m in merges {
                // patchData is YAML; ours is JSON, which is YAML.
                let data: Value = serde_json::from_str(m["patchData"].as_str().expect("patchData"))
                    .expect("patchData is JSON");
                json_patch::merge(&mut candidate, &data);
            }
            *obj = candidate;
        } else {
            errors.push("no patch data found".into());
        }
    }
    errors
}

fn rules_of(spec: &RestoreSpec) -> Value {
    modifier_rules(
        spec,
        &[mapping::NamespaceMapping::new(
            "shop",
            "vantage-restore-shop-1a2b3c",
        )],
    )
    .expect("modifiers")
}

fn service(name: &str, spec: Value, annotations: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": name, "namespace": "shop", "annotations": annotations},
           "spec": spec})
}

// ------------------------------------------------------------ exclusions

#[tokio::test]
async fn network_policies_and_routing_kinds_are_not_restored_and_the_report_names_them() {
    let fake = Fake::new(healthy_world());
    let report = fake.run(&spec(), "run-excluded").await;
    assert_eq!(report.verdict, Verdict::Pass, "{}", report.reason);
    let posted = fake.posted("/restores");
    assert_valid("restores", &posted[0]);
    let excluded: Vec<String> =
        serde_json::from_value(posted[0]["spec"]["excludedResources"].clone()).unwrap();
    for kind in [
        "networkpolicies.networking.k8s.io",
        "ciliumnetworkpolicies.cilium.io",
        "ciliumclusterwidenetworkpolicies.cilium.io",
        "networkpolicies.crd.projectcalico.org",
        "globalnetworkpolicies.crd.projectcalico.org",
        "networkpolicies.projectcalico.org",
        "globalnetworkpolicies.projectcalico.org",
        "httproutes.gateway.networking.k8s.io",
        "grpcroutes.gateway.networking.k8s.io",
        "tlsroutes.gateway.networking.k8s.io",
        "tcproutes.gateway.networking.k8s.io",
        "udproutes.gateway.networking.k8s.io",
        "gateways.gateway.networking.k8s.io",
        "virtualservices.networking.istio.io",
        "gateways.networking.istio.io",
        "serviceentries.networking.istio.io",
        "ingressroutes.traefik.io",
        "httpproxies.projectcontour.io",
        "targetgroupbindings.elbv2.k8s.aws",
        INGRESSES,
    ] {
        assert!(excluded.iter().any(|e| e == kind), "{kind} restored");
    }
    let info = report.restore.as_ref().unwrap();
    assert_eq!(info.excluded_resources, excluded, "the report names them");
    let shown = serde_json::to_value(&report).unwrap();
    assert!(
        shown["restore"]["excluded_resources"]
            .as_array()
            .unwrap()
            .contains(&json!("networkpolicies.networking.k8s.io"))
    );
}

#[test]
fn keep_kinds_and_exclude_kinds_adjust_the_defaults() {
    let mut spec = spec();
    spec.isolation.keep_kinds = vec!["httpproxies.projectcontour.io".into()];
    spec.isolation.exclude_kinds =
        vec!["secrets".into(), "networkpolicies.networking.k8s.io".into()];
    spec.isolation.ingresses = IngressPolicy::RewriteHost {
        suffix: "restore.example.com".into(),
    };
    let excluded = excluded_resources(&spec);
    assert!(!excluded.contains(&"httpproxies.projectcontour.io".to_string()));
    assert!(!excluded.contains(&INGRESSES.to_string()), "rewritten");
    assert!(excluded.contains(&"secrets".to_string()));
    assert_eq!(
        excluded
            .iter()
            .filter(|e| *e == "networkpolicies.networking.k8s.io")
            .count(),
        1,
        "no duplicates"
    );
    // One default kept, one kind added (`secrets`), the duplicate once.
    assert_eq!(excluded.len(), DEFAULT_EXCLUDED.len());
}

// ------------------------------------------------------------- services

#[test]
fn load_balancer_and_node_port_services_become_cluster_ip_without_external_dns() {
    let rules = rules_of(&spec());
    let dns = json!({"external-dns.alpha.kubernetes.io/hostname": "shop.example.com",
                     "external-dns.alpha.kubernetes.io/ttl": "60",
                     "prometheus.io/scrape": "true"});

    let mut lb = service(
        "web",
        json!({"type": "LoadBalancer", "externalTrafficPolicy": "Local",
               "loadBalancerSourceRanges": ["203.0.113.0/24"], "loadBalancerClass": "service.k8s.aws/nlb",
               "allocateLoadBalancerNodePorts": true, "loadBalancerIP": "198.51.100.7",
               "selector": {"app": "web"}, "ports": [{"port": 443, "targetPort": 8443}]}),
        dns.clone(),
    );
    assert_eq!(
        velero_apply(&rules, "services", &mut lb),
        Vec::<String>::new()
    );
    assert_eq!(lb["spec"]["type"], "ClusterIP");
    for gone in [
        "externalTrafficPolicy",
        "loadBalancerSourceRanges",
        "loadBalancerClass",
        "allocateLoadBalancerNodePorts",
        "loadBalancerIP",
    ] {
        assert!(lb["spec"].get(gone).is_none(), "{gone} kept: {lb:#}");
    }
    assert_eq!(lb["spec"]["ports"][0]["port"], 443, "ports kept");
    assert_eq!(
        lb["metadata"]["annotations"],
        json!({"prometheus.io/scrape": "true"}),
        "external-dns annotations removed, others kept"
    );

    let mut np = service(
        "admin",
        json!({"type": "NodePort", "externalTrafficPolicy": "Cluster",
               "ports": [{"port": 80}]}),
        json!({}),
    );
    assert!(velero_apply(&rules, "services", &mut np).is_empty());
    assert_eq!(np["spec"]["type"], "ClusterIP");
    assert!(np["spec"].get("externalTrafficPolicy").is_none());

    // ExternalName and ClusterIP Services keep their type; no rule fails.
    let mut ext = service(
        "db",
        json!({"type": "ExternalName", "externalName": "db.internal"}),
        dns.clone(),
    );
    assert!(velero_apply(&rules, "services", &mut ext).is_empty());
    assert_eq!(ext["spec"]["type"], "ExternalName");
    let mut cip = service("api", json!({"ports": [{"port": 8080}]}), json!(null));
    assert!(velero_apply(&rules, "services", &mut cip).is_empty());
    assert!(cip["spec"].get("type").is_none());

    // Services of other namespaces are not touched.
    let mut other = lb.clone();
    other["metadata"]["namespace"] = json!("billing");
    other["spec"]["type"] = json!("LoadBalancer");
    velero_apply(&rules, "services", &mut other);
    assert_eq!(other["spec"]["type"], "LoadBalancer");

    // Opt out.
    let mut keep = spec();
    keep.isolation.neutralize_services = false;
    let mut lb2 = service("web", json!({"type": "LoadBalancer"}), dns);
    velero_apply(&rules_of(&keep), "services", &mut lb2);
    assert_eq!(lb2["spec"]["type"], "LoadBalancer");
    assert!(EXTERNAL_DNS.contains(&"external-dns.alpha.kubernetes.io/hostname"));
}

// -------------------------------------------------------------- ingresses

fn rewrite_spec() -> RestoreSpec {
    let mut spec = spec();
    spec.isolation.ingresses = IngressPolicy::RewriteHost {
        suffix: "restore.example.com".into(),
    };
    spec
}

fn ingress(spec: Value) -> Value {
    json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
           "metadata": {"name": "shop", "namespace": "shop",
                        "annotations": {"external-dns.alpha.kubernetes.io/hostname": "shop.example.com",
                                        "nginx.ingress.kubernetes.io/ssl-redirect": "true"}},
           "spec": spec})
}

fn backend(service: &str) -> Value {
    json!({"service": {"name": service, "port": {"number": 80}}})
}

/// Every host name the Ingress routes or terminates TLS for; `*` for a
/// rule without host or a default backend (both catch every host).
fn hosts(ing: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for rule in ing["spec"]["rules"].as_array().into_iter().flatten() {
        out.push(rule["host"].as_str().unwrap_or("*").to_string());
    }
    for tls in ing["spec"]["tls"].as_array().into_iter().flatten() {
        for h in tls["hosts"].as_array().into_iter().flatten() {
            out.push(h.as_str().unwrap_or("").to_string());
        }
    }
    if ing["spec"].get("defaultBackend").is_some() {
        out.push("*".into());
    }
    out
}

/// The API server's rule for Ingresses: rules or a default backend.
fn api_server_accepts(ing: &Value) -> bool {
    ing["spec"]["rules"]
        .as_array()
        .is_some_and(|r| !r.is_empty())
        || ing["spec"].get("defaultBackend").is_some()
}

#[test]
fn rewrite_leaves_no_production_host_whatever_the_ingress_shape() {
    let rules = rules_of(&rewrite_spec());
    let rewritten = "vantage-restore-shop-1a2b3c.restore.example.com";
    let http = |svc: &str| json!({"paths": [{"path": "/", "pathType": "Prefix", "backend": backend(svc)}]});

    // Several hosts, TLS for them, and a default backend.
    let mut multi = ingress(json!({
        "ingressClassName": "nginx",
        "rules": [{"host": "shop.example.com", "http": http("web")},
                  {"host": "api.example.com", "http": http("api")},
                  {"host": "*.shop.example.com", "http": http("web")}],
        "tls": [{"hosts": ["shop.example.com", "api.example.com"], "secretName": "shop-tls"}],
        "defaultBackend": backend("web"),
    }));
    assert_eq!(
        velero_apply(&rules, INGRESSES, &mut multi),
        Vec::<String>::new()
    );
    assert_eq!(hosts(&multi), [rewritten]);
    assert_eq!(
        multi["spec"]["rules"][0]["http"],
        http("web"),
        "the first rule's paths kept"
    );
    assert_eq!(multi["spec"]["ingressClassName"], "nginx");
    assert!(multi["spec"].get("vantageRule").is_none());
    assert_eq!(
        multi["metadata"]["annotations"],
        json!({"nginx.ingress.kubernetes.io/ssl-redirect": "true"})
    );
    assert!(api_server_accepts(&multi));

    // A rule without host (matches every host) gets one.
    let mut hostless = ingress(json!({"rules": [{"http": http("web")}]}));
    assert!(velero_apply(&rules, INGRESSES, &mut hostless).is_empty());
    assert_eq!(hosts(&hostless), [rewritten]);

    // Only a default backend: the rewrite cannot cover it. Velero records
    // the error (the restore ends PartiallyFailed) and creates what the
    // other rules made of it, which the API server refuses: nothing
    // catching production traffic is created.
    let mut default_only = ingress(json!({"defaultBackend": backend("web"),
        "tls": [{"hosts": ["shop.example.com"], "secretName": "shop-tls"}]}));
    let errors = velero_apply(&rules, INGRESSES, &mut default_only);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(hosts(&default_only).is_empty(), "{default_only:#}");
    assert!(!api_server_accepts(&default_only));
}

#[test]
fn modifiers_validate_as_velero_requires() {
    // Velero's `ResourceModifierRule.Validate`: one kind of patch per rule,
    // known operations, non-empty paths; version v1; one data key.
    let rules = rules_of(&rewrite_spec());
    assert_eq!(rules["version"], "v1");
    for rule in rules["resourceModifierRules"].as_array().unwrap() {
        let kinds = ["patches", "mergePatches", "strategicPatches"]
            .iter()
            .filter(|k| rule.get(**k).is_some())
            .count();
        assert_eq!(kinds, 1, "{rule:#}");
        assert!(
            rule["conditions"]["groupResource"]
                .as_str()
                .is_some_and(|g| !g.is_empty())
        );
        for op in rule["patches"].as_array().into_iter().flatten() {
            assert!(
                ["add", "remove", "replace", "test", "move", "copy"]
                    .contains(&op["operation"].as_str().unwrap())
            );
            assert!(!op["path"].as_str().unwrap().is_empty());
        }
    }
    let cm = restore_object::build_modifiers(
        &rewrite_spec(),
        "r",
        &[mapping::NamespaceMapping::new(
            "shop",
            "vantage-restore-shop-1a2b3c",
        )],
        &BTreeMap::new(),
        &BTreeMap::new(),
    )
    .unwrap();
    assert_eq!(cm.data.unwrap().len(), 1);
}

// ------------------------------------------------------ the NetworkPolicy

#[test]
fn dns_egress_is_configurable() {
    let isolation = Isolation {
        dns: vec![
            DnsRule {
                peer: DnsPeer::Pods {
                    namespace: "openshift-dns".into(),
                    labels: vec![(
                        "dns.operator.openshift.io/daemonset-dns".into(),
                        "default".into(),
                    )],
                },
                port: 5353,
            },
            DnsRule {
                peer: DnsPeer::Cidr("169.254.20.10/32".into()),
                port: 53,
            },
        ],
        ..Isolation::default()
    };
    let np = namespace::build_network_policy("ns1", &isolation, None, &BTreeMap::new());
    let v = serde_json::to_value(&np).unwrap();
    let egress = v["spec"]["egress"].as_array().unwrap();
    assert_eq!(egress.len(), 3, "{egress:#?}");
    assert_eq!(
        egress[1]["to"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
        "openshift-dns"
    );
    assert_eq!(
        egress[1]["to"][0]["podSelector"]["matchLabels"]["dns.operator.openshift.io/daemonset-dns"],
        "default"
    );
    assert_eq!(
        egress[1]["ports"],
        json!([{"port": 5353, "protocol": "UDP"}, {"port": 5353, "protocol": "TCP"}])
    );
    assert_eq!(egress[2]["to"][0]["ipBlock"]["cidr"], "169.254.20.10/32");
    assert!(
        !serde_json::to_string(&v).unwrap().contains("kube-dns"),
        "the default is replaced"
    );
}

#[test]
fn egress_blocks_never_include_the_metadata_address() {
    let rule = |cidr: &str| EgressRule {
        cidr: cidr.into(),
        ports: Vec::new(),
    };
    let isolation = Isolation {
        egress: vec![
            rule("0.0.0.0/0"),
            rule("169.254.0.0/16"),
            rule("::/0"),
            rule("10.20.0.0/16"),
            rule("fd00:ec2::/64"),
        ],
        ..Isolation::default()
    };
    let np = namespace::build_network_policy("ns1", &isolation, None, &BTreeMap::new());
    let v = serde_json::to_value(&np).unwrap();
    let egress = &v["spec"]["egress"];
    let block = |i: usize| egress[i]["to"][0]["ipBlock"].clone();
    assert_eq!(
        block(2),
        json!({"cidr": "0.0.0.0/0", "except": ["169.254.169.254/32"]})
    );
    assert_eq!(
        block(3),
        json!({"cidr": "169.254.0.0/16", "except": ["169.254.169.254/32"]})
    );
    assert_eq!(
        block(4),
        json!({"cidr": "::/0", "except": ["fd00:ec2::254/128"]})
    );
    assert_eq!(block(5), json!({"cidr": "10.20.0.0/16"}));
    assert_eq!(
        block(6),
        json!({"cidr": "fd00:ec2::/64", "except": ["fd00:ec2::254/128"]})
    );
}

// ------------------------------------------------------------------ probe

/// Answers the probe pod's API: created, then read back finished with
/// `exit` and `message`; deleted.
fn probe_api(world: &mut World, exit: i32, message: &'static str) -> Arc<Mutex<Vec<Value>>> {
    let created = Arc::new(Mutex::new(Vec::new()));
    let seen = created.clone();
    world.extra = Some(Box::new(move |r: &Recorded| {
        let parts = r.parts();
        match (r.method.as_str(), parts.as_slice()) {
            ("POST", ["api", "v1", "namespaces", _, "pods"]) => {
                let pod = r.body.clone().unwrap_or_default();
                seen.lock().unwrap().push(pod.clone());
                Some((201, pod))
            }
            ("GET", ["api", "v1", "namespaces", _, "pods", probe::PROBE_POD]) => {
                let mut pod = seen.lock().unwrap().first().cloned()?;
                pod["status"] = probe_terminated(exit, message);
                Some((200, pod))
            }
            ("DELETE", ["api", "v1", "namespaces", _, "pods", probe::PROBE_POD]) => {
                Some((200, status(200, "", "")))
            }
            _ => None,
        }
    }));
    created
}

fn probe_spec() -> RestoreSpec {
    let mut spec = spec();
    spec.isolation.isolation_probe = vec![
        "postgres.shop-prod.svc.cluster.local:5432".into(),
        "10.20.0.5:6379".into(),
    ];
    spec
}

#[tokio::test]
async fn a_probe_that_reaches_production_makes_the_verdict_error() {
    let mut world = healthy_world();
    let created = probe_api(
        &mut world,
        1,
        "reached: postgres.shop-prod.svc.cluster.local:5432\n",
    );
    let fake = Fake::new(world);
    let runner = ScriptedRunner::default();
    let report = run(
        &fake.client,
        &probe_spec(),
        &options("run-probe-open"),
        &runner,
    )
    .await;
    assert_eq!(report.verdict, Verdict::Error, "{}", report.reason);
    assert!(
        report.reason.contains("CNI does not enforce NetworkPolicy")
            && report
                .reason
                .contains("postgres.shop-prod.svc.cluster.local:5432"),
        "{}",
        report.reason
    );
    let probe = report.isolation_probe.as_ref().unwrap();
    assert!(!probe.isolated);
    assert_eq!(probe.reached, ["postgres.shop-prod.svc.cluster.local:5432"]);
    assert!(runner.seen.lock().unwrap().is_empty(), "no check ran");
    assert_full_cleanup(&fake, &report);

    // The pod: in the volatile namespace, endpoints as arguments, no token,
    // unprivileged.
    let pod = created.lock().unwrap()[0].clone();
    let ns = report.namespace.clone().unwrap();
    assert_eq!(pod["metadata"]["namespace"], ns.as_str());
    assert_eq!(
        pod["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "vantage"
    );
    assert_eq!(pod["spec"]["automountServiceAccountToken"], false);
    assert_eq!(pod["spec"]["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["spec"]["restartPolicy"], "Never");
    assert_eq!(
        pod["spec"]["containers"][0]["args"],
        json!([
            "probe",
            "postgres.shop-prod.svc.cluster.local",
            "5432",
            "10.20.0.5",
            "6379"
        ])
    );
    let script = pod["spec"]["containers"][0]["command"][2].as_str().unwrap();
    assert!(
        !script.contains("postgres"),
        "endpoints are never in the script"
    );
}

#[tokio::test]
async fn a_refused_probe_passes_and_is_reported() {
    let mut world = healthy_world();
    probe_api(&mut world, 0, "refused\n");
    let fake = Fake::new(world);
    let report = fake.run(&probe_spec(), "run-probe-closed").await;
    assert_eq!(report.verdict, Verdict::Pass, "{}", report.reason);
    let probe = report.isolation_probe.as_ref().unwrap();
    assert!(probe.isolated && probe.reached.is_empty() && probe.error.is_none());
    assert!(
        fake.calls()
            .iter()
            .any(|c| c.starts_with("DELETE") && c.ends_with(probe::PROBE_POD)),
        "the probe pod is deleted"
    );
}

#[tokio::test]
async fn a_probe_that_cannot_run_is_an_error_not_a_pass() {
    let mut world = healthy_world();
    probe_api(&mut world, 2, "no nc in the probe image\n");
    let fake = Fake::new(world);
    let report = fake.run(&probe_spec(), "run-probe-broken").await;
    assert_eq!(report.verdict, Verdict::Error, "{}", report.reason);
    assert!(
        report.reason.contains("isolation unproven") && report.reason.contains("no nc"),
        "{}",
        report.reason
    );
}

// ------------------------------------------- cleanup never races Velero

#[tokio::test]
async fn a_restore_timeout_leaves_the_namespace_until_velero_is_done() {
    let mut world = healthy_world();
    world.restore_statuses = vec![json!({"phase": "InProgress",
        "progress": {"itemsRestored": 3, "totalItems": 57}})];
    // A labelled Restore someone else wrote, mapping into a production
    // namespace: the janitor must never delete that namespace.
    let mut hostile = restore_object::build_restore(
        &spec(),
        "evil",
        "shop-daily-older",
        &[mapping::NamespaceMapping::new("shop", "shop")],
        None,
        &namespace::run_labels("shop", "evil-run"),
        &namespace::run_annotations(Utc::now() - hours(1)),
    );
    hostile.status = Some(velero::RestoreStatus {
        phase: Some("Completed".into()),
        ..Default::default()
    });
    world.restores = vec![serde_json::to_value(&hostile).unwrap()];
    world.namespaces = vec![json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "shop", "labels": {"team": "shop"}}})];
    let fake = Fake::new(world);
    let mut spec = spec();
    spec.restore_timeout = Duration::from_millis(60);
    let report = fake.run(&spec, "run-race").await;
    assert_eq!(report.verdict, Verdict::Fail);
    let ns = report.namespace.clone().unwrap();
    let c = &report.cleanup;
    assert!(!c.namespace_deleted && !c.restore_deleted, "{c:?}");
    assert!(c.configmap_deleted, "{c:?}");
    assert_eq!(c.left_to_janitor.len(), 2, "{c:?}");
    assert!(
        c.left_to_janitor[1].starts_with(&format!("namespace/{ns}: Velero may still be restoring"))
    );
    assert!(
        !fake
            .calls()
            .contains(&format!("DELETE /api/v1/namespaces/{ns}")),
        "the namespace must not be deleted while Velero restores into it"
    );

    // Velero is still at it when the namespace expires: the janitor waits.
    let later = Utc::now() + hours(7);
    let set_phase = |phase: &str| {
        let mut world = fake.world.lock().unwrap();
        for r in world.restores.iter_mut().filter(|r| name_of(r) == ns) {
            r["status"] = json!({"phase": phase});
        }
    };
    set_phase("InProgress");
    let swept = sweep(&fake.client, "velero", later).await;
    assert!(swept.namespaces_deleted.is_empty(), "{swept:?}");
    assert!(swept.restores_deleted.contains(&"evil".to_string()));
    assert_eq!(
        swept.waiting,
        [
            format!("namespace/{ns}: restore {ns} is InProgress"),
            format!("restore/{ns}: phase InProgress")
        ]
    );

    // Velero finishes; meanwhile the namespace was deleted and Velero
    // re-created it from the source namespace, without Vantage's labels.
    set_phase("PartiallyFailed");
    {
        let mut world = fake.world.lock().unwrap();
        world.namespaces.retain(|n| name_of(n) != ns);
        world
            .namespaces
            .push(json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": ns, "labels": {"team": "shop"}}}));
    }
    let swept = sweep(&fake.client, "velero", later).await;
    assert_eq!(swept.errors, Vec::<String>::new());
    assert_eq!(swept.namespaces_deleted, std::slice::from_ref(&ns));
    assert_eq!(swept.restores_deleted, std::slice::from_ref(&ns));
    assert!(swept.waiting.is_empty());
    let world = fake.world.lock().unwrap();
    let left: Vec<&str> = world.namespaces.iter().map(name_of).collect();
    assert_eq!(left, ["shop"], "production stays");
    assert!(world.restores.is_empty());
}

#[tokio::test]
async fn the_janitor_deletes_an_unstarted_restore_before_its_namespace() {
    let mut world = World::default();
    let name = "vantage-restore-shop-0a0a0a";
    let restore = restore_object::build_restore(
        &spec(),
        name,
        "shop-daily-older",
        &[mapping::NamespaceMapping::new("shop", name)],
        None,
        &namespace::run_labels("shop", "r"),
        &namespace::run_annotations(Utc::now() - hours(1)),
    );
    world.restores = vec![serde_json::to_value(&restore).unwrap()];
    world.namespaces = vec![json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": name}})];
    let fake = Fake::new(world);
    let swept = sweep(&fake.client, "velero", Utc::now()).await;
    assert_eq!(swept.errors, Vec::<String>::new());
    assert_eq!(swept.restores_deleted, [name]);
    assert_eq!(swept.namespaces_deleted, [name]);
    let deletes: Vec<String> = fake
        .calls()
        .into_iter()
        .filter(|c| c.starts_with("DELETE"))
        .collect();
    assert_eq!(
        deletes,
        [
            format!("DELETE {V}/restores/{name}"),
            format!("DELETE /api/v1/namespaces/{name}")
        ]
    );
}
