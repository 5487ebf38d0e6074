//! Stage one: `vantage.toml` exactly as written. Unknown keys are errors
//! (`deny_unknown_fields`), and every value keeps its place in the file
//! ([`Spanned`]) so stage two can point at the right line.
//!
//! Values with a unit (durations, sizes) are read as any TOML value, so that
//! `timeout = 10` gets a message showing `"10s"` rather than serde's
//! generic "expected a string".

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_spanned::Spanned;

use super::model::Mode;

/// A list of strings, each with its place.
pub(super) type SpannedList = Spanned<Vec<Spanned<String>>>;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    /// `[global]`: daemon-wide settings.
    pub global: Option<Spanned<RawGlobal>>,
    /// `[defaults]`: limits for checks that do not set their own.
    pub defaults: Option<Spanned<RawDefaults>>,
    /// `[[check]]`: one per check.
    #[serde(default)]
    pub check: Vec<Spanned<RawCheck>>,
    /// `[alerts]`: where alerts are sent.
    pub alerts: Option<Spanned<RawAlerts>>,
    /// `[[maintenance]]`: windows in which alerts are suppressed.
    #[serde(default)]
    pub maintenance: Vec<Spanned<RawMaintenance>>,
    /// `[[restore]]`: one per restore test.
    #[serde(default)]
    pub restore: Vec<Spanned<RawRestore>>,
    /// `[audit]`: where restore-test verdicts are recorded.
    pub audit: Option<Spanned<RawAudit>>,
    /// `[registry]`: pulling components from OCI registries.
    pub registry: Option<Spanned<super::registry::RawRegistry>>,
    /// `[[remote_write]]`: receivers every run's series are pushed to.
    #[serde(default)]
    pub remote_write: Vec<Spanned<super::remote_write::RawRemoteWrite>>,
    /// `[[heartbeat]]`: jobs that must report in.
    #[serde(default)]
    pub heartbeat: Vec<Spanned<super::heartbeat::RawHeartbeat>>,
    /// `[central]`: the fleet's view, read from Prometheus.
    pub central: Option<Spanned<super::remote_write::RawCentral>>,
}

/// One `[[restore]]`: a scheduled restore test of a Velero backup.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRestore {
    /// Required, unique among checks and restore tests.
    pub name: Option<Spanned<String>>,
    /// A kubeconfig file (relative to this file); absent: in-cluster, else
    /// `$KUBECONFIG` / `~/.kube/config`.
    pub kubeconfig: Option<Spanned<String>>,
    /// The kubeconfig context; absent: its current context.
    pub context: Option<Spanned<String>>,
    /// Velero's namespace (default `"velero"`).
    pub velero_namespace: Option<Spanned<String>>,
    /// The Velero Schedule whose backups are restored. Exactly one of
    /// `schedule` and `backup`.
    pub schedule: Option<Spanned<String>>,
    /// `"latest"` (default) or `"random"` (within `window`).
    pub selection: Option<Spanned<String>>,
    /// For `selection = "random"`: how far back, e.g. `"7d"`.
    pub window: Option<Spanned<toml::Value>>,
    /// One backup, by name.
    pub backup: Option<Spanned<String>>,
    /// Accept `PartiallyFailed` backups (default false).
    pub accept_partially_failed: Option<Spanned<bool>>,
    /// The backup's namespaces to restore; required.
    pub namespaces: Option<SpannedList>,
    /// Prefix of the volatile namespace (default `"vantage-restore-"`).
    pub namespace_prefix: Option<Spanned<String>>,
    /// Run at this interval. Exactly one of `every` and `cron`.
    pub every: Option<Spanned<toml::Value>>,
    /// Run when this cron expression matches.
    pub cron: Option<Spanned<String>>,
    /// Time zone of `cron`.
    pub timezone: Option<Spanned<String>>,
    /// How long the Velero Restore may take (default `"30m"`).
    pub restore_timeout: Option<Spanned<toml::Value>>,
    /// How often the Restore and the workloads are polled (default `"2s"`).
    pub poll_interval: Option<Spanned<toml::Value>>,
    /// Workloads that must be ready, `"deployment/NAME"` or
    /// `"statefulset/NAME"`; absent: all of them.
    pub ready: Option<SpannedList>,
    /// How long to wait for readiness (default `"10m"`).
    pub ready_timeout: Option<Spanned<toml::Value>>,
    /// The RTO target the measured total is compared with, e.g. `"45m"`.
    pub rto: Option<Spanned<toml::Value>>,
    /// Expiry of the volatile namespace (default `"6h"`).
    pub ttl: Option<Spanned<toml::Value>>,
    /// Egress allowed to restored pods besides DNS: `"CIDR"` or
    /// `"CIDR:PORT"`.
    pub egress: Option<SpannedList>,
    /// `"exclude"` (default) or `"rewrite"` restored Ingresses.
    pub ingress: Option<Spanned<String>>,
    /// With `ingress = "rewrite"`: hosts become `{{namespace}}.SUFFIX`.
    pub ingress_host_suffix: Option<Spanned<String>>,
    /// Suspend restored CronJobs (default true).
    pub suspend_cronjobs: Option<Spanned<bool>>,
    /// A URL edge daemons check for the restored app (templated).
    pub edge_target: Option<Spanned<String>>,
    /// Record verdicts in the audit log (default true when `[audit]` is set).
    pub audit: Option<Spanned<bool>>,
    /// Alert severity label (default `"critical"`).
    pub severity: Option<Spanned<String>>,
    /// Fail the verdict when the Restore has more warnings than this.
    pub max_warnings: Option<Spanned<u64>>,
    /// Fail the verdict when the newest completed backup is older, e.g.
    /// `"26h"`.
    pub max_backup_age: Option<Spanned<toml::Value>>,
    /// `[[restore.check]]`: the restore-validation checks.
    #[serde(default)]
    pub check: Vec<Spanned<RawCheck>>,
    /// Resources (`plural.group`) not restored, on top of the defaults.
    pub exclude_kinds: Option<SpannedList>,
    /// Default-excluded resources restored anyway.
    pub keep_kinds: Option<SpannedList>,
    /// LoadBalancer/NodePort Services become ClusterIP (default true).
    pub neutralize_services: Option<Spanned<bool>>,
    /// DNS servers restored pods may use: `"NAMESPACE/LABEL=VALUE[:PORT]"`
    /// or `"CIDR[:PORT]"` (default `["kube-system/k8s-app=kube-dns"]`).
    pub dns: Option<SpannedList>,
    /// `host:port` endpoints a probe pod in the volatile namespace must not
    /// reach.
    pub isolation_probe: Option<SpannedList>,
    /// The probe pod's image (default `busybox:1.37`).
    pub probe_image: Option<Spanned<String>>,
    /// `[[restore.job]]`: data checks run as Jobs in the volatile namespace.
    #[serde(default)]
    pub job: Vec<Spanned<RawJob>>,
}

/// One `[[restore.job]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawJob {
    /// Required, unique within the restore test.
    pub name: Option<Spanned<String>>,
    /// Required: the container image.
    pub image: Option<Spanned<String>>,
    /// Required: command and arguments.
    pub command: Option<SpannedList>,
    /// Environment: `"value"` or `"secret:SECRET/KEY"` (a restored Secret).
    pub env: Option<Spanned<toml::Table>>,
    /// How long the Job may run (default `"5m"`).
    pub timeout: Option<Spanned<toml::Value>>,
    /// Text the last lines of the log must contain.
    pub expect_output: Option<Spanned<String>>,
    /// The source namespace whose volatile copy the Job runs in (default:
    /// the first of `namespaces`).
    pub namespace: Option<Spanned<String>>,
}

/// `[audit]`: the tamper-evident audit log on S3.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAudit {
    /// Required: the bucket.
    pub bucket: Option<Spanned<String>>,
    /// Key prefix (default `"audit/"`).
    pub prefix: Option<Spanned<String>>,
    /// S3-compatible endpoint URL; absent: AWS.
    pub endpoint: Option<Spanned<String>>,
    /// Region.
    pub region: Option<Spanned<String>>,
    /// Path-style addressing (default: true when `endpoint` is set).
    pub path_style: Option<Spanned<bool>>,
    /// Required: the Ed25519 signing key, `"env:VAR"` or `"file:PATH"`.
    pub signing_key: Option<Spanned<String>>,
    /// Object Lock mode of records: `"governance"` or `"compliance"`.
    pub lock_mode: Option<Spanned<String>>,
    /// Object Lock retention in days (required with `lock_mode`).
    pub lock_days: Option<Spanned<u64>>,
    /// Server-side encryption: `"s3"` or `"kms"`.
    pub sse: Option<Spanned<String>>,
    /// With `sse = "kms"`: the KMS key id or ARN.
    pub sse_kms_key_id: Option<Spanned<String>>,
    /// The local spool directory (default `{data_dir}/audit-spool`).
    pub spool_dir: Option<Spanned<String>>,
    /// The key being rotated away from, `"env:VAR"` or `"file:PATH"`.
    pub previous_signing_key: Option<Spanned<String>>,
    /// Cadence of checkpoint records (default `"1h"`).
    pub checkpoint_every: Option<Spanned<toml::Value>>,
}

/// `[alerts]`; every key is optional.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAlerts {
    /// Alertmanager base URLs, e.g. `["http://127.0.0.1:9093"]`.
    pub alertmanager: Option<SpannedList>,
    /// Generic JSON webhook URLs.
    pub webhooks: Option<SpannedList>,
    /// Re-send firing alerts at this interval, e.g. `"1m"`.
    pub resend: Option<Spanned<toml::Value>>,
}

/// One `[[maintenance]]` window.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMaintenance {
    /// Required, e.g. `"db-upgrade"`.
    pub name: Option<Spanned<String>>,
    /// Checks it covers, by name; absent: every check.
    pub checks: Option<SpannedList>,
    /// One-off window start, RFC 3339 (`"2026-12-01T02:00:00Z"`).
    pub start: Option<Spanned<String>>,
    /// One-off window end, RFC 3339.
    pub end: Option<Spanned<String>>,
    /// Recurring window: when it opens (cron expression).
    pub cron: Option<Spanned<String>>,
    /// Recurring window: how long it stays open, e.g. `"2h"`.
    pub duration: Option<Spanned<toml::Value>>,
    /// Time zone of `cron` (IANA name, e.g. `"Europe/Berlin"`); default UTC.
    pub timezone: Option<Spanned<String>>,
}

/// `[global]`; every key is optional.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGlobal {
    /// Label attached to every result, e.g. `"eu-west-1"`; default `"local"`.
    pub location: Option<Spanned<String>>,
    /// Directory for the compiled-component cache and state; default: the OS
    /// data directory. Relative to the configuration file's directory.
    pub data_dir: Option<Spanned<String>>,
    /// Ceiling for every check's allow list, e.g. `["https://*", "http://*"]`.
    pub allow_ceiling: Option<SpannedList>,
    /// Address of the daemon's HTTP API, metrics and status page.
    pub listen: Option<Spanned<String>>,
    /// The URL people reach the status page at (alerts link to it).
    pub public_url: Option<Spanned<String>>,
    /// At most this many runs at once.
    pub concurrency: Option<Spanned<u64>>,
    /// Keep history for this long, e.g. `"30d"`.
    pub history_max_age: Option<Spanned<toml::Value>>,
    /// Keep at most this many runs per check.
    pub history_max_runs: Option<Spanned<u64>>,
    /// On shutdown, wait this long for runs in flight, e.g. `"30s"`.
    pub shutdown_grace: Option<Spanned<toml::Value>>,
    /// Refuse component files larger than this, e.g. `"64MiB"`.
    pub max_component_size: Option<Spanned<toml::Value>>,
}

/// `[defaults]`; every key is optional.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDefaults {
    /// Wall-clock budget of a run, e.g. `"10s"`; default 10s.
    pub timeout: Option<Spanned<toml::Value>>,
    /// Memory cap, e.g. `"64MiB"` (B, KiB, MiB, GiB, KB, MB, GB); default 64MiB.
    pub memory: Option<Spanned<toml::Value>>,
    /// Instruction budget; default: none.
    pub fuel: Option<Spanned<u64>>,
    /// CPU time per run, e.g. `"2s"`; default: none (only `timeout`).
    pub cpu: Option<Spanned<toml::Value>>,
}

/// One `[[check]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCheck {
    /// Required, unique, `[a-z0-9][a-z0-9_-]*`, e.g. `"api-health"`.
    pub name: Option<Spanned<String>>,
    /// Required: a `.wasm` path relative to the configuration file's
    /// directory, or a registry reference `"oci://…"`.
    pub component: Option<Spanned<String>>,
    /// Run at this interval, e.g. `"1m"`. Exactly one of `every` and `cron`.
    pub every: Option<Spanned<toml::Value>>,
    /// Run when this cron expression matches, e.g. `"*/5 * * * *"`.
    pub cron: Option<Spanned<String>>,
    /// Random delay of up to this much before each run, e.g. `"5s"`.
    pub jitter: Option<Spanned<toml::Value>>,
    /// What to probe, usually URLs.
    pub targets: Option<SpannedList>,
    /// Outbound allow patterns; `"{target}"` stands for each target's
    /// `scheme://host:port`. Absent or empty: no outbound access.
    pub allow: Option<SpannedList>,
    /// Overrides `defaults.timeout`.
    pub timeout: Option<Spanned<toml::Value>>,
    /// Overrides `defaults.memory`.
    pub memory: Option<Spanned<toml::Value>>,
    /// Overrides `defaults.fuel`.
    pub fuel: Option<Spanned<u64>>,
    /// Overrides `defaults.cpu`.
    pub cpu: Option<Spanned<toml::Value>>,
    /// `"edge"` (default) or `"restore"`.
    pub mode: Option<Spanned<Mode>>,
    /// `[check.secrets]`: name = `"env:VAR"` or `"file:PATH"`.
    pub secrets: Option<BTreeMap<Spanned<String>, Spanned<String>>>,
    /// `[check.config]`: free-form, passed to the check flattened to dotted keys.
    pub config: Option<Spanned<toml::Table>>,
    /// Time zone of `cron` (IANA name); default UTC.
    pub timezone: Option<Spanned<String>>,
    /// Consecutive bad runs before the check's state turns down (default 1).
    pub failure_threshold: Option<Spanned<u64>>,
    /// Consecutive good runs before it turns up again (default 1).
    pub success_threshold: Option<Spanned<u64>>,
    /// Retry a bad run this many times before it counts (default 0).
    pub retries: Option<Spanned<u64>>,
    /// Wait this long before a retry, e.g. `"2s"` (default 1s).
    pub retry_delay: Option<Spanned<toml::Value>>,
    /// Alert severity label, e.g. `"critical"` (default) or `"warning"`.
    pub severity: Option<Spanned<String>>,
    /// Let the check make `insecure` TLS requests (no certificate checks).
    pub allow_insecure: Option<Spanned<bool>>,
}

/// The keys a table of `vantage.toml` accepts, by section: what the
/// Kubernetes custom resources mirror (a test compares them).
pub mod keys {
    use serde::de::{self, Deserializer, Visitor};

    /// The keys of `[[check]]` (and `[[restore.check]]`).
    pub fn check() -> &'static [&'static str] {
        fields_of::<super::RawCheck>()
    }

    /// The keys of `[[restore]]`.
    pub fn restore() -> &'static [&'static str] {
        fields_of::<super::RawRestore>()
    }

    /// The keys of `[[restore.job]]`.
    pub fn job() -> &'static [&'static str] {
        fields_of::<super::RawJob>()
    }

    /// The field list serde's derive hands to `deserialize_struct`.
    fn fields_of<T: for<'de> serde::Deserialize<'de>>() -> &'static [&'static str] {
        let mut fields: &'static [&'static str] = &[];
        let _ = T::deserialize(Capture(&mut fields));
        fields
    }

    /// A deserializer that only records the struct's field names.
    struct Capture<'a>(&'a mut &'static [&'static str]);

    impl<'de> Deserializer<'de> for Capture<'_> {
        type Error = de::value::Error;

        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("field names only"))
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(de::Error::custom("field names only"))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map enum identifier ignored_any
        }
    }
}
