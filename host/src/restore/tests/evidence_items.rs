//! The failed items of a Restore's results file (`restore/evidence.rs`):
//! real gzip bytes shaped as Velero writes them (`putResults`,
//! pkg/controller/restore_controller.go: `json.NewEncoder(gzw).Encode` of
//! `{"warnings": results.Result, "errors": results.Result}`), a corrupt and
//! an oversized body, and what a run puts in its report and audit subject.

use super::stateful::{gzip, object_storage};
use super::*;
use crate::restore::evidence::{MAX_LISTED, MAX_MESSAGE_CHARS, MAX_RESULTS_JSON, failed_items};

/// Velero's results JSON as `json.Encoder` writes it (map keys sorted, a
/// trailing newline, empty lists omitted).
fn velero_results(errors: Value, warnings: Value) -> Vec<u8> {
    let mut text = serde_json::to_string(&json!({"errors": errors, "warnings": warnings})).unwrap();
    text.push('\n');
    text.into_bytes()
}

#[test]
fn results_list_errors_by_scope_bounded_and_count_all() {
    let shop: Vec<String> = (0..25)
        .map(|i| format!("error restoring persistentvolumeclaims/shop/data-db-{i}: admission webhook \"pvc.example.com\" denied the request"))
        .collect();
    let long = "x".repeat(MAX_MESSAGE_CHARS + 100);
    let gz = gzip(&velero_results(
        json!({
            "velero": ["error getting backup: timeout"],
            "cluster": ["error restoring persistentvolumes/pvc-1: volume snapshot not found"],
            "namespaces": {"billing": [long], "shop": shop}
        }),
        json!({"namespaces": {"shop": [
            "could not restore, ConfigMap \"kube-root-ca.crt\" already exists. Warning: the in-cluster version is different than the backed-up version",
            "could not restore, ServiceAccount \"default\" already exists",
            "could not restore, Secret \"db-credentials\" already exists"
        ]}}),
    ));
    let items = failed_items(&gz).expect("Velero's results read");
    assert_eq!(items.errors_total, 28);
    assert_eq!(items.errors.len(), MAX_LISTED);
    assert_eq!(items.errors[0], "velero: error getting backup: timeout");
    assert_eq!(
        items.errors[1],
        "cluster: error restoring persistentvolumes/pvc-1: volume snapshot not found"
    );
    // Namespaces in name order (Go's encoder sorts map keys), each message
    // cut to MAX_MESSAGE_CHARS characters.
    assert_eq!(
        items.errors[2],
        format!("namespace billing: {}…", "x".repeat(MAX_MESSAGE_CHARS))
    );
    assert!(
        items.errors[3]
            .starts_with("namespace shop: error restoring persistentvolumeclaims/shop/data-db-0:"),
        "{items:?}"
    );
    assert_eq!(items.warnings_total, 3);
    assert_eq!(items.warnings.len(), 3);
    assert_eq!(
        items.first_error().unwrap(),
        "velero: error getting backup: timeout (and 27 more)"
    );

    // A clean restore: Velero writes empty Results (`{}`).
    let clean = failed_items(&gzip(&velero_results(json!({}), json!({})))).unwrap();
    assert_eq!(clean, evidence::FailedItems::default());
    assert!(clean.first_error().is_none());
    // Go encodes a nil list inside a map as null.
    let nulls = failed_items(&gzip(
        br#"{"errors":{"namespaces":{"shop":null}},"warnings":{}}"#,
    ))
    .unwrap();
    assert_eq!(nulls.errors_total, 0);
}

#[test]
fn corrupt_and_oversized_results_are_refused_with_a_clear_message() {
    let good = gzip(&velero_results(
        json!({"namespaces": {"shop": ["error restoring pods/shop/api-1: boom"]}}),
        json!({}),
    ));
    // Not gzip at all (plain JSON), a damaged stream, a truncated one.
    let plain = velero_results(json!({}), json!({}));
    let mut damaged = good.clone();
    let mid = damaged.len() / 2;
    damaged[mid] ^= 0xff;
    damaged[mid + 1] ^= 0x55;
    let truncated = &good[..good.len() - 6];
    for (label, body) in [
        ("plain", plain.as_slice()),
        ("damaged", damaged.as_slice()),
        ("truncated", truncated),
    ] {
        let e = failed_items(body).expect_err(label);
        assert!(
            e.starts_with("not gzip-compressed as Velero writes it")
                || e.starts_with("not Velero's restore results JSON"),
            "{label}: {e}"
        );
    }
    // Valid gzip, not Velero's JSON.
    let e = failed_items(&gzip(b"<Error><Code>AccessDenied</Code></Error>")).unwrap_err();
    assert!(e.starts_with("not Velero's restore results JSON"), "{e}");

    // A gzip bomb: valid JSON (leading whitespace) just past the cap. It is
    // a few KiB stored and refused after MAX_RESULTS_JSON + 1 bytes.
    let mut bomb = vec![b' '; MAX_RESULTS_JSON as usize];
    bomb.extend_from_slice(b"{}");
    let gz = gzip(&bomb);
    assert!(gz.len() < 64 * 1024, "{}", gz.len());
    let e = failed_items(&gz).unwrap_err();
    assert_eq!(
        e,
        format!(
            "decompresses to more than 8 MiB ({} bytes stored): refused, not read further",
            gz.len()
        )
    );
    // Just under the cap is read.
    let mut fits = vec![b' '; MAX_RESULTS_JSON as usize - 2];
    fits.extend_from_slice(b"{}");
    assert!(failed_items(&gzip(&fits)).is_ok());
}

/// A run whose Restore ends PartiallyFailed, its results served by
/// "object storage" on loopback as `results`.
async fn partially_failed_run(run_id: &str, results: Vec<u8>) -> (Fake, RestoreReport) {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let ns = namespace::volatile_name("vantage-restore-", "shop", run_id);
    let log = gzip(b"time=\"2026-12-04T03:30:01Z\" level=info msg=\"restore completed\"\n");
    let base = object_storage(BTreeMap::from([
        (format!("/restores/{ns}/restore-{ns}-logs.gz"), log),
        (format!("/restores/{ns}/restore-{ns}-results.gz"), results),
    ]))
    .await;
    let mut world = healthy_world();
    world.stateful.download_base = Some(base);
    world.restore_statuses = vec![
        json!({"phase": "PartiallyFailed", "warnings": 1, "errors": 2,
        "startTimestamp": ts(Utc::now()), "completionTimestamp": ts(Utc::now())}),
    ];
    let fake = Fake::new(world);
    let report = fake.run(&spec(), run_id).await;
    (fake, report)
}

#[tokio::test]
async fn failed_items_reach_the_reason_the_result_and_the_audit_subject() {
    let results = gzip(&velero_results(
        json!({"namespaces": {"shop": [
            "error restoring persistentvolumeclaims/shop/data-db-0: admission webhook \"pvc.example.com\" denied the request",
            "error restoring deployments.apps/shop/api: deployments.apps \"api\" is forbidden: exceeded quota"
        ]}}),
        json!({"velero": ["Velero restore resource modifier: no rule matched"]}),
    ));
    let (fake, report) = partially_failed_run("run-items", results.clone()).await;
    assert_eq!(report.verdict, Verdict::Fail, "{}", report.reason);
    assert!(
        report.reason.ends_with(
            "; first failed item: namespace shop: error restoring persistentvolumeclaims/shop/data-db-0: admission webhook \"pvc.example.com\" denied the request (and 1 more)"
        ),
        "{}",
        report.reason
    );
    let e = report.evidence.clone().expect("evidence");
    assert!(e.fetch_errors.is_empty(), "{e:?}");
    assert_eq!(
        e.results.as_ref().unwrap().sha256,
        hex::encode(Sha256::digest(&results))
    );
    let items = e.failed_items.clone().expect("failed items");
    assert_eq!((items.errors_total, items.warnings_total), (2, 1));
    assert_eq!(
        items.warnings,
        ["velero: Velero restore resource modifier: no rule matched"]
    );

    // Shown as an assertion of the result.
    let shown = report.to_check_result();
    let a = shown
        .assertions
        .iter()
        .find(|a| a.name == "restore results: no failed items")
        .expect("an assertion for the results");
    assert!(!a.passed);
    assert!(
        a.detail.starts_with("2 error(s), 1 warning(s): namespace shop: error restoring persistentvolumeclaims/shop/data-db-0"),
        "{a:?}"
    );
    // In the audit subject (the serialized report).
    let subject = serde_json::to_value(&report).unwrap();
    assert_eq!(subject["evidence"]["failed_items"]["errors_total"], 2);
    assert_eq!(
        subject["evidence"]["failed_items"]["errors"][1],
        "namespace shop: error restoring deployments.apps/shop/api: deployments.apps \"api\" is forbidden: exceeded quota"
    );
    assert_full_cleanup(&fake, &report);
}

#[tokio::test]
async fn a_corrupt_or_oversized_results_file_is_named_and_its_digest_kept() {
    let mut bomb = vec![b' '; MAX_RESULTS_JSON as usize + 1024];
    bomb.extend_from_slice(b"{}");
    for (run_id, body, needle) in [
        (
            "run-corrupt",
            b"\x1f\x8b\x08\x00garbage".to_vec(),
            "RestoreResults: not gzip-compressed as Velero writes it",
        ),
        (
            "run-bomb",
            gzip(&bomb),
            "RestoreResults: decompresses to more than 8 MiB",
        ),
    ] {
        let (fake, report) = partially_failed_run(run_id, body.clone()).await;
        assert_eq!(report.verdict, Verdict::Fail, "{}", report.reason);
        assert!(
            !report.reason.contains("first failed item"),
            "{}",
            report.reason
        );
        let e = report.evidence.clone().expect("evidence");
        assert_eq!(e.fetch_errors.len(), 1, "{e:?}");
        assert!(e.fetch_errors[0].starts_with(needle), "{e:?}");
        assert!(e.failed_items.is_none());
        // Nothing lost: both digests are kept.
        assert!(e.log.is_some());
        assert_eq!(
            e.results,
            Some(evidence::StoredFile {
                sha256: hex::encode(Sha256::digest(&body)),
                bytes: body.len() as u64
            })
        );
        assert!(
            !report
                .to_check_result()
                .assertions
                .iter()
                .any(|a| a.name.starts_with("restore results")),
        );
        assert_full_cleanup(&fake, &report);
    }
}
