//! Taking over a run in flight: a run of the same (test, slot) that another
//! replica, or an earlier process of this one, started and did not finish
//! (a leader that died mid-run, a daemon restarted mid-run).
//!
//! A run's objects are named from its run id, the same on every replica
//! for a slot, so a second *start* of a slot is refused by the API server
//! (409). Adoption is the other half: [`find`] looks for the newest slot of
//! a test whose Velero Restore is still there and not being deleted, and
//! [`crate::restore::run`] with [`RunOptions::adopt`](super::RunOptions::adopt)
//! set then takes over what that run made instead of creating it:
//!
//! - the backup is the one its Restore names (`spec.backupName`), not a new
//!   pick;
//! - everything made before the Restore (the volatile namespaces and their
//!   NetworkPolicies) must exist, carry the run's labels and not be being
//!   deleted ([`claim`]), else the run ends in `error` and touches nothing
//!   it did not verify; the NetworkPolicy is replaced by the one the
//!   configuration builds now;
//! - the Restore is waited for, not created; the probe pod and the data
//!   Jobs, if the first run got that far, are waited for too
//!   ([`existing`]);
//! - the RTO counts from the first run's start.
//!
//! No object is ever taken over without the run's labels (test and run
//! id): a name collision with something else is an error, never adopted.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::time::SystemTime;

use chrono::{DateTime, Utc};
use kube::api::{Api, ListParams};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;

use super::mapping::PREFIX_ANNOTATION;
use super::namespace::{self, EXPIRES_AT_ANNOTATION, MANAGED_BY, MANAGED_BY_LABEL, TEST_LABEL};
use super::restore_object::restore_name;
use super::velero::{Restore, RestorePhase};
use super::{Step, describe_kube_error};
use crate::config::RestoreSpec;

/// Taking over a run that was started elsewhere (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adoption {
    /// The backup its Restore restores.
    pub backup: String,
    /// When that run started: the RTO counts from here.
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
    /// The Restore's creation time.
    pub created: Option<SystemTime>,
}

/// The newest run of `spec` whose run id `wanted` accepts and that can be
/// adopted as of `now`: its Restore (in `spec`'s Velero namespace, named
/// from the test and run id as a run names it) carries the test's labels
/// and namespace prefix, is not being deleted, and has not expired (past
/// expiry the janitor owns it).
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
        .max_by(|a, b| a.created.cmp(&b.created).then(a.run_id.cmp(&b.run_id)));
    Ok(newest)
}

/// `restore` as a run of `spec` that can be adopted, if it is one.
fn adoptable(
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
    let expires = annotations.get(EXPIRES_AT_ANNOTATION)?;
    let expired = DateTime::parse_from_rfc3339(expires).map_or(true, |t| t <= now);
    let same_prefix = annotations.get(PREFIX_ANNOTATION) == Some(&spec.namespace_prefix);
    let name = restore.name_any();
    // The label value is the run id made label-safe: adopt only when the
    // name a run with that id would use is this Restore's.
    let named_so = restore_name(&spec.namespace_prefix, &spec.name, run_id) == name;
    if expired || !same_prefix || !named_so || !wanted(run_id) {
        return None;
    }
    Some(InFlight {
        run_id: run_id.clone(),
        restore: name,
        backup: restore.spec.backup_name.clone(),
        phase: RestorePhase::parse(restore.status.as_ref().and_then(|s| s.phase.as_deref()))
            .to_string(),
        created: meta
            .creation_timestamp
            .as_ref()
            .map(|t| SystemTime::from(t.0)),
    })
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
    )
    .replace("//", "/");
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

/// The run's own `name`, which must exist (made before the Restore by the
/// run adopted): Err names what is wrong, for the verdict.
pub async fn claim<K>(
    api: &Api<K>,
    name: &str,
    labels: &BTreeMap<String, String>,
    step: Step,
) -> Result<K, String>
where
    K: Resource + Clone + DeserializeOwned + Debug,
    K::DynamicType: Default,
{
    let kind = K::kind(&Default::default()).to_lowercase();
    match api.get_opt(name).await {
        Ok(Some(object)) => match refusal(&object, labels) {
            None => Ok(object),
            Some(why) => Err(format!("{step}: cannot adopt the run: {why}")),
        },
        Ok(None) => Err(format!(
            "{step}: cannot adopt the run: its {kind}/{name} is gone"
        )),
        Err(e) => Err(format!(
            "{step}: reading {kind}/{name}: {}",
            describe_kube_error(&e)
        )),
    }
}

/// After a create answered 409 while adopting: the existing `name` if it is
/// the run's own (made by the run adopted before it stopped), to be waited
/// for instead; Err says why not.
pub async fn existing<K>(
    api: &Api<K>,
    name: &str,
    labels: &BTreeMap<String, String>,
) -> Result<K, String>
where
    K: Resource + Clone + DeserializeOwned + Debug,
    K::DynamicType: Default,
{
    let kind = K::kind(&Default::default()).to_lowercase();
    let object = api
        .get(name)
        .await
        .map_err(|e| format!("reading {kind}/{name}: {}", describe_kube_error(&e)))?;
    match refusal(&object, labels) {
        None => Ok(object),
        Some(why) => Err(why),
    }
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
