//! `[[restore]]` and `[audit]`: the model a valid file gives, and the place
//! and wording of each error.

use super::*;

const AUDIT: &str = "[audit]\nbucket = \"vantage-audit\"\nendpoint = \"http://127.0.0.1:9000\"\nsigning_key = \"env:VANTAGE_AUDIT_KEY\"\nlock_mode = \"compliance\"\nlock_days = 30\n";

const RESTORE: &str = r#"[[restore]]
name = "shop-nightly"
schedule = "shop-daily"
namespaces = ["shop"]
cron = "0 3 * * *"
timezone = "Europe/Berlin"
ready = ["deployment/api", "statefulset/db"]
ready_timeout = "5m"
rto = "45m"
egress = ["10.20.0.0/16:5432"]
edge_target = "https://{{namespace}}.restore.example.com/healthz"

[[restore.check]]
name = "api"
component = "checks/http.wasm"
targets = ["http://api.{{namespace}}.svc.cluster.local:8080/healthz"]
allow = ["{target}"]
timeout = "20s"
[restore.check.config]
expect.body_contains = "{{backup}}"
"#;

#[test]
fn a_full_restore_test_loads() {
    let config = load_ok(&format!("{AUDIT}\n{RESTORE}"));
    assert!(config.checks.is_empty());
    let audit = config.audit.as_ref().expect("audit");
    assert_eq!(audit.bucket, "vantage-audit");
    assert!(audit.path_style, "path style defaults on with an endpoint");
    assert_eq!(
        audit.retention,
        Some(crate::config::s3::Retention {
            mode: crate::config::s3::LockMode::Compliance,
            days: 30
        })
    );
    let r = &config.restores[0];
    assert_eq!(r.name, "shop-nightly");
    assert_eq!(r.velero_namespace, "velero");
    assert_eq!(
        r.backup,
        BackupSource::Schedule {
            name: "shop-daily".into(),
            selection: Selection::Latest
        }
    );
    assert_eq!(r.source_namespaces, ["shop"]);
    assert_eq!(r.namespace_prefix, "vantage-restore-");
    assert_eq!(r.timezone, chrono_tz::Europe::Berlin);
    assert_eq!(r.readiness.timeout, Duration::from_secs(300));
    assert_eq!(r.readiness.workloads.len(), 2);
    assert_eq!(r.readiness.workloads[1].to_string(), "statefulset/db");
    assert_eq!(r.rto_target, Some(Duration::from_secs(45 * 60)));
    assert_eq!(r.isolation.egress[0].cidr, "10.20.0.0/16");
    assert_eq!(r.isolation.egress[0].ports, [5432]);
    assert_eq!(r.isolation.ingresses, IngressPolicy::Exclude);
    assert!(r.isolation.suspend_cronjobs);
    assert!(r.audit, "audit defaults on when [audit] is configured");
    let check = &r.checks[0];
    assert_eq!(check.limits.timeout, Duration::from_secs(20));
    assert_eq!(
        check.component,
        ComponentRef::Path(PathBuf::from("conf/checks/http.wasm"))
    );
    let vars = TemplateVars {
        namespace: "vantage-restore-shop-nightly-1a2b".into(),
        backup: "shop-daily-20261127030000".into(),
        namespaces: Vec::new(),
    };
    assert_eq!(
        check.targets[0].render(&vars),
        "http://api.vantage-restore-shop-nightly-1a2b.svc.cluster.local:8080/healthz"
    );
    assert_eq!(check.config[0].1.render(&vars), "shop-daily-20261127030000");
    assert_eq!(check.allow[0].0, "{target}");
}

#[test]
fn restore_names_share_the_check_namespace() {
    let text = format!(
        "[[check]]\nname = \"shop-nightly\"\ncomponent = \"a.wasm\"\nevery = \"1m\"\n\n{RESTORE}"
    );
    one_error(
        &text,
        7,
        "name",
        "duplicate restore test name \"shop-nightly\": line 2 already defines",
    );
}

#[test]
fn restore_errors_name_line_and_key() {
    let base = "[[restore]]\nname = \"r\"\nnamespaces = [\"shop\"]\nevery = \"24h\"\n";
    one_error(
        &format!("{base}schedule = \"s\"\nbackup = \"b\"\n"),
        6,
        "backup",
        "`schedule` and `backup` are both set",
    );
    one_error(
        "[[restore]]\nname = \"r\"\nschedule = \"s\"\nevery = \"24h\"\n",
        1,
        "namespaces",
        "missing: name the backup's namespaces",
    );
    one_error(
        &format!("{base}schedule = \"s\"\nselection = \"random\"\n"),
        6,
        "window",
        "needs a window",
    );
    one_error(
        &format!("{base}schedule = \"s\"\negress = [\"10.0.0.0/33\"]\n"),
        6,
        "egress",
        "prefix length must be 0 to 32",
    );
    one_error(
        &format!("{base}schedule = \"s\"\nready = [\"pod/api\"]\n"),
        6,
        "ready",
        "write \"deployment/NAME\"",
    );
    one_error(
        &format!("{base}schedule = \"s\"\naudit = true\n"),
        6,
        "audit",
        "no [audit] section",
    );
    one_error(
        &format!(
            "{base}schedule = \"s\"\n[[restore.check]]\nname = \"c\"\ncomponent = \"c.wasm\"\nevery = \"1m\"\n"
        ),
        9,
        "every",
        "does not apply to a restore check",
    );
    one_error(
        &format!(
            "{base}schedule = \"s\"\n[[restore.check]]\nname = \"c\"\ncomponent = \"c.wasm\"\ntargets = [\"http://{{{{namespce}}}}.svc\"]\n"
        ),
        9,
        "targets",
        "unknown placeholder {{namespce}}",
    );
}

#[test]
fn audit_errors_name_line_and_key() {
    one_error(
        "[audit]\nbucket = \"b\"\n",
        1,
        "signing_key",
        "records are signed",
    );
    one_error(
        "[audit]\nbucket = \"b\"\nsigning_key = \"env:K\"\nendpoint = \"http://s3.example.com\"\n",
        4,
        "endpoint",
        "TLS",
    );
    one_error(
        "[audit]\nbucket = \"b\"\nsigning_key = \"env:K\"\nlock_mode = \"strict\"\nlock_days = 1\n",
        4,
        "lock_mode",
        "expected \"compliance\" or \"governance\"",
    );
    one_error(
        "[audit]\nbucket = \"b\"\nsigning_key = \"env:K\"\ncheckpoint_every = \"30d\"\n",
        4,
        "checkpoint_every",
        "the maximum is 7d",
    );
    one_error(
        "[audit]\nbucket = \"b\"\nsigning_key = \"env:K\"\nprevious_signing_key = \"K\"\n",
        4,
        "previous_signing_key",
        "env:",
    );
}

#[test]
fn audit_checkpoints_and_previous_key_load() {
    let config = load_ok(&format!(
        "{AUDIT}checkpoint_every = \"10m\"\nprevious_signing_key = \"env:OLD_KEY\"\n"
    ));
    let audit = config.audit.as_ref().expect("audit");
    assert_eq!(audit.checkpoint_every, Duration::from_secs(600));
    assert_eq!(
        audit.previous_signing_key,
        Some(SecretSource::Env("OLD_KEY".into()))
    );
    let config = load_ok(AUDIT);
    assert_eq!(
        config.audit.as_ref().unwrap().checkpoint_every,
        Duration::from_secs(3600)
    );
}

#[test]
fn isolation_settings_load() {
    let text = "[[restore]]\nname = \"r\"\nnamespaces = [\"shop\"]\nevery = \"24h\"\nschedule = \"s\"\n\
        exclude_kinds = [\"secrets\", \"podmonitors.monitoring.coreos.com\"]\n\
        keep_kinds = [\"httpproxies.projectcontour.io\"]\n\
        neutralize_services = false\n\
        dns = [\"openshift-dns/dns.operator.openshift.io/daemonset-dns=default:5353\", \"169.254.20.10/32\"]\n\
        isolation_probe = [\"postgres.shop-prod.svc.cluster.local:5432\", \"[fd00::5]:6379\"]\n\
        probe_image = \"registry.example.com/busybox:1.37\"\n";
    let config = load_ok(text);
    let i = &config.restores[0].isolation;
    assert_eq!(
        i.exclude_kinds,
        ["secrets", "podmonitors.monitoring.coreos.com"]
    );
    assert_eq!(i.keep_kinds, ["httpproxies.projectcontour.io"]);
    assert!(!i.neutralize_services);
    assert_eq!(
        i.dns,
        [
            crate::config::DnsRule {
                peer: crate::config::DnsPeer::Pods {
                    namespace: "openshift-dns".into(),
                    labels: vec![(
                        "dns.operator.openshift.io/daemonset-dns".into(),
                        "default".into()
                    )],
                },
                port: 5353,
            },
            crate::config::DnsRule {
                peer: crate::config::DnsPeer::Cidr("169.254.20.10/32".into()),
                port: 53,
            },
        ]
    );
    assert_eq!(i.isolation_probe.len(), 2);
    assert_eq!(i.probe_image, "registry.example.com/busybox:1.37");

    // Defaults: kube-dns, services neutralised, no probe.
    let d = &load_ok(&format!("{AUDIT}\n{RESTORE}")).restores[0].isolation;
    assert_eq!(d.dns, [crate::config::DnsRule::default()]);
    assert!(d.neutralize_services && d.isolation_probe.is_empty());
}

#[test]
fn isolation_errors_name_line_and_key() {
    let base =
        "[[restore]]\nname = \"r\"\nnamespaces = [\"shop\"]\nevery = \"24h\"\nschedule = \"s\"\n";
    // A ttl the janitor would act on while the run still uses the namespace.
    one_error(
        &format!("{base}restore_timeout = \"2h\"\nready_timeout = \"30m\"\nttl = \"2h\"\n"),
        8,
        "ttl",
        "must be longer than restore_timeout + ready_timeout (2 h 30 m)",
    );
    one_error(
        &format!("{base}restore_timeout = \"7h\"\n"),
        6,
        "ttl",
        "ttl (6 h 0 m) must be longer",
    );
    one_error(
        &format!("{base}keep_kinds = [\"deployments.apps\"]\n"),
        6,
        "keep_kinds",
        "is not excluded by default",
    );
    one_error(
        &format!("{base}exclude_kinds = [\"HTTPRoute\"]\n"),
        6,
        "exclude_kinds",
        "plural.group",
    );
    one_error(
        &format!("{base}dns = [\"kube-system/k8s-app\"]\n"),
        6,
        "dns",
        "invalid dns",
    );
    one_error(
        &format!("{base}isolation_probe = [\"postgres.prod; rm -rf /:5432\"]\n"),
        6,
        "isolation_probe",
        "write HOST:PORT",
    );
    one_error(
        &format!("{base}egress = [\"169.254.169.254/32\"]\n"),
        6,
        "egress",
        "cloud metadata address",
    );
}

#[test]
fn egress_to_everything_is_warned_about() {
    let text = "[[restore]]\nname = \"r\"\nnamespaces = [\"shop\"]\nevery = \"24h\"\nschedule = \"s\"\negress = [\"0.0.0.0/0\", \"10.0.0.0/8\", \"::/0\"]\n";
    let config = load_ok(text);
    let w: Vec<String> = config
        .warnings
        .iter()
        .map(|d| d.to_string())
        .filter(|w| w.contains("key `egress`"))
        .collect();
    assert_eq!(w.len(), 2, "{w:#?}");
    assert!(w[0].starts_with(&format!("{FILE}:6:")), "{}", w[0]);
    assert!(
        w[0].contains("\"0.0.0.0/0\" lets the restored app"),
        "{}",
        w[0]
    );
}
