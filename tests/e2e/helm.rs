//! The Helm chart `deploy/helm/vantage`: rendered in every mode and with its
//! toggles by Helm itself (PyPI `helm-python-sdk`, Helm v4 as a library, no
//! helm binary), each manifest validated strictly against Kubernetes 1.33's
//! schemas (PyPI `kubernetes-validate`; ServiceMonitor and PrometheusRule
//! against schemas written from the prometheus-operator CRDs), `helm lint
//! --strict` clean, and the semantics asserted here: which RBAC each mode
//! gets, replicas, the daemon's flags, the security context, the mounts.
//! The Python side is `tests/helm/chart.py`; `scripts/test-all.sh` installs
//! its packages.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::support::repo;

const KUBE_VERSION: &str = "1.33.0";

fn chart_dir() -> PathBuf {
    repo().join("deploy/helm/vantage")
}

/// Run tests/helm/chart.py on `cases` (`[{name, release, namespace, values}]`)
/// and parse `yaml_files`; its JSON answer.
fn driver(cases: Value, yaml_files: &[PathBuf]) -> Value {
    let request = json!({
        "chart": chart_dir(),
        "kube_version": KUBE_VERSION,
        "cases": cases,
        "yaml_files": yaml_files,
    });
    let mut child = Command::new("python3")
        .arg(repo().join("tests/helm/chart.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running python3 (needed for the Helm chart test)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(request.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code() != Some(3),
        "{stderr}\n(missing Python packages: run `bash scripts/test-all.sh`, which installs \
         helm-python-sdk and kubernetes-validate)"
    );
    assert!(out.status.success(), "tests/helm/chart.py failed: {stderr}");
    serde_json::from_slice(&out.stdout).expect("chart.py's JSON answer")
}

/// One rendered release.
struct Rendered {
    name: String,
    objects: Vec<Value>,
    notes: String,
}

/// Render each `(case name, values)` as release `vantage` in namespace
/// `monitoring`, and assert it renders, every manifest validates strictly
/// and `helm lint --strict` has nothing to say.
fn render_all(cases: &[(&str, Value)]) -> Vec<Rendered> {
    render_all_as("vantage", "monitoring", cases)
}

fn render_all_as(release: &str, namespace: &str, cases: &[(&str, Value)]) -> Vec<Rendered> {
    let request: Vec<Value> = cases
        .iter()
        .map(|(name, values)| {
            json!({"name": name, "release": release, "namespace": namespace, "values": values})
        })
        .collect();
    let answer = driver(Value::Array(request), &[]);
    answer["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|case| {
            let name = case["name"].as_str().unwrap().to_string();
            assert!(
                case["error"].is_null(),
                "{name}: refused: {}",
                case["error"]
            );
            let objects = case["objects"].as_array().unwrap().clone();
            assert!(!objects.is_empty(), "{name}: nothing rendered");
            assert_eq!(
                case["invalid"].as_array().unwrap().len(),
                0,
                "{name}: manifests that do not validate: {:#}",
                case["invalid"]
            );
            assert_eq!(
                case["validated"].as_array().unwrap().len(),
                objects.len(),
                "{name}: not every manifest was validated: {:#}",
                case["validated"]
            );
            let lint = &case["lint"];
            assert_eq!(lint["total_charts_linted"], 1, "{name}: {lint}");
            assert!(
                lint["messages"].as_array().unwrap().is_empty()
                    && lint["errors"].as_array().unwrap().is_empty(),
                "{name}: helm lint --strict: {lint:#}"
            );
            Rendered {
                name,
                objects,
                notes: case["notes"].as_str().unwrap_or_default().to_string(),
            }
        })
        .collect()
}

fn render(values: Value) -> Rendered {
    render_all(&[("case", values)]).pop().unwrap()
}

/// The schema's (or a template's) refusal of `values`.
fn refused(values: Value) -> String {
    let answer = driver(
        json!([{"name": "refused", "release": "vantage", "namespace": "monitoring", "values": values}]),
        &[],
    );
    let error = &answer["cases"][0]["error"];
    assert!(!error.is_null(), "accepted: {values}");
    error.as_str().unwrap().to_string()
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

/// A grant: (Role or ClusterRole, its namespace, API group, resource, verbs).
type Grant = (String, String, String, String, Vec<String>);

impl Rendered {
    fn of_kind(&self, kind: &str) -> Vec<&Value> {
        self.objects.iter().filter(|o| o["kind"] == kind).collect()
    }

    fn get(&self, kind: &str, name: &str) -> &Value {
        self.objects
            .iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("{}: no {kind}/{name}", self.name))
    }

    fn has(&self, kind: &str) -> bool {
        !self.of_kind(kind).is_empty()
    }

    fn names(&self, kind: &str) -> BTreeSet<String> {
        self.of_kind(kind)
            .iter()
            .map(|o| {
                let ns = o["metadata"]["namespace"].as_str();
                let name = o["metadata"]["name"].as_str().unwrap();
                ns.map_or(name.to_string(), |ns| format!("{ns}/{name}"))
            })
            .collect()
    }

    fn workload(&self) -> &Value {
        let w: Vec<&Value> = self
            .objects
            .iter()
            .filter(|o| o["kind"] == "Deployment" || o["kind"] == "StatefulSet")
            .collect();
        assert_eq!(w.len(), 1, "{}: one workload", self.name);
        w[0]
    }

    fn pod(&self) -> &Value {
        &self.workload()["spec"]["template"]["spec"]
    }

    fn container(&self) -> &Value {
        let c = self.pod()["containers"].as_array().unwrap();
        assert_eq!(c.len(), 1);
        &c[0]
    }

    fn args(&self) -> Vec<String> {
        strs(&self.container()["args"])
    }

    /// The value after `flag` in the daemon's arguments.
    fn flag(&self, flag: &str) -> Option<String> {
        let args = self.args();
        args.iter()
            .position(|a| a == flag)
            .map(|i| args.get(i + 1).cloned().unwrap_or_default())
    }

    fn env(&self, name: &str) -> Option<&Value> {
        self.container()["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
    }

    fn mount(&self, name: &str) -> Option<&Value> {
        self.container()["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == name)
    }

    fn volume(&self, name: &str) -> Option<&Value> {
        self.pod()["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == name)
    }

    fn grants(&self) -> Vec<Grant> {
        let mut out = Vec::new();
        for role in self
            .objects
            .iter()
            .filter(|o| o["kind"] == "Role" || o["kind"] == "ClusterRole")
        {
            for rule in role["rules"].as_array().unwrap() {
                for group in strs(&rule["apiGroups"]) {
                    for resource in strs(&rule["resources"]) {
                        out.push((
                            role["kind"].as_str().unwrap().to_string(),
                            role["metadata"]["namespace"]
                                .as_str()
                                .unwrap_or_default()
                                .to_string(),
                            group.clone(),
                            resource,
                            strs(&rule["verbs"]),
                        ));
                    }
                }
            }
        }
        out
    }

    fn grants_on(&self, resource: &str) -> Vec<Grant> {
        self.grants()
            .into_iter()
            .filter(|g| g.3 == resource)
            .collect()
    }

    /// Every binding's subjects are this release's ServiceAccount.
    fn assert_bindings_name_the_service_account(&self, namespace: &str) {
        for b in self
            .objects
            .iter()
            .filter(|o| o["kind"] == "RoleBinding" || o["kind"] == "ClusterRoleBinding")
        {
            assert_eq!(
                b["subjects"],
                json!([{"kind": "ServiceAccount", "name": "vantage", "namespace": namespace}]),
                "{}: {b}",
                self.name
            );
            // The bound role is one this release makes.
            let role_kind = b["roleRef"]["kind"].as_str().unwrap();
            let role = b["roleRef"]["name"].as_str().unwrap();
            assert!(
                self.objects.iter().any(|o| o["kind"] == role_kind
                    && o["metadata"]["name"] == role
                    && o["metadata"]["namespace"] == b["metadata"]["namespace"]),
                "{}: {b} binds a role the chart does not make",
                self.name
            );
        }
    }
}

const RBAC_KINDS: [&str; 4] = ["Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"];

/// The fields every mode shares: image, the daemon's base flags, the
/// restricted security context, the config directory, emptyDirs, probes,
/// the downward API, the Service.
fn assert_common(r: &Rendered) {
    let c = r.container();
    assert_eq!(c["image"], "vantage:0.1.0", "{}", r.name);
    assert_eq!(
        c["command"],
        json!(["/usr/local/bin/vantage"]),
        "{}",
        r.name
    );
    let args = r.args();
    assert_eq!(
        args[..7],
        [
            "daemon",
            "--config",
            "/etc/vantage/vantage.toml",
            "--listen",
            "0.0.0.0:9470",
            "--data-dir",
            "/var/lib/vantage"
        ],
        "{}",
        r.name
    );
    let sc = &c["securityContext"];
    assert_eq!(sc["runAsNonRoot"], true, "{}", r.name);
    assert_eq!(sc["readOnlyRootFilesystem"], true, "{}", r.name);
    assert_eq!(sc["allowPrivilegeEscalation"], false, "{}", r.name);
    assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]), "{}", r.name);
    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault", "{}", r.name);
    let psc = &r.pod()["securityContext"];
    assert_eq!(psc["runAsNonRoot"], true);
    assert_eq!(psc["runAsUser"], 65532);
    assert_eq!(psc["seccompProfile"]["type"], "RuntimeDefault");
    for (volume, path) in [("data", "/var/lib/vantage"), ("tmp", "/tmp")] {
        assert!(
            r.volume(volume).unwrap()["emptyDir"].is_object(),
            "{}: {volume}",
            r.name
        );
        assert_eq!(r.mount(volume).unwrap()["mountPath"], path);
    }
    assert_eq!(
        r.env("POD_NAME").unwrap()["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.name"
    );
    assert_eq!(
        r.env("POD_NAMESPACE").unwrap()["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.namespace"
    );
    for (probe, path) in [("livenessProbe", "/livez"), ("readinessProbe", "/healthz")] {
        assert_eq!(c[probe]["httpGet"]["path"], path, "{}", r.name);
        assert_eq!(c[probe]["httpGet"]["port"], "http", "{}", r.name);
    }
    assert_eq!(c["ports"][0]["containerPort"], 9470);
    let svc = r.get("Service", "vantage");
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], "http");
    assert_eq!(
        svc["spec"]["selector"],
        r.workload()["spec"]["selector"]["matchLabels"]
    );
    // Every mount of the pod, not only the config: none uses subPath, so
    // ConfigMap and Secret updates reach the running pod.
    for m in c["volumeMounts"].as_array().unwrap() {
        assert!(m.get("subPath").is_none(), "{}: {m}", r.name);
    }
}

#[test]
fn helm_edge_mode_is_a_deployment_with_no_kubernetes_rights_unless_it_watches() {
    let rs = render_all(&[
        ("edge", json!({})),
        ("edge-watch", json!({"kubernetes": {"watch": true}})),
        (
            "edge-namespaces",
            json!({"kubernetes": {"watch": true, "namespaces": ["team-a", "team-b"]}}),
        ),
        (
            "edge-selector",
            json!({"kubernetes": {"watch": true, "namespaceSelector": "vantage.dev/watch=true"}}),
        ),
    ]);
    for r in &rs {
        assert_common(r);
        assert_eq!(r.workload()["kind"], "Deployment", "{}", r.name);
        assert_eq!(r.workload()["spec"]["replicas"], 1, "{}", r.name);
        assert!(r.grants_on("leases").is_empty(), "{}: lease rights", r.name);
        for flag in ["--membership", "--leader-elect", "--shard-group"] {
            assert!(!r.args().iter().any(|a| a == flag), "{}: {flag}", r.name);
        }
        assert!(r.env("VANTAGE_SHARD").is_none());
        assert!(!r.has("ValidatingAdmissionPolicy"));
        r.assert_bindings_name_the_service_account("monitoring");
    }
    let [edge, watch, namespaces, selector] = &rs[..] else {
        unreachable!()
    };

    // No API access at all: no RBAC, no token.
    for kind in RBAC_KINDS {
        assert!(!edge.has(kind), "edge has a {kind}");
    }
    assert_eq!(edge.pod()["automountServiceAccountToken"], false);
    assert!(!edge.args().iter().any(|a| a.starts_with("--kubernetes")));
    assert_eq!(edge.flag("--log-format").as_deref(), Some("json"));
    // The configuration: the ConfigMap's directory at /etc/vantage.
    let config = edge.mount("config").unwrap();
    assert_eq!(config["mountPath"], "/etc/vantage");
    assert_eq!(config["readOnly"], true);
    assert_eq!(
        edge.volume("config").unwrap()["configMap"]["name"],
        "vantage-config"
    );
    assert!(
        edge.get("ConfigMap", "vantage-config")["data"]["vantage.toml"]
            .as_str()
            .unwrap()
            .contains("[global]")
    );
    assert!(edge.get("PodDisruptionBudget", "vantage")["spec"]["maxUnavailable"] == 1);
    assert!(edge.notes.contains("mode edge"), "{}", edge.notes);

    // Watching its own namespace: a Role there, for exactly the resources
    // the daemon reads and the status it patches; nothing cluster-wide.
    assert_eq!(watch.pod()["automountServiceAccountToken"], true);
    assert!(watch.args().contains(&"--kubernetes".to_string()));
    assert!(watch.flag("--kubernetes-namespace").is_none());
    assert!(!watch.has("ClusterRole") && !watch.has("ClusterRoleBinding"));
    assert_eq!(
        watch.names("Role"),
        BTreeSet::from(["monitoring/vantage-kubernetes".to_string()])
    );
    let resources: BTreeSet<(String, String)> =
        watch.grants().into_iter().map(|g| (g.2, g.3)).collect();
    let expected: BTreeSet<(String, String)> = [
        ("vantage.dev", "checks"),
        ("vantage.dev", "restoretests"),
        ("vantage.dev", "checks/status"),
        ("vantage.dev", "restoretests/status"),
        ("", "secrets"),
        ("", "configmaps"),
    ]
    .iter()
    .map(|(g, r)| (g.to_string(), r.to_string()))
    .collect();
    assert_eq!(resources, expected);
    for g in watch.grants_on("checks") {
        assert_eq!(g.4, ["get", "list", "watch"]);
    }
    for g in watch.grants_on("checks/status") {
        assert_eq!(g.4, ["get", "patch"]);
    }
    // Secrets and ConfigMaps are read by name, never listed.
    for g in watch.grants_on("secrets") {
        assert_eq!(g.4, ["get"]);
    }
    assert!(watch.grants_on("namespaces").is_empty());

    // Named namespaces: a Role and RoleBinding in each, the flag lists them.
    assert_eq!(
        namespaces.flag("--kubernetes-namespace").as_deref(),
        Some("team-a,team-b")
    );
    assert_eq!(
        namespaces.names("Role"),
        BTreeSet::from([
            "team-a/vantage-kubernetes".to_string(),
            "team-b/vantage-kubernetes".to_string()
        ])
    );
    assert_eq!(namespaces.names("RoleBinding"), namespaces.names("Role"));
    assert!(!namespaces.has("ClusterRole"));

    // A namespace selector: cluster-wide list/watch of namespaces and checks.
    assert_eq!(
        selector.flag("--kubernetes-namespace-selector").as_deref(),
        Some("vantage.dev/watch=true")
    );
    assert!(!selector.has("Role"));
    let ns = selector.grants_on("namespaces");
    assert_eq!(ns.len(), 1);
    assert_eq!(ns[0].0, "ClusterRole");
    assert!(ns[0].4.contains(&"list".to_string()) && ns[0].4.contains(&"watch".to_string()));
    assert!(
        selector
            .grants_on("checks")
            .iter()
            .all(|g| g.0 == "ClusterRole")
    );
}

#[test]
fn helm_sharded_mode_has_lease_rights_but_no_namespace_or_restore_rights() {
    let rs = render_all(&[
        ("sharded", json!({"mode": "sharded"})),
        (
            "sharded-5",
            json!({"mode": "sharded", "replicas": 5, "leases": {"group": "eu", "duration": "20s"},
                   "kubernetes": {"watch": true}}),
        ),
        (
            "sharded-static",
            json!({"mode": "sharded", "replicas": 4, "sharding": {"strategy": "static"}}),
        ),
    ]);
    for r in &rs {
        assert_common(r);
        assert!(r.grants_on("namespaces").is_empty(), "{}", r.name);
        assert!(
            !r.has("ClusterRole") && !r.has("ClusterRoleBinding"),
            "{}",
            r.name
        );
        assert!(!r.has("ValidatingAdmissionPolicy"), "{}", r.name);
        assert!(!r.args().contains(&"--leader-elect".to_string()));
        for g in r.grants() {
            assert!(
                g.2 == "coordination.k8s.io"
                    || g.2 == "vantage.dev"
                    || g.3 == "secrets"
                    || g.3 == "configmaps",
                "{}: unexpected right {g:?}",
                r.name
            );
        }
        r.assert_bindings_name_the_service_account("monitoring");
    }
    let [sharded, five, static_] = &rs[..] else {
        unreachable!()
    };

    assert_eq!(sharded.workload()["kind"], "Deployment");
    assert_eq!(sharded.workload()["spec"]["replicas"], 3);
    assert_eq!(sharded.flag("--membership").as_deref(), Some("leases"));
    assert_eq!(sharded.flag("--shard-group").as_deref(), Some("vantage"));
    assert_eq!(sharded.flag("--lease-duration").as_deref(), Some("15s"));
    assert!(!sharded.args().contains(&"--kubernetes".to_string()));
    assert_eq!(sharded.pod()["automountServiceAccountToken"], true);
    // Lease rights, in the release's namespace only, and nothing else.
    let leases = sharded.grants();
    assert_eq!(leases.len(), 1, "{leases:?}");
    let (kind, ns, group, resource, verbs) = &leases[0];
    assert_eq!(
        (
            kind.as_str(),
            ns.as_str(),
            group.as_str(),
            resource.as_str()
        ),
        ("Role", "monitoring", "coordination.k8s.io", "leases")
    );
    assert_eq!(
        verbs,
        &[
            "get", "list", "watch", "create", "update", "patch", "delete"
        ]
    );
    assert!(
        sharded.notes.contains("shard group vantage"),
        "{}",
        sharded.notes
    );

    assert_eq!(five.workload()["spec"]["replicas"], 5);
    assert_eq!(five.flag("--shard-group").as_deref(), Some("eu"));
    assert_eq!(five.flag("--lease-duration").as_deref(), Some("20s"));
    assert!(five.args().contains(&"--kubernetes".to_string()));
    assert_eq!(five.grants_on("leases").len(), 1);
    assert!(!five.grants_on("checks").is_empty());

    // Static shards: a StatefulSet whose pod name's ordinal is the shard; no
    // Leases, so no Lease rights and no API access at all.
    let sts = static_.workload();
    assert_eq!(sts["kind"], "StatefulSet");
    assert_eq!(sts["spec"]["replicas"], 4);
    assert_eq!(sts["spec"]["serviceName"], "vantage");
    assert_eq!(
        static_.env("VANTAGE_SHARD").unwrap()["value"],
        "$(POD_NAME)/4"
    );
    // $(POD_NAME) expands only if POD_NAME is defined before it.
    let env: Vec<String> = static_.container()["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect();
    assert!(
        env.iter().position(|e| e == "POD_NAME") < env.iter().position(|e| e == "VANTAGE_SHARD")
    );
    assert!(static_.flag("--membership").is_none());
    for kind in RBAC_KINDS {
        assert!(!static_.has(kind), "static shards have a {kind}");
    }
    assert_eq!(static_.pod()["automountServiceAccountToken"], false);
}

#[test]
fn helm_restore_mode_has_the_leader_lease_the_restore_rbac_and_admission_policies() {
    let rs = render_all(&[
        ("restore", json!({"mode": "restore"})),
        (
            "restore-standby",
            json!({"mode": "restore", "replicas": 2, "restore": {"veleroNamespace": "backup",
                   "namespacePrefix": "vr-", "admissionPolicy": {"enabled": false}}}),
        ),
    ]);
    for r in &rs {
        assert_common(r);
        assert!(r.args().contains(&"--leader-elect".to_string()));
        assert!(r.flag("--membership").is_none());
        assert_eq!(r.flag("--shard-group").as_deref(), Some("vantage"));
        assert_eq!(r.grants_on("leases").len(), 1);
        assert_eq!(r.pod()["automountServiceAccountToken"], true);
        r.assert_bindings_name_the_service_account("monitoring");
        for role in [
            "vantage-restore",
            "vantage-restore-data",
            "vantage-job-secrets",
        ] {
            r.get("ClusterRole", role);
        }
        // vantage-job-secrets is bound per run by the daemon, never here.
        for b in r.of_kind("ClusterRoleBinding") {
            assert_ne!(b["roleRef"]["name"], "vantage-job-secrets");
        }
    }
    let [restore, standby] = &rs[..] else {
        unreachable!()
    };
    assert_eq!(restore.workload()["spec"]["replicas"], 1);
    assert_eq!(
        restore.names("Role"),
        BTreeSet::from([
            "monitoring/vantage-leases".to_string(),
            "velero/vantage-restore".to_string(),
            "velero/vantage-restore-evidence".to_string()
        ])
    );
    // The admission policies and their bindings, for this ServiceAccount.
    let policies = restore.names("ValidatingAdmissionPolicy");
    assert_eq!(policies.len(), 4, "{policies:?}");
    assert_eq!(restore.names("ValidatingAdmissionPolicyBinding"), policies);
    for p in restore.of_kind("ValidatingAdmissionPolicy") {
        assert_eq!(
            p["spec"]["matchConditions"][0]["expression"],
            "request.userInfo.username == 'system:serviceaccount:monitoring:vantage'"
        );
    }
    assert!(
        restore.notes.contains("vantage-restore-leader"),
        "{}",
        restore.notes
    );

    assert_eq!(standby.workload()["spec"]["replicas"], 2);
    assert_eq!(
        standby.names("Role"),
        BTreeSet::from([
            "monitoring/vantage-leases".to_string(),
            "backup/vantage-restore".to_string(),
            "backup/vantage-restore-evidence".to_string()
        ])
    );
    assert!(!standby.has("ValidatingAdmissionPolicy"));
    assert!(!standby.has("ValidatingAdmissionPolicyBinding"));
    assert!(standby.notes.contains("admission policies OFF"));

    // The prefix reaches the policies' expressions.
    let prefixed = render(json!({"mode": "restore", "restore": {"namespacePrefix": "vr-"}}));
    let text = serde_json::to_string(&prefixed.of_kind("ValidatingAdmissionPolicy")).unwrap();
    assert!(text.contains("startsWith('vr-')") && !text.contains("vantage-restore-'"));
}

/// Released as `vantage` in namespace `vantage`, the restore RBAC and the
/// admission policies are those of deploy/rbac.yaml and
/// deploy/admission-policy.yaml (labels aside), so the chart and the plain
/// manifests cannot drift apart.
#[test]
fn helm_restore_rbac_and_policies_are_those_of_the_deploy_manifests() {
    let deploy = |f: &str| repo().join("deploy").join(f);
    let answer = driver(
        json!([{"name": "restore", "release": "vantage", "namespace": "vantage",
                "values": {"mode": "restore"}}]),
        &[deploy("rbac.yaml"), deploy("admission-policy.yaml")],
    );
    let files = &answer["yaml_files"];
    let strip = |o: &Value| {
        let mut o = o.clone();
        let m = o["metadata"].as_object_mut().unwrap();
        m.remove("labels");
        o.as_object_mut().unwrap().remove("__template");
        o
    };
    let key = |o: &Value| {
        format!(
            "{} {} {}",
            o["kind"].as_str().unwrap(),
            o["metadata"]["namespace"].as_str().unwrap_or_default(),
            o["metadata"]["name"].as_str().unwrap()
        )
    };
    let rendered: Vec<Value> = answer["cases"][0]["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| {
            let t = o["__template"].as_str().unwrap();
            t.ends_with("rbac-restore.yaml") || t.ends_with("admission-policy.yaml")
        })
        .map(strip)
        .collect();
    let mut expected: Vec<Value> = Vec::new();
    for f in ["rbac.yaml", "admission-policy.yaml"] {
        for o in files[deploy(f).to_str().unwrap()].as_array().unwrap() {
            if o["kind"] == "ServiceAccount" {
                // The chart's own ServiceAccount (serviceaccount.yaml).
                continue;
            }
            expected.push(strip(o));
        }
    }
    let mut rendered: Vec<(String, Value)> = rendered.iter().map(|o| (key(o), o.clone())).collect();
    let mut expected: Vec<(String, Value)> = expected.iter().map(|o| (key(o), o.clone())).collect();
    rendered.sort_by(|a, b| a.0.cmp(&b.0));
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        rendered.iter().map(|o| &o.0).collect::<Vec<_>>(),
        expected.iter().map(|o| &o.0).collect::<Vec<_>>()
    );
    for ((k, r), (_, e)) in rendered.iter().zip(&expected) {
        assert_eq!(r, e, "{k} differs from deploy/");
    }
}

#[test]
fn helm_config_secrets_and_registry_credentials_are_mounted_where_the_daemon_reads_them() {
    let rs = render_all(&[
        (
            "created",
            json!({
                "location": "fra1",
                "logLevel": "info",
                "config": {"vantageToml": "[global]\nlocation = \"fra1\"\n", "checksumAnnotation": true},
                "registryCredentials": {"dockerConfigJson": {"auths": {"registry.example.com": {"auth": "dTpw"}}}},
                "secrets": {
                    "env": [{"name": "API_TOKEN", "secretName": "api", "key": "token"}],
                    "files": [{"name": "tls", "secretName": "client-tls",
                               "items": [{"key": "tls.key", "path": "key.pem"}]}],
                },
            }),
        ),
        (
            "existing",
            json!({"config": {"existingConfigMap": "my-config"},
                   "registryCredentials": {"existingSecret": "pull-secret"}}),
        ),
        (
            "resources-only",
            json!({"config": {"create": false}, "kubernetes": {"watch": true}}),
        ),
    ]);
    let [created, existing, resources_only] = &rs[..] else {
        unreachable!()
    };

    // A dockerconfigjson Secret, mounted as <dir>/config.json, DOCKER_CONFIG=<dir>.
    let secret = created.get("Secret", "vantage-registry");
    assert_eq!(secret["type"], "kubernetes.io/dockerconfigjson");
    assert!(secret["data"][".dockerconfigjson"].is_string());
    let dir = created.env("DOCKER_CONFIG").unwrap()["value"]
        .as_str()
        .unwrap();
    assert_eq!(dir, "/etc/vantage-registry");
    assert_eq!(
        created.mount("registry-credentials").unwrap()["mountPath"],
        dir
    );
    assert_eq!(
        created.volume("registry-credentials").unwrap()["secret"],
        json!({"secretName": "vantage-registry",
               "items": [{"key": ".dockerconfigjson", "path": "config.json"}]})
    );
    // Secrets for env: and file: sources.
    assert_eq!(
        created.env("API_TOKEN").unwrap()["valueFrom"]["secretKeyRef"],
        json!({"name": "api", "key": "token"})
    );
    assert_eq!(
        created.mount("secret-tls").unwrap()["mountPath"],
        "/etc/vantage/secrets/tls"
    );
    assert_eq!(
        created.volume("secret-tls").unwrap()["secret"]["secretName"],
        "client-tls"
    );
    assert_eq!(created.env("VANTAGE_LOCATION").unwrap()["value"], "fra1");
    assert_eq!(created.env("RUST_LOG").unwrap()["value"], "info");
    // The checksum annotation rolls the pods when asked to.
    let annotations = &created.workload()["spec"]["template"]["metadata"]["annotations"];
    assert_eq!(
        annotations["checksum/config"].as_str().unwrap().len(),
        64,
        "{annotations}"
    );
    assert_eq!(
        created.get("ConfigMap", "vantage-config")["data"]["vantage.toml"],
        "[global]\nlocation = \"fra1\"\n"
    );

    // Existing ConfigMap and Secret: named, not created.
    assert!(!existing.has("ConfigMap") && !existing.has("Secret"));
    assert_eq!(
        existing.volume("config").unwrap()["configMap"]["name"],
        "my-config"
    );
    assert_eq!(
        existing.volume("registry-credentials").unwrap()["secret"]["secretName"],
        "pull-secret"
    );
    assert!(existing.env("DOCKER_CONFIG").is_some());
    assert!(
        existing.workload()["spec"]["template"]["metadata"]
            .get("annotations")
            .is_none()
    );
    // Defaults: no registry credentials, no checksum annotation.
    let plain = render(json!({}));
    assert!(plain.env("DOCKER_CONFIG").is_none() && plain.volume("registry-credentials").is_none());
    assert!(
        plain.workload()["spec"]["template"]["metadata"]
            .get("annotations")
            .is_none()
    );

    // Check resources only: no configuration file mounted (a missing file
    // means no file checks with --kubernetes).
    assert!(!resources_only.has("ConfigMap"));
    assert!(resources_only.mount("config").is_none());
    assert!(resources_only.args().contains(&"--kubernetes".to_string()));
    // Without --kubernetes there must be a configuration.
    let err = refused(json!({"config": {"create": false}}));
    assert!(err.contains("no configuration"), "{err}");
}

#[test]
fn helm_monitoring_toggles_and_disruption_budget() {
    let rules_src = repo().join("examples/prometheus/vantage-rules.yml");
    let answer = driver(json!([]), std::slice::from_ref(&rules_src));
    // Validation and lint of the same cases.
    let rs = render_all(&[
        ("off", json!({"podDisruptionBudget": {"enabled": false}})),
        (
            "on",
            json!({"mode": "sharded",
                   "serviceMonitor": {"enabled": true, "interval": "15s", "labels": {"release": "prom"}},
                   "prometheusRule": {"enabled": true, "labels": {"release": "prom"}},
                   "podDisruptionBudget": {"minAvailable": 2}}),
        ),
    ]);
    let [off, on] = &rs[..] else { unreachable!() };
    assert!(!off.has("ServiceMonitor") && !off.has("PrometheusRule"));
    assert!(!off.has("PodDisruptionBudget"));

    let sm = on.get("ServiceMonitor", "vantage");
    assert_eq!(sm["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(sm["metadata"]["labels"]["release"], "prom");
    let svc = on.get("Service", "vantage");
    assert_eq!(
        sm["spec"]["selector"]["matchLabels"],
        on.workload()["spec"]["selector"]["matchLabels"]
    );
    for (k, v) in sm["spec"]["selector"]["matchLabels"].as_object().unwrap() {
        assert_eq!(&svc["metadata"]["labels"][k], v);
    }
    assert_eq!(
        sm["spec"]["endpoints"],
        json!([{"port": "http", "path": "/metrics", "interval": "15s"}])
    );
    // job="vantage", as VantageDaemonDown's up{job="vantage"} expects.
    let job_label = sm["spec"]["jobLabel"].as_str().unwrap();
    assert_eq!(svc["metadata"]["labels"][job_label], "vantage");

    let pdb = on.get("PodDisruptionBudget", "vantage");
    assert_eq!(pdb["spec"]["minAvailable"], 2);
    assert!(pdb["spec"].get("maxUnavailable").is_none());

    // The PrometheusRule holds examples/prometheus/vantage-rules.yml's groups,
    // their {{ $labels }} templates untouched.
    let rule = on.get("PrometheusRule", "vantage");
    assert_eq!(rule["metadata"]["labels"]["release"], "prom");
    let expected = &answer["yaml_files"][rules_src.to_str().unwrap()][0]["groups"];
    assert_eq!(&rule["spec"]["groups"], expected);
    assert!(
        serde_json::to_string(&rule)
            .unwrap()
            .contains("{{ $labels.check }}")
    );
    assert_eq!(on.of_kind("PrometheusRule").len(), 1);
    // The chart's copy is the example byte for byte.
    assert_eq!(
        std::fs::read(chart_dir().join("files/vantage-rules.yml")).unwrap(),
        std::fs::read(&rules_src).unwrap(),
        "deploy/helm/vantage/files/vantage-rules.yml differs from \
         examples/prometheus/vantage-rules.yml: copy it over"
    );
}

#[test]
fn helm_values_schema_rejects_a_bad_mode_and_unknown_keys() {
    for (values, needle) in [
        (json!({"mode": "cluster"}), "/mode"),
        (json!({"replicaCount": 2}), "replicaCount"),
        (
            json!({"kubernetes": {"watch": true, "namespace": "x"}}),
            "namespace",
        ),
        (
            json!({"image": {"repository": "vantage", "tags": "1"}}),
            "tags",
        ),
        (
            json!({"sharding": {"strategy": "random"}}),
            "/sharding/strategy",
        ),
        (
            json!({"restore": {"admissionPolicy": {"enabled": "yes"}}}),
            "/restore/admissionPolicy/enabled",
        ),
        (
            json!({"leases": {"duration": "15 seconds"}}),
            "/leases/duration",
        ),
        (
            json!({"kubernetes": {"namespaceSelector": "not a selector"}}),
            "/kubernetes/namespaceSelector",
        ),
    ] {
        let err = refused(values.clone());
        assert!(
            err.contains("schema") && err.contains(needle),
            "{values}: {err}"
        );
    }
    let err = refused(json!({"kubernetes": {"watch": true, "namespaces": ["a"],
                                            "namespaceSelector": "k=v"}}));
    assert!(err.contains("exclude each other"), "{err}");
    // And the schema itself is strict at the top level.
    let schema: Value =
        serde_json::from_slice(&std::fs::read(chart_dir().join("values.schema.json")).unwrap())
            .unwrap();
    assert_eq!(schema["additionalProperties"], false);
    assert_eq!(
        schema["properties"]["mode"]["enum"],
        json!(["edge", "sharded", "restore"])
    );
}

#[test]
fn helm_chart_metadata_follows_the_workspace() {
    let answer = driver(json!([]), &[chart_dir().join("Chart.yaml")]);
    let chart = &answer["yaml_files"][chart_dir().join("Chart.yaml").to_str().unwrap()][0];
    let cargo: toml::Table =
        toml::from_str(&std::fs::read_to_string(repo().join("Cargo.toml")).unwrap()).unwrap();
    let version = cargo["workspace"]["package"]["version"].as_str().unwrap();
    assert_eq!(chart["apiVersion"], "v2");
    assert_eq!(chart["name"], "vantage");
    assert_eq!(
        chart["appVersion"], version,
        "appVersion is the workspace version"
    );
    assert_eq!(chart["kubeVersion"], ">=1.30.0-0");
    assert!(chart_dir().join("templates/NOTES.txt").is_file());
}

/// The chart's crds/ are copies of the CRDs the daemon generates into
/// deploy/crds/ (`vantage crds`), byte for byte, and validate as
/// CustomResourceDefinitions.
#[test]
fn helm_chart_crds_are_the_generated_ones() {
    let names = ["checks.vantage.dev.yaml", "restoretests.vantage.dev.yaml"];
    for name in names {
        let generated = repo().join("deploy/crds").join(name);
        let copy = chart_dir().join("crds").join(name);
        let generated = std::fs::read(&generated).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (the CRDs are generated there)",
                generated.display()
            )
        });
        let copy = std::fs::read(&copy).unwrap_or_else(|e| {
            panic!(
                "{}: {e}: cp deploy/crds/{name} deploy/helm/vantage/crds/",
                copy.display()
            )
        });
        assert!(
            generated == copy,
            "deploy/helm/vantage/crds/{name} differs from deploy/crds/{name}: copy it over"
        );
    }
    let files: BTreeSet<String> = std::fs::read_dir(chart_dir().join("crds"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files, names.iter().map(|n| n.to_string()).collect());
    let crds = &driver(json!([]), &[])["crds"];
    assert_eq!(crds["invalid"], json!([]), "{crds:#}");
    assert_eq!(crds["validated"].as_array().unwrap().len(), 2, "{crds:#}");
    for v in crds["validated"].as_array().unwrap() {
        assert!(
            v.as_str().unwrap().starts_with("CustomResourceDefinition/"),
            "{v}"
        );
    }
}
