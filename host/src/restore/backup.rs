//! Step 1: which backup to restore, and whether it can be restored at all.
//!
//! A backup is usable when its phase is `Completed` (or `PartiallyFailed`
//! with `accept_partially_failed`), it has a completion timestamp, it
//! includes every source namespace, and its BackupStorageLocation is
//! `Available`. With `max_backup_age`, the newest completed backup (of the
//! Schedule, or the named backup) must also be recent enough, whatever the
//! selection picks: a stale backup chain fails the run even when an old
//! backup would still restore.

use chrono::{DateTime, SecondsFormat, Utc};
use kube::api::{Api, ListParams};

use super::report::BackupInfo;
use super::velero::{Backup, BackupStorageLocation, SCHEDULE_NAME_LABEL, Schedule};
use super::{RestoreError, Step};
use crate::config::{BackupSource, RestoreSpec, Selection};

/// The outcome of step 1.
#[derive(Debug, Clone, PartialEq)]
pub enum BackupChoice {
    /// This backup is restored.
    Usable(BackupInfo),
    /// Nothing can be restored: the run fails with `reason`. `info` is the
    /// backup found unusable, if one was picked.
    Unusable {
        /// The backup found unusable.
        info: Option<BackupInfo>,
        /// Why, for the verdict.
        reason: String,
    },
}

/// Pick the backup `spec` asks for, as of `now`. `seed` chooses among the
/// window's backups for [`Selection::RandomWithin`] (the run derives it from
/// the run id, so a run's choice can be reproduced).
pub async fn select(
    client: &kube::Client,
    spec: &RestoreSpec,
    now: DateTime<Utc>,
    seed: u64,
) -> Result<BackupChoice, RestoreError> {
    let ns = &spec.velero_namespace;
    let backups: Api<Backup> = Api::namespaced(client.clone(), ns);
    let found = match &spec.backup {
        BackupSource::Schedule { name, selection } => {
            let schedule = ScheduleRef {
                name,
                selection: *selection,
            };
            from_schedule(client, &backups, spec, schedule, now, seed).await?
        }
        BackupSource::Named(name) => named(&backups, ns, name).await?,
    };
    let found = match found {
        Ok(found) => found,
        Err(reason) => return Ok(BackupChoice::Unusable { info: None, reason }),
    };
    let mut info = info_of(&found.backup, found.schedule, now);
    info.newest_completion_timestamp = found
        .newest
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true));
    info.newest_age_seconds = found.newest.map(|t| age_seconds(now, t));
    let problem = match backup_problem(&found.backup, &info, spec) {
        Some(reason) => Some(reason),
        None => location_problem(client, ns, &mut info).await?,
    };
    Ok(match problem {
        Some(reason) => BackupChoice::Unusable {
            info: Some(info),
            reason,
        },
        None => BackupChoice::Usable(info),
    })
}

/// The backup `name` as of `at`, described but not judged: a run taken
/// over restores what its first start picked and judged ([`super::adopt`]).
/// A backup gone since is described by its name only.
pub async fn describe(
    client: &kube::Client,
    spec: &RestoreSpec,
    name: &str,
    at: DateTime<Utc>,
) -> Result<BackupInfo, RestoreError> {
    let backups: Api<Backup> = Api::namespaced(client.clone(), &spec.velero_namespace);
    Ok(match backups.get_opt(name).await.map_err(api_error)? {
        Some(backup) => info_of(&backup, schedule_of(&backup), at),
        None => BackupInfo {
            name: name.to_string(),
            ..BackupInfo::default()
        },
    })
}

/// A backup found by name or by its Schedule, before it is judged.
struct Found {
    /// The backup.
    backup: Backup,
    /// The Schedule it belongs to, if any.
    schedule: Option<String>,
    /// The newest usable completion time among the candidates (for
    /// `max_backup_age`).
    newest: Option<DateTime<Utc>>,
}

/// A `[restore.backup]` that names a Schedule.
#[derive(Clone, Copy)]
struct ScheduleRef<'a> {
    name: &'a str,
    selection: Selection,
}

fn api_error(source: kube::Error) -> RestoreError {
    RestoreError::Api {
        step: Step::SelectBackup,
        source,
    }
}

/// The backup of `schedule` that its selection picks, or why there is none.
async fn from_schedule(
    client: &kube::Client,
    backups: &Api<Backup>,
    spec: &RestoreSpec,
    schedule: ScheduleRef<'_>,
    now: DateTime<Utc>,
    seed: u64,
) -> Result<Result<Found, String>, RestoreError> {
    let (ns, name) = (&spec.velero_namespace, schedule.name);
    let schedules: Api<Schedule> = Api::namespaced(client.clone(), ns);
    if schedules.get_opt(name).await.map_err(api_error)?.is_none() {
        return Ok(Err(format!("no Velero Schedule {name} in namespace {ns}")));
    }
    let listed = backups
        .list(&ListParams::default().labels(&format!("{SCHEDULE_NAME_LABEL}={name}")))
        .await
        .map_err(api_error)?;
    let newest = listed
        .items
        .iter()
        .filter(|b| usable_phase(b, spec.accept_partially_failed))
        .filter_map(completion)
        .max();
    let accept_partial = spec.accept_partially_failed;
    if let Some(backup) = pick(listed.items, schedule.selection, accept_partial, now, seed) {
        return Ok(Ok(Found {
            backup,
            schedule: Some(name.to_string()),
            newest,
        }));
    }
    let what = if accept_partial {
        "completed (or partially failed)"
    } else {
        "completed"
    };
    let since = match schedule.selection {
        Selection::Latest => "ever".to_string(),
        Selection::RandomWithin(window) => format!(
            "since {}",
            window_start(now, window).to_rfc3339_opts(SecondsFormat::Secs, true)
        ),
    };
    Ok(Err(format!("no {what} backup of schedule {name} {since}")))
}

/// The backup called `name`, or why there is none.
async fn named(
    backups: &Api<Backup>,
    ns: &str,
    name: &str,
) -> Result<Result<Found, String>, RestoreError> {
    let Some(backup) = backups.get_opt(name).await.map_err(api_error)? else {
        return Ok(Err(format!("backup {name} not found in namespace {ns}")));
    };
    Ok(Ok(Found {
        newest: completion(&backup),
        schedule: schedule_of(&backup),
        backup,
    }))
}

/// Why `backup` (described by `info`) cannot be restored: its phase, the age
/// of the newest backup, or a source namespace it lacks.
fn backup_problem(backup: &Backup, info: &BackupInfo, spec: &RestoreSpec) -> Option<String> {
    if !usable_phase(backup, spec.accept_partially_failed) {
        let phase = info.phase.as_deref().unwrap_or("without a phase");
        return Some(format!("backup {} is {phase}, not Completed", info.name));
    }
    if let (Some(max), Some(age)) = (spec.acceptance.max_backup_age, info.newest_age_seconds)
        && age > max.as_secs_f64()
    {
        return Some(format!(
            "the newest completed backup{} is {} old, more than max_backup_age {}",
            info.schedule
                .as_deref()
                .map(|s| format!(" of schedule {s}"))
                .unwrap_or_default(),
            super::human_seconds(age),
            super::human_seconds(max.as_secs_f64()),
        ));
    }
    let missing = missing_namespaces(backup, &spec.source_namespaces);
    if !missing.is_empty() {
        return Some(format!(
            "backup {} does not include namespace(s) {}",
            info.name,
            missing.join(", ")
        ));
    }
    None
}

/// Why the backup's storage location cannot serve it (absent, or not
/// `Available`); notes the location's phase in `info`.
async fn location_problem(
    client: &kube::Client,
    ns: &str,
    info: &mut BackupInfo,
) -> Result<Option<String>, RestoreError> {
    let location_name = info
        .storage_location
        .clone()
        .unwrap_or_else(|| "default".to_string());
    let locations: Api<BackupStorageLocation> = Api::namespaced(client.clone(), ns);
    let Some(location) = locations.get_opt(&location_name).await.map_err(api_error)? else {
        return Ok(Some(format!(
            "backup storage location {location_name} of backup {} not found in namespace {ns}",
            info.name
        )));
    };
    let status = location.status.unwrap_or_default();
    info.storage_location_phase = status.phase.clone();
    if status.phase.as_deref() == Some("Available") {
        return Ok(None);
    }
    Ok(Some(format!(
        "backup storage location {location_name} is {}{}",
        status.phase.as_deref().unwrap_or("not validated yet"),
        status.message.map(|m| format!(": {m}")).unwrap_or_default()
    )))
}

/// The first instant of a `RandomWithin(window)` selection.
pub fn window_start(now: DateTime<Utc>, window: std::time::Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(window)
        .ok()
        .and_then(|w| now.checked_sub_signed(w))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// The backup `selection` picks among `backups`: usable phase, completed
/// (within the window), newest or the `seed`-th of the window (ordered by
/// completion time, then name).
pub fn pick(
    backups: Vec<Backup>,
    selection: Selection,
    accept_partially_failed: bool,
    now: DateTime<Utc>,
    seed: u64,
) -> Option<Backup> {
    let mut candidates: Vec<(DateTime<Utc>, Backup)> = backups
        .into_iter()
        .filter(|b| usable_phase(b, accept_partially_failed))
        .filter_map(|b| Some((completion(&b)?, b)))
        .filter(|(done, _)| match selection {
            Selection::Latest => true,
            Selection::RandomWithin(window) => *done >= window_start(now, window) && *done <= now,
        })
        .collect();
    candidates
        .sort_by(|(a, x), (b, y)| a.cmp(b).then_with(|| x.metadata.name.cmp(&y.metadata.name)));
    let index = match selection {
        Selection::Latest => candidates.len().checked_sub(1)?,
        Selection::RandomWithin(_) => {
            if candidates.is_empty() {
                return None;
            }
            (seed % candidates.len() as u64) as usize
        }
    };
    Some(candidates.swap_remove(index).1)
}

fn usable_phase(b: &Backup, accept_partially_failed: bool) -> bool {
    match b.status.as_ref().and_then(|s| s.phase.as_deref()) {
        Some("Completed") => true,
        Some("PartiallyFailed") => accept_partially_failed,
        _ => false,
    }
}

fn completion(b: &Backup) -> Option<DateTime<Utc>> {
    let ts = b.status.as_ref()?.completion_timestamp.as_deref()?;
    DateTime::parse_from_rfc3339(ts)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn missing_namespaces(b: &Backup, sources: &[String]) -> Vec<String> {
    match b.spec.included_namespaces.as_deref() {
        None | Some([]) => Vec::new(),
        Some(included) if included.iter().any(|n| n == "*") => Vec::new(),
        Some(included) => sources
            .iter()
            .filter(|s| !included.contains(s))
            .cloned()
            .collect(),
    }
}

/// The Schedule that made `b`, by Velero's label.
fn schedule_of(b: &Backup) -> Option<String> {
    b.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(SCHEDULE_NAME_LABEL))
        .cloned()
}

fn info_of(b: &Backup, schedule: Option<String>, now: DateTime<Utc>) -> BackupInfo {
    let status = b.status.clone().unwrap_or_default();
    BackupInfo {
        name: b.metadata.name.clone().unwrap_or_default(),
        schedule,
        phase: status.phase,
        completion_timestamp: status.completion_timestamp,
        age_seconds: completion(b).map(|done| age_seconds(now, done)),
        storage_location: b.spec.storage_location.clone(),
        storage_location_phase: None,
        newest_completion_timestamp: None,
        newest_age_seconds: None,
    }
}

fn age_seconds(now: DateTime<Utc>, done: DateTime<Utc>) -> f64 {
    (now - done).num_milliseconds() as f64 / 1000.0
}
