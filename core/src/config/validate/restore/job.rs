//! `[[restore.job]]`: data checks run as Kubernetes Jobs (see
//! `restore::job`).

use std::collections::HashMap;
use std::ops::Range;
use std::time::Duration;

use serde_spanned::Spanned;

use super::is_dns_label;
use crate::config::raw::RawJob;
use crate::config::restore::{JobEnv, RestoreJob, Template};
use crate::config::validate::Validator;
use crate::config::values::parse_timeout;

/// Longest job name: the Job is `vantage-job-NAME` and its pods add a
/// suffix, all within a 63-character label.
const MAX_JOB_NAME: usize = 40;

/// Whether `name` may name an environment variable (C identifier).
fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Validator<'_> {
    /// Every `[[restore.job]]` of one restore test; the bad ones are left out
    /// (their errors recorded).
    pub(in crate::config::validate) fn restore_jobs(
        &mut self,
        raw: Vec<Spanned<RawJob>>,
        sources: &[String],
        ctx: Option<&str>,
    ) -> Vec<RestoreJob> {
        let mut seen: HashMap<String, ()> = HashMap::new();
        let mut jobs = Vec::new();
        for job in raw {
            let header = job.span();
            let job = job.into_inner();
            let errors_before = self.errors.len();
            let name = match &job.name {
                None => {
                    let msg = "a [[restore.job]] needs a name".to_string();
                    self.error(header.clone(), ctx, Some("job.name"), msg);
                    None
                }
                Some(n) => {
                    let text = n.get_ref().trim().to_string();
                    if !is_dns_label(&text) || text.len() > MAX_JOB_NAME {
                        let msg = format!(
                            "invalid job name {text:?}: lowercase letters, digits and `-`, at most {MAX_JOB_NAME} characters"
                        );
                        self.error(n.span(), ctx, Some("job.name"), msg);
                        None
                    } else if seen.insert(text.clone(), ()).is_some() {
                        let msg = format!("duplicate job name {text:?}");
                        self.error(n.span(), ctx, Some("job.name"), msg);
                        None
                    } else {
                        Some(text)
                    }
                }
            };
            let image = match &job.image {
                Some(i) if !i.get_ref().trim().is_empty() => Some(i.get_ref().trim().to_string()),
                Some(i) => {
                    let msg = "job image is empty: name a container image, e.g. \"postgres:17\""
                        .to_string();
                    self.error(i.span(), ctx, Some("job.image"), msg);
                    None
                }
                None => {
                    let msg = "a [[restore.job]] needs an image, e.g. \"postgres:17\"".to_string();
                    self.error(header.clone(), ctx, Some("job.image"), msg);
                    None
                }
            };
            let command = self.job_command(&job, sources, header.clone(), ctx);
            let env = self.job_env(&job, sources, ctx);
            let timeout = match &job.timeout {
                Some(t) => self
                    .parse_text(t, ctx, "job.timeout", "5m", parse_timeout)
                    .unwrap_or(Duration::from_secs(300)),
                None => Duration::from_secs(300),
            };
            let namespace = job.namespace.as_ref().and_then(|n| {
                let text = n.get_ref().trim().to_string();
                if sources.contains(&text) {
                    Some(text)
                } else {
                    let msg = format!(
                        "job namespace {text:?} is not restored: name one of the restore test's \
                         namespaces ({}); the Job runs in that namespace's volatile copy",
                        sources.join(", ")
                    );
                    self.error(n.span(), ctx, Some("job.namespace"), msg);
                    None
                }
            });
            if self.errors.len() > errors_before {
                continue;
            }
            let (Some(name), Some(image)) = (name, image) else {
                continue;
            };
            jobs.push(RestoreJob {
                name,
                image,
                command,
                env,
                timeout,
                expect_output: job.expect_output.map(Spanned::into_inner),
                namespace,
            });
        }
        jobs
    }

    /// `command`: each part a template; required, not empty.
    fn job_command(
        &mut self,
        job: &RawJob,
        sources: &[String],
        header: Range<usize>,
        ctx: Option<&str>,
    ) -> Vec<Template> {
        let mut command = Vec::new();
        match &job.command {
            Some(list) if !list.get_ref().is_empty() => {
                for part in list.get_ref() {
                    let t = Template(part.get_ref().clone());
                    self.job_template(&t, sources, part.span(), ctx, "job.command");
                    command.push(t);
                }
            }
            Some(list) => {
                let msg = "job command is empty".to_string();
                self.error(list.span(), ctx, Some("job.command"), msg);
            }
            None => {
                let msg =
                    "a [[restore.job]] needs a command, e.g. [\"psql\", \"-c\", \"select 1\"]"
                        .to_string();
                self.error(header.clone(), ctx, Some("job.command"), msg);
            }
        }
        command
    }

    /// `env`: values (templates) and `secret:SECRET/KEY` references to keys
    /// of restored Secrets.
    fn job_env(
        &mut self,
        job: &RawJob,
        sources: &[String],
        ctx: Option<&str>,
    ) -> Vec<(String, JobEnv)> {
        let mut env = Vec::new();
        if let Some(table) = &job.env {
            for (key, value) in table.get_ref() {
                let key_name = format!("job.env.{key}");
                if !is_env_name(key) {
                    let msg = format!("invalid environment variable name {key:?}");
                    self.error(table.span(), ctx, Some(&key_name), msg);
                    continue;
                }
                let Some(text) = value.as_str() else {
                    let msg = format!(
                        "env {key} must be a string: a value, or \"secret:SECRET/KEY\" for a key of a restored Secret"
                    );
                    self.error(table.span(), ctx, Some(&key_name), msg);
                    continue;
                };
                if let Some(reference) = text.strip_prefix("secret:") {
                    match reference.split_once('/') {
                        Some((secret, k)) if is_dns_label(secret) && !k.is_empty() => {
                            env.push((
                                key.clone(),
                                JobEnv::Secret {
                                    name: secret.to_string(),
                                    key: k.to_string(),
                                },
                            ));
                        }
                        _ => {
                            let msg = format!(
                                "invalid secret reference {text:?}: write \"secret:SECRET/KEY\", a key of a Secret restored into the namespace"
                            );
                            self.error(table.span(), ctx, Some(&key_name), msg);
                        }
                    }
                } else {
                    let t = Template(text.to_string());
                    self.job_template(&t, sources, table.span(), ctx, &key_name);
                    env.push((key.clone(), JobEnv::Value(t)));
                }
            }
        }
        env
    }

    /// Unknown placeholders, and `{{namespace:SOURCE}}` naming no source
    /// namespace, in a job's template.
    fn job_template(
        &mut self,
        t: &Template,
        sources: &[String],
        span: std::ops::Range<usize>,
        ctx: Option<&str>,
        key: &str,
    ) {
        if let Some(bad) = t.unknown_placeholder() {
            let msg = format!(
                "unknown placeholder {bad}: jobs may use {{{{namespace}}}}, {{{{namespace:SOURCE}}}} and {{{{backup}}}}"
            );
            self.error(span.clone(), ctx, Some(key), msg);
        }
        if let Some(msg) = super::unknown_source(t, sources) {
            self.error(span, ctx, Some(key), msg);
        }
    }
}
