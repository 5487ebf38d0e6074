//! The validated model of restore tests (`[[restore]]`) and of the audit
//! log (`[audit]`).
//!
//! A restore test picks a Velero backup, restores it into a volatile
//! namespace, waits for the application, runs restore-validation checks
//! against it and records the verdict. Everything here has been checked;
//! templates (`{{namespace}}`, `{{backup}}`) are kept as written and
//! rendered per run by [`Template::render`].

use std::path::PathBuf;
use std::time::Duration;

use super::model::{ComponentRef, Limits, Schedule};
use super::values::SecretSource;
use crate::config::s3::{Retention, Sse};

/// One `[[restore]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct RestoreSpec {
    /// Unique among restore tests and checks, `[a-z0-9][a-z0-9_-]*`.
    pub name: String,
    /// How to reach the cluster.
    pub cluster: ClusterAccess,
    /// Namespace Velero runs in (default `velero`).
    pub velero_namespace: String,
    /// Which backup to restore.
    pub backup: BackupSource,
    /// Whether a `PartiallyFailed` backup may be restored (default false).
    pub accept_partially_failed: bool,
    /// The namespaces of the backup to restore (`includedNamespaces`); each
    /// is restored into its own volatile namespace
    /// (`vantage::restore::mapping`), the first one's is `{{namespace}}`.
    pub source_namespaces: Vec<String>,
    /// Prefix of the volatile namespaces' names (default
    /// `vantage-restore-`); the rest is the source namespace and a short run
    /// suffix.
    pub namespace_prefix: String,
    /// When to run.
    pub schedule: Schedule,
    /// Time zone `cron` is read in (default UTC).
    pub timezone: chrono_tz::Tz,
    /// How long the Velero Restore may take to finish (default 30m).
    pub restore_timeout: Duration,
    /// How often the Restore and the workloads are looked at (default 2s).
    pub poll_interval: Duration,
    /// What must be ready before the checks run.
    pub readiness: Readiness,
    /// The restore-validation checks, in file order.
    pub checks: Vec<RestoreCheck>,
    /// A URL the edge daemons check for the restored app (templated), shown
    /// with the result; not probed by the restore test itself.
    pub edge_target: Option<Template>,
    /// The RTO the measured total is compared with.
    pub rto_target: Option<Duration>,
    /// Network isolation and object rewriting of the restored app.
    pub isolation: Isolation,
    /// The volatile namespace's expiry, after which the janitor deletes it
    /// even if the run that made it crashed (default 6h).
    pub ttl: Duration,
    /// Whether verdicts go to the audit log (default: true when `[audit]`
    /// is configured).
    pub audit: bool,
    /// Alert severity label (default `critical`).
    pub severity: String,
    /// What the verdict demands beyond a completed restore and a ready app.
    pub acceptance: Acceptance,
}

impl RestoreSpec {
    /// Which backup a run restores, for humans: `the latest backup of
    /// schedule shop-daily`, `a random backup of schedule … within 7d`, or
    /// `backup NAME`.
    pub fn describe_backup(&self) -> String {
        match &self.backup {
            BackupSource::Schedule { name, selection } => match selection {
                Selection::Latest => format!("the latest backup of schedule {name}"),
                Selection::RandomWithin(w) => format!(
                    "a random backup of schedule {name} within {}",
                    humantime::format_duration(*w)
                ),
            },
            BackupSource::Named(b) => format!("backup {b}"),
        }
    }
}

/// Bounds on the backup and the restore that fail the verdict
/// (`max_warnings`, `max_backup_age`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Acceptance {
    /// The Restore may end `Completed` with at most this many warnings;
    /// None: any number.
    pub max_warnings: Option<u64>,
    /// The newest completed backup (of the Schedule, or the named backup)
    /// must be at most this old; None: no bound.
    pub max_backup_age: Option<Duration>,
    /// Data checks (`[[restore.job]]`), in file order: each must exit 0.
    pub jobs: Vec<RestoreJob>,
}

/// One `[[restore.job]]`: a container run as a Kubernetes Job in the
/// volatile namespace once the app is ready; it proves the data (exit code
/// 0, and `expect_output` in the last lines of its log if set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreJob {
    /// Unique within the restore test, `[a-z0-9][a-z0-9-]*`.
    pub name: String,
    /// The container image, e.g. `postgres:17`.
    pub image: String,
    /// The command and its arguments (templated).
    pub command: Vec<Template>,
    /// Environment, in file order.
    pub env: Vec<(String, JobEnv)>,
    /// How long the Job may run (its `activeDeadlineSeconds`).
    pub timeout: Duration,
    /// Text the last lines of its log must contain.
    pub expect_output: Option<String>,
    /// The source namespace whose volatile copy the Job runs in; None: the
    /// first source namespace's.
    pub namespace: Option<String>,
}

/// The value of one environment variable of a data job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobEnv {
    /// A plain (templated) value.
    Value(Template),
    /// A key of a Secret restored into the volatile namespace
    /// (`secretKeyRef`): the value never passes through Vantage.
    Secret {
        /// The Secret's name.
        name: String,
        /// The key in it.
        key: String,
    },
}

/// How to reach the Kubernetes API.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterAccess {
    /// A kubeconfig file; None: in-cluster service account, else
    /// `$KUBECONFIG` / `~/.kube/config` (kube's inference).
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context; None: its current context.
    pub context: Option<String>,
}

/// Which backup a restore test restores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackupSource {
    /// A backup made by a Velero Schedule (label
    /// `velero.io/schedule-name`).
    Schedule {
        /// The Schedule's name.
        name: String,
        /// How one backup is picked among the usable ones.
        selection: Selection,
    },
    /// One backup, by name.
    Named(String),
}

/// How a backup is picked among a Schedule's usable backups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    /// The newest by `status.completionTimestamp`.
    Latest,
    /// A random one completed within this window before now.
    RandomWithin(Duration),
}

/// What must be ready before the checks run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    /// These workloads must be available; empty: every Deployment and
    /// StatefulSet restored into the namespace.
    pub workloads: Vec<Workload>,
    /// How long to wait (default 10m).
    pub timeout: Duration,
}

/// A workload, written `deployment/NAME` or `statefulset/NAME`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Workload {
    /// Its kind.
    pub kind: WorkloadKind,
    /// Its name in the source namespace (names are kept by the restore).
    pub name: String,
}

/// Kinds of workload readiness knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WorkloadKind {
    /// `apps/v1` Deployment: available replicas = desired.
    Deployment,
    /// `apps/v1` StatefulSet: ready replicas = desired.
    StatefulSet,
}

impl std::fmt::Display for Workload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind {
            WorkloadKind::Deployment => "deployment",
            WorkloadKind::StatefulSet => "statefulset",
        };
        write!(f, "{kind}/{}", self.name)
    }
}

/// Network isolation and rewriting of the restored objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Isolation {
    /// Egress the restored pods get besides DNS (port 53 to kube-dns):
    /// CIDR blocks with optional ports. Empty: none.
    pub egress: Vec<EgressRule>,
    /// What happens to restored Ingresses.
    pub ingresses: IngressPolicy,
    /// Whether restored CronJobs are suspended (default true).
    pub suspend_cronjobs: bool,
    /// Resources (`plural.group`, as Velero names them) not restored on top
    /// of the defaults (`exclude_kinds`).
    pub exclude_kinds: Vec<String>,
    /// Default-excluded resources restored anyway (`keep_kinds`).
    pub keep_kinds: Vec<String>,
    /// Whether restored `LoadBalancer`/`NodePort` Services become
    /// `ClusterIP` and lose their external-dns annotations (default true).
    pub neutralize_services: bool,
    /// Where restored pods may resolve names (default: kube-dns pods in
    /// `kube-system`, port 53).
    pub dns: Vec<DnsRule>,
    /// `host:port` endpoints (e.g. the production database) a probe pod in
    /// the volatile namespace must fail to reach; empty: no probe.
    pub isolation_probe: Vec<String>,
    /// The probe pod's image (needs `/bin/sh` and `nc`).
    pub probe_image: String,
}

impl Default for Isolation {
    fn default() -> Self {
        Isolation {
            egress: Vec::new(),
            ingresses: IngressPolicy::Exclude,
            suspend_cronjobs: true,
            exclude_kinds: Vec::new(),
            keep_kinds: Vec::new(),
            neutralize_services: true,
            dns: vec![DnsRule::default()],
            isolation_probe: Vec::new(),
            probe_image: DEFAULT_PROBE_IMAGE.to_string(),
        }
    }
}

/// The default probe image.
pub const DEFAULT_PROBE_IMAGE: &str = "busybox:1.37";

/// One DNS egress destination of restored pods (UDP and TCP on `port`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsRule {
    /// Which peers.
    pub peer: DnsPeer,
    /// The port the DNS server listens on (53; OpenShift's pods: 5353).
    pub port: u16,
}

impl Default for DnsRule {
    fn default() -> Self {
        DnsRule {
            peer: DnsPeer::Pods {
                namespace: "kube-system".to_string(),
                labels: vec![("k8s-app".to_string(), "kube-dns".to_string())],
            },
            port: 53,
        }
    }
}

/// DNS servers: pods selected by labels in a namespace, or an address
/// block (NodeLocal DNSCache listens on a link-local address, e.g.
/// `169.254.20.10/32`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsPeer {
    /// Pods matching every label in `namespace`.
    Pods {
        /// Their namespace.
        namespace: String,
        /// `key=value` labels they all carry.
        labels: Vec<(String, String)>,
    },
    /// A CIDR block.
    Cidr(String),
}

/// One allowed egress destination of restored pods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressRule {
    /// A CIDR block, e.g. `10.20.0.0/16`.
    pub cidr: String,
    /// TCP ports; empty: all.
    pub ports: Vec<u16>,
}

/// What happens to restored Ingresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngressPolicy {
    /// Not restored (default): the restored app is never reachable under the
    /// production host names.
    Exclude,
    /// Restored with every host rewritten to `{{namespace}}.{suffix}`
    /// (a Velero resource modifier), for the edge target; with several
    /// source namespaces, each one's Ingresses get its own volatile
    /// namespace's host.
    RewriteHost {
        /// e.g. `restore.example.com`.
        suffix: String,
    },
}

/// One restore-validation check (`[[restore.check]]`). Like a `[[check]]`
/// without a schedule; targets, config values and allow entries may use
/// `{{namespace}}`, `{{namespace:SOURCE}}` and `{{backup}}`.
#[derive(Debug, Clone, PartialEq)]
pub struct RestoreCheck {
    /// Unique within the restore test.
    pub name: String,
    /// The component to run.
    pub component: ComponentRef,
    /// Targets, templated.
    pub targets: Vec<Template>,
    /// Flattened config, values templated.
    pub config: Vec<(String, Template)>,
    /// Allow-list entries, templated; `{target}` as in `[[check]]`. Parsed
    /// (and limited by the ceiling) once rendered.
    pub allow: Vec<Template>,
    /// Granted secrets.
    pub secrets: Vec<(String, SecretSource)>,
    /// Deadline, memory and fuel.
    pub limits: Limits,
    /// Whether it may make insecure TLS requests.
    pub allow_insecure: bool,
}

/// A string with `{{namespace}}` / `{{backup}}` placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template(pub String);

/// The values placeholders are replaced with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateVars {
    /// The volatile namespace of the first source namespace.
    pub namespace: String,
    /// The restored backup's name.
    pub backup: String,
    /// Every source namespace's volatile namespace (`{{namespace:SOURCE}}`).
    pub namespaces: Vec<crate::result::restore::NamespaceMapping>,
}

/// The placeholders templates may use (besides `{{namespace:SOURCE}}` and
/// `{{secret.NAME}}`).
pub const PLACEHOLDERS: [&str; 2] = ["{{namespace}}", "{{backup}}"];

/// `{{namespace:SOURCE}}`: the volatile namespace of source namespace
/// SOURCE.
const NAMESPACE_OF: &str = "{{namespace:";

impl Template {
    /// The text with every placeholder replaced (a `{{namespace:SOURCE}}`
    /// naming no source of the run is left as written; `validate` refuses
    /// it).
    pub fn render(&self, vars: &TemplateVars) -> String {
        let mut text = self
            .0
            .replace("{{namespace}}", &vars.namespace)
            .replace("{{backup}}", &vars.backup);
        for m in &vars.namespaces {
            text = text.replace(&format!("{NAMESPACE_OF}{}}}}}", m.source), &m.volatile);
        }
        text
    }

    /// Every `{{...}}` of the text, in order.
    fn placeholders(&self) -> Vec<&str> {
        let mut out = Vec::new();
        let mut rest = self.0.as_str();
        while let Some(start) = rest.find("{{") {
            let tail = &rest[start..];
            let end = tail.find("}}").map(|e| e + 2).unwrap_or(tail.len());
            out.push(&tail[..end]);
            rest = &tail[end..];
        }
        out
    }

    /// The first `{{...}}` that is not a known placeholder, if any.
    pub fn unknown_placeholder(&self) -> Option<&str> {
        self.placeholders().into_iter().find(|found| {
            !found.starts_with("{{secret.")
                && !PLACEHOLDERS.contains(found)
                && namespace_source(found).is_none()
        })
    }

    /// The SOURCE of every `{{namespace:SOURCE}}`, in order.
    pub fn namespace_sources(&self) -> Vec<&str> {
        self.placeholders()
            .into_iter()
            .filter_map(namespace_source)
            .collect()
    }
}

/// SOURCE, when `placeholder` is `{{namespace:SOURCE}}` with a non-empty
/// SOURCE.
fn namespace_source(placeholder: &str) -> Option<&str> {
    placeholder
        .strip_prefix(NAMESPACE_OF)?
        .strip_suffix("}}")
        .filter(|s| !s.is_empty())
}

/// `[audit]`: where restore-test verdicts are recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditConfig {
    /// The bucket (versioned, Object Lock enabled for retention).
    pub bucket: String,
    /// Key prefix (default `audit/`).
    pub prefix: String,
    /// S3-compatible endpoint; None: AWS. Plain `http://` only on loopback.
    pub endpoint: Option<String>,
    /// Region.
    pub region: Option<String>,
    /// Path-style addressing.
    pub path_style: bool,
    /// The Ed25519 signing key (a secret).
    pub signing_key: SecretSource,
    /// Object Lock retention of each record.
    pub retention: Option<Retention>,
    /// Server-side encryption.
    pub sse: Option<Sse>,
    /// The local spool (default `{data_dir}/audit-spool`).
    pub spool_dir: Option<PathBuf>,
    /// The key being rotated away from: it signs the key-rotation record
    /// when the chain head was signed by it.
    pub previous_signing_key: Option<SecretSource>,
    /// Cadence of checkpoint records (1s to 7 days, default 1h).
    pub checkpoint_every: std::time::Duration,
}

/// Resources never restored unless named in `keep_kinds`: objects whose
/// effect reaches outside the volatile namespace. Velero's `plural.group`
/// names.
pub const DEFAULT_EXCLUDED: &[&str] = &[
    // NetworkPolicies: additive, a restored one can open the sandbox.
    "networkpolicies.networking.k8s.io",
    "ciliumnetworkpolicies.cilium.io",
    "ciliumclusterwidenetworkpolicies.cilium.io",
    "networkpolicies.crd.projectcalico.org",
    "globalnetworkpolicies.crd.projectcalico.org",
    "networkpolicies.projectcalico.org",
    "globalnetworkpolicies.projectcalico.org",
    // Gateway API: routes attach to shared (production) Gateways.
    "httproutes.gateway.networking.k8s.io",
    "grpcroutes.gateway.networking.k8s.io",
    "tlsroutes.gateway.networking.k8s.io",
    "tcproutes.gateway.networking.k8s.io",
    "udproutes.gateway.networking.k8s.io",
    "gateways.gateway.networking.k8s.io",
    // Istio: routing of mesh and edge traffic, outside services.
    "virtualservices.networking.istio.io",
    "gateways.networking.istio.io",
    "serviceentries.networking.istio.io",
    // Traefik (current and pre-v3 groups).
    "ingressroutes.traefik.io",
    "ingressroutetcps.traefik.io",
    "ingressrouteudps.traefik.io",
    "ingressroutes.traefik.containo.us",
    "ingressroutetcps.traefik.containo.us",
    "ingressrouteudps.traefik.containo.us",
    // Contour.
    "httpproxies.projectcontour.io",
    // AWS Load Balancer Controller: registers pods in production target groups.
    "targetgroupbindings.elbv2.k8s.aws",
];

/// Split `host:port` (`[v6]:port` too) into host and port.
pub fn split_endpoint(endpoint: &str) -> Option<(String, u16)> {
    let (host, port) = endpoint.rsplit_once(':')?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let port: u16 = port.parse().ok().filter(|p| *p > 0)?;
    let ok = !host.is_empty()
        && host.len() <= 253
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'))
        && !host.starts_with('-');
    ok.then(|| (host.to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_render_and_report_unknown_placeholders() {
        let vars = TemplateVars {
            namespace: "vantage-restore-shop-1a2b".into(),
            backup: "daily-20261127".into(),
            namespaces: Vec::new(),
        };
        let t = Template("http://api.{{namespace}}.svc:8080/healthz?b={{backup}}".into());
        assert_eq!(
            t.render(&vars),
            "http://api.vantage-restore-shop-1a2b.svc:8080/healthz?b=daily-20261127"
        );
        assert_eq!(t.unknown_placeholder(), None);
        assert_eq!(
            Template("{{secret.token}} {{namspace}}".into()).unknown_placeholder(),
            Some("{{namspace}}")
        );
    }

    #[test]
    fn multins_namespace_of_a_source_renders_to_its_volatile_namespace() {
        use crate::result::restore::NamespaceMapping;
        let vars = TemplateVars {
            namespace: "vr-shop-1a2b3c".into(),
            backup: "b".into(),
            namespaces: vec![
                NamespaceMapping::new("shop", "vr-shop-1a2b3c"),
                NamespaceMapping::new("shop-data", "vr-shop-data-1a2b3c"),
            ],
        };
        let t = Template(
            "postgres://db.{{namespace:shop-data}}.svc:5432 http://api.{{namespace}}.svc {{namespace:shop}}"
                .into(),
        );
        assert_eq!(
            t.render(&vars),
            "postgres://db.vr-shop-data-1a2b3c.svc:5432 http://api.vr-shop-1a2b3c.svc vr-shop-1a2b3c"
        );
        assert_eq!(t.unknown_placeholder(), None);
        assert_eq!(t.namespace_sources(), ["shop-data", "shop"]);
        let unknown = Template("{{namespace:billing}}".into());
        assert_eq!(unknown.namespace_sources(), ["billing"]);
        assert_eq!(unknown.render(&vars), "{{namespace:billing}}");
        assert_eq!(
            Template("{{namespace:}}".into()).unknown_placeholder(),
            Some("{{namespace:}}")
        );
    }
}
