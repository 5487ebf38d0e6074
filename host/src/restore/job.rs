//! Data checks (`[[restore.job]]`): a backup is valid only if its data is.
//!
//! Once the app is ready, each job runs as a Kubernetes Job in a volatile
//! namespace (the copy of the source namespace its `namespace` names,
//! default the first): one pod (`backoffLimit: 0`, `restartPolicy: Never`), the
//! configured image and command, environment values or keys of Secrets
//! restored into the namespace (`secretKeyRef`: the values never pass
//! through Vantage), no service-account token, and the job's timeout as
//! `activeDeadlineSeconds`. Its pod is under the namespace's isolating
//! NetworkPolicy like the app (it reaches the app's pods, nothing else).
//!
//! The job passes when the Job succeeded, its container exited 0 and, if
//! `expect_output` is set, the last [`LOG_LINES`] lines of its log contain
//! it. Exit code and those lines go into the report (and the audit record),
//! redacted of every Secret value the job's environment references
//! ([`secrets`]; withheld if those cannot be read). Jobs are deleted with
//! the namespace.

pub use crate::result::restore::JobOutcome;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Container, EnvVar, EnvVarSource, Pod, PodSpec, PodTemplateSpec, SecretKeySelector,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, ListParams, LogParams, PostParams};

use super::restore_object::MAX_POLL_ERRORS;
use super::{Pacing, human_seconds};
use crate::config::{JobEnv, RestoreJob, TemplateVars};

pub mod secrets;

/// Prefix of the Job's name (`vantage-job-NAME`).
pub const JOB_PREFIX: &str = "vantage-job-";
/// Label on the job's pod naming the data job.
pub const JOB_LABEL: &str = "vantage.dev/job";
/// The container's name.
pub const CONTAINER: &str = "job";
/// Log lines kept (and searched for `expect_output`).
pub const LOG_LINES: usize = 20;
/// At most this much of the log is read.
const LOG_BYTES: i64 = 16 * 1024;
/// How long past its deadline the Job controller gets to mark it failed.
const DEADLINE_GRACE: Duration = Duration::from_secs(30);

/// The Job's name for data job `name`.
pub fn job_name(name: &str) -> String {
    format!("{JOB_PREFIX}{name}")
}

/// The Job running `job` in `namespace`, templates rendered with `vars`.
pub fn build_job(
    job: &RestoreJob,
    namespace: &str,
    vars: &TemplateVars,
    labels: &BTreeMap<String, String>,
) -> Job {
    let name = job_name(&job.name);
    let mut pod_labels = labels.clone();
    pod_labels.insert(JOB_LABEL.to_string(), job.name.clone());
    let env = job
        .env
        .iter()
        .map(|(key, value)| match value {
            JobEnv::Value(t) => EnvVar {
                name: key.clone(),
                value: Some(t.render(vars)),
                value_from: None,
            },
            JobEnv::Secret { name, key: k } => EnvVar {
                name: key.clone(),
                value: None,
                value_from: Some(EnvVarSource {
                    secret_key_ref: Some(SecretKeySelector {
                        name: name.clone(),
                        key: k.clone(),
                        optional: Some(false),
                    }),
                    ..EnvVarSource::default()
                }),
            },
        })
        .collect();
    Job {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: Some(namespace.to_string()),
            labels: Some(labels.clone()),
            ..ObjectMeta::default()
        },
        spec: Some(JobSpec {
            backoff_limit: Some(0),
            active_deadline_seconds: Some(job.timeout.as_secs().max(1) as i64),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    restart_policy: Some("Never".to_string()),
                    automount_service_account_token: Some(false),
                    containers: vec![Container {
                        name: CONTAINER.to_string(),
                        image: Some(job.image.clone()),
                        command: Some(job.command.iter().map(|c| c.render(vars)).collect()),
                        env: Some(env),
                        ..Container::default()
                    }],
                    ..PodSpec::default()
                }),
            },
            ..JobSpec::default()
        }),
        status: None,
    }
}

/// Create the Job for `job` and wait for its end; read its pod's exit code
/// and log. API errors (beyond [`MAX_POLL_ERRORS`] in a row while polling)
/// are returned. `adopting` (a run taken over, [`super::adopt`]): a Job of
/// the run already there is waited for instead of created.
pub async fn run(
    client: &kube::Client,
    namespace: &str,
    job: &RestoreJob,
    vars: &TemplateVars,
    labels: &BTreeMap<String, String>,
    pacing: &Pacing,
    adopting: bool,
) -> Result<JobOutcome, kube::Error> {
    let start = Instant::now();
    let jobs: Api<Job> = Api::namespaced(client.clone(), namespace);
    let built = build_job(job, namespace, vars, labels);
    let name = job_name(&job.name);
    match jobs.create(&PostParams::default(), &built).await {
        Ok(_) => {}
        Err(e) if adopting && super::adopt::already_exists(&e) => {
            if let Err(why) = super::adopt::claim_made(&jobs, &name, labels).await {
                tracing::warn!(namespace, job = %name, "not taking over the Job: {why}");
                return Err(e);
            }
        }
        Err(e) => return Err(e),
    }
    let finished = wait_for_end(&jobs, &name, job.timeout + DEADLINE_GRACE, start, pacing).await?;
    let (exit_code, raw_tail, log_error) = last_pod(client, namespace, job).await?;
    let seconds = start.elapsed().as_secs_f64();
    let (passed, reason) = judge(job, finished, exit_code, &raw_tail, seconds);
    let log_tail = match log_error {
        Some(unavailable) => vec![unavailable],
        None => redacted_tail(client, namespace, job, labels, pacing, raw_tail).await,
    };
    Ok(JobOutcome {
        name: job.name.clone(),
        job: name,
        passed,
        exit_code,
        reason,
        log_tail,
        seconds,
    })
}

/// Poll Job `name` until it ends or `limit` has passed since `start`
/// (`None`); [`MAX_POLL_ERRORS`] failed polls in a row are an error.
async fn wait_for_end(
    jobs: &Api<Job>,
    name: &str,
    limit: Duration,
    start: Instant,
    pacing: &Pacing,
) -> Result<Option<End>, kube::Error> {
    let mut errors = 0;
    let finished = loop {
        match jobs.get(name).await {
            Ok(j) => {
                errors = 0;
                if let Some(end) = ended(&j) {
                    break Some(end);
                }
            }
            Err(e) => {
                errors += 1;
                if errors >= MAX_POLL_ERRORS {
                    return Err(e);
                }
            }
        }
        if start.elapsed() >= limit {
            break None;
        }
        tokio::time::sleep(
            pacing
                .poll_interval
                .min(limit.saturating_sub(start.elapsed())),
        )
        .await;
    };

    Ok(finished)
}

/// The exit code and last log lines of the job's newest pod (the log as
/// the container wrote it: it decides `expect_output` and is never
/// reported as is), or why the log could not be read.
async fn last_pod(
    client: &kube::Client,
    namespace: &str,
    job: &RestoreJob,
) -> Result<(Option<i32>, Vec<String>, Option<String>), kube::Error> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let selector = format!("{JOB_LABEL}={}", job.name);
    let pod = pods
        .list(&ListParams::default().labels(&selector))
        .await?
        .items
        .into_iter()
        .max_by(|a, b| {
            a.metadata
                .creation_timestamp
                .cmp(&b.metadata.creation_timestamp)
        });
    let exit_code = pod.as_ref().and_then(exit_code);
    let (raw_tail, log_error) = match &pod {
        Some(p) => {
            let params = LogParams {
                container: Some(CONTAINER.to_string()),
                tail_lines: Some(LOG_LINES as i64),
                limit_bytes: Some(LOG_BYTES),
                ..LogParams::default()
            };
            match pods
                .logs(p.metadata.name.as_deref().unwrap_or_default(), &params)
                .await
            {
                Ok(text) => (tail(&text), None),
                Err(e) => (
                    Vec::new(),
                    Some(format!(
                        "(log unavailable: {})",
                        super::describe_kube_error(&e)
                    )),
                ),
            }
        }
        None => (Vec::new(), None),
    };
    Ok((exit_code, raw_tail, log_error))
}

/// Whether the job proved the data, and why, one line.
fn judge(
    job: &RestoreJob,
    finished: Option<End>,
    exit_code: Option<i32>,
    raw_tail: &[String],
    seconds: f64,
) -> (bool, String) {
    match finished {
        None => (
            false,
            format!(
                "still running after {} (deadline {})",
                human_seconds(seconds),
                human_seconds(job.timeout.as_secs_f64())
            ),
        ),
        Some(End::Failed(why)) => (
            false,
            match exit_code {
                Some(code) => format!("failed: exit {code} ({why})"),
                None => format!("failed: {why}"),
            },
        ),
        Some(End::Succeeded) => match (&job.expect_output, exit_code) {
            (_, Some(code)) if code != 0 => (false, format!("exit {code}")),
            (Some(expect), _) if !raw_tail.iter().any(|l| l.contains(expect.as_str())) => (
                false,
                format!(
                    "exit {}, but the last {LOG_LINES} log lines lack {expect:?}",
                    exit_code.unwrap_or(0)
                ),
            ),
            (Some(expect), _) => (true, format!("exit 0, output has {expect:?}")),
            (None, _) => (true, "exit 0".to_string()),
        },
    }
}

/// The log lines to report: every fragment of the Secret values the job
/// read redacted (see [`secrets::redactor`]), or withheld when those values
/// cannot be read.
async fn redacted_tail(
    client: &kube::Client,
    namespace: &str,
    job: &RestoreJob,
    labels: &BTreeMap<String, String>,
    pacing: &Pacing,
    raw_tail: Vec<String>,
) -> Vec<String> {
    if raw_tail.is_empty() {
        return raw_tail;
    }
    match secrets::redactor(client, namespace, job, labels, pacing).await {
        Ok(redactor) => raw_tail
            .iter()
            .map(|line| redactor.redact(line).into_owned())
            .collect(),
        Err(why) => vec![format!("({} log line(s) withheld: {why})", raw_tail.len())],
    }
}

/// How a Job ended.
enum End {
    Succeeded,
    Failed(String),
}

/// The Job's end, if it ended: `status.succeeded`/`failed` or a `Complete`
/// / `Failed` condition (with its reason, e.g. `DeadlineExceeded`).
fn ended(job: &Job) -> Option<End> {
    let status = job.status.as_ref()?;
    let condition = |kind: &str| {
        status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == kind && c.status == "True")
    };
    if let Some(c) = condition("Failed") {
        return Some(End::Failed(
            c.reason
                .clone()
                .or(c.message.clone())
                .unwrap_or_else(|| "Failed".to_string()),
        ));
    }
    if status.failed.unwrap_or(0) > 0 {
        return Some(End::Failed("pod failed".to_string()));
    }
    if condition("Complete").is_some() || status.succeeded.unwrap_or(0) > 0 {
        return Some(End::Succeeded);
    }
    None
}

/// The job container's exit code, once terminated.
fn exit_code(pod: &Pod) -> Option<i32> {
    pod.status
        .as_ref()?
        .container_statuses
        .iter()
        .flatten()
        .find(|c| c.name == CONTAINER)?
        .state
        .as_ref()?
        .terminated
        .as_ref()
        .map(|t| t.exit_code)
}

/// The last [`LOG_LINES`] non-empty lines of `text`.
fn tail(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(LOG_LINES)..]
        .iter()
        .map(|l| l.to_string())
        .collect()
}
