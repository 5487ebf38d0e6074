//! The status subresource of `Check` and `RestoreTest`: the replica that
//! runs a resource writes its last run (state, time, one-line result,
//! location, runner, component digest) and its next planned run after each
//! run, and the verdict of
//! validation as the `Accepted` condition whenever it changes. Every write
//! is a JSON merge patch of `/status`, so it never touches the spec and
//! never races another writer's fields.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use tokio::sync::broadcast;
use tracing::{debug, warn};

use super::crd::{Check, RestoreTest};
use super::render::{Kind, ResourceId};
use crate::pace::AbortOnDrop;
use crate::result::RunRecord;
use crate::sinks::board::Board;

/// Writes the status of the resources this replica runs.
#[derive(Clone)]
pub struct StatusWriter {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    runner: String,
    /// The live view, for each check's next planned run.
    board: Board,
    /// The accepted resources, by check name.
    resources: Mutex<HashMap<String, ResourceId>>,
    /// The `Accepted` condition last written, by resource.
    written: Mutex<HashMap<(Kind, String, String), Written>>,
}

/// An `Accepted` condition as written: for which generation, which verdict.
type Written = (Option<i64>, Result<(), String>);

/// The field manager of Vantage's status writes.
pub const FIELD_MANAGER: &str = "vantage";

impl StatusWriter {
    /// Start writing the status of each run published on `tap`; `runner`
    /// names this replica (its pod name).
    pub fn start(
        client: Client,
        runner: String,
        board: Board,
        mut tap: broadcast::Receiver<Arc<RunRecord>>,
    ) -> (StatusWriter, AbortOnDrop<()>) {
        let writer = StatusWriter {
            inner: Arc::new(Inner {
                client,
                runner,
                board,
                resources: Mutex::default(),
                written: Mutex::default(),
            }),
        };
        let w = writer.clone();
        let task = tokio::spawn(async move {
            loop {
                match tap.recv().await {
                    Ok(record) => w.ran(&record).await,
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        warn!("kubernetes: {n} runs' status not written (too many at once)")
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        (writer, AbortOnDrop(task))
    }

    /// The resources' verdicts after a rebuild; `runs(name)` says whether
    /// this replica runs the resource (it alone writes its condition).
    pub async fn verdicts(
        &self,
        verdicts: &[(ResourceId, Result<(), String>)],
        runs: &(dyn Fn(&str) -> bool + Sync),
    ) {
        *self
            .inner
            .resources
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = verdicts
            .iter()
            .filter(|(_, v)| v.is_ok())
            .map(|(id, _)| (id.name.clone(), id.clone()))
            .collect();
        for (id, verdict) in verdicts {
            if !runs(&id.name) {
                continue;
            }
            let key = (id.kind, id.namespace.clone(), id.name.clone());
            let now = (id.generation, verdict.clone());
            {
                let written = self.inner.written.lock().unwrap_or_else(|e| e.into_inner());
                if written.get(&key) == Some(&now) {
                    continue;
                }
            }
            let (status, reason, message) = match verdict {
                Ok(()) => ("True", "Valid", "the spec is valid".to_string()),
                Err(e) => ("False", "Invalid", e.clone()),
            };
            let mut body = json!({
                "conditions": [{
                    "type": "Accepted",
                    "status": status,
                    "reason": reason,
                    "message": message,
                    "lastTransitionTime": now_rfc3339(),
                    "observedGeneration": id.generation,
                }],
                "observedGeneration": id.generation,
            });
            if verdict.is_err() {
                body["state"] = json!("invalid");
            }
            if self.patch(id, body).await {
                self.inner
                    .written
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(key, now);
            }
        }
    }

    /// Write the status of one finished run, if it is a resource's.
    async fn ran(&self, record: &RunRecord) {
        let id = {
            let resources = self
                .inner
                .resources
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            match resources.get(record.check()) {
                Some(id) => id.clone(),
                None => return,
            }
        };
        let r = &record.result;
        let ended_ms = r.started_unix_ms + r.duration_ms.max(0.0) as u64;
        let mut line = format!(
            "{}: {} ({:.0} ms)",
            r.status.as_str(),
            r.summary,
            r.duration_ms
        );
        if line.chars().count() > 200 {
            line = line.chars().take(199).collect::<String>() + "…";
        }
        // The scheduler plans the next run right after publishing this one.
        let mut next = None;
        for _ in 0..3 {
            next = self
                .inner
                .board
                .get(record.check())
                .and_then(|v| v.next_unix_ms)
                .filter(|n| *n > record.planned_unix_ms);
            if next.is_some() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let body = json!({
            "state": record.state.as_str(),
            "nextRun": next.map(rfc3339_ms),
            "lastRun": rfc3339_ms(ended_ms),
            "lastResult": line,
            "location": record.location(),
            "runner": self.inner.runner,
            "componentDigest": record.component.as_ref().map(|c| format!("sha256:{}", c.sha256)),
        });
        self.patch(&id, body).await;
    }

    /// Merge `status` into the resource's status; whether it was written.
    async fn patch(&self, id: &ResourceId, status: serde_json::Value) -> bool {
        let patch = Patch::Merge(json!({ "status": status }));
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..PatchParams::default()
        };
        let client = self.inner.client.clone();
        let result = match id.kind {
            Kind::Check => Api::<Check>::namespaced(client, &id.namespace)
                .patch_status(&id.name, &params, &patch)
                .await
                .map(|_| ()),
            Kind::RestoreTest => Api::<RestoreTest>::namespaced(client, &id.namespace)
                .patch_status(&id.name, &params, &patch)
                .await
                .map(|_| ()),
        };
        match result {
            Ok(()) => {
                debug!(resource = %id, "kubernetes: status written");
                true
            }
            Err(e) => {
                warn!(resource = %id, "kubernetes: cannot write the status: {e}");
                false
            }
        }
    }
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn rfc3339_ms(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(ms as i64)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
