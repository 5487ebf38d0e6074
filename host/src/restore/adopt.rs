//! Taking over a run in flight: a run of the same (test, slot) that another
//! replica, or an earlier process of this one, started and did not finish
//! (a leader that died mid-run, a daemon restarted mid-run).
//!
//! A run's objects are named from its run id, the same on every replica
//! for a slot, so a second *start* of a slot is refused by the API server
//! (409, and the refused run cleans up nothing of the other's). Adoption is
//! the other half: [`find`] looks for the newest run of a test whose Velero
//! Restore is still there, not being deleted and not left behind with a
//! verdict ([`REPORTED_ANNOTATION`]), and
//! [`crate::restore::run`] with [`RunOptions::adopt`](super::RunOptions::adopt)
//! set then takes over what that run made instead of creating it:
//!
//! - the backup is the one its Restore names (`spec.backupName`), described
//!   as of the first start, not picked or judged again;
//! - the Restore first, then everything made before it (the volatile
//!   namespaces and their NetworkPolicies) must exist, carry the run's
//!   labels and not be being deleted ([`claim`]), else the run ends in
//!   `error` and touches nothing it did not verify; the NetworkPolicy is
//!   replaced by the one the configuration builds now;
//! - the Restore is waited for, not created; the probe pod and the data
//!   Jobs, if the first run got that far, are waited for too;
//! - the RTO counts from the first run's start ([`STARTED_ANNOTATION`]).
//!
//! No object is ever taken over without the run's labels (test and run
//! id): a name collision with something else is an error, never adopted.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::time::SystemTime;

use chrono::{DateTime, SecondsFormat, Utc};
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;

use super::describe_kube_error;
use super::mapping::PREFIX_ANNOTATION;
use super::namespace::{self, EXPIRES_AT_ANNOTATION, MANAGED_BY, MANAGED_BY_LABEL, TEST_LABEL};
use super::restore_object::restore_name;
use super::velero::{Restore, RestorePhase};
use crate::config::RestoreSpec;

/// Annotation of a run's Restore: when the run started (RFC 3339, ms).
pub const STARTED_ANNOTATION: &str = "vantage.dev/run-started-at";
/// Annotation of a run's Restore left behind after its verdict (Velero
/// still restoring, or its deletion failed): the verdict. Such a Restore is
/// the janitor's, never adopted.
pub const REPORTED_ANNOTATION: &str = "vantage.dev/reported";

/// Taking over a run that was started elsewhere (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adoption {
    /// The backup its Restore restores.
    pub backup: String,
    /// When that run started: the RTO counts from here, and the backup's
    /// age is judged as of then.
    pub started: SystemTime,
}

/// A run of a restore test whose Restore is still there: it can be adopted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InFlight {
    /// Its run id.
    pub run_id: String,
    /// Its Velero Restore.
    pub restore: String,
    /// The backup the Restore restores.
    pub backup: String,
    /// The Restore's phase when found.
    pub phase: String,
    /// When the run started ([`STARTED_ANNOTATION`]).
    pub started: SystemTime,
}

/// The newest run of `spec` whose run id `wanted` accepts and that can be
/// adopted as of `now` (see [`adoptable`]).
pub async fn find(
    client: &kube::Client,
    spec: &RestoreSpec,
    now: DateTime<Utc>,
    wanted: impl Fn(&str) -> bool,
) -> Result<Option<InFlight>, kube::Error> {
    let restores: Api<Restore> = Api::namespaced(client.clone(), &spec.velero_namespace);
    let selector = format!(
        "{MANAGED_BY_LABEL}={MANAGED_BY},{TEST_LABEL}={}",
        namespace::label_value(&spec.name)
    );
    let listed = restores
        .list(&ListParams::default().labels(&selector))
        .await?;
    let newest = listed
        .items
        .into_iter()
        .filter_map(|r| adoptable(spec, &r, now, &wanted))
        .max_by(|a, b| a.started.cmp(&b.started).then(a.run_id.cmp(&b.run_id)));
    Ok(newest)
}

/// `restore` as a run of `spec` that can be adopted as of `now`, if it is
/// one: named as a run of `spec` with its run id label names its Restore,
/// with `spec`'s namespace prefix and its start ([`STARTED_ANNOTATION`]),
/// not being deleted, not left behind with a verdict
/// ([`REPORTED_ANNOTATION`]), and time enough before its expiry for a whole
/// Restore and readiness wait (past expiry the janitor owns it).
pub fn adoptable(
    spec: &RestoreSpec,
    restore: &Restore,
    now: DateTime<Utc>,
    wanted: &impl Fn(&str) -> bool,
) -> Option<InFlight> {
    let meta = &restore.metadata;
    if meta.deletion_timestamp.is_some() {
        return None;
    }
    let run_id = meta.labels.as_ref()?.get(namespace::RUN_ID_LABEL)?;
    let annotations = meta.annotations.as_ref()?;
    if annotations.contains_key(REPORTED_ANNOTATION) {
        return None;
    }
    let needed = chrono::Duration::from_std(spec.restore_timeout + spec.readiness.timeout)
        .unwrap_or(chrono::Duration::MAX);
    let expires = annotations.get(EXPIRES_AT_ANNOTATION)?;
    let soon = DateTime::parse_from_rfc3339(expires).map_or(true, |t| {
        t.with_timezone(&Utc).signed_duration_since(now).lt(&needed)
    });
    let same_prefix = annotations.get(PREFIX_ANNOTATION) == Some(&spec.namespace_prefix);
    let name = restore.name_any();
    // The label value is the run id made label-safe: adopt only when the
    // name a run with that id would use is this Restore's.
    let named_so = restore_name(&spec.namespace_prefix, &spec.name, run_id) == name;
    if soon || !same_prefix || !named_so || !wanted(run_id) {
        return None;
    }
    // Only Restores that say when their run started: older ones (made
    // before runs could be taken over) were never marked reported.
    let started = annotations
        .get(STARTED_ANNOTATION)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(SystemTime::from)?;
    Some(InFlight {
        run_id: run_id.clone(),
        restore: name,
        backup: restore.spec.backup_name.clone(),
        phase: RestorePhase::parse(restore.status.as_ref().and_then(|s| s.phase.as_deref()))
            .to_string(),
        started,
    })
}

/// The [`STARTED_ANNOTATION`] value of a run started at `started`.
pub fn started_annotation(started: SystemTime) -> String {
    DateTime::<Utc>::from(started).to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Mark the Restore `name` with its run's `verdict` ([`REPORTED_ANNOTATION`]).
pub async fn mark_reported(
    restores: &Api<Restore>,
    name: &str,
    verdict: &str,
) -> Result<(), kube::Error> {
    let patch = serde_json::json!({"metadata": {"annotations": {REPORTED_ANNOTATION: verdict}}});
    restores
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(|_| ())
}

/// Why `object` cannot be taken over as the run's own, if it cannot: it
/// lacks one of the run's `labels`, or is being deleted.
pub fn refusal<K>(object: &K, labels: &BTreeMap<String, String>) -> Option<String>
where
    K: Resource,
    K::DynamicType: Default,
{
    let meta = object.meta();
    let what = format!(
        "{}/{}",
        K::kind(&Default::default()).to_lowercase(),
        meta.name.as_deref().unwrap_or_default()
    );
    if meta.deletion_timestamp.is_some() {
        return Some(format!("{what} is being deleted"));
    }
    let have = meta.labels.clone().unwrap_or_default();
    let missing: Vec<String> = labels
        .iter()
        .filter(|(k, v)| have.get(*k) != Some(*v))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    (!missing.is_empty()).then(|| {
        format!(
            "{what} exists but is not this run's (it lacks {}): refusing to take it over",
            missing.join(", ")
        )
    })
}

/// The object `name` if it is the run's own (carries `labels`, not being
/// deleted); None when absent; Err says why it cannot be taken over (or
/// could not be read).
pub async fn claim<K>(
    api: &Api<K>,
    name: &str,
    labels: &BTreeMap<String, String>,
) -> Result<Option<K>, String>
where
    K: Resource + Clone + DeserializeOwned + Debug,
    K::DynamicType: Default,
{
    match api.get_opt(name).await {
        Ok(Some(object)) => match refusal(&object, labels) {
            None => Ok(Some(object)),
            Some(why) => Err(why),
        },
        Ok(None) => Ok(None),
        Err(e) => Err(format!(
            "reading {}/{name}: {}",
            K::kind(&Default::default()).to_lowercase(),
            describe_kube_error(&e)
        )),
    }
}

/// [`claim`] of an object the run adopted must have made: absent is an
/// error too.
pub async fn claim_made<K>(
    api: &Api<K>,
    name: &str,
    labels: &BTreeMap<String, String>,
) -> Result<K, String>
where
    K: Resource + Clone + DeserializeOwned + Debug,
    K::DynamicType: Default,
{
    claim(api, name, labels).await?.ok_or_else(|| {
        format!(
            "its {}/{name} is gone",
            K::kind(&Default::default()).to_lowercase()
        )
    })
}

/// Whether `e` is the API server's 409 AlreadyExists.
pub fn already_exists(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409 && s.reason == "AlreadyExists")
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Namespace;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    fn labelled(labels: &[(&str, &str)]) -> Namespace {
        Namespace {
            metadata: ObjectMeta {
                name: Some("vantage-restore-shop-1a2b3c".into()),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        }
    }

    /// When the runs of these tests started.
    const FIRST: &str = "2026-12-05T09:59:58.250Z";

    fn spec() -> RestoreSpec {
        let text = "[[restore]]\nname = \"shop-restore\"\nschedule = \"shop-daily\"\nnamespaces = [\"shop\"]\nevery = \"1h\"\n";
        crate::config::from_str(text, std::path::Path::new("vantage.toml"))
            .unwrap()
            .restores
            .remove(0)
    }

    /// A run's Restore as a run of `spec` with `run_id` makes it, expiring
    /// at `expires`, with `more` annotations.
    fn restore(spec: &RestoreSpec, run_id: &str, expires: &str, more: &[(&str, &str)]) -> Restore {
        let mut annotations = serde_json::json!({
            EXPIRES_AT_ANNOTATION: expires,
            PREFIX_ANNOTATION: spec.namespace_prefix,
            STARTED_ANNOTATION: FIRST,
        });
        for (k, v) in more {
            annotations[*k] = serde_json::json!(v);
        }
        serde_json::from_value(serde_json::json!({
            "apiVersion": "velero.io/v1", "kind": "Restore",
            "metadata": {
                "name": restore_name(&spec.namespace_prefix, &spec.name, run_id),
                "namespace": "velero",
                "labels": namespace::run_labels(&spec.name, run_id),
                "annotations": annotations,
                "creationTimestamp": "2026-12-05T10:00:00Z",
            },
            "spec": {"backupName": "shop-daily-20261205030000"},
            "status": {"phase": "InProgress"},
        }))
        .unwrap()
    }

    #[test]
    fn only_an_unfinished_run_with_time_left_and_its_own_names_is_adoptable() {
        let spec = spec();
        let now: DateTime<Utc> = "2026-12-05T10:05:00Z".parse().unwrap();
        let later = "2026-12-05T16:00:00Z";
        let all = |_: &str| true;
        let found = adoptable(&spec, &restore(&spec, "19a-slot", later, &[]), now, &all).unwrap();
        assert_eq!(found.run_id, "19a-slot");
        assert_eq!(found.backup, "shop-daily-20261205030000");
        assert_eq!(found.phase, "InProgress");
        let at: DateTime<Utc> = FIRST.parse().unwrap();
        assert_eq!(found.started, SystemTime::from(at));
        assert_eq!(started_annotation(SystemTime::from(at)), FIRST);

        let refused = |r: Restore, why: &str| {
            assert_eq!(adoptable(&spec, &r, now, &all), None, "{why}");
        };
        refused(
            restore(&spec, "19a-slot", later, &[(REPORTED_ANNOTATION, "fail")]),
            "its verdict was decided (left to the janitor)",
        );
        refused(
            restore(&spec, "19a-slot", "2026-12-05T10:04:00Z", &[]),
            "expired",
        );
        refused(
            restore(&spec, "19a-slot", "2026-12-05T10:20:00Z", &[]),
            "expires before a restore and readiness could end",
        );
        let mut other_prefix = restore(&spec, "19a-slot", later, &[]);
        other_prefix
            .metadata
            .annotations
            .as_mut()
            .unwrap()
            .insert(PREFIX_ANNOTATION.into(), "staging-".into());
        refused(other_prefix, "another namespace prefix");
        let mut renamed = restore(&spec, "19a-slot", later, &[]);
        renamed.metadata.name = Some("vantage-restore-shop-restore-000000".into());
        refused(renamed, "not named from its run id");
        let mut unstarted = restore(&spec, "19a-slot", later, &[]);
        unstarted
            .metadata
            .annotations
            .as_mut()
            .unwrap()
            .remove(STARTED_ANNOTATION);
        refused(unstarted, "made before runs could be taken over");
        let mut deleting = restore(&spec, "19a-slot", later, &[]);
        deleting.metadata.deletion_timestamp = Some(Time(SystemTime::now().try_into().unwrap()));
        refused(deleting, "being deleted");
        assert_eq!(
            adoptable(
                &spec,
                &restore(&spec, "19a-slot", later, &[]),
                now,
                &|id: &str| id != "19a-slot"
            ),
            None,
            "a run the caller does not want (its own)"
        );
    }

    #[test]
    fn only_the_runs_own_objects_are_taken_over() {
        let run = namespace::run_labels("shop", "19a-slot");
        let own: Vec<(&str, &str)> = run.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(refusal(&labelled(&own), &run), None);

        let other = namespace::run_labels("shop", "19b-slot");
        let why = refusal(&labelled(&own), &other).unwrap();
        assert!(why.contains("vantage.dev/run-id=19b-slot"), "{why}");
        assert!(
            why.starts_with("namespace/vantage-restore-shop-1a2b3c exists"),
            "{why}"
        );

        let why = refusal(&labelled(&[("app", "shop")]), &run).unwrap();
        assert!(why.contains("refusing to take it over"), "{why}");

        let mut deleting = labelled(&own);
        deleting.metadata.deletion_timestamp = Some(Time(SystemTime::now().try_into().unwrap()));
        assert_eq!(
            refusal(&deleting, &run).as_deref(),
            Some("namespace/vantage-restore-shop-1a2b3c is being deleted")
        );
    }
}
