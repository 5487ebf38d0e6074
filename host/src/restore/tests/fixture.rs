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
