//! Taking over a restore run in flight (`vantage::restore::adopt`), against
//! the in-process API server (which plays Velero): a run whose runner died
//! mid-way is found by its Restore and finished by the next runner without
//! a second Restore; objects that are not the run's own are never taken
//! over; a cancelled run whose cleanup cannot finish in its budget stops
//! acting and leaves the run to be adopted.

use std::time::{Duration, Instant, SystemTime};

use serde_json::json;
use vantage::config::{RestoreCheck, RestoreSpec, TemplateVars};
use vantage::restore::{self, Adoption, RunInfo, RunOptions, ValidationRunner};
use vantage::result::CheckResult;

use crate::kube_fake::FakeKube;
use crate::restore_daemon::{NAMESPACES, RESTORES, ready_deployment, seed_velero};

const CONFIGMAPS: &str = "/api/v1/namespaces/velero/configmaps";

/// The restore tests here have no checks.
struct NoChecks;

impl ValidationRunner for NoChecks {
    fn run<'a>(
        &'a self,
        check: &'a RestoreCheck,
        _: &'a TemplateVars,
        _: &'a RunInfo,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = CheckResult> + Send + 'a>> {
        panic!("no check is configured, yet {} ran", check.name)
    }
}

/// A restore test that stays in flight until a Deployment `never` is ready
/// in its namespace.
fn spec(kube: &FakeKube, dir: &std::path::Path) -> RestoreSpec {
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(&kubeconfig, kube.kubeconfig()).unwrap();
    let text = format!(
        r#"
[[restore]]
name = "shop-restore"
kubeconfig = "{}"
schedule = "shop-daily"
namespaces = ["shop"]
every = "1h"
ready = ["deployment/never"]
ready_timeout = "1m"
poll_interval = "50ms"
"#,
        kubeconfig.display()
    );
    let config = vantage::config::from_str(&text, &dir.join("vantage.toml")).unwrap();
    config.restores.into_iter().next().unwrap()
}

fn options(run_id: &str) -> RunOptions {
    let mut o = RunOptions::new(run_id, "e2e");
    o.pacing.poll_interval = Duration::from_millis(50);
    o
}

/// The API server (playing Velero), a restore test against it, a client.
async fn setup() -> (FakeKube, tempfile::TempDir, RestoreSpec, kube::Client) {
    let kube = FakeKube::start().await;
    seed_velero(&kube);
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(&kube, dir.path());
    let client = restore::client(&spec.cluster).await.unwrap();
    (kube, dir, spec, client)
}

/// Options taking over run `run_id`, which restores `backup` and started
/// at `started`.
fn adopting(run_id: &str, backup: impl Into<String>, started: SystemTime) -> RunOptions {
    let mut o = options(run_id);
    o.adopt = Some(Adoption {
        backup: backup.into(),
        started,
    });
    o
}

/// Cancel `run` while the API server hangs: it ends within its 500 ms
/// budget (and some slack); its report, and how many requests had been
/// sent by then. The API server answers at once again afterwards.
async fn cancel_within_budget(
    kube: &FakeKube,
    cancel: &tokio::sync::watch::Sender<bool>,
    run: tokio::task::JoinHandle<restore::RestoreReport>,
) -> (restore::RestoreReport, usize) {
    let at = Instant::now();
    cancel.send(true).unwrap();
    let report = run.await.unwrap();
    let took = at.elapsed();
    let sent = kube.log().len();
    kube.set_delay(None);
    assert!(took < Duration::from_millis(1500), "{took:?}");
    (report, sent)
}

/// Panics, with its reason, unless `report`'s verdict is `pass`.
fn assert_passed(report: &restore::RestoreReport) {
    assert_eq!(
        report.verdict,
        vantage::audit::Verdict::Pass,
        "{}",
        report.reason
    );
}

/// Panics unless `report`'s verdict is `error` with a reason containing
/// `text`.
fn assert_error_with(report: &restore::RestoreReport, text: &str) {
    assert_eq!(report.verdict, vantage::audit::Verdict::Error);
    assert!(report.reason.contains(text), "{}", report.reason);
}

/// Panics unless `report`'s cleanup was cut short after its 500 ms budget.
fn assert_cut_short(report: &restore::RestoreReport) {
    assert!(
        report
            .cleanup
            .errors
            .iter()
            .any(|e| e.contains("cut short after 500 ms")),
        "{:?}",
        report.cleanup
    );
}

fn volatile(kube: &FakeKube) -> Vec<String> {
    kube.names(NAMESPACES)
        .into_iter()
        .filter(|n| n.starts_with("vantage-restore-"))
        .collect()
}

/// Wait until `what` holds (at most 20 s).
async fn until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Start a run of `spec` as `run_id` and wait until Velero finished its
/// Restore and the run waits for readiness (where it stays).
async fn run_in_flight(
    kube: &FakeKube,
    client: &kube::Client,
    spec: &RestoreSpec,
    options: RunOptions,
    cancel: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<restore::RestoreReport> {
    let (client, spec2) = (client.clone(), spec.clone());
    let task = tokio::spawn(async move {
        restore::run_cancellable(&client, &spec2, &options, &NoChecks, cancel).await
    });
    until(
        "the Restore completed and the run waiting for readiness",
        || {
            let restores = kube.names(RESTORES);
            let done = restores
                .first()
                .and_then(|r| kube.object(RESTORES, r))
                .is_some_and(|r| r["status"]["phase"] == "Completed");
            let ns = volatile(kube);
            done && ns.first().is_some_and(|ns| {
                kube.log()
                    .iter()
                    .any(|l| l.contains(&format!("/namespaces/{ns}/deployments")))
            })
        },
    )
    .await;
    task
}

fn count(kube: &FakeKube, line: &str) -> usize {
    kube.log().iter().filter(|l| *l == line).count()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_whose_runner_died_is_found_and_finished_without_a_second_restore() {
    let (kube, _dir, spec, client) = setup().await;
    let run_id = "19adf5e4c00-slot";
    let started = SystemTime::now();
    let (_keep, never) = tokio::sync::watch::channel(false);
    // The first runner dies mid-run: nothing of its cleanup happens.
    let first = run_in_flight(&kube, &client, &spec, options(run_id), never).await;
    first.abort();
    let _ = first.await;
    let ns = volatile(&kube);
    assert_eq!(ns.len(), 1, "{ns:?}");
    // Nobody runs it for a while.
    tokio::time::sleep(Duration::from_millis(300)).await;

    // The next runner finds the run by its Restore.
    let found = restore::adopt::find(&client, &spec, chrono::Utc::now(), |_| true)
        .await
        .unwrap()
        .expect("the run in flight");
    assert_eq!(found.run_id, run_id);
    assert_eq!(found.backup, "shop-daily-20261127030000");
    assert_eq!(found.phase, "Completed");
    // When the first run started, as its Restore says.
    let first_start = found.started;
    assert!(
        first_start >= started - Duration::from_millis(1)
            && first_start <= started + Duration::from_secs(1),
        "{first_start:?} vs {started:?}"
    );
    // A runner that is running it itself (the filter) finds nothing.
    let mine = restore::adopt::find(&client, &spec, chrono::Utc::now(), |id| id != run_id)
        .await
        .unwrap();
    assert_eq!(mine, None);

    ready_deployment(&kube, &ns[0], "never");
    let adopting = adopting(&found.run_id, found.backup.clone(), started);
    let report = restore::run(&client, &spec, &adopting, &NoChecks).await;
    assert_passed(&report);
    assert!(report.adopted);
    assert!(
        report.reason.contains("taken over here"),
        "{}",
        report.reason
    );
    assert_eq!(report.namespace.as_deref(), Some(ns[0].as_str()));
    // The RTO counts from the first start.
    let since = started.elapsed().unwrap().as_secs_f64();
    let total = report.timings.total_seconds.unwrap();
    assert!(total >= 0.3 && total <= since, "{total} vs {since}");
    assert_eq!(
        report.started_unix_ms,
        started
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
    );

    // One Restore and one namespace were ever created; the isolation was
    // put back as configured; everything is gone afterwards.
    assert_eq!(count(&kube, &format!("POST {RESTORES}")), 1);
    assert_eq!(count(&kube, &format!("POST {NAMESPACES}")), 1);
    assert_eq!(
        count(
            &kube,
            &format!(
                "PUT /apis/networking.k8s.io/v1/namespaces/{}/networkpolicies/vantage-isolation",
                ns[0]
            )
        ),
        1
    );
    assert!(volatile(&kube).is_empty(), "{:?}", volatile(&kube));
    assert!(kube.names(RESTORES).is_empty());
    assert!(
        kube.names(CONFIGMAPS).is_empty(),
        "{:?}",
        kube.names(CONFIGMAPS)
    );
    assert!(report.cleanup.errors.is_empty(), "{:?}", report.cleanup);
    let again = restore::adopt::find(&client, &spec, chrono::Utc::now(), |_| true)
        .await
        .unwrap();
    assert_eq!(again, None); // deploy/rbac.yaml grants every request of both runs.
    crate::rbac::assert_granted(&kube.log());
}

#[tokio::test(flavor = "multi_thread")]
async fn what_is_not_the_runs_own_is_never_taken_over_or_deleted() {
    let (kube, _dir, spec, client) = setup().await;
    let run_id = "19adf5e4c01-slot";
    let (_keep, never) = tokio::sync::watch::channel(false);
    let first = run_in_flight(&kube, &client, &spec, options(run_id), never).await;
    first.abort();
    let _ = first.await;
    // Adopting with the wrong backup: refused, nothing touched.
    let wrong = adopting(run_id, "shop-daily-other", SystemTime::now());
    let report = restore::run(&client, &spec, &wrong, &NoChecks).await;
    assert_error_with(
        &report,
        "restores backup shop-daily-20261127030000, not shop-daily-other",
    );
    assert_eq!(kube.names(RESTORES).len(), 1);
    assert_eq!(volatile(&kube).len(), 1);

    // Someone else's namespace now has the run's name.
    let ns = volatile(&kube).remove(0);
    let mut foreign = kube.object(NAMESPACES, &ns).unwrap();
    foreign["metadata"]["labels"] = json!({"team": "payments"});
    kube.insert(NAMESPACES, foreign);
    let before = kube.log().len();
    let adopting = adopting(run_id, "shop-daily-20261127030000", SystemTime::now());
    let report = restore::run(&client, &spec, &adopting, &NoChecks).await;
    assert_error_with(
        &report,
        &format!("namespace/{ns} exists but is not this run's"),
    );
    // The namespace is untouched: nothing but reads reached it.
    let kept = kube.object(NAMESPACES, &ns).expect("the namespace kept");
    assert_eq!(kept["metadata"]["labels"], json!({"team": "payments"}));
    let touched: Vec<String> = kube.log()[before..]
        .iter()
        .filter(|l| !l.starts_with("GET") && l.contains(&ns))
        .cloned()
        .collect();
    assert!(touched.is_empty(), "{touched:?}");
    // The run's own Restore (finished) was cleaned up.
    assert!(kube.names(RESTORES).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancelled_run_stops_acting_within_its_budget_and_the_next_runner_adopts_it() {
    let (kube, _dir, spec, client) = setup().await;
    let run_id = "19adf5e4c03-slot";
    let (cancel, cancelled) = tokio::sync::watch::channel(false);
    let mut first_options = options(run_id);
    first_options.cancelled_cleanup_within = Some(Duration::from_millis(500));
    let started = SystemTime::now();
    let first = run_in_flight(&kube, &client, &spec, first_options, cancelled).await;
    // The API server hangs; the runner stops leading and cancels.
    kube.set_delay(Some(Duration::from_secs(2)));
    let (report, sent) = cancel_within_budget(&kube, &cancel, first).await;
    assert_eq!(report.verdict, vantage::audit::Verdict::Error);
    assert!(report.reason.starts_with("cancelled"), "{}", report.reason);
    assert_cut_short(&report);
    assert!(!report.cleanup.namespace_deleted && !report.cleanup.restore_deleted);
    // Requests sent before the cut are still answered late: let them land.
    // None was sent after it.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(kube.log().len(), sent, "{:?}", &kube.log()[sent..]);
    assert_eq!(kube.names(RESTORES).len(), 1);

    // The next runner adopts what was left and finishes the slot.
    let found = restore::adopt::find(&client, &spec, chrono::Utc::now(), |_| true)
        .await
        .unwrap()
        .expect("the cancelled run, left in flight");
    assert_eq!(found.run_id, run_id);
    ready_deployment(&kube, &volatile(&kube)[0], "never");
    let adopting = adopting(run_id, found.backup, started);
    let report = restore::run(&client, &spec, &adopting, &NoChecks).await;
    assert_passed(&report);
    assert_eq!(count(&kube, &format!("POST {RESTORES}")), 1);
    assert!(volatile(&kube).is_empty() && kube.names(RESTORES).is_empty());
    crate::rbac::assert_granted(&kube.log());
}

/// Make the Restore of run `run_id` of `spec` stay `InProgress`.
fn stuck(kube: &FakeKube, spec: &RestoreSpec, run_id: &str) -> String {
    let name = restore::restore_object::restore_name(&spec.namespace_prefix, &spec.name, run_id);
    kube.store
        .lock()
        .unwrap()
        .stuck_restores
        .insert(name.clone());
    name
}

/// Start a run and wait until its Restore exists (Velero restoring).
async fn run_restoring(
    kube: &FakeKube,
    client: &kube::Client,
    spec: &RestoreSpec,
    run_id: &str,
) -> tokio::task::JoinHandle<restore::RestoreReport> {
    let (client, spec2, options) = (client.clone(), spec.clone(), options(run_id));
    let task =
        tokio::spawn(async move { restore::run(&client, &spec2, &options, &NoChecks).await });
    until("the Restore created", || !kube.names(RESTORES).is_empty()).await;
    task
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_take_over_of_a_restore_still_restoring_leaves_its_namespaces() {
    let (kube, _dir, spec, client) = setup().await;
    let run_id = "19adf5e4c04-slot";
    let restore_name = stuck(&kube, &spec, run_id);
    let first = run_restoring(&kube, &client, &spec, run_id).await;
    first.abort();
    let _ = first.await;
    let found = restore::adopt::find(&client, &spec, chrono::Utc::now(), |_| true)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.phase, "InProgress");
    // Its NetworkPolicy is not the run's any more.
    let ns = volatile(&kube).remove(0);
    let policies = format!("/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies");
    let mut policy = kube.object(&policies, "vantage-isolation").unwrap();
    policy["metadata"]["labels"] = json!({"team": "payments"});
    kube.insert(&policies, policy);
    let adopting = adopting(run_id, found.backup, found.started);
    let report = restore::run(&client, &spec, &adopting, &NoChecks).await;
    assert_error_with(
        &report,
        "networkpolicy/vantage-isolation exists but is not this run's",
    );
    // Velero may still restore into the namespace: it stays (Velero would
    // re-create it without Vantage's labels and isolation), and so does
    // the Restore, for the janitor.
    assert!(kube.object(NAMESPACES, &ns).is_some());
    assert!(kube.object(RESTORES, &restore_name).is_some());
    assert!(
        report
            .cleanup
            .left_to_janitor
            .iter()
            .any(|l| l.starts_with(&format!("namespace/{ns}"))),
        "{:?}",
        report.cleanup
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_start_of_a_slot_is_refused_and_leaves_the_first_alone() {
    let (kube, _dir, spec, client) = setup().await;
    let run_id = "19adf5e4c05-slot";
    let restore_name = stuck(&kube, &spec, run_id);
    let first = run_restoring(&kube, &client, &spec, run_id).await;
    let ns = volatile(&kube).remove(0);
    let before = kube.log().len();
    // The same slot started again, not as a take-over (a handover gone
    // wrong): the API server refuses it, and it deletes nothing.
    let second = restore::run(&client, &spec, &options(run_id), &NoChecks).await;
    assert_eq!(second.verdict, vantage::audit::Verdict::Error);
    assert!(
        second.reason.contains("409") && second.reason.contains("left alone"),
        "{}",
        second.reason
    );
    let writes: Vec<String> = kube.log()[before..]
        .iter()
        .filter(|l| l.starts_with("DELETE") || l.starts_with("PUT") || l.starts_with("PATCH"))
        .cloned()
        .collect();
    assert!(writes.is_empty(), "{writes:?}");
    assert!(kube.object(NAMESPACES, &ns).is_some());
    assert!(kube.object(RESTORES, &restore_name).is_some());
    first.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_with_a_verdict_is_not_taken_over_though_its_restore_is_left() {
    let (kube, _dir, mut spec, client) = setup().await;
    spec.restore_timeout = Duration::from_millis(300);
    let run_id = "19adf5e4c06-slot";
    let restore_name = stuck(&kube, &spec, run_id);
    // Velero never finishes: the run fails on its restore timeout and
    // leaves the Restore (still restoring) and the namespace to the janitor.
    let report = restore::run(&client, &spec, &options(run_id), &NoChecks).await;
    assert_eq!(
        report.verdict,
        vantage::audit::Verdict::Fail,
        "{}",
        report.reason
    );
    let left = kube
        .object(RESTORES, &restore_name)
        .expect("left to the janitor");
    assert_eq!(
        left["metadata"]["annotations"][restore::adopt::REPORTED_ANNOTATION],
        "fail"
    );
    // A later start of the test does not take it over (its verdict is out).
    let found = restore::adopt::find(&client, &spec, chrono::Utc::now(), |_| true)
        .await
        .unwrap();
    assert_eq!(found, None);
    crate::rbac::assert_granted(&kube.log());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancel_that_comes_during_cleanup_bounds_it_too() {
    let (kube, _dir, mut spec, client) = setup().await;
    // The verdict comes fast: `never` is not ready within 200 ms.
    spec.readiness.timeout = Duration::from_millis(200);
    let (cancel, cancelled) = tokio::sync::watch::channel(false);
    let mut options = options("19adf5e4c07-slot");
    options.cancelled_cleanup_within = Some(Duration::from_millis(500));
    let run = tokio::spawn({
        let (client, spec) = (client.clone(), spec.clone());
        async move { restore::run_cancellable(&client, &spec, &options, &NoChecks, cancelled).await }
    });
    // Velero is done; then every answer takes 3 s: the readiness poll
    // ends the steps (fail), and the run is keeping the evidence (a request
    // hanging) when it is cancelled.
    until("the Restore completed", || {
        kube.names(RESTORES)
            .first()
            .and_then(|r| kube.object(RESTORES, r))
            .is_some_and(|r| r["status"]["phase"] == "Completed")
    })
    .await;
    kube.set_delay(Some(Duration::from_secs(3)));
    until("the evidence requested", || {
        kube.log().iter().any(|l| l.ends_with("/downloadrequests"))
    })
    .await;
    let (report, sent) = cancel_within_budget(&kube, &cancel, run).await;
    // Its own verdict stands (it was decided before the cancel).
    assert_eq!(
        report.verdict,
        vantage::audit::Verdict::Fail,
        "{}",
        report.reason
    );
    assert!(report.reason.contains("not ready"), "{}", report.reason);
    assert_cut_short(&report);
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_eq!(kube.log().len(), sent, "{:?}", &kube.log()[sent..]);
}
