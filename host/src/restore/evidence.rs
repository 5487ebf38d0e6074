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
//! The results file is also read ([`failed_items`]): Velero writes it in
//! `putResults` (pkg/controller/restore_controller.go) as one gzip stream of
//! the JSON of `map[string]results.Result{"warnings": …, "errors": …}`,
//! where `results.Result` (pkg/util/results/result.go) holds `velero`,
//! `cluster` and `namespaces` (namespace → messages) lists, each omitted
//! when empty. The report keeps the first [`MAX_LISTED`] errors and
//! warnings and their counts. Decompression is bounded
//! ([`MAX_RESULTS_JSON`]): a larger (or corrupt) file is named in
//! `fetch_errors`, its digest still kept.

pub use crate::result::restore::{Evidence, FailedItems, StoredFile};
use std::collections::BTreeMap;
use std::io::Read;
use std::time::{Duration, Instant};

use kube::api::{Api, PostParams};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::velero::{API_VERSION, DownloadRequest, DownloadRequestSpec, DownloadTarget};
use super::{Pacing, delete_ignoring_absent, describe_kube_error};

/// How long Velero gets to answer a DownloadRequest.
pub const URL_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest file read (a restore log is usually kilobytes).
pub const MAX_FILE: usize = 64 << 20;
/// Largest decompressed results file read (Velero's results of a restore
/// with thousands of failed items are a few hundred KiB).
pub const MAX_RESULTS_JSON: u64 = 8 << 20;
/// Errors (and warnings) listed in the report; the rest are counted.
pub const MAX_LISTED: usize = 20;
/// Characters kept of each listed message.
pub const MAX_MESSAGE_CHARS: usize = 500;

/// Velero's `results.Result` (pkg/util/results/result.go).
#[derive(Debug, Default, Deserialize)]
struct VeleroResult {
    #[serde(default)]
    velero: Option<Vec<String>>,
    #[serde(default)]
    cluster: Option<Vec<String>>,
    #[serde(default)]
    namespaces: Option<BTreeMap<String, Option<Vec<String>>>>,
}

/// The results file: `{"warnings": Result, "errors": Result}`.
#[derive(Debug, Default, Deserialize)]
struct VeleroResults {
    #[serde(default)]
    errors: Option<VeleroResult>,
    #[serde(default)]
    warnings: Option<VeleroResult>,
}

impl VeleroResult {
    /// Every message with its scope, in Velero's order (velero, cluster,
    /// namespaces by name), and how many there are; at most `MAX_LISTED`
    /// kept.
    fn listed(&self) -> (Vec<String>, usize) {
        let mut kept = Vec::new();
        let mut total = 0;
        let scoped = self
            .velero
            .iter()
            .flatten()
            .map(|m| ("velero".to_string(), m))
            .chain(
                self.cluster
                    .iter()
                    .flatten()
                    .map(|m| ("cluster".to_string(), m)),
            )
            .chain(self.namespaces.iter().flatten().flat_map(|(ns, list)| {
                list.iter()
                    .flatten()
                    .map(move |m| (format!("namespace {ns}"), m))
            }));
        for (scope, message) in scoped {
            total += 1;
            if kept.len() < MAX_LISTED {
                kept.push(format!("{scope}: {}", clip(message)));
            }
        }
        (kept, total)
    }
}

/// `message` cut to [`MAX_MESSAGE_CHARS`] characters (`…` marks a cut).
fn clip(message: &str) -> String {
    match message.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((at, _)) => format!("{}…", &message[..at]),
        None => message.to_string(),
    }
}

/// Read the results file as Velero stores it (`gz`: gzip of JSON). Errors
/// say what is wrong with the file: not gzip, larger than
/// [`MAX_RESULTS_JSON`] once decompressed (a gzip bomb is refused after
/// that many bytes), or not Velero's JSON.
pub fn failed_items(gz: &[u8]) -> Result<FailedItems, String> {
    let mut json = Vec::new();
    flate2::read::MultiGzDecoder::new(gz)
        .take(MAX_RESULTS_JSON + 1)
        .read_to_end(&mut json)
        .map_err(|e| format!("not gzip-compressed as Velero writes it: {e}"))?;
    if json.len() as u64 > MAX_RESULTS_JSON {
        return Err(format!(
            "decompresses to more than {} MiB ({} bytes stored): refused, not read further",
            MAX_RESULTS_JSON >> 20,
            gz.len()
        ));
    }
    let results: VeleroResults = serde_json::from_slice(&json)
        .map_err(|e| format!("not Velero's restore results JSON: {e}"))?;
    let (errors, errors_total) = results.errors.unwrap_or_default().listed();
    let (warnings, warnings_total) = results.warnings.unwrap_or_default().listed();
    Ok(FailedItems {
        errors,
        errors_total,
        warnings,
        warnings_total,
    })
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
                    match failed_items(&bytes) {
                        Ok(items) => evidence.failed_items = Some(items),
                        Err(e) => evidence.fetch_errors.push(format!("{kind}: {e}")),
                    }
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
