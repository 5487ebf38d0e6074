//! The Restore's own evidence, kept before it is deleted.
//!
//! Deleting a Restore makes Velero's finalizer delete its log and results
//! from the backup storage location. So before cleanup deletes it, the run
//! asks Velero for both through `DownloadRequest`s (targets `RestoreLog`
//! and `RestoreResults`), the way `velero restore logs` does
//! (`pkg/cmd/util/downloadrequest/downloadrequest.go`, `Stream`: create the
//! request, poll until `status.downloadURL` is set, GET the pre-signed URL;
//! the file is gzip-compressed). The report (and so the audit record) keeps
//! each file's sha256 and size as stored.
//!
//! Not done yet: listing the failed items from the results (Velero's
//! `pkg/util/results.Result`: `velero`, `cluster`, `namespaces` lists) needs
//! a gzip decoder; `flate2` is not in the dependency graph and adding it
//! changes `crc32fast`'s features under wasmtime (a full rebuild).

use std::time::{Duration, Instant};

use kube::api::{Api, PostParams};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::velero::{API_VERSION, DownloadRequest, DownloadRequestSpec, DownloadTarget};
use super::{Pacing, delete_ignoring_absent, describe_kube_error};

/// How long Velero gets to answer a DownloadRequest.
pub const URL_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest file read (a restore log is usually kilobytes).
pub const MAX_FILE: usize = 64 << 20;

/// What was kept of the Restore's log and results.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// The log as stored (gzip), when fetched.
    pub log: Option<StoredFile>,
    /// The results as stored (gzip), when fetched.
    pub results: Option<StoredFile>,
    /// What could not be fetched, and why.
    pub fetch_errors: Vec<String>,
}

/// One file of the backup storage location.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StoredFile {
    /// sha256 of the bytes as stored (compressed), hex.
    pub sha256: String,
    /// Their length.
    pub bytes: u64,
}

/// Fetch the log and results of Restore `restore` (in `velero_namespace`).
/// Never fails: what could not be fetched is named in `fetch_errors`.
pub async fn fetch(
    client: &kube::Client,
    velero_namespace: &str,
    restore: &str,
    pacing: &Pacing,
) -> Evidence {
    let mut evidence = Evidence::default();
    let http = match reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            evidence
                .fetch_errors
                .push(format!("building the HTTP client: {e}"));
            return evidence;
        }
    };
    for kind in ["RestoreLog", "RestoreResults"] {
        match download(client, &http, velero_namespace, restore, kind, pacing).await {
            Ok(bytes) => {
                let file = StoredFile {
                    sha256: hex::encode(Sha256::digest(&bytes)),
                    bytes: bytes.len() as u64,
                };
                if kind == "RestoreLog" {
                    evidence.log = Some(file);
                } else {
                    evidence.results = Some(file);
                }
            }
            Err(e) => evidence.fetch_errors.push(format!("{kind}: {e}")),
        }
    }
    evidence
}

/// The DownloadRequest for `kind` of `restore`: create, wait for the URL,
/// download, delete the request.
async fn download(
    client: &kube::Client,
    http: &reqwest::Client,
    velero_namespace: &str,
    restore: &str,
    kind: &str,
    pacing: &Pacing,
) -> Result<Vec<u8>, String> {
    let api: Api<DownloadRequest> = Api::namespaced(client.clone(), velero_namespace);
    let name = request_name(restore, kind);
    let request = DownloadRequest {
        api_version: API_VERSION.to_string(),
        kind: "DownloadRequest".to_string(),
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(velero_namespace.to_string()),
            ..Default::default()
        },
        spec: DownloadRequestSpec {
            target: DownloadTarget {
                kind: kind.to_string(),
                name: restore.to_string(),
            },
        },
        status: None,
    };
    api.create(&PostParams::default(), &request)
        .await
        .map_err(|e| {
            format!(
                "creating DownloadRequest {name}: {}",
                describe_kube_error(&e)
            )
        })?;
    let result = async {
        let start = Instant::now();
        let url = loop {
            let got = api
                .get(&name)
                .await
                .map_err(|e| format!("reading DownloadRequest {name}: {}", describe_kube_error(&e)))?;
            if let Some(url) = got
                .status
                .and_then(|s| s.download_url)
                .filter(|u| !u.is_empty())
            {
                break url;
            }
            if start.elapsed() >= URL_TIMEOUT {
                return Err(format!(
                    "Velero gave no download URL within {} (is the backup storage location available?)",
                    super::human_seconds(URL_TIMEOUT.as_secs_f64())
                ));
            }
            tokio::time::sleep(pacing.poll_interval.min(Duration::from_millis(500))).await;
        };
        let mut response = http
            .get(&url)
            .send()
            .await
            .map_err(|e| format!("downloading: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("downloading: HTTP {}", response.status()));
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| format!("downloading: {e}"))?
        {
            if bytes.len() + chunk.len() > MAX_FILE {
                return Err(format!("larger than {} MiB", MAX_FILE >> 20));
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes)
    }
    .await;
    let _ = delete_ignoring_absent(&api, &name).await;
    result
}

/// `<restore>-log` / `<restore>-results` (a Restore name is ≤ 63
/// characters, object names may have 253).
pub fn request_name(restore: &str, kind: &str) -> String {
    let suffix = match kind {
        "RestoreLog" => "log",
        "RestoreResults" => "results",
        other => other,
    };
    format!("{restore}-{}", suffix.to_ascii_lowercase())
}
