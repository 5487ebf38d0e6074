//! `[[restore]]` settings of stateful restore tests (`max_warnings`,
//! `max_backup_age`) and the warning about check targets the restore-mode
//! sandbox refuses.

use super::*;

const BASE: &str = r#"[[restore]]
name = "shop-nightly"
schedule = "shop-daily"
namespaces = ["shop"]
every = "24h"
"#;

fn check_with_target(target: &str) -> String {
    format!(
        "{BASE}\n[[restore.check]]\nname = \"api\"\ncomponent = \"checks/http.wasm\"\ntargets = [\"{target}\"]\nallow = [\"{{target}}\"]\n"
    )
}

#[test]
fn acceptance_bounds_load_and_default_off() {
    let c = load_ok(&check_with_target(
        "http://api.{{namespace}}.svc.cluster.local:8080/healthz",
    ));
    assert_eq!(c.restores[0].acceptance, Acceptance::default());
    assert!(c.warnings.is_empty(), "{}", shown(&c.warnings));

    let text = check_with_target("http://api.{{namespace}}.svc.cluster.local:8080/healthz")
        .replace(
            "every = \"24h\"\n",
            "every = \"24h\"\nmax_warnings = 0\nmax_backup_age = \"26h\"\n",
        );
    let c = load_ok(&text);
    assert_eq!(
        c.restores[0].acceptance,
        Acceptance {
            max_warnings: Some(0),
            max_backup_age: Some(Duration::from_secs(26 * 3600)),
            jobs: Vec::new(),
        }
    );
}

#[test]
fn acceptance_errors_name_line_and_key() {
    let text = BASE.replace(
        "every = \"24h\"\n",
        "every = \"24h\"\nmax_backup_age = \"soon\"\n",
    );
    let errors = load_err(&text);
    assert!(
        errors
            .iter()
            .any(|d| d.to_string().contains("max_backup_age")
                && d.to_string().contains("vantage.toml:6:")),
        "{}",
        shown(&errors)
    );
    let text = BASE.replace("every = \"24h\"\n", "every = \"24h\"\nmax_warnings = -1\n");
    let errors = load_err(&text);
    assert!(
        errors
            .iter()
            .any(|d| d.to_string().contains("max_warnings")),
        "{}",
        shown(&errors)
    );
}

#[test]
fn targets_the_restore_sandbox_refuses_are_warned_about() {
    // Production's Service: a cluster address outside the volatile
    // namespace, refused at run time.
    let c = load_ok(&check_with_target(
        "http://api.shop.svc.cluster.local:8080/healthz",
    ));
    let w = shown(&c.warnings);
    assert_eq!(c.warnings.len(), 1, "{w}");
    assert!(
        w.contains("vantage.toml:10:")
            && w.contains("targets")
            && w.contains("names a Service in namespace \"shop\"")
            && w.contains("http://api.{{namespace}}.svc.cluster.local"),
        "{w}"
    );
    // The short form and pod names too.
    let c = load_ok(&check_with_target("tcp://db.shop.svc:5432"));
    assert_eq!(c.warnings.len(), 1, "{}", shown(&c.warnings));
    let c = load_ok(&check_with_target(
        "http://10-244-1-5.shop.pod.cluster.local:80",
    ));
    assert!(
        shown(&c.warnings).contains("names a pod"),
        "{}",
        shown(&c.warnings)
    );
    // The volatile namespace's own Services, and names outside the cluster:
    // no warning.
    for ok in [
        "http://api.{{namespace}}.svc.cluster.local:8080/",
        "tcp://db.{{namespace}}.svc:5432",
        "https://api.example.com/",
    ] {
        let c = load_ok(&check_with_target(ok));
        assert!(c.warnings.is_empty(), "{ok}: {}", shown(&c.warnings));
    }
}
