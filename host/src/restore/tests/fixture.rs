//! Scaffolding every fake-API restore test shares: running a spec with the
//! default scripted checks, judging a report, and routing requests.

use super::*;

/// The prefix of every Velero path the fake routes (the Velero namespace is
/// always `velero`); [`Recorded::parts`] shortens it to `velero`.
const VELERO_PREFIX: &[&str] = &["apis", "velero.io", "v1", "namespaces", "velero"];

impl Recorded {
    /// The path's segments, with `apis/velero.io/v1/namespaces/velero`
    /// shortened to `velero` (so a route reads `["velero", "restores"]`).
    pub(super) fn parts(&self) -> Vec<&str> {
        let parts: Vec<&str> = self.path.trim_start_matches('/').split('/').collect();
        match parts.strip_prefix(VELERO_PREFIX) {
            Some(rest) => std::iter::once("velero")
                .chain(rest.iter().copied())
                .collect(),
            None => parts,
        }
    }
}

impl Fake {
    /// Run `spec` against this fake as run `run_id`, the checks answered by
    /// the default [`ScriptedRunner`].
    pub(super) async fn run(&self, spec: &RestoreSpec, run_id: &str) -> RestoreReport {
        run(
            &self.client,
            spec,
            &options(run_id),
            &ScriptedRunner::default(),
        )
        .await
    }
}

impl Fake {
    /// The names of the namespaces the fake cluster holds now.
    pub(super) fn namespace_names(&self) -> Vec<String> {
        let world = self.world.lock().unwrap();
        world
            .namespaces
            .iter()
            .map(|n| name_of(n).to_string())
            .collect()
    }
}

/// Where `needle` stands in `calls` (see [`Fake::calls`]); panics, listing
/// them, if it is not there.
pub(super) fn position_of(calls: &[String], needle: &str) -> usize {
    calls
        .iter()
        .position(|c| c == needle)
        .unwrap_or_else(|| panic!("no {needle} in {calls:#?}"))
}

/// The probe pod's `status` once it terminated with `exit` and `message`.
pub(super) fn probe_terminated(exit: i32, message: &str) -> Value {
    json!({
        "phase": if exit == 0 { "Succeeded" } else { "Failed" },
        "containerStatuses": [{"name": "probe", "image": "busybox:1.37", "imageID": "",
            "ready": false, "restartCount": 0,
            "state": {"terminated": {"exitCode": exit, "message": message, "reason": "Completed"}}}]
    })
}

/// A workload to wait for.
pub(super) fn workload(kind: WorkloadKind, name: &str) -> Workload {
    Workload {
        kind,
        name: name.into(),
    }
}

/// Panics unless `report` failed with a reason that contains `text`.
pub(super) fn assert_fails_with(report: &RestoreReport, text: &str) {
    assert_eq!(report.verdict, Verdict::Fail, "{}", report.reason);
    assert!(report.reason.contains(text), "{}", report.reason);
}

/// Whether `s` is a DNS label (RFC 1123): what Kubernetes accepts as a
/// namespace name.
pub(in crate::restore) fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}
