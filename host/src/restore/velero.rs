//! Typed Velero `velero.io/v1` objects: the fields a restore test reads or
//! writes, nothing more.
//!
//! Plain serde structs with a hand-written [`kube::Resource`] impl (no
//! schema generation): unknown fields are ignored when reading, and absent
//! optional fields are left out when writing, so what is sent validates
//! against Velero's CRD schemas (`tests/fixtures/velero/crds/`).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

/// Velero's API group.
pub const GROUP: &str = "velero.io";
/// Velero's API version.
pub const VERSION: &str = "v1";
/// `apiVersion` of every Velero object.
pub const API_VERSION: &str = "velero.io/v1";

/// Label Velero puts on backups made by a Schedule.
pub const SCHEDULE_NAME_LABEL: &str = "velero.io/schedule-name";
/// Label Velero puts on every object a restore created.
pub const RESTORE_NAME_LABEL: &str = "velero.io/restore-name";

macro_rules! velero_resource {
    ($ty:ident, $kind:literal, $plural:literal) => {
        impl kube::Resource for $ty {
            type DynamicType = ();
            type Scope = kube::core::NamespaceResourceScope;

            fn kind(_: &()) -> Cow<'_, str> {
                Cow::Borrowed($kind)
            }
            fn group(_: &()) -> Cow<'_, str> {
                Cow::Borrowed(GROUP)
            }
            fn version(_: &()) -> Cow<'_, str> {
                Cow::Borrowed(VERSION)
            }
            fn plural(_: &()) -> Cow<'_, str> {
                Cow::Borrowed($plural)
            }
            fn meta(&self) -> &ObjectMeta {
                &self.metadata
            }
            fn meta_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
        }
    };
}

velero_resource!(Backup, "Backup", "backups");
velero_resource!(Restore, "Restore", "restores");
velero_resource!(
    BackupStorageLocation,
    "BackupStorageLocation",
    "backupstoragelocations"
);
velero_resource!(Schedule, "Schedule", "schedules");
velero_resource!(DownloadRequest, "DownloadRequest", "downloadrequests");

/// A `DownloadRequest`: asks Velero for a pre-signed URL of a file it keeps
/// in the backup storage location (a restore's log or results).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DownloadRequest {
    /// `velero.io/v1`.
    #[serde(default)]
    pub api_version: String,
    /// `DownloadRequest`.
    #[serde(default)]
    pub kind: String,
    /// Name and namespace.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// What to download.
    #[serde(default)]
    pub spec: DownloadRequestSpec,
    /// Set by Velero's DownloadRequest controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<DownloadRequestStatus>,
}

/// A DownloadRequest's `spec`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DownloadRequestSpec {
    /// The file.
    pub target: DownloadTarget,
}

/// Which file: `kind` (`RestoreLog`, `RestoreResults`, ...) of the object
/// `name`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DownloadTarget {
    /// e.g. `RestoreLog`.
    pub kind: String,
    /// The Restore's (or Backup's) name.
    pub name: String,
}

/// A DownloadRequest's `status`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DownloadRequestStatus {
    /// `New` or `Processed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// The pre-signed URL of the file (gzip-compressed).
    #[serde(
        rename = "downloadURL",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub download_url: Option<String>,
    /// RFC 3339: when Velero deletes the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration: Option<String>,
}

/// A `Backup` (read only).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Backup {
    /// `velero.io/v1`.
    #[serde(default)]
    pub api_version: String,
    /// `Backup`.
    #[serde(default)]
    pub kind: String,
    /// Name, namespace, labels.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// What was backed up and where it is stored.
    #[serde(default)]
    pub spec: BackupSpec,
    /// How it went.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<BackupStatus>,
}

/// The fields of a Backup's `spec` a restore test reads.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupSpec {
    /// Namespaces included (`*` or empty: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub included_namespaces: Option<Vec<String>>,
    /// The BackupStorageLocation the backup is stored in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_location: Option<String>,
}

/// The fields of a Backup's `status` a restore test reads.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupStatus {
    /// `Completed`, `PartiallyFailed`, `Failed`, `InProgress`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_timestamp: Option<String>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_timestamp: Option<String>,
    /// RFC 3339: when Velero garbage-collects the backup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration: Option<String>,
    /// Warnings encountered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warnings: Option<i64>,
    /// Errors encountered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<i64>,
}

/// A `BackupStorageLocation` (read only).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupStorageLocation {
    /// `velero.io/v1`.
    #[serde(default)]
    pub api_version: String,
    /// `BackupStorageLocation`.
    #[serde(default)]
    pub kind: String,
    /// Name and namespace.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// Not read; kept as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<serde_json::Value>,
    /// Availability.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<BackupStorageLocationStatus>,
}

/// A BackupStorageLocation's `status`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupStorageLocationStatus {
    /// `Available` or `Unavailable`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// Why it is unavailable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_validation_time: Option<String>,
}

/// A `Schedule` (read only: its existence and pause state).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Schedule {
    /// `velero.io/v1`.
    #[serde(default)]
    pub api_version: String,
    /// `Schedule`.
    #[serde(default)]
    pub kind: String,
    /// Name and namespace.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// Cron expression and pause state.
    #[serde(default)]
    pub spec: ScheduleSpec,
    /// Phase and last backup time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<serde_json::Value>,
}

/// The fields of a Schedule's `spec` a restore test reads.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleSpec {
    /// Cron expression.
    #[serde(default)]
    pub schedule: String,
    /// Whether the schedule is paused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<bool>,
}

/// A `Restore`, as built by [`crate::restore::restore_object::build_restore`]
/// and read back while it runs.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Restore {
    /// `velero.io/v1`.
    #[serde(default)]
    pub api_version: String,
    /// `Restore`.
    #[serde(default)]
    pub kind: String,
    /// Name, namespace, labels.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// What to restore, where, how.
    #[serde(default)]
    pub spec: RestoreSpec,
    /// Progress; set by Velero.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<RestoreStatus>,
}

/// A Restore's `spec` (the fields a restore test sets).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreSpec {
    /// The Backup to restore.
    #[serde(default)]
    pub backup_name: String,
    /// Namespaces of the backup to restore.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub included_namespaces: Vec<String>,
    /// Source namespace → target namespace.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub namespace_mapping: BTreeMap<String, String>,
    /// Resources not restored (e.g. `ingresses.networking.k8s.io`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excluded_resources: Vec<String>,
    /// Whether cluster-scoped resources are restored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_cluster_resources: Option<bool>,
    /// Whether persistent volumes are restored.
    #[serde(
        rename = "restorePVs",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub restore_pvs: Option<bool>,
    /// Whether Services keep their node ports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preserve_node_ports: Option<bool>,
    /// The ConfigMap of resource modifiers applied before restoring.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_modifier: Option<TypedLocalObjectReference>,
}

/// A reference to an object in the Restore's namespace.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct TypedLocalObjectReference {
    /// API group; absent for the core group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_group: Option<String>,
    /// e.g. `ConfigMap`.
    pub kind: String,
    /// Its name.
    pub name: String,
}

/// A Restore's `status`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreStatus {
    /// See [`RestorePhase`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// Warnings encountered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warnings: Option<i64>,
    /// Errors encountered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<i64>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    /// Why it failed validation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_errors: Option<Vec<String>>,
    /// Items restored so far, of the total.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<RestoreProgress>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_timestamp: Option<String>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_timestamp: Option<String>,
}

/// A Restore's `status.progress`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreProgress {
    /// Items restored so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items_restored: Option<i64>,
    /// Items to restore (best effort; may grow).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_items: Option<i64>,
}

/// The phase of a Restore. Any phase this version does not know is
/// [`RestorePhase::Other`] and counts as unfinished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestorePhase {
    /// No phase yet (Velero has not picked it up).
    Unset,
    /// `New`.
    New,
    /// `InProgress`.
    InProgress,
    /// `WaitingForPluginOperations`.
    WaitingForPluginOperations,
    /// `WaitingForPluginOperationsPartiallyFailed`.
    WaitingForPluginOperationsPartiallyFailed,
    /// `Finalizing`.
    Finalizing,
    /// `FinalizingPartiallyFailed`.
    FinalizingPartiallyFailed,
    /// `Completed`: terminal, success.
    Completed,
    /// `PartiallyFailed`: terminal.
    PartiallyFailed,
    /// `Failed`: terminal.
    Failed,
    /// `FailedValidation`: terminal.
    FailedValidation,
    /// A phase this version does not know: unfinished.
    Other(String),
}

impl RestorePhase {
    /// Parse `status.phase` (absent or empty: [`RestorePhase::Unset`]).
    pub fn parse(phase: Option<&str>) -> Self {
        match phase.unwrap_or("") {
            "" => RestorePhase::Unset,
            "New" => RestorePhase::New,
            "InProgress" => RestorePhase::InProgress,
            "WaitingForPluginOperations" => RestorePhase::WaitingForPluginOperations,
            "WaitingForPluginOperationsPartiallyFailed" => {
                RestorePhase::WaitingForPluginOperationsPartiallyFailed
            }
            "Finalizing" => RestorePhase::Finalizing,
            "FinalizingPartiallyFailed" => RestorePhase::FinalizingPartiallyFailed,
            "Completed" => RestorePhase::Completed,
            "PartiallyFailed" => RestorePhase::PartiallyFailed,
            "Failed" => RestorePhase::Failed,
            "FailedValidation" => RestorePhase::FailedValidation,
            other => RestorePhase::Other(other.to_string()),
        }
    }

    /// Whether Velero is done with the restore.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            RestorePhase::Completed
                | RestorePhase::PartiallyFailed
                | RestorePhase::Failed
                | RestorePhase::FailedValidation
        )
    }
}

impl fmt::Display for RestorePhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RestorePhase::Unset => "(none)",
            RestorePhase::New => "New",
            RestorePhase::InProgress => "InProgress",
            RestorePhase::WaitingForPluginOperations => "WaitingForPluginOperations",
            RestorePhase::WaitingForPluginOperationsPartiallyFailed => {
                "WaitingForPluginOperationsPartiallyFailed"
            }
            RestorePhase::Finalizing => "Finalizing",
            RestorePhase::FinalizingPartiallyFailed => "FinalizingPartiallyFailed",
            RestorePhase::Completed => "Completed",
            RestorePhase::PartiallyFailed => "PartiallyFailed",
            RestorePhase::Failed => "Failed",
            RestorePhase::FailedValidation => "FailedValidation",
            RestorePhase::Other(p) => p,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_phases_are_unfinished() {
        assert!(RestorePhase::parse(Some("Completed")).is_terminal());
        assert!(RestorePhase::parse(Some("FailedValidation")).is_terminal());
        assert!(!RestorePhase::parse(Some("Finalizing")).is_terminal());
        assert!(!RestorePhase::parse(None).is_terminal());
        let other = RestorePhase::parse(Some("Quiescing"));
        assert_eq!(other, RestorePhase::Other("Quiescing".into()));
        assert!(!other.is_terminal());
        assert_eq!(other.to_string(), "Quiescing");
    }
}
