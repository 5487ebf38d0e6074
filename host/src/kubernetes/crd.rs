//! The custom resources: `Check` and `RestoreTest` (`vantage.dev/v1alpha1`,
//! namespaced), with a status subresource the daemon writes.
//!
//! A resource's spec holds the keys of a `[[check]]` or `[[restore]]` table
//! of `vantage.toml`, camelCased, and nothing else; the daemon turns it into
//! that table and validates it with the configuration's own validator
//! ([`super::render`]), so a resource and a file entry cannot mean different
//! things. What differs is what only a cluster has: the name is
//! `metadata.name`, secrets are `secretKeyRef`s and a component may come
//! from a ConfigMap. The test `spec_keys_are_the_file_keys` compares the
//! field lists of both, so a key added to one and not the other fails.
//!
//! `vantage crds` prints [`crds_yaml`]; `deploy/crds/` holds the same text,
//! checked by a test.

use std::collections::BTreeMap;

use kube::CustomResource;
use kube::core::CustomResourceExt;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The API group of Vantage's resources.
pub const GROUP: &str = "vantage.dev";
/// Their version.
pub const VERSION: &str = "v1alpha1";

/// A check run on a schedule by the daemons that watch its namespace: the
/// keys of a `[[check]]` in `vantage.toml`, camelCased (see the README's
/// configuration reference); the check's name is the resource's name.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema, Default)]
#[kube(
    group = "vantage.dev",
    version = "v1alpha1",
    kind = "Check",
    namespaced,
    status = "CheckStatus",
    shortname = "vcheck",
    category = "vantage",
    doc = "A Vantage check: a WebAssembly component run on a schedule, from the outside, by the Vantage daemons watching this namespace.",
    printcolumn = r#"{"name": "State", "type": "string", "jsonPath": ".status.state"}"#,
    printcolumn = r#"{"name": "Last run", "type": "date", "jsonPath": ".status.lastRun"}"#,
    printcolumn = r#"{"name": "Location", "type": "string", "jsonPath": ".status.location"}"#,
    printcolumn = r#"{"name": "Result", "type": "string", "jsonPath": ".status.lastResult", "priority": 1}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct CheckSpec {
    /// The component: `oci://registry/repo:tag` or `oci://…@sha256:…` (the
    /// daemon's registry pinning and signature policy apply), or a path on
    /// the daemon's file system. Exactly one of `component` and
    /// `componentFrom`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    /// The component's bytes from a ConfigMap's `binaryData` key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component_from: Option<ComponentFrom>,
    /// Run at this interval, e.g. `1m`. Exactly one of `every` and `cron`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<String>,
    /// Run when this cron expression matches, e.g. `*/5 * * * *`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    /// Time zone of `cron` (IANA name); default UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// Random delay of up to this much before each run, e.g. `5s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter: Option<String>,
    /// What to probe, usually URLs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<String>,
    /// Outbound allow patterns; `{target}` stands for each target's
    /// `scheme://host:port`. Empty: no outbound access.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<String>,
    /// Wall-clock budget of a run, e.g. `10s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// Memory cap, e.g. `64MiB`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    /// Instruction budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel: Option<u64>,
    /// CPU time per run, e.g. `2s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    /// Secrets the check may read, by the name it asks for.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, SecretRef>,
    /// Free-form settings passed to the check (flattened to dotted keys).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form")]
    pub config: Option<serde_json::Map<String, serde_json::Value>>,
    /// Consecutive bad runs before the state turns down (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_threshold: Option<u64>,
    /// Consecutive good runs before it turns up again (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_threshold: Option<u64>,
    /// Retry a bad run this many times before it counts (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u64>,
    /// Wait this long before a retry, e.g. `2s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_delay: Option<String>,
    /// Alert severity label (default `critical`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    /// Let the check make `insecure` TLS requests (no certificate checks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_insecure: Option<bool>,
}

/// Where a component's bytes come from, besides `component`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ComponentFrom {
    /// A key of a ConfigMap in the resource's namespace (its `binaryData`).
    pub config_map_key_ref: KeyRef,
}

/// A secret the check may read.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretRef {
    /// A key of a Secret in the resource's namespace.
    pub secret_key_ref: KeyRef,
}

/// A key of a ConfigMap or Secret in the resource's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct KeyRef {
    /// The object's name.
    pub name: String,
    /// The key.
    pub key: String,
}

/// What the daemon that runs a check reports about it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct CheckStatus {
    /// `up`, `down` or `unknown` (after the thresholds), or `invalid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// When the last run ended (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run: Option<String>,
    /// The last run in one line: its status, duration and first failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_result: Option<String>,
    /// When the next run is due (RFC 3339), as planned after the last one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_run: Option<String>,
    /// The location label of the daemon that ran it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// The replica that runs it (its pod name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner: Option<String>,
    /// The sha256 of the component that ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component_digest: Option<String>,
    /// The `metadata.generation` the daemon last accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Accepted` (the spec is valid: `True`, or `False` with the error).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// A condition, shaped as Kubernetes' `metav1.Condition`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// E.g. `Accepted`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// One CamelCase word, e.g. `Invalid`.
    pub reason: String,
    /// What is wrong, for people.
    pub message: String,
    /// When `status` last changed (RFC 3339).
    pub last_transition_time: String,
    /// The generation the condition was set for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// A restore test: the keys of a `[[restore]]` in `vantage.toml`,
/// camelCased, run by the daemon holding the restore leader Lease; the
/// test's name is the resource's name. Velero and the volatile namespaces
/// are in the daemon's own cluster.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema, Default)]
#[kube(
    group = "vantage.dev",
    version = "v1alpha1",
    kind = "RestoreTest",
    namespaced,
    status = "CheckStatus",
    shortname = "vrestore",
    category = "vantage",
    doc = "A Vantage restore test: a Velero backup restored into a volatile, isolated namespace, checked, recorded and deleted, on a schedule.",
    printcolumn = r#"{"name": "State", "type": "string", "jsonPath": ".status.state"}"#,
    printcolumn = r#"{"name": "Last run", "type": "date", "jsonPath": ".status.lastRun"}"#,
    printcolumn = r#"{"name": "Location", "type": "string", "jsonPath": ".status.location"}"#,
    printcolumn = r#"{"name": "Result", "type": "string", "jsonPath": ".status.lastResult", "priority": 1}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct RestoreTestSpec {
    /// Velero's namespace (default `velero`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub velero_namespace: Option<String>,
    /// The Velero Schedule whose backups are restored. Exactly one of
    /// `schedule` and `backup`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// `latest` (default) or `random` (within `window`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selection: Option<String>,
    /// For `selection: random`: how far back, e.g. `7d`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<String>,
    /// One backup, by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<String>,
    /// Accept `PartiallyFailed` backups (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accept_partially_failed: Option<bool>,
    /// The backup's namespaces to restore.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    /// Prefix of the volatile namespace (default `vantage-restore-`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_prefix: Option<String>,
    /// Run at this interval. Exactly one of `every` and `cron`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<String>,
    /// Run when this cron expression matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    /// Time zone of `cron`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// How long the Velero Restore may take (default `30m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_timeout: Option<String>,
    /// How often the Restore and the workloads are polled (default `2s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll_interval: Option<String>,
    /// Workloads that must be ready, `deployment/NAME` or
    /// `statefulset/NAME`; empty: all of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<Vec<String>>,
    /// How long to wait for readiness (default `10m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_timeout: Option<String>,
    /// The RTO target the measured total is compared with, e.g. `45m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rto: Option<String>,
    /// Expiry of the volatile namespace (default `6h`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
    /// Egress allowed to restored pods besides DNS: `CIDR` or `CIDR:PORT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress: Option<Vec<String>>,
    /// `exclude` (default) or `rewrite` restored Ingresses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<String>,
    /// With `ingress: rewrite`: hosts become `{{namespace}}.SUFFIX`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress_host_suffix: Option<String>,
    /// Suspend restored CronJobs (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend_cronjobs: Option<bool>,
    /// A URL edge daemons check for the restored app (templated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edge_target: Option<String>,
    /// Record verdicts in the audit log (default true when `[audit]` is set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit: Option<bool>,
    /// Alert severity label (default `critical`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    /// Fail the verdict when the Restore has more warnings than this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_warnings: Option<u64>,
    /// Fail the verdict when the newest completed backup is older, e.g.
    /// `26h`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_backup_age: Option<String>,
    /// The restore-validation checks (`[[restore.check]]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<RestoreCheck>,
    /// Resources (`plural.group`) not restored, on top of the defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude_kinds: Option<Vec<String>>,
    /// Default-excluded resources restored anyway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_kinds: Option<Vec<String>>,
    /// LoadBalancer/NodePort Services become ClusterIP (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub neutralize_services: Option<bool>,
    /// DNS servers restored pods may use: `NAMESPACE/LABEL=VALUE[:PORT]` or
    /// `CIDR[:PORT]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<Vec<String>>,
    /// `host:port` endpoints a probe pod in the volatile namespace must not
    /// reach.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isolation_probe: Option<Vec<String>>,
    /// The probe pod's image (default `busybox:1.37`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe_image: Option<String>,
    /// Data checks run as Jobs in the volatile namespace
    /// (`[[restore.job]]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jobs: Vec<RestoreJob>,
}

/// One restore-validation check: a `[[restore.check]]`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct RestoreCheck {
    /// Unique within the restore test.
    pub name: String,
    /// The keys a `Check` has (the schedule keys do not apply).
    #[serde(flatten)]
    pub check: CheckSpec,
}

/// One data check run as a Job: a `[[restore.job]]`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct RestoreJob {
    /// Unique within the restore test.
    pub name: String,
    /// The container image.
    pub image: String,
    /// Command and arguments.
    pub command: Vec<String>,
    /// Environment: `value`, or `secret:SECRET/KEY` (a restored Secret).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// How long the Job may run (default `5m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// Text the last lines of the log must contain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_output: Option<String>,
    /// The source namespace whose volatile copy the Job runs in (default:
    /// the first of `namespaces`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// A free-form object: kept whole by the API server.
fn free_form(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

/// Both CRDs as one YAML stream (what `vantage crds` prints and
/// `deploy/crds/` holds).
pub fn crds_yaml() -> String {
    let files: Vec<String> = crd_files().into_iter().map(|(_, text)| text).collect();
    files.join("---\n")
}

/// Each CRD with its file name (`<plural>.<group>.yaml`), as `deploy/crds/`
/// holds them.
pub fn crd_files() -> Vec<(String, String)> {
    vec![
        (format!("checks.{GROUP}.yaml"), crd_yaml::<Check>()),
        (
            format!("restoretests.{GROUP}.yaml"),
            crd_yaml::<RestoreTest>(),
        ),
    ]
}

/// One CRD's YAML, with a header naming where it comes from.
pub fn crd_yaml<K: CustomResourceExt>() -> String {
    let yaml = serde_saphyr::to_string(&K::crd()).expect("a CRD serialises to YAML");
    format!("# Generated by `vantage crds` from host/src/kubernetes/crd.rs: do not edit.\n{yaml}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `deploy/crds/` (and the Helm chart's `crds/`) hold what `vantage crds`
    /// generates; regenerate with `vantage crds --dir deploy/crds`.
    #[test]
    fn the_committed_crds_are_the_generated_ones() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        for dir in ["deploy/crds", "deploy/helm/vantage/crds"] {
            for (file, text) in crd_files() {
                let path = root.join(dir).join(&file);
                let committed = std::fs::read_to_string(&path)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                assert!(
                    committed == text,
                    "{} differs from what `vantage crds` generates: run `vantage crds --dir {dir}`",
                    path.display()
                );
            }
        }
    }

    #[test]
    fn the_crds_have_a_status_subresource_printer_columns_and_structural_schemas() {
        let crd = serde_json::to_value(Check::crd()).unwrap();
        let version = &crd["spec"]["versions"][0];
        assert_eq!(crd["spec"]["scope"], "Namespaced");
        assert_eq!(crd["spec"]["group"], "vantage.dev");
        assert_eq!(version["name"], "v1alpha1");
        assert!(version["subresources"]["status"].is_object());
        let columns: Vec<&str> = version["additionalPrinterColumns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(columns, ["State", "Last run", "Location", "Result", "Age"]);
        let spec = &version["schema"]["openAPIV3Schema"]["properties"]["spec"];
        assert_eq!(
            spec["properties"]["config"]["x-kubernetes-preserve-unknown-fields"],
            true
        );
        assert_eq!(spec["properties"]["every"]["type"], "string");
        assert_eq!(
            spec["properties"]["secrets"]["additionalProperties"]["properties"]["secretKeyRef"]["required"],
            serde_json::json!(["key", "name"])
        );
        // Structural: every property has a type (the API server refuses
        // a CRD otherwise).
        fn typed(schema: &serde_json::Value, at: &str) {
            if let Some(props) = schema["properties"].as_object() {
                for (k, v) in props {
                    let here = format!("{at}.{k}");
                    assert!(
                        v["type"].is_string() || v["x-kubernetes-preserve-unknown-fields"] == true,
                        "{here} has no type: {v}"
                    );
                    typed(v, &here);
                    typed(&v["items"], &here);
                    typed(&v["additionalProperties"], &here);
                }
            }
        }
        typed(&version["schema"]["openAPIV3Schema"], "");
        let restore = serde_json::to_value(RestoreTest::crd()).unwrap();
        typed(
            &restore["spec"]["versions"][0]["schema"]["openAPIV3Schema"],
            "",
        );
    }
}
