//! A data job's log lines are redacted of the Secret values its env
//! references (`restore/job/secrets.rs`): the values come from Secrets
//! restored into the volatile namespace, which the host never saw.

use base64::Engine as _;

use super::stateful::{FAKE_USER, data_job, script};
use super::*;
use crate::capabilities::secrets::fragments;

const PASSWORD: &str = "Tr0ub4dor&3-pr0d-S3kr1t";

/// The job's log: the password whole, cut, URL-encoded in a DSN and
/// base64-encoded in a basic-auth header, then the answer `t`.
fn leaky_log() -> String {
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("app:{PASSWORD}"));
    format!(
        "PGPASSWORD={PASSWORD}\nretrying with ...4dor&3-pr0...\nDSN postgres://app:Tr0ub4dor%263-pr0d-S3kr1t@db/shop\nAuthorization: Basic {basic}\nt\n"
    )
}

fn leaky_world() -> World {
    let mut world = healthy_world();
    world.stateful.job_scripts = BTreeMap::from([script("orders-recent", Some(0), leaky_log())]);
    // As Velero restores it (a trailing newline, as `kubectl create secret
    // --from-file` keeps it).
    world.stateful.secrets = vec![json!({
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": "db-credentials", "labels": {"velero.io/restore-name": "x"}},
        "data": {
            "password": base64::engine::general_purpose::STANDARD.encode(format!("{PASSWORD}\n")),
            "username": base64::engine::general_purpose::STANDARD.encode("app"),
        }
    })];
    world
}

#[track_caller]
fn assert_no_fragment(what: &str, text: &str) {
    for f in fragments(PASSWORD) {
        assert!(!text.contains(f), "{what} holds {f:?}: {text}");
    }
}

#[tokio::test]
async fn a_job_echoing_its_secret_env_leaks_no_fragment_of_it() {
    let mut spec = spec();
    spec.acceptance.jobs = vec![data_job("orders-recent", Some("t"))];
    let fake = Fake::new(leaky_world());
    let report = fake.run(&spec, "run-leak").await;
    // The verdict still reads the log as written.
    assert_eq!(report.verdict, Verdict::Pass, "{}", report.reason);
    let j = &report.jobs[0];
    assert!(j.passed, "{j:?}");
    assert_eq!(j.log_tail.len(), 5, "{j:?}");
    assert_eq!(j.log_tail[0], "PGPASSWORD=[redacted]");
    assert_eq!(j.log_tail[4], "t");
    assert!(
        j.log_tail[1..4].iter().all(|l| l.contains("[redacted]")),
        "{j:?}"
    );

    // Neither the report (the audit subject) nor the result shown holds any
    // 6-character fragment of the password.
    assert_no_fragment("report", &serde_json::to_string(&report).unwrap());
    assert_no_fragment(
        "result",
        &serde_json::to_string(&report.to_check_result()).unwrap(),
    );

    // The read went through a RoleBinding in the volatile namespace only,
    // granting the ClusterRole to Vantage itself; the refused first read
    // (the authorizer's lag) was retried.
    let ns = report.namespace.clone().unwrap();
    let bindings = fake.posted("/rolebindings");
    assert_eq!(bindings.len(), 1);
    assert_eq!(bindings[0]["metadata"]["namespace"], json!(ns));
    assert_eq!(
        bindings[0]["roleRef"],
        json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "vantage-job-secrets"})
    );
    assert_eq!(
        bindings[0]["subjects"],
        json!([{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": FAKE_USER}])
    );
    let reads = fake
        .requests()
        .iter()
        .filter(|r| {
            r.is(
                "GET",
                &format!("/api/v1/namespaces/{ns}/secrets/db-credentials"),
            )
        })
        .count();
    assert_eq!(reads, 2);
    assert_full_cleanup(&fake, &report);
}

#[tokio::test]
async fn a_failing_job_that_leaks_is_redacted_in_the_verdict_too() {
    let mut world = leaky_world();
    world.stateful.job_scripts.extend([script(
        "schema",
        Some(2),
        format!("psql: error: password authentication failed for \"{PASSWORD}\"\n"),
    )]);
    let mut spec = spec();
    spec.acceptance.jobs = vec![data_job("schema", None)];
    let fake = Fake::new(world);
    let report = fake.run(&spec, "run-leak-fail").await;
    assert_eq!(report.verdict, Verdict::Fail, "{}", report.reason);
    assert!(
        report
            .reason
            .ends_with("psql: error: password authentication failed for \"[redacted]\")"),
        "{}",
        report.reason
    );
    assert_no_fragment("report", &serde_json::to_string(&report).unwrap());
    assert_no_fragment(
        "result",
        &serde_json::to_string(&report.to_check_result()).unwrap(),
    );
}

#[tokio::test]
async fn unreadable_secret_values_withhold_the_log() {
    // The admission policy (or missing RBAC) refuses the binding.
    let mut world = leaky_world();
    world.extra = Some(Box::new(|r: &Recorded| {
        (r.method == "POST" && r.path.ends_with("/rolebindings")).then(|| {
            (
                403,
                status(
                    403,
                    "Forbidden",
                    "rolebindings.rbac.authorization.k8s.io is forbidden: ValidatingAdmissionPolicy 'vantage-restore-namespaced-objects' denied request",
                ),
            )
        })
    }));
    let mut spec = spec();
    spec.acceptance.jobs = vec![data_job("orders-recent", Some("t"))];
    let fake = Fake::new(world);
    let report = fake.run(&spec, "run-withheld").await;
    assert_eq!(report.verdict, Verdict::Pass, "{}", report.reason);
    let ns = report.namespace.clone().unwrap();
    assert_eq!(
        report.jobs[0].log_tail,
        [format!(
            "(5 log line(s) withheld: binding vantage-job-secrets in {ns} to read the referenced Secrets: 403 Forbidden: rolebindings.rbac.authorization.k8s.io is forbidden: ValidatingAdmissionPolicy 'vantage-restore-namespaced-objects' denied request)"
        )]
    );
    assert_no_fragment("report", &serde_json::to_string(&report).unwrap());

    // A job with no Secret in its env: nothing to read, the log as written.
    let mut world = healthy_world();
    world.stateful.job_scripts = BTreeMap::from([script("plain", Some(0), "orders: 1234\n")]);
    let mut job = data_job("plain", Some("orders"));
    job.env
        .retain(|(_, v)| !matches!(v, crate::config::JobEnv::Secret { .. }));
    let mut spec = super::spec();
    spec.acceptance.jobs = vec![job];
    let fake = Fake::new(world);
    let report = fake.run(&spec, "run-plain").await;
    assert_eq!(report.verdict, Verdict::Pass, "{}", report.reason);
    assert_eq!(report.jobs[0].log_tail, ["orders: 1234"]);
    assert!(fake.posted("/rolebindings").is_empty());
    assert!(fake.posted("/selfsubjectreviews").is_empty());
}
