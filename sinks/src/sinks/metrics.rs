//! Prometheus metrics, served at `/metrics` in the OpenMetrics text format.
//!
//! Per check and location, with the names and meaning blackbox_exporter uses
//! so existing dashboards and alert rules keep working:
//!
//! | metric | meaning |
//! |---|---|
//! | `probe_success` | 1 if the last run passed or was degraded, else 0 |
//! | `probe_duration_seconds` | wall-clock duration of the last run |
//! | `probe_http_duration_seconds{phase}` | `resolve`, `connect`, `tls`, `processing`, `transfer`, summed over the run's HTTP exchanges |
//! | `probe_http_status_code` | status of the run's last HTTP response |
//! | `probe_ssl_earliest_cert_expiry` | unix seconds when the earliest-expiring certificate seen expires |
//!
//! and Vantage's own:
//!
//! | metric | meaning |
//! |---|---|
//! | `vantage_check_runs_total{status}` | runs finished, by status |
//! | `vantage_check_state{state}` | 1 for the check's current state (`pending`, `up`, `down`), 0 for the others |
//! | `vantage_check_assertion_success{assertion}` | 1 if the assertion held in the last run |
//! | `vantage_check_measurement{measurement,unit}` | numbers the check reported in its last run |
//! | `vantage_check_last_run_timestamp_seconds` | when the last run started |
//! | `vantage_check_maintenance` | 1 while a maintenance window covers the check |
//! | `vantage_check_retries_total` | retried attempts |
//! | `vantage_check_skipped_overlap_total` | planned runs skipped because the previous run was still going |
//! | `vantage_sandbox_limit_hits_total{limit}` | runs stopped by a sandbox limit (`deadline`, `memory`, `fuel`, `trap`, `result`: a result too large to keep) |
//! | `vantage_check_start_lateness_seconds` | actual start − planned start of the last run |
//! | `vantage_scheduler_lateness_seconds` | histogram of actual start − planned start of every scheduled run (label `location` only, see below) |
//! | `vantage_runs_in_flight` | runs going on now |
//! | `vantage_checks_configured` | checks in the running configuration |
//! | `vantage_config_last_reload_successful` | 0 after a rejected reload, 1 otherwise |
//!
//! and per restore test (label `restore_test`; the test also shows as a
//! check in the families above):
//!
//! | metric | meaning |
//! |---|---|
//! | `vantage_restore_test_success` | 1 if the last restore test passed |
//! | `vantage_restore_duration_seconds{phase}` | `setup`, `restore`, `ready`, `checks`, `cleanup` of the last run |
//! | `vantage_restore_rto_seconds` | the last run's measured RTO (start to checks done) |
//! | `vantage_restore_rto_target_seconds` | the configured RTO target |
//! | `vantage_restore_backup_age_seconds` | age of the backup the last run restored, when it ran |
//! | `vantage_backup_last_validated_timestamp` | unix time of the last run that passed (absent until one does) |
//! | `vantage_backup_age_seconds` | age, at scrape time, of the newest completed backup the last run saw (pass or not) |
//!
//! The audit log's metrics are listed in [`super::audit_metrics`].
//!
//! Every per-check series above carries `check` and `location`. The
//! daemon-wide ones do not carry `check`: `vantage_scheduler_lateness_seconds`
//! carries `location` only, and `vantage_runs_in_flight`,
//! `vantage_checks_configured` and `vantage_config_last_reload_successful`
//! no label. A lateness histogram per check would be 16 series per check
//! (160,000 at 10,000 checks), so the histogram is daemon-wide and the gauge
//! `vantage_check_start_lateness_seconds` gives each check's last lateness.
//!
//! Gauges describing the last run are rendered at scrape time from the
//! [`Board`], so a check removed by a reload disappears from `/metrics`
//! without leftovers; counters are removed explicitly ([`Metrics::forget`]).

use std::fmt::Write as _;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

use crate::result::{CheckState, RunRecord};
use crate::result::{ErrorKind, Status};
use crate::sinks::board::{Board, CheckView};

/// Labels of a per-check series, plus extra pairs.
pub type Labels = Vec<(String, String)>;

/// Buckets of the lateness histogram, seconds: 1 ms to 10 s.
const LATENESS_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Statuses, for removing a check's counters.
const STATUSES: [Status; 4] = [Status::Pass, Status::Degraded, Status::Fail, Status::Error];

/// Phases of `vantage_restore_duration_seconds`.
pub const RESTORE_PHASES: [&str; 5] = ["setup", "restore", "ready", "checks", "cleanup"];

/// Sandbox limits counted by `vantage_sandbox_limit_hits_total`.
const LIMITS: [&str; 6] = ["deadline", "memory", "fuel", "trap", "result", "cpu"];

/// The daemon's metrics registry and the handles the scheduler updates.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    identity: super::identity::Identity,
    location: String,
    runs: Family<Labels, Counter>,
    retries: Family<Labels, Counter>,
    skipped: Family<Labels, Counter>,
    limit_hits: Family<Labels, Counter>,
    lateness: Histogram,
    in_flight: Gauge,
    configured: Gauge,
    shard_members: Gauge,
    shard_owned: Gauge,
    is_leader: Gauge,
    reload_ok: Gauge,
    restore: RestoreFamilies,
    /// The audit shipper's metrics (see [`super::audit_metrics`]).
    audit: super::audit_metrics::AuditGauges,
}

/// A float gauge family.
type FloatGauges = Family<Labels, Gauge<f64, AtomicU64>>;

/// The restore-test gauges.
#[derive(Debug, Default)]
struct RestoreFamilies {
    success: FloatGauges,
    duration: FloatGauges,
    rto: FloatGauges,
    rto_target: FloatGauges,
    backup_age: FloatGauges,
    validated: FloatGauges,
}

/// The outcome of one restore test run, as metrics see it.
#[derive(Debug, Clone, PartialEq)]
pub struct RestoreSample {
    /// The restore test's name.
    pub test: String,
    /// Whether the verdict was pass.
    pub success: bool,
    /// Seconds per phase (`setup`, `restore`, `ready`, `checks`, `cleanup`).
    pub phases: Vec<(String, f64)>,
    /// The measured RTO, seconds.
    pub rto_seconds: f64,
    /// The configured RTO target, seconds.
    pub rto_target_seconds: Option<f64>,
    /// Age of the restored backup, seconds, if one was picked.
    pub backup_age_seconds: Option<f64>,
    /// When the run finished, unix seconds.
    pub finished_unix: f64,
}

impl Metrics {
    /// A registry whose last-run gauges are read from `board`; every series
    /// carries `location`.
    pub fn new(board: Board, location: &str) -> Self {
        let mut registry = Registry::default();
        let runs = Family::<Labels, Counter>::default();
        registry.register(
            "vantage_check_runs",
            "Runs finished, by status",
            runs.clone(),
        );
        let retries = Family::<Labels, Counter>::default();
        registry.register(
            "vantage_check_retries",
            "Attempts that were retried before a run's result counted",
            retries.clone(),
        );
        let skipped = Family::<Labels, Counter>::default();
        registry.register(
            "vantage_check_skipped_overlap",
            "Planned runs skipped because the previous run was still going",
            skipped.clone(),
        );
        let limit_hits = Family::<Labels, Counter>::default();
        registry.register(
            "vantage_sandbox_limit_hits",
            "Runs stopped by a sandbox limit",
            limit_hits.clone(),
        );
        let lateness_family: Family<Labels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(|| Histogram::new(LATENESS_BUCKETS));
        registry.register(
            "vantage_scheduler_lateness_seconds",
            "Actual start minus planned start of scheduled runs",
            lateness_family.clone(),
        );
        // One series, labelled with the location: the histogram is
        // daemon-wide (see the module docs).
        let lateness = lateness_family
            .get_or_create(&vec![("location".to_string(), location.to_string())])
            .clone();
        let in_flight = Gauge::default();
        registry.register(
            "vantage_runs_in_flight",
            "Runs going on now",
            in_flight.clone(),
        );
        let configured = Gauge::default();
        registry.register(
            "vantage_checks_configured",
            "Checks in the running configuration",
            configured.clone(),
        );
        let reload_ok = Gauge::default();
        reload_ok.set(1);
        registry.register(
            "vantage_config_last_reload_successful",
            "Whether the last configuration reload succeeded",
            reload_ok.clone(),
        );
        let restore = RestoreFamilies::default();
        for (name, help, family) in [
            (
                "vantage_restore_test_success",
                "Whether the last restore test passed",
                &restore.success,
            ),
            (
                "vantage_restore_duration_seconds",
                "Duration of each phase of the last restore test",
                &restore.duration,
            ),
            (
                "vantage_restore_rto_seconds",
                "Measured RTO of the last restore test: start to checks done",
                &restore.rto,
            ),
            (
                "vantage_restore_rto_target_seconds",
                "The configured RTO target of the restore test",
                &restore.rto_target,
            ),
            (
                "vantage_restore_backup_age_seconds",
                "Age of the backup the last restore test restored, when it ran",
                &restore.backup_age,
            ),
            (
                "vantage_backup_last_validated_timestamp",
                "Unix time of the last restore test that passed",
                &restore.validated,
            ),
        ] {
            registry.register(name, help, family.clone());
        }
        registry.register_collector(Box::new(LastRun {
            board,
            location: location.to_string(),
        }));
        let audit = super::audit_metrics::AuditGauges::register(&mut registry);
        let shard_members = Gauge::default();
        registry.register(
            "vantage_shard_members",
            "Replicas sharing the configuration (vantage daemon --shard i/n, or the live members with --membership leases; 0 when not sharded)",
            shard_members.clone(),
        );
        let shard_owned = Gauge::default();
        registry.register(
            "vantage_shard_owned_checks",
            "Checks and restore tests this replica runs (0 when not sharded)",
            shard_owned.clone(),
        );
        let is_leader = Gauge::default();
        registry.register(
            "vantage_is_leader",
            "Whether this replica holds the restore leader Lease (vantage daemon --leader-elect): 1 or 0",
            is_leader.clone(),
        );
        let identity = super::identity::Identity::new(location);
        registry.register_collector(Box::new(identity.clone()));
        Metrics {
            identity,
            registry,
            location: location.to_string(),
            runs,
            retries,
            skipped,
            limit_hits,
            lateness,
            in_flight,
            configured,
            shard_members,
            shard_owned,
            is_leader,
            reload_ok,
            restore,
            audit,
        }
    }

    /// What the daemon says about itself (build, configuration, clock).
    pub fn identity(&self) -> &super::identity::Identity {
        &self.identity
    }

    /// The audit shipper's metrics, for `vantage::audit::log::AuditLog::open`.
    pub fn audit(&self) -> &super::audit_metrics::AuditGauges {
        &self.audit
    }

    fn restore_labels(&self, test: &str, extra: &[(&str, &str)]) -> Labels {
        let mut l = vec![
            ("restore_test".to_string(), test.to_string()),
            ("location".to_string(), self.location.clone()),
        ];
        l.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        l
    }

    /// Record the outcome of a restore test run.
    pub fn restore(&self, sample: &RestoreSample) {
        let f = &self.restore;
        let labels = self.restore_labels(&sample.test, &[]);
        f.success
            .get_or_create(&labels)
            .set(if sample.success { 1.0 } else { 0.0 });
        for (phase, seconds) in &sample.phases {
            f.duration
                .get_or_create(&self.restore_labels(&sample.test, &[("phase", phase)]))
                .set(*seconds);
        }
        f.rto.get_or_create(&labels).set(sample.rto_seconds);
        match sample.rto_target_seconds {
            Some(t) => {
                f.rto_target.get_or_create(&labels).set(t);
            }
            None => {
                f.rto_target.remove(&labels);
            }
        }
        match sample.backup_age_seconds {
            Some(age) => {
                f.backup_age.get_or_create(&labels).set(age);
            }
            None => {
                f.backup_age.remove(&labels);
            }
        }
        if sample.success {
            f.validated.get_or_create(&labels).set(sample.finished_unix);
        }
    }

    /// Drop every series of a restore test removed by a reload.
    pub fn forget_restore(&self, test: &str) {
        let f = &self.restore;
        let labels = self.restore_labels(test, &[]);
        for family in [
            &f.success,
            &f.rto,
            &f.rto_target,
            &f.backup_age,
            &f.validated,
        ] {
            family.remove(&labels);
        }
        for phase in RESTORE_PHASES {
            f.duration
                .remove(&self.restore_labels(test, &[("phase", phase)]));
        }
    }

    fn labels(&self, check: &str, extra: &[(&str, &str)]) -> Labels {
        let mut l = vec![
            ("check".to_string(), check.to_string()),
            ("location".to_string(), self.location.clone()),
        ];
        l.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        l
    }

    /// Count a finished run.
    pub fn observe(&self, record: &RunRecord) {
        let check = record.check();
        let status = record.result.status.as_str();
        self.runs
            .get_or_create(&self.labels(check, &[("status", status)]))
            .inc();
        if !record.retries.is_empty() {
            self.retries
                .get_or_create(&self.labels(check, &[]))
                .inc_by(record.retries.len() as u64);
        }
        if let Some(limit) = record
            .result
            .error
            .as_ref()
            .and_then(|e| limit_name(e.kind))
        {
            self.limit_hits
                .get_or_create(&self.labels(check, &[("limit", limit)]))
                .inc();
        }
    }

    /// Record a run's start lateness.
    pub fn lateness(&self, seconds: f64) {
        self.lateness.observe(seconds.max(0.0));
    }

    /// Count a planned run skipped because the previous one was still going.
    pub fn skipped_overlap(&self, check: &str) {
        self.skipped.get_or_create(&self.labels(check, &[])).inc();
    }

    /// A run started (`+1`) or finished (`-1`).
    pub fn in_flight(&self, delta: i64) {
        self.in_flight.inc_by(delta);
    }

    /// This replica's sharding: replicas sharing the configuration, and the
    /// checks and restore tests this one runs (`vantage_shard_members`,
    /// `vantage_shard_owned_checks`; 0 when not sharded).
    pub fn shard(&self, members: u32, owned: usize) {
        self.shard_members.set(i64::from(members));
        self.shard_owned.set(owned as i64);
    }

    /// Whether this replica leads the restore tests (`vantage_is_leader`).
    pub fn leader(&self, leads: bool) {
        self.is_leader.set(i64::from(leads));
    }

    /// The number of checks in the running configuration.
    pub fn configured(&self, n: usize) {
        self.configured.set(n as i64);
    }

    /// Whether the last configuration reload succeeded.
    pub fn config_reload(&self, ok: bool) {
        self.reload_ok.set(i64::from(ok));
    }

    /// Drop every counter series of a check removed by a reload (its gauges
    /// go with its [`Board`] entry).
    pub fn forget(&self, check: &str) {
        for status in STATUSES {
            self.runs
                .remove(&self.labels(check, &[("status", status.as_str())]));
        }
        for limit in LIMITS {
            self.limit_hits
                .remove(&self.labels(check, &[("limit", limit)]));
        }
        self.retries.remove(&self.labels(check, &[]));
        self.skipped.remove(&self.labels(check, &[]));
    }

    /// Register extra metrics (e.g. the alert sender's counters).
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// The OpenMetrics text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            // Encoding into a String cannot fail; keep the scrape valid anyway.
            out.clear();
            let _ = writeln!(out, "# EOF");
        }
        out
    }
}

/// One sample of a last-run gauge: its metric name, its labels (`check`,
/// `location` and the family's own) and its value.
pub type Series = (&'static str, Labels, f64);

/// The last-run gauges `/metrics` shows for `view` at `location`, as
/// samples: what remote write pushes after each run, so that a receiver
/// holds the same names and labels a scrape would.
pub fn last_run_series(view: &CheckView, location: &str) -> Vec<Series> {
    let mut families = LastRunFamilies::new();
    families.add(view, location);
    families
        .into_vec()
        .into_iter()
        .flat_map(|family| {
            let name = family.name;
            family
                .samples
                .into_iter()
                .map(move |(labels, value)| (name, labels, value))
        })
        .collect()
}

/// Which sandbox limit an error kind is, if any.
fn limit_name(kind: ErrorKind) -> Option<&'static str> {
    match kind {
        ErrorKind::Deadline => Some("deadline"),
        ErrorKind::Memory => Some("memory"),
        ErrorKind::Fuel => Some("fuel"),
        ErrorKind::Trap => Some("trap"),
        ErrorKind::ResultTooLarge => Some("result"),
        ErrorKind::Cpu => Some("cpu"),
        _ => None,
    }
}

/// Renders the last-run gauges of every check from the board at scrape
/// time.
#[derive(Debug)]
struct LastRun {
    board: Board,
    location: String,
}

/// One gauge family being written: name, help, and its samples.
struct GaugeFamily {
    name: &'static str,
    help: &'static str,
    samples: Vec<(Labels, f64)>,
}

impl GaugeFamily {
    fn new(name: &'static str, help: &'static str) -> Self {
        GaugeFamily {
            name,
            help,
            samples: Vec::new(),
        }
    }
}

impl LastRun {
    /// Every last-run gauge family, with a sample per check (or per check and
    /// phase, state, assertion or measurement).
    fn families(&self, views: &[CheckView]) -> Vec<GaugeFamily> {
        let mut families = LastRunFamilies::new();
        for view in views {
            families.add(view, &self.location);
        }
        families.into_vec()
    }
}

/// The last-run gauge families while they are filled, one field per family.
struct LastRunFamilies {
    success: GaugeFamily,
    duration: GaugeFamily,
    phases: GaugeFamily,
    status_code: GaugeFamily,
    expiry: GaugeFamily,
    tls_version: GaugeFamily,
    last_chain_expiry: GaugeFamily,
    last_chain_info: GaugeFamily,
    state: GaugeFamily,
    assertion: GaugeFamily,
    measurement: GaugeFamily,
    last_run: GaugeFamily,
    maintenance: GaugeFamily,
    lateness: GaugeFamily,
    component: GaugeFamily,
}

/// A check's series labels (`check`, `location`) and more.
struct SeriesLabels<'a> {
    check: &'a str,
    location: &'a str,
}

impl SeriesLabels<'_> {
    /// `check` and `location`.
    fn base(&self) -> Labels {
        vec![
            ("check".to_string(), self.check.to_string()),
            ("location".to_string(), self.location.to_string()),
        ]
    }

    /// `check`, `location` and `k="v"`.
    fn with(&self, k: &str, v: &str) -> Labels {
        let mut l = self.base();
        l.push((k.to_string(), v.to_string()));
        l
    }
}

impl LastRunFamilies {
    fn new() -> Self {
        LastRunFamilies {
            success: GaugeFamily::new(
                "probe_success",
                "Whether the last run succeeded (pass or degraded)",
            ),
            duration: GaugeFamily::new(
                "probe_duration_seconds",
                "How long the last run took to complete in seconds",
            ),
            phases: GaugeFamily::new(
                "probe_http_duration_seconds",
                "Duration of the last run's HTTP exchanges by phase, summed over the exchanges",
            ),
            status_code: GaugeFamily::new(
                "probe_http_status_code",
                "Status code of the last run's last HTTP response",
            ),
            expiry: GaugeFamily::new(
                "probe_ssl_earliest_cert_expiry",
                "Unix time at which the earliest-expiring certificate seen by the last run expires",
            ),
            tls_version: GaugeFamily::new(
                "probe_tls_version_info",
                "The TLS version of the last run's last handshake",
            ),
            last_chain_expiry: GaugeFamily::new(
                "probe_ssl_last_chain_expiry_timestamp_seconds",
                "Unix time at which the earliest certificate of the last handshake's verified chain expires",
            ),
            last_chain_info: GaugeFamily::new(
                "probe_ssl_last_chain_info",
                "The leaf certificate of the last run's last handshake",
            ),
            state: GaugeFamily::new(
                "vantage_check_state",
                "1 for the check's current alerting state, 0 for the others",
            ),
            assertion: GaugeFamily::new(
                "vantage_check_assertion_success",
                "Whether each assertion of the last run held",
            ),
            measurement: GaugeFamily::new(
                "vantage_check_measurement",
                "Numbers the check reported in its last run",
            ),
            last_run: GaugeFamily::new(
                "vantage_check_last_run_timestamp_seconds",
                "Unix time at which the last run started",
            ),
            maintenance: GaugeFamily::new(
                "vantage_check_maintenance",
                "1 while a maintenance window covers the check",
            ),
            lateness: GaugeFamily::new(
                "vantage_check_start_lateness_seconds",
                "Actual start minus planned start of the last run in seconds",
            ),
            component: GaugeFamily::new(
                "vantage_check_component_info",
                "The component the last run executed: its source (a file, or the registry reference pinned to its digest) and sha256",
            ),
        }
    }

    /// One check's samples: its state and maintenance always, the rest from
    /// its last run if it has one.
    fn add(&mut self, view: &CheckView, location: &str) {
        let labels = SeriesLabels {
            check: &view.name,
            location,
        };
        for s in CheckState::ALL {
            let on = f64::from(u8::from(s == view.state));
            self.state
                .samples
                .push((labels.with("state", s.as_str()), on));
        }
        self.maintenance.samples.push((
            labels.base(),
            f64::from(u8::from(view.maintenance.is_some())),
        ));
        let Some(last) = &view.last else { return };
        let r = &last.result;
        let ok = matches!(r.status, Status::Pass | Status::Degraded);
        self.success
            .samples
            .push((labels.base(), f64::from(u8::from(ok))));
        self.duration
            .samples
            .push((labels.base(), r.duration_ms / 1000.0));
        self.last_run
            .samples
            .push((labels.base(), r.started_unix_ms as f64 / 1000.0));
        if last.lateness_ms.is_finite() {
            self.lateness
                .samples
                .push((labels.base(), last.lateness_ms.max(0.0) / 1000.0));
        }
        if let Some(c) = &last.component {
            let mut l = labels.with("component", &c.source);
            l.push(("sha256".to_string(), c.sha256.clone()));
            self.component.samples.push((l, 1.0));
        }
        if !r.timings.http.is_empty() {
            self.add_http(&labels, &r.timings.http);
        }
        if !r.timings.tls.is_empty() {
            self.add_tls(&labels, &r.timings.tls);
        }
        self.add_reported(&labels, r);
    }

    /// The HTTP gauges of a run with at least one exchange: phases summed
    /// over the exchanges and the last status code.
    fn add_http(&mut self, labels: &SeriesLabels<'_>, http: &[crate::result::HttpTrace]) {
        let mut sums = [0.0f64; 5];
        for t in http {
            let p = &t.timings;
            for (sum, ms) in sums.iter_mut().zip([
                p.resolve_ms,
                p.connect_ms,
                p.tls_ms,
                p.processing_ms,
                p.transfer_ms,
            ]) {
                *sum += ms;
            }
        }
        for (phase, ms) in ["resolve", "connect", "tls", "processing", "transfer"]
            .iter()
            .zip(sums)
        {
            self.phases
                .samples
                .push((labels.with("phase", phase), ms / 1000.0));
        }
        let code = http.iter().rev().find_map(|t| t.status).unwrap_or(0);
        self.status_code
            .samples
            .push((labels.base(), f64::from(code)));
    }

    /// The TLS gauges of a run with at least one handshake (over any
    /// capability), as blackbox_exporter names them: the earliest expiry of
    /// every presented chain, and of the last handshake its version, the
    /// expiry of its verified chain and its leaf.
    fn add_tls(&mut self, labels: &SeriesLabels<'_>, tls: &[crate::result::TlsTrace]) {
        if let Some(ms) = tls.iter().filter_map(|t| t.earliest_expiry_unix_ms).min() {
            self.expiry
                .samples
                .push((labels.base(), ms as f64 / 1000.0));
        }
        let Some(last) = tls.last() else { return };
        self.tls_version
            .samples
            .push((labels.with("version", &last.blackbox_version()), 1.0));
        if let Some(ms) = last.verified_expiry_unix_ms {
            self.last_chain_expiry
                .samples
                .push((labels.base(), ms as f64 / 1000.0));
        }
        if let Some(leaf) = &last.leaf {
            let mut l = labels.with("fingerprint_sha256", &leaf.sha256_fingerprint);
            for (k, v) in [
                ("subject", leaf.subject.clone()),
                ("issuer", leaf.issuer.clone()),
                ("subjectalternative", leaf.sans.join(",")),
                ("serialnumber", leaf.serial.clone()),
            ] {
                l.push((k.to_string(), v));
            }
            self.last_chain_info.samples.push((l, 1.0));
        }
    }

    /// What the check reported: a sample per assertion and per finite
    /// measurement (the first of each name, or name, unit and labels).
    fn add_reported(&mut self, labels: &SeriesLabels<'_>, r: &crate::result::CheckResult) {
        let mut seen = std::collections::HashSet::new();
        for a in &r.assertions {
            // Two assertions with one name would be one series: keep the first.
            if seen.insert(a.name.as_str()) {
                self.assertion.samples.push((
                    labels.with("assertion", &a.name),
                    f64::from(u8::from(a.passed)),
                ));
            }
        }
        let mut seen = std::collections::HashSet::new();
        for m in &r.measurements {
            if seen.insert((m.name.as_str(), m.unit.as_str(), &m.labels)) && m.value.is_finite() {
                let mut l = labels.with("measurement", &m.name);
                l.push(("unit".to_string(), m.unit.clone()));
                // The runtime refused results whose labels are not names or
                // would replace the host's (`limits::bad_measurement_labels`).
                l.extend(m.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
                self.measurement.samples.push((l, m.value));
            }
        }
    }

    /// The families in the order they are rendered.
    fn into_vec(self) -> Vec<GaugeFamily> {
        vec![
            self.success,
            self.duration,
            self.phases,
            self.status_code,
            self.expiry,
            self.tls_version,
            self.last_chain_expiry,
            self.last_chain_info,
            self.state,
            self.assertion,
            self.measurement,
            self.last_run,
            self.maintenance,
            self.lateness,
            self.component,
        ]
    }
}

impl Collector for LastRun {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let views = self.board.snapshot();
        let backup_age = backup_age_family(&views, &self.location);
        for family in self.families(&views).into_iter().chain([backup_age]) {
            if family.samples.is_empty() {
                continue;
            }
            let mut metric =
                encoder.encode_descriptor(family.name, family.help, None, MetricType::Gauge)?;
            for (labels, value) in &family.samples {
                let gauge = ConstGauge::new(*value);
                gauge.encode(metric.encode_family(labels)?)?;
            }
        }
        Ok(())
    }
}

/// `vantage_backup_age_seconds`: per restore test, now minus the completion
/// of the newest completed backup its last run saw. Grows between runs, so
/// an alert fires on a backup chain that stopped even while restores pass.
fn backup_age_family(views: &[CheckView], location: &str) -> GaugeFamily {
    let mut family = GaugeFamily::new(
        "vantage_backup_age_seconds",
        "Age of the newest completed backup the last restore test saw, at scrape time",
    );
    let now = chrono::Utc::now();
    for view in views {
        let Some(age) = view
            .restore
            .as_ref()
            .and_then(|r| r.backup.as_ref())
            .and_then(|b| b.newest_age_at(now))
        else {
            continue;
        };
        family.samples.push((
            vec![
                ("restore_test".to_string(), view.name.clone()),
                ("location".to_string(), location.to_string()),
            ],
            age,
        ));
    }
    family
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::result::RunRecord;
    use crate::result::{Assertion, CheckResult, Measurement};
    use crate::sinks::testing::run_record;

    fn record(check: &str, status: Status) -> RunRecord {
        let mut result = CheckResult::host_error(
            check,
            "fra1",
            0,
            ErrorKind::Deadline,
            "deadline 1s exceeded",
        );
        result.status = status;
        result.duration_ms = 1500.0;
        result.started_unix_ms = 1_700_000_000_000;
        result.error = (status == Status::Error).then(|| crate::result::RunError {
            kind: ErrorKind::Deadline,
            message: "deadline 1s exceeded".into(),
        });
        result.assertions = vec![Assertion {
            name: "status is 200".into(),
            passed: status == Status::Pass,
            warn: false,
            detail: String::new(),
            duration_ms: None,
        }];
        result.measurements = vec![
            Measurement {
                labels: Default::default(),
                name: "tls_cert_days_left".into(),
                value: 42.0,
                unit: "days".into(),
            },
            // One name, two targets: two series told apart by a label.
            Measurement {
                labels: [("target".to_string(), "https://a".to_string())].into(),
                name: "latency".into(),
                value: 12.0,
                unit: "ms".into(),
            },
            Measurement {
                labels: [("target".to_string(), "https://b".to_string())].into(),
                name: "latency".into(),
                value: 30.0,
                unit: "ms".into(),
            },
        ];
        let state = if status == Status::Pass {
            CheckState::Up
        } else {
            CheckState::Down
        };
        RunRecord {
            result,
            ..run_record(check, 0, status, state)
        }
    }

    fn view(record: RunRecord) -> CheckView {
        CheckView {
            kind: crate::sinks::board::Kind::Check,
            name: record.check().to_string(),
            component: "http.wasm".into(),
            schedule: "every 1m".into(),
            targets: vec![],
            location: "fra1".into(),
            severity: "critical".into(),
            state: record.state,
            next_unix_ms: None,
            last: Some(Arc::new(record)),
            runs: 1,
            ..Default::default()
        }
    }

    #[test]
    fn renders_blackbox_names_and_vantage_counters() {
        let board = Board::default();
        let metrics = Metrics::new(board.clone(), "fra1");
        let mut ok = record("api", Status::Pass);
        ok.lateness_ms = 250.0;
        let bad = record("db", Status::Error);
        metrics.observe(&ok);
        metrics.observe(&bad);
        metrics.lateness(0.002);
        metrics.skipped_overlap("db");
        board.insert(view(ok));
        board.insert(view(bad));
        let text = metrics.render();
        for line in [
            r#"probe_success{check="api",location="fra1"} 1"#,
            r#"probe_success{check="db",location="fra1"} 0"#,
            r#"probe_duration_seconds{check="api",location="fra1"} 1.5"#,
            r#"vantage_check_runs_total{check="db",location="fra1",status="error"} 1"#,
            r#"vantage_check_state{check="db",location="fra1",state="down"} 1"#,
            r#"vantage_check_state{check="db",location="fra1",state="up"} 0"#,
            r#"vantage_check_assertion_success{check="api",location="fra1",assertion="status is 200"} 1"#,
            r#"vantage_check_measurement{check="api",location="fra1",measurement="tls_cert_days_left",unit="days"} 42"#,
            r#"vantage_check_measurement{check="api",location="fra1",measurement="latency",unit="ms",target="https://a"} 12"#,
            r#"vantage_check_measurement{check="api",location="fra1",measurement="latency",unit="ms",target="https://b"} 30"#,
            r#"vantage_sandbox_limit_hits_total{check="db",location="fra1",limit="deadline"} 1"#,
            r#"vantage_check_skipped_overlap_total{check="db",location="fra1"} 1"#,
            r#"vantage_scheduler_lateness_seconds_count{location="fra1"} 1"#,
            r#"vantage_check_start_lateness_seconds{check="api",location="fra1"} 0.25"#,
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
    }

    #[test]
    fn forgotten_checks_leave_no_series() {
        let board = Board::default();
        let metrics = Metrics::new(board.clone(), "fra1");
        let bad = record("db", Status::Error);
        metrics.observe(&bad);
        metrics.skipped_overlap("db");
        board.insert(view(bad));
        assert!(metrics.render().contains(r#"check="db""#));
        metrics.forget("db");
        board.remove("db");
        let text = metrics.render();
        assert!(!text.contains(r#"check="db""#), "{text}");
    }

    #[test]
    fn http_gauges_sum_phases_and_take_the_last_status() {
        let board = Board::default();
        let metrics = Metrics::new(board.clone(), "fra1");
        let mut ok = record("web", Status::Pass);
        let exchange = |status, resolve_ms, _expiry: Option<i64>| crate::result::HttpTrace {
            method: "GET".into(),
            url: "https://127.0.0.1/".into(),
            status,
            remote_addr: None,
            redirects: 0,
            timings: crate::result::http::Timings {
                resolve_ms,
                connect_ms: 2.0,
                tls_ms: 3.0,
                processing_ms: 4.0,
                transfer_ms: 5.0,
                total_ms: 15.0,
            },
            error: None,
        };
        ok.result.timings.http = vec![
            exchange(Some(301), 250.0, Some(2_000_000_000_000)),
            exchange(Some(200), 750.0, Some(1_900_000_000_000)),
            exchange(None, 0.0, None),
        ];
        board.insert(view(ok));
        board.insert(view(record("idle", Status::Pass)));
        let text = metrics.render();
        for line in [
            r#"probe_http_duration_seconds{check="web",location="fra1",phase="resolve"} 1"#,
            r#"probe_http_duration_seconds{check="web",location="fra1",phase="transfer"} 0.015"#,
            r#"probe_http_status_code{check="web",location="fra1"} 200"#,
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
        // A run without HTTP exchanges has no HTTP series.
        assert!(!text.contains("probe_ssl_"), "{text}");
        assert!(
            !text.contains(r#"probe_http_status_code{check="idle""#),
            "{text}"
        );
    }

    #[test]
    fn tls_gauges_follow_blackbox_from_any_capability() {
        let board = Board::default();
        let metrics = Metrics::new(board.clone(), "fra1");
        let mut ok = record("mail", Status::Pass);
        let handshake =
            |via: &str, version: &str, earliest, verified, serial: &str| crate::result::TlsTrace {
                via: via.into(),
                server: "mail.example:993".into(),
                version: version.into(),
                verdict: "valid".into(),
                earliest_expiry_unix_ms: Some(earliest),
                verified_expiry_unix_ms: verified,
                leaf: Some(crate::result::LeafCertificate {
                    subject: "CN=mail.example".into(),
                    issuer: "CN=Private Root".into(),
                    sans: vec!["mail.example".into(), "imap.example".into()],
                    serial: serial.into(),
                    sha256_fingerprint: "ab01".into(),
                }),
            };
        ok.result.timings.tls = vec![
            handshake("http", "TLSv1.2", 1_800_000_000_000, None, "01"),
            handshake(
                "tcp",
                "TLSv1.3",
                1_900_000_000_000,
                Some(1_950_000_000_000),
                "00ff",
            ),
        ];
        board.insert(view(ok));
        let text = metrics.render();
        for line in [
            r#"probe_ssl_earliest_cert_expiry{check="mail",location="fra1"} 1800000000"#,
            r#"probe_tls_version_info{check="mail",location="fra1",version="TLS 1.3"} 1"#,
            r#"probe_ssl_last_chain_expiry_timestamp_seconds{check="mail",location="fra1"} 1950000000"#,
            r#"probe_ssl_last_chain_info{check="mail",location="fra1",fingerprint_sha256="ab01",subject="CN=mail.example",issuer="CN=Private Root",subjectalternative="mail.example,imap.example",serialnumber="00ff"} 1"#,
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
    }
}
